// base64 as RFC 8951 uses it for every EST body: RFC 4648 section 4 alphabet with padding; senders
// need not wrap lines, receivers tolerate CR, LF, space and tab anywhere.
#pragma once

#include <string>
#include <string_view>

#include "estlab/core/bytes.hpp"

namespace estlab {

enum class LineBreaks {
  none,        // one line, what RFC 8951 senders may do
  every64_lf,  // PEM style
  every76_crlf // MIME style
};

std::string base64_encode(ByteView data, LineBreaks breaks = LineBreaks::none);

// Decodes, skipping CR, LF, space and tab. Errors name the offset in `text`, for example
// "base64: invalid character '%' at offset 17".
Result<Bytes> base64_decode(std::string_view text);

}  // namespace estlab
