#include "estlab/gateway/config.hpp"

#include <algorithm>
#include <map>

#include "estlab/core/bytes.hpp"
#include "estlab/core/certificate.hpp"

namespace estlab::gateway {

const char* to_string(Profile profile) {
  return profile == Profile::rfc7030 ? "rfc7030" : "protocol-gateway";
}

std::optional<Profile> parse_profile(std::string_view text) {
  if (text == "rfc7030") return Profile::rfc7030;
  if (text == "protocol-gateway") return Profile::protocol_gateway;
  return std::nullopt;
}

bool GatewayConfig::renewal_requires_last_issued() const {
  return renewal_rule_polarity == RenewalRulePolarity::documented ? allow_renewal_with_old_certificates
                                                                  : !allow_renewal_with_old_certificates;
}

GatewayConfig GatewayConfig::defaults(Profile profile) {
  GatewayConfig config;
  config.profile = profile;
  if (profile == Profile::protocol_gateway) config.challenge_password = ChallengePasswordPolicy::deny;  // PG-PWD-1
  return config;
}

const std::vector<std::string>& GatewayConfig::known_keys() {
  static const std::vector<std::string> keys = {
      // The product's own keys.
      "allowRenewalWithOldCertificates", "enroll.use-authentication-cert", "enroll.mandatorypassword",
      "enroll.check-subject-values", "handler.<n>.filter", "handler.<n>.format", "handler.<n>.tokenprocedure",
      "handler.<n>.authtype", "handler.<n>.realm", "handler.<n>.idm.requestUrl", "handler.<n>.idm.tls.token",
      "handler.<n>.idm.tls.password",
      // The lab's keys.
      "estlab.profile", "estlab.base-dir", "estlab.renewal-rule-polarity", "estlab.listen.host", "estlab.listen.port",
      "estlab.tls.certificate", "estlab.tls.key", "estlab.tls.min-version", "estlab.tls.max-version",
      "estlab.tls.keylog", "estlab.trust-anchors", "estlab.ca.store", "estlab.ca.default", "estlab.ca.labels", "estlab.ca.labels.enabled",
      "estlab.ca.cacerts-include-rollover", "estlab.ca.certificate-profile", "estlab.auth.realm",
      "estlab.auth.officer-policy", "estlab.auth.revocation", "estlab.challenge-password", "estlab.linking.tls13",
      "estlab.linking.required", "estlab.linking.ra-relinking", "estlab.auth.basic-single-use", "estlab.prereg.<n>.cn", "estlab.prereg.<n>.user", "estlab.prereg.<n>.password",
      "estlab.prereg.<n>.factory-cert", "estlab.prereg.<n>.factory-fingerprint", "estlab.csrattrs", "estlab.ca.required-key-type",
      "estlab.csrattrs.when-empty", "estlab.serverkeygen.enabled", "estlab.serverkeygen.key-type", "estlab.fullcmc.enabled",
      "estlab.approval", "estlab.approval.retry-after", "estlab.limits.max-header-bytes",
      "estlab.limits.max-body-bytes", "estlab.limits.max-connections", "estlab.limits.max-requests-per-connection",
      "estlab.timeouts.handshake", "estlab.timeouts.read", "estlab.timeouts.write", "estlab.answer-delay", "estlab.faults",
      "estlab.transcript.dir",
      "estlab.transcript.secrets",
  };
  return keys;
}

namespace {

class Reader {
 public:
  Reader(const Properties& properties, std::filesystem::path base_dir)
      : p_(properties), base_(std::move(base_dir)) {}

  template <typename T>
  T take(Result<T> result) const {
    if (!result.ok()) throw ConfigError(result.error().message);
    return std::move(result).value();
  }

  std::string where(std::string_view key) const {
    std::string location = p_.source_name().empty() ? "est.properties" : p_.source_name();
    if (auto line = p_.line_of(key); line && *line > 0) location += ":" + std::to_string(*line);
    return location + ": " + std::string(key);
  }

  [[noreturn]] void fail(std::string_view key, const std::string& what) const { throw ConfigError(where(key) + ": " + what); }

  std::optional<std::string> text(std::string_view key) const {
    auto value = p_.get_string(key);
    if (!value) return std::nullopt;
    const auto first = value->find_first_not_of(" \t");
    if (first == std::string::npos) return std::string();
    return value->substr(first, value->find_last_not_of(" \t") - first + 1);
  }

  template <typename Enum>
  Enum choice(std::string_view key, const std::map<std::string, Enum>& options, Enum fallback) const {
    auto value = text(key);
    if (!value) return fallback;
    if (auto it = options.find(*value); it != options.end()) return it->second;
    std::string names;
    for (const auto& [name, _] : options) names += (names.empty() ? "" : ", ") + name;
    fail(key, "expected one of " + names + "; got '" + *value + "'");
  }

  std::filesystem::path path(std::string_view key, const std::filesystem::path& fallback) const {
    auto value = text(key);
    if (!value) return fallback;
    if (value->empty()) fail(key, "empty path");
    std::filesystem::path result(*value);
    return result.is_absolute() ? result : base_ / result;
  }

  bool flag(std::string_view key, bool fallback) const { return take(p_.get_bool(key, fallback)); }
  std::int64_t integer(std::string_view key, std::int64_t min, std::int64_t max, std::int64_t fallback) const {
    return take(p_.get_int(key, min, max, fallback));
  }
  std::chrono::milliseconds duration(std::string_view key, std::chrono::milliseconds fallback) const {
    if (!p_.contains(key)) return fallback;
    auto seconds = take(p_.get_duration_seconds(key));
    if (seconds.count() == 0) fail(key, "must be at least 1 second");
    return seconds;
  }
  std::vector<std::string> list(std::string_view key) const { return take(p_.get_list(key)); }

  const Properties& properties() const { return p_; }

 private:
  const Properties& p_;
  std::filesystem::path base_;
};

}  // namespace

GatewayConfig GatewayConfig::from_properties(const Properties& properties, const std::filesystem::path& base_dir,
                                             std::optional<Profile> profile_override) {
  // estlab.base-dir (itself relative to the file) moves the root of the other relative paths.
  std::filesystem::path root = base_dir;
  if (auto base = properties.get_string("estlab.base-dir"); base && !base->empty()) {
    std::filesystem::path p(*base);
    root = p.is_absolute() ? p : base_dir / p;
  }
  Reader r(properties, root);
  Profile profile = Profile::rfc7030;
  if (profile_override) {
    profile = *profile_override;
  } else if (auto text = r.text("estlab.profile")) {
    auto parsed = parse_profile(*text);
    if (!parsed) r.fail("estlab.profile", "expected rfc7030 or protocol-gateway; got '" + *text + "'");
    profile = *parsed;
  }
  GatewayConfig c = defaults(profile);

  c.allow_renewal_with_old_certificates = r.flag("allowRenewalWithOldCertificates", c.allow_renewal_with_old_certificates);
  c.renewal_rule_polarity = r.choice<RenewalRulePolarity>(
      "estlab.renewal-rule-polarity",
      {{"documented", RenewalRulePolarity::documented}, {"inverted", RenewalRulePolarity::inverted}}, c.renewal_rule_polarity);
  c.use_authentication_cert = r.flag("enroll.use-authentication-cert", c.use_authentication_cert);
  c.mandatory_password = r.flag("enroll.mandatorypassword", c.mandatory_password);
  c.check_subject_values = r.flag("enroll.check-subject-values", c.check_subject_values);

  if (auto host = r.text("estlab.listen.host")) c.listen_host = *host;
  c.port = static_cast<std::uint16_t>(r.integer("estlab.listen.port", 0, 65535, c.port));
  c.tls_certificate = r.path("estlab.tls.certificate", c.tls_certificate);
  c.tls_key = r.path("estlab.tls.key", c.tls_key);
  c.trust_anchors = r.path("estlab.trust-anchors", c.trust_anchors);
  c.keylog_file = r.path("estlab.tls.keylog", c.keylog_file);
  for (auto [key, target] : {std::pair{"estlab.tls.min-version", &c.min_tls}, std::pair{"estlab.tls.max-version", &c.max_tls}}) {
    if (auto text = r.text(key)) {
      auto version = parse_tls_version(*text);
      if (!version) r.fail(key, "expected 1.0, 1.1, 1.2 or 1.3; got '" + *text + "'");
      *target = *version;
    }
  }
  if (c.min_tls > c.max_tls) r.fail("estlab.tls.min-version", "is above estlab.tls.max-version");

  c.ca_store = r.path("estlab.ca.store", c.ca_store);
  if (auto label = r.text("estlab.ca.default")) {
    if (label->empty()) r.fail("estlab.ca.default", "empty CA label");
    c.default_ca = *label;
  }
  c.ca_labels = r.list("estlab.ca.labels");
  c.labels_enabled = r.flag("estlab.ca.labels.enabled", c.labels_enabled);
  c.cacerts_include_rollover = r.flag("estlab.ca.cacerts-include-rollover", c.cacerts_include_rollover);
  if (auto name = r.text("estlab.ca.certificate-profile")) {
    if (*name != "device" && *name != "no-eku" && *name != "officer")
      r.fail("estlab.ca.certificate-profile", "expected device, officer or no-eku; got '" + *name + "'");
    c.certificate_profile = *name;
  }

  // The realm comes from a handler's configuration when there is one (the product's place for it).
  for (const auto& key : properties.keys_with_prefix("handler.")) {
    if (key.size() > 6 && key.substr(key.size() - 6) == ".realm") c.realm = *r.text(key);
  }
  if (auto realm = r.text("estlab.auth.realm")) c.realm = *realm;
  if (auto policy = r.text("estlab.auth.officer-policy")) c.officer_policy = *policy;
  c.revocation = r.choice<RevocationSource>(
      "estlab.auth.revocation",
      {{"ca-database", RevocationSource::ca_database}, {"crl", RevocationSource::published_crl}, {"none", RevocationSource::none}},
      c.revocation);
  c.challenge_password = r.choice<ChallengePasswordPolicy>(
      "estlab.challenge-password", {{"check", ChallengePasswordPolicy::check_linking}, {"deny", ChallengePasswordPolicy::deny}},
      c.challenge_password);
  c.tls13_linking = r.choice<Tls13Linking>("estlab.linking.tls13",
                                           {{"exporter", Tls13Linking::exporter}, {"deny", Tls13Linking::deny}}, c.tls13_linking);
  c.linking_required = r.flag("estlab.linking.required", c.linking_required);
  c.ra_relinking = r.flag("estlab.linking.ra-relinking", c.ra_relinking);
  c.basic_single_use = r.flag("estlab.auth.basic-single-use", c.basic_single_use);

  // handler.<n>.*: the handlers that ask the identity manager (PG-IDM-2), one per number.
  std::map<int, IdmHandler> handlers;
  for (const auto& key : properties.keys_with_prefix("handler.")) {
    const std::string rest = key.substr(std::string("handler.").size());
    const auto dot = rest.find('.');
    if (dot == std::string::npos || dot == 0 || !std::all_of(rest.begin(), rest.begin() + static_cast<long>(dot), ::isdigit)) continue;
    const int number = std::stoi(rest.substr(0, dot));
    const std::string field = rest.substr(dot + 1);
    auto& handler = handlers[number];
    handler.number = number;
    if (field == "filter") handler.filter = r.text(key).value_or("");
    else if (field == "format") handler.format = r.text(key).value_or("");
    else if (field == "tokenprocedure") handler.token_procedure = r.text(key).value_or("");
    else if (field == "authtype") handler.auth_type = r.text(key).value_or("");
    else if (field == "idm.requestUrl") {
      handler.request_url = r.text(key).value_or("");
      if (handler.request_url.rfind("https://", 0) != 0) r.fail(key, "the identity manager is reached over HTTPS: expected https://host:port/path");
    } else if (field == "idm.tls.token") handler.token = r.path(key, {});
    else if (field == "idm.tls.password") handler.token_password = r.text(key).value_or("");
  }
  for (auto& [number, handler] : handlers)
    if (!handler.request_url.empty()) c.idm_handlers.push_back(handler);

  // estlab.prereg.<n>.*: one device per number.
  std::map<int, PreregisteredDevice> devices;
  for (const auto& key : properties.keys_with_prefix("estlab.prereg.")) {
    const std::string rest = key.substr(std::string("estlab.prereg.").size());
    const auto dot = rest.find('.');
    if (dot == std::string::npos || dot == 0 || !std::all_of(rest.begin(), rest.begin() + static_cast<long>(dot), ::isdigit)) continue;
    const int number = std::stoi(rest.substr(0, dot));
    const std::string field = rest.substr(dot + 1);
    auto& device = devices[number];
    const std::string value = r.text(key).value_or("");
    if (field == "cn") device.common_name = value;
    else if (field == "user") device.user = value;
    else if (field == "password") device.password = value;
    else if (field == "factory-fingerprint") device.factory_certificate_fingerprint = value;
    else if (field == "factory-cert") {
      const auto file = r.path(key, {});
      auto bytes = read_file_bytes(file.string());
      if (!bytes.ok()) r.fail(key, bytes.error().message);
      auto cert = Certificate::parse(*bytes);
      if (!cert.ok()) r.fail(key, file.string() + ": " + cert.error().message);
      device.factory_certificate_fingerprint = cert->sha256_fingerprint();
    }
  }
  for (auto& [number, device] : devices) {
    const std::string key = "estlab.prereg." + std::to_string(number) + ".cn";
    if (device.common_name.empty()) r.fail(key, "missing: each preregistered device needs a commonName");
    c.preregistered.push_back(device);
  }

  c.csrattrs = r.text("estlab.csrattrs").value_or("");
  c.csrattrs_when_empty = r.choice<CsrAttrsWhenEmpty>(
      "estlab.csrattrs.when-empty",
      {{"204", CsrAttrsWhenEmpty::no_content}, {"404", CsrAttrsWhenEmpty::not_found}, {"empty", CsrAttrsWhenEmpty::empty_sequence}},
      c.csrattrs_when_empty);
  if (auto text = r.text("estlab.ca.required-key-type"); text && !text->empty()) {
    auto type = parse_key_type(*text);
    if (!type.ok()) r.fail("estlab.ca.required-key-type", type.error().message);
    c.required_key_type = *type;
  }
  c.serverkeygen_enabled = r.flag("estlab.serverkeygen.enabled", c.serverkeygen_enabled);
  c.fullcmc_enabled = r.flag("estlab.fullcmc.enabled", c.fullcmc_enabled);
  if (auto text = r.text("estlab.serverkeygen.key-type")) {
    auto type = parse_key_type(*text);
    if (!type.ok()) r.fail("estlab.serverkeygen.key-type", type.error().message);
    c.serverkeygen_key_type = *type;
  }
  c.approval = r.choice<ApprovalMode>("estlab.approval", {{"automatic", ApprovalMode::automatic}, {"manual", ApprovalMode::manual}},
                                      c.approval);
  c.retry_after = std::chrono::duration_cast<std::chrono::seconds>(r.duration("estlab.approval.retry-after", c.retry_after));

  c.limits.max_header_bytes = static_cast<std::size_t>(r.integer("estlab.limits.max-header-bytes", 1024, 1 << 20, 8 * 1024));
  c.limits.max_body_bytes = static_cast<std::size_t>(r.integer("estlab.limits.max-body-bytes", 1024, 64 << 20, 64 * 1024));
  c.limits.max_connections = static_cast<std::size_t>(r.integer("estlab.limits.max-connections", 1, 100000, 512));
  c.limits.max_requests_per_connection =
      static_cast<std::size_t>(r.integer("estlab.limits.max-requests-per-connection", 1, 1000000, 1000));
  c.timeouts.handshake = r.duration("estlab.timeouts.handshake", c.timeouts.handshake);
  c.timeouts.read = r.duration("estlab.timeouts.read", c.timeouts.read);
  c.timeouts.write = r.duration("estlab.timeouts.write", c.timeouts.write);
  c.answer_delay = r.duration("estlab.answer-delay", c.answer_delay);

  for (const auto& name : r.list("estlab.faults")) {
    auto fault = parse_fault(name);
    if (!fault) r.fail("estlab.faults", "unknown fault '" + name + "' (estlab gateway --fault list shows them)");
    c.faults.insert(*fault);
  }
  c.transcript_dir = r.path("estlab.transcript.dir", c.transcript_dir);
  c.transcript_secrets = r.flag("estlab.transcript.secrets", c.transcript_secrets);

  c.warnings = properties.warnings();
  for (auto& warning : properties.warnings_for_unknown(known_keys())) c.warnings.push_back(std::move(warning));
  return c;
}

GatewayConfig GatewayConfig::load(const std::filesystem::path& est_properties, std::optional<Profile> profile_override) {
  auto properties = Properties::load_file(est_properties);
  if (!properties.ok()) throw ConfigError(properties.error().message);
  return from_properties(*properties, est_properties.parent_path(), profile_override);
}

}  // namespace estlab::gateway
