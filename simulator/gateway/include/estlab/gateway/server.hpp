// The gateway's HTTPS server: Boost.Asio + Beast + OpenSSL, a strand per connection, a deadline
// on every handshake, read and write, keep-alive, header and body limits (431 / 413), and a
// plain-HTTP detector that answers "EST needs HTTPS" instead of a TLS error.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "estlab/core/result.hpp"
#include "estlab/gateway/service.hpp"

namespace estlab::gateway {

// One structured log line per request (logfmt), and one per refused connection.
using LogSink = std::function<void(const std::string& line)>;
LogSink stderr_log_sink();

struct ServerStats {
  std::uint64_t connections = 0;
  std::uint64_t handshake_failures = 0;
  std::uint64_t requests = 0;
  std::uint64_t refused_connections = 0;  // over the connection limit
};

class GatewayServer {
 public:
  // Binds, loads the TLS identity and starts `threads` I/O threads. Errors name what failed
  // (the port in use, the key not matching the certificate, ...).
  static Result<std::unique_ptr<GatewayServer>> start(std::shared_ptr<RequestHandler> handler, std::size_t threads = 2,
                                                      LogSink log = stderr_log_sink());
  ~GatewayServer();
  GatewayServer(const GatewayServer&) = delete;
  GatewayServer& operator=(const GatewayServer&) = delete;

  std::uint16_t port() const;
  std::string base_url() const;  // "https://127.0.0.1:port"
  ServerStats stats() const;
  RequestHandler& handler();
  // Stops accepting, closes every connection, waits for the threads (bounded by the shutdown timeout).
  void stop();

  struct Impl;  // opaque; public so the connection sessions in server.cpp can name it

 private:
  explicit GatewayServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace estlab::gateway
