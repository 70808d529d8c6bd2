// The EST HTTP codec: what RFC 7030 (as updated by RFC 8951) puts on the wire above HTTP itself --
// operation paths, media types, base64 bodies, the /serverkeygen multipart, Basic authentication
// and Retry-After. No sockets and no clock of its own, so the HTTPS gateway and client, the CoAP
// proxy and the conformance engine share one reading of the protocol and test it without a network.
// Everything here reads untrusted bytes: errors are values, every size has a limit (EstCodecLimits).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "estlab/core/bytes.hpp"
#include "estlab/core/clock.hpp"
#include "estlab/core/result.hpp"

namespace estlab {

// Bounds for everything a peer sends; the defaults suit EST, configuration may change them.
// Passing one yields ErrorCode::limit_exceeded, never a partial result.
struct EstCodecLimits {
  std::size_t max_target_length = 2048;        // request target, query included
  std::size_t max_body_length = 1u << 20;      // one base64 body, or a whole multipart body
  std::size_t max_media_type_length = 1024;    // one Content-Type value
  std::size_t max_media_type_parameters = 16;
  std::size_t max_parts = 16;                  // multipart body parts (serverkeygen has 2)
  std::size_t max_part_headers = 16;           // header fields in one part
  std::size_t max_header_line_length = 998;    // one part header line (RFC 5322 2.1.1)
  std::size_t max_authorization_length = 4096; // one Authorization value
};

// ---- Operations (RFC 7030 3.2.2, Figure 5) ----------------------------------------------------

enum class EstOperation { cacerts, simpleenroll, simplereenroll, fullcmc, csrattrs, serverkeygen };

inline constexpr std::array<EstOperation, 6> all_est_operations = {
    EstOperation::cacerts,  EstOperation::simpleenroll, EstOperation::simplereenroll,
    EstOperation::fullcmc,  EstOperation::csrattrs,     EstOperation::serverkeygen,
};

std::string_view to_string(EstOperation operation);  // the path segment: "cacerts", ...
// Exact, case-sensitive match of a path segment (URI paths are case-sensitive, RFC 3986 6.2.2.1).
std::optional<EstOperation> parse_est_operation(std::string_view segment);
std::string_view http_method(EstOperation operation);  // "GET" for cacerts and csrattrs, else "POST"

// ---- Media types (RFC 7030 3.2.4 Figure 6, RFC 8951 3.2, RFC 5273) ----------------------------

namespace media_types {
inline constexpr std::string_view pkcs10 = "application/pkcs10";
inline constexpr std::string_view pkcs7_mime = "application/pkcs7-mime";
inline constexpr std::string_view certs_only = "application/pkcs7-mime; smime-type=certs-only";
inline constexpr std::string_view cmc_request = "application/pkcs7-mime; smime-type=CMC-request";
inline constexpr std::string_view cmc_response = "application/pkcs7-mime; smime-type=CMC-response";
inline constexpr std::string_view csrattrs = "application/csrattrs";
inline constexpr std::string_view multipart_mixed = "multipart/mixed";  // plus "; boundary=..."
inline constexpr std::string_view pkcs8 = "application/pkcs8";           // serverkeygen key part
// serverkeygen key part when the key is encrypted to the client (RFC 7030 4.4.2).
inline constexpr std::string_view server_generated_key = "application/pkcs7-mime; smime-type=server-generated-key";
inline constexpr std::string_view text_plain = "text/plain";              // human-readable errors
}  // namespace media_types

// The Content-Type a client sends with the operation; nullopt for GET operations (no body).
std::optional<std::string_view> request_media_type(EstOperation operation);
// The Content-Type of a success response as a server sends it. serverkeygen gives "multipart/mixed"
// alone: the boundary parameter is chosen per response (make_boundary).
std::string_view response_media_type(EstOperation operation);

// A Content-Type value per RFC 9110 8.3.1 / 5.6.6. Type, subtype and parameter names are stored in
// lower case (they are case-insensitive); values are stored unquoted and unescaped, case kept.
struct MediaType {
  std::string type;
  std::string subtype;
  std::vector<std::pair<std::string, std::string>> params;

  // Tolerates spaces around ';' and '=', empty parameters (";;"), quoted values with backslash
  // escapes, and unquoted values with non-token characters such as '=' (seen in boundaries).
  // Rejects a duplicate parameter name: two boundaries would be ambiguous.
  static Result<MediaType> parse(std::string_view text, const EstCodecLimits& limits = {});

  bool same_type(std::string_view type_slash_subtype) const;  // case-insensitive
  std::optional<std::string> param(std::string_view name) const;  // name case-insensitive
  std::string to_string() const;  // "type/subtype; name=value", values quoted where needed
};

// True when `actual` has the type/subtype of `expected` (a full Content-Type string such as
// media_types::certs_only) and every parameter `expected` names, with the same value. Values of
// smime-type and charset compare case-insensitively, others exactly. Extra parameters in
// `actual` are fine. An `expected` that does not parse matches nothing.
bool media_type_matches(const MediaType& actual, std::string_view expected);

// What a client should accept as a success response's Content-Type (catalog rows 7030-3.2.4-b,
// row 10 of the known problems): pkcs7-mime with smime-type certs-only or no smime-type for
// cacerts/simpleenroll/simplereenroll; also CMC-response for fullcmc; csrattrs; and
// multipart/mixed with a boundary for serverkeygen. A server check should use
// media_type_matches with the exact constant instead.
bool is_acceptable_response_type(EstOperation operation, const MediaType& actual);

// PG-COAP-2: the header an officer-authenticated proxy (estlab's CoAP proxy) uses to forward the
// device's certificate chain to the gateway: comma-separated base64 DER, leaf first.
inline constexpr const char* kForwardedClientCertHeader = "X-Estlab-Forwarded-Client-Cert";

// ---- Paths (RFC 7030 3.2.2) -------------------------------------------------------------------

inline constexpr std::string_view est_path_prefix = "/.well-known/est/";

struct EstPath {
  std::string label;  // the optional CA label; empty means none (the default CA)
  EstOperation operation = EstOperation::cacerts;
};

// 1 to 64 characters of A-Z a-z 0-9 . _ -, not "." and without "..", and not spelled like an
// operation in any case ("CACERTS" too): RFC 7030 3.2.2 says a label MUST NOT be an operation.
bool is_valid_est_label(std::string_view label);

// Accepts "/.well-known/est/<op>" and "/.well-known/est/<label>/<op>", in origin form or absolute
// form ("https://host/.well-known/est/cacerts", RFC 9112 3.2.2); a query string is dropped.
// Everything else is ErrorCode::not_found with the reason ("unknown operation 'nosuchop'", "empty
// path segment", "percent-encoding is not accepted"); an over-long target is limit_exceeded.
// '%' is refused outright rather than decoded, so "%2e%2e" and "%63acerts" never reach routing.
// Whether the label names a configured CA is the caller's question.
Result<EstPath> parse_est_path(std::string_view target, const EstCodecLimits& limits = {});

// "/.well-known/est/cacerts" or "/.well-known/est/<label>/cacerts". The label should have passed
// is_valid_est_label (checked where configuration is loaded); it is used as given.
std::string est_path(std::string_view label, EstOperation operation);

// ---- Bodies (RFC 8951 3) ----------------------------------------------------------------------

// What a Content-Transfer-Encoding header means to decode_est_body.
enum class TransferEncodingRule {
  // RFC 8951 3: the body is base64 "regardless of any Content-Transfer-Encoding header, and any
  // value in such a header MUST be ignored". The default, and what the gateway must do (catalog
  // row 8951-3-a sends CTE: binary with a base64 body and expects success).
  ignore,
  // A CTE present and other than "base64" is an error naming it. For the conformance engine, to
  // report a peer that sends "binary" or "7bit" (a warning, not a failure, under RFC 8951).
  require_base64,
  // Pre-RFC 8951 peers: when CTE is "binary" and the body is exactly one DER element starting
  // with SEQUENCE, take the raw DER; anything else is decoded as base64 as under `ignore`.
  accept_binary_der,
};

// The DER inside an EST body: RFC 4648 section 4 base64, any wrapping, CR/LF/space/tab tolerated
// anywhere (RFC 8951 3.1). Errors: "body is not base64: invalid character '*' at offset 17", with
// a hint when the body is PEM or raw DER; "body is empty"; limit_exceeded past max_body_length.
Result<Bytes> decode_est_body(std::string_view body, std::optional<std::string_view> content_transfer_encoding,
                              TransferEncodingRule rule = TransferEncodingRule::ignore,
                              const EstCodecLimits& limits = {});

// base64 of `der` in lines of 64 characters, each ending in CRLF (as the RFC 7030 examples wrap;
// RFC 8951 lets receivers take any wrapping). Empty input gives "".
std::string encode_est_body(ByteView der);

// ---- multipart/mixed (RFC 2046 5.1) for /serverkeygen (RFC 7030 4.4.2) -----------------------

struct MimePart {
  std::vector<std::pair<std::string, std::string>> headers;  // in order, names as sent
  std::string body;                                          // raw, still base64 for EST parts

  std::optional<std::string> header(std::string_view name) const;  // the first, case-insensitive
};

// A part with Content-Type `content_type`, "Content-Transfer-Encoding: base64" (RFC 8951 makes
// receivers ignore it; RFC 7030-era clients look for it) and encode_est_body(der) as body.
MimePart make_est_part(std::string_view content_type, ByteView der);

// The multipart body, CRLF line ends, no preamble or epilogue. Preconditions: `boundary` is a
// valid RFC 2046 boundary (make_boundary makes one) and no body contains "--" + boundary; base64
// bodies cannot, as '-' is not in the base64 alphabet. Header values are written as given.
std::string make_multipart(const std::vector<MimePart>& parts, std::string_view boundary);

// A boundary of 39 characters: "estlab-" and 32 hex digits of `random` (from the injected RNG).
std::string make_boundary(std::span<const std::uint8_t, 16> random);

// The boundary parameter of a multipart/mixed Content-Type; invalid_input when the type is not
// multipart/mixed or the parameter is missing or not a valid RFC 2046 boundary.
Result<std::string> multipart_boundary(const MediaType& content_type);

// The parts of a multipart body. Tolerates a preamble and an epilogue, CRLF or LF line ends,
// transport padding (spaces, tabs) after a delimiter, and folded part headers. A part's body
// excludes the line break that belongs to the next delimiter. Errors: a boundary that is empty,
// over 70 characters or has characters RFC 2046 does not allow; no delimiter; no parts; a part
// without a blank line between headers and body; a malformed header; no close delimiter
// (truncated); limit_exceeded past max_body_length, max_parts, max_part_headers or
// max_header_line_length.
Result<std::vector<MimePart>> parse_multipart(std::string_view body, std::string_view boundary,
                                              const EstCodecLimits& limits = {});

// ---- HTTP Basic authentication (RFC 7617; RFC 7030 3.2.3) -------------------------------------

struct BasicCredentials {
  std::string user;  // may be empty: RFC 7030 3.2.3 allows ":secret"
  std::string password;
};

// "Basic <base64(user:password)>": scheme case-insensitive, one or more spaces, strict base64
// (padding required, no inner whitespace), split at the first ':'. nullopt for another scheme, bad
// base64, no ':', control characters (RFC 7617 2), or a value over max_authorization_length.
std::optional<BasicCredentials> parse_basic_authorization(std::string_view header_value,
                                                          const EstCodecLimits& limits = {});

// A header value as reports, evidence and transcripts print it: Authorization and
// Proxy-Authorization keep their scheme and, for Basic, the user, never the password or token;
// Cookie and Set-Cookie are hidden whole. With show_secrets (asked for by the user) it is the value.
std::string printable_header_value(std::string_view name, std::string_view value, bool show_secrets = false);

// The Authorization value. A user containing ':' cannot round-trip (RFC 7617 forbids it); the
// configuration loader rejects such users.
std::string make_basic_authorization(std::string_view user, std::string_view password);

// The WWW-Authenticate value: Basic realm="<realm>", with '"' and '\' escaped and control
// characters dropped (a CR or LF in a configured realm must not split the header).
std::string make_basic_challenge(std::string_view realm);

// ---- Retry-After and HTTP dates (RFC 9110 10.2.3, 5.6.7) --------------------------------------

// Delta-seconds larger than this are clamped to it, as RFC 9110 5.6.7's cache rule does.
inline constexpr Seconds max_retry_after{std::int64_t{1} << 31};

// Seconds to wait: delta-seconds (clamped to max_retry_after), or an HTTP-date minus `now`
// rounded up, 0 when the date is past. invalid_input for anything else ("-5", "5s", "", a bad date).
Result<Seconds> parse_retry_after(std::string_view value, TimePoint now);

// All three HTTP-date forms, as RFC 9110 5.6.7 requires of recipients: IMF-fixdate
// ("Sun, 06 Nov 1994 08:49:37 GMT"), rfc850-date ("Sunday, 06-Nov-94 08:49:37 GMT", two-digit
// years resolved against `now`) and asctime ("Sun Nov  6 08:49:37 1994"). The day name must be a
// valid one but is not checked against the date.
Result<TimePoint> parse_http_date(std::string_view text, TimePoint now);

// IMF-fixdate, truncated to the second: "Sun, 06 Nov 1994 08:49:37 GMT".
std::string format_http_date(TimePoint time);

}  // namespace estlab
