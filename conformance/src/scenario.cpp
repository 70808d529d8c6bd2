#include "estlab/conformance/scenario.hpp"

#include "estlab/gateway/approval.hpp"
#include "estlab/gateway/config.hpp"
#include "estlab/conformance/vocabulary.hpp"
#include "estlab/core/key.hpp"
#include "estlab/core/text.hpp"
#include "estlab/core/extensions.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace estlab::conformance {

namespace {

// est.properties keys as the gateway's known_keys() lists them; "<n>" stands for any index.
bool key_matches(const std::string& pattern, const std::string& key) {
  const auto n = pattern.find("<n>");
  if (n == std::string::npos) return pattern == key;
  const std::string head = pattern.substr(0, n), tail = pattern.substr(n + 3);
  return key.size() > head.size() + tail.size() && key.compare(0, head.size(), head) == 0 &&
         key.compare(key.size() - tail.size(), tail.size(), tail) == 0;
}

bool is_gateway_key(const std::string& key) {
  const auto& keys = gateway::GatewayConfig::known_keys();
  return std::any_of(keys.begin(), keys.end(), [&](const std::string& pattern) { return key_matches(pattern, key); });
}

std::string gateway_key_hint(const std::string& key) {
  std::string best;
  std::size_t best_distance = 4;  // only close spellings
  for (const auto& pattern : gateway::GatewayConfig::known_keys()) {
    const auto d = edit_distance(ascii_lowercase(key), ascii_lowercase(pattern));
    if (d < best_distance) {
      best_distance = d;
      best = pattern;
    }
  }
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

class Loader {
 public:
  explicit Loader(std::filesystem::path file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& what) const {
    const int line = node.Mark().line >= 0 ? node.Mark().line + 1 : fallback_line_;
    throw ConfigError(file_.string() + ":" + std::to_string(line) + ": " + what);
  }
  [[noreturn]] void fail_at(int line, const std::string& what) const {
    throw ConfigError(file_.string() + ":" + std::to_string(line) + ": " + what);
  }

  int line_of(const YAML::Node& node) const { return node.Mark().line >= 0 ? node.Mark().line + 1 : fallback_line_; }

  // A value as written, with the for_each parameters in force replaced ("{{key_type}}" -> "ec-p384").
  std::string scalar(const YAML::Node& node) const {
    std::string value = node.as<std::string>();
    for (const auto& [name, replacement] : params_) {
      const std::string reference = "{{" + name + "}}";
      for (auto at = value.find(reference); at != std::string::npos; at = value.find(reference, at + replacement.size()))
        value.replace(at, reference.size(), replacement);
    }
    return value;
  }

  // for_each: {name: [v1, v2], other: [a, b]} -> every combination, in order, as name -> value maps.
  std::vector<std::map<std::string, std::string>> combinations(const YAML::Node& for_each) const {
    if (!for_each.IsMap() || for_each.size() == 0) fail(for_each, "for_each maps parameter names to lists of values, e.g. {key_type: [ec-p256, rsa2048]}");
    std::vector<std::map<std::string, std::string>> out = {{}};
    static const std::regex name_shape(R"(^[a-z_][a-z0-9_]*$)");
    for (const auto& entry : for_each) {
      const std::string name = entry.first.as<std::string>();
      if (!std::regex_match(name, name_shape)) fail(entry.first, "for_each parameter '" + name + "' must be lower-case letters, digits and '_'");
      if (params_.count(name)) fail(entry.first, "for_each parameter '" + name + "' is already set by an outer for_each");
      if (!entry.second.IsSequence() || entry.second.size() == 0) fail(entry.second, "for_each." + name + " must be a non-empty list of values");
      std::vector<std::map<std::string, std::string>> next;
      for (const auto& partial : out)
        for (const auto& value : entry.second) {
          if (!value.IsScalar()) fail(value, "for_each." + name + " values must be single values");
          auto combined = partial;
          combined[name] = value.as<std::string>();
          next.push_back(std::move(combined));
        }
      out = std::move(next);
    }
    if (out.size() > 256) fail(for_each, "for_each makes " + std::to_string(out.size()) + " combinations; at most 256");
    return out;
  }

  void set_parameters(std::map<std::string, std::string> params) { params_ = std::move(params); }

  // transports: [https, coaps] -> each scenario once per transport, ids suffixed, grouped so the
  // runs can be compared. Steps that exist on one transport only are refused here.
  std::vector<Scenario> per_transport(const YAML::Node& node, std::vector<Scenario> scenarios) const {
    const auto transports = strings(node, "transports");
    if (transports.size() < 2) fail(node, "transports lists two or more of https, coaps (one transport: use transport)");
    std::set<std::string> seen;
    for (const auto& t : transports) {
      if (t != "https" && t != "coaps") fail(node, "transports: '" + t + "' is not https or coaps");
      if (!seen.insert(t).second) fail(node, "transports names " + t + " twice");
    }
    std::vector<Scenario> out;
    for (const auto& s : scenarios) {
      for (const auto& step : s.steps) {
        std::string only_https;
        if (step.kind == Step::Kind::raw) only_https = "raw steps";
        else if (step.basic_auth) only_https = "HTTP Basic (EST-coaps has none, RFC 9148 1)";
        else if (step.plain_http || step.tls != "any") only_https = "TLS settings";
        else if (!step.base64_layout.empty()) only_https = "base64 layouts (CoAP bodies are DER)";
        else if (!step.headers.empty()) only_https = "HTTP headers";
        if (!only_https.empty()) fail_at(step.line, "a step of a scenario over several transports uses " + only_https + ", which is HTTPS only");
      }
      for (const auto& t : transports) {
        Scenario v = s;
        v.transport_group = s.id;
        v.id += "." + t;
        v.transport = t;
        v.title += " [" + t + "]";
        out.push_back(std::move(v));
      }
    }
    return out;
  }

  void only_keys(const YAML::Node& map, const std::string& where, const std::vector<std::string>& allowed) const {
    if (!map.IsMap()) fail(map, where + " must be a mapping");
    for (const auto& entry : map) {
      const auto key = entry.first.as<std::string>();
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      fail(entry.first, "unknown key '" + key + "' in " + where + " (known: " + list + ")");
    }
  }

  std::string text(const YAML::Node& node, const std::string& what) const {
    if (!node.IsScalar()) fail(node, what + " must be a string");
    return scalar(node);
  }

  std::vector<std::string> strings(const YAML::Node& node, const std::string& what) const {
    std::vector<std::string> out;
    if (node.IsScalar()) {
      out.push_back(scalar(node));
      return out;
    }
    if (!node.IsSequence()) fail(node, what + " must be a list of strings");
    for (const auto& item : node) out.push_back(text(item, what));
    return out;
  }

  int integer(const YAML::Node& node, const std::string& what, int min, int max) const {
    if (!node.IsScalar()) fail(node, what + " must be a number");
    try {
      std::size_t used = 0;
      const std::string t = scalar(node);
      const int value = std::stoi(t, &used);
      if (used != t.size() || value < min || value > max) throw std::out_of_range("range");
      return value;
    } catch (const std::exception&) {
      fail(node, what + " must be a whole number from " + std::to_string(min) + " to " + std::to_string(max) + ", not '" +
                     scalar(node) + "'");
    }
  }

  double number(const YAML::Node& node, const std::string& what, double max) const {
    if (!node.IsScalar()) fail(node, what + " must be a number");
    try {
      std::size_t used = 0;
      const std::string t = scalar(node);
      const double value = std::stod(t, &used);
      if (used != t.size() || value < 0 || value > max) throw std::out_of_range("range");
      return value;
    } catch (const std::exception&) {
      fail(node, what + " must be a number from 0 to " + std::to_string(static_cast<int>(max)) + ", not '" + scalar(node) + "'");
    }
  }

  bool boolean(const YAML::Node& node, const std::string& what) const {
    if (!node.IsScalar()) fail(node, what + " must be true or false");
    const auto t = scalar(node);
    if (t == "true") return true;
    if (t == "false") return false;
    fail(node, what + " must be true or false, not '" + t + "'");
  }

  // "{{name}}" references: checked for shape here, resolved at run time.
  void check_variables(const YAML::Node& node, const std::string& value) const {
    static const std::regex open_close(R"(\{\{([^{}]*)\}\})");
    static const std::regex name(R"(^\s*[A-Za-z_][A-Za-z0-9_.\-]*\s*$)");
    for (auto it = std::sregex_iterator(value.begin(), value.end(), open_close); it != std::sregex_iterator(); ++it) {
      if (!std::regex_match((*it)[1].str(), name)) fail(node, "bad variable reference '" + it->str() + "'");
    }
    const std::string stripped = std::regex_replace(value, open_close, "");
    if (stripped.find("{{") != std::string::npos || stripped.find("}}") != std::string::npos)
      fail(node, "unbalanced {{ }} in '" + value + "'");
  }

  static std::string unescape(const std::string& in) {
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
      if (in[i] != '\\' || i + 1 == in.size()) {
        out.push_back(in[i]);
        continue;
      }
      const char c = in[++i];
      if (c == 'r') out.push_back('\r');
      else if (c == 'n') out.push_back('\n');
      else if (c == 't') out.push_back('\t');
      else if (c == '0') out.push_back('\0');
      else if (c == 'x' && i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
        out.push_back(static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16)));
        i += 2;
      } else out.push_back(c);
    }
    return out;
  }

  void status_field(const YAML::Node& s, const std::string& what, std::vector<int>& statuses, std::optional<char>& status_class) const {
    if (!s) return;
    auto one = [&](const YAML::Node& item) {
      const auto t = scalar(item);
      if (t.size() == 3 && t[1] == 'x' && t[2] == 'x' && (t[0] >= '1' && t[0] <= '5')) {
        // A second class ([4xx, 5xx]) is kept as its hundred codes; the reports print it as 5xx again.
        if (!status_class || *status_class == t[0]) status_class = t[0];
        else
          for (int code = (t[0] - '0') * 100; code < (t[0] - '0' + 1) * 100; ++code) statuses.push_back(code);
      } else {
        statuses.push_back(integer(item, what, 100, 599));
      }
    };
    if (s.IsScalar()) one(s);
    else if (s.IsSequence())
      for (const auto& item : s) {
        if (!item.IsScalar()) fail(item, what + " entries must be status codes or a 4xx-style class");
        one(item);
      }
    else fail(s, what + " must be a status code, a list of them, or 4xx-style class");
  }

  void check_requirement_shape(const YAML::Node& node, const std::string& r) const {
    static const std::regex requirement_shape(R"(^(PG-[A-Z]+-\d+|\d{4}-[0-9A-Za-z.]+-[a-z]|csrattrs-[0-9.]+-[a-z])$)");
    if (!std::regex_match(r, requirement_shape)) fail(node, "requirement '" + r + "' is not an ID like 7030-4.2.1-a or PG-ENR-1");
  }

  CsrTemplate csr(const YAML::Node& node) const {
    only_keys(node, "csr", {"subject", "cn", "san", "key", "key_type", "challenge_password", "unstructured_name",
                            "unstructured_address", "eku", "corrupt_signature", "file", "attributes", "challenge_password_type",
                            "encrypted_key"});
    CsrTemplate t;
    if (node["subject"]) {
      t.subject = text(node["subject"], "csr.subject");
      check_variables(node["subject"], t.subject);
    }
    if (node["cn"]) {
      if (node["subject"]) fail(node["cn"], "csr has both subject and cn; cn makes the subject from the target's subject_template");
      t.cn = node["cn"].IsNull() ? "" : text(node["cn"], "csr.cn");
      t.cn_given = true;
      check_variables(node["cn"], t.cn);
    }
    if (node["san"]) t.subject_alt_names = strings(node["san"], "csr.san");
    for (const auto& san : t.subject_alt_names)
      if (san.find(':') == std::string::npos) fail(node["san"], "csr.san entry '" + san + "' must be DNS:..., IP:..., email:... or URI:...");
    if (node["key"]) t.key = text(node["key"], "csr.key");
    if (node["challenge_password_type"]) {
      t.challenge_password_type = text(node["challenge_password_type"], "csr.challenge_password_type");
      if (t.challenge_password_type != "printable" && t.challenge_password_type != "utf8")
        fail(node["challenge_password_type"], "csr.challenge_password_type must be printable or utf8, not '" + t.challenge_password_type + "'");
    }
    if (node["key_type"]) {
      t.key_type = text(node["key_type"], "csr.key_type");
      if (t.key_type.find("{{") == std::string::npos)
        if (auto parsed = parse_key_type(t.key_type); !parsed.ok()) fail(node["key_type"], "csr.key_type: " + parsed.error().message);
    }
    if (node["challenge_password"]) t.challenge_password = text(node["challenge_password"], "csr.challenge_password");
    if (node["unstructured_name"]) t.unstructured_name = text(node["unstructured_name"], "csr.unstructured_name");
    if (node["unstructured_address"]) t.unstructured_address = text(node["unstructured_address"], "csr.unstructured_address");
    if (node["eku"]) t.extended_key_usages = strings(node["eku"], "csr.eku");
    if (node["corrupt_signature"]) t.corrupt_signature = boolean(node["corrupt_signature"], "csr.corrupt_signature");
    if (node["file"]) t.file = text(node["file"], "csr.file");
    if (node["encrypted_key"]) {
      t.encrypted_key = text(node["encrypted_key"], "csr.encrypted_key");
      if (t.encrypted_key != "asymmetric")
        fail(node["encrypted_key"], "csr.encrypted_key must be asymmetric (encrypted to this connection's certificate), not '" + t.encrypted_key + "'");
    }
    if (const auto& attrs = node["attributes"]) {
      if (!attrs.IsMap()) fail(attrs, "csr.attributes must map attribute OIDs to the DER of their value, in hex");
      static const std::regex hex(R"(^([0-9a-fA-F]{2})+$)");
      for (const auto& entry : attrs) {
        const auto value = text(entry.second, "csr.attributes value");
        if (!std::regex_match(value, hex)) fail(entry.second, "csr.attributes value '" + value + "' is not hex DER");
        t.attributes.emplace_back(entry.first.as<std::string>(), value);
      }
    }
    return t;
  }

  static const std::vector<std::string>& certificate_keys() {
    static const std::vector<std::string> keys = {"validity", "valid_now", "version", "key_usage", "key_usage_absent", "key_usage_permits", "basic_constraints",
                                                  "crl_distribution_points", "authority_info_access", "signature_algorithm", "eku",
                                                  "eku_permits", "name", "chains_to"};
    return keys;
  }

  // The RFC 5280 vocabulary shared by expect.issued and expect.server_certificate.
  CertificateChecks certificate_checks(const YAML::Node& node, const std::string& where) const {
    CertificateChecks c;
    auto one_of = [&](const char* key, std::initializer_list<const char*> allowed) {
      if (!node[key]) return std::string();
      const auto value = text(node[key], where + "." + key);
      std::string list;
      for (const char* a : allowed) {
        if (value == a) return value;
        list += (list.empty() ? "" : ", ") + std::string(a);
      }
      fail(node[key], where + "." + key + " must be " + list + ", not '" + value + "'");
    };
    c.validity = one_of("validity", {"within-ca"});
    if (node["valid_now"]) c.valid_now = boolean(node["valid_now"], where + ".valid_now");
    if (node["version"]) c.version = integer(node["version"], where + ".version", 1, 3);
    auto usage_bits = [&](const char* key) {
      std::vector<std::string> out;
      if (!node[key]) return out;
      out = strings(node[key], where + "." + key);
      for (const auto& bit : out)
        if (auto parsed = key_usage::parse(bit); !parsed.ok()) fail(node[key], where + "." + key + ": " + parsed.error().message);
      return out;
    };
    c.key_usage = usage_bits("key_usage");
    c.key_usage_absent = usage_bits("key_usage_absent");
    c.key_usage_permits = usage_bits("key_usage_permits");
    if (const auto& bc = node["basic_constraints"]) {
      only_keys(bc, where + ".basic_constraints", {"ca"});
      if (!bc["ca"]) fail(bc, where + ".basic_constraints needs ca: true or false");
      c.basic_constraints_ca = boolean(bc["ca"], where + ".basic_constraints.ca");
    }
    c.crl_distribution_points = one_of("crl_distribution_points", {"present", "absent"});
    c.authority_info_access = one_of("authority_info_access", {"present", "absent"});
    c.signature_algorithm = one_of("signature_algorithm", {"strong"});
    if (node["eku"]) c.eku = strings(node["eku"], where + ".eku");
    if (node["eku_permits"]) c.eku_permits = strings(node["eku_permits"], where + ".eku_permits");
    if (node["name"]) {
      c.name = text(node["name"], where + ".name");
      check_variables(node["name"], c.name);
    }
    if (node["chains_to"]) c.chains_to = text(node["chains_to"], where + ".chains_to");
    return c;
  }

  Expectation expectation(const YAML::Node& node) const {
    only_keys(node, "expect",
              {"status", "tolerated_status", "refused", "refusal_tolerated", "headers", "media_type", "certificates", "min_certificates", "contains_root", "issued",
               "server_key_matches", "csrattrs_contains", "csrattrs_valid", "csrattrs_lint", "cmc", "body_contains", "connection_fails", "control_fails",
               "message_contains", "requirement", "level", "server_certificate", "resumed", "secure_renegotiation", "renegotiation_requested",
               "content_format", "max_age", "links_contain", "upstream", "extended_master_secret", "max_block_size", "separate",
               "error_text", "retry_after", "certs_only_structure", "multipart_parts", "server_key_encrypted", "csrattrs_key_type"});
    Expectation e;
    status_field(node["status"], "expect.status", e.status, e.status_class);
    status_field(node["tolerated_status"], "expect.tolerated_status", e.tolerated_status, e.tolerated_class);
    if (node["refused"]) e.refused = boolean(node["refused"], "expect.refused");
    if (node["refusal_tolerated"]) e.refusal_tolerated = boolean(node["refusal_tolerated"], "expect.refusal_tolerated");
    if (const auto& h = node["headers"]) {
      if (!h.IsMap()) fail(h, "expect.headers must map header names to present, absent, a value or ~substring");
      for (const auto& entry : h) e.headers[entry.first.as<std::string>()] = text(entry.second, "expect.headers value");
    }
    if (node["media_type"]) e.media_type = text(node["media_type"], "expect.media_type");
    if (node["certificates"]) e.certificate_count = integer(node["certificates"], "expect.certificates", 0, 1000);
    if (node["min_certificates"]) e.min_certificates = integer(node["min_certificates"], "expect.min_certificates", 0, 1000);
    if (node["contains_root"]) e.contains_root = boolean(node["contains_root"], "expect.contains_root");
    if (const auto& issued = node["issued"]) {
      std::vector<std::string> keys = {"subject", "cn", "issuer", "serial", "san", "san_contains", "public_key"};
      keys.insert(keys.end(), certificate_keys().begin(), certificate_keys().end());
      only_keys(issued, "expect.issued", keys);
      e.issued_profile = certificate_checks(issued, "expect.issued");
      e.issued_chains_to = e.issued_profile.chains_to;
      e.issued_profile.chains_to.clear();
      e.issued_eku = e.issued_profile.eku;
      e.issued_profile.eku.clear();
      if (issued["serial"]) e.issued_serial = text(issued["serial"], "expect.issued.serial");
      if (issued["subject"]) e.issued_subject = text(issued["subject"], "expect.issued.subject");
      if (issued["cn"]) e.issued_common_name = text(issued["cn"], "expect.issued.cn");
      if (issued["issuer"]) e.issued_issuer = text(issued["issuer"], "expect.issued.issuer");
      if (issued["san"]) e.issued_san = strings(issued["san"], "expect.issued.san");
      if (issued["san_contains"]) e.issued_san_contains = strings(issued["san_contains"], "expect.issued.san_contains");
      if (issued["public_key"]) {
        e.issued_public_key = text(issued["public_key"], "expect.issued.public_key");
        if (e.issued_public_key != "csr" && e.issued_public_key != "not-csr")
          fail(issued["public_key"], "expect.issued.public_key must be csr or not-csr");
      }
    }
    if (const auto& server = node["server_certificate"]) {
      only_keys(server, "expect.server_certificate", certificate_keys());
      e.server_certificate = certificate_checks(server, "expect.server_certificate");
    }
    if (node["resumed"]) e.resumed = boolean(node["resumed"], "expect.resumed");
    if (node["secure_renegotiation"]) e.secure_renegotiation = boolean(node["secure_renegotiation"], "expect.secure_renegotiation");
    if (node["renegotiation_requested"]) e.renegotiation_requested = boolean(node["renegotiation_requested"], "expect.renegotiation_requested");
    if (node["server_key_matches"]) e.server_key_matches = boolean(node["server_key_matches"], "expect.server_key_matches");
    if (node["csrattrs_key_type"]) {
      e.csrattrs_key_type = text(node["csrattrs_key_type"], "expect.csrattrs_key_type");
      if (e.csrattrs_key_type.find("{{") == std::string::npos)
        if (auto parsed = parse_key_type(e.csrattrs_key_type); !parsed.ok())
          fail(node["csrattrs_key_type"], "expect.csrattrs_key_type: " + parsed.error().message);
    }
    if (node["server_key_encrypted"]) {
      e.server_key_encrypted = boolean(node["server_key_encrypted"], "expect.server_key_encrypted");
      if (!e.server_key_encrypted) fail(node["server_key_encrypted"], "expect.server_key_encrypted can only be true (leave it out otherwise)");
    }
    if (node["csrattrs_valid"]) e.csrattrs_valid = boolean(node["csrattrs_valid"], "expect.csrattrs_valid");
    if (node["csrattrs_lint"]) e.csrattrs_lint = boolean(node["csrattrs_lint"], "expect.csrattrs_lint");
    if (node["csrattrs_contains"]) e.csrattrs_contains = strings(node["csrattrs_contains"], "expect.csrattrs_contains");
    if (const auto& cmc = node["cmc"]) {
      only_keys(cmc, "expect.cmc", {"status", "fail_info"});
      if (cmc["status"]) e.cmc_status = text(cmc["status"], "expect.cmc.status");
      if (cmc["fail_info"]) e.cmc_fail_info = text(cmc["fail_info"], "expect.cmc.fail_info");
    }
    if (node["body_contains"]) e.body_contains = text(node["body_contains"], "expect.body_contains");
    if (node["connection_fails"]) e.connection_fails = boolean(node["connection_fails"], "expect.connection_fails");
    if (node["control_fails"]) e.control_fails = boolean(node["control_fails"], "expect.control_fails");
    if (node["message_contains"]) e.message_contains = text(node["message_contains"], "expect.message_contains");
    if (node["extended_master_secret"]) e.extended_master_secret = boolean(node["extended_master_secret"], "expect.extended_master_secret");
    if (const auto& cf = node["content_format"]) {
      e.content_format = cf.IsScalar() && cf.as<std::string>() == "none" ? -1 : integer(cf, "expect.content_format (or none)", 0, 65535);
    }
    if (const auto& age = node["max_age"]) {
      e.max_age = text(age, "expect.max_age");
      if (e.max_age != "present" && e.max_age != "absent") e.max_age = std::to_string(integer(age, "expect.max_age (or present, absent)", 0, 0x7fffffff));
    }
    if (node["links_contain"]) e.links_contain = strings(node["links_contain"], "expect.links_contain");
    if (node["max_block_size"]) e.max_block_size = integer(node["max_block_size"], "expect.max_block_size", 16, 1024);
    if (node["separate"]) e.separate = boolean(node["separate"], "expect.separate");
    if (const auto& up = node["upstream"]) {
      only_keys(up, "expect.upstream",
                {"requests", "method", "path", "content_type", "client", "status", "scheme", "tls_client", "tls_client_eku"});
      Expectation::Upstream u;
      if (up["requests"]) u.requests = integer(up["requests"], "expect.upstream.requests", 0, 1000);
      if (up["method"]) u.method = text(up["method"], "expect.upstream.method");
      if (up["path"]) u.path = text(up["path"], "expect.upstream.path");
      if (up["content_type"]) u.content_type = text(up["content_type"], "expect.upstream.content_type");
      if (up["client"]) {
        u.client = text(up["client"], "expect.upstream.client");
        check_variables(up["client"], u.client);
      }
      if (up["status"]) u.status = integer(up["status"], "expect.upstream.status", 100, 599);
      if (up["scheme"]) {
        u.scheme = text(up["scheme"], "expect.upstream.scheme");
        if (u.scheme != "https") fail(up["scheme"], "expect.upstream.scheme must be https (EST over TLS, RFC 9148 5)");
      }
      if (up["tls_client"]) {
        if (text(up["tls_client"], "expect.upstream.tls_client") != "present")
          fail(up["tls_client"], "expect.upstream.tls_client must be 'present'");
        u.tls_client = true;
      }
      if (up["tls_client_eku"]) u.tls_client_eku = text(up["tls_client_eku"], "expect.upstream.tls_client_eku");
      e.upstream = u;
    }
    if (node["error_text"]) {
      if (text(node["error_text"], "expect.error_text") != "readable") fail(node["error_text"], "expect.error_text must be 'readable'");
      e.error_text = true;
    }
    if (node["retry_after"]) {
      if (text(node["retry_after"], "expect.retry_after") != "valid") fail(node["retry_after"], "expect.retry_after must be 'valid'");
      e.retry_after_valid = true;
    }
    if (node["certs_only_structure"]) e.certs_only_structure = boolean(node["certs_only_structure"], "expect.certs_only_structure");
    if (node["multipart_parts"]) e.multipart_parts = integer(node["multipart_parts"], "expect.multipart_parts", 1, 100);
    if (node["requirement"]) {
      e.requirement = text(node["requirement"], "expect.requirement");
      check_requirement_shape(node["requirement"], e.requirement);
    }
    if (node["level"]) {
      e.level = text(node["level"], "expect.level");
      if (e.level != "must" && e.level != "should" && e.level != "info") fail(node["level"], "expect.level must be must, should or info");
    }
    return e;
  }

  Step step(const YAML::Node& node, std::size_t index) const {
    if (!node.IsMap()) fail(node, "step " + std::to_string(index + 1) + " must be a mapping with one of connect, send, raw, control, wait, note");
    Step s;
    s.line = line_of(node);
    static const std::vector<std::string> kinds = {"connect", "send", "raw", "control", "wait", "note"};
    int found = 0;
    for (const auto& kind : kinds)
      if (node[kind]) ++found;
    if (found != 1)
      fail(node, "step " + std::to_string(index + 1) + " needs exactly one of connect, send, raw, control, wait, note");

    if (const auto& c = node["connect"]) {
      only_keys(node, "a connect step", {"connect", "expect", "timeout"});
      s.kind = Step::Kind::connect;
      if (c.IsScalar()) {
        s.as = scalar(c) == "anonymous" ? "" : scalar(c);
      } else {
        only_keys(c, "connect", {"as", "tls", "plain_http", "ciphers", "ciphersuites", "resume", "dtls", "groups", "rejoin"});
        if (c["as"]) s.as = text(c["as"], "connect.as") == "anonymous" ? "" : text(c["as"], "connect.as");
        if (c["tls"]) {
          s.tls = text(c["tls"], "connect.tls");
          static const std::set<std::string> versions = {"1.0", "1.1", "1.2", "1.3", "any"};
          if (!versions.count(s.tls)) fail(c["tls"], "connect.tls must be 1.0, 1.1, 1.2, 1.3 or any, not '" + s.tls + "'");
        }
        if (c["plain_http"]) s.plain_http = boolean(c["plain_http"], "connect.plain_http");
        if (c["ciphers"]) s.ciphers = text(c["ciphers"], "connect.ciphers");
        if (c["ciphersuites"]) s.ciphersuites = text(c["ciphersuites"], "connect.ciphersuites");
        if (c["resume"]) s.resume = boolean(c["resume"], "connect.resume");
        if (s.plain_http && (!s.ciphers.empty() || !s.ciphersuites.empty() || s.resume))
          fail(c, "connect.plain_http has no TLS: ciphers, ciphersuites and resume do not apply");
        if (!s.ciphers.empty() && s.tls == "1.3") fail(c["ciphers"], "connect.ciphers are TLS 1.2 and earlier suites; TLS 1.3 takes ciphersuites");
        if (!s.ciphersuites.empty() && s.tls != "1.3" && s.tls != "any")
          fail(c["ciphersuites"], "connect.ciphersuites are TLS 1.3 suites; this connect offers TLS " + s.tls);
        if (c["dtls"]) {
          s.dtls = text(c["dtls"], "connect.dtls");
          if (s.dtls != "1.0" && s.dtls != "1.2" && s.dtls != "any") fail(c["dtls"], "connect.dtls must be 1.0, 1.2 or any, not '" + s.dtls + "'");
        }
        if (c["groups"]) s.groups = text(c["groups"], "connect.groups");
        if (c["rejoin"]) s.rejoin = boolean(c["rejoin"], "connect.rejoin");
        if (s.rejoin && (s.dtls != "any" || !s.groups.empty() || !s.ciphers.empty()))
          fail(c["rejoin"], "connect.rejoin comes back as the device's own client, which offers its defaults: dtls, ciphers and groups do not apply");
      }
    } else if (const auto& r = node["send"]) {
      only_keys(node, "a send step", {"send", "expect", "capture", "timeout"});
      s.kind = Step::Kind::send;
      only_keys(r, "send", {"op", "label", "method", "path", "csr", "full_cmc", "body", "content_type", "headers", "auth",
                            "new_connection", "resend", "base64_layout", "accept", "content_format", "block_size", "block1",
                            "uri_host", "size2"});
      if (r["uri_host"]) {
        s.uri_host = text(r["uri_host"], "send.uri_host");
        if (s.uri_host->empty()) fail(r["uri_host"], "send.uri_host must name a host (leave the key out to send no Uri-Host)");
        check_variables(r["uri_host"], *s.uri_host);
      }
      if (r["size2"]) s.size2 = integer(r["size2"], "send.size2", 0, 0x7fffffff);
      if (r["accept"]) s.accept = integer(r["accept"], "send.accept", 0, 65535);
      if (r["content_format"]) s.content_format = integer(r["content_format"], "send.content_format", 0, 65535);
      if (const auto& b = r["block_size"]) {
        s.block_size = integer(b, "send.block_size", 16, 1024);
        if ((*s.block_size & (*s.block_size - 1)) != 0) fail(b, "send.block_size must be 16, 32, 64, 128, 256, 512 or 1024");
      }
      if (const auto& b = r["block1"]) {
        only_keys(b, "send.block1", {"num", "more", "szx"});
        Step::Block1 block;
        if (b["num"]) block.num = integer(b["num"], "send.block1.num", 0, 0xfffff);
        if (b["more"]) block.more = boolean(b["more"], "send.block1.more");
        if (b["szx"]) block.szx = integer(b["szx"], "send.block1.szx", 0, 7);
        s.block1 = block;
      }
      if (r["op"]) s.operation = text(r["op"], "send.op");
      static const std::set<std::string> ops = {"cacerts", "simpleenroll", "simplereenroll", "fullcmc", "csrattrs", "serverkeygen"};
      if (!s.operation.empty() && !ops.count(s.operation))
        fail(r["op"], "send.op '" + s.operation + "' is not an EST operation (cacerts, simpleenroll, simplereenroll, fullcmc, csrattrs, serverkeygen)");
      if (r["label"]) s.label = text(r["label"], "send.label");
      if (r["method"]) s.method = text(r["method"], "send.method");
      if (r["path"]) s.path = text(r["path"], "send.path");
      if (s.operation.empty() && s.path.empty()) fail(r, "send needs op (an EST operation) or path");
      if (r["csr"]) s.csr = csr(r["csr"]);
      if (r["full_cmc"]) s.full_cmc = boolean(r["full_cmc"], "send.full_cmc");
      if (r["body"]) s.body = unescape(text(r["body"], "send.body"));
      if (s.csr && s.body) fail(r, "send has both csr and body; give one");
      if (r["content_type"]) s.content_type = text(r["content_type"], "send.content_type");
      if (const auto& h = r["headers"]) {
        if (!h.IsMap()) fail(h, "send.headers must be a mapping");
        for (const auto& entry : h) s.headers.emplace_back(entry.first.as<std::string>(), text(entry.second, "send.headers value"));
      }
      if (const auto& a = r["auth"]) {
        only_keys(a, "send.auth", {"user", "password"});
        s.basic_auth = std::make_pair(a["user"] ? text(a["user"], "auth.user") : "", a["password"] ? text(a["password"], "auth.password") : "");
      }
      if (r["new_connection"]) s.new_connection = boolean(r["new_connection"], "send.new_connection");
      if (r["resend"]) s.resend = boolean(r["resend"], "send.resend");
      if (r["base64_layout"]) {
        s.base64_layout = text(r["base64_layout"], "send.base64_layout");
        static const std::set<std::string> layouts = {"wrap64-crlf", "one-line", "one-line-lf", "one-line-crlf", "wrap76-lf", "whitespace", "pem", "der"};
        if (!layouts.count(s.base64_layout))
          fail(r["base64_layout"], "send.base64_layout must be one of wrap64-crlf, one-line, one-line-lf, one-line-crlf, wrap76-lf, whitespace, pem, der; not '" +
                                       s.base64_layout + "'");
      }
      if (s.resend && (s.csr || s.body)) fail(r, "send.resend repeats the previous body; it cannot have csr or body too");
    } else if (const auto& raw = node["raw"]) {
      only_keys(node, "a raw step", {"raw", "expect", "timeout"});
      s.kind = Step::Kind::raw;
      s.raw_text = unescape(text(raw, "raw"));
      if (s.raw_text.empty()) fail(raw, "raw needs the bytes to send");
    } else if (const auto& c = node["control"]) {
      only_keys(node, "a control step", {"control", "expect", "timeout"});
      s.kind = Step::Kind::control;
      if (c.IsScalar()) {
        s.control = scalar(c);
      } else {
        if (!c.IsMap() || c.size() != 1) fail(c, "control must be one of revoke, publish-crl, approve, reject, restart with its arguments");
        const auto entry = *c.begin();
        s.control = entry.first.as<std::string>();
        if (entry.second.IsMap()) {
          for (const auto& arg : entry.second) {
            s.arguments[arg.first.as<std::string>()] = text(arg.second, "control argument");
            check_variables(arg.second, s.arguments[arg.first.as<std::string>()]);
          }
        } else if (entry.second.IsScalar()) {
          s.arguments["value"] = scalar(entry.second);
        }
      }
      static const std::set<std::string> controls = {"revoke",     "publish-crl", "approve",          "reject",   "restart", "advance-time",
                                                     "reset-time", "start-coap-proxy", "operator", "idm-down", "idm-up"};
      if (!controls.count(s.control))
        fail(c, "unknown control '" + s.control +
                    "' (revoke, publish-crl, approve, reject, restart, advance-time, reset-time, start-coap-proxy, operator, idm-down, idm-up)");
      if (s.control == "operator") {
        if (s.arguments.count("value")) s.arguments["policy"] = s.arguments["value"], s.arguments.erase("value");
        const auto policy = s.arguments.find("policy");
        if (policy == s.arguments.end() || !gateway::parse_operator_policy(policy->second))
          fail(c, "control operator needs a policy: manual, approve-after=N (N >= 1), reject=REASON or never ({operator: approve-after=2})");
      }
      if (s.control == "revoke" && !s.arguments.count("serial")) fail(c, "control revoke needs serial");
      if (s.control == "advance-time") {
        if (s.arguments.count("value")) s.arguments["by"] = s.arguments["value"], s.arguments.erase("value");
        const auto by = s.arguments.find("by");
        if ((by == s.arguments.end()) == (s.arguments.count("past") == 0))
          fail(c, "control advance-time needs a duration ({advance-time: 400d}) or an identity to outlive ({advance-time: {past: device}}), one of them");
        if (by != s.arguments.end() && by->second.find("{{") == std::string::npos && !parse_duration(by->second))
          fail(c, "control advance-time: '" + by->second + "' is not a duration such as 400d, 12h, 30m or 90s");
      }
    } else if (const auto& w = node["wait"]) {
      only_keys(node, "a wait step", {"wait"});
      s.kind = Step::Kind::wait;
      s.wait_seconds = number(w, "wait", 600);
    } else if (const auto& n = node["note"]) {
      s.kind = Step::Kind::note;
      s.note = text(n, "note");
    }
    if (node["expect"]) s.expect = expectation(node["expect"]);
    if (s.kind == Step::Kind::send && s.expect && s.expect->upstream && !s.csr && !s.body && !s.resend)
      fail(node["expect"], "expect.upstream finds the forwarded request by its body: the send step needs csr, body or resend");
    if (const auto& cap = node["capture"]) {
      if (!cap.IsMap()) fail(cap, "capture must map variable names to issued.serial, issued.identity, issued.subject, header.<Name> or status");
      for (const auto& entry : cap) {
        const auto what = text(entry.second, "capture value");
        if (what != "issued.serial" && what != "issued.identity" && what != "issued.subject" && what != "status" &&
            what.rfind("header.", 0) != 0 && what != "server_key.identity" && what != "certificates")
          fail(entry.second, "capture '" + what + "' is not one of issued.serial, issued.identity, issued.subject, server_key.identity, certificates, status, header.<Name>");
        s.capture[entry.first.as<std::string>()] = what;
      }
    }
    if (node["timeout"]) s.timeout_seconds = number(node["timeout"], "timeout", 600);
    if (s.kind == Step::Kind::connect && s.expect &&
        (s.expect->status.size() || s.expect->status_class || !s.expect->media_type.empty() || s.expect->refused ||
         !s.expect->headers.empty() || !s.expect->body_contains.empty() || s.expect->issued_profile.any() || !s.expect->issued_chains_to.empty() ||
         s.expect->content_format || !s.expect->max_age.empty() || s.expect->max_block_size || !s.expect->links_contain.empty() || s.expect->upstream ||
         s.expect->separate))
      fail(node["expect"], "a connect step can only expect connection_fails, server_certificate, resumed, secure_renegotiation, "
                           "renegotiation_requested and extended_master_secret (coaps)");
    if (s.expect && s.expect->connection_fails && *s.expect->connection_fails &&
        (s.expect->server_certificate || s.expect->resumed || s.expect->secure_renegotiation || s.expect->renegotiation_requested))
      fail(node["expect"], "expect.connection_fails cannot be combined with checks on the connection it expects to fail");
    if (s.kind != Step::Kind::connect && s.expect && (s.expect->connection_fails || s.expect->extended_master_secret))
      fail(node["expect"], "connection_fails and extended_master_secret are expectations of connect steps");
    if (s.expect && (s.expect->control_fails || !s.expect->message_contains.empty()) && s.kind != Step::Kind::control)
      fail(node["expect"], "control_fails and message_contains are for control steps");
    if (s.kind == Step::Kind::control && s.expect &&
        (s.expect->status.size() || s.expect->status_class || !s.expect->media_type.empty() || s.expect->connection_fails))
      fail(node["expect"], "a control step can only expect control_fails and message_contains");
    return s;
  }

  Scenario scenario(const YAML::Node& root) const {
    if (!root.IsMap()) fail(root, "a scenario file holds one mapping (id, title, requirements, profiles, steps)");
    only_keys(root, "the scenario", {"id", "title", "description", "requirements", "field_bugs", "for_each", "profiles", "transport", "transports", "spec", "section", "needs", "steps"});
    Scenario s;
    s.file = file_;
    s.line = line_of(root);
    if (!root["id"]) fail(root, "missing id");
    s.id = text(root["id"], "id");
    static const std::regex id_shape(R"(^[a-z0-9][a-z0-9.\-]*$)");
    if (!std::regex_match(s.id, id_shape)) fail(root["id"], "id '" + s.id + "' must be lower-case letters, digits, '.' and '-'");
    if (!root["title"]) fail(root, "missing title");
    s.title = text(root["title"], "title");
    if (root["description"]) s.description = text(root["description"], "description");
    if (!root["requirements"]) fail(root, "missing requirements (IDs from the catalog or the protocol-gateway profile)");
    s.requirements = strings(root["requirements"], "requirements");
    for (const auto& r : s.requirements) check_requirement_shape(root["requirements"], r);
    if (s.requirements.empty()) fail(root["requirements"], "requirements must not be empty");
    if (root["field_bugs"]) {
      s.field_bugs = strings(root["field_bugs"], "field_bugs");
      static const std::regex field_bug_shape(R"(^FB-\d+$)");
      for (const auto& bug : s.field_bugs)
        if (!std::regex_match(bug, field_bug_shape)) fail(root["field_bugs"], "field bug '" + bug + "' is not an ID like FB-03");
    }
    s.profiles = root["profiles"] ? strings(root["profiles"], "profiles") : std::vector<std::string>{"rfc7030", "protocol-gateway"};
    for (const auto& p : s.profiles)
      if (p != "rfc7030" && p != "protocol-gateway") fail(root["profiles"], "profile '" + p + "' is not rfc7030 or protocol-gateway");
    if (root["transport"]) {
      s.transport = text(root["transport"], "transport");
      if (s.transport != "https" && s.transport != "coaps") fail(root["transport"], "transport must be https or coaps");
    }
    if (root["transports"] && root["transport"]) fail(root["transports"], "a scenario names transport or transports, not both");
    auto [spec, section] = spec_and_section(s.requirements.front());
    s.spec = root["spec"] ? text(root["spec"], "spec") : spec;
    s.section = root["section"] ? text(root["section"], "section") : section;
    if (const auto& needs = root["needs"]) {
      only_keys(needs, "needs", {"roles", "controls", "features", "absent_features", "credentials", "config", "network"});
      auto names = [&](const char* key, const std::string& kind, const std::vector<VocabularyEntry>& vocabulary) {
        std::vector<std::string> out;
        if (!needs[key]) return out;
        out = strings(needs[key], std::string("needs.") + key);
        for (const auto& n : out)
          if (!is_known(vocabulary, n)) fail(needs[key], unknown_name_message(kind, n, vocabulary));
        return out;
      };
      s.needs_roles = names("roles", "role", known_roles());
      s.needs_controls = names("controls", "control", known_controls());
      s.needs_features = names("features", "feature", known_features());
      s.needs_absent_features = names("absent_features", "feature", known_features());
      s.needs_credentials = names("credentials", "credential", known_credentials());
      if (const auto& config = needs["config"]) {
        if (!config.IsMap() || config.size() == 0) fail(config, "needs.config maps est.properties keys to values, e.g. {estlab.linking.required: \"true\"}");
        for (const auto& entry : config) {
          const std::string key = entry.first.as<std::string>();
          if (!entry.second.IsScalar()) fail(entry.second, "needs.config." + key + " must be a single value");
          if (!is_gateway_key(key)) fail(entry.first, "needs.config: '" + key + "' is not an est.properties key the gateway reads" + gateway_key_hint(key));
          s.needs_config[key] = scalar(entry.second);
        }
      }
      if (const auto& net = needs["network"]) {
        if (!net.IsMap() || net.size() == 0) fail(net, "needs.network maps impairments to values, e.g. {loss: 20%, mtu: 576, seed: 7}");
        std::vector<std::pair<std::string, std::string>> settings;
        for (const auto& entry : net) {
          if (!entry.second.IsScalar()) fail(entry.second, "needs.network." + entry.first.as<std::string>() + " must be a single value");
          settings.emplace_back(entry.first.as<std::string>(), scalar(entry.second));
        }
        auto impairment = network::parse_impairment(settings);
        if (!impairment.ok()) fail(net, "needs." + impairment.error().message);
        s.needs_network = *impairment;
        s.network_seed_pinned = static_cast<bool>(net["seed"]);
      }
    }
    if (!root["steps"] || !root["steps"].IsSequence() || root["steps"].size() == 0) fail(root, "steps must be a non-empty list");
    std::size_t index = 0;
    for (const auto& node : root["steps"]) {
      if (!node.IsMap() || !node["for_each"]) {
        s.steps.push_back(step(node, index++));
        continue;
      }
      // A step over a list: the step once per combination, its parameters replaced in its values.
      YAML::Node body(YAML::NodeType::Map);
      for (const auto& entry : node)
        if (entry.first.as<std::string>() != "for_each") body[entry.first] = entry.second;
      const auto outer = params_;
      const int outer_line = fallback_line_;
      fallback_line_ = line_of(node);
      for (auto params : combinations(node["for_each"])) {
        params.insert(outer.begin(), outer.end());
        params_ = std::move(params);
        Step expanded = step(body, index++);
        expanded.line = line_of(node);
        s.steps.push_back(std::move(expanded));
      }
      params_ = outer;
      fallback_line_ = outer_line;
    }
    if (s.needs_network && s.transport != "coaps")
      fail(root["needs"]["network"], "needs.network impairs the datagrams of EST-coaps: it needs transport: coaps");
    if (s.transport != "coaps")
      for (const auto& st : s.steps) {
        const bool coaps_send = st.accept || st.content_format || st.block_size || st.block1 || st.uri_host || st.size2;
        const bool coaps_connect = st.dtls != "any" || !st.groups.empty() || st.rejoin ||
                                   (st.expect && st.expect->extended_master_secret);
        const bool coaps_expect = st.expect && (st.expect->content_format || !st.expect->max_age.empty() || st.expect->max_block_size ||
                                                !st.expect->links_contain.empty() || st.expect->upstream || st.expect->separate);
        if (coaps_send || coaps_connect || coaps_expect)
          fail_at(st.line, std::string("this step uses ") +
                               (coaps_send ? "accept, content_format, block_size, block1, uri_host or size2" : coaps_connect ? "dtls, groups, rejoin or extended_master_secret"
                                                                                                 : "content_format, max_age, max_block_size, links_contain, upstream or separate") +
                               ", which only exist over EST-coaps: add `transport: coaps`");
      }
    // Derived needs: controls used by steps.
    for (const auto& st : s.steps) {
      if (st.kind == Step::Kind::control &&
          std::find(s.needs_controls.begin(), s.needs_controls.end(), st.control) == s.needs_controls.end())
        s.needs_controls.push_back(st.control);
      if (st.kind == Step::Kind::connect && !st.as.empty() && st.as.find("{{") == std::string::npos) {
        // Roles named directly are needs unless a capture of the same scenario makes them.
        bool captured = false;
        for (const auto& other : s.steps)
          for (const auto& [var, what] : other.capture) captured |= (var == st.as);
        if (!captured && !is_known(known_roles(), st.as))
          fail_at(st.line, unknown_name_message("role", st.as, known_roles()) + " (nor captured by a step of this scenario)");
        if (!captured && std::find(s.step_roles.begin(), s.step_roles.end(), st.as) == s.step_roles.end()) s.step_roles.push_back(st.as);
      }
    }
    return s;
  }

 private:
  std::filesystem::path file_;
  mutable std::map<std::string, std::string> params_;  // for_each parameters in force (set while a step is expanded)
  mutable int fallback_line_ = 0;               // for nodes built here (an expanded step), which have no position
};

}  // namespace

std::vector<std::string> Scenario::named_requirements() const {
  std::vector<std::string> ids = requirements;
  for (const auto& step : steps)
    if (step.expect && !step.expect->requirement.empty() && std::find(ids.begin(), ids.end(), step.expect->requirement) == ids.end())
      ids.push_back(step.expect->requirement);
  return ids;
}

std::pair<std::string, std::string> spec_and_section(const std::string& requirement) {
  if (requirement.rfind("PG-", 0) == 0) {
    const auto last = requirement.rfind('-');
    return {"protocol-gateway", requirement.substr(0, last)};
  }
  if (requirement.rfind("csrattrs-", 0) == 0) return {"RFC 9908", requirement.substr(9, requirement.rfind('-') - 9)};
  const auto dash = requirement.find('-');
  const auto last = requirement.rfind('-');
  std::string section = requirement.substr(dash + 1, last - dash - 1);
  // "4.2.1" -> "4.2": the report groups by two levels.
  if (auto first_dot = section.find('.'); first_dot != std::string::npos) {
    if (auto second_dot = section.find('.', first_dot + 1); second_dot != std::string::npos) section = section.substr(0, second_dot);
  }
  return {"RFC " + requirement.substr(0, dash), section};
}

std::vector<Scenario> load_scenario_variants(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw ConfigError(file.string() + ": cannot read the scenario file");
  YAML::Node root;
  try {
    root = YAML::Load(in);
  } catch (const YAML::Exception& e) {
    throw ConfigError(file.string() + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax: " + e.msg);
  }
  try {
    Loader loader(file);
    std::vector<Scenario> variants;
    if (!root.IsMap() || !root["for_each"]) {
      variants.push_back(loader.scenario(root));
    } else {
    // A scenario over a list: one scenario per combination, its id and title saying which.
    for (const auto& params : loader.combinations(root["for_each"])) {
      loader.set_parameters(params);
      Scenario s = loader.scenario(root);
      std::string suffix, shown;
      for (const auto& [name, value] : params) {
        std::string part = ascii_lowercase(value);
        std::replace_if(part.begin(), part.end(), [](char c) { return !(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-'); }, '-');
        suffix += "." + part;
        shown += (shown.empty() ? "" : ", ") + name + "=" + value;
      }
      s.id += suffix;
      s.title += " [" + shown + "]";
      s.parameters = params;
      variants.push_back(std::move(s));
    }
    }
    if (root.IsMap() && root["transports"]) return loader.per_transport(root["transports"], std::move(variants));
    return variants;
  } catch (const YAML::Exception& e) {
    throw ConfigError(file.string() + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

Scenario load_scenario_file(const std::filesystem::path& file) { return load_scenario_variants(file).front(); }

std::vector<Scenario> load_scenarios(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) throw ConfigError(dir.string() + ": not a directory of scenario files");
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir))
    if (entry.is_regular_file() && (entry.path().extension() == ".yaml" || entry.path().extension() == ".yml"))
      files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  std::vector<Scenario> scenarios;
  std::map<std::string, std::string> seen;
  for (const auto& file : files) {
    for (auto& scenario : load_scenario_variants(file)) {
      if (auto it = seen.find(scenario.id); it != seen.end())
        throw ConfigError(file.string() + ":" + std::to_string(scenario.line) + ": id '" + scenario.id + "' is also used by " + it->second);
      seen[scenario.id] = file.string();
      scenarios.push_back(std::move(scenario));
    }
  }
  return scenarios;
}

}  // namespace estlab::conformance
