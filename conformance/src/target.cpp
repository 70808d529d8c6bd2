#include "estlab/conformance/target.hpp"

#include <sys/wait.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <regex>

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

Target load_target_file(const std::filesystem::path& file) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file.string());
  } catch (const YAML::BadFile&) {
    throw ConfigError(file.string() + ": cannot read the target file");
  } catch (const YAML::Exception& e) {
    throw ConfigError(file.string() + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax: " + e.msg);
  }
  if (!root.IsMap()) throw ConfigError(file.string() + ": a target file holds one mapping (name, profile, base_url, ...)");
  static const std::vector<std::string> known = {"name", "profile", "base_url", "coaps_port", "server_name", "label", "trust_anchors",
                                                  "key_type", "features", "identities", "controls", "readings"};
  for (const auto& entry : root) {
    const auto key = entry.first.as<std::string>();
    if (std::find(known.begin(), known.end(), key) == known.end())
      fail(file, entry.first, "unknown key '" + key + "' (known: name, profile, base_url, coaps_port, server_name, label, trust_anchors, key_type, features, identities, controls, readings)");
  }
  const auto base = file.parent_path();
  auto path_of = [&](const YAML::Node& node) {
    std::filesystem::path p(node.as<std::string>());
    return p.is_absolute() ? p : base / p;
  };
  Target t;
  t.name = root["name"] ? root["name"].as<std::string>() : file.filename().string();
  if (!root["profile"]) fail(file, root, "missing profile (rfc7030 or protocol-gateway)");
  t.profile = root["profile"].as<std::string>();
  if (t.profile != "rfc7030" && t.profile != "protocol-gateway") fail(file, root["profile"], "profile must be rfc7030 or protocol-gateway");
  if (!root["base_url"]) fail(file, root, "missing base_url (https://host:port)");
  static const std::regex url(R"(^https://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+)(:(\d{1,5}))?/?$)");
  std::smatch m;
  const auto base_url = root["base_url"].as<std::string>();
  if (!std::regex_match(base_url, m, url)) fail(file, root["base_url"], "base_url '" + base_url + "' is not https://host[:port]");
  t.host = m[1].str();
  if (!t.host.empty() && t.host.front() == '[') t.host = t.host.substr(1, t.host.size() - 2);
  t.port = m[3].matched ? static_cast<std::uint16_t>(std::stoi(m[3].str())) : 443;
  if (root["server_name"]) t.server_name = root["server_name"].as<std::string>();
  if (root["coaps_port"]) {
    const int port = root["coaps_port"].as<int>(0);
    if (port <= 0 || port > 65535) fail(file, root["coaps_port"], "coaps_port must be a UDP port number");
    t.coaps_port = static_cast<std::uint16_t>(port);
    t.features.insert("coaps");
  }
  if (root["label"]) t.default_label = root["label"].as<std::string>();
  if (!root["trust_anchors"]) fail(file, root, "missing trust_anchors (a PEM file with the CA certificates that validate the server)");
  {
    auto bytes = read_file_bytes(path_of(root["trust_anchors"]).string());
    if (!bytes.ok()) fail(file, root["trust_anchors"], bytes.error().message);
    auto certs = Certificate::parse_all(*bytes);
    if (!certs.ok() || certs->empty()) fail(file, root["trust_anchors"], "no certificates in " + path_of(root["trust_anchors"]).string());
    t.trust_anchors = *certs;
  }
  if (root["key_type"]) {
    auto type = parse_key_type(root["key_type"].as<std::string>());
    if (!type.ok()) fail(file, root["key_type"], type.error().message);
    t.key_type = *type;
  }
  if (const auto& features = root["features"]) {
    if (!features.IsSequence()) fail(file, features, "features must be a list");
    for (const auto& f : features) t.features.insert(f.as<std::string>());
  }
  if (const auto& identities = root["identities"]) {
    if (!identities.IsMap()) fail(file, identities, "identities must map role names to {certificate, key} or {pkcs12, password}");
    for (const auto& entry : identities) {
      const auto role = entry.first.as<std::string>();
      const auto& spec = entry.second;
      Result<TlsIdentity> identity = make_error(ErrorCode::invalid_input, "");
      if (spec["pkcs12"]) identity = TlsIdentity::load_pkcs12(path_of(spec["pkcs12"]), spec["password"] ? spec["password"].as<std::string>() : "");
      else if (spec["certificate"] && spec["key"]) identity = TlsIdentity::load(path_of(spec["certificate"]), path_of(spec["key"]));
      else fail(file, spec, "identity '" + role + "' needs certificate and key, or pkcs12 and password");
      if (!identity.ok()) fail(file, spec, "identity '" + role + "': " + identity.error().message);
      t.identities.emplace(role, std::move(identity).value());
    }
  }
  std::map<std::string, std::string> commands;
  if (const auto& controls = root["controls"]) {
    if (!controls.IsMap()) fail(file, controls, "controls must map control names (revoke, publish-crl, approve, reject, restart) to shell commands");
    for (const auto& entry : controls) {
      const auto name = entry.first.as<std::string>();
      static const std::vector<std::string> names = {"revoke", "publish-crl", "approve", "reject", "restart"};
      if (std::find(names.begin(), names.end(), name) == names.end())
        fail(file, entry.first, "unknown control '" + name + "' (revoke, publish-crl, approve, reject, restart)");
      commands[name] = entry.second.as<std::string>();
      t.controls.insert(name);
    }
  }
  if (const auto& readings = root["readings"]) {
    for (const auto& entry : readings) t.readings.emplace_back(entry.first.as<std::string>(), entry.second.as<std::string>());
  }
  t.control_hook = [commands](const std::string& name, const ControlArguments& arguments) -> Result<std::string> {
    auto it = commands.find(name);
    if (it == commands.end()) return make_error(ErrorCode::unsupported, "no command for control " + name);
    return run_hook(it->second, arguments);
  };
  return t;
}

}  // namespace estlab::conformance
