// coap.properties: the CoAP proxy's configuration in the product's key syntax (PG-CFG-1), plus the
// lab's own `estlab.*` keys. Loading throws ConfigError (startup only); every value has a default
// except the ones the product requires (tlsToken, officer.token, est.url).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "estlab/coap_proxy/faults.hpp"

namespace estlab {
class Properties;
}

namespace estlab::coap_proxy {

// PG-COAP-5: what to do with several open CAs that share one subject name. The product documents
// only that it "does not allow" them; both readings are offered and the chosen one is logged.
enum class DuplicateCaSubjects {
  refuse,        // refuse to start, naming the CAs (the product's documented limitation; the default)
  ignore_later,  // keep the first CA of each subject in the CA store's order, log each one ignored
};
const char* to_string(DuplicateCaSubjects policy);

struct CoapProxyConfig {
  std::filesystem::path source;  // the coap.properties read, for messages
  std::string listen_host = "127.0.0.1";  // estlab.listen.host
  std::uint16_t port = 5684;               // coap.port; 0 picks a free one
  std::filesystem::path tls_token;         // tlsToken (.p12): the DTLS server certificate (PG-COAP-6)
  std::string tls_token_password;          // tlsToken.password
  std::filesystem::path officer_token;     // officer.token (.p12): the upstream TLS client (PG-COAP-2)
  std::string officer_password;            // officer.password
  std::string est_url;                     // est.url: https://host:port/.well-known/est
  std::filesystem::path ca_store;          // estlab.ca.store: where the open CAs come from (PG-COAP-4)
  DuplicateCaSubjects duplicate_ca_subjects = DuplicateCaSubjects::refuse;  // estlab.duplicate-ca-subjects
  std::filesystem::path est_trust_anchors;  // estlab.est.trust-anchors; "" = the open CA certificates
  std::string est_server_name;              // estlab.est.server-name; "" = est.url's host
  std::vector<std::string> labels;          // estlab.labels: CA labels served as /.well-known/est/<label>/...
  std::chrono::milliseconds upstream_connect_timeout{5000};    // estlab.upstream.connect-timeout
  std::chrono::milliseconds upstream_handshake_timeout{5000};  // estlab.upstream.handshake-timeout
  std::chrono::milliseconds upstream_io_timeout{15000};        // estlab.upstream.io-timeout
  std::chrono::seconds session_idle_timeout{60};               // estlab.session.idle-timeout
  std::size_t max_request_body = 64 * 1024;                     // estlab.max-request-body (Block1 total)
  std::size_t max_response_body = 1024 * 1024;                  // estlab.max-response-body
  std::chrono::seconds default_max_age{60};  // estlab.retry.default-max-age: 202 without Retry-After
  std::vector<std::string> warnings;         // unknown keys, coap.enabled=false, ...
  ProxyFaults faults;                        // lab only: what to get wrong on purpose (never from a file)
  // Lab only (never from a file): each request waits this long on its worker before it goes
  // upstream, as behind a slow EST server (9148-4.7-a: empty ACK, then a separate response).
  std::chrono::milliseconds upstream_delay{0};

  // Relative paths are resolved against estlab.base-dir (itself relative to the file's directory;
  // default: the file's directory).
  static CoapProxyConfig load(const std::filesystem::path& file);
  // The same from properties already in memory (the lab puts a scenario's values over its file);
  // `file` names them in messages and anchors relative paths.
  static CoapProxyConfig from_properties(const Properties& properties, const std::filesystem::path& file);
};

// est.url taken apart.
struct UpstreamUrl {
  std::string host;        // without brackets for IPv6
  std::uint16_t port = 443;
  std::string base_path;   // "/.well-known/est", no trailing slash
};
// Only https:// (PG-COAP-2: the proxy authenticates upstream with TLS).
UpstreamUrl parse_upstream_url(const std::string& url);  // throws ConfigError

}  // namespace estlab::coap_proxy
