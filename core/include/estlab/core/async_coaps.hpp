// Asynchronous EST-coaps exchanges for many concurrent devices (the fleet): one libcoap context
// per io_context thread, many DTLS sessions on it, libcoap's epoll descriptor watched by the
// io_context, so no thread ever waits for one device. Each exchange is a fresh DTLS session (a full
// handshake with the device's own certificate, as a device waking up to enroll), one confirmable
// request, the whole answer (Block1/Block2 by libcoap), then the session is released. Bodies are
// binary DER (RFC 9148 4.3). libcoap is not thread-safe: a client and its handlers stay on the
// one thread that runs its io_context.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "estlab/core/certificate.hpp"
#include "estlab/core/coaps_client.hpp"
#include "estlab/core/result.hpp"
#include "estlab/core/tls.hpp"

namespace estlab {

struct AsyncCoapsOptions {
  std::string host = "127.0.0.1";  // resolved once, when the client is made
  std::uint16_t port = 5684;
  std::vector<Certificate> trust_anchors;  // the server is always verified (RFC 9148 3)
  std::string server_name;                 // RFC 6125 name check of the server's leaf; "" = none
  std::chrono::milliseconds timeout{15000};  // handshake and request together, per exchange
  std::size_t max_response_body = 1u << 20;
};

class AsyncCoapsClient {
 public:
  // Errors: no trust anchors, an unresolvable host, libcoap without DTLS.
  static Result<std::unique_ptr<AsyncCoapsClient>> make(boost::asio::io_context& io, const AsyncCoapsOptions& options);
  ~AsyncCoapsClient();
  AsyncCoapsClient(const AsyncCoapsClient&) = delete;
  AsyncCoapsClient& operator=(const AsyncCoapsClient&) = delete;

  // The handler runs on the io_context's thread, exactly once: the answer, or an error naming the
  // phase ("DTLS handshake failed", "no answer within 15000 ms", a NACK's reason).
  using Handler = std::function<void(Result<CoapResponse>)>;
  void exchange(const std::optional<TlsIdentity>& identity, CoapRequest request, Handler handler);

  std::size_t in_flight() const;

  struct Impl;

 private:
  explicit AsyncCoapsClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace estlab
