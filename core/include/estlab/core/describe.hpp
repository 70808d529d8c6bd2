// Text for EST bodies, for people: CSRs, certs-only bags, csrattrs, multipart parts and CMC
// decoded; anything else described by its size. Used by the gateway's transcripts and by the
// conformance engine's failure evidence.
#pragma once

#include <string>
#include <string_view>

namespace estlab {

// `content_type` is the body's Content-Type; "" or text/plain gives "". Never fails: an
// undecodable body is described as such ("undecodable certs-only: ...").
std::string describe_est_body(std::string_view content_type, std::string_view body);

}  // namespace estlab
