#include "estlab/core/base64.hpp"

#include <array>
#include <cctype>

namespace estlab {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int, 256> make_decode_table() {
  std::array<int, 256> table{};
  for (auto& v : table) v = -1;
  for (int i = 0; i < 64; ++i) table[static_cast<unsigned char>(kAlphabet[i])] = i;
  return table;
}
constexpr auto kDecode = make_decode_table();

bool is_skipped_whitespace(char c) { return c == '\r' || c == '\n' || c == ' ' || c == '\t'; }

std::string describe(char c) {
  if (std::isprint(static_cast<unsigned char>(c))) return std::string("'") + c + "'";
  static constexpr char digits[] = "0123456789abcdef";
  auto u = static_cast<unsigned char>(c);
  return std::string("byte 0x") + digits[u >> 4] + digits[u & 0x0f];
}

}  // namespace

std::string base64_encode(ByteView data, LineBreaks breaks) {
  std::string flat;
  flat.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    std::uint32_t v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    flat += kAlphabet[(v >> 18) & 63];
    flat += kAlphabet[(v >> 12) & 63];
    flat += kAlphabet[(v >> 6) & 63];
    flat += kAlphabet[v & 63];
  }
  if (i < data.size()) {
    std::uint32_t v = data[i] << 16;
    if (i + 1 < data.size()) v |= data[i + 1] << 8;
    flat += kAlphabet[(v >> 18) & 63];
    flat += kAlphabet[(v >> 12) & 63];
    flat += (i + 1 < data.size()) ? kAlphabet[(v >> 6) & 63] : '=';
    flat += '=';
  }
  if (breaks == LineBreaks::none) return flat;

  const std::size_t width = breaks == LineBreaks::every64_lf ? 64 : 76;
  const std::string_view eol = breaks == LineBreaks::every64_lf ? "\n" : "\r\n";
  std::string out;
  out.reserve(flat.size() + flat.size() / width * eol.size() + eol.size());
  for (std::size_t pos = 0; pos < flat.size(); pos += width) {
    out.append(flat, pos, width);
    out += eol;
  }
  return out;
}

Result<Bytes> base64_decode(std::string_view text) {
  Bytes out;
  out.reserve(text.size() / 4 * 3);
  std::uint32_t accumulator = 0;
  int quantum = 0;        // symbols in the current 4-symbol group
  int padding = 0;        // '=' seen so far
  std::size_t first_pad_offset = 0;

  for (std::size_t offset = 0; offset < text.size(); ++offset) {
    char c = text[offset];
    if (is_skipped_whitespace(c)) continue;
    if (c == '=') {
      if (quantum < 2) {
        return make_error(ErrorCode::invalid_input,
                          "base64: padding '=' at offset " + std::to_string(offset) + " where data is expected");
      }
      if (padding == 0) first_pad_offset = offset;
      ++padding;
      ++quantum;
      if (quantum == 4) {
        if (padding == 1) {
          out.push_back(static_cast<std::uint8_t>(accumulator >> 10));
          out.push_back(static_cast<std::uint8_t>(accumulator >> 2));
        } else {
          out.push_back(static_cast<std::uint8_t>(accumulator >> 4));
        }
        quantum = 0;
        accumulator = 0;
      }
      continue;
    }
    int value = kDecode[static_cast<unsigned char>(c)];
    if (value < 0) {
      return make_error(ErrorCode::invalid_input,
                        "base64: invalid character " + describe(c) + " at offset " + std::to_string(offset));
    }
    if (padding > 0) {
      return make_error(ErrorCode::invalid_input, "base64: data after padding at offset " + std::to_string(offset) +
                                                      " (padding began at offset " +
                                                      std::to_string(first_pad_offset) + ")");
    }
    accumulator = (accumulator << 6) | static_cast<std::uint32_t>(value);
    if (++quantum == 4) {
      out.push_back(static_cast<std::uint8_t>(accumulator >> 16));
      out.push_back(static_cast<std::uint8_t>(accumulator >> 8));
      out.push_back(static_cast<std::uint8_t>(accumulator));
      quantum = 0;
      accumulator = 0;
    }
  }
  if (quantum != 0) {
    return make_error(ErrorCode::invalid_input,
                      "base64: input ends inside a 4-character group (" + std::to_string(quantum) +
                          " left over; missing '=' padding or truncated)");
  }
  return out;
}

}  // namespace estlab
