// UTF-8 encoding of one code point, shared by the properties parser (\uXXXX escapes) and the
// reports (U+FFFD for bytes that are not UTF-8).
#pragma once

#include <string>

namespace estlab {

// Appends `cp` (at most U+10FFFF; the caller has excluded surrogates) as UTF-8.
void append_utf8(std::string& out, char32_t cp);

}  // namespace estlab
