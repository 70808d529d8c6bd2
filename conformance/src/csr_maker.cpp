#include "csr_maker.hpp"

#include "estlab/core/base64.hpp"
#include "estlab/core/bytes.hpp"
#include "estlab/core/encoding.hpp"
#include "estlab/core/est.hpp"
#include "estlab/core/oids.hpp"

namespace estlab::conformance {

bool is_channel_value(const std::string& challenge_password) {
  return challenge_password == "tls-unique" || challenge_password == "tls-exporter" || challenge_password == "other-finished";
}

std::string eku_oid(const std::string& name) {
  if (name == "clientAuth") return std::string(oid::client_auth);
  if (name == "serverAuth") return std::string(oid::server_auth);
  if (name == "cmcRA") return std::string(oid::cmc_ra);
  return name;
}

namespace {
std::string wrap(const std::string& line, std::size_t width, const std::string& eol) {
  std::string out;
  for (std::size_t i = 0; i < line.size(); i += width) out += line.substr(i, width) + eol;
  return out;
}
}  // namespace

std::string fresh_subject(const std::string& subject_template, const std::string& cn) {
  const std::string placeholder = "{{cn}}";
  if (!cn.empty()) {
    std::string out = subject_template;
    for (auto pos = out.find(placeholder); pos != std::string::npos; pos = out.find(placeholder, pos + cn.size()))
      out.replace(pos, placeholder.size(), cn);
    return out;
  }
  // Drop the RDN that holds the placeholder (commas inside it are not expected in a template).
  std::string out;
  std::size_t start = 0;
  while (start <= subject_template.size()) {
    auto end = subject_template.find(',', start);
    if (end == std::string::npos) end = subject_template.size();
    const std::string rdn = subject_template.substr(start, end - start);
    if (rdn.find(placeholder) == std::string::npos) out += (out.empty() ? "" : ",") + rdn;
    start = end + 1;
  }
  return out;
}

std::string layout_base64(ByteView der, const std::string& layout) {
  const std::string line = base64_encode(der);
  if (layout.empty() || layout == "wrap64-crlf") return wrap(line, 64, "\r\n");
  if (layout == "one-line") return line;
  if (layout == "one-line-lf") return line + "\n";
  if (layout == "one-line-crlf") return line + "\r\n";
  if (layout == "wrap76-lf") return wrap(line, 76, "\n");
  if (layout == "whitespace") {
    // Spaces and tabs inside lines and at their ends, CRLF between them (RFC 8951 3.1).
    std::string out;
    for (std::size_t i = 0; i < line.size(); i += 64) {
      const std::string chunk = line.substr(i, 64);
      out += chunk.substr(0, 20) + " " + chunk.substr(std::min<std::size_t>(20, chunk.size()), 20) + "\t" +
             (chunk.size() > 40 ? chunk.substr(40) : "") + " \r\n";
    }
    return out;
  }
  if (layout == "pem") return pem_encode("CERTIFICATE REQUEST", der);
  if (layout == "der") return std::string(der.begin(), der.end());  // no base64 at all (RFC 8951 3: not an EST body)
  return wrap(line, 64, "\r\n");
}

Result<PrivateKey> CsrMaker::key_for(const CsrTemplate& t) {
  if (t.key != "new")
    if (auto it = keys_.find(t.key); it != keys_.end()) return it->second;
  auto type = t.key_type.empty() ? Result<KeyType>(default_key_type_) : parse_key_type(t.key_type);
  if (!type.ok()) return type.error();
  auto key = PrivateKey::generate(*type);
  if (!key.ok()) return key.error();
  if (t.key != "new") keys_.emplace(t.key, *key);
  return key;
}

Result<MadeCsr> CsrMaker::make(const CsrTemplate& t, const TlsConnectionInfo* tls) {
  if (!t.file.empty()) {
    std::filesystem::path file = t.file;
    if (file.is_relative()) file = scenario_dir_ / file;
    auto bytes = read_file_bytes(file.string());
    if (!bytes.ok()) return bytes.error();
    auto csr = Csr::parse(*bytes, Csr::SignatureCheck::skip);
    if (!csr.ok()) return csr.error();
    return MadeCsr{*csr, std::nullopt};
  }
  auto key = key_for(t);
  if (!key.ok()) return key.error();
  CsrBuilder builder;
  if (!t.subject.empty()) {
    auto subject = DistinguishedName::parse(t.subject);
    if (!subject.ok()) return subject.error().within("csr.subject");
    builder.subject(*subject);
  }
  for (const auto& san : t.subject_alt_names) {
    auto parsed = SubjectAltName::parse(san);
    if (!parsed.ok()) return parsed.error().within("csr.san");
    builder.add_subject_alt_name(*parsed);
  }
  for (const auto& eku : t.extended_key_usages) builder.add_extended_key_usage(eku_oid(eku));
  if (!t.unstructured_name.empty()) builder.unstructured_name(t.unstructured_name);
  if (!t.unstructured_address.empty()) builder.unstructured_address(t.unstructured_address);
  for (const auto& [oid, hex] : t.attributes) {
    auto der = from_hex(hex);
    if (!der.ok()) return der.error();
    builder.add_attribute(oid, *der);
  }
  // The connections' tls-unique values as CSRs go out, so "previous-tls-unique" can replay the
  // value of an earlier connection on this one (RFC 7030 3.5: it must be refused).
  if (tls != nullptr && tls->bindings.tls_unique && (!current_unique_ || *current_unique_ != *tls->bindings.tls_unique)) {
    previous_unique_ = current_unique_;
    current_unique_ = *tls->bindings.tls_unique;
  }
  if (!t.challenge_password.empty()) {
    std::string value = t.challenge_password;
    if (is_channel_value(value)) {
      if (tls == nullptr) return make_error(ErrorCode::invalid_input, "challenge_password " + value + " needs a TLS connection first");
      const auto& b = tls->bindings;
      // other-finished: the Finished tls-unique does not name (the server's after a full
      // handshake, the client's after a resumed one, RFC 5929 3.1): a linking value that must fail.
      const auto& binding = value == "tls-unique"     ? b.tls_unique
                            : value == "tls-exporter" ? b.tls_exporter
                            : tls->resumed            ? b.client_finished
                                                      : b.server_finished;
      if (!binding) return make_error(ErrorCode::unsupported, value + " is not defined on this " + to_string(tls->version) + " connection");
      value = base64_encode(*binding);
    } else if (value == "previous-tls-unique") {
      if (!previous_unique_)
        return make_error(ErrorCode::invalid_input, "challenge_password previous-tls-unique needs an earlier TLS 1.2 connection of this scenario that sent a CSR");
      value = base64_encode(*previous_unique_);
    }
    builder.challenge_password(value, t.challenge_password_type == "utf8" ? StringEncoding::utf8 : StringEncoding::printable);
  }
  auto csr = builder.sign(*key);
  if (!csr.ok()) return csr.error();
  if (t.corrupt_signature) {
    auto corrupted = Csr::from_der(with_corrupted_signature(csr->der()), Csr::SignatureCheck::skip);
    if (!corrupted.ok()) return corrupted.error();
    return MadeCsr{*corrupted, *key};
  }
  return MadeCsr{*csr, *key};
}

}  // namespace estlab::conformance
