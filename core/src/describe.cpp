#include "estlab/core/describe.hpp"

#include "estlab/core/certs_only.hpp"
#include "estlab/core/cmc.hpp"
#include "estlab/core/csr.hpp"
#include "estlab/core/csrattrs.hpp"
#include "estlab/core/est.hpp"

namespace estlab {

namespace {

std::string describe_der(const MediaType& type, ByteView der) {
  if (type.same_type("application/pkcs10")) {
    auto csr = Csr::from_der(der, Csr::SignatureCheck::skip);
    if (csr.ok()) return csr->to_text() + (csr->signature_valid() ? "" : "\n(signature does NOT verify)");
    return "undecodable PKCS#10: " + csr.error().message;
  }
  if (type.same_type("application/pkcs7-mime")) {
    const auto smime = type.param("smime-type").value_or("");
    if (smime == "CMC-request") {
      auto pki = parse_full_pki_request(der);
      if (!pki.ok()) return "undecodable Full PKI Request: " + pki.error().message;
      std::string text = "Full PKI Request: " + std::to_string(pki->requests.size()) + " PKCS#10 request(s), " +
                         std::to_string(pki->controls.size()) + " control(s)";
      for (const auto& control : pki->controls) text += "\n  control " + control.oid;
      for (const auto& request : pki->requests) {
        auto csr = Csr::from_der(request.pkcs10_der, Csr::SignatureCheck::skip);
        text += "\n  body part " + std::to_string(request.body_part_id) + ": " + (csr.ok() ? csr->to_text() : csr.error().message);
      }
      return text;
    }
    if (smime == "CMC-response") {
      auto response = parse_full_pki_response(der);
      if (!response.ok()) return "undecodable Full PKI Response: " + response.error().message;
      std::string text = "Full PKI Response:";
      for (const auto& status : response->statuses) {
        text += "\n  status " + std::string(to_string(status.status)) + " " + status.text;
        if (status.fail_info) text += " failInfo=" + std::string(to_string(*status.fail_info));
      }
      for (const auto& cert : response->certificates) text += "\n  certificate " + cert.subject().to_string();
      return text;
    }
    auto bag = CertsOnly::from_der(der);
    if (bag.ok()) {
      std::string text;
      for (const auto& cert : bag->certificates()) text += cert.to_text() + "\n";
      return text;
    }
    return "undecodable certs-only: " + bag.error().message;
  }
  if (type.same_type("application/csrattrs")) {
    auto attrs = CsrAttrs::from_der(der);
    return attrs.ok() ? attrs->to_text() : "undecodable csrattrs: " + attrs.error().message;
  }
  if (type.same_type("application/pkcs8")) return "PKCS#8 private key, " + std::to_string(der.size()) + " bytes (not shown)";
  return std::to_string(der.size()) + " bytes";
}

}  // namespace

std::string describe_est_body(std::string_view content_type, std::string_view body) {
  if (content_type.empty() || body.empty()) return "";
  auto type = MediaType::parse(content_type);
  if (!type.ok()) return "";
  if (type->same_type("text/plain")) return "";
  if (type->same_type("multipart/mixed")) {
    auto boundary = type->param("boundary");
    if (!boundary) return "multipart/mixed without a boundary parameter";
    auto parts = parse_multipart(body, *boundary);
    if (!parts.ok()) return "undecodable multipart: " + parts.error().message;
    std::string text;
    for (const auto& part : *parts) {
      const auto part_type = part.header("Content-Type").value_or("");
      text += "--- part " + part_type + "\n" + describe_est_body(part_type, part.body) + "\n";
    }
    return text;
  }
  auto der = decode_est_body(body, std::nullopt);
  if (!der.ok()) {
    // Maybe raw DER (a gateway that ignores RFC 8951).
    if (!body.empty() && static_cast<unsigned char>(body[0]) == 0x30)
      return "(raw DER, not base64)\n" + describe_der(*type, ByteView(reinterpret_cast<const std::uint8_t*>(body.data()), body.size()));
    return "body is not base64: " + der.error().message;
  }
  return describe_der(*type, *der);
}

}  // namespace estlab
