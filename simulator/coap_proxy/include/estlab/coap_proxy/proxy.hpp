// `estlab coap-proxy`: a DTLS 1.2 CoAP server (libcoap 3, OpenSSL) that serves the EST-coaps
// resources and forwards each request to the EST gateway over HTTPS as the officer, carrying the
// device's chain (PG-COAP-1, -2). Startup enforces the product's rules: the DTLS certificate must
// carry serverAuth (PG-COAP-6), the truststore is the open CAs fetched from the CA (PG-COAP-4), and
// CAs that share a subject are refused or ignored as configured (PG-COAP-5).
// One thread owns the libcoap context and never waits for the gateway: a forwarded request gets an
// empty ACK at once and a separate response when a worker's HTTPS exchange (bounded by its
// deadlines) is done (RFC 7252 5.2.2), so a slow upstream answer delays no other device.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "estlab/core/certificate.hpp"
#include "estlab/core/https_client.hpp"
#include "estlab/core/result.hpp"
#include "estlab/coap_proxy/config.hpp"

namespace estlab::coap_proxy {

using LogSink = std::function<void(const std::string& line)>;
LogSink stderr_log_sink();

// How the proxy reaches the EST service; the default is core's HTTPS client with the officer
// identity. Tests may give their own; it is called on several worker threads at once.
using Upstream = std::function<Result<HttpResponse>(const HttpRequest&)>;
// What the EST server saw of the proxy's own connection for one forwarded request (9148-5-a/b).
struct UpstreamConnection {
  std::string scheme;                             // "https"; "" = a test's Upstream function (not known)
  std::string tls_version;                        // "TLSv1.3"; "" = no TLS connection was made
  std::optional<Certificate> client_certificate;  // the TLS client certificate the proxy presented
};
// Told of each request forwarded upstream, of what came back and over what connection, on a
// forwarding worker thread (several may call at once; keep it short): the embedded lab shows
// scenarios what the gateway received (9148-5-*).
using ForwardObserver =
    std::function<void(const HttpRequest& sent, const Result<HttpResponse>& answer, const UpstreamConnection& connection)>;

struct ProxyStats {
  std::uint64_t requests = 0;
  std::uint64_t forwarded = 0;
  std::uint64_t answered_locally = 0;
  std::uint64_t upstream_failures = 0;
  std::uint64_t dtls_failures = 0;
  std::uint64_t duplicates = 0;  // copies of a request (in flight or answered) acknowledged, not forwarded
  std::uint64_t answers_resent = 0;  // late copies answered again with the answer their lost ACK carried
  std::uint64_t upstream_connections = 0;  // HTTPS connections opened to the EST server (kept alive between requests)
  std::uint64_t upstream_resumed = 0;      // of those, connections that resumed an earlier TLS session
  std::uint64_t upstream_resends = 0;      // requests sent again because a kept connection was closed under them
  // RFC 6347 4.2.8: a device back from the address of a session it lost (rehandshake.hpp).
  std::uint64_t rehandshake_cookies = 0;   // HelloVerifyRequests answering a ClientHello on an established session
  std::uint64_t sessions_replaced = 0;     // old sessions ended once the device's cookie came back
};

class CoapProxy {
 public:
  // Loads the tokens, checks them, builds the truststore, binds and starts the I/O thread. Errors
  // name the rule and what failed (PG-COAP-6 serverAuth, PG-COAP-5 duplicate subject, ...).
  static Result<std::unique_ptr<CoapProxy>> start(const CoapProxyConfig& config, LogSink log = stderr_log_sink(),
                                                  Upstream upstream = {}, ForwardObserver observer = {});
  ~CoapProxy();
  CoapProxy(const CoapProxy&) = delete;
  CoapProxy& operator=(const CoapProxy&) = delete;

  std::uint16_t port() const;
  const std::vector<Certificate>& truststore() const;   // the CA certificates accepted for devices
  const std::vector<std::string>& startup_notes() const;  // which readings applied, CAs ignored
  ProxyStats stats() const;
  void stop();  // bounded: the loop wakes at least every 100 ms

  struct Impl;

 private:
  explicit CoapProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace estlab::coap_proxy
