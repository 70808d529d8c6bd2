#include "estlab/conformance/target.hpp"

#include <sys/wait.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <regex>

#include "estlab/conformance/vocabulary.hpp"
#include "yaml_file.hpp"
#include "estlab/core/bytes.hpp"

namespace estlab::conformance {

namespace {

[[noreturn]] void fail(const std::filesystem::path& file, const YAML::Node& node, const std::string& what) {
  throw ConfigError(file.string() + ":" + std::to_string(node.Mark().line + 1) + ": " + what);
}

// Single-quotes a value for /bin/sh.
std::string shell_quote(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out += "'\\''";
    else out.push_back(c);
  }
  return out + "'";
}

Result<std::string> run_hook(const std::string& command_template, const ControlArguments& arguments) {
  std::string command = command_template;
  for (const auto& [key, value] : arguments) {
    const std::string placeholder = "{" + key + "}";
    for (auto pos = command.find(placeholder); pos != std::string::npos; pos = command.find(placeholder, pos))
      command.replace(pos, placeholder.size(), shell_quote(value)), pos += value.size();
  }
  if (command.find('{') != std::string::npos && std::regex_search(command, std::regex(R"(\{[a-z_]+\})")))
    return make_error(ErrorCode::invalid_input, "control command still has an unfilled {placeholder}: " + command);
  // The deadline is the hook's own business only up to 60 s.
  const std::string wrapped = "timeout 60 /bin/sh -c " + shell_quote(command) + " 2>&1";
  FILE* pipe = popen(wrapped.c_str(), "r");
  if (pipe == nullptr) return make_error(ErrorCode::io, "cannot run control command: " + command);
  std::string output;
  std::array<char, 512> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr && output.size() < 64 * 1024) output += buffer.data();
  const int status = pclose(pipe);
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code != 0)
    return make_error(code == 124 ? ErrorCode::timeout : ErrorCode::io,
                      "control command exited " + std::to_string(code) + ": " + command + "\n" + output);
  return "ran: " + command + (output.empty() ? "" : "\n" + output);
}

}  // namespace

namespace {

const std::vector<std::string> kTargetKeys = {"name", "profile", "profiles", "base_url", "coaps_port", "server_name", "label",
                                              "trust_anchors", "key_type", "features", "identities", "controls", "readings",
                                              "subject_template", "credentials", "ca_labels", "ready_timeout"};

std::string key_list(const std::vector<std::string>& keys) {
  std::string list;
  for (const auto& k : keys) list += (list.empty() ? "" : ", ") + k;
  return list;
}

void check_name(const std::filesystem::path& file, const YAML::Node& node, const std::string& kind, const std::string& name,
                const std::vector<VocabularyEntry>& vocabulary) {
  if (!is_known(vocabulary, name)) fail(file, node, unknown_name_message(kind, name, vocabulary));
}

std::string scalar(const std::filesystem::path& file, const YAML::Node& node, const std::string& what) {
  if (!node.IsScalar()) fail(file, node, what + " must be a string");
  return node.as<std::string>();
}

// Applies the keys of one mapping (the file's top level, or one entry of `profiles:`) to t.
void apply_keys(const std::filesystem::path& file, const YAML::Node& map, Target& t, std::map<std::string, std::string>& commands,
                bool top_level) {
  const auto base = file.parent_path();
  auto path_of = [&](const YAML::Node& node) {
    std::filesystem::path p(scalar(file, node, "a file name"));
    return p.is_absolute() ? p : base / p;
  };
  for (const auto& entry : map) {
    const auto key = entry.first.as<std::string>();
    const bool known = std::find(kTargetKeys.begin(), kTargetKeys.end(), key) != kTargetKeys.end();
    if (!known || (!top_level && (key == "profiles" || key == "profile" || key == "name"))) {
      std::vector<VocabularyEntry> keys;
      for (const auto& k : kTargetKeys) keys.push_back({k, ""});
      fail(file, entry.first, unknown_name_message("key", key, keys) + " (a target file takes " + key_list(kTargetKeys) + ")");
    }
  }
  if (map["name"]) t.name = scalar(file, map["name"], "name");
  if (map["base_url"]) {
    static const std::regex url(R"(^https://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+)(:(\d{1,5}))?/?$)");
    std::smatch m;
    const auto base_url = scalar(file, map["base_url"], "base_url");
    if (!std::regex_match(base_url, m, url)) fail(file, map["base_url"], "base_url '" + base_url + "' is not https://host[:port]");
    t.host = m[1].str();
    if (!t.host.empty() && t.host.front() == '[') t.host = t.host.substr(1, t.host.size() - 2);
    const int port = m[3].matched ? std::stoi(m[3].str()) : 443;
    if (port <= 0 || port > 65535) fail(file, map["base_url"], "base_url port must be 1-65535");
    t.port = static_cast<std::uint16_t>(port);
  }
  if (map["server_name"]) t.server_name = scalar(file, map["server_name"], "server_name");
  if (map["coaps_port"]) {
    const int port = map["coaps_port"].as<int>(0);
    if (port <= 0 || port > 65535) fail(file, map["coaps_port"], "coaps_port must be a UDP port number");
    t.coaps_port = static_cast<std::uint16_t>(port);
    t.features.insert("coaps");
  }
  if (map["label"]) t.default_label = scalar(file, map["label"], "label");
  if (map["trust_anchors"]) {
    auto bytes = read_file_bytes(path_of(map["trust_anchors"]).string());
    if (!bytes.ok()) fail(file, map["trust_anchors"], bytes.error().message);
    auto certs = Certificate::parse_all(*bytes);
    if (!certs.ok() || certs->empty()) fail(file, map["trust_anchors"], "no certificates in " + path_of(map["trust_anchors"]).string());
    t.trust_anchors = *certs;
  }
  if (map["key_type"]) {
    auto type = parse_key_type(scalar(file, map["key_type"], "key_type"));
    if (!type.ok()) fail(file, map["key_type"], type.error().message);
    t.key_type = *type;
  }
  if (map["subject_template"]) {
    t.subject_template = scalar(file, map["subject_template"], "subject_template");
    if (t.subject_template.find("{{cn}}") == std::string::npos)
      fail(file, map["subject_template"], "subject_template must contain {{cn}} (where a scenario's fresh name goes), e.g. \"CN={{cn}}\"");
  }
  if (map["ready_timeout"]) {
    const double seconds = map["ready_timeout"].as<double>(-1);
    if (seconds <= 0 || seconds > 600) fail(file, map["ready_timeout"], "ready_timeout must be seconds, 0 < s <= 600");
    t.ready_timeout = std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
  }
  if (const auto& features = map["features"]) {
    if (!features.IsSequence()) fail(file, features, "features must be a list");
    t.features.clear();
    if (t.coaps_port) t.features.insert("coaps");
    for (const auto& f : features) {
      const auto name = scalar(file, f, "a feature");
      check_name(file, f, "feature", name, known_features());
      t.features.insert(name);
    }
  }
  if (const auto& identities = map["identities"]) {
    if (!identities.IsMap()) fail(file, identities, "identities must map role names to {certificate, key} or {pkcs12, password}");
    for (const auto& entry : identities) {
      const auto role = entry.first.as<std::string>();
      check_name(file, entry.first, "role", role, known_roles());
      const auto& spec = entry.second;
      if (!spec.IsMap()) fail(file, spec, "identity '" + role + "' needs certificate and key, or pkcs12 and password");
      Result<TlsIdentity> identity = make_error(ErrorCode::invalid_input, "");
      if (spec["pkcs12"]) identity = TlsIdentity::load_pkcs12(path_of(spec["pkcs12"]), spec["password"] ? spec["password"].as<std::string>() : "");
      else if (spec["certificate"] && spec["key"]) identity = TlsIdentity::load(path_of(spec["certificate"]), path_of(spec["key"]));
      else fail(file, spec, "identity '" + role + "' needs certificate and key, or pkcs12 and password");
      if (!identity.ok()) fail(file, spec, "identity '" + role + "': " + identity.error().message);
      t.identities.insert_or_assign(role, std::move(identity).value());
    }
  }
  if (const auto& credentials = map["credentials"]) {
    if (!credentials.IsMap()) fail(file, credentials, "credentials must map names (preregistered) to {user, password, subject}");
    for (const auto& entry : credentials) {
      const auto name = entry.first.as<std::string>();
      check_name(file, entry.first, "credential", name, known_credentials());
      const auto& spec = entry.second;
      if (!spec.IsMap() || !spec["user"] || !spec["password"] || !spec["subject"])
        fail(file, spec, "credential '" + name + "' needs user, password and subject (the DN its device must request)");
      Target::Credential c{scalar(file, spec["user"], "user"), scalar(file, spec["password"], "password"), scalar(file, spec["subject"], "subject")};
      if (!DistinguishedName::parse(c.subject).ok()) fail(file, spec["subject"], "credential '" + name + "': subject '" + c.subject + "' is not a DN");
      t.credentials.insert_or_assign(name, c);
    }
  }
  if (const auto& labels = map["ca_labels"]) {
    if (!labels.IsMap()) fail(file, labels, "ca_labels must map purposes (other, rollover) to CA labels");
    for (const auto& entry : labels) {
      const auto purpose = entry.first.as<std::string>();
      check_name(file, entry.first, "CA label purpose", purpose, known_ca_labels());
      t.ca_labels.insert_or_assign(purpose, scalar(file, entry.second, "a CA label"));
    }
  }
  if (const auto& controls = map["controls"]) {
    if (!controls.IsMap()) fail(file, controls, "controls must map control names (revoke, publish-crl, approve, reject, restart) to shell commands");
    for (const auto& entry : controls) {
      const auto name = entry.first.as<std::string>();
      check_name(file, entry.first, "control", name, known_controls());
      commands[name] = scalar(file, entry.second, "a control command");
      t.controls.insert(name);
    }
  }
  if (const auto& readings = map["readings"]) {
    if (!readings.IsMap()) fail(file, readings, "readings must map points (PG-ENR-4 ...) to how this gateway reads them");
    for (const auto& entry : readings) t.readings.emplace_back(entry.first.as<std::string>(), entry.second.as<std::string>());
  }
}

void finish(const std::filesystem::path& file, const YAML::Node& node, Target& t, const std::map<std::string, std::string>& commands) {
  if (t.port == 0 || t.host.empty()) fail(file, node, "missing base_url (https://host:port)");
  if (t.trust_anchors.empty()) fail(file, node, "missing trust_anchors (a PEM file with the CA certificates that validate the server)");
  t.control_hook = [commands](const std::string& name, const ControlArguments& arguments) -> Result<std::string> {
    auto it = commands.find(name);
    if (it == commands.end()) return make_error(ErrorCode::unsupported, "no command for control " + name);
    return run_hook(it->second, arguments);
  };
}

}  // namespace

CoapsClientOptions coaps_client_options(const Target& target, std::optional<TlsIdentity> identity, std::chrono::milliseconds timeout) {
  CoapsClientOptions o;
  o.host = target.host;
  o.port = target.coaps_port;
  o.trust_anchors = target.trust_anchors;
  o.server_name = target.server_name.empty() ? target.host : target.server_name;
  o.identity = std::move(identity);
  o.handshake_timeout = o.request_timeout = timeout;
  return o;
}

std::vector<Target> load_target_file(const std::filesystem::path& file) {
  const YAML::Node root = load_yaml_file(file, "target file");
  if (!root.IsMap()) throw ConfigError(file.string() + ": a target file holds one mapping (name, profile, base_url, ...)");
  try {
    Target base;
    base.port = 0;
    base.host.clear();
    base.name = file.filename().string();
    std::map<std::string, std::string> commands;
    apply_keys(file, root, base, commands, true);
    std::vector<Target> targets;
    auto check_profile = [&](const YAML::Node& node, const std::string& profile) {
      if (profile != "rfc7030" && profile != "protocol-gateway") fail(file, node, "profile '" + profile + "' is not rfc7030 or protocol-gateway");
    };
    if (root["profile"] && root["profiles"]) fail(file, root["profiles"], "give profile or profiles, not both");
    if (const auto& profiles = root["profiles"]) {
      if (!profiles.IsMap() || profiles.size() == 0)
        fail(file, profiles, "profiles must map each profile (rfc7030, protocol-gateway) to the keys that differ for it ({} when none)");
      for (const auto& entry : profiles) {
        Target t = base;
        auto profile_commands = commands;
        t.profile = entry.first.as<std::string>();
        check_profile(entry.first, t.profile);
        if (!entry.second.IsNull()) {
          if (!entry.second.IsMap()) fail(file, entry.second, "profiles." + t.profile + " must be a mapping of target keys");
          apply_keys(file, entry.second, t, profile_commands, false);
        }
        finish(file, entry.second, t, profile_commands);
        targets.push_back(std::move(t));
      }
    } else {
      if (!root["profile"]) fail(file, root, "missing profile (rfc7030 or protocol-gateway), or profiles: for several");
      base.profile = scalar(file, root["profile"], "profile");
      check_profile(root["profile"], base.profile);
      finish(file, root, base, commands);
      targets.push_back(std::move(base));
    }
    return targets;
  } catch (const YAML::Exception& e) {
    throw ConfigError(file.string() + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

}  // namespace estlab::conformance
