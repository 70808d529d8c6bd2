// The suite's side of the wire to one target: an HTTPS (or plain HTTP, or EST-coaps over DTLS)
// connection as some identity, opened by a connect step or lazily by the first request, and what
// each request observed (an answer, a refused handshake, no answer). It keeps the rules of a
// well-behaved client: a kept-alive connection the server closed is replaced once; a handshake
// failure is kept for the next request to judge; a deadline that passed is remembered.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "estlab/conformance/judge.hpp"
#include "estlab/conformance/result.hpp"
#include "estlab/conformance/target.hpp"
#include "estlab/core/coaps_client.hpp"
#include "estlab/core/https_client.hpp"

namespace estlab::conformance {

// A CoAP answer as an HTTP one: the code as the status (2.05 -> 205), the content format as the
// Content-Type, binary bodies as base64 EST bodies, multipart-core as multipart/mixed, so one set
// of expectations serves both transports. The CoAP options themselves stay visible as pseudo
// headers: Content-Format (the number) and Max-Age.
HttpResponse as_http(const CoapResponse& response);

// Milliseconds since `start`, for the evidence's timings.
inline double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

struct ChannelSettings {
  std::string as;                       // the identity's name, "" = anonymous
  std::optional<TlsIdentity> identity;  // its certificate and key
  std::string tls = "any";              // "1.0".."1.3", or "any" (1.2-1.3)
  bool plain_http = false;
  std::string ciphers;       // cipher list offered (TLS <= 1.2, or DTLS over coaps); "" = OpenSSL's default
  std::string ciphersuites;  // TLS 1.3 suites offered; "" = OpenSSL's default
  bool resume = false;       // offer the session of the previous connection
  bool verify_server = true; // false: the handshake completes whatever the server presents (the judge checks it)
  std::string dtls = "any";  // coaps: "1.0", "1.2" or "any"
  std::string groups;        // coaps: supported groups to offer
  bool rejoin = false;       // coaps: lose the open connection (no close_notify), connect from its port
};

class TargetChannel {
 public:
  TargetChannel(const Target& target, bool coaps) : target_(target), coaps_transport_(coaps) {}

  // A connect step: closes what was open and connects anew. "" when the handshake completed,
  // else what failed (kept: the next request observes a refused handshake). Over coaps, settings
  // with dtls, ciphers or groups make a handshake alone (dtls_handshake); the next request opens
  // a default connection.
  std::string open(const ChannelSettings& settings, std::chrono::milliseconds timeout);
  // The TLS facts of the connection a request will use, connecting now if there is none (a CSR's
  // linking value must be this connection's); nullptr without TLS or when the handshake failed.
  const TlsConnectionInfo* tls_for_request(bool fresh, std::chrono::milliseconds timeout);
  // coaps: whether the open connection (or the last handshake alone) negotiated RFC 7627's
  // extended master secret; nullopt without one.
  std::optional<bool> extended_master_secret() const;

  Observation send(const HttpRequest& request, bool fresh, std::chrono::milliseconds timeout, Exchange& exchange);
  Observation send(const CoapRequest& request, std::chrono::milliseconds timeout, Exchange& exchange);
  Observation send_raw(std::string_view bytes, std::chrono::milliseconds timeout, Exchange& exchange);

  // The open HTTPS connection's TLS facts (nullptr without one), and whether the last connect
  // failed on this client's own limits (a suite list the local OpenSSL cannot offer, nothing to
  // resume) rather than at the server.
  const TlsConnectionInfo* tls_info() const;
  bool connect_failed_locally() const { return connect_failed_locally_; }

  std::string describe() const;  // "https TLSv1.3 as device-factory", "coaps DTLS 1.2 anonymous"
  // coaps datagrams go to this address instead of the target's (a relay in front of it); the
  // server name checked stays the target's.
  void route_coaps_via(std::string host, std::uint16_t port) {
    coaps_via_host_ = std::move(host);
    coaps_via_port_ = port;
  }
  // The client identity of the current connection (nullopt when anonymous).
  const std::optional<TlsIdentity>& identity() const { return settings_.identity; }
  // Why the target is taken as no longer answering (a deadline passed); "" while it answers.
  const std::string& timed_out() const { return timed_out_; }
  void close();

 private:
  std::string coaps_via_host_;
  std::uint16_t coaps_via_port_ = 0;
  HttpsClientOptions https_options(std::chrono::milliseconds timeout) const;
  CoapsClientOptions coaps_options(std::chrono::milliseconds timeout) const;
  Result<void> ensure_https(std::chrono::milliseconds timeout);

  const Target& target_;
  bool coaps_transport_;
  ChannelSettings settings_;
  std::optional<HttpsConnection> https_;
  std::optional<CoapsConnection> coaps_;
  std::string connect_failure_;  // the last connect's handshake failure, for the next request
  bool connect_failed_locally_ = false;
  TlsSession last_session_;      // the session of the last HTTPS connection, for `resume`
  std::optional<DtlsHandshakeResult> handshake_;  // coaps: the last restricted handshake (no connection kept)
  int requests_on_connection_ = 0;
  std::string timed_out_;
};

}  // namespace estlab::conformance
