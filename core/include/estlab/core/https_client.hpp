// A blocking HTTPS client for EST: one TLS connection, several requests (keep-alive), a deadline
// on every connect, handshake, write and read, TCP_NODELAY, and the TLS facts EST needs
// (version, server chain, tls-unique / tls-exporter). Used by the conformance engine, the CoAP
// proxy's upstream side and tests. Each connection owns its own io_context, so connections on
// different threads never share state.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "estlab/core/certificate.hpp"
#include "estlab/core/result.hpp"
#include "estlab/core/tls.hpp"

namespace estlab {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;
// The first header of that name (case-insensitive, RFC 9110 5.1).
std::optional<std::string> find_header(const HttpHeaders& headers, std::string_view name);

struct HttpRequest {
  std::string method = "GET";
  std::string target = "/";
  HttpHeaders headers;  // Host, Content-Length and Connection are added unless present
  std::string body;

  std::optional<std::string> header(std::string_view name) const;  // case-insensitive
  // Request line, headers, blank line, body (for evidence); credentials redacted unless asked
  // (printable_header_value in est.hpp).
  std::string to_text(bool show_secrets = false) const;
};

struct HttpResponse {
  int status = 0;
  std::string reason;
  HttpHeaders headers;
  std::string body;
  bool keep_alive = true;

  std::optional<std::string> header(std::string_view name) const;  // case-insensitive, first one
  std::string to_text() const;
};

struct HttpsClientOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 443;
  bool use_tls = true;        // false only to prove that plain HTTP is refused (RFC 7030 3.3)
  std::string server_name;    // SNI and the name checked in the server certificate; "" = host
  bool verify_server = true;  // chain to trust_anchors and name match (RFC 6125)
  std::vector<Certificate> trust_anchors;
  std::optional<TlsIdentity> identity;  // client certificate
  TlsVersion min_version = TlsVersion::tls1_2;
  TlsVersion max_version = TlsVersion::tls1_3;
  // OpenSSL cipher list for TLS <= 1.2 ("eNULL:@SECLEVEL=0"); "" = OpenSSL's default. A list this
  // OpenSSL cannot offer at the chosen versions is an `unsupported` error, never a handshake.
  std::string tls12_ciphers;
  std::string tls13_ciphersuites;  // TLS 1.3 suites ("TLS_AES_128_GCM_SHA256"); "" = OpenSSL's default
  TlsSession resume_session;       // offered in the ClientHello to resume it; null = a full handshake
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds handshake_timeout{5000};
  std::chrono::milliseconds io_timeout{15000};  // each write, and each read of a response
  std::size_t max_response_header = 16 * 1024;
  std::size_t max_response_body = 4 * 1024 * 1024;
  std::filesystem::path keylog_file;  // "" = SSLKEYLOGFILE if set
};

class HttpsConnection {
 public:
  // TCP connect (TCP_NODELAY) and TLS handshake. A failed handshake is an error whose message
  // says what the peer or OpenSSL reported (for example "tlsv1 alert protocol version").
  static Result<HttpsConnection> connect(const HttpsClientOptions& options);

  HttpsConnection(HttpsConnection&&) noexcept;
  HttpsConnection& operator=(HttpsConnection&&) noexcept;
  ~HttpsConnection();

  // Sends one request and reads its response on this connection.
  Result<HttpResponse> send(const HttpRequest& request);
  // Writes bytes as they are (malformed requests) and reads whatever HTTP response comes back.
  Result<HttpResponse> send_raw(std::string_view bytes);

  const TlsConnectionInfo& tls() const;  // meaningless when use_tls is false
  // The session to offer on a later connection (with TLS 1.3 the server's ticket arrives after the
  // handshake: take it after a response was read); null without TLS.
  TlsSession session() const;
  bool open() const;
  // Open, and nothing has arrived since the last response: a server that closed the connection
  // while it sat idle (its FIN or close_notify is already here) makes this false, without blocking.
  bool idle_and_open() const;
  void close();  // TLS close_notify with a short deadline, then the socket

 private:
  struct Impl;
  explicit HttpsConnection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One request on a fresh connection.
Result<HttpResponse> https_request(const HttpsClientOptions& options, const HttpRequest& request);

// Keep-alive connections to one server, shared by threads (the CoAP proxy's workers): a request
// takes the idle connection used last, or opens one (offering the last TLS session for
// resumption), and gives it back after a keep-alive response. A connection idle longer than
// `max_idle_time`, or one the server has already closed, is never used. A server can still close a
// connection as the request leaves; that request, on a reused connection only, is sent once more
// on a new one when it failed without any response (never after a timeout: the server may be
// working on it). At most `max_idle` connections wait.
class HttpsConnectionPool {
 public:
  struct Answer {
    Result<HttpResponse> response;
    TlsConnectionInfo tls;  // of the connection that carried the request (or tried to)
    bool reused = false;    // it carried an earlier request
  };

  HttpsConnectionPool(HttpsClientOptions options, std::size_t max_idle, std::chrono::milliseconds max_idle_time);
  ~HttpsConnectionPool();
  HttpsConnectionPool(const HttpsConnectionPool&) = delete;
  HttpsConnectionPool& operator=(const HttpsConnectionPool&) = delete;

  Answer send(const HttpRequest& request);
  const HttpsClientOptions& options() const;
  std::size_t connections_opened() const;  // over the pool's life
  std::size_t sessions_resumed() const;    // of those, how many resumed an earlier TLS session
  std::size_t resends() const;             // requests sent again after a reused connection failed

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace estlab
