#include "estlab/core/async_coaps.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <openssl/ssl.h>
#include <poll.h>

#include <map>
#include <utility>

#include "estlab/core/coap_handles.hpp"

#include "coap_blockwise.hpp"

namespace estlab {

namespace asio = boost::asio;

namespace {

// One device's exchange: its DTLS session, its identity's PEM (libcoap reads it while the session
// is made) and its deadline.
struct Exchange {
  explicit Exchange(asio::io_context& io) : deadline(io) {}
  AsyncCoapsClient::Handler handler;
  std::string certificate_pem, key_pem;
  coap_dtls_pki_t pki{};
  CoapRequest request;
  std::optional<coap::BlockwiseTransfer> transfer;  // Block1 and Block2 (coap_blockwise.hpp), over `request`
  std::string expected_token;                       // of the message in flight
  coap::Session session;
  asio::steady_timer deadline;
  bool connected = false;
  std::optional<Result<CoapResponse>> outcome;  // set once; the handler runs after libcoap returns
};

}  // namespace

struct AsyncCoapsClient::Impl {
  Impl(asio::io_context& io_context) : io(io_context), watch(io_context), tick(io_context) {}
  ~Impl() {
    // The epoll descriptor belongs to libcoap's context.
    if (watch.is_open()) watch.release();
    for (auto& [raw, exchange] : exchanges)
      if (exchange->session) coap_session_set_app_data(exchange->session.get(), nullptr);
    exchanges.clear();  // sessions before their context
  }

  asio::io_context& io;
  AsyncCoapsOptions options;
  coap_address_t server{};
  coap::Context context;
  // After the context: destroyed first, so every session is released before its context.
  std::map<Exchange*, std::unique_ptr<Exchange>> exchanges;
  std::vector<Exchange*> finished;  // outcomes set inside libcoap's callbacks, handled after it returns
  std::vector<Exchange*> next_message;  // a block-wise exchange's next message, sent after libcoap returns
  asio::posix::stream_descriptor watch;
  asio::steady_timer tick;
  bool watching = false, ticking = false;

  static Exchange* of(coap_session_t* session) { return static_cast<Exchange*>(coap_session_get_app_data(session)); }
  static Impl* owner(coap_session_t* session) {
    return static_cast<Impl*>(coap_get_app_data(coap_session_get_context(session)));
  }

  void settle(Exchange* exchange, Result<CoapResponse> outcome) {
    if (exchange->outcome) return;
    exchange->outcome = std::move(outcome);
    finished.push_back(exchange);
  }

  static int on_event(coap_session_t* session, const coap_event_t event) noexcept {
    coap::event_seen();
    Exchange* exchange = of(session);
    Impl* self = owner(session);
    if (exchange == nullptr || self == nullptr || exchange->outcome) return 0;
    switch (event) {
      case COAP_EVENT_DTLS_CONNECTED: {
        exchange->connected = true;
        coap_session_set_max_retransmit(session, coap::kCoapMaxRetransmit);
        if (self->options.server_name.empty()) break;
        coap_tls_library_t library;
        auto* ssl = static_cast<SSL*>(coap_session_get_tls(session, &library));
        X509* leaf = ssl != nullptr && library == COAP_TLS_LIBRARY_OPENSSL ? SSL_get0_peer_certificate(ssl) : nullptr;
        if (leaf == nullptr) {
          self->settle(exchange, make_error(ErrorCode::verify_failed, "the server sent no certificate"));
        } else if (auto named = coap::check_server_name(Certificate::borrow_shared(leaf), self->options.server_name); !named.ok()) {
          self->settle(exchange, named.error());
        }
        break;
      }
      case COAP_EVENT_DTLS_ERROR:
      case COAP_EVENT_DTLS_CLOSED:
      case COAP_EVENT_SESSION_FAILED:
      case COAP_EVENT_SESSION_CLOSED:
        self->settle(exchange, exchange->connected ? make_error(ErrorCode::io, coap::session_ended_during_request(event))
                                                   : make_error(ErrorCode::verify_failed, "DTLS handshake failed"));
        break;
      default: break;
    }
    return 0;
  }

  static coap_response_t on_response(coap_session_t* session, const coap_pdu_t*, const coap_pdu_t* received, const coap_mid_t) noexcept {
    Exchange* exchange = of(session);
    Impl* self = owner(session);
    if (exchange == nullptr || self == nullptr || exchange->outcome) return COAP_RESPONSE_OK;
    try {
      if (coap::token_of(received) != exchange->expected_token) return COAP_RESPONSE_OK;  // a late answer to an earlier message
      if (exchange->transfer->take(coap::BlockAnswer::read(received)))
        self->settle(exchange, exchange->transfer->result());
      else
        self->next_message.push_back(exchange);  // sent after libcoap returns
    } catch (const std::exception& e) {
      self->settle(exchange, make_error(ErrorCode::internal, std::string("reading the response: ") + e.what()));
    }
    return COAP_RESPONSE_OK;
  }

  static void on_nack(coap_session_t* session, const coap_pdu_t*, const coap_nack_reason_t reason, const coap_mid_t) noexcept {
    Exchange* exchange = of(session);
    Impl* self = owner(session);
    if (exchange == nullptr || self == nullptr) return;
    self->settle(exchange, make_error(reason == COAP_NACK_TOO_MANY_RETRIES ? ErrorCode::timeout : ErrorCode::io, coap::nack_reason(reason)));
  }

  // Outside libcoap's callbacks: release the sessions of settled exchanges and run their handlers
  // (which may start the device's next exchange).
  void complete() {
    for (Exchange* exchange : std::exchange(next_message, {})) {
      auto it = exchanges.find(exchange);
      if (it == exchanges.end() || exchange->outcome) continue;
      if (auto sent = send(*exchange); !sent.ok()) settle(exchange, sent.error());
    }
    while (!finished.empty()) {
      Exchange* exchange = finished.back();
      finished.pop_back();
      auto it = exchanges.find(exchange);
      if (it == exchanges.end()) continue;
      auto owned = std::move(it->second);
      exchanges.erase(it);
      owned->deadline.cancel();
      if (owned->session) coap_session_set_app_data(owned->session.get(), nullptr);
      owned->session.reset();
      auto handler = std::move(owned->handler);
      auto outcome = std::move(*owned->outcome);
      owned.reset();
      handler(std::move(outcome));
    }
    if (exchanges.empty()) {
      watch.cancel();
      tick.cancel();
    }
  }

  void process() {
    coap::process_io(context.get(), COAP_IO_NO_WAIT);
    // Asio watches libcoap's epoll descriptor edge-triggered: drain what is ready now.
    pollfd fd{coap_context_get_coap_fd(context.get()), POLLIN, 0};
    for (int i = 0; i < 64 && fd.fd >= 0 && ::poll(&fd, 1, 0) > 0 && (fd.revents & POLLIN); ++i) {
      coap::process_io(context.get(), COAP_IO_NO_WAIT);
      fd.revents = 0;
    }
    complete();
  }

  void arm() {
    if (exchanges.empty()) return;
    if (!watching && watch.is_open()) {
      watching = true;
      watch.async_wait(asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
        watching = false;
        if (!ec) process();
        arm();
      });
    }
    // libcoap's timers (DTLS and CoAP retransmissions) sit in its epoll set too; the tick is a
    // safety net, and the only driver where libcoap has no epoll.
    if (!ticking) {
      ticking = true;
      tick.expires_after(std::chrono::milliseconds(watch.is_open() ? 50 : 2));
      tick.async_wait([this](boost::system::error_code ec) {
        ticking = false;
        if (!ec) process();
        arm();
      });
    }
  }

  void start(const std::optional<TlsIdentity>& identity, CoapRequest request, Handler handler) {
    auto owned = std::make_unique<Exchange>(io);
    Exchange* exchange = owned.get();
    exchange->handler = std::move(handler);
    exchange->request = std::move(request);
    exchanges.emplace(exchange, std::move(owned));
    // Ends the exchange before it sent anything: its handler runs from the loop, never from here.
    auto end_now = [&](Error error) {
      settle(exchange, std::move(error));
      asio::post(io, [this] { complete(); });
    };
    // Blocks of 1024 bytes (SZX 6) unless the request asks for smaller ones; the transfer reads the
    // request where it stays, in the exchange.
    const unsigned szx = exchange->request.block_szx.value_or(6u);
    if (szx > 6) return end_now(make_error(ErrorCode::invalid_input, "block_szx must be 0..6"));
    exchange->transfer.emplace(exchange->request, szx, options.max_response_body);
    exchange->pki = coap::pki_setup(true, nullptr, nullptr);
    if (identity) {
      exchange->certificate_pem = identity->certificate.pem();
      exchange->key_pem = identity->key.pkcs8_pem();
      coap::set_pem_identity(exchange->pki, exchange->certificate_pem, exchange->key_pem);
    }
    if (!options.server_name.empty()) exchange->pki.client_sni = const_cast<char*>(options.server_name.c_str());
    // libcoap reads the PKI (our certificate and key) into the new session's SSL here.
    ERR_clear_error();  // libcoap asks SSL_get_error after SSL_connect: see coap::process_io
    exchange->session.reset(coap_new_client_session_pki(context.get(), nullptr, &server, COAP_PROTO_DTLS, &exchange->pki));
    if (!exchange->session)
      return end_now(make_error(ErrorCode::io, "cannot start a DTLS session to " + options.host + ":" + std::to_string(options.port)));
    coap_session_set_app_data(exchange->session.get(), exchange);
    if (identity)
      if (auto added = coap::add_client_chain(exchange->session.get(), identity->chain); !added.ok()) return end_now(added.error());
    coap_session_set_max_retransmit(exchange->session.get(), coap::kDtlsHandshakeRetransmissions);
    exchange->deadline.expires_after(options.timeout);
    exchange->deadline.async_wait([this, exchange](boost::system::error_code ec) {
      if (ec || !exchanges.count(exchange)) return;
      settle(exchange, make_error(ErrorCode::timeout, std::string(exchange->connected ? "no answer to " + exchange->request.path
                                                                                     : "no DTLS handshake") +
                                                          " within " + std::to_string(options.timeout.count()) + " ms"));
      complete();
    });
    if (auto sent = send(*exchange); !sent.ok()) return end_now(sent.error());
    arm();
  }

  // The exchange's next CON message (libcoap queues the first until the handshake is done).
  Result<void> send(Exchange& exchange) {
    auto pdu = coap::build_message(exchange.session.get(), exchange.request, exchange.transfer->message(), exchange.expected_token);
    if (!pdu.ok()) return pdu.error();
    ERR_clear_error();  // and after SSL_write
    if (coap_send(exchange.session.get(), pdu->release()) == COAP_INVALID_MID) return make_error(ErrorCode::io, "coap_send failed");
    return {};
  }
};

AsyncCoapsClient::AsyncCoapsClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AsyncCoapsClient::~AsyncCoapsClient() = default;

Result<std::unique_ptr<AsyncCoapsClient>> AsyncCoapsClient::make(asio::io_context& io, const AsyncCoapsOptions& options) {
  coap::ensure_started();
  if (!coap_dtls_is_supported()) return make_error(ErrorCode::unsupported, "libcoap was built without DTLS support");
  auto impl = std::make_unique<Impl>(io);
  impl->options = options;
  auto server = coap::resolve_udp(options.host, options.port);
  if (!server.ok()) return server.error();
  impl->server = *server;
  impl->context.reset(coap_new_context(nullptr));
  if (!impl->context) return make_error(ErrorCode::internal, "coap_new_context failed");
  coap_set_app_data(impl->context.get(), impl.get());
  // No libcoap block mode: each exchange does Block1 and Block2 itself (coap_blockwise.hpp).
  coap_register_response_handler(impl->context.get(), &Impl::on_response);
  coap_register_nack_handler(impl->context.get(), &Impl::on_nack);
  coap_register_event_handler(impl->context.get(), &Impl::on_event);
  if (auto set = coap::set_root_cas(impl->context.get(), options.trust_anchors); !set.ok()) return set.error();
  if (const int fd = coap_context_get_coap_fd(impl->context.get()); fd >= 0) impl->watch.assign(fd);
  return std::unique_ptr<AsyncCoapsClient>(new AsyncCoapsClient(std::move(impl)));
}

void AsyncCoapsClient::exchange(const std::optional<TlsIdentity>& identity, CoapRequest request, Handler handler) {
  impl_->start(identity, std::move(request), std::move(handler));
}

std::size_t AsyncCoapsClient::in_flight() const { return impl_->exchanges.size(); }

}  // namespace estlab
