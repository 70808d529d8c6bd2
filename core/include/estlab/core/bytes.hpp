#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "estlab/core/result.hpp"

namespace estlab {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_chars(ByteView b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
inline Bytes to_bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

std::string to_hex(ByteView bytes, std::string_view separator = "");
Result<Bytes> from_hex(std::string_view hex);
// Lower-case hex of the SHA-256 of `data` (e.g. how the gateway names a pending CSR).
std::string sha256_hex(ByteView data);

Result<Bytes> read_file_bytes(const std::string& path, std::size_t max_size = 16u << 20);
Result<void> write_file_bytes(const std::string& path, ByteView bytes);

}  // namespace estlab
