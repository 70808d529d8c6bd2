// Asynchronous HTTPS exchanges for many concurrent clients on a few io_contexts (the device
// fleet): one request per exchange, on a fresh connection (a full TLS handshake, as a device that
// wakes up to enroll does). Every phase has a deadline; TCP_NODELAY is set. The TLS context is
// built once per identity and shared by every exchange that uses it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "estlab/core/certificate.hpp"
#include "estlab/core/https_client.hpp"
#include "estlab/core/result.hpp"
#include "estlab/core/tls.hpp"

namespace estlab {

// A client TLS context: versions, trust anchors (the server is always verified) and an optional
// client identity.
class AsyncTlsClientContext {
 public:
  static Result<std::shared_ptr<AsyncTlsClientContext>> make(const std::vector<Certificate>& trust_anchors,
                                                             const std::optional<TlsIdentity>& identity,
                                                             TlsVersion min_version = TlsVersion::tls1_2,
                                                             TlsVersion max_version = TlsVersion::tls1_3);
  boost::asio::ssl::context& native() { return context_; }

  AsyncTlsClientContext() : context_(boost::asio::ssl::context::tls_client) {}

 private:
  boost::asio::ssl::context context_;
};

struct AsyncExchangeTarget {
  boost::asio::ip::tcp::endpoint endpoint;  // resolved once by the caller
  std::string server_name;                  // SNI and the name checked in the server certificate
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds handshake_timeout{5000};
  std::chrono::milliseconds io_timeout{15000};
  std::size_t max_response_body = 4 * 1024 * 1024;
};

// The response, or an error whose message names the phase (connect, handshake, write, read) and
// the cause; timeouts are ErrorCode::timeout. The handler runs on the io_context's thread.
using AsyncExchangeHandler = std::function<void(Result<HttpResponse>)>;
void async_https_exchange(boost::asio::io_context& io, std::shared_ptr<AsyncTlsClientContext> context,
                          const AsyncExchangeTarget& target, HttpRequest request, AsyncExchangeHandler handler);

}  // namespace estlab
