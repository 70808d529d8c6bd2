// The bytes-to-request step the server and the gateway fuzzer share: the limits give the same
// refusals the server answers (413, 431, 400), and a request arrives whole, chunked or not.
#include <gtest/gtest.h>

#include "estlab/gateway/http_request.hpp"

namespace estlab::gateway {
namespace {

ClientContext client() {
  ClientContext c;
  c.remote = "192.0.2.7:4433";
  return c;
}

TEST(HttpRequestParse, ContentLengthAndChunkedBodiesArriveWhole) {
  const auto plain = parse_http_request(
      "POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/pkcs10\r\nContent-Length: 4\r\n\r\nMAA=",
      Limits{}, client());
  ASSERT_TRUE(plain.request.has_value()) << plain.refusal.reason;
  EXPECT_EQ(plain.request->method, "POST");
  EXPECT_EQ(plain.request->target, "/.well-known/est/simpleenroll");
  EXPECT_EQ(plain.request->body, "MAA=");
  EXPECT_EQ(plain.request->header("content-type"), "application/pkcs10");
  EXPECT_EQ(plain.request->client.remote, "192.0.2.7:4433");

  const auto chunked = parse_http_request(
      "POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nMA\r\n2\r\nA=\r\n0\r\n\r\n", Limits{}, client());
  ASSERT_TRUE(chunked.request.has_value()) << chunked.refusal.reason;
  EXPECT_EQ(chunked.request->body, "MAA=");
}

TEST(HttpRequestParse, LimitsAndGarbageGetTheServersRefusals) {
  Limits small;
  small.max_body_bytes = 8;
  small.max_header_bytes = 64;
  const auto big_body = parse_http_request("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n123456789", small, client());
  ASSERT_FALSE(big_body.request.has_value());
  EXPECT_EQ(big_body.refusal.status, 413);
  EXPECT_NE(big_body.refusal.reason.find("limit of 8 bytes"), std::string::npos) << big_body.refusal.reason;

  const auto big_header = parse_http_request("GET /x HTTP/1.1\r\nHost: x\r\nX-Long: " + std::string(100, 'a') + "\r\n\r\n", small, client());
  ASSERT_FALSE(big_header.request.has_value());
  EXPECT_EQ(big_header.refusal.status, 431);

  const auto garbage = parse_http_request("\x16\x03\x01\x02\x00 not http\r\n\r\n", Limits{}, client());
  ASSERT_FALSE(garbage.request.has_value());
  EXPECT_EQ(garbage.refusal.status, 400);
  EXPECT_NE(garbage.refusal.reason.find("malformed HTTP request"), std::string::npos) << garbage.refusal.reason;

  // Cut short: the body promised 10 bytes and 3 came.
  const auto truncated = parse_http_request("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", Limits{}, client());
  ASSERT_FALSE(truncated.request.has_value());
  EXPECT_EQ(truncated.refusal.status, 400);
}

}  // namespace
}  // namespace estlab::gateway
