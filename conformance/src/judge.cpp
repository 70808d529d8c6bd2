#include "estlab/conformance/judge.hpp"

#include "csr_maker.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "estlab/core/certs_only.hpp"
#include "estlab/core/cmc.hpp"
#include "estlab/core/csrattrs.hpp"
#include "estlab/core/der.hpp"
#include "estlab/core/est.hpp"
#include "estlab/core/extensions.hpp"
#include "estlab/core/oids.hpp"
#include "estlab/core/server_key.hpp"
#include "estlab/core/text.hpp"
#include "estlab/core/verify.hpp"

namespace estlab::conformance {

namespace {

std::string status_list(const std::vector<int>& statuses, std::optional<char> status_class) {
  std::string list;
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    const int s = statuses[i];
    // A whole class listed code by code ([4xx, 5xx] in a scenario) is shown as the class.
    if (s % 100 == 0 && i + 99 < statuses.size() && statuses[i + 99] == s + 99) {
      list += (list.empty() ? "" : " or ") + std::to_string(s / 100) + "xx";
      i += 99;
      continue;
    }
    list += (list.empty() ? "" : " or ") + std::to_string(s);
  }
  if (status_class) list += (list.empty() ? "" : " or ") + std::string(1, *status_class) + "xx";
  return list;
}

bool status_in(int status, const std::vector<int>& statuses, std::optional<char> status_class) {
  return std::find(statuses.begin(), statuses.end(), status) != statuses.end() || (status_class && status / 100 == *status_class - '0');
}

class Checks {
 public:
  Checks(Judgement& out, Level level, std::string requirement) : out_(out), level_(level), requirement_(std::move(requirement)) {}

  // A check at the step's level.
  void verify(bool ok, const std::string& what) { verify_at(ok, what, level_, requirement_); }
  void verify_at(bool ok, const std::string& what, Level level, const std::string& requirement) {
    out_.checks.push_back({what, ok ? Verdict::pass : verdict_when_failed(level), requirement, to_string(level)});
  }
  void add(Verdict verdict, const std::string& what) { out_.checks.push_back({what, verdict, requirement_, to_string(level_)}); }
  Level level() const { return level_; }
  const std::string& requirement() const { return requirement_; }

 private:
  Judgement& out_;
  Level level_;
  std::string requirement_;
};

bool wanted_absent(const std::optional<std::uint32_t>& usage, std::uint32_t bits) { return !usage || (*usage & bits) == 0; }

std::string names(const std::vector<std::string>& list) {
  std::string text;
  for (const auto& item : list) text += (text.empty() ? "" : ", ") + item;
  return text;
}

// The certificate that issued `cert`: among `candidates`, one whose subject is the issuer and
// whose key verifies the signature (a self-signed certificate is its own).
std::optional<Certificate> issuer_among(const Certificate& cert, const std::vector<const std::vector<Certificate>*>& candidates) {
  if (cert.is_self_signed()) return cert;
  for (const auto* list : candidates)
    for (const auto& c : *list)
      if (!(c == cert) && c.subject() == cert.issuer() && cert.signed_by(c.public_key())) return c;
  return std::nullopt;
}

// The RFC 5280 vocabulary (CertificateChecks) on one certificate. `presented` is what came with
// it (the TLS chain, or the rest of the enroll answer): a place to find its issuer.
void check_certificate(Checks& checks, const CertificateChecks& c, const Certificate& cert, const std::vector<Certificate>& presented,
                       const JudgeContext& context, const std::string& what) {
  if (c.version) checks.verify(cert.version() == *c.version, what + " is X.509 v" + std::to_string(cert.version()) + ", expected v" + std::to_string(*c.version));
  const std::string period = format_time(cert.not_before()) + " .. " + format_time(cert.not_after());
  if (c.valid_now)
    checks.verify(cert.valid_at(context.now) == *c.valid_now,
                  what + (*c.valid_now ? " is" : " is not") + " valid now (" + format_time(context.now) + " in " + period + ")");
  if (c.validity == "within-ca") {
    std::vector<const std::vector<Certificate>*> candidates{&presented, &context.trust_anchors};
    for (const auto& [name, bag] : context.bags) candidates.push_back(&bag);
    if (auto ca = issuer_among(cert, candidates)) {
      const bool inside = cert.not_before() >= ca->not_before() && cert.not_after() <= ca->not_after();
      checks.verify(inside, what + " validity " + period + " lies within its CA's " + format_time(ca->not_before()) + " .. " +
                                format_time(ca->not_after()) + " (" + ca->subject().to_string() + ")");
    } else {
      checks.add(Verdict::error, what + ": its issuer '" + cert.issuer().to_string() +
                                     "' is neither among the certificates sent with it nor in a captured bag or the trust anchors, so its validity cannot be compared");
    }
  }
  const auto usage = cert.key_usage();
  const std::string usage_text = usage ? "[" + key_usage::to_string(*usage) + "]" : "none (no keyUsage extension)";
  for (const auto& bit : c.key_usage) {
    const auto wanted = key_usage::parse(bit);
    checks.verify(wanted.ok() && usage && (*usage & *wanted) == *wanted, what + " keyUsage " + usage_text + " includes " + bit);
  }
  for (const auto& bit : c.key_usage_absent) {
    const auto unwanted = key_usage::parse(bit);
    checks.verify(wanted_absent(usage, unwanted.ok() ? *unwanted : 0), what + " keyUsage " + usage_text + " lacks " + bit);
  }
  for (const auto& bit : c.key_usage_permits) {
    const auto wanted = key_usage::parse(bit);
    checks.verify(wanted.ok() && (!usage || (*usage & *wanted) == *wanted), what + " keyUsage " + usage_text + " permits " + bit);
  }
  if (c.basic_constraints_ca) {
    const std::string found = cert.has_basic_constraints() ? (cert.is_ca() ? "cA TRUE" : "cA FALSE") : "no basicConstraints";
    checks.verify(cert.is_ca() == *c.basic_constraints_ca,
                  what + (*c.basic_constraints_ca ? " is a CA (basicConstraints cA TRUE)" : " is not a CA (no cA TRUE)") + ": " + found);
  }
  if (!c.crl_distribution_points.empty())
    checks.verify(cert.has_crl_distribution_points() == (c.crl_distribution_points == "present"),
                  what + " cRLDistributionPoints " + c.crl_distribution_points + " (" + (cert.has_crl_distribution_points() ? "present" : "absent") + ")");
  if (!c.authority_info_access.empty())
    checks.verify(cert.has_authority_info_access() == (c.authority_info_access == "present"),
                  what + " authorityInfoAccess " + c.authority_info_access + " (" + (cert.has_authority_info_access() ? "present" : "absent") + ")");
  if (c.signature_algorithm == "strong")
    checks.verify(!cert.has_weak_signature(), what + " signature algorithm " + cert.signature_algorithm() + " is not MD5 or SHA-1 based");
  for (const auto& eku : c.eku) checks.verify(cert.has_extended_key_usage(eku_oid(eku)), what + " has EKU " + eku);
  if (!c.eku_permits.empty()) {
    const auto present = cert.extended_key_usages();
    bool ok = true;
    for (const auto& eku : c.eku_permits) ok = ok && (present.empty() || cert.has_extended_key_usage(eku_oid(eku)));
    std::vector<std::string> shown;
    for (const auto& o : present) shown.push_back(oid::short_name(o));
    checks.verify(ok, what + " extendedKeyUsage " + (present.empty() ? std::string("absent (any purpose)") : "[" + names(shown) + "]") +
                          " permits " + names(c.eku_permits));
  }
  if (!c.name.empty()) {
    std::vector<std::string> sans;
    for (const auto& san : cert.subject_alt_names()) sans.push_back(san.to_string());
    checks.verify(cert.carries_name(c.name), what + " subjectAltName [" + names(sans) + "] carries the name " + c.name);
  }
  if (!c.chains_to.empty()) {
    PathValidation validation;
    validation.at = context.now;
    validation.intermediates.assign(presented.begin(), presented.end());
    if (c.chains_to == "trust-anchors") {
      validation.trust_anchors = context.trust_anchors;
    } else if (auto bag = context.bags.find(c.chains_to); bag != context.bags.end()) {
      for (const auto& b : bag->second) (b.is_self_signed() ? validation.trust_anchors : validation.intermediates).push_back(b);
    }
    if (validation.trust_anchors.empty()) {
      checks.add(Verdict::error, what + ": no " + (c.chains_to == "trust-anchors" ? std::string("trust anchors of the target") : "captured bag '" + c.chains_to + "' with a root") + " to chain to");
    } else {
      auto verdict = validate_path(cert, validation);
      const bool ok = verdict.ok() && verdict->valid;
      checks.verify(ok, what + " chains to " + c.chains_to + " through the certificates sent with it" +
                            (ok ? std::string() : ": " + (verdict.ok() ? verdict->reason : verdict.error().message)));
    }
  }
}

// The TLS facts of a connection (connect steps, and send steps on the connection they used).
void check_connection(Checks& checks, const Expectation& e, const TlsConnectionInfo& tls, const JudgeContext& context) {
  const std::string negotiated = std::string(to_string(tls.version)) + " " + tls.cipher;
  if (e.resumed)
    checks.verify(tls.resumed == *e.resumed, std::string("the handshake ") + (tls.resumed ? "resumed the offered session" : "was a full one") + " (" +
                                                 negotiated + "), expected " + (*e.resumed ? "a resumed session" : "a full handshake"));
  if (e.secure_renegotiation)
    checks.verify(tls.secure_renegotiation == *e.secure_renegotiation,
                  std::string("the server ") + (tls.secure_renegotiation ? "supports" : "does not signal") + " RFC 5746 secure renegotiation (" + negotiated + ")");
  if (e.renegotiation_requested)
    checks.verify((tls.hello_requests > 0) == *e.renegotiation_requested,
                  "the server sent " + std::to_string(tls.hello_requests) + " HelloRequest(s) on this connection" +
                      (*e.renegotiation_requested ? ", expected one" : ", expected none"));
  if (e.server_certificate) {
    if (tls.peer_chain.empty()) {
      checks.verify(false, "the server presented no certificate (" + negotiated + ")");
    } else {
      const std::vector<Certificate> rest(tls.peer_chain.begin() + 1, tls.peer_chain.end());
      check_certificate(checks, *e.server_certificate, tls.peer_chain.front(), rest, context, "the server certificate");
    }
  }
}

// RFC 6690 link-format: "<uri>;attr=value;attr=\"v1 v2\",<uri>;..." as (uri, attributes) entries.
struct Link {
  std::string target;
  std::map<std::string, std::string> attributes;  // quotes removed
};

std::vector<Link> parse_link_format(const std::string& body) {
  std::vector<Link> links;
  std::size_t i = 0;
  auto skip_space = [&] {
    while (i < body.size() && std::isspace(static_cast<unsigned char>(body[i]))) ++i;
  };
  while (i < body.size()) {
    skip_space();
    if (i >= body.size() || body[i] != '<') break;  // not link-format from here on
    const auto close = body.find('>', i);
    if (close == std::string::npos) break;
    Link link;
    link.target = body.substr(i + 1, close - i - 1);
    i = close + 1;
    while (i < body.size() && body[i] == ';') {
      ++i;
      std::string name, value;
      while (i < body.size() && body[i] != '=' && body[i] != ';' && body[i] != ',') name.push_back(body[i++]);
      if (i < body.size() && body[i] == '=') {
        ++i;
        if (i < body.size() && body[i] == '"') {
          const auto end = body.find('"', i + 1);
          value = body.substr(i + 1, (end == std::string::npos ? body.size() : end) - i - 1);
          i = end == std::string::npos ? body.size() : end + 1;
        } else {
          while (i < body.size() && body[i] != ';' && body[i] != ',') value.push_back(body[i++]);
        }
      }
      name.erase(0, name.find_first_not_of(" \t"));
      name.erase(name.find_last_not_of(" \t") + 1);
      link.attributes[name] = value;
    }
    links.push_back(std::move(link));
    skip_space();
    if (i < body.size() && body[i] == ',') ++i;
  }
  return links;
}

std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string word; in >> word;) out.push_back(word);
  return out;
}

// The Content-Formats RFC 9148 4.1 lists for each EST-coaps resource type; empty = any.
std::vector<std::string> formats_of_resource_type(const std::string& rt) {
  if (rt == "ace.est.crts" || rt == "ace.est.sen" || rt == "ace.est.sren") return {"281", "287"};
  if (rt == "ace.est.att") return {"285"};
  if (rt == "ace.est.skg" || rt == "ace.est.skc") return {"62"};
  return {};
}


// --- Field-bug checks (shared/spec/field-bugs.md) --------------------------------------------

// FB-04, FB-18, FB-24: an error a person can act on (7030-4.2.3-c): a CMC response, or non-empty
// text (no Content-Type, or text/*) of printable characters with at least one letter.
std::string error_text_problem(const HttpResponse& response) {
  const auto header = response.header("Content-Type");
  auto type = header ? MediaType::parse(*header) : Result<MediaType>(make_error(ErrorCode::invalid_input, "none"));
  if (header && type.ok() && type->same_type(media_types::pkcs7_mime)) {
    auto der = decode_est_body(response.body, std::nullopt);
    if (der.ok() && parse_full_pki_response(*der).ok()) return "";
    return "the application/pkcs7-mime error body is not a CMC Full PKI Response";
  }
  if (header && (!type.ok() || type->type != "text")) return "Content-Type '" + *header + "' is not text";
  bool letter = false;
  for (unsigned char c : response.body) {
    if (c < 0x20 && c != '\t' && c != '\r' && c != '\n') return "the body holds control or binary bytes";
    if (c == 0x7f) return "the body holds control or binary bytes";
    letter |= std::isalpha(c) != 0 || c >= 0x80;
  }
  if (!letter) return response.body.empty() ? "the body is empty" : "the body holds no words";
  return "";
}

// FB-18: Retry-After as RFC 9110 10.2.3 has it: delta-seconds or an HTTP-date (any of the three
// forms a recipient must read). The date's distance from now does not matter, only its form.
std::string retry_after_problem(const HttpResponse& response) {
  const auto value = response.header("Retry-After");
  if (!value) return "no Retry-After header";
  auto parsed = parse_retry_after(*value, TimePoint{});
  return parsed.ok() ? "" : parsed.error().message;
}

// FB-08: the whole certs-only stack (RFC 8951 3, RFC 7030 4.1.3, RFC 5652 5.1): base64 text that
// decodes to a ContentInfo of id-signedData, SignedData version 1, id-data without content, only
// X.509 certificates, no signerInfos.
std::string certs_only_structure_problem(std::string_view body) {
  for (unsigned char c : body)
    if (!(std::isalnum(c) || c == '+' || c == '/' || c == '=' || c == ' ' || c == '\t' || c == '\r' || c == '\n'))
      return "the body is not base64 text (binary or other bytes)";
  auto der = decode_est_body(body, std::nullopt);
  if (!der.ok()) return der.error().message;
  auto info = der::read_single(*der, der::kSequence, "ContentInfo");
  if (!info.ok()) return info.error().message;
  der::Reader content_info(info->content);
  auto content_type = content_info.next("ContentInfo contentType");
  if (!content_type.ok()) return content_type.error().message;
  if (content_type->tag != der::kOid)
    return "the top-level SEQUENCE starts with " + der::tag_name(content_type->tag) + ", not a contentType OID: no ContentInfo (a bare SignedData?)";
  auto type = der::decode_oid(*content_type, "ContentInfo contentType");
  if (!type.ok()) return type.error().message;
  if (*type != "1.2.840.113549.1.7.2") return "contentType is " + *type + ", not id-signedData";
  auto explicit_content = content_info.expect(0xa0, "ContentInfo content [0]");
  if (!explicit_content.ok()) return explicit_content.error().message;
  auto signed_data = der::read_single(explicit_content->content, der::kSequence, "SignedData");
  if (!signed_data.ok()) return signed_data.error().message;
  der::Reader fields(signed_data->content);
  auto version = fields.expect(der::kInteger, "SignedData version");
  if (!version.ok()) return version.error().message;
  const auto v = der::decode_integer(*version);
  if (v != 1) return "SignedData version is " + (v ? std::to_string(*v) : std::string("unreadable")) + ", expected 1 (certificates only)";
  if (auto algorithms = fields.expect(der::kSet, "SignedData digestAlgorithms"); !algorithms.ok()) return algorithms.error().message;
  auto encap = fields.expect(der::kSequence, "SignedData encapContentInfo");
  if (!encap.ok()) return encap.error().message;
  der::Reader encap_fields(encap->content);
  auto encap_type = encap_fields.expect(der::kOid, "encapContentInfo eContentType");
  if (!encap_type.ok()) return encap_type.error().message;
  if (auto oid = der::decode_oid(*encap_type, "eContentType"); !oid.ok() || *oid != "1.2.840.113549.1.7.1")
    return "encapsulated content type is not id-data";
  if (!encap_fields.empty()) return "the encapsulated content is present, expected none";
  while (!fields.empty()) {
    auto field = fields.next("SignedData");
    if (!field.ok()) return field.error().message;
    if (field->tag == 0xa0) {
      der::Reader certs(field->content);
      while (!certs.empty()) {
        auto cert = certs.next("certificates");
        if (!cert.ok()) return cert.error().message;
        if (cert->tag != der::kSequence) return "certificates holds a " + der::tag_name(cert->tag) + " (an attribute or other certificate), not an X.509 certificate";
      }
    } else if (field->tag == der::kSet) {
      if (!field->content.empty()) return "SignedData has signerInfos, expected none (degenerate SignedData)";
      if (!fields.empty()) return "bytes after signerInfos";
      return "";
    } else if (field->tag != 0xa1) {
      return "unexpected " + der::tag_name(field->tag) + " in SignedData";
    }
  }
  return "SignedData has no signerInfos SET";
}

// FB-11: a real multipart parse (7030-4.4.2-a): the boundary parameter, the boundary in the body,
// then the parts counted.
std::string multipart_parts_problem(const HttpResponse& response, int want) {
  const auto header = response.header("Content-Type").value_or("");
  auto type = MediaType::parse(header);
  if (!type.ok() || type->type != "multipart") return "Content-Type '" + header + "' is not multipart";
  auto boundary = multipart_boundary(*type);
  if (!boundary.ok()) return "Content-Type '" + header + "': " + boundary.error().message;
  if (response.body.find("--" + *boundary) == std::string::npos) return "the boundary '" + *boundary + "' does not occur in the body";
  auto parts = parse_multipart(response.body, *boundary);
  if (!parts.ok()) return parts.error().message;
  if (static_cast<int>(parts->size()) != want) return std::to_string(parts->size()) + " part(s), expected " + std::to_string(want);
  return "";
}
}  // namespace

Judgement judge_connection(const Expectation& e, const TlsConnectionInfo& tls, const JudgeContext& context) {
  Judgement out;
  Checks checks(out, level_of(e, context), requirement_of(e, context));
  check_connection(checks, e, tls, context);
  return out;
}

const char* to_string(Level level) {
  switch (level) {
    case Level::must: return "MUST";
    case Level::should: return "SHOULD";
    case Level::info: return "info";
  }
  return "MUST";
}

std::optional<Level> parse_level(const std::string& text) {
  const auto t = ascii_lowercase(text);
  if (t == "must" || t == "fail") return Level::must;
  if (t == "should" || t == "warn") return Level::should;
  if (t == "info" || t == "may" || t == "record") return Level::info;
  return std::nullopt;
}

Verdict verdict_when_failed(Level level) {
  switch (level) {
    case Level::must: return Verdict::fail;
    case Level::should: return Verdict::warn;
    case Level::info: return Verdict::info;
  }
  return Verdict::fail;
}

Verdict Judgement::verdict() const {
  Verdict v = Verdict::pass;
  for (const auto& c : checks) v = worse(v, c.verdict);
  return v;
}

std::string Judgement::first_problem() const {
  // The worst first: a failure before a warning.
  const CheckResult* found = nullptr;
  for (const auto& c : checks)
    if (c.verdict != Verdict::pass && (found == nullptr || severity(c.verdict) > severity(found->verdict))) found = &c;
  return found ? found->what : "";
}

void extract_certificates(const HttpResponse& response, const std::optional<Csr>& csr_key_owner, std::vector<Certificate>& certs,
                          std::optional<PrivateKey>& key, std::string& key_problem, std::string& problem) {
  auto type = MediaType::parse(response.header("Content-Type").value_or(""));
  if (type.ok() && type->same_type("multipart/mixed")) {
    auto boundary = multipart_boundary(*type);
    if (!boundary.ok()) return void(problem = boundary.error().message);
    auto parts = parse_multipart(response.body, *boundary);
    if (!parts.ok()) return void(problem = parts.error().message);
    bool key_part = false;
    for (const auto& part : *parts) {
      auto part_type = MediaType::parse(part.header("Content-Type").value_or(""));
      if (!part_type.ok()) continue;
      auto der = decode_est_body(part.body, std::nullopt);
      if (part_type->same_type(media_types::pkcs8)) {
        key_part = true;
        if (!der.ok()) {
          key_problem = "the application/pkcs8 part is not base64 DER: " + der.error().message;
          continue;
        }
        // RFC 7030 4.4.2: PrivateKeyInfo (PKCS#8) and nothing else; PKCS#1/SEC1 under this type is wrong.
        auto parsed = PrivateKey::from_pkcs8_der(*der);
        if (parsed.ok()) key = *parsed;
        else if (PrivateKey::from_any_der(*der).ok()) key_problem = "the application/pkcs8 part holds a PKCS#1/SEC1 key, not PKCS#8 PrivateKeyInfo";
        else key_problem = "the application/pkcs8 part: " + parsed.error().message;
      } else if (der.ok()) {
        if (auto bag = CertsOnly::from_der(*der); bag.ok()) certs = bag->certificates();
      }
    }
    if (!key_part && key_problem.empty()) key_problem = "no application/pkcs8 part in the multipart answer";
    if (certs.empty()) problem = "no certs-only part in the multipart answer";
    // The certificate for the server-generated key first, wherever the server put it.
    if (key) std::stable_partition(certs.begin(), certs.end(), [&](const Certificate& c) { return c.public_key() == key->public_key(); });
    return;
  }
  auto der = decode_est_body(response.body, std::nullopt);
  if (!der.ok()) return void(problem = der.error().message);
  if (auto bag = CertsOnly::from_der(*der); bag.ok()) {
    certs = bag->certificates();
  } else if (auto pki = parse_full_pki_response(*der); pki.ok()) {
    certs = pki->certificates;
  } else {
    return void(problem = "body is neither certs-only nor a CMC response");
  }
  if (csr_key_owner) {
    std::stable_partition(certs.begin(), certs.end(), [&](const Certificate& c) { return c.public_key() == csr_key_owner->public_key(); });
  }
}

std::string requirement_of(const Expectation& e, const JudgeContext& context) {
  return e.requirement.empty() ? context.default_requirement : e.requirement;
}

Level level_of(const Expectation& e, const JudgeContext& context) {
  if (auto overridden = parse_level(e.level)) return *overridden;
  return context.level_of ? context.level_of(requirement_of(e, context)) : Level::must;
}

// RFC 9908's shape of a CsrAttrs answer: one check per rule, each at its own catalog row's level;
// a legacy form RFC 7030's own examples use warns instead of failing (catalog.md part 4 #5).
void judge_csrattrs_shape(const CsrAttrs& attrs, const JudgeContext& context, Checks& checks) {
  const auto findings = lint_csrattrs(attrs);
  static const std::pair<const char*, const char*> kRules[] = {
      {"csrattrs-3.2-a", "extensions are asked for in one extensionRequest holding one Extensions, no extnID repeated"},
      {"csrattrs-3.2-b", "a key type is one attribute of the key algorithm carrying its parameters"},
      {"7030-4.5.2-f", "signature schemes are bare OIDs, key algorithms attributes, extensions inside extensionRequest"},
  };
  for (const auto& [rule, what] : kRules) {
    const Level level = context.level_of ? context.level_of(rule) : Level::must;
    bool any = false;
    for (const auto& finding : findings) {
      if (finding.rule != rule) continue;
      any = true;
      checks.verify_at(false, std::string(what) + ": " + finding.what + (finding.legacy ? " (legacy RFC 7030 form: a warning)" : ""),
                       finding.legacy && level == Level::must ? Level::should : level, rule);
    }
    if (!any) checks.verify_at(true, what, level, rule);
  }
}

namespace {

// expect.upstream: what the EST-coaps proxy forwarded for this request (9148-5-*).
void judge_upstream(const Expectation::Upstream& u, const Observation& observation, Checks& checks) {
  if (!observation.upstream) {
    checks.add(Verdict::info, "upstream side not judged: " +
                                  (observation.upstream_unavailable.empty() ? std::string("not visible") : observation.upstream_unavailable));
    return;
  }
  const auto& records = *observation.upstream;
  if (u.requests)
    checks.verify(static_cast<int>(records.size()) == *u.requests, "the request body reached the EST server " + std::to_string(records.size()) +
                                                                       " time(s), expected " + std::to_string(*u.requests));
  const bool field_checks = !u.method.empty() || !u.path.empty() || !u.content_type.empty() || !u.client.empty() || u.status ||
                            !u.scheme.empty() || u.tls_client || !u.tls_client_eku.empty();
  if (!field_checks) return;
  if (records.empty()) {
    if (!u.requests) checks.verify(false, "the request body never reached the EST server");
    return;
  }
  const UpstreamRecord& r = records.front();
  if (!u.method.empty()) checks.verify(r.method == u.method, "upstream method " + r.method + ", expected " + u.method);
  if (!u.path.empty()) checks.verify(r.path == u.path, "upstream path " + r.path + ", expected " + u.path);
  if (!u.content_type.empty()) {
    auto type = MediaType::parse(r.content_type);
    checks.verify(type.ok() && media_type_matches(*type, u.content_type),
                  "upstream Content-Type '" + r.content_type + "' is " + u.content_type);
  }
  if (!u.client.empty()) {
    auto want = DistinguishedName::parse(u.client);
    auto got = DistinguishedName::parse(r.client);
    checks.verify(want.ok() && got.ok() && *got == *want,
                  "the forwarded device identity '" + (r.client.empty() ? std::string("none") : r.client) + "' = '" + u.client + "'");
  }
  if (u.status) checks.verify(r.status == *u.status, "the EST server answered the proxy HTTP " + std::to_string(r.status) + ", expected " +
                                                         std::to_string(*u.status));
  // The proxy's own connection (9148-5-a: EST over TLS upstream; 9148-5-b: it authenticates itself).
  if (!u.scheme.empty())
    checks.verify(r.scheme == u.scheme, "the proxy reached the EST server over " + (r.scheme.empty() ? std::string("an unknown scheme") : r.scheme) +
                                            ", expected " + u.scheme);
  if (u.tls_client)
    checks.verify(!r.tls_client.empty(), "the proxy presented a TLS client certificate upstream" +
                                             (r.tls_client.empty() ? std::string(": none")
                                                                   : " ('" + r.tls_client + "', " + r.tls_version + ", EKUs: " +
                                                                         (r.tls_client_ekus.empty() ? std::string("none") : names(r.tls_client_ekus)) + ")"));
  if (!u.tls_client_eku.empty()) {
    // RFC 9148 5 says the EST server learns of a Registrar from the cmcRA EKU but requires only
    // that the Registrar be authenticated: what the certificate carries is recorded.
    const std::string oid = eku_oid(u.tls_client_eku);
    const bool carries = std::find(r.tls_client_ekus.begin(), r.tls_client_ekus.end(), oid) != r.tls_client_ekus.end();
    checks.verify_at(carries, "the proxy's TLS client certificate carries EKU " + u.tls_client_eku +
                                  (carries ? std::string() : " (it carries: " + (r.tls_client_ekus.empty() ? std::string("none") : names(r.tls_client_ekus)) + ")"),
                     Level::info, checks.requirement());
  }
}


// 7030-4.4.2-c (RFC 7030 4.4.2, RFC 5958 4): the key part of a serverkeygen answer asked for
// encrypted is application/pkcs7-mime; smime-type=server-generated-key, an EnvelopedData whose
// RecipientInfo is ktri (v0/v2), kari (v3) or kekri (v4) with a key encryption (ktri, kekri) or key
// wrap (kari) the CSR listed in SMIMECapabilities, holding a signed AsymmetricKeyPackage that
// opens with the request's client key. The key found becomes the server key the other checks use.
void judge_encrypted_key(const HttpResponse& response, const Observation& observation, Judgement& out, Checks& checks) {
  auto type = MediaType::parse(response.header("Content-Type").value_or(""));
  auto boundary = type.ok() ? multipart_boundary(*type) : Result<std::string>(type.error());
  auto parts = boundary.ok() ? parse_multipart(response.body, *boundary) : Result<std::vector<MimePart>>(boundary.error());
  if (!parts.ok()) return checks.verify(false, "an encrypted key part in a multipart answer: " + parts.error().message);
  const MimePart* key_part = nullptr;
  std::string types;
  for (const auto& part : *parts) {
    const auto part_type = part.header("Content-Type").value_or("");
    types += (types.empty() ? "" : ", ") + part_type;
    auto media = MediaType::parse(part_type);
    if (media.ok() && (media->same_type(media_types::pkcs8) || media->same_type(media_types::pkcs7_mime)) &&
        !media_type_matches(*media, media_types::certs_only))
      key_part = &part;
  }
  if (!key_part) return checks.verify(false, "a key part in the answer (parts: " + types + ")");
  const auto key_type = key_part->header("Content-Type").value_or("");
  auto key_media = MediaType::parse(key_type);
  const bool typed = key_media.ok() && media_type_matches(*key_media, media_types::server_generated_key);
  checks.verify(typed, "the key part is application/pkcs7-mime; smime-type=server-generated-key (got '" + key_type + "')");
  if (!typed) return;
  if (!observation.client_identity)
    return checks.add(Verdict::error, "the request went without a client certificate, so there is no key to open the EnvelopedData with");
  auto der = decode_est_body(key_part->body, std::nullopt);
  if (!der.ok()) return checks.verify(false, "the key part is base64 DER: " + der.error().message);
  auto opened = open_server_key(*der, observation.client_identity->key, observation.client_identity->certificate);
  if (!opened.ok()) return checks.verify(false, "the key part opens as EnvelopedData(SignedData(key package)): " + opened.error().message);
  const auto& u = *opened;
  static const std::map<std::string, std::set<int>> versions = {{"ktri", {0, 2}}, {"kari", {3}}, {"kekri", {4}}};
  const auto allowed = versions.find(u.recipient_info);
  checks.verify(allowed != versions.end(), "the RecipientInfo is ktri, kari or kekri (got " + u.recipient_info + ")");
  if (allowed != versions.end())
    checks.verify(allowed->second.count(u.recipient_version) != 0,
                  u.recipient_info + " version " + std::to_string(u.recipient_version) + " is the one RFC 5652 gives it");
  std::vector<std::string> capabilities;
  if (observation.csr)
    if (auto value = observation.csr->attribute_value_der(oid::smime_capabilities))
      if (auto parsed = parse_smime_capabilities(*value); parsed.ok()) capabilities = *parsed;
  const std::string algorithm = u.recipient_info == "kari" ? u.key_wrap_algorithm : u.key_encryption_algorithm;
  checks.verify(std::find(capabilities.begin(), capabilities.end(), algorithm) != capabilities.end(),
                std::string(u.recipient_info == "kari" ? "the key wrap " : "the key encryption ") + oid::short_name(algorithm) +
                    " is one the CSR listed in SMIMECapabilities");
  checks.verify(u.enveloped_content_type == "1.2.840.113549.1.7.2",
                "the EnvelopedData holds id-signedData (got " + oid::short_name(u.enveloped_content_type) + ")");
  checks.verify(u.signed_content_type == oid::asymmetric_key_package,
                "the SignedData holds id-ct-KP-aKeyPackage (RFC 5958; got " + oid::short_name(u.signed_content_type) + ")");
  if (u.key) out.server_key = u.key;
}

}  // namespace

Judgement judge(const Expectation& e, const Observation& observation, const JudgeContext& context) {
  Judgement out;
  const std::string requirement = requirement_of(e, context);
  const Level level = level_of(e, context);
  Checks checks(out, level, requirement);
  // A tolerated status warns, but is never judged worse than the step's own level would judge any status.
  const Level tolerated_level = level == Level::info ? Level::info : Level::should;

  if (observation.kind != Observation::Kind::response) {
    const std::string how = observation.kind == Observation::Kind::refused_at_handshake ? "the TLS handshake failed"
                                                                                        : "the connection closed before any answer";
    if (e.refused) checks.add(Verdict::pass, "refused: " + how + " (" + observation.failure + ")");
    else if (e.refusal_tolerated)
      checks.verify_at(false, "refused (" + how + ": " + observation.failure + ") where an answer was expected; tolerated with a warning", tolerated_level,
                       requirement);
    else checks.verify(false, "no answer: " + how + " (" + observation.failure + ")");
    return out;
  }
  const HttpResponse& response = observation.response;
  const std::string got = "status " + std::to_string(response.status);

  // Checks that describe the expected answer (its headers, media type, body) apply when the
  // status is the expected one; a tolerated other status has already been judged as a warning.
  bool primary_status = true;
  if (e.refused) {
    const bool narrowed = !e.status.empty() || e.status_class;
    const bool ok = narrowed ? status_in(response.status, e.status, e.status_class) : response.status / 100 == 4;
    const bool tolerated = !ok && status_in(response.status, e.tolerated_status, e.tolerated_class);
    const std::string expected = narrowed ? status_list(e.status, e.status_class) : "4xx";
    if (ok) checks.add(Verdict::pass, "refused with HTTP " + std::to_string(response.status) + " (expected " + expected + ", or a TLS alert or reset)");
    else if (tolerated) checks.verify_at(false, got + ", expected " + expected + "; " + status_list(e.tolerated_status, e.tolerated_class) + " tolerated with a warning", tolerated_level, requirement);
    else checks.verify(false, "not refused as expected: " + got + ", expected " + expected + ", a TLS alert or a reset");
    primary_status = ok;
  } else if (!e.status.empty() || e.status_class) {
    const bool ok = status_in(response.status, e.status, e.status_class);
    primary_status = ok;
    const std::string expected = status_list(e.status, e.status_class);
    if (ok) checks.verify(true, got + ", expected " + expected);
    else if (status_in(response.status, e.tolerated_status, e.tolerated_class))
      checks.verify_at(false, got + ", expected " + expected + "; " + status_list(e.tolerated_status, e.tolerated_class) + " tolerated with a warning", tolerated_level, requirement);
    else checks.verify(false, got + ", expected " + expected);
  }
  // RFC 9110 11.6.1 / 15.5.2: a 401 MUST carry a challenge, whatever the scenario expected.
  if (response.status == 401 && response.reason.rfind("CoAP", 0) != 0)
    checks.verify_at(response.header("WWW-Authenticate").has_value(), "the 401 carries a WWW-Authenticate challenge (RFC 9110 15.5.2)",
                     Level::must, "7030-3.2.3-a");

  if (observation.tls) check_connection(checks, e, *observation.tls, context);
  else if (e.resumed || e.secure_renegotiation || e.renegotiation_requested || e.server_certificate)
    checks.verify(false, "the answer came without TLS, so the TLS checks cannot hold");

  // What the proxy forwarded is judged whatever the answer was (a refusal must not have been forwarded).
  if (e.upstream) judge_upstream(*e.upstream, observation, checks);
  if (!primary_status) return out;
  for (const auto& [name, want] : e.headers) {
    const auto value = response.header(name);
    if (want == "present") checks.verify(value.has_value(), "header " + name + " present");
    else if (want == "absent") checks.verify(!value.has_value(), "header " + name + " absent" + (value ? " (got '" + *value + "')" : ""));
    else if (!want.empty() && want[0] == '~')
      checks.verify(value && icontains(*value, want.substr(1)), "header " + name + " contains '" + want.substr(1) + "' (got '" + value.value_or("none") + "')");
    else checks.verify(value == want, "header " + name + " = '" + want + "' (got '" + value.value_or("none") + "')");
  }
  const auto content_type = response.header("Content-Type").value_or("");
  // A media type is the type of a success body: a 204 or a 404 (csrattrs "none available") has none.
  if (!e.media_type.empty() && response.status / 100 == 2 && !response.body.empty()) {
    auto type = MediaType::parse(content_type);
    bool ok = type.ok();
    if (ok) {
      if (e.media_type == "certs-only") ok = media_type_matches(*type, media_types::certs_only);
      else if (e.media_type == "pkcs7-mime") ok = type->same_type(media_types::pkcs7_mime);
      else if (e.media_type == "csrattrs") ok = type->same_type(media_types::csrattrs);
      else if (e.media_type == "multipart") ok = multipart_boundary(*type).ok();
      else if (e.media_type == "cmc-response") ok = media_type_matches(*type, media_types::cmc_response);
      else if (e.media_type == "text") ok = type->same_type("text/plain");
      else ok = media_type_matches(*type, e.media_type);
    }
    checks.verify(ok, "Content-Type '" + content_type + "' is " + e.media_type);
  }
  if (!e.body_contains.empty()) checks.verify(response.body.find(e.body_contains) != std::string::npos, "body contains '" + e.body_contains + "'");
  // coaps: as_http keeps the CoAP options as the pseudo headers Content-Format and Max-Age.
  if (e.content_format && response.status / 100 == 2) {  // the format of a success body, as media_type
    const auto format = response.header("Content-Format");
    if (*e.content_format < 0) checks.verify(!format, "no Content-Format" + (format ? " (got " + *format + ")" : std::string()));
    else checks.verify(format == std::to_string(*e.content_format),
                       "Content-Format " + format.value_or("none") + ", expected " + std::to_string(*e.content_format));
  }
  if (!e.max_age.empty()) {
    const auto age = response.header("Max-Age");
    if (e.max_age == "present") checks.verify(age.has_value(), "the answer carries Max-Age" + (age ? " (" + *age + " s)" : std::string()));
    else if (e.max_age == "absent") checks.verify(!age, "the answer carries no Max-Age" + (age ? " (got " + *age + ")" : std::string()));
    else checks.verify(age == e.max_age, "Max-Age " + age.value_or("none") + ", expected " + e.max_age);
  }
  if (e.max_block_size) {
    // RFC 7959 2.4: the server's blocks are no larger than the client's Block2 SZX (FB-40); as_http
    // gives the last block's size as Block2-Size.
    const auto size = response.header("Block2-Size");
    if (!size) checks.verify(false, "the answer came in one piece, not in Block2 blocks of at most " + std::to_string(*e.max_block_size) + " bytes");
    else checks.verify(std::atoi(size->c_str()) <= *e.max_block_size,
                       "Block2 blocks of " + *size + " bytes, at most " + std::to_string(*e.max_block_size) + " asked for");
  }
  if (e.separate) {
    // 9148-4.7-a: a slow server MAY send an empty ACK and then a separate response; what the
    // response was is recorded (the answer arriving whole is what the other checks judge).
    const bool separate = response.header("CoAP-Separate").has_value();
    checks.verify_at(separate == *e.separate,
                     std::string("the answer came ") + (separate ? "as a separate response after an empty ACK" : "piggybacked on the ACK") +
                         (separate == *e.separate ? "" : *e.separate ? ", not separate" : ", not piggybacked"),
                     Level::info, checks.requirement());
  }
  if (!e.links_contain.empty()) {
    const auto links = parse_link_format(response.body);
    for (const auto& want : e.links_contain) {
      const Link* found = nullptr;
      for (const auto& link : links) {
        auto rt = link.attributes.find("rt");
        if (rt == link.attributes.end()) continue;
        const auto types = words(rt->second);
        if (std::find(types.begin(), types.end(), want) != types.end()) found = &link;
        if (found) break;
      }
      if (!found) {
        checks.verify(false, "discovery lists rt=" + want + " (" + std::to_string(links.size()) + " link(s) in the answer)");
        continue;
      }
      const auto allowed = formats_of_resource_type(want);
      auto ct = found->attributes.find("ct");
      if (allowed.empty()) {
        checks.verify(true, "discovery lists rt=" + want + " at <" + found->target + ">");
      } else if (ct == found->attributes.end()) {
        checks.verify(false, "discovery lists rt=" + want + " at <" + found->target + "> without its ct (RFC 9148 4.1)");
      } else {
        const auto formats = words(ct->second);
        const bool ok = !formats.empty() && std::all_of(formats.begin(), formats.end(), [&](const std::string& f) {
          return std::find(allowed.begin(), allowed.end(), f) != allowed.end();
        });
        std::string allowed_text;
        for (const auto& a : allowed) allowed_text += (allowed_text.empty() ? "" : " ") + a;
        checks.verify(ok, "discovery lists rt=" + want + " at <" + found->target + "> with ct=\"" + ct->second + "\" (RFC 9148 4.1: " +
                              allowed_text + ")");
      }
    }
  }
  if (e.error_text && response.status >= 400) {
    const auto problem = error_text_problem(response);
    checks.verify(problem.empty(), "the error body is readable text or a CMC response" + (problem.empty() ? "" : ": " + problem));
  }
  if (e.retry_after_valid) {
    const auto problem = retry_after_problem(response);
    checks.verify(problem.empty(), "Retry-After is delta-seconds or an HTTP-date" + (problem.empty() ? " ('" + response.header("Retry-After").value_or("") + "')" : ": " + problem));
  }
  if (e.certs_only_structure && response.status / 100 == 2) {
    const auto problem = certs_only_structure_problem(response.body);
    checks.verify(problem.empty(), "base64 ContentInfo of a certs-only SignedData version 1" + (problem.empty() ? "" : ": " + problem));
  }
  if (e.multipart_parts && response.status / 100 == 2) {
    const auto problem = multipart_parts_problem(response, *e.multipart_parts);
    checks.verify(problem.empty(), "multipart/mixed with a boundary and " + std::to_string(*e.multipart_parts) + " parts" + (problem.empty() ? "" : ": " + problem));
  }

  // Certificates in the answer: read for every 2xx (captures need them) and whenever a check asks.
  const bool wants_certs = e.certificate_count || e.min_certificates || e.contains_root || !e.issued_subject.empty() ||
                           !e.issued_common_name.empty() || !e.issued_issuer.empty() || !e.issued_serial.empty() || !e.issued_san.empty() ||
                           !e.issued_san_contains.empty() || !e.issued_eku.empty() || !e.issued_public_key.empty() ||
                           !e.issued_chains_to.empty() || e.server_key_matches || e.issued_profile.any();
  std::string key_problem;
  if (wants_certs || response.status / 100 == 2)
    extract_certificates(response, observation.csr ? observation.csr : observation.last_csr, out.certificates, out.server_key, key_problem,
                         out.extract_problem);
  if (e.server_key_encrypted && response.status / 100 == 2) {
    judge_encrypted_key(response, observation, out, checks);
    if (out.server_key) {
      key_problem.clear();
      std::stable_partition(out.certificates.begin(), out.certificates.end(),
                            [&](const Certificate& c) { return c.public_key() == out.server_key->public_key(); });
    }
  }
  if (!out.certificates.empty()) out.issued = out.certificates.front();
  if (wants_certs) {
    if (!out.extract_problem.empty()) {
      checks.verify(false, "response carries certificates: " + out.extract_problem);
    } else {
      const auto& certs = out.certificates;
      if (e.certificate_count)
        checks.verify(static_cast<int>(certs.size()) == *e.certificate_count,
                      std::to_string(certs.size()) + " certificate(s), expected " + std::to_string(*e.certificate_count));
      if (e.min_certificates)
        checks.verify(static_cast<int>(certs.size()) >= *e.min_certificates,
                      std::to_string(certs.size()) + " certificate(s), expected at least " + std::to_string(*e.min_certificates));
      if (e.contains_root) {
        const bool has_root = std::any_of(certs.begin(), certs.end(), [](const Certificate& c) { return c.is_self_signed(); });
        checks.verify(has_root == *e.contains_root, std::string("the bag ") + (*e.contains_root ? "holds" : "holds no") + " a self-signed root certificate");
      }
      if (out.issued) {
        const Certificate& issued = *out.issued;
        if (!e.issued_subject.empty()) {
          auto want = DistinguishedName::parse(e.issued_subject);
          checks.verify(want.ok() && issued.subject() == *want, "issued subject '" + issued.subject().to_string() + "' = '" + e.issued_subject + "'");
        }
        if (!e.issued_serial.empty())
          checks.verify(issued.serial_hex() == ascii_lowercase(e.issued_serial), "issued serial " + issued.serial_hex() + " = " + ascii_lowercase(e.issued_serial));
        if (!e.issued_common_name.empty())
          checks.verify(issued.subject().common_name() == e.issued_common_name,
                        "issued commonName '" + issued.subject().common_name().value_or("") + "' = '" + e.issued_common_name + "'");
        if (!e.issued_issuer.empty())
          checks.verify(icontains(issued.issuer().to_string(), e.issued_issuer), "issuer '" + issued.issuer().to_string() + "' contains '" + e.issued_issuer + "'");
        std::vector<std::string> sans;
        for (const auto& san : issued.subject_alt_names()) sans.push_back(san.to_string());
        std::string sans_text;
        for (const auto& s : sans) sans_text += (sans_text.empty() ? "" : ", ") + s;
        if (!e.issued_san.empty()) {
          auto want = e.issued_san;
          auto sorted = sans;
          std::sort(sorted.begin(), sorted.end());
          std::sort(want.begin(), want.end());
          checks.verify(sorted == want, "issued SAN [" + sans_text + "] is exactly the expected set");
        }
        for (const auto& want : e.issued_san_contains)
          checks.verify(std::find(sans.begin(), sans.end(), want) != sans.end(), "issued SAN [" + sans_text + "] contains " + want);
        for (const auto& eku : e.issued_eku) checks.verify(issued.has_extended_key_usage(eku_oid(eku)), "issued certificate has EKU " + eku);
        if (!e.issued_public_key.empty()) {
          const bool same = observation.csr && issued.public_key() == observation.csr->public_key();
          checks.verify(e.issued_public_key == "csr" ? same : !same,
                        e.issued_public_key == "csr" ? "issued public key equals the CSR's" : "issued public key differs from the CSR's");
        }
        if (!e.issued_chains_to.empty()) {
          auto bag = context.bags.find(e.issued_chains_to);
          if (bag == context.bags.end() || bag->second.empty()) {
            checks.add(Verdict::error, "no captured /cacerts bag '" + e.issued_chains_to + "' to chain to");
          } else {
            PathValidation validation;
            validation.at = context.now;
            for (const auto& c : bag->second) (c.is_self_signed() ? validation.trust_anchors : validation.intermediates).push_back(c);
            auto verdict = validate_path(issued, validation);
            const bool ok = verdict.ok() && verdict->valid;
            checks.verify(ok, "the issued certificate chains to a root of /cacerts through certificates of /cacerts (7030-4.1.3-d)" +
                                  (ok ? std::string() : ": " + (verdict.ok() ? verdict->reason : verdict.error().message)));
          }
        }
        if (e.issued_profile.any()) {
          const std::vector<Certificate> rest(certs.begin() + 1, certs.end());
          check_certificate(checks, e.issued_profile, issued, rest, context, "the issued certificate");
        }
        if (e.server_key_matches) {
          const bool matches = out.server_key && issued.public_key() == out.server_key->public_key();
          checks.verify(matches == *e.server_key_matches,
                        std::string("server-generated PKCS#8 key ") + (*e.server_key_matches ? "matches" : "does not match") + " the certificate" +
                            (key_problem.empty() ? "" : " (" + key_problem + ")"));
        }
      }
    }
  }
  // csrattrs bodies come with 200, or over coaps (as_http) with 2.05.
  const bool coap_answer = response.reason.rfind("CoAP", 0) == 0;
  if ((!e.csrattrs_contains.empty() || e.csrattrs_valid || e.csrattrs_lint || !e.csrattrs_key_type.empty()) &&
      (response.status == 200 || (coap_answer && response.status == 205))) {
    auto der = decode_est_body(response.body, std::nullopt);
    auto attrs = der.ok() ? CsrAttrs::from_der(*der) : Result<CsrAttrs>(der.error());
    if (e.csrattrs_valid)
      checks.verify(attrs.ok(), "the body is base64 of a DER CsrAttrs" + (attrs.ok() ? " (" + std::to_string(attrs->entries().size()) + " entries)" : ": " + attrs.error().message));
    for (const auto& want : e.csrattrs_contains)
      checks.verify(attrs.ok() && attrs->contains_oid(want), "csrattrs contains " + want + (attrs.ok() ? "" : " (" + attrs.error().message + ")"));
    if (e.csrattrs_lint && attrs.ok()) judge_csrattrs_shape(*attrs, context, checks);
    if (!e.csrattrs_key_type.empty()) {
      const auto want = parse_key_type(e.csrattrs_key_type);
      std::string found = "none";
      bool asks = false;
      if (!attrs.ok()) {
        found = attrs.error().message;
      } else if (const auto got = attrs->required_key_type()) {
        found = to_string(*got);
        asks = want.ok() && *got == *want;
      }
      checks.verify(asks, "csrattrs asks for a " + e.csrattrs_key_type + " key (RFC 9908 3.2 form; found " + found + ")");
    }
  }
  if (!e.cmc_status.empty() || !e.cmc_fail_info.empty()) {
    auto der = decode_est_body(response.body, std::nullopt);
    auto pki = der.ok() ? parse_full_pki_response(*der) : Result<PkiResponse>(der.error());
    if (!pki.ok() || pki->statuses.empty()) {
      checks.verify(false, "body is a CMC Full PKI Response with a status" + (pki.ok() ? std::string() : " (" + pki.error().message + ")"));
    } else {
      if (!e.cmc_status.empty())
        checks.verify(to_string(pki->statuses.front().status) == e.cmc_status, "CMC status " + to_string(pki->statuses.front().status) + " = " + e.cmc_status);
      if (!e.cmc_fail_info.empty()) {
        const auto fail_info = pki->statuses.front().fail_info ? to_string(*pki->statuses.front().fail_info) : std::string("none");
        checks.verify(fail_info == e.cmc_fail_info, "CMC failInfo " + fail_info + " = " + e.cmc_fail_info);
      }
    }
  }
  return out;
}

}  // namespace estlab::conformance
