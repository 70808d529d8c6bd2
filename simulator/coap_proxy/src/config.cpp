#include "estlab/coap_proxy/config.hpp"

#include <charconv>

#include "estlab/core/est.hpp"
#include "estlab/core/properties.hpp"
#include "estlab/core/result.hpp"

namespace estlab::coap_proxy {

const char* to_string(DuplicateCaSubjects policy) {
  return policy == DuplicateCaSubjects::refuse ? "refuse" : "ignore-later";
}

UpstreamUrl parse_upstream_url(const std::string& url) {
  constexpr std::string_view scheme = "https://";
  if (url.rfind(scheme, 0) != 0) throw ConfigError("est.url: must start with https:// (got '" + url + "')");
  std::string rest = url.substr(scheme.size());
  const std::size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  UpstreamUrl out;
  out.base_path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!out.base_path.empty() && out.base_path.back() == '/') out.base_path.pop_back();
  if (out.base_path.empty()) out.base_path = "/.well-known/est";
  std::string port_text;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string::npos) throw ConfigError("est.url: unclosed IPv6 literal in '" + url + "'");
    out.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') port_text = authority.substr(close + 2);
  } else {
    const std::size_t colon = authority.rfind(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty()) throw ConfigError("est.url: no host in '" + url + "'");
  if (!port_text.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || value == 0 || value > 65535)
      throw ConfigError("est.url: bad port '" + port_text + "'");
    out.port = static_cast<std::uint16_t>(value);
  }
  return out;
}

CoapProxyConfig CoapProxyConfig::load(const std::filesystem::path& file) {
  auto loaded = Properties::load_file(file);
  if (!loaded.ok()) throw ConfigError(loaded.error().message);
  return from_properties(*loaded, file);
}

CoapProxyConfig CoapProxyConfig::from_properties(const Properties& p, const std::filesystem::path& file) {
  CoapProxyConfig c;
  c.source = file;
  c.warnings = p.warnings();
  for (auto& w : p.warnings_for_unknown({"coap.enabled", "coap.port", "tlsToken", "tlsToken.password", "officer.token",
                                         "officer.password", "est.url", "estlab.base-dir", "estlab.listen.host",
                                         "estlab.ca.store", "estlab.duplicate-ca-subjects", "estlab.est.trust-anchors",
                                         "estlab.est.server-name", "estlab.labels", "estlab.upstream.connect-timeout",
                                         "estlab.upstream.handshake-timeout", "estlab.upstream.io-timeout",
                                         "estlab.session.idle-timeout", "estlab.max-request-body",
                                         "estlab.max-response-body", "estlab.retry.default-max-age"}))
    c.warnings.push_back(w);

  const std::filesystem::path dir = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
  const std::filesystem::path base = dir / p.get_string("estlab.base-dir", ".");
  auto path_of = [&](const std::string& key, bool required) -> std::filesystem::path {
    auto value = p.get_string(key);
    if (!value || value->empty()) {
      if (required) throw ConfigError(file.string() + ": " + key + " is not set");
      return {};
    }
    std::filesystem::path path(*value);
    return path.is_absolute() ? path : (base / path).lexically_normal();
  };
  if (!value_or_throw(p.get_bool("coap.enabled", true), file.string()))
    c.warnings.push_back(file.string() + ": coap.enabled is false; the proxy runs because it was asked to");
  c.port = static_cast<std::uint16_t>(value_or_throw(p.get_int("coap.port", 0, 65535, 5684), file.string()));
  c.listen_host = p.get_string("estlab.listen.host", "127.0.0.1");
  c.tls_token = path_of("tlsToken", true);
  c.tls_token_password = p.get_string("tlsToken.password", "");
  c.officer_token = path_of("officer.token", true);
  c.officer_password = p.get_string("officer.password", "");
  c.est_url = p.get_string("est.url", "");
  if (c.est_url.empty()) throw ConfigError(file.string() + ": est.url is not set");
  parse_upstream_url(c.est_url);  // checked now, not on the first request
  c.ca_store = path_of("estlab.ca.store", false);
  const std::string duplicates = p.get_string("estlab.duplicate-ca-subjects", "refuse");
  if (duplicates == "refuse") c.duplicate_ca_subjects = DuplicateCaSubjects::refuse;
  else if (duplicates == "ignore-later") c.duplicate_ca_subjects = DuplicateCaSubjects::ignore_later;
  else throw ConfigError(file.string() + ": estlab.duplicate-ca-subjects must be refuse or ignore-later, not '" + duplicates + "'");
  c.est_trust_anchors = path_of("estlab.est.trust-anchors", false);
  c.est_server_name = p.get_string("estlab.est.server-name", "");
  c.labels = value_or_throw(p.get_list("estlab.labels"), file.string());
  for (const auto& label : c.labels)
    if (!is_valid_est_label(label)) throw ConfigError(file.string() + ": estlab.labels: '" + label + "' is not a valid EST label");
  auto ms = [&](const std::string& key, std::chrono::milliseconds fallback) {
    auto s = value_or_throw(p.get_duration_seconds(key, std::chrono::duration_cast<std::chrono::seconds>(fallback)), file.string());
    if (s.count() == 0) throw ConfigError(file.string() + ": " + key + " must be at least 1 second");
    return std::chrono::milliseconds(s);
  };
  c.upstream_connect_timeout = ms("estlab.upstream.connect-timeout", c.upstream_connect_timeout);
  c.upstream_handshake_timeout = ms("estlab.upstream.handshake-timeout", c.upstream_handshake_timeout);
  c.upstream_io_timeout = ms("estlab.upstream.io-timeout", c.upstream_io_timeout);
  c.session_idle_timeout = value_or_throw(p.get_duration_seconds("estlab.session.idle-timeout", c.session_idle_timeout), file.string());
  c.max_request_body = static_cast<std::size_t>(
      value_or_throw(p.get_int("estlab.max-request-body", 256, 16 << 20, static_cast<std::int64_t>(c.max_request_body)), file.string()));
  c.max_response_body = static_cast<std::size_t>(
      value_or_throw(p.get_int("estlab.max-response-body", 1024, 64 << 20, static_cast<std::int64_t>(c.max_response_body)), file.string()));
  c.default_max_age = value_or_throw(p.get_duration_seconds("estlab.retry.default-max-age", c.default_max_age), file.string());
  return c;
}

}  // namespace estlab::coap_proxy
