#include "estlab/coap_proxy/forwarding.hpp"

#include <algorithm>

#include "estlab/core/base64.hpp"
#include "estlab/core/certs_only.hpp"
#include "estlab/core/est.hpp"

namespace estlab::coap_proxy {
namespace {

constexpr std::size_t kMaxDiagnostic = 128;

CoapAnswer local(int code_class, int detail, std::string rule, std::string_view diagnostic) {
  CoapAnswer answer;
  answer.code = CoapCode::make(code_class, detail);
  answer.rule = std::move(rule);
  answer.payload.assign(diagnostic.begin(), diagnostic.end());
  return answer;
}

bool is_post(EstOperation operation) { return http_method(operation) == "POST"; }

// A diagnostic payload (RFC 7252 5.5.2): short, printable UTF-8 only.
Bytes diagnostic_from(const HttpResponse& response) {
  std::string text;
  for (char ch : response.body) {
    if (text.size() >= kMaxDiagnostic) break;
    if (ch == '\r' || ch == '\n' || ch == '\t') ch = ' ';
    if (static_cast<unsigned char>(ch) >= 0x20 && static_cast<unsigned char>(ch) < 0x7f) text.push_back(ch);
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  if (text.empty()) text = "upstream answered HTTP " + std::to_string(response.status);
  return Bytes(text.begin(), text.end());
}

std::optional<std::uint32_t> max_age_from(const HttpResponse& response, TimePoint now) {
  auto value = response.header("Retry-After");
  if (!value) return std::nullopt;
  auto seconds = parse_retry_after(*value, now);
  if (!seconds.ok()) return std::nullopt;
  return static_cast<std::uint32_t>(std::min<std::int64_t>(seconds->count(), 0xffffffffLL));
}

Result<Bytes> success_body(EstOperation operation, const HttpResponse& response, std::uint16_t& format) {
  format = coaps_response_format(operation);
  if (operation != EstOperation::serverkeygen) {
    auto der = decode_est_body(response.body, response.header("Content-Transfer-Encoding"));
    if (!der.ok()) return der.error().within("upstream body");
    if (format == coap_formats::certs_only) {
      // Passed on as it is: its structure is checked, its certificates are the device's to decode.
      if (auto checked = CertsOnly::check_structure(*der); !checked.ok()) return checked.error().within("upstream certs-only");
    }
    return der;
  }
  // 9148-5-g: multipart/mixed with base64 parts becomes multipart-core with binary parts;
  // encrypted keys (CF 280) pass through as they are.
  auto content_type = response.header("Content-Type");
  if (!content_type) return make_error(ErrorCode::invalid_input, "upstream serverkeygen answer has no Content-Type");
  auto media = MediaType::parse(*content_type);
  if (!media.ok()) return media.error().within("upstream Content-Type");
  auto boundary = multipart_boundary(*media);
  if (!boundary.ok()) return boundary.error().within("upstream Content-Type");
  auto parts = parse_multipart(response.body, *boundary);
  if (!parts.ok()) return parts.error().within("upstream multipart");
  std::vector<MultipartCorePart> core_parts;
  for (const auto& part : *parts) {
    auto part_type = part.header("Content-Type");
    auto part_media = part_type ? MediaType::parse(*part_type) : Result<MediaType>(make_error(ErrorCode::invalid_input, "no Content-Type"));
    if (!part_media.ok()) return part_media.error().within("upstream multipart part");
    auto cf = format_of_media_type(*part_media);
    if (!cf) return make_error(ErrorCode::unsupported, "upstream multipart part of type '" + *part_type + "' has no Content-Format");
    auto der = decode_est_body(part.body, part.header("Content-Transfer-Encoding"));
    if (!der.ok()) return der.error().within("upstream multipart part");
    core_parts.push_back({*cf, std::move(der).value()});
  }
  return encode_multipart_core(core_parts);
}

}  // namespace

std::optional<CoapAnswer> check_request(const CoapExchange& exchange, const ForwardingLimits& limits) {
  if (exchange.device_chain.empty())
    return local(4, 1, "9148-3-e", "a client certificate is required");
  if (auto expected = coaps_request_format(exchange.operation)) {
    if (exchange.content_format != expected)
      return local(4, 15, "9148-4.3-b", "Content-Format must be 286 (application/pkcs10)");
    if (exchange.payload.size() > limits.max_request_body) {
      auto answer = local(4, 13, "9148-4.6-c", "request body over " + std::to_string(limits.max_request_body) + " bytes");
      return answer;
    }
    if (exchange.payload.empty()) return local(4, 0, "9148-4.3-a", "empty request body");
    if (exchange.payload.front() != 0x30)
      return local(4, 0, "9148-4.3-a", "the body must be binary DER (RFC 9148 4.3), not base64 or PEM");
  }
  if (exchange.accept && *exchange.accept != coaps_response_format(exchange.operation))
    return local(4, 6, "9148-4.3-c", "Accept " + std::to_string(*exchange.accept) + " cannot be satisfied");
  return std::nullopt;
}

HttpRequest to_http_request(const CoapExchange& exchange, const std::string& base_path, const std::string& host_header) {
  HttpRequest request;
  request.method = std::string(http_method(exchange.operation));
  request.target = base_path + (exchange.label.empty() ? "" : "/" + exchange.label) + "/" +
                   std::string(to_string(exchange.operation));
  request.headers.emplace_back("Host", host_header);
  if (auto media = request_media_type(exchange.operation)) {
    request.headers.emplace_back("Content-Type", std::string(*media));
    request.headers.emplace_back("Content-Transfer-Encoding", "base64");
    request.body = encode_est_body(exchange.payload);
  }
  std::string chain;
  for (const auto& certificate : exchange.device_chain)
    chain += (chain.empty() ? "" : ",") + base64_encode(certificate.der());
  request.headers.emplace_back(kForwardedClientCertHeader, chain);
  return request;
}

CoapAnswer to_coap_answer(EstOperation operation, const HttpResponse& response, TimePoint now,
                          const ForwardingLimits& limits) {
  CoapAnswer answer;
  answer.upstream_status = response.status;
  answer.rule = "9148-5-e";
  auto code = [&](int code_class, int detail) {
    answer.code = CoapCode::make(code_class, detail);
    answer.payload = diagnostic_from(response);
  };
  switch (response.status) {
    case 200: {
      if (response.body.find_first_not_of(" \t\r\n") == std::string::npos) {  // 9148-4.5-b: nothing for this client
        code(4, 4);
        return answer;
      }
      std::uint16_t format = 0;
      auto body = success_body(operation, response, format);
      if (!body.ok()) {
        answer = local(5, 2, "9148-5-g", body.error().message.substr(0, kMaxDiagnostic));
        answer.upstream_status = response.status;
        return answer;
      }
      // 9148-4.5-b: "not available" is 4.04; for /att that includes an empty CsrAttrs (SEQUENCE {}),
      // which RFC 8951 allows over HTTPS as the third way of saying "no attributes".
      const bool no_attributes = operation == EstOperation::csrattrs && body->size() == 2 && (*body)[0] == 0x30 && (*body)[1] == 0x00;
      if (body->empty() || no_attributes) {
        code(4, 4);
        return answer;
      }
      answer.code = is_post(operation) ? CoapCode::make(2, 4) : CoapCode::make(2, 5);
      answer.content_format = format;
      answer.payload = std::move(body).value();
      return answer;
    }
    case 202:  // 9148-4.7-b: not yet; come back after Max-Age
      code(5, 3);
      answer.max_age = max_age_from(response, now).value_or(static_cast<std::uint32_t>(limits.default_max_age.count()));
      return answer;
    case 204:
    case 404: code(4, 4); return answer;
    case 400: code(4, 0); return answer;
    case 401: code(4, 1); return answer;
    case 403: code(4, 3); return answer;
    case 405: code(4, 5); return answer;
    case 406: code(4, 6); return answer;
    case 413: code(4, 13); return answer;
    case 415: code(4, 15); return answer;
    case 501: code(5, 1); return answer;
    case 502: code(5, 2); return answer;
    case 503:
      code(5, 3);
      answer.max_age = max_age_from(response, now);
      return answer;
    case 504: code(5, 4); return answer;
    default: break;
  }
  if (response.status >= 400 && response.status < 500) code(4, 0);
  else if (response.status >= 500 && response.status < 600) code(5, 0);
  else code(5, 2);
  return answer;
}

CoapAnswer upstream_failure(const Error& error) {
  const bool timeout = error.code == ErrorCode::timeout;
  return local(5, timeout ? 4 : 2, "PG-COAP-1",
               std::string(timeout ? "EST service timed out: " : "EST service unreachable: ").append(error.message).substr(0, kMaxDiagnostic));
}

}  // namespace estlab::coap_proxy
