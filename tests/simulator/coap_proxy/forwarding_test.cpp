// The proxy's translation without sockets: local checks (RFC 9148 4.3), the upstream request
// (PG-COAP-2, 9148-5-d) and the HTTP -> CoAP mapping (9148-5-e, -g), plus multipart-core.
#include "estlab/coap_proxy/forwarding.hpp"

#include <gtest/gtest.h>

#include "estlab/core/base64.hpp"
#include "estlab/gateway/service.hpp"
#include "lab_support.hpp"

namespace estlab::coap_proxy {
namespace {

HttpResponse http(int status, std::string body = "", HttpHeaders headers = {}) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  response.headers = std::move(headers);
  return response;
}

const TimePoint kNow = std::chrono::system_clock::from_time_t(1700000000);

TEST(CoapForwarding, StatusCodesMapAsRfc9148Says) {
  const ForwardingLimits limits;
  struct Case {
    int status;
    std::string code;
  } cases[] = {{204, "4.04"}, {400, "4.00"}, {401, "4.01"}, {403, "4.03"}, {404, "4.04"}, {405, "4.05"},
               {413, "4.13"}, {415, "4.15"}, {418, "4.00"}, {500, "5.00"}, {501, "5.01"}, {502, "5.02"},
               {503, "5.03"}, {504, "5.04"}, {302, "5.02"}};
  for (const auto& c : cases) {
    auto answer = to_coap_answer(EstOperation::simpleenroll, http(c.status, "why"), kNow, limits);
    EXPECT_EQ(answer.code.to_string(), c.code) << c.status;
    EXPECT_FALSE(answer.content_format) << c.status;
  }
}

TEST(CoapForwarding, Accepted202WithRetryAfterBecomes503WithMaxAge) {
  ForwardingLimits limits;
  auto answer = to_coap_answer(EstOperation::simpleenroll, http(202, "", {{"Retry-After", "37"}}), kNow, limits);
  EXPECT_EQ(answer.code.to_string(), "5.03");
  EXPECT_EQ(answer.max_age, 37u);
  auto dated = to_coap_answer(EstOperation::simpleenroll,
                              http(202, "", {{"Retry-After", format_http_date(kNow + std::chrono::seconds(90))}}), kNow, limits);
  EXPECT_EQ(dated.max_age, 90u);
  limits.default_max_age = std::chrono::seconds(12);
  EXPECT_EQ(to_coap_answer(EstOperation::simpleenroll, http(202), kNow, limits).max_age, 12u);
}

TEST(CoapForwarding, SuccessBodyBecomesBinaryDerWithTheRightCode) {
  const Bytes der = {0x30, 0x03, 0x02, 0x01, 0x05};
  auto att = to_coap_answer(EstOperation::csrattrs, http(200, encode_est_body(der)), kNow, {});
  EXPECT_EQ(att.code.to_string(), "2.05");
  EXPECT_EQ(att.content_format, coap_formats::csrattrs);
  EXPECT_EQ(att.payload, der);
  // Not a certs-only: the proxy does not pass garbage on as 281.
  auto bad = to_coap_answer(EstOperation::simpleenroll, http(200, encode_est_body(der)), kNow, {});
  EXPECT_EQ(bad.code.to_string(), "5.02");
  auto empty = to_coap_answer(EstOperation::csrattrs, http(200, ""), kNow, {});
  EXPECT_EQ(empty.code.to_string(), "4.04");  // 9148-4.5-b
}

// RFC 8951's third "no attributes" answer, an empty SEQUENCE with 200, is "not available" too:
// 4.04, not 2.05 with 30 00 (which 9148-4.5-b rates a warning). Only for /att.
TEST(CoapForwarding, EmptyCsrAttrsIs404) {  // 9148-4.5-b
  const Bytes empty_sequence = {0x30, 0x00};
  auto none = to_coap_answer(EstOperation::csrattrs, http(200, encode_est_body(empty_sequence)), kNow, {});
  EXPECT_EQ(none.code.to_string(), "4.04");
  EXPECT_FALSE(none.content_format);
  const Bytes one = {0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x07};
  auto some = to_coap_answer(EstOperation::csrattrs, http(200, encode_est_body(one)), kNow, {});
  EXPECT_EQ(some.code.to_string(), "2.05");
  EXPECT_EQ(some.payload, one);
}

TEST(CoapForwarding, ServerkeygenMultipartBecomesMultipartCore) {
  const Bytes key = {0x30, 0x01, 0x00};
  const Bytes certs = {0x30, 0x02, 0x05, 0x00};
  const std::string body = make_multipart({make_est_part(media_types::pkcs8, key), make_est_part(media_types::certs_only, certs)}, "b0undary");
  // certs is not a real certs-only, but the serverkeygen path passes parts through by media type.
  auto answer = to_coap_answer(EstOperation::serverkeygen, http(200, body, {{"Content-Type", "multipart/mixed; boundary=b0undary"}}), kNow, {});
  ASSERT_EQ(answer.code.to_string(), "2.04") << std::string(answer.payload.begin(), answer.payload.end());
  EXPECT_EQ(answer.content_format, coap_formats::multipart_core);
  auto parts = decode_multipart_core(answer.payload);
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].content_format, coap_formats::pkcs8);
  EXPECT_EQ((*parts)[0].data, key);
  EXPECT_EQ((*parts)[1].content_format, coap_formats::certs_only);
  EXPECT_EQ((*parts)[1].data, certs);
}

TEST(CoapForwarding, MultipartCoreRejectsMalformedCbor) {
  EXPECT_FALSE(decode_multipart_core(Bytes{0xff}).ok());
  EXPECT_FALSE(decode_multipart_core(Bytes{0x81, 0x01}).ok());              // odd number of items
  EXPECT_FALSE(decode_multipart_core(Bytes{0x82, 0x41, 0x00, 0x41}).ok());  // truncated, CF not a uint
  auto encoded = encode_multipart_core({{284, {1, 2}}, {281, {3}}});
  EXPECT_EQ(encoded, (Bytes{0x84, 0x19, 0x01, 0x1c, 0x42, 0x01, 0x02, 0x19, 0x01, 0x19, 0x41, 0x03}));
}

TEST(CoapForwarding, LocalChecksBeforeForwarding) {
  test::TestLab lab;
  CoapExchange exchange;
  exchange.operation = EstOperation::simpleenroll;
  exchange.content_format = coap_formats::pkcs10;
  exchange.payload = {0x30, 0x00};
  EXPECT_EQ(check_request(exchange, {})->code.to_string(), "4.01");  // 9148-3-e: no device certificate
  exchange.device_chain.push_back(lab.certificate("device-factory"));
  EXPECT_FALSE(check_request(exchange, {}));
  exchange.content_format = coap_formats::csrattrs;
  EXPECT_EQ(check_request(exchange, {})->code.to_string(), "4.15");  // 9148-4.3-b
  exchange.content_format.reset();
  EXPECT_EQ(check_request(exchange, {})->code.to_string(), "4.15");
  exchange.content_format = coap_formats::pkcs10;
  const std::string base64 = "MIIBIjAN";
  exchange.payload.assign(base64.begin(), base64.end());
  EXPECT_EQ(check_request(exchange, {})->code.to_string(), "4.00");  // 9148-4.3-a: base64 is not DER
  ForwardingLimits small;
  small.max_request_body = 8;
  exchange.payload.assign(9, 0x30);
  EXPECT_EQ(check_request(exchange, small)->code.to_string(), "4.13");
  CoapExchange crts;
  crts.device_chain = exchange.device_chain;
  crts.accept = coap_formats::pkix_cert;
  EXPECT_EQ(check_request(crts, {})->code.to_string(), "4.06");  // 9148-4.3-c: 287 not offered
  crts.accept = coap_formats::certs_only;
  EXPECT_FALSE(check_request(crts, {}));
}

TEST(CoapForwarding, UpstreamRequestCarriesTheDeviceChainAndTheLongPath) {
  test::TestLab lab;
  CoapExchange exchange;
  exchange.operation = EstOperation::simplereenroll;
  exchange.label = "twin-a";
  exchange.content_format = coap_formats::pkcs10;
  exchange.payload = {0x30, 0x01, 0x00};
  exchange.device_chain = {lab.certificate("device-factory"), lab.certificate("issuing-ca")};
  auto request = to_http_request(exchange, "/.well-known/est", "localhost:8443");
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.target, "/.well-known/est/twin-a/simplereenroll");  // 9148-5-d
  EXPECT_EQ(request.header("Content-Type"), "application/pkcs10");      // 9148-5-f
  EXPECT_EQ(decode_est_body(request.body, std::nullopt).value(), exchange.payload);
  auto forwarded = request.header(kForwardedClientCertHeader);
  ASSERT_TRUE(forwarded);
  EXPECT_EQ(*forwarded, base64_encode(exchange.device_chain[0].der()) + "," + base64_encode(exchange.device_chain[1].der()));
}

TEST(CoapForwarding, UpstreamFailureIsA5xx) {
  EXPECT_EQ(upstream_failure(make_error(ErrorCode::timeout, "slow")).code.to_string(), "5.04");
  EXPECT_EQ(upstream_failure(make_error(ErrorCode::io, "refused")).code.to_string(), "5.02");
}

}  // namespace
}  // namespace estlab::coap_proxy
