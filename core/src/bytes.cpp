#include "estlab/core/bytes.hpp"

#include <openssl/evp.h>

#include <fstream>
#include <iterator>

namespace estlab {

std::string sha256_hex(ByteView data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  return to_hex(ByteView(digest, length));
}

std::string to_hex(ByteView bytes, std::string_view separator) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * (2 + separator.size()));
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i != 0) out += separator;
    out += digits[bytes[i] >> 4];
    out += digits[bytes[i] & 0x0f];
  }
  return out;
}

Result<Bytes> from_hex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string digits;
  for (char c : hex) {
    if (c == ':' || c == ' ') continue;
    digits += c;
  }
  if (digits.size() % 2 != 0) return make_error(ErrorCode::invalid_input, "hex: odd number of digits");
  Bytes out;
  out.reserve(digits.size() / 2);
  for (std::size_t i = 0; i < digits.size(); i += 2) {
    int hi = nibble(digits[i]);
    int lo = nibble(digits[i + 1]);
    if (hi < 0 || lo < 0) {
      return make_error(ErrorCode::invalid_input, "hex: invalid digit near offset " + std::to_string(i));
    }
    out.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
  }
  return out;
}

Result<Bytes> read_file_bytes(const std::string& path, std::size_t max_size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::io, path + ": cannot open for reading");
  in.seekg(0, std::ios::end);
  auto size = static_cast<std::size_t>(in.tellg());
  if (size > max_size) {
    return make_error(ErrorCode::limit_exceeded,
                      path + ": " + std::to_string(size) + " bytes is over the limit of " + std::to_string(max_size));
  }
  in.seekg(0);
  Bytes data(size);
  if (size > 0 && !in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(size))) {
    return make_error(ErrorCode::io, path + ": read failed");
  }
  return data;
}

Result<void> write_file_bytes(const std::string& path, ByteView bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return make_error(ErrorCode::io, path + ": cannot open for writing");
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) return make_error(ErrorCode::io, path + ": write failed");
  return {};
}

}  // namespace estlab
