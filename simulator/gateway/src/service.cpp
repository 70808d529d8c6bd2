#include "estlab/gateway/service.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <ctime>
#include <map>
#include <set>
#include <deque>
#include <mutex>
#include <sstream>

#include "estlab/core/base64.hpp"
#include "estlab/core/certs_only.hpp"
#include "estlab/core/cmc.hpp"
#include "estlab/core/csrattrs.hpp"
#include "estlab/core/der.hpp"
#include "estlab/core/est.hpp"
#include "estlab/core/oids.hpp"
#include "estlab/core/text.hpp"
#include "estlab/core/server_key.hpp"
#include "estlab/core/verify.hpp"
#include "policies.hpp"

namespace estlab::gateway {

namespace {

std::string escape_dn_value(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == ',' || c == '+' || c == '=' || c == '/' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// A preferred-name-syntax host name (letters, digits, '-', dots between labels; '*' first label allowed).
bool is_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253 || name.front() == '.' || name.back() == '.') return false;
  std::size_t label = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || (c == '*' && i == 0);
    if (!ok || ++label > 63) return false;
  }
  return true;
}

// A refusal or an answer, with the rule that decided it.
struct Outcome {
  int status = 200;
  std::string rule = "ok";
  std::string reason;
  HttpHeaders headers;
  std::string body;
  std::string issued_serial;
  bool stall = false;
};

Outcome refuse(int status, std::string rule, std::string reason) {
  Outcome o;
  o.status = status;
  o.rule = std::move(rule);
  o.reason = std::move(reason);
  o.headers = {{"Content-Type", "text/plain; charset=utf-8"}};
  o.body = o.reason + " [" + o.rule + "]\n";
  return o;
}

// The client as authenticated: who, and with what.
struct Authenticated {
  std::optional<Certificate> certificate;  // valid, trusted, not revoked
  bool officer = false;                    // PG-AUTH-3
  const PreregisteredDevice* basic_device = nullptr;  // matched HTTP Basic credentials
};

}  // namespace

struct EstService::Impl {
  EstService& s;
  std::optional<CsrAttrs> csrattrs;
  std::mutex seen_mutex;
  std::map<std::string, int> seen_requests;  // fault retry-creates-new-request only
  std::mutex approval_mutex;  // approval checks and the issuance that follows, one at a time
  // RFC 9266 4.1: a tls-exporter binding serves one authentication per connection. The exporter
  // values already used, the oldest forgotten first (a value is unique to its connection).
  mutable std::mutex bindings_mutex;
  mutable std::set<std::string> used_bindings;
  mutable std::deque<std::string> used_bindings_order;
  static constexpr std::size_t kRememberedBindings = 4096;
  SpentPasswords spent_passwords;  // RFC 7030 6, with estlab.auth.basic-single-use

  explicit Impl(EstService& service) : s(service) {}

  bool fault(Fault f) const { return s.config_.faults.count(f) != 0; }

  // --- Encoding (RFC 8951) -------------------------------------------------------------------
  void set_body(Outcome& o, std::string_view content_type, ByteView der) const {
    o.status = 200;
    if (fault(Fault::no_base64)) {
      o.headers = {{"Content-Type", std::string(content_type)}};
      o.body.assign(der.begin(), der.end());
    } else {
      o.headers = {{"Content-Type", std::string(content_type)}, {"Content-Transfer-Encoding", "base64"}};
      o.body = encode_est_body(der);
    }
  }

  void set_certs_only(Outcome& o, std::vector<Certificate> certs) const {
    auto bag = CertsOnly::make(std::move(certs));
    if (!bag.ok()) {
      o = refuse(500, "internal", "building certs-only: " + bag.error().message);
      return;
    }
    set_body(o, fault(Fault::wrong_media_type) ? "application/octet-stream" : media_types::certs_only, bag->der());
  }

  // --- Authentication ------------------------------------------------------------------------
  // Validates the client's TLS certificate: chain to the trust anchors, time, revocation, EKU.
  // Returns nullopt when it passes, else the refusal.
  std::optional<Outcome> check_client_certificate(const EstRequest& request, Authenticated& who) {
    const auto& chain = request.client.peer_chain;
    if (chain.empty()) return std::nullopt;
    const Certificate& leaf = chain.front();
    const bool product = s.config_.product_rules();

    PathValidation validation;
    validation.trust_anchors = s.trust_anchors_;
    validation.intermediates.assign(chain.begin() + 1, chain.end());
    const bool crl_check = s.config_.revocation == RevocationSource::published_crl && !fault(Fault::accept_revoked);
    if (auto cas = s.ca_->list(); cas.ok()) {
      for (const auto& info : *cas) {
        if (!info.parent_label.empty() && info.role != "rollover-link") validation.intermediates.push_back(info.certificate);
        if (!crl_check) continue;
        if (auto crl = s.ca_->latest_crl(info.label); crl.ok() && crl->has_value()) validation.crls.push_back(**crl);
      }
    }
    validation.at = s.ca_->clock().now();
    if (crl_check) validation.revocation = RevocationCheck::leaf;
    if (!fault(Fault::accept_unknown_ca)) {
      auto verdict = validate_path(leaf, validation);
      if (!verdict.ok()) return refuse(500, "internal", "validating the client certificate: " + verdict.error().message);
      if (!verdict->valid) {
        const bool revoked = verdict->openssl_code == X509_V_ERR_CERT_REVOKED;
        return refuse(403, revoked ? (product ? "PG-ENR-3" : "7030-3.3.2-b") : "7030-3.3.2-b",
                      "client certificate " + leaf.subject().to_string() + " refused: " + verdict->reason);
      }
    }
    if (s.config_.revocation == RevocationSource::ca_database && !fault(Fault::accept_revoked)) {
      auto issued = s.ca_->find_issued(leaf.serial_hex());
      // Fail closed: a revocation status that cannot be read is not "not revoked".
      if (!issued.ok()) return refuse(503, "internal", "CA database: cannot read revocation status: " + issued.error().message);
      if (issued->has_value() && (*issued)->revoked_at &&
          (*issued)->certificate.issuer() == leaf.issuer())
        return refuse(403, product ? "PG-ENR-3" : "7030-3.3.2-b",
                      "client certificate " + leaf.subject().to_string() + " (serial " + leaf.serial_hex() + ") is revoked");
    }
    if (!fault(Fault::skip_eku_check)) {
      const auto ekus = leaf.extended_key_usages();
      const bool has_client_auth = leaf.has_extended_key_usage(oid::client_auth);
      const bool cmc_ra_only = !has_client_auth && leaf.has_extended_key_usage(oid::cmc_ra);
      if (product && !has_client_auth)  // PG-ENR-2: an absent EKU extension is not enough either
        return refuse(403, cmc_ra_only ? "PG-RA-1" : "PG-ENR-2",
                      cmc_ra_only ? "client certificate carries id-kp-cmcRA but not clientAuth; id-kp-cmcRA gives no rights"
                                  : "client certificate lacks the clientAuth extended key usage");
      if (!product && !ekus.empty() && !has_client_auth)  // RFC 5280 4.2.1.12 purpose check
        return refuse(403, "7030-3.3.2-b", "client certificate's extended key usage does not allow TLS client authentication");
    }
    who.certificate = leaf;
    const auto policies = leaf.certificate_policies();
    who.officer = std::find(policies.begin(), policies.end(), s.config_.officer_policy) != policies.end();
    return std::nullopt;
  }

  std::optional<Outcome> unauthorized(const std::string& rule, const std::string& reason) const {
    Outcome o = refuse(401, rule, reason);
    if (!fault(Fault::no_auth_challenge)) o.headers.emplace_back("WWW-Authenticate", make_basic_challenge(s.config_.realm));
    return o;
  }

  // Authenticates an enrollment request; nullopt = go on.
  std::optional<Outcome> authenticate(const EstRequest& request, EstOperation op, Authenticated& who) {
    if (auto refused = check_client_certificate(request, who)) return refused;
    const bool product = s.config_.product_rules();

    std::optional<BasicCredentials> credentials;
    if (auto header = request.header("Authorization")) {
      credentials = parse_basic_authorization(*header);
      if (!credentials) return unauthorized(product ? "PG-AUTH-2" : "7030-3.2.3-a", "Authorization header is not HTTP Basic");
    }
    if (credentials) {
      for (const auto& device : s.config_.preregistered) {
        // A device has Basic credentials when it has a password; its user may be empty (RFC 7030
        // 3.2.3: only a password or one-time password exists).
        if (!device.password.empty() && device.user == credentials->user && device.password == credentials->password) {
          who.basic_device = &device;
          break;
        }
      }
      if (!who.basic_device)
        return unauthorized(product ? "PG-AUTH-2" : "7030-3.2.3-a",
                            "HTTP Basic credentials for '" + credentials->user + "' do not match a preregistered device");
      if (password_spent(*who.basic_device))
        return unauthorized("7030-6-b", "the one-time HTTP Basic password of '" + who.basic_device->common_name +
                                            "' already obtained a certificate; re-enroll with that certificate");
    }

    if (op == EstOperation::simplereenroll) {
      if (!who.certificate)
        return refuse(403, "7030-4.2.2-c", "re-enrollment needs the client certificate being renewed");
      return std::nullopt;
    }
    if (product) {
      if (!who.certificate)  // PG-AUTH-1: even with Basic, no certificate without a client certificate
        return refuse(403, "PG-AUTH-1", "a valid client TLS certificate is required (HTTP authentication alone is not enough)");
      if (s.config_.mandatory_password && !who.basic_device)
        return unauthorized("PG-AUTH-2", "this endpoint requires HTTP Basic credentials of a preregistered device");
      return std::nullopt;
    }
    if (!who.certificate && !who.basic_device)
      return unauthorized("7030-4.2-b", "authentication required: a client certificate or HTTP Basic credentials");
    return std::nullopt;
  }

  // --- CSR policy ----------------------------------------------------------------------------
  // The subject and SANs the certificate gets (PG-SAN-1, PG-SAN-2 under the product rules).
  struct Effective {
    DistinguishedName subject;
    std::vector<SubjectAltName> sans;
  };

  Result<Effective> effective_identity(const Csr& csr) const {
    Effective e{csr.subject(), csr.subject_alt_names()};
    if (!s.config_.product_rules()) return e;
    const bool has_dns_or_ip = std::any_of(e.sans.begin(), e.sans.end(), [](const SubjectAltName& san) {
      return san.kind == SubjectAltName::Kind::dns || san.kind == SubjectAltName::Kind::ip;
    });
    if (!has_dns_or_ip && !fault(Fault::no_san_copy)) {
      // PG-SAN-1: dNSName from unstructuredName, else commonName; iPAddress from unstructuredAddress.
      // Only values that can be a dNSName (RFC 5280 4.2.1.6) are copied; "device 0001" is not.
      if (auto name = csr.unstructured_name(); name && is_dns_name(*name)) e.sans.push_back(SubjectAltName::dns(*name));
      else if (auto cn = e.subject.common_name(); cn && is_dns_name(*cn)) e.sans.push_back(SubjectAltName::dns(*cn));
      if (auto address = csr.unstructured_address(); address && !address->empty()) {
        const ossl::Asn1OctetString ip(a2i_IPADDRESS(address->c_str()));
        ERR_clear_error();
        if (ip) e.sans.push_back(SubjectAltName::ip(*address));
      }
    }
    if (!e.subject.common_name()) {
      // PG-SAN-2: commonName from the first dNSName.
      for (const auto& san : e.sans) {
        if (san.kind != SubjectAltName::Kind::dns) continue;
        std::string text = e.subject.to_string();
        text += (text.empty() ? "" : ",") + std::string("CN=") + escape_dn_value(san.value);
        auto with_cn = DistinguishedName::parse(text);
        if (!with_cn.ok()) return with_cn.error().within("copying dNSName into commonName");
        e.subject = *with_cn;
        break;
      }
    }
    return e;
  }

  bool password_spent(const PreregisteredDevice& device) const {
    return s.config_.basic_single_use && !fault(Fault::basic_password_reusable) && spent_passwords.spent(device.user, device.password);
  }
  // RFC 7030 6: a certificate issued on a one-time password spends it.
  Outcome spend_password(const Authenticated& who, Outcome outcome) {
    if (outcome.status == 200 && who.basic_device && s.config_.basic_single_use)
      spent_passwords.spend(who.basic_device->user, who.basic_device->password);
    return outcome;
  }

  // RFC 7030 3.7: an RA (id-kp-cmcRA from the EST CA) forwards its client's linking value.
  bool ra_may_relink(const EstRequest& request) const {
    if (!s.config_.ra_relinking || fault(Fault::ra_relinking_refused) || request.client.peer_chain.empty()) return false;
    std::vector<Certificate> cas;
    if (auto list = s.ca_->list(); list.ok())
      for (const auto& info : *list) cas.push_back(info.certificate);
    return is_ra_of_est_ca(request.client.peer_chain.front(), cas);
  }

  // RFC 7030 3.5 linking, PG-PWD-1.
  std::optional<Outcome> check_challenge_password(const EstRequest& request, const Csr& csr) const {
    const auto password = csr.challenge_password();
    if (!password) {
      if (s.config_.linking_required)
        return refuse(403, "7030-3.5-c", "identity linking is required: the CSR must carry the tls-unique value in challengePassword");
      return std::nullopt;
    }
    if (s.config_.challenge_password == ChallengePasswordPolicy::deny && !fault(Fault::accept_challenge_password))
      return refuse(403, "PG-PWD-1", "requests that contain a challengePassword are denied");
    if (s.config_.challenge_password == ChallengePasswordPolicy::deny) return std::nullopt;  // the fault: taken as is
    if (fault(Fault::ignore_tls_unique) || ra_may_relink(request)) return std::nullopt;
    const auto& bindings = request.client.bindings;
    std::string expected;
    std::string what;
    if (request.client.tls_version >= TlsVersion::tls1_3) {
      if (s.config_.tls13_linking == Tls13Linking::deny || !bindings.tls_exporter)
        return refuse(403, "9266-2-a", "identity linking over TLS 1.3 is not accepted by this gateway (estlab.linking.tls13=deny)");
      expected = base64_encode(*bindings.tls_exporter);
      what = "tls-exporter (RFC 9266)";
    } else {
      if (!bindings.tls_unique) return refuse(403, "7030-3.5-b", "no tls-unique value on this connection");
      expected = base64_encode(*bindings.tls_unique);
      what = "tls-unique";
    }
    if (*password != expected)
      return refuse(403, "7030-3.5-b",
                    "challengePassword does not equal this connection's " + what +
                        " value: identity linking (RFC 7030 3.5) failed");
    if (request.client.tls_version >= TlsVersion::tls1_3) {
      std::lock_guard lock(bindings_mutex);
      if (!used_bindings.insert(expected).second)
        return refuse(403, "9266-4-a",
                      "this connection's tls-exporter value already linked one request; RFC 9266 4.1 allows one authentication per "
                      "binding: open a new connection and link the CSR to it");
      used_bindings_order.push_back(expected);
      if (used_bindings_order.size() > kRememberedBindings) {
        used_bindings.erase(used_bindings_order.front());
        used_bindings_order.pop_front();
      }
    }
    return std::nullopt;
  }

  // Who may ask for which subject (simpleenroll / serverkeygen / fullcmc).
  std::optional<Outcome> authorize_enroll(const Authenticated& who, const Effective& e) const {
    const auto cn = e.subject.common_name().value_or("");
    if (who.basic_device && !who.basic_device->common_name.empty() && who.basic_device->common_name != cn)
      return refuse(403, s.config_.product_rules() ? "PG-AUTH-2" : "7030-3.7-a",
                    "preregistered device '" + who.basic_device->common_name + "' may not enroll commonName '" + cn + "'");
    if (!s.config_.product_rules()) return std::nullopt;
    if (s.config_.use_authentication_cert) {
      // PG-PRE-1: the client certificate is a preregistered factory certificate for this commonName.
      const auto fingerprint = who.certificate->sha256_fingerprint();
      const PreregisteredDevice* device = nullptr;
      for (const auto& candidate : s.config_.preregistered)
        if (iequals(candidate.factory_certificate_fingerprint, fingerprint)) device = &candidate;
      if (!device)
        return refuse(403, "PG-PRE-1", "client certificate " + who.certificate->subject().to_string() +
                                           " is not a preregistered authentication (factory) certificate");
      if (s.config_.check_subject_values && device->common_name != cn)
        return refuse(403, "PG-PRE-1", "the factory certificate is registered for '" + device->common_name +
                                           "', the request asks for commonName '" + cn + "'");
      return std::nullopt;
    }
    if (who.officer) return std::nullopt;  // PG-AUTH-3: an officer enrolls on behalf of devices
    if (!fault(Fault::ignore_subject_mismatch) && !(e.subject == who.certificate->subject()))
      return refuse(403, "PG-ENR-1",
                    "CSR subject '" + e.subject.to_string() + "' differs from the client certificate's subject '" +
                        who.certificate->subject().to_string() + "'");
    return std::nullopt;
  }

  static bool same_sans(std::vector<SubjectAltName> a, std::vector<SubjectAltName> b) {
    auto key = [](const SubjectAltName& x) { return x.to_string(); };
    auto less = [&](const SubjectAltName& x, const SubjectAltName& y) { return key(x) < key(y); };
    std::sort(a.begin(), a.end(), less);
    std::sort(b.begin(), b.end(), less);
    return a == b;
  }

  // RFC 7030 4.2.2 compares the CSR with the certificate being renewed. Under the product rules
  // the copied values (PG-SAN-1/2) count too: a certificate the gateway issued with a copied SAN
  // is renewed by the same SAN-less CSR that got it.
  std::optional<Outcome> authorize_reenroll(const Authenticated& who, const Csr& csr, const Effective& e) const {
    const Certificate& current = *who.certificate;
    if (!fault(Fault::ignore_subject_mismatch)) {
      const bool subject_matches = csr.subject() == current.subject() || e.subject == current.subject();
      const auto current_sans = current.subject_alt_names();
      const bool sans_match = same_sans(csr.subject_alt_names(), current_sans) || same_sans(e.sans, current_sans);
      if (!subject_matches)
        return refuse(403, s.config_.product_rules() ? "PG-ENR-1" : "7030-4.2.2-a",
                      "re-enroll CSR subject '" + e.subject.to_string() + "' differs from the certificate being renewed ('" +
                          current.subject().to_string() + "')");
      if (!sans_match)
        return refuse(403, "7030-4.2.2-a", "re-enroll CSR subjectAltName differs from the certificate being renewed");
    }
    if (s.config_.product_rules() && s.config_.renewal_requires_last_issued() && !fault(Fault::ignore_renewal_rule)) {
      auto last = s.ca_->last_issued_for_subject(current.subject());
      if (!last.ok()) return refuse(503, "internal", "CA database: " + last.error().message);
      if (last->has_value() && (*last)->certificate.serial_hex() != current.serial_hex())
        return refuse(403, "PG-ENR-4",
                      "the client certificate (serial " + current.serial_hex() +
                          ") is not the last certificate issued for its subject (serial " +
                          (*last)->certificate.serial_hex() + "); allowRenewalWithOldCertificates=" +
                          (s.config_.allow_renewal_with_old_certificates ? "true" : "false") + " read as " +
                          (s.config_.renewal_rule_polarity == RenewalRulePolarity::documented ? "documented" : "inverted"));
    }
    return std::nullopt;
  }

  ca::CertificateProfile certificate_profile() const {
    if (s.config_.certificate_profile == "no-eku") return ca::CertificateProfile::no_eku();
    if (s.config_.certificate_profile == "officer") return ca::CertificateProfile::officer();
    return ca::CertificateProfile::device();
  }

  // --- Request decoding ----------------------------------------------------------------------
  std::optional<Outcome> check_content_type(const EstRequest& request, std::string_view expected_type) const {
    auto header = request.header("Content-Type");
    if (!header) return refuse(415, "7030-4.2.1-c", "missing Content-Type; expected " + std::string(expected_type));
    auto type = MediaType::parse(*header);
    if (!type.ok() || !type->same_type(expected_type))
      return refuse(415, "7030-4.2.1-c", "Content-Type '" + *header + "' is not " + std::string(expected_type));
    return std::nullopt;
  }

  Result<Bytes> request_der(const EstRequest& request) const {
    if (fault(Fault::strict_base64_lines)) {
      // FB-03: a decoder that wants the lines of an older client (wrapped, no blanks).
      std::size_t line = 0;
      for (char c : request.body) {
        if (c == ' ' || c == '\t') return make_error(ErrorCode::invalid_input, "invalid CSR: unexpected blank in base64");
        line = (c == '\n' || c == '\r') ? 0 : line + 1;
        if (line > 76) return make_error(ErrorCode::invalid_input, "invalid CSR: base64 line longer than 76 characters");
      }
    }
    return decode_est_body(request.body, request.header("Content-Transfer-Encoding"));
  }

  // --- Operations ----------------------------------------------------------------------------
  Outcome cacerts(const std::string& label) {
    auto certs = s.ca_->ca_certificates(label);
    if (!certs.ok()) return refuse(503, "internal", "CA: " + certs.error().message);
    if (!s.config_.cacerts_include_rollover || fault(Fault::cacerts_without_rollover)) {
      auto chain = s.ca_->chain(label);
      if (!chain.ok()) return refuse(503, "internal", "CA: " + chain.error().message);
      certs = std::move(chain);
    }
    Outcome o;
    set_certs_only(o, std::move(*certs));
    return o;
  }

  Outcome csrattrs_op() {
    if (!csrattrs || csrattrs->entries().empty()) {
      switch (s.config_.csrattrs_when_empty) {
        case CsrAttrsWhenEmpty::no_content: {
          Outcome o;
          o.status = 204;
          o.reason = "no CSR attributes configured";
          return o;
        }
        case CsrAttrsWhenEmpty::not_found: return refuse(404, "7030-4.5.2-a", "no CSR attributes configured");
        case CsrAttrsWhenEmpty::empty_sequence: break;
      }
    }
    Outcome o;
    const Bytes der = csrattrs ? csrattrs->der() : Bytes{0x30, 0x00};
    set_body(o, media_types::csrattrs, der);
    return o;
  }

  Result<Csr> parse_csr(const EstRequest& request, Csr::SignatureCheck check, Outcome& refusal) const {
    auto der = request_der(request);
    if (!der.ok() && fault(Fault::pem_body_500) && request.body.find("-----BEGIN") != std::string::npos) {
      refusal = Outcome{};  // FB-04: a server error with nothing to read
      refusal.status = 500;
      refusal.rule = "fault:pem-body-500";
      return der.error();
    }
    if (!der.ok()) {
      refusal = refuse(400, "8951-3-a", "request body: " + der.error().message);
      return der.error();
    }
    auto csr = Csr::from_der(*der, check);
    if (!csr.ok() && check == Csr::SignatureCheck::required && fault(Fault::accept_bad_csr_signature))
      csr = Csr::from_der(*der, Csr::SignatureCheck::skip);
    if (!csr.ok()) {
      const bool bad_signature = csr.error().code == ErrorCode::verify_failed;
      refusal = refuse(400, bad_signature ? "7030-4.2.1-b" : "7030-4.2.1-a", "PKCS#10 request: " + csr.error().message);
      return csr.error();
    }
    return csr;
  }

  // --- The one admission path ----------------------------------------------------------------
  // Every issuing operation (simpleenroll, simplereenroll, serverkeygen, fullcmc; the coaps proxy
  // forwards to these) is authenticated, decoded, then admitted here: linking, authorization,
  // approval, issuance, in that order and in this one place. The operations differ only in how
  // they decode the request and encode the answer, so none can skip a step.

  // A decoded issuing request.
  struct IssueRequest {
    EstOperation op;
    std::string label;
    Csr csr;
  };

  // What admission decided. `answer` is set for a refusal, a pending request (202) or an
  // unreachable approver (503); otherwise `certificate` was issued (now or for an earlier retry).
  struct Admission {
    std::optional<Outcome> answer;
    CmcFailInfo fail_info = CmcFailInfo::bad_request;  // how fullcmc names the refusal
    bool pending = false;
    std::string approval_id;
    std::optional<Certificate> certificate;
    std::optional<PrivateKey> key;  // serverkeygen: the key generated for the certificate
  };

  static Admission refused(Outcome o, CmcFailInfo info = CmcFailInfo::bad_request) {
    Admission a;
    a.answer = std::move(o);
    a.fail_info = info;
    return a;
  }

  // The request as the approver sees it, bound to the operation, the CSR and the client.
  ApprovalRequest approval_request(const Authenticated& who, const IssueRequest& r, const Effective& e) {
    ApprovalRequest ar;
    ar.operation = std::string(to_string(r.op));
    ar.csr_sha256 = sha256_hex(r.csr.der());
    const std::string* basic_user = who.basic_device ? &who.basic_device->user : nullptr;
    ar.client = client_binding(who.certificate ? &*who.certificate : nullptr, basic_user);
    ar.id = approval_id(ar.operation, ar.csr_sha256, ar.client);
    if (fault(Fault::retry_creates_new_request)) {
      // FB-19: the first request keeps its id, every retry opens another one.
      std::lock_guard lock(seen_mutex);
      const int retries = seen_requests[ar.id]++;
      if (retries > 0) {
        ar.client += "#" + std::to_string(retries);
        ar.id = approval_id(ar.operation, ar.csr_sha256, ar.client);
      }
    }
    ar.client_subject = who.certificate ? who.certificate->subject().to_string() : "";
    ar.subject = e.subject.to_string();
    ar.csr_der = r.csr.der();
    return ar;
  }

  Admission admit(const EstRequest& request, const Authenticated& who, const IssueRequest& r) {
    if (auto refusal = check_challenge_password(request, r.csr))
      return refused(*refusal, refusal->rule == "PG-PWD-1" ? CmcFailInfo::bad_request : CmcFailInfo::pop_failed);
    auto e = effective_identity(r.csr);
    if (!e.ok()) return refused(refuse(400, "7030-4.2.1-a", e.error().message));
    // Fault approval-bypass: the drift this path ended, only the enroll operations wait.
    const bool bypassed = fault(Fault::approval_bypass) && (r.op == EstOperation::serverkeygen || r.op == EstOperation::fullcmc);
    const bool manual = s.config_.approval == ApprovalMode::manual && !bypassed;
    if (manual && !s.approval_) return refused(refuse(500, "internal", "manual approval is configured but no approver is"));
    ApprovalRequest ar;
    if (manual) ar = approval_request(who, r, *e);
    const std::string shown = ar.id.substr(0, 16);
    auto unreachable = [&](const Error& error) {  // PG-IDM-2: the request stays the device's to resend
      if (fault(Fault::idm_down_rejects)) return refused(refuse(403, "fault:idm-down-rejects", "request refused: " + error.message));
      Outcome o = refuse(503, "PG-IDM-2", "the identity manager cannot be reached (" + error.message + "); request " + shown +
                                              " is kept, retry later");
      o.headers.emplace_back("Retry-After", std::to_string(s.config_.retry_after.count()));
      return refused(o, CmcFailInfo::internal_ca_error);
    };
    // One decision at a time: two retries racing after an approval must not both issue.
    std::unique_lock lock(approval_mutex, std::defer_lock);
    if (manual) {
      lock.lock();
      // RFC 7030 4.2.3: a retry of a request already issued gets that certificate again. It is a
      // redelivery to the client it is bound to, so it comes before authorization: the issuance
      // itself can change what authorization sees (PG-ENR-4's "last issued certificate").
      auto issued = s.approval_->issued_for(ar.id);
      if (!issued.ok()) return unreachable(issued.error());
      if (issued->has_value()) {
        // A server-generated key is delivered once and never stored, so serverkeygen cannot repeat.
        if (r.op == EstOperation::serverkeygen)
          return refused(refuse(409, "PG-IDM-1", "request " + shown + " was issued and its server-generated key delivered; the key "
                                                     "is not kept, so send a new request to get another"));
        Admission a;
        a.certificate = **issued;
        a.approval_id = ar.id;
        return a;
      }
    }
    const auto refusal = r.op == EstOperation::simplereenroll ? authorize_reenroll(who, r.csr, *e) : authorize_enroll(who, *e);
    if (refusal) return refused(*refusal, CmcFailInfo::bad_identity);
    if (!manual) return issue(r, who, *e, nullptr);
    auto status = s.approval_->check(ar);
    if (!status.ok()) return unreachable(status.error());
    switch (status->state) {
      case ApprovalState::pending: {
        Outcome o;
        o.status = fault(Fault::pending_as_503) ? 503 : 202;  // FB-18
        o.rule = "PG-IDM-1";
        o.reason = "waiting for an operator to approve request " + shown;
        o.headers = {{"Content-Type", "text/plain; charset=utf-8"}};
        if (!fault(Fault::drop_retry_after)) o.headers.emplace_back("Retry-After", std::to_string(s.config_.retry_after.count()));
        o.body = o.reason + "\n";
        Admission a = refused(o);
        a.pending = true;
        a.approval_id = ar.id;
        return a;
      }
      case ApprovalState::rejected:
        return refused(refuse(403, "PG-IDM-1",
                              "an operator rejected request " + shown + (status->reason.empty() ? "" : ": " + status->reason)));
      case ApprovalState::approved: break;
    }
    Admission a = issue(r, who, *e, &ar);
    if (a.certificate) {
      if (auto recorded = s.approval_->record_issued(ar.id, *a.certificate); !recorded.ok())
        a.answer = refuse(503, "PG-IDM-2", "issued serial " + a.certificate->serial_hex() +
                                               " but the identity manager did not record it: " + recorded.error().message);
    }
    return a;
  }

  // The CA issues: for the CSR's key, or a key generated here (serverkeygen).
  Admission issue(const IssueRequest& r, const Authenticated& who, const Effective& e, const ApprovalRequest* approval_request) {
    ca::IssueOverrides overrides;
    overrides.subject = e.subject;
    overrides.subject_alt_names = e.sans;
    if (fault(Fault::issued_cert_sha1)) overrides.signature_digest = "SHA1";
    Admission a;
    if (approval_request) a.approval_id = approval_request->id;
    Result<Certificate> cert = make_error(ErrorCode::internal, "not issued");
    if (r.op == EstOperation::serverkeygen) {
      auto key = PrivateKey::generate(s.config_.serverkeygen_key_type);
      if (!key.ok()) return refused(refuse(500, "internal", "generating the key: " + key.error().message));
      cert = s.ca_->issue_for_key(r.label, e.subject, key->public_key(), e.sans, certificate_profile(), overrides,
                                  r.csr.requested_extended_key_usages());
      a.key = std::move(key).value();
    } else if (r.op == EstOperation::simplereenroll && fault(Fault::reenroll_keeps_old_key)) {  // FB-24: the posted key is ignored
      cert = s.ca_->issue_for_key(r.label, e.subject, who.certificate->public_key(), e.sans, certificate_profile(), overrides,
                                  r.csr.requested_extended_key_usages());
    } else {
      cert = s.ca_->issue(r.label, r.csr, certificate_profile(), overrides);
    }
    if (!cert.ok()) return refused(refuse(503, "internal", "the CA refused to issue: " + cert.error().message), CmcFailInfo::internal_ca_error);
    a.certificate = std::move(cert).value();
    return a;
  }

  // --- Encoding the answers --------------------------------------------------------------------
  // FB-08: the SignedData of the certs-only answer without its ContentInfo, claiming version 4.
  void bare_signeddata(Outcome& o) const {
    auto der = decode_est_body(o.body, std::nullopt);
    if (!der.ok()) return;
    auto info = der::read_single(*der, der::kSequence, "ContentInfo");
    if (!info.ok()) return;
    der::Reader fields(info->content);
    if (!fields.expect(der::kOid, "contentType").ok()) return;
    auto wrapped = fields.expect(0xa0, "content");
    if (!wrapped.ok()) return;
    auto signed_data = der::read_single(wrapped->content, der::kSequence, "SignedData");
    if (!signed_data.ok() || signed_data->content.size() < 3) return;
    Bytes content(signed_data->content.begin(), signed_data->content.end());
    content[2] = 4;  // INTEGER 1 -> INTEGER 4
    o.body = encode_est_body(der::encode_sequence(content));
  }

  Outcome issued_answer(const std::string& label, const Certificate& cert) {
    std::vector<Certificate> certs{cert};
    if (fault(Fault::extra_certs_in_enroll)) {
      if (auto chain = s.ca_->chain(label); chain.ok()) certs.insert(certs.end(), chain->begin(), chain->end());
    }
    Outcome o;
    set_certs_only(o, std::move(certs));
    if (o.status == 200 && fault(Fault::no_smime_type)) o.headers.front().second = std::string(media_types::pkcs7_mime);  // FB-05
    if (o.status == 200 && fault(Fault::enroll_bare_signeddata)) bare_signeddata(o);
    o.issued_serial = cert.serial_hex();
    o.reason = "issued " + cert.subject().to_string();
    return o;
  }

  Outcome serverkeygen_answer(const Certificate& cert, const PrivateKey& key, const KeyDelivery& delivery, const Authenticated& who) {
    PrivateKey delivered = key;
    if (fault(Fault::serverkeygen_key_mismatch)) {
      if (auto other = PrivateKey::generate(s.config_.serverkeygen_key_type); other.ok()) delivered = *other;
    }
    auto key_part = server_key_part(delivered, delivery, who);
    if (!key_part.ok())  // unsupported: this gateway cannot sign or encrypt so (its identity's key type)
      return refuse(key_part.error().code == ErrorCode::unsupported ? 501 : 500, "7030-4.4.2-c", key_part.error().message);
    auto bag = CertsOnly::make({cert});
    if (!bag.ok()) return refuse(500, "internal", bag.error().message);
    std::array<std::uint8_t, 16> random{};
    RAND_bytes(random.data(), static_cast<int>(random.size()));
    const std::string boundary = make_boundary(random);
    const std::vector<MimePart> parts{*key_part, make_est_part(media_types::certs_only, bag->der())};
    Outcome o;
    o.headers = {{"Content-Type", fault(Fault::multipart_without_boundary) ? std::string("multipart/mixed") : "multipart/mixed; boundary=" + boundary}};
    o.body = make_multipart(parts, boundary);
    o.issued_serial = cert.serial_hex();
    o.reason = "issued " + cert.subject().to_string() + " with a server-generated key" +
               (key_part->header("Content-Type") == std::string(media_types::server_generated_key) ? " (encrypted to the client's certificate)" : "");
    return spend_password(who, std::move(o));
  }

  // RFC 7030 4.4.1.1/4.4.1.2: the key named must be one the gateway can encrypt to: the client's
  // own certificate (symmetric keys are not provisioned here).
  std::optional<Outcome> check_key_delivery(const KeyDelivery& delivery, const Authenticated& who) const {
    if (delivery.kind == KeyDelivery::Kind::symmetric)
      return refuse(501, "7030-4.4.1.1-a", "no symmetric key is shared with this gateway, so a DecryptKeyIdentifier names none it knows");
    if (delivery.kind != KeyDelivery::Kind::asymmetric) return std::nullopt;
    if (!who.certificate || key_identifier(*who.certificate) != delivery.key_identifier)
      return refuse(400, "7030-4.4.1.2-a",
                    "the AsymmetricDecryptKeyIdentifier names no key this gateway knows (it encrypts to the client certificate's "
                    "subjectKeyIdentifier)");
    if (auto problem = key_recipient_problem(*who.certificate); !problem.empty())
      return refuse(400, "7030-4.4.1.2-a", "the key the AsymmetricDecryptKeyIdentifier names cannot receive the key (RFC 7030 4.4.1.2): " + problem);
    if (delivery.has_capabilities)
      if (auto problem = capabilities_problem(delivery.capabilities); !problem.empty()) return refuse(400, "7030-4.4.2-c", problem);
    return std::nullopt;
  }

  // RFC 7030 4.4.2: application/pkcs8, or EnvelopedData(SignedData(key)) to the client's certificate.
  Result<MimePart> server_key_part(const PrivateKey& key, const KeyDelivery& delivery, const Authenticated& who) const {
    // RFC 9148 4.8: a CSR without SMIMECapabilities expects the plain PKCS#8 key.
    if (delivery.kind != KeyDelivery::Kind::asymmetric || !delivery.has_capabilities || fault(Fault::serverkeygen_plain_key))
      return make_est_part(media_types::pkcs8, key.pkcs8_der());
    if (!s.ra_identity_) return make_error(ErrorCode::internal, "no identity to sign the key package with");
    auto enveloped = envelope_server_key(key, s.ra_identity_->key, s.ra_identity_->certificate, *who.certificate, delivery.capabilities);
    if (!enveloped.ok()) return enveloped.error().within("encrypting the server-generated key");
    return make_est_part(media_types::server_generated_key, *enveloped);
  }

  Outcome cmc_answer(int status, const std::string& rule, const std::string& reason, CmcStatus cmc,
                     const std::vector<Certificate>& certs) {
    if (!s.ra_identity_) return refuse(status == 200 ? 500 : status, rule, reason + " (no RA identity to sign a CMC response)");
    auto der = make_full_pki_response(cmc, certs, s.ra_identity_->key, s.ra_identity_->certificate);
    if (!der.ok()) return refuse(500, "internal", "building the CMC response: " + der.error().message);
    Outcome o;
    set_body(o, media_types::cmc_response, *der);
    o.status = status;
    o.rule = rule;
    o.reason = reason;
    return o;
  }

  Outcome cmc_failure(int status, const std::string& rule, const std::string& reason, CmcFailInfo info,
                      std::vector<std::uint32_t> body_parts) {
    CmcStatus cmc;
    cmc.status = CmcStatusCode::failed;
    cmc.body_parts = std::move(body_parts);
    cmc.text = reason;
    cmc.fail_info = info;
    return cmc_answer(status, rule, reason, cmc, {});
  }

  // RFC 7030 4.3.2 names only 200 (issued) and 4xx/5xx (rejected) for /fullcmc; it says nothing
  // of a request that waits. A pending request is answered as both layers allow: HTTP 202 with
  // Retry-After as in 4.2.3 (what EST clients already obey), carrying a Full PKI Response whose
  // CMCStatusInfoV2 is "pending" with pendInfo (RFC 5272 6.1.1: pendToken, pendTime). The client
  // resends the same Full PKI Request; its identity binding finds the pending request again.
  Outcome cmc_pending(const Outcome& pending, const std::string& approval_id, std::vector<std::uint32_t> body_parts) {
    CmcStatus cmc;
    cmc.status = CmcStatusCode::pending;
    cmc.body_parts = std::move(body_parts);
    cmc.text = pending.reason;
    const auto when = std::chrono::system_clock::to_time_t(s.ca_->clock().now() + s.config_.retry_after);
    std::tm tm{};
    gmtime_r(&when, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y%m%d%H%M%SZ", &tm);
    cmc.pend_info = CmcStatus::PendInfo{Bytes(approval_id.begin(), approval_id.end()), text};
    Outcome o = cmc_answer(pending.status, pending.rule, pending.reason, cmc, {});
    for (const auto& [name, value] : pending.headers)
      if (iequals(name, "Retry-After")) o.headers.emplace_back(name, value);
    return o;
  }

  // --- Operations: decode, admit, encode ---------------------------------------------------------
  Outcome enroll(const EstRequest& request, const std::string& label, EstOperation op) {
    if (auto refusal = check_content_type(request, media_types::pkcs10)) return *refusal;
    Authenticated who;
    if (auto refusal = authenticate(request, op, who)) return *refusal;
    Outcome refusal;
    auto csr = parse_csr(request, Csr::SignatureCheck::required, refusal);
    if (!csr.ok()) return refusal;
    if (s.config_.required_key_type)
      if (auto problem = required_key_problem(*csr, *s.config_.required_key_type); !problem.empty())
        return refuse(400, "7030-4.5.2-d", problem);
    if (fault(Fault::stall_response)) {
      Outcome o;
      o.stall = true;
      o.rule = "fault:stall-response";
      return o;
    }
    Admission a = admit(request, who, {op, label, std::move(csr).value()});
    if (a.answer) return *a.answer;
    return spend_password(who, issued_answer(label, *a.certificate));
  }

  Outcome serverkeygen(const EstRequest& request, const std::string& label) {
    if (!s.config_.serverkeygen_enabled)
      return refuse(501, "7030-4.4-a", "server-side key generation is not enabled (estlab.serverkeygen.enabled)");
    if (auto refusal = check_content_type(request, media_types::pkcs10)) return *refusal;
    Authenticated who;
    if (auto refusal = authenticate(request, EstOperation::serverkeygen, who)) return *refusal;
    Outcome refusal;
    // RFC 7030 4.4.1: the CSR's key and signature are ignored.
    auto csr = parse_csr(request, Csr::SignatureCheck::skip, refusal);
    if (!csr.ok()) return refusal;
    auto delivery = read_key_delivery(*csr);
    if (!delivery.ok()) return refuse(400, "7030-4.4.1.2-a", delivery.error().message);
    if (auto refused = check_key_delivery(*delivery, who)) return *refused;
    Admission a = admit(request, who, {EstOperation::serverkeygen, label, std::move(csr).value()});
    if (a.answer) return *a.answer;
    return serverkeygen_answer(*a.certificate, *a.key, *delivery, who);
  }

  Outcome fullcmc(const EstRequest& request, const std::string& label) {
    if (!s.config_.fullcmc_enabled)
      return refuse(501, "7030-4.3-a", "full CMC is not enabled (estlab.fullcmc.enabled)");
    {
      auto header = request.header("Content-Type");
      auto type = header ? MediaType::parse(*header) : Result<MediaType>(make_error(ErrorCode::invalid_input, "missing"));
      // smime-type may be left out by older clients; another smime-type is a different message.
      const auto smime = type.ok() ? type->param("smime-type") : std::nullopt;
      if (!type.ok() || !type->same_type(media_types::pkcs7_mime) || (smime && !media_type_matches(*type, media_types::cmc_request)))
        return refuse(415, "7030-4.3.1-a",
                      "Content-Type '" + header.value_or("") + "' is not application/pkcs7-mime; smime-type=CMC-request");
    }
    Authenticated who;
    if (auto refusal = authenticate(request, EstOperation::fullcmc, who)) return *refusal;
    auto der = request_der(request);
    if (!der.ok()) return refuse(400, "8951-3-a", "request body: " + der.error().message);
    auto pki = parse_full_pki_request(*der);
    if (!pki.ok()) return refuse(400, "7030-4.3.1-a", "not a Full PKI Request: " + pki.error().message);
    std::vector<std::uint32_t> parts;
    for (const auto& r : pki->requests) parts.push_back(r.body_part_id);
    // Controls that only identify the transaction are harmless; anything else is unsupported.
    static const std::vector<std::string> harmless = {"1.3.6.1.5.5.7.7.5", "1.3.6.1.5.5.7.7.6", "1.3.6.1.5.5.7.7.7"};
    for (const auto& control : pki->controls) {
      if (std::find(harmless.begin(), harmless.end(), control.oid) == harmless.end())
        return cmc_failure(400, "7030-4.3.1-a", "unsupported CMC control " + control.oid, CmcFailInfo::bad_request,
                           {control.body_part_id});
    }
    if (pki->requests.size() != 1 || pki->crmf_requests != 0 || pki->other_requests != 0 ||
        pki->unknown_requests != 0)
      return cmc_failure(400, "7030-4.3.1-a", "this gateway answers exactly one PKCS#10 request per PKIData",
                         CmcFailInfo::bad_request, parts);
    auto csr = Csr::from_der(pki->requests.front().pkcs10_der,
                             fault(Fault::accept_bad_csr_signature) ? Csr::SignatureCheck::skip : Csr::SignatureCheck::required);
    if (!csr.ok())
      return cmc_failure(400, "7030-4.2.1-b", "PKCS#10 request: " + csr.error().message,
                         csr.error().code == ErrorCode::verify_failed ? CmcFailInfo::pop_failed : CmcFailInfo::bad_request, parts);
    Admission a = admit(request, who, {EstOperation::fullcmc, label, std::move(csr).value()});
    if (a.pending) return cmc_pending(*a.answer, a.approval_id, parts);
    if (a.answer) {
      Outcome o = cmc_failure(a.answer->status, a.answer->rule, a.answer->reason, a.fail_info, parts);
      for (const auto& [name, value] : a.answer->headers)
        if (iequals(name, "Retry-After")) o.headers.emplace_back(name, value);
      return o;
    }
    std::vector<Certificate> certs{*a.certificate};
    if (auto chain = s.ca_->chain(label); chain.ok()) certs.insert(certs.end(), chain->begin(), chain->end());
    CmcStatus ok;
    ok.status = CmcStatusCode::success;
    ok.body_parts = parts;
    ok.text = "issued";
    Outcome o = cmc_answer(200, "ok", "issued " + a.certificate->subject().to_string(), ok, certs);
    o.issued_serial = a.certificate->serial_hex();
    return o;
  }

  Outcome dispatch(const EstRequest& request, Decision& decision) {
    auto path = parse_est_path(request.target);
    if (!path.ok()) return refuse(fault(Fault::unknown_op_501) ? 501 : 404, "7030-3.2.2-g", path.error().message);
    decision.operation = std::string(to_string(path->operation));
    if (!path->label.empty() && !s.config_.labels_enabled && !fault(Fault::unknown_label_served))
      return refuse(404, "7030-3.2.2-g", "this gateway serves no CA labels (estlab.ca.labels.enabled = false); '" + path->label +
                                             "' is unknown");
    std::string label = path->label.empty() ? s.config_.default_ca : path->label;
    if (std::find(s.labels_.begin(), s.labels_.end(), label) == s.labels_.end()) {
      if (!fault(Fault::unknown_label_served)) return refuse(404, "7030-3.2.2-g", "unknown CA label '" + path->label + "'");
      label = s.config_.default_ca;
    }
    decision.label = label;
    const std::string expected(http_method(path->operation));
    if (request.method != expected) {
      Outcome o = refuse(405, "7030-3.2.2-h", request.method + " is not allowed on /" + decision.operation + "; use " + expected);
      o.headers.emplace_back("Allow", expected);
      return o;
    }
    switch (path->operation) {
      case EstOperation::cacerts: return cacerts(label);
      case EstOperation::csrattrs: return csrattrs_op();
      case EstOperation::simpleenroll:
      case EstOperation::simplereenroll: return enroll(request, label, path->operation);
      case EstOperation::serverkeygen: return serverkeygen(request, label);
      case EstOperation::fullcmc: return fullcmc(request, label);
    }
    return refuse(404, "7030-3.2.2-g", "unknown operation");
  }
};

std::optional<std::string> EstRequest::header(std::string_view name) const { return find_header(headers, name); }

EstService::EstService(GatewayConfig config, std::shared_ptr<ca::SimulatedCa> ca, std::shared_ptr<ApprovalGate> approval)
    : config_(std::move(config)), ca_(std::move(ca)), approval_(std::move(approval)), impl_(std::make_unique<Impl>(*this)) {
  if (!ca_) throw ConfigError("the gateway needs a CA");
  if (config_.approval == ApprovalMode::manual && !approval_) approval_ = std::make_shared<OperatorQueue>();
  auto cas = value_or_throw(ca_->list(), "CA store");
  if (config_.ca_labels.empty()) {
    for (const auto& info : cas)
      if (info.open) labels_.push_back(info.label);
  } else {
    labels_ = config_.ca_labels;
  }
  for (const auto& label : labels_) {
    auto info = ca_->find(label);
    if (!info.ok()) throw ConfigError("estlab.ca.labels: CA '" + label + "' is not in the CA store");
    if (!is_valid_est_label(label))
      throw ConfigError("estlab.ca.labels: '" + label +
                        "' cannot be a CA label (1-64 of A-Z a-z 0-9 . _ -, not spelled like an EST operation, RFC 7030 3.2.2)");
  }
  if (std::find(labels_.begin(), labels_.end(), config_.default_ca) == labels_.end())
    throw ConfigError("estlab.ca.default: CA '" + config_.default_ca + "' is not among the served labels");
  if (!config_.trust_anchors.empty()) {
    auto bytes = read_file_bytes(config_.trust_anchors.string());
    if (!bytes.ok()) throw ConfigError("estlab.trust-anchors: " + bytes.error().message);
    trust_anchors_ = value_or_throw(Certificate::parse_all(*bytes), "estlab.trust-anchors: " + config_.trust_anchors.string());
  } else {
    for (const auto& info : cas)
      if (info.parent_label.empty() && info.open) trust_anchors_.push_back(info.certificate);
  }
  std::string spec = config_.csrattrs;
  if (config_.linking_required) {
    // RFC 7030 4.5.2: a server that requires linking lists the challengePassword OID.
    auto configured = value_or_throw(parse_csrattrs_spec(spec), "estlab.csrattrs");
    if (!configured.contains_oid(oid::challenge_password)) spec += std::string(spec.empty() ? "" : ", ") + "challengePassword";
  }
  if (config_.required_key_type) {
    // RFC 7030 4.5.2: the CA's key requirement is listed (the fault enforces it unlisted).
    auto configured = value_or_throw(parse_csrattrs_spec(spec), "estlab.csrattrs");
    if (auto listed = configured.required_key_type(); listed && *listed != *config_.required_key_type)
      throw ConfigError("estlab.csrattrs asks for a " + std::string(to_string(*listed)) + " key but estlab.ca.required-key-type is " +
                        std::string(to_string(*config_.required_key_type)));
    if (!configured.required_key_type() && !impl_->fault(Fault::required_key_not_listed))
      spec += (spec.empty() ? "" : ", ") + key_type_csrattrs_spec(*config_.required_key_type);
  }
  if (!spec.empty()) impl_->csrattrs = value_or_throw(parse_csrattrs_spec(spec), "estlab.csrattrs");
}

EstService::~EstService() = default;

Handled EstService::handle(const EstRequest& original) {
  Handled handled;
  Decision& decision = handled.decision;
  // PG-COAP-2: the CoAP proxy authenticates as an officer and forwards the device's certificate;
  // the device is then authorized as if it had connected itself.
  std::optional<EstRequest> forwarded;
  if (auto header = original.header(kForwardedClientCertHeader)) {
    Authenticated proxy;
    std::optional<Outcome> refused = impl_->check_client_certificate(original, proxy);
    if (!refused && (!proxy.certificate || (!proxy.officer && !impl_->fault(Fault::trust_forwarded_identity))))
      refused = refuse(403, "PG-COAP-2", "only an officer-role client may forward a client certificate");
    std::vector<Certificate> chain;
    if (!refused) {
      std::string item;
      std::istringstream items(*header);
      while (!refused && std::getline(items, item, ',')) {
        auto der = base64_decode(item);
        auto cert = der.ok() ? Certificate::from_der(*der) : Result<Certificate>(der.error());
        if (!cert.ok()) refused = refuse(400, "PG-COAP-2", std::string(kForwardedClientCertHeader) + ": " + cert.error().message);
        else chain.push_back(*cert);
      }
      if (!refused && chain.empty()) refused = refuse(400, "PG-COAP-2", std::string(kForwardedClientCertHeader) + " is empty");
    }
    if (refused) {
      decision.client_subject = original.client.peer_chain.empty() ? "" : original.client.peer_chain.front().subject().to_string();
      decision.rule = refused->rule;
      decision.reason = refused->reason;
      decision.status = refused->status;
      handled.response = {refused->status, refused->headers, refused->body, false};
      return handled;
    }
    forwarded = original;
    forwarded->client.peer_chain = std::move(chain);
    // The binding values belong to the proxy's TLS connection, not to the device.
    forwarded->client.bindings = {};
  }
  const EstRequest& request = forwarded ? *forwarded : original;
  if (!request.client.peer_chain.empty()) decision.client_subject = request.client.peer_chain.front().subject().to_string();
  if (forwarded) decision.client_subject += " (forwarded by " + original.client.peer_chain.front().subject().to_string() + ")";
  Outcome outcome = impl_->dispatch(request, decision);
  if (impl_->fault(Fault::errors_as_200) && outcome.status >= 400 && outcome.status != 401) outcome.status = 200;
  decision.rule = outcome.rule;
  decision.reason = outcome.reason;
  decision.status = outcome.status;
  decision.issued_serial = outcome.issued_serial;
  handled.response.status = outcome.status;
  handled.response.headers = std::move(outcome.headers);
  handled.response.body = std::move(outcome.body);
  handled.response.stall = outcome.stall;
  return handled;
}

}  // namespace estlab::gateway
