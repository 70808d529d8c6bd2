// Small text helpers the codecs, the gateway, the engine and the reports share: ASCII case
// folding (protocol tokens, header names, media types are ASCII case-insensitive) and UTF-8
// encoding of one code point.
#pragma once

#include <string>
#include <string_view>

namespace estlab {

inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
std::string ascii_lowercase(std::string_view text);
// Equal ignoring ASCII case (RFC 9110 header names, media types, schemes).
bool iequals(std::string_view a, std::string_view b);
// `needle` occurs in `haystack`, ignoring ASCII case.
bool icontains(std::string_view haystack, std::string_view needle);

// Appends `cp` (at most U+10FFFF; the caller has excluded surrogates) as UTF-8.
void append_utf8(std::string& out, char32_t cp);

}  // namespace estlab
