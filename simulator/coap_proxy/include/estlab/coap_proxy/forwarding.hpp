// The proxy's translation between EST-coaps (RFC 9148) and EST over HTTPS (RFC 7030), as plain
// functions testable without sockets: local checks, the upstream request, and the mapping of the
// upstream answer to a CoAP code, Content-Format and binary body (RFC 9148 5: 9148-5-d..g).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "estlab/core/certificate.hpp"
#include "estlab/core/clock.hpp"
#include "estlab/core/coaps_client.hpp"
#include "estlab/core/est.hpp"
#include "estlab/core/https_client.hpp"

namespace estlab::coap_proxy {

// One request as the proxy received it, Block1 reassembled.
struct CoapExchange {
  EstOperation operation = EstOperation::cacerts;
  std::string label;
  std::optional<std::uint16_t> content_format;
  std::optional<std::uint16_t> accept;
  Bytes payload;
  std::vector<Certificate> device_chain;  // the DTLS client's chain, leaf first
};

// What the proxy answers.
struct CoapAnswer {
  CoapCode code;
  std::optional<std::uint16_t> content_format;
  std::optional<std::uint32_t> max_age;
  Bytes payload;           // binary body (success) or diagnostic text (errors, no Content-Format)
  std::string rule;        // the requirement that decided ("9148-4.3-b", "PG-COAP-2", "upstream 200")
  std::optional<int> upstream_status;
};

struct ForwardingLimits {
  std::size_t max_request_body = 64 * 1024;
  std::chrono::seconds default_max_age{60};
};

// RFC 9148 4.3 checks made before anything is forwarded: the Content-Format of a request body
// (4.15), a body that is not one DER element (4.00; a base64 body lands here), an unsatisfiable
// Accept (4.06), an over-long body (4.13), a client without a certificate (4.01). nullopt = forward.
std::optional<CoapAnswer> check_request(const CoapExchange& exchange, const ForwardingLimits& limits);

// The upstream request: the long path (with the label), the media type, the base64 body, and the
// device's chain in X-Estlab-Forwarded-Client-Cert (PG-COAP-2).
HttpRequest to_http_request(const CoapExchange& exchange, const std::string& base_path, const std::string& host_header);

// RFC 9148 4.5 / 5 (9148-5-e): 200 -> 2.05 (GET) or 2.04 (POST) with the body converted to DER
// (serverkeygen: multipart/mixed -> multipart-core); 202 + Retry-After -> 5.03 + Max-Age; 204/404
// -> 4.04; 400/401/403/405/406/413/415 -> the same 4.xx; 501/502/503/504 -> the same 5.xx, 503
// with Max-Age when Retry-After is given; any other 5xx -> 5.00; a success body the proxy cannot
// convert -> 5.02.
CoapAnswer to_coap_answer(EstOperation operation, const HttpResponse& response, TimePoint now,
                          const ForwardingLimits& limits);

// The upstream could not be reached or did not answer in time: 5.04 on timeout, else 5.02.
CoapAnswer upstream_failure(const Error& error);

}  // namespace estlab::coap_proxy
