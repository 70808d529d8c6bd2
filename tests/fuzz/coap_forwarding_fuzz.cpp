// libFuzzer target for the EST-coaps proxy's own message handling (RFC 9148 5), below libcoap's
// parser: a device's request as the proxy received it (operation, Content-Format, Accept, body)
// through its local checks into the upstream HTTP request, and an upstream HTTP answer (status,
// media type, Retry-After, body: the gateway's bytes, untrusted too) into the CoAP answer, as
// simulator/coap_proxy/src/proxy.cpp uses them. Byte 0 picks the direction and the operation.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "estlab/coap_proxy/forwarding.hpp"
#include "fuzz_support.hpp"

using namespace estlab;
using namespace estlab::coap_proxy;

namespace {

std::uint16_t u16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }

constexpr const char* kMediaTypes[] = {
    "application/pkcs7-mime; smime-type=certs-only", "application/pkcs7-mime", "application/csrattrs",
    "multipart/mixed; boundary=estlab", "multipart/mixed", "application/pkcs8", "application/pkcs7-mime; smime-type=server-generated-key",
    "text/plain", "application/pkcs7-mime; smime-type=CMC-response", "application/octet-stream"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 6) return 0;
  const std::uint8_t selector = data[0];
  const EstOperation operation = all_est_operations[(selector >> 1) % all_est_operations.size()];
  ForwardingLimits limits;
  limits.max_request_body = 4096;
  if ((selector & 1) == 0) {
    // Downstream: what a device sent.
    CoapExchange exchange;
    exchange.operation = operation;
    exchange.label = (selector & 0x40) ? "other" : "";
    if (data[1] & 1) exchange.content_format = u16(data + 2);
    if (data[1] & 2) exchange.accept = u16(data + 4);
    exchange.payload.assign(data + 6, data + size);
    // The device chain is what the DTLS layer verified; its absence is a case of its own (4.01).
    if (auto answer = check_request(exchange, limits)) {
      if (answer->code.code_class() < 4) throw std::logic_error("a local refusal with a success code");
      return 0;
    }
    const HttpRequest http = to_http_request(exchange, "/.well-known/est", "127.0.0.1:8443");
    if (http.target.rfind("/.well-known/est/", 0) != 0) throw std::logic_error("forwarded outside the EST root: " + http.target);
    return 0;
  }
  // Upstream: what the EST server answered.
  HttpResponse response;
  response.status = 100 + (data[1] % 5) * 100 + data[2] % 32;
  response.headers.emplace_back("Content-Type", kMediaTypes[data[3] % std::size(kMediaTypes)]);
  if (data[4] & 1) response.headers.emplace_back("Retry-After", std::to_string(u16(data + 4) >> 1));
  if (data[4] & 2) response.headers.emplace_back("Content-Transfer-Encoding", "base64");
  response.body.assign(reinterpret_cast<const char*>(data + 6), size - 6);
  const CoapAnswer answer = to_coap_answer(operation, response, std::chrono::system_clock::now(), limits);
  const int code_class = answer.code.code_class();
  if (code_class != 2 && code_class != 4 && code_class != 5) throw std::logic_error("answer class " + answer.code.to_string());
  if (code_class == 2 && response.status / 100 != 2) throw std::logic_error("a failure upstream became a success downstream");
  return 0;
}
