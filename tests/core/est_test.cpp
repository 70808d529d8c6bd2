// The EST HTTP codec: RFC 7030 3.2.2 paths, 3.2.4 media types, RFC 8951 3 base64 bodies, RFC 2046
// multipart for 4.4.2, RFC 7617 Basic authentication (7030 3.2.3) and RFC 9110 Retry-After (7030
// 4.2.3). Catalog rows are named where a test checks one.
#include "estlab/core/est.hpp"

#include <gtest/gtest.h>

#include <random>

#include "estlab/core/base64.hpp"
#include "estlab/core/certs_only.hpp"
#include "estlab/core/key.hpp"
#include "test_support.hpp"

namespace estlab {
namespace {

using namespace std::chrono_literals;
using test::read_data;

Bytes random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  Bytes out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>(rng());
  return out;
}

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (std::size_t pos = 0; (pos = text.find(from, pos)) != std::string::npos; pos += to.size()) {
    text.replace(pos, from.size(), to);
  }
  return text;
}

template <typename T>
void expect_error(const Result<T>& result, ErrorCode code, std::string_view message_part, std::string_view input) {
  ASSERT_FALSE(result.ok()) << "accepted: " << input;
  EXPECT_EQ(result.error().code, code) << input << ": " << result.error().message;
  EXPECT_NE(result.error().message.find(message_part), std::string::npos)
      << input << ": '" << result.error().message << "' lacks '" << message_part << "'";
}

// ---- Operations -------------------------------------------------------------------------------

TEST(EstOperation, EverySegmentRoundTrips) {
  const std::pair<EstOperation, std::string_view> expected[] = {
      {EstOperation::cacerts, "cacerts"},   {EstOperation::simpleenroll, "simpleenroll"},
      {EstOperation::simplereenroll, "simplereenroll"}, {EstOperation::fullcmc, "fullcmc"},
      {EstOperation::csrattrs, "csrattrs"}, {EstOperation::serverkeygen, "serverkeygen"},
  };
  ASSERT_EQ(all_est_operations.size(), std::size(expected));
  for (auto [operation, segment] : expected) {
    EXPECT_EQ(to_string(operation), segment);
    EXPECT_EQ(parse_est_operation(segment), operation) << segment;
  }
}

TEST(EstOperation, ParseIsExactAndCaseSensitive) {
  for (std::string_view segment : {"CACERTS", "Cacerts", "cacerts ", " cacerts", "cacert", "cacertss", "", "enroll",
                                   "simpleEnroll", "serverKeyGen"}) {
    EXPECT_FALSE(parse_est_operation(segment).has_value()) << "'" << segment << "'";
  }
}

// RFC 7030 3.2.2 and the catalog's table in 1.4: GET for cacerts and csrattrs, POST for the rest.
TEST(EstOperation, HttpMethods) {
  EXPECT_EQ(http_method(EstOperation::cacerts), "GET");
  EXPECT_EQ(http_method(EstOperation::csrattrs), "GET");
  EXPECT_EQ(http_method(EstOperation::simpleenroll), "POST");
  EXPECT_EQ(http_method(EstOperation::simplereenroll), "POST");
  EXPECT_EQ(http_method(EstOperation::fullcmc), "POST");
  EXPECT_EQ(http_method(EstOperation::serverkeygen), "POST");
}

// RFC 7030 3.2.4 Figure 6, RFC 8951 3.2 (7030-3.2.4-a).
TEST(EstOperation, MediaTypesPerFigure6) {
  EXPECT_EQ(request_media_type(EstOperation::cacerts), std::nullopt);
  EXPECT_EQ(request_media_type(EstOperation::csrattrs), std::nullopt);
  EXPECT_EQ(request_media_type(EstOperation::simpleenroll), "application/pkcs10");
  EXPECT_EQ(request_media_type(EstOperation::simplereenroll), "application/pkcs10");
  EXPECT_EQ(request_media_type(EstOperation::serverkeygen), "application/pkcs10");
  EXPECT_EQ(request_media_type(EstOperation::fullcmc), "application/pkcs7-mime; smime-type=CMC-request");

  EXPECT_EQ(response_media_type(EstOperation::cacerts), "application/pkcs7-mime; smime-type=certs-only");
  EXPECT_EQ(response_media_type(EstOperation::simpleenroll), "application/pkcs7-mime; smime-type=certs-only");
  EXPECT_EQ(response_media_type(EstOperation::simplereenroll), "application/pkcs7-mime; smime-type=certs-only");
  EXPECT_EQ(response_media_type(EstOperation::fullcmc), "application/pkcs7-mime; smime-type=CMC-response");
  EXPECT_EQ(response_media_type(EstOperation::csrattrs), "application/csrattrs");
  EXPECT_EQ(response_media_type(EstOperation::serverkeygen), "multipart/mixed");

  EXPECT_EQ(media_types::pkcs8, "application/pkcs8");
  EXPECT_EQ(media_types::server_generated_key, "application/pkcs7-mime; smime-type=server-generated-key");
  // Every constant is itself a well-formed media type.
  for (std::string_view constant : {media_types::pkcs10, media_types::pkcs7_mime, media_types::certs_only,
                                    media_types::cmc_request, media_types::cmc_response, media_types::csrattrs,
                                    media_types::multipart_mixed, media_types::pkcs8,
                                    media_types::server_generated_key, media_types::text_plain}) {
    auto parsed = MediaType::parse(constant);
    ASSERT_TRUE(parsed.ok()) << constant;
    EXPECT_TRUE(media_type_matches(*parsed, constant)) << constant;
  }
}

// ---- Paths ------------------------------------------------------------------------------------

// The three example URIs of RFC 7030 3.2.2 and its request-lines (7030-3.2.2-d).
TEST(EstPath, Rfc7030Examples) {
  auto plain = parse_est_path("/.well-known/est/cacerts");
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(plain->label, "");
  EXPECT_EQ(plain->operation, EstOperation::cacerts);

  auto enroll = parse_est_path("/.well-known/est/simpleenroll");
  ASSERT_TRUE(enroll.ok());
  EXPECT_EQ(enroll->operation, EstOperation::simpleenroll);

  auto labelled = parse_est_path("https://www.example.com/.well-known/est/arbitraryLabel1/cacerts");
  ASSERT_TRUE(labelled.ok()) << labelled.error().message;
  EXPECT_EQ(labelled->label, "arbitraryLabel1");
  EXPECT_EQ(labelled->operation, EstOperation::cacerts);

  auto absolute = parse_est_path("HTTPS://www.example.com:8443/.well-known/est/arbitraryLabel2/cacerts");
  ASSERT_TRUE(absolute.ok()) << absolute.error().message;
  EXPECT_EQ(absolute->label, "arbitraryLabel2");
}

TEST(EstPath, EveryOperationWithAndWithoutLabelRoundTrips) {
  for (EstOperation operation : all_est_operations) {
    for (std::string_view label : {"", "lab-1", "Issuing_CA.2"}) {
      std::string path = est_path(label, operation);
      auto parsed = parse_est_path(path);
      ASSERT_TRUE(parsed.ok()) << path << ": " << parsed.error().message;
      EXPECT_EQ(parsed->label, label) << path;
      EXPECT_EQ(parsed->operation, operation) << path;
    }
  }
  EXPECT_EQ(est_path("", EstOperation::csrattrs), "/.well-known/est/csrattrs");
  EXPECT_EQ(est_path("lab", EstOperation::serverkeygen), "/.well-known/est/lab/serverkeygen");
}

TEST(EstPath, QueryStringIsDropped) {
  auto a = parse_est_path("/.well-known/est/cacerts?x=1&y=/../..");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->operation, EstOperation::cacerts);
  auto b = parse_est_path("/.well-known/est/lab/simplereenroll?");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->label, "lab");
  EXPECT_EQ(b->operation, EstOperation::simplereenroll);
}

// 7030-3.2.2-g: an unknown operation is not found, and the message names it.
TEST(EstPath, UnknownOperationIsNotFound) {
  auto bare = parse_est_path("/.well-known/est/nosuchop");
  expect_error(bare, ErrorCode::not_found, "unknown operation 'nosuchop'", "nosuchop");
  auto labelled = parse_est_path("/.well-known/est/nosuchlabel/nosuchop");
  expect_error(labelled, ErrorCode::not_found, "unknown operation 'nosuchop'", "label/nosuchop");
  // Operations are case-sensitive path segments.
  expect_error(parse_est_path("/.well-known/est/CACERTS"), ErrorCode::not_found, "unknown operation 'CACERTS'",
               "CACERTS");
}

// 7030-3.2.2-f: a label MUST NOT be spelled like an operation.
TEST(EstPath, LabelSpelledLikeAnOperationIsNotALabel) {
  for (std::string_view target : {"/.well-known/est/cacerts/cacerts", "/.well-known/est/simpleenroll/cacerts",
                                   "/.well-known/est/serverkeygen/simpleenroll", "/.well-known/est/CaCerts/cacerts"}) {
    expect_error(parse_est_path(target), ErrorCode::not_found, "spelled like an operation", target);
  }
  EXPECT_FALSE(is_valid_est_label("cacerts"));
  EXPECT_FALSE(is_valid_est_label("FULLCMC"));
  EXPECT_TRUE(is_valid_est_label("cacerts2"));
}

TEST(EstPath, EmptySegmentsAreRefused) {
  expect_error(parse_est_path("/.well-known/est//cacerts"), ErrorCode::not_found, "empty path segment", "//");
  expect_error(parse_est_path("/.well-known/est/cacerts/"), ErrorCode::not_found, "empty path segment", "trailing /");
  expect_error(parse_est_path("/.well-known/est/lab//cacerts"), ErrorCode::not_found, "empty path segment", "lab//");
  expect_error(parse_est_path("/.well-known/est/"), ErrorCode::not_found, "names no operation", "prefix/");
  expect_error(parse_est_path("/.well-known/est"), ErrorCode::not_found, "names no operation", "prefix");
}

TEST(EstPath, DotSegmentsAndPercentEncodingAreRefused) {
  expect_error(parse_est_path("/.well-known/est/../cacerts"), ErrorCode::not_found, "dot segment '..'", "..");
  expect_error(parse_est_path("/.well-known/est/./cacerts"), ErrorCode::not_found, "dot segment '.'", ".");
  expect_error(parse_est_path("/.well-known/est/lab/.."), ErrorCode::not_found, "dot segment", "lab/..");
  expect_error(parse_est_path("/.well-known/est/a..b/cacerts"), ErrorCode::not_found, "invalid label", "a..b");
  for (std::string_view target : {"/.well-known/est/%2e%2e/cacerts", "/.well-known/est/%2E%2E/cacerts",
                                  "/.well-known/est/%63acerts", "/.well-known/est/lab%2fx/cacerts",
                                  "/.well-known%2fest/cacerts"}) {
    expect_error(parse_est_path(target), ErrorCode::not_found, "percent-encoding", target);
  }
}

TEST(EstPath, OtherPathsAreNotEstPaths) {
  for (std::string_view target : {"/", "", "*", "/cacerts", "/.well-known/EST/cacerts", "/.WELL-KNOWN/est/cacerts",
                                  "/.well-known/estx/cacerts", "//.well-known/est/cacerts", ".well-known/est/cacerts",
                                  "https://host", "http://host?x=/.well-known/est/cacerts"}) {
    expect_error(parse_est_path(target), ErrorCode::not_found, "not an EST path", target);
  }
  expect_error(parse_est_path("/.well-known/est/a/b/cacerts"), ErrorCode::not_found, "too many path segments", "a/b");
}

TEST(EstPath, LabelCharacterSetAndLength) {
  std::string longest(64, 'a');
  EXPECT_TRUE(is_valid_est_label(longest));
  EXPECT_TRUE(parse_est_path("/.well-known/est/" + longest + "/cacerts").ok());
  std::string too_long(65, 'a');
  EXPECT_FALSE(is_valid_est_label(too_long));
  expect_error(parse_est_path("/.well-known/est/" + too_long + "/cacerts"), ErrorCode::not_found, "invalid label",
               "65 chars");
  EXPECT_TRUE(is_valid_est_label("Lab_1.x-Y9"));
  EXPECT_TRUE(is_valid_est_label(".hidden"));
  for (std::string_view label : {"", ".", "..", "a..b", "a b", "lab@1", "lab\xc3\xa9", "la:b", "a+b", "a\tb"}) {
    EXPECT_FALSE(is_valid_est_label(label)) << "'" << label << "'";
  }
  expect_error(parse_est_path("/.well-known/est/lab@1/cacerts"), ErrorCode::not_found, "invalid label 'lab@1'",
               "lab@1");
}

TEST(EstPath, ErrorMessagesDoNotCarryControlCharacters) {
  auto result = parse_est_path("/.well-known/est/a\r\nSet-Cookie: x");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message.find_first_of("\r\n"), std::string::npos) << result.error().message;
  EXPECT_NE(result.error().message.find("\\x0d\\x0a"), std::string::npos) << result.error().message;
}

TEST(EstPath, TargetLengthIsLimited) {
  std::string target = "/.well-known/est/cacerts?" + std::string(2048, 'q');
  expect_error(parse_est_path(target), ErrorCode::limit_exceeded, "over the limit of 2048", "long query");
  EstCodecLimits small;
  small.max_target_length = 20;
  expect_error(parse_est_path("/.well-known/est/cacerts", small), ErrorCode::limit_exceeded, "limit of 20", "small");
  small.max_target_length = 24;  // exactly the length
  EXPECT_TRUE(parse_est_path("/.well-known/est/cacerts", small).ok());
}

// ---- Media types ------------------------------------------------------------------------------

// 7030-3.2.4-b: the catalog's two variants.
TEST(EstMediaType, CatalogVariants) {
  auto certs = MediaType::parse("Application/PKCS7-MIME; smime-type=\"certs-only\"");
  ASSERT_TRUE(certs.ok()) << certs.error().message;
  EXPECT_EQ(certs->type, "application");
  EXPECT_EQ(certs->subtype, "pkcs7-mime");
  EXPECT_EQ(certs->param("smime-type"), "certs-only");
  EXPECT_TRUE(media_type_matches(*certs, media_types::certs_only));
  EXPECT_FALSE(media_type_matches(*certs, media_types::cmc_response));

  auto multipart = MediaType::parse("multipart/mixed ; boundary=x");
  ASSERT_TRUE(multipart.ok()) << multipart.error().message;
  EXPECT_TRUE(multipart->same_type("multipart/mixed"));
  EXPECT_EQ(multipart->param("boundary"), "x");
}

TEST(EstMediaType, WhitespaceAndEmptyParameters) {
  for (std::string_view text : {"application/pkcs7-mime;smime-type=certs-only",
                                "  application/pkcs7-mime  ;  smime-type = certs-only  ",
                                "application/pkcs7-mime;\tsmime-type=\tcerts-only\t",
                                "application/pkcs7-mime;; smime-type=certs-only;", "application/pkcs7-mime ;;;smime-type=CERTS-ONLY"}) {
    auto parsed = MediaType::parse(text);
    ASSERT_TRUE(parsed.ok()) << "'" << text << "': " << parsed.error().message;
    EXPECT_EQ(parsed->params.size(), 1u) << text;
    EXPECT_TRUE(media_type_matches(*parsed, media_types::certs_only)) << text;
  }
}

TEST(EstMediaType, QuotedValuesWithEscapes) {
  auto parsed = MediaType::parse(R"(text/plain; title="a \"b\" \\c; d=e"; x="")");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->param("title"), R"(a "b" \c; d=e)");
  EXPECT_EQ(parsed->param("x"), "");
  EXPECT_FALSE(parsed->param("d").has_value());  // inside the quotes, not a parameter
  // to_string re-quotes what is not a token, and the result parses to the same value.
  EXPECT_EQ(parsed->to_string(), R"(text/plain; title="a \"b\" \\c; d=e"; x="")");
  auto again = MediaType::parse(parsed->to_string());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->params, parsed->params);
}

TEST(EstMediaType, NamesAreCaseInsensitiveValuesKept) {
  auto parsed = MediaType::parse("Multipart/Mixed; BOUNDARY=AbC");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->type, "multipart");
  EXPECT_EQ(parsed->subtype, "mixed");
  EXPECT_EQ(parsed->param("boundary"), "AbC");
  EXPECT_EQ(parsed->param("Boundary"), "AbC");
  EXPECT_TRUE(parsed->same_type("MULTIPART/mixed"));
  EXPECT_FALSE(parsed->same_type("multipart/form-data"));
  EXPECT_FALSE(parsed->same_type("multipart"));
  EXPECT_EQ(parsed->to_string(), "multipart/mixed; boundary=AbC");
}

TEST(EstMediaType, UnquotedBoundaryWithNonTokenCharacters) {
  auto parsed = MediaType::parse("multipart/mixed; boundary=----=_Part_0_1.2");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->param("boundary"), "----=_Part_0_1.2");
  EXPECT_EQ(parsed->to_string(), "multipart/mixed; boundary=\"----=_Part_0_1.2\"");
}

TEST(EstMediaType, MalformedIsRefused) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"", "expected a type"},
      {"application", "expected '/'"},
      {"application/", "expected a subtype"},
      {"/pkcs10", "expected a type"},
      {"app lication/pkcs10", "expected '/'"},
      {"application/pkcs10 x", "expected ';'"},
      {"application/pkcs10, text/plain", "expected ';'"},
      {"application/pkcs10; =x", "expected a parameter name"},
      {"application/pkcs10; a", "expected '='"},
      {"application/pkcs10; a=", "expected a parameter value"},
      {"application/pkcs10; a=b c", "expected ';'"},
      {"a/b; c=\"unterminated", "is not closed"},
      {"a/b; c=\"ends in backslash\\", "is not closed"},
      {"a/b; c=\"bell\x07\"", "quoted-string character"},
      {"a/b; c=1; C=2", "parameter 'c' appears twice"},
  };
  for (auto [text, message] : cases) {
    expect_error(MediaType::parse(text), ErrorCode::invalid_input, message, text);
  }
}

TEST(EstMediaType, LimitsApply) {
  std::string long_value = "text/plain; x=" + std::string(1100, 'a');
  expect_error(MediaType::parse(long_value), ErrorCode::limit_exceeded, "over the limit of 1024", "long");
  std::string many = "text/plain";
  for (int i = 0; i < 17; ++i) many += "; p" + std::to_string(i) + "=v";
  expect_error(MediaType::parse(many), ErrorCode::limit_exceeded, "more than 16 parameters", "17 params");
  EstCodecLimits limits;
  limits.max_media_type_parameters = 17;
  EXPECT_TRUE(MediaType::parse(many, limits).ok());
}

TEST(EstMediaType, MatchesComparesParametersByKind) {
  auto with = [](std::string_view text) { return MediaType::parse(text).value(); };
  // No smime-type at all does not satisfy an expectation that names one.
  EXPECT_FALSE(media_type_matches(with("application/pkcs7-mime"), media_types::certs_only));
  EXPECT_TRUE(media_type_matches(with("application/pkcs7-mime"), media_types::pkcs7_mime));
  EXPECT_TRUE(media_type_matches(with("application/pkcs7-mime; smime-type=certs-only; name=x.p7c"),
                                 media_types::certs_only));
  EXPECT_TRUE(media_type_matches(with("application/pkcs7-mime; smime-type=cmc-REQUEST"), media_types::cmc_request));
  EXPECT_FALSE(media_type_matches(with("application/pkcs7-mime; smime-type=CMC-request"), media_types::cmc_response));
  EXPECT_FALSE(media_type_matches(with("application/octet-stream"), media_types::pkcs10));
  EXPECT_FALSE(media_type_matches(with("application/pkcs10"), media_types::pkcs8));
  // Boundaries are case-sensitive.
  EXPECT_FALSE(media_type_matches(with("multipart/mixed; boundary=ABC"), "multipart/mixed; boundary=abc"));
  EXPECT_TRUE(media_type_matches(with("multipart/mixed; boundary=abc"), "multipart/mixed; boundary=\"abc\""));
  EXPECT_FALSE(media_type_matches(with("application/pkcs10"), "not a media type"));
}

// Catalog known problem 10 and 7030-4.3.2-a: what a client takes as a success Content-Type.
TEST(EstMediaType, AcceptableResponseTypes) {
  auto with = [](std::string_view text) { return MediaType::parse(text).value(); };
  EXPECT_TRUE(is_acceptable_response_type(EstOperation::cacerts, with("application/pkcs7-mime")));
  EXPECT_TRUE(is_acceptable_response_type(EstOperation::cacerts, with("Application/PKCS7-MIME; smime-type=\"Certs-Only\"")));
  EXPECT_FALSE(is_acceptable_response_type(EstOperation::cacerts, with("application/pkcs7-mime; smime-type=CMC-response")));
  EXPECT_FALSE(is_acceptable_response_type(EstOperation::simpleenroll, with("text/plain")));
  EXPECT_FALSE(is_acceptable_response_type(EstOperation::simpleenroll, with("application/pkcs7")));
  EXPECT_TRUE(is_acceptable_response_type(EstOperation::fullcmc, with("application/pkcs7-mime; smime-type=CMC-response")));
  EXPECT_TRUE(is_acceptable_response_type(EstOperation::fullcmc, with("application/pkcs7-mime; smime-type=certs-only")));
  EXPECT_FALSE(is_acceptable_response_type(EstOperation::fullcmc, with("application/pkcs7-mime; smime-type=CMC-request")));
  EXPECT_TRUE(is_acceptable_response_type(EstOperation::csrattrs, with("application/csrattrs")));
  EXPECT_FALSE(is_acceptable_response_type(EstOperation::csrattrs, with("application/pkcs7-mime")));
  EXPECT_TRUE(is_acceptable_response_type(EstOperation::serverkeygen, with("multipart/mixed ; boundary=estServerExampleBoundary")));
  EXPECT_FALSE(is_acceptable_response_type(EstOperation::serverkeygen, with("multipart/mixed")));
}

// ---- Bodies -----------------------------------------------------------------------------------

// 8951-3.1-a: one line, 64 with CRLF, 76 with LF, embedded spaces and tabs all decode alike.
TEST(EstBody, EveryWrappingDecodesToTheSameDer) {
  Bytes der = read_data("leaf.cert.der");
  std::string flat = base64_encode(der);
  std::string wrapped76 = base64_encode(der, LineBreaks::every64_lf);
  std::string spaced;
  for (std::size_t i = 0; i < flat.size(); ++i) spaced += std::string(1, flat[i]) + (i % 7 == 0 ? " \t" : "");
  for (const std::string& body : {flat, encode_est_body(der), wrapped76, replace_all(wrapped76, "\n", "\r\n"),
                                  spaced, "\r\n" + flat + "\r\n\r\n"}) {
    auto decoded = decode_est_body(body, std::nullopt);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    EXPECT_EQ(*decoded, der);
  }
}

// 8951-3.1-b: a single line of more than 4000 characters (breaks BIO-based decoders).
TEST(EstBody, LongSingleLine) {
  Bytes der = random_bytes(3500, 7);
  der[0] = 0x30;
  std::string body = base64_encode(der);
  ASSERT_GT(body.size(), 4000u);
  ASSERT_EQ(body.find('\n'), std::string::npos);
  auto decoded = decode_est_body(body, std::nullopt);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(*decoded, der);
}

// 8951-3-a: any Content-Transfer-Encoding value is ignored by default.
TEST(EstBody, TransferEncodingIgnoredByDefault) {
  Bytes der = read_data("leaf.cert.der");
  std::string body = encode_est_body(der);
  for (std::optional<std::string_view> cte : {std::optional<std::string_view>(), std::optional<std::string_view>("base64"),
                                              std::optional<std::string_view>("BASE64"), std::optional<std::string_view>(" Base64 "),
                                              std::optional<std::string_view>("binary"), std::optional<std::string_view>("7bit"),
                                              std::optional<std::string_view>("")}) {
    auto decoded = decode_est_body(body, cte);
    ASSERT_TRUE(decoded.ok()) << (cte ? *cte : "(none)") << ": " << decoded.error().message;
    EXPECT_EQ(*decoded, der);
  }
  // Ignoring means ignoring: raw DER with "CTE: binary" is still not base64.
  expect_error(decode_est_body(as_chars(der), "binary"), ErrorCode::invalid_input, "looks like binary DER", "raw DER");
}

TEST(EstBody, RequireBase64NamesTheOffendingEncoding) {
  std::string body = encode_est_body(read_data("leaf.cert.der"));
  auto binary = decode_est_body(body, "binary", TransferEncodingRule::require_base64);
  expect_error(binary, ErrorCode::invalid_input, "Content-Transfer-Encoding 'binary' is not base64", "binary");
  expect_error(decode_est_body(body, "7bit", TransferEncodingRule::require_base64), ErrorCode::invalid_input, "'7bit'",
               "7bit");
  EXPECT_TRUE(decode_est_body(body, "Base64", TransferEncodingRule::require_base64).ok());
  EXPECT_TRUE(decode_est_body(body, std::nullopt, TransferEncodingRule::require_base64).ok());
}

TEST(EstBody, AcceptBinaryDerOnlyWithBinaryAndWholeDer) {
  Bytes der = read_data("leaf.cert.der");
  std::string raw(as_chars(der));
  auto taken = decode_est_body(raw, "Binary", TransferEncodingRule::accept_binary_der);
  ASSERT_TRUE(taken.ok()) << taken.error().message;
  EXPECT_EQ(*taken, der);
  // Without the header, or truncated, it is decoded as base64 and fails.
  EXPECT_FALSE(decode_est_body(raw, std::nullopt, TransferEncodingRule::accept_binary_der).ok());
  EXPECT_FALSE(decode_est_body(raw.substr(0, raw.size() - 1), "binary", TransferEncodingRule::accept_binary_der).ok());
  // A base64 body with "CTE: binary" is still a base64 body.
  auto base64_body = decode_est_body(encode_est_body(der), "binary", TransferEncodingRule::accept_binary_der);
  ASSERT_TRUE(base64_body.ok());
  EXPECT_EQ(*base64_body, der);
}

TEST(EstBody, ErrorsSayWhatIsWrong) {
  auto star = decode_est_body("MIIBCgKCAQEAwIDAQ*AB", std::nullopt);
  ASSERT_FALSE(star.ok());
  EXPECT_EQ(star.error().code, ErrorCode::invalid_input);
  EXPECT_EQ(star.error().message, "body is not base64: invalid character '*' at offset 17");

  expect_error(decode_est_body("MIIBC", std::nullopt), ErrorCode::invalid_input, "ends inside a 4-character group",
               "truncated");
  expect_error(decode_est_body("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", std::nullopt),
               ErrorCode::invalid_input, "the body is PEM", "PEM");
  expect_error(decode_est_body("", std::nullopt), ErrorCode::invalid_input, "body is empty", "empty");
  expect_error(decode_est_body(" \r\n\t", std::nullopt), ErrorCode::invalid_input, "body is empty", "whitespace");
  expect_error(decode_est_body("TUlJ-_", std::nullopt), ErrorCode::invalid_input, "invalid character '-'", "url-safe");

  EstCodecLimits limits;
  limits.max_body_length = 8;
  EXPECT_TRUE(decode_est_body("TUlJQkNn", std::nullopt, TransferEncodingRule::ignore, limits).ok()) << "at the limit";
  expect_error(decode_est_body("TUlJQkNnTQ==", std::nullopt, TransferEncodingRule::ignore, limits),
               ErrorCode::limit_exceeded, "body of 12 bytes is over the limit of 8", "12 bytes");
}

TEST(EstBody, EncodeWrapsAt64WithCrlf) {
  EXPECT_EQ(encode_est_body({}), "");
  Bytes exactly_one_line(48, 0xab);
  std::string one = encode_est_body(exactly_one_line);
  EXPECT_EQ(one.size(), 66u);
  EXPECT_EQ(one.substr(64), "\r\n");
  std::string two = encode_est_body(Bytes(49, 0xab));
  EXPECT_EQ(two.find("\r\n"), 64u);
  EXPECT_EQ(two.substr(66), "qw==\r\n");

  Bytes der = read_data("leaf.cert.der");
  std::string body = encode_est_body(der);
  std::size_t start = 0;
  while (start < body.size()) {
    std::size_t end = body.find("\r\n", start);
    ASSERT_NE(end, std::string::npos) << "last line has no CRLF";
    EXPECT_LE(end - start, 64u);
    if (end + 2 < body.size()) {
      EXPECT_EQ(end - start, 64u) << "only the last line is short";
    }
    EXPECT_EQ(body.substr(start, end - start).find('\n'), std::string::npos) << "bare LF";
    start = end + 2;
  }
  EXPECT_EQ(decode_est_body(body, std::nullopt).value(), der);
}

// ---- multipart/mixed --------------------------------------------------------------------------

// RFC 7030 Appendix A.4's /serverkeygen response, as printed (LF line ends, page break removed),
// with its preamble and epilogue. Content-Type: "multipart/mixed ; boundary=estServerExampleBoundary".
constexpr std::string_view rfc7030_a4_response = R"(This is the preamble.  It is to be ignored, though it
is a handy place for estServer to include an explanatory note,
including contact or support information.
--estServerExampleBoundary
Content-Type: application/pkcs8
Content-Transfer-Encoding: base64

MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDPwKtwJ7TjMgA+
Poj64V909ryql0foP1hU4Yq5y8/bOP5ZTe6ArgVhUye099Ac+dfdwpyP/DESiujU
F/dS62Vck3UWNbnw+4O38FUp0enLbbjSTud48KpEW6+FzkeuAanPGZMA1wKyrYy9
rD5tQOOJU/CBVhUrITyYLZNYUe4agbpcR0wMtrRr2E58Mu8wQ80ryk6nkL7COk5Z
IQdNRxldk7DFvpA85Yn1stumoGRtVLW51iXeTS1LtXwhuUb/j6Lds3vvAiJ2SiZ0
Y3rxPlnJVyFmR8Mf2TBOjzuFqva/VLD2ayQjgaGEjq2ZWHXelQAOZ6N3lrChojEK
FGq93yOhAgMBAAECggEBALQ5az/nYjd5x9Y3f7NMUffwl+jRRfMHCMTRx/u4AEAo
KBYm0hFVZZtxfM+z7xlD8G0Th6gs2hFA6gwcIlUPmiX+UaOLxht0xWaLGgYmcNAm
BiCDjLBQ7xRQCWtlcK9WCA5+HBWtcEy6244rXxh+IyWd6NT6bXC165AEcX87y/e3
JFJ7XFNeDP656s2DmxSCci+iDte6SaEm7sJvYGu16qevJeMThcQcC9/rJjXkvpGL
IKK2px5idad4Pb6+QHpqj3d4oM8djO6wYUvrH8XQLqAaF8Hd5lFWVU57nSYY+H79
GaNDTfRTUL6AXr7kmMsKVFOJ0JjZExUCVMZtGiqhB6UCgYEA639OtdWLZCzyZFMe
p7VlRddoz0VAtrU2dxnEb4cWD8Gerg8uNvp8OG84gH+6MbPwz4ZYWKCgDFqyrAlw
SF02n9Sovh93eoJ5latSbfeYUkLtB8L/HVk5/CBGEsV9MUkdMF0+B43YlhyEDyKW
fX2+0UeHLFgRrfpSzP2cXduEieMCgYEA4db/SIrwN2+g1Gjo3oE09kd89VGjVRer
srbcqc7DcPXP6Lw42sx96h4jVWWqHVo3DfwFBdUb1LH2cnVXQjgDUHdNdpl01cf/
BFYCFINi2qKMqiJYswkhYxZ1BLz/zuQTDbPFL2PgLniKFG2aFLrTS3S/tgeB5QwI
RPigH3kfI6sCgYAPqsCJyFMlrvfRRNZdQewi4VnPsEPF4/hjpAs1gD8vfSoZWlkw
vylUd9HCerzgYaA7rixieQ0sxTvtxhL6PXlM2NEBFQbV16hPFL6/IiG4F0u9oHNo
eG8rHtqKlSjnBn4yoYFm70Dhe7QtbZelcaAoPCH6CUHj2St5B8ZHWDtREQKBgHNp
wER+XIy4C2UByCANv9csaXulIOdXlXNbaCGPfOm5dWrm5ddLMf33MO9vaSRe+ku3
Q4nbgsGLwPp1ZQZ+QZNZpMi7W6306yp4GdAJ5Pb+oww/ST0VqW5OB7dILyK4A9S4
zkiNrf+Rsl8GM/vsDhc9rsuDwqofIAq/VHVBHNzJAoGBAOHQof5L6iGHOHcxLazx
4MGvRTpmzU/PX6Q3QxqpetEGFEDZAaL58L67SSS3fFBnKrVAidF6llC1bAH1aoRa
fYHUDi45xBoroy0hBwrnTKRxppua4UK75FUH5PPJfR6cCvw5stRkzIevTZHhozkX
pM7PYH/x4BiBmgQ3bhOqTp4H
--estServerExampleBoundary
Content-Type: application/pkcs7-mime; smime-type=certs-only
Content-Transfer-Encoding: base64

MIIDRQYJKoZIhvcNAQcCoIIDNjCCAzICAQExADALBgkqhkiG9w0BBwGgggMYMIID
FDCCAfygAwIBAgIBFjANBgkqhkiG9w0BAQUFADAbMRkwFwYDVQQDExBlc3RFeGFt
cGxlQ0EgTndOMB4XDTEzMDUwOTIzMjU1NloXDTE0MDUwOTIzMjU1NlowLDEqMCgG
A1UEAxMhc2VydmVyc2lkZSBrZXkgZ2VuZXJhdGVkIHJlc3BvbnNlMIIBIjANBgkq
hkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAz8CrcCe04zIAPj6I+uFfdPa8qpdH6D9Y
VOGKucvP2zj+WU3ugK4FYVMntPfQHPnX3cKcj/wxEoro1Bf3UutlXJN1FjW58PuD
t/BVKdHpy2240k7nePCqRFuvhc5HrgGpzxmTANcCsq2Mvaw+bUDjiVPwgVYVKyE8
mC2TWFHuGoG6XEdMDLa0a9hOfDLvMEPNK8pOp5C+wjpOWSEHTUcZXZOwxb6QPOWJ
9bLbpqBkbVS1udYl3k0tS7V8IblG/4+i3bN77wIidkomdGN68T5ZyVchZkfDH9kw
To87har2v1Sw9mskI4GhhI6tmVh13pUADmejd5awoaIxChRqvd8joQIDAQABo1Iw
UDAOBgNVHQ8BAf8EBAMCBLAwHQYDVR0OBBYEFKeZixu9F+appDX2SS5HaxmV6Jr4
MB8GA1UdIwQYMBaAFLHEaeZbowSn2Jejizu/uWqyMkI8MA0GCSqGSIb3DQEBBQUA
A4IBAQBHhLmRAKrnTapqqBObDM9IQDQPuwW+fW1gYwZKlSm/IWIwHEZL1igXhpjj
rf4xqpIkiJMmkaOeoXA8PFniX0/lZM9FQSM/j89CUf5dMoAqWj8s17xuXu9L/hVe
XjjXHsL40WuDG6tMPN9vcT8tE3ruor608MKSHFX/NEM6+AaNVSUPTmB33BgYB1Wa
E7pn3JMN6pjIxsHnF4pKi8qvoTSVVjaCEwUe8Q/fw1yvjoHoYJtyMn4v5Kb3Rt+m
s8Yie1tcfVQrjQutqr34/IJsKdPziZwi92KZa+1958A6M9O/p5OI0up9ZXKg2DEC
1O9qT0GyYJ6sxAyKiGTOxk6jMddDoQAxAA==
--estServerExampleBoundary--
This is the epilogue.  It is also to be ignored.
)";

// 7030-4.4.2-a, 7030-4.4.2-b: two parts, preamble and epilogue ignored, key matches the certificate.
TEST(EstMultipart, Rfc7030AppendixA4) {
  auto content_type = MediaType::parse("multipart/mixed ; boundary=estServerExampleBoundary");
  ASSERT_TRUE(content_type.ok());
  auto boundary = multipart_boundary(*content_type);
  ASSERT_TRUE(boundary.ok()) << boundary.error().message;
  EXPECT_EQ(*boundary, "estServerExampleBoundary");

  std::string crlf = replace_all(std::string(rfc7030_a4_response), "\n", "\r\n");
  for (std::string_view text : {rfc7030_a4_response, std::string_view(crlf)}) {
    auto parts = parse_multipart(text, *boundary);
    ASSERT_TRUE(parts.ok()) << parts.error().message;
    ASSERT_EQ(parts->size(), 2u);
    const MimePart& key_part = (*parts)[0];
    const MimePart& cert_part = (*parts)[1];
    EXPECT_EQ(key_part.header("content-type"), "application/pkcs8");
    EXPECT_EQ(key_part.header("Content-Transfer-Encoding"), "base64");
    EXPECT_EQ(cert_part.header("CONTENT-TYPE"), "application/pkcs7-mime; smime-type=certs-only");
    EXPECT_EQ(cert_part.headers.size(), 2u);
    EXPECT_EQ(key_part.body.find("preamble"), std::string::npos);
    EXPECT_EQ(cert_part.body.find("epilogue"), std::string::npos);
    EXPECT_EQ(cert_part.body.substr(cert_part.body.size() - 4), "AA==") << "delimiter's line break is not body";

    auto key_der = decode_est_body(key_part.body, key_part.header("Content-Transfer-Encoding"));
    ASSERT_TRUE(key_der.ok()) << key_der.error().message;
    EXPECT_EQ(key_der->size(), 1218u);
    auto key = PrivateKey::from_pkcs8_der(*key_der);
    ASSERT_TRUE(key.ok()) << key.error().message;

    auto certs_der = decode_est_body(cert_part.body, std::nullopt);
    ASSERT_TRUE(certs_der.ok()) << certs_der.error().message;
    auto certs = CertsOnly::from_der(*certs_der);
    ASSERT_TRUE(certs.ok()) << certs.error().message;
    ASSERT_EQ(certs->certificates().size(), 1u);
    EXPECT_EQ(certs->certificates()[0].subject().common_name(), "serverside key generated response");
    EXPECT_TRUE(certs->certificates()[0].public_key() == key->public_key());
  }
}

TEST(EstMultipart, MadeBodyHasTheRfcShapeAndRoundTrips) {
  Bytes key_der = random_bytes(300, 1);
  Bytes certs_der = random_bytes(500, 2);
  std::array<std::uint8_t, 16> random{};
  random[0] = 0xfe;
  std::string boundary = make_boundary(random);
  EXPECT_EQ(boundary, "estlab-fe000000000000000000000000000000");
  std::string text = make_multipart({make_est_part(media_types::pkcs8, key_der),
                                     make_est_part(media_types::certs_only, certs_der)},
                                    boundary);
  std::string head = "--" + boundary +
                     "\r\nContent-Type: application/pkcs8\r\nContent-Transfer-Encoding: base64\r\n\r\n";
  EXPECT_EQ(text.substr(0, head.size()), head);
  std::string tail = "\r\n--" + boundary + "--\r\n";
  ASSERT_GT(text.size(), tail.size());
  EXPECT_EQ(text.substr(text.size() - tail.size()), tail);
  EXPECT_EQ(text.find("\r\n\r\n--"), std::string::npos) << "no blank line before a delimiter";
  EXPECT_EQ(replace_all(text, "\r\n", "").find('\n'), std::string::npos) << "CRLF only";

  auto parts = parse_multipart(text, boundary);
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].header("Content-Type"), "application/pkcs8");
  EXPECT_EQ((*parts)[1].header("Content-Type"), "application/pkcs7-mime; smime-type=certs-only");
  EXPECT_EQ(decode_est_body((*parts)[0].body, std::nullopt).value(), key_der);
  EXPECT_EQ(decode_est_body((*parts)[1].body, std::nullopt).value(), certs_der);

  auto content_type = MediaType::parse(std::string(media_types::multipart_mixed) + "; boundary=" + boundary);
  ASSERT_TRUE(content_type.ok());
  EXPECT_EQ(multipart_boundary(*content_type).value(), boundary);
}

TEST(EstMultipart, BoundariesFromDifferentRandomnessDiffer) {
  std::array<std::uint8_t, 16> a{};
  std::array<std::uint8_t, 16> b{};
  b[15] = 1;
  EXPECT_NE(make_boundary(a), make_boundary(b));
  EXPECT_EQ(make_boundary(a).size(), 39u);
}

TEST(EstMultipart, TransportPaddingFoldedHeadersAndHeaderlessParts) {
  std::string text =
      "--b \t\r\n"
      "Content-Type: application/pkcs7-mime;\r\n"
      "\tsmime-type=certs-only\r\n"
      "\r\n"
      "QUJD\r\n"
      "--b\t\n"
      "\n"
      "no headers here\n"
      "--b--  trailing\n";
  auto parts = parse_multipart(text, "b");
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].header("Content-Type"), "application/pkcs7-mime; smime-type=certs-only");
  EXPECT_EQ((*parts)[0].body, "QUJD");
  EXPECT_TRUE((*parts)[1].headers.empty());
  EXPECT_EQ((*parts)[1].body, "no headers here");
}

TEST(EstMultipart, LinesThatOnlyStartWithTheBoundaryAreContent) {
  std::string text =
      "--b\r\n"
      "Content-Type: text/plain\r\n"
      "\r\n"
      "--bX is not a delimiter\r\n"
      " --b neither\r\n"
      "--b--\r\n";
  auto parts = parse_multipart(text, "b");
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].body, "--bX is not a delimiter\r\n --b neither");
}

TEST(EstMultipart, MalformedBodiesAreRefused) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"", "no delimiter line '--b'"},
      {"just a preamble\r\n", "no delimiter line '--b'"},
      {"--bb\r\nContent-Type: x\r\n\r\nA\r\n--bb--\r\n", "no delimiter line"},
      {"--b\r\nContent-Type: x\r\n\r\nQUJD\r\n", "without the close delimiter '--b--'"},
      {"--b\r\nContent-Type: x\r\n\r\nQUJD", "without the close delimiter"},
      {"--b", "without the close delimiter"},
      {"preamble\r\n--b--\r\n", "has no parts"},
      {"--b\r\nContent-Type: x\r\nQUJD\r\n--b--\r\n", "part 1 has no blank line"},
      {"--b\r\n\r\nA\r\n--b\r\nContent-Type: x\r\n--b--\r\n", "part 2 has no blank line"},
      {"--b\r\n--b--\r\n", "part 1 has no blank line"},
      {"--b\r\nNoColonHere\r\n\r\nA\r\n--b--\r\n", "malformed header line 'NoColonHere'"},
      {"--b\r\n: empty name\r\n\r\nA\r\n--b--\r\n", "malformed header line"},
      {"--b\r\nBad Name: x\r\n\r\nA\r\n--b--\r\n", "malformed header line"},
      {"--b\r\n folded first\r\n\r\nA\r\n--b--\r\n", "continuation line before any header"},
  };
  for (auto [text, message] : cases) {
    expect_error(parse_multipart(text, "b"), ErrorCode::invalid_input, message, text);
  }
}

TEST(EstMultipart, BoundaryRules) {
  std::string body = "--B\r\n\r\nx\r\n--B--\r\n";
  expect_error(parse_multipart(body, ""), ErrorCode::invalid_input, "boundary is empty", "empty");
  std::string seventy(70, 'B');
  std::string seventy_one(71, 'B');
  EXPECT_TRUE(parse_multipart(replace_all(body, "B", seventy), seventy).ok());
  expect_error(parse_multipart(replace_all(body, "B", seventy_one), seventy_one), ErrorCode::invalid_input,
               "71 characters; RFC 2046 allows at most 70", "71");
  expect_error(parse_multipart(body, "a@b"), ErrorCode::invalid_input, "has the character '@'", "@");
  expect_error(parse_multipart(body, "ab "), ErrorCode::invalid_input, "ends in a space", "space");
  EXPECT_TRUE(parse_multipart("--'()+_,-./:=? x\r\n\r\nq\r\n--'()+_,-./:=? x--", "'()+_,-./:=? x").ok());

  auto with = [](std::string_view text) { return MediaType::parse(text).value(); };
  expect_error(multipart_boundary(with("multipart/mixed")), ErrorCode::invalid_input, "without a boundary", "none");
  expect_error(multipart_boundary(with("multipart/related; boundary=x")), ErrorCode::invalid_input,
               "is not multipart/mixed", "related");
  expect_error(multipart_boundary(with("multipart/mixed; boundary=\"\"")), ErrorCode::invalid_input,
               "boundary is empty", "\"\"");
}

TEST(EstMultipart, LimitsApply) {
  auto parts_text = [](int count) {
    std::string text;
    for (int i = 0; i < count; ++i) text += "--b\r\nContent-Type: x\r\n\r\nQUJD\r\n";
    return text + "--b--\r\n";
  };
  auto sixteen = parse_multipart(parts_text(16), "b");
  ASSERT_TRUE(sixteen.ok()) << sixteen.error().message;
  EXPECT_EQ(sixteen->size(), 16u);
  expect_error(parse_multipart(parts_text(17), "b"), ErrorCode::limit_exceeded, "more than 16 parts", "17 parts");

  std::string long_header = "--b\r\nX-Long: " + std::string(1000, 'a') + "\r\n\r\nA\r\n--b--\r\n";
  expect_error(parse_multipart(long_header, "b"), ErrorCode::limit_exceeded, "header line of 1008 characters",
               "long header");

  std::string many_headers = "--b\r\n";
  for (int i = 0; i < 17; ++i) many_headers += "X-H" + std::to_string(i) + ": v\r\n";
  many_headers += "\r\nA\r\n--b--\r\n";
  expect_error(parse_multipart(many_headers, "b"), ErrorCode::limit_exceeded, "more than 16 header fields", "17 hdrs");

  EstCodecLimits limits;
  limits.max_body_length = 10;
  expect_error(parse_multipart(parts_text(1), "b", limits), ErrorCode::limit_exceeded, "over the limit of 10",
               "body limit");
}

// ---- Basic authentication ---------------------------------------------------------------------

// RFC 7617 2: the "Aladdin" example.
TEST(EstBasicAuth, Rfc7617Example) {
  auto credentials = parse_basic_authorization("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
  ASSERT_TRUE(credentials.has_value());
  EXPECT_EQ(credentials->user, "Aladdin");
  EXPECT_EQ(credentials->password, "open sesame");
  EXPECT_EQ(make_basic_authorization("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
}

// Evidence, reports and transcripts never print a password unless the user asks.
TEST(EstBasicAuth, PrintableHeaderValueHidesCredentials) {
  const std::string basic = make_basic_authorization("device-0001", "s3cret-pass");
  const std::string shown = printable_header_value("authorization", basic);
  EXPECT_EQ(shown, "Basic (redacted: user 'device-0001', password hidden)");
  EXPECT_EQ(shown.find("s3cret"), std::string::npos);
  EXPECT_EQ(shown.find(basic.substr(6)), std::string::npos) << "the base64 token carries the password";
  EXPECT_EQ(printable_header_value("Authorization", basic, /*show_secrets=*/true), basic);
  EXPECT_EQ(printable_header_value("Proxy-Authorization", "Bearer eyJhbGciOi.secret"), "Bearer (redacted)");
  EXPECT_EQ(printable_header_value("Authorization", "Basic not-base64!"), "Basic (redacted)");
  EXPECT_EQ(printable_header_value("Cookie", "session=abc"), "(redacted)");
  EXPECT_EQ(printable_header_value("Content-Type", "application/pkcs10"), "application/pkcs10");
}

// 7030-3.2.3-g: the user may be empty.
TEST(EstBasicAuth, EmptyUserAndColonInPassword) {
  EXPECT_EQ(make_basic_authorization("", "secret"), "Basic OnNlY3JldA==");
  auto empty_user = parse_basic_authorization("Basic OnNlY3JldA==");
  ASSERT_TRUE(empty_user.has_value());
  EXPECT_EQ(empty_user->user, "");
  EXPECT_EQ(empty_user->password, "secret");

  auto colon = parse_basic_authorization(make_basic_authorization("estuser", "p:a:ss"));
  ASSERT_TRUE(colon.has_value());
  EXPECT_EQ(colon->user, "estuser");
  EXPECT_EQ(colon->password, "p:a:ss");

  auto utf8 = parse_basic_authorization(make_basic_authorization("t\xc3\xa9st", ""));
  ASSERT_TRUE(utf8.has_value());
  EXPECT_EQ(utf8->user, "t\xc3\xa9st");
  EXPECT_EQ(utf8->password, "");
}

TEST(EstBasicAuth, SchemeCaseAndSpacing) {
  for (std::string_view value : {"basic ZXN0dXNlcjplc3Rwd2Q=", "BASIC ZXN0dXNlcjplc3Rwd2Q=",
                                 "Basic    ZXN0dXNlcjplc3Rwd2Q=", " \tBasic ZXN0dXNlcjplc3Rwd2Q= \t"}) {
    auto credentials = parse_basic_authorization(value);
    ASSERT_TRUE(credentials.has_value()) << "'" << value << "'";
    EXPECT_EQ(credentials->user, "estuser");
    EXPECT_EQ(credentials->password, "estpwd");
  }
}

TEST(EstBasicAuth, RefusesWhatIsNotBasicCredentials) {
  for (std::string_view value : {"", "Basic", "Basic ", "Bearer ZXN0dXNlcjplc3Rwd2Q=", "BasicZXN0dXNlcjplc3Rwd2Q=",
                                 "Basic\tZXN0dXNlcjplc3Rwd2Q=", "Basic ZXN0dXNl cjplc3Rwd2Q=", "Basic ZXN0dXNlcjplc3Rwd2Q",
                                 "Basic dXNlcg==" /* "user", no colon */, "Basic ***", "Digest username=\"x\"",
                                 "Basic dQE6cA==" /* "u\x01:p" */, "Basic ZXN0dXNlcjplc3Rwd2Q=, Basic eDp5"}) {
    EXPECT_FALSE(parse_basic_authorization(value).has_value()) << "'" << value << "'";
  }
  std::string huge = "Basic " + base64_encode(as_bytes("u:" + std::string(4000, 'p')));
  EXPECT_FALSE(parse_basic_authorization(huge).has_value());
  EstCodecLimits limits;
  limits.max_authorization_length = 8192;
  EXPECT_TRUE(parse_basic_authorization(huge, limits).has_value());
}

TEST(EstBasicAuth, ChallengeQuotesTheRealm) {
  EXPECT_EQ(make_basic_challenge("estlab"), "Basic realm=\"estlab\"");
  EXPECT_EQ(make_basic_challenge("a \"b\" \\c"), R"(Basic realm="a \"b\" \\c")");
  std::string injected = make_basic_challenge("x\r\nSet-Cookie: y");
  EXPECT_EQ(injected.find_first_of("\r\n"), std::string::npos);
  EXPECT_EQ(injected, "Basic realm=\"xSet-Cookie: y\"");
}

// ---- Retry-After and HTTP dates ---------------------------------------------------------------

const TimePoint rfc_example_time = from_unix(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT

TEST(EstRetryAfter, DeltaSeconds) {
  TimePoint now = from_unix(1700000000);
  EXPECT_EQ(parse_retry_after("120", now).value(), 120s);
  EXPECT_EQ(parse_retry_after(" 5 ", now).value(), 5s);
  EXPECT_EQ(parse_retry_after("0", now).value(), 0s);
  EXPECT_EQ(parse_retry_after("007", now).value(), 7s);
  EXPECT_EQ(parse_retry_after("2147483647", now).value(), Seconds(2147483647));
  EXPECT_EQ(parse_retry_after("99999999999999999999999999", now).value(), max_retry_after);
}

TEST(EstRetryAfter, RefusesWhatIsNeither) {
  TimePoint now = from_unix(1700000000);
  for (std::string_view value : {"", "  ", "-5", "+5", "5s", "1.5", "0x10", "5 6", "soon", "Sun, 06 Nov 1994",
                                 "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Nov 1994 08:49:37 GMT x"}) {
    auto result = parse_retry_after(value, now);
    EXPECT_FALSE(result.ok()) << "'" << value << "'";
    if (!result.ok()) {
      EXPECT_EQ(result.error().code, ErrorCode::invalid_input);
    }
  }
}

// 7030-4.2.3-d and 9148-5-e: an HTTP-date becomes seconds from now, rounded up; the past is 0.
TEST(EstRetryAfter, HttpDateBecomesSecondsFromNow) {
  TimePoint now = rfc_example_time - 37s;
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now).value(), 37s);
  EXPECT_EQ(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now).value(), 37s);
  EXPECT_EQ(parse_retry_after("Sun Nov  6 08:49:37 1994", now).value(), 37s);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", rfc_example_time - 1500ms).value(), 2s);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", rfc_example_time).value(), 0s);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", rfc_example_time + 24h).value(), 0s);
  // Dates beyond what TimePoint holds (years 1678 to 2262) still give an answer.
  EXPECT_EQ(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", rfc_example_time).value(), max_retry_after);
  EXPECT_EQ(parse_retry_after("Mon, 01 Jan 0001 00:00:00 GMT", rfc_example_time).value(), 0s);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 2094 08:49:37 GMT", rfc_example_time).value(),
            max_retry_after) << "100 years is over the 2^31 s ceiling";
}

TEST(EstHttpDate, ThreeFormsOfRfc9110) {
  TimePoint now = from_unix(1700000000);
  for (std::string_view text : {"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                                "Sun Nov  6 08:49:37 1994"}) {
    auto parsed = parse_http_date(text, now);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.error().message;
    EXPECT_EQ(*parsed, rfc_example_time) << text;
  }
  EXPECT_EQ(parse_http_date("Thu Feb 29 23:59:59 2024", now).value(), from_unix(1709251199));
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 23:59:60 GMT", now).value(),
            from_unix(784111777) + (23h - 8h) + (59min - 49min) + (60s - 37s));
}

// RFC 9110 5.6.7: a two-digit year more than 50 years ahead is in the past century.
TEST(EstHttpDate, TwoDigitYears) {
  TimePoint in_2024 = from_unix(1709251199);
  EXPECT_EQ(parse_http_date("Tuesday, 01-Jan-30 00:00:00 GMT", in_2024).value(), from_unix(1893456000));  // 2030
  EXPECT_EQ(parse_http_date("Wednesday, 01-Jan-75 00:00:00 GMT", in_2024).value(), from_unix(157766400));  // 1975
  EXPECT_EQ(parse_http_date("Monday, 01-Jan-74 00:00:00 GMT", in_2024).value(), from_unix(3281990400));  // 2074
}

TEST(EstHttpDate, YearsOutsideTheClockRangeAreErrorsNotOverflow) {
  TimePoint now = from_unix(1700000000);
  expect_error(parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT", now), ErrorCode::invalid_input,
               "outside the range", "9999");
  expect_error(parse_http_date("Mon, 01 Jan 0001 00:00:00 GMT", now), ErrorCode::invalid_input, "outside the range",
               "0001");
  EXPECT_TRUE(parse_http_date("Tue, 01 Jan 2262 00:00:00 GMT", now).ok());
}

TEST(EstHttpDate, RefusesInvalidDates) {
  TimePoint now = from_unix(1700000000);
  for (std::string_view text : {"Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 29 Feb 1900 08:49:37 GMT",
                                "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT",
                                "Sun, 06 Nov 1994 08:49:61 GMT", "Sun, 00 Nov 1994 08:49:37 GMT",
                                "sun, 06 Nov 1994 08:49:37 GMT", "Sun, 06 nov 1994 08:49:37 GMT",
                                "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 94 08:49:37 GMT",
                                "Sun, 06 Nov 1994 8:49:37 GMT", "Sun,06 Nov 1994 08:49:37 GMT",
                                "Sun, 06 Nov 1994 08:49:37 gmt", "Sunday, 06 Nov 1994 08:49:37 GMT",
                                "Sun, 06-Nov-94 08:49:37 GMT", "Sun Nov 6 08:49:37 1994", "Xyz, 06 Nov 1994 08:49:37 GMT",
                                ""}) {
    auto parsed = parse_http_date(text, now);
    EXPECT_FALSE(parsed.ok()) << "'" << text << "'";
  }
}

TEST(EstHttpDate, FormatIsImfFixdate) {
  EXPECT_EQ(format_http_date(rfc_example_time), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(format_http_date(from_unix(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(format_http_date(from_unix(1709251199) + 999ms), "Thu, 29 Feb 2024 23:59:59 GMT");
  std::mt19937 rng(3);
  for (int i = 0; i < 200; ++i) {
    TimePoint t = from_unix(static_cast<long long>(rng() % 4102444800u));  // up to 2100
    auto back = parse_http_date(format_http_date(t), t);
    ASSERT_TRUE(back.ok()) << format_http_date(t);
    EXPECT_EQ(*back, t) << format_http_date(t);
  }
}

}  // namespace
}  // namespace estlab
