#include "estlab/gateway/server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <iostream>
#include <map>
#include <mutex>
#include <future>
#include <optional>
#include <thread>

#include "estlab/core/net_error.hpp"
#include "estlab/gateway/http_request.hpp"
#include "estlab/gateway/transcript.hpp"

namespace estlab::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

LogSink stderr_log_sink() {
  auto mutex = std::make_shared<std::mutex>();
  return [mutex](const std::string& line) {
    std::lock_guard lock(*mutex);
    std::cerr << line << '\n';
  };
}

namespace {

class Session;

// Client certificates are judged by the EST service (so a refusal is an HTTP answer naming the
// rule), not by the handshake: accept whatever chain the client presents.
int accept_any_client_certificate(int, X509_STORE_CTX*) { return 1; }

// Sessions kept for resumption: a bound on their memory (each holds its client certificate).
constexpr long kSessionCacheSize = 4096;

}  // namespace

struct GatewayServer::Impl {
  // Declared before io: handlers destroyed with io still reach these (a Session's destructor
  // forgets itself; its stream uses the SSL context).
  std::shared_ptr<RequestHandler> service;
  LogSink log;
  std::unique_ptr<TranscriptWriter> transcript;
  std::mutex sessions_mutex;
  std::map<std::uint64_t, std::weak_ptr<Session>> sessions;
  asio::ssl::context ssl_context{asio::ssl::context::tls_server};
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::vector<std::thread> threads;
  std::uint16_t port = 0;

  std::atomic<std::uint64_t> next_id{1};
  std::atomic<std::uint64_t> connections{0}, handshake_failures{0}, requests{0}, refused{0};
  std::atomic<bool> stopping{false};

  const GatewayConfig& config() const { return service->config(); }
  void do_accept();
  bool make_room(std::uint64_t id);  // true when connection id may be accepted
  void forget(std::uint64_t id) {
    std::lock_guard lock(sessions_mutex);
    sessions.erase(id);
  }
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(GatewayServer::Impl& server, tcp::socket socket, std::uint64_t id)
      : server_(server),
        stream_(beast::tcp_stream(std::move(socket)), server.ssl_context),
        idle_timer_(tcp().get_executor()),
        answer_delay_(tcp().get_executor()),
        id_(id) {
    beast::error_code ec;
    const auto endpoint = tcp().socket().remote_endpoint(ec);
    if (!ec) remote_ = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  }

  void start() {
    asio::dispatch(tcp().get_executor(), [self = shared_from_this()] {
      self->await_peer(self->config().timeouts.handshake, &Session::detect);
    });
  }

  // When this connection waits for its peer's first byte (of a handshake or of a request), since
  // when; 0 = it does not. Read by the acceptor on another thread.
  std::int64_t idle_since() const { return idle_since_.load(); }
  std::uint64_t id() const { return id_; }

  // At the connection limit the acceptor closes an idle connection to make room: one that waits
  // for its peer to start something costs the peer nothing to reopen (RFC 9112 9.6 lets either
  // side close an idle persistent connection), while a device that wants to enroll now would be
  // refused. False when the connection stopped being idle meanwhile.
  bool reclaim() {
    if (idle_since_.exchange(0) == 0) return false;
    cancel();
    return true;
  }

  // Called from stop(): ends whatever is pending.
  void cancel() {
    asio::post(tcp().get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      self->tcp().socket().shutdown(tcp::socket::shutdown_both, ec);
      self->tcp().close();
    });
  }

  ~Session() { server_.forget(id_); }

 private:
  beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream_); }
  const GatewayConfig& config() const { return server_.config(); }

  // Waits, without reading, until the peer sends something (or the deadline passes), then goes on
  // with `next`; while waiting the connection is idle, so reclaimable at the connection limit.
  // Bytes already received (buffered by Beast, or by OpenSSL's BIO when the client sent its
  // request right behind the handshake or pipelined two) are read at once.
  void await_peer(std::chrono::milliseconds deadline, void (Session::*next)()) {
    const bool buffered = buffer_.size() > 0 ||
                          (tls_ && handshaken() && (SSL_has_pending(stream_.native_handle()) == 1 ||
                                                    BIO_ctrl_pending(SSL_get_rbio(stream_.native_handle())) > 0));
    if (buffered || closing_) return (this->*next)();
    idle_since_ = std::chrono::steady_clock::now().time_since_epoch().count();
    idle_timer_.expires_after(deadline);
    idle_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;  // cancelled: the peer spoke first
      self->idle_timed_out_ = true;
      beast::error_code ignored;
      self->tcp().socket().cancel(ignored);
    });
    tcp().socket().async_wait(tcp::socket::wait_read, [self = shared_from_this(), next](beast::error_code ec) {
      self->idle_since_ = 0;
      self->idle_timer_.cancel();
      if (ec) {
        // Closed by reclaim() or stop(), gone, or silent until the deadline.
        if (self->idle_timed_out_ && self->requests_ == 0)
          self->log_connection(self->tls_ && self->handshaken() ? "no request before the read deadline"
                                                                 : "no request before the handshake deadline");
        return self->close();
      }
      (self.get()->*next)();
    });
  }

  void detect() {
    tcp().expires_after(config().timeouts.handshake);
    beast::async_detect_ssl(tcp(), buffer_, beast::bind_front_handler(&Session::on_detect, shared_from_this()));
  }

  void on_detect(beast::error_code ec, bool is_tls) {
    if (ec) return log_connection("no request before the handshake deadline or the peer left: " + describe_network_error(ec));
    if (!is_tls) {
      // RFC 7030 3.3: EST is served only over HTTPS; say so instead of failing the handshake.
      tls_ = false;
      return read_request();  // the bytes detect read are the request's
    }
    tcp().expires_after(config().timeouts.handshake);
    stream_.async_handshake(asio::ssl::stream_base::server, buffer_.data(),
                            beast::bind_front_handler(&Session::on_handshake, shared_from_this()));
  }

  void on_handshake(beast::error_code ec, std::size_t used) {
    if (ec) {
      ++server_.handshake_failures;
      return log_connection("TLS handshake failed: " + describe_network_error(ec));
    }
    buffer_.consume(used);
    const auto info = describe_tls_connection(stream_.native_handle(), true);
    client_.over_tls = true;
    client_.tls_version = info.version;
    client_.peer_chain = info.peer_chain;
    client_.bindings = info.bindings;
    await_peer(config().timeouts.read, &Session::read_request);
  }

  template <typename Op>
  void with_stream(Op&& op) {
    if (tls_) op(stream_);
    else op(tcp());
  }

  void read_request() {
    client_.remote = remote_;
    client_.connection_id = id_;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(config().limits.max_header_bytes));
    parser_->body_limit(config().limits.max_body_bytes);
    tcp().expires_after(config().timeouts.read);
    with_stream([&](auto& s) {
      http::async_read_header(s, buffer_, *parser_, beast::bind_front_handler(&Session::on_header, shared_from_this()));
    });
  }

  void on_header(beast::error_code ec, std::size_t) {
    if (ec) return on_read_error(ec);
    started_ = std::chrono::steady_clock::now();
    auto& header = parser_->get();
    if (header[http::field::expect] == "100-continue" && !parser_->is_done()) {
      // curl waits a second for this before sending a larger body.
      continue_ = std::make_shared<http::response<http::empty_body>>(http::status::continue_, header.version());
      tcp().expires_after(config().timeouts.write);
      with_stream([&](auto& s) {
        http::async_write(s, *continue_, [self = shared_from_this()](beast::error_code e, std::size_t) {
          if (e) return self->on_read_error(e);
          self->read_body();
        });
      });
      return;
    }
    read_body();
  }

  void read_body() {
    tcp().expires_after(config().timeouts.read);
    with_stream([&](auto& s) {
      http::async_read(s, buffer_, *parser_, beast::bind_front_handler(&Session::on_read, shared_from_this()));
    });
  }

  void on_read_error(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::ssl::error::stream_truncated ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset)
      return close();
    if (ec == beast::error::timeout) {
      if (requests_ == 0 || parser_->got_some()) log_connection("request not complete before the read deadline");
      return close();
    }
    // Malformed or oversized requests get an answer that names the problem, then the connection ends.
    const auto [status, reason] = http_refusal(ec, config().limits);
    EstRequest request;
    request.client = client_;
    Decision decision;
    decision.rule = "http";
    decision.reason = reason;
    decision.status = status;
    EstResponse response;
    response.status = status;
    response.headers = {{"Content-Type", "text/plain; charset=utf-8"}};
    response.body = reason + "\n";
    keep_alive_ = false;
    // The client may still be sending the body we refused: close in stages (RFC 9112 9.6), or the
    // kernel answers its next bytes with a reset that can destroy our answer before it is read.
    drain_before_close_ = true;
    finish(request, response, decision);
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) return on_read_error(ec);
    ++requests_;
    ++server_.requests;
    auto message = parser_->release();
    keep_alive_ = message.keep_alive() && requests_ < config().limits.max_requests_per_connection;
    version_ = message.version();
    EstRequest request = est_request_from(std::move(message), client_);

    if (!tls_) {
      client_.over_tls = false;
      Decision decision;
      decision.rule = "7030-3.3-a";
      decision.reason = "EST is served only over HTTPS";
      decision.status = 400;
      EstResponse response;
      response.status = 400;
      response.headers = {{"Content-Type", "text/plain; charset=utf-8"}};
      response.body = "EST is served only over HTTPS (RFC 7030 3.3); this port speaks TLS\n";
      keep_alive_ = false;
      return finish(request, response, decision);
    }
    Handled handled = server_.service->handle(request);
    if (handled.response.stall) {
      // Fault stall-response: read nothing more and answer nothing until the peer gives up or
      // the read deadline closes the connection.
      handled.decision.status = 0;  // nothing was answered
      log_request(request, handled.decision);
      tcp().expires_after(config().timeouts.read);
      parser_.emplace();
      with_stream([&](auto& s) {
        http::async_read(s, buffer_, *parser_, [self = shared_from_this()](beast::error_code, std::size_t) { self->close(); });
      });
      return;
    }
    if (config().answer_delay.count() > 0) {
      answer_delay_.expires_after(config().answer_delay);
      answer_delay_.async_wait([self = shared_from_this(), request = std::move(request), handled = std::move(handled)](beast::error_code) {
        self->finish(request, handled.response, handled.decision);
      });
      return;
    }
    finish(request, handled.response, handled.decision);
  }

  void log_request(const EstRequest& request, const Decision& decision) {
    const auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started_);
    if (server_.log) server_.log(log_line(request, decision, to_string(config().profile), elapsed));
  }

  void finish(const EstRequest& request, const EstResponse& response, const Decision& decision) {
    log_request(request, decision);
    if (server_.transcript) {
      const auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started_);
      if (auto r = server_.transcript->record(request, response, decision, elapsed); !r.ok() && server_.log)
        server_.log("transcript: " + r.error().message);
    }
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(version_ == 10 ? 10 : 11);
    res->result(static_cast<unsigned>(response.status));
    for (const auto& [k, v] : response.headers) res->insert(k, v);
    res->set(http::field::server, "estlab-gateway");
    res->body() = response.body;
    res->keep_alive(keep_alive_);
    res->prepare_payload();
    response_ = res;
    tcp().expires_after(config().timeouts.write);
    with_stream([&](auto& s) {
      http::async_write(s, *response_, beast::bind_front_handler(&Session::on_write, shared_from_this()));
    });
  }

  void on_write(beast::error_code ec, std::size_t) {
    response_.reset();
    if (ec) return close();
    if (!keep_alive_) return close();
    await_peer(config().timeouts.read, &Session::read_request);
  }

  void close() {
    if (closing_) return;
    closing_ = true;
    if (tls_ && handshaken()) {
      tcp().expires_after(config().timeouts.shutdown);
      stream_.async_shutdown([self = shared_from_this()](beast::error_code) {
        if (self->drain_before_close_) return self->drain_then_close();
        beast::error_code ignored;
        self->tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
        self->tcp().close();
      });
      return;
    }
    if (drain_before_close_) return drain_then_close();
    beast::error_code ignored;
    tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp().close();
  }

  // Lingering close: no more sending, then read and discard what the client still sends until it
  // closes, a deadline passes or a bound is reached, and only then close the socket.
  void drain_then_close() {
    beast::error_code ignored;
    tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
    tcp().expires_after(config().timeouts.shutdown);
    drain_buffer_ = std::make_unique<std::array<char, 16 * 1024>>();
    drain();
  }

  void drain() {
    tcp().async_read_some(asio::buffer(*drain_buffer_), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->drained_ += n;
      constexpr std::size_t kMaxDrained = 8u << 20;
      if (!ec && self->drained_ < kMaxDrained) return self->drain();
      beast::error_code ignored;
      self->tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
      self->tcp().close();
    });
  }

  bool handshaken() { return SSL_is_init_finished(stream_.native_handle()) == 1; }

  void log_connection(const std::string& what) {
    if (!server_.log) return;
    server_.log("conn=" + std::to_string(id_) + " peer=" + remote_ + " event=\"" + what + "\"");
  }

  GatewayServer::Impl& server_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  asio::steady_timer idle_timer_;  // the deadline of await_peer (a socket wait has none of its own)
  asio::steady_timer answer_delay_;  // estlab.answer-delay
  std::atomic<std::int64_t> idle_since_{0};
  bool idle_timed_out_ = false;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<http::response<http::string_body>> response_;
  std::shared_ptr<http::response<http::empty_body>> continue_;
  std::uint64_t id_;
  std::string remote_;
  ClientContext client_;
  bool tls_ = true;
  bool keep_alive_ = true;
  bool closing_ = false;
  bool drain_before_close_ = false;  // an error answer before the request was read whole
  std::unique_ptr<std::array<char, 16 * 1024>> drain_buffer_;  // only sessions that drain pay for it
  std::size_t drained_ = 0;
  unsigned version_ = 11;
  std::size_t requests_ = 0;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace

// Closes the connection idle the longest to make room for connection `id`; false when none is.
// The reclaimed one leaves the map once its close has run, so the map exceeds the limit by at
// most the closes in flight.
bool GatewayServer::Impl::make_room(std::uint64_t id) {
  // Sessions are released outside sessions_mutex: the last reference runs ~Session, which takes it.
  std::vector<std::pair<std::int64_t, std::shared_ptr<Session>>> idle;
  {
    std::lock_guard lock(sessions_mutex);
    if (sessions.size() < config().limits.max_connections) return true;
    idle.reserve(sessions.size());
    for (const auto& [_, weak] : sessions)
      if (auto session = weak.lock()) idle.emplace_back(session->idle_since(), std::move(session));
  }
  std::sort(idle.begin(), idle.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [since, session] : idle) {
    if (since == 0 || !session->reclaim()) continue;
    if (log)
      log("conn=" + std::to_string(session->id()) + " event=\"closed while idle: connection limit " +
          std::to_string(config().limits.max_connections) + " reached, conn=" + std::to_string(id) + " takes its place\"");
    return true;
  }
  return false;
}

void GatewayServer::Impl::do_accept() {
  acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping) return;
      if (log) log("event=\"accept failed: " + ec.message() + "\"");
      return do_accept();
    }
    const std::uint64_t id = next_id++;
    if (!make_room(id)) {
      ++refused;
      if (log) log("conn=" + std::to_string(id) + " event=\"refused: connection limit " +
                   std::to_string(config().limits.max_connections) + " reached\"");
      beast::error_code ignored;
      socket.close(ignored);
      return do_accept();
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);  // small request/response pairs: no Nagle wait
    ++connections;
    auto session = std::make_shared<Session>(*this, std::move(socket), id);
    {
      std::lock_guard lock(sessions_mutex);
      sessions[id] = session;
    }
    session->start();
    do_accept();
  });
}

GatewayServer::GatewayServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GatewayServer::~GatewayServer() { stop(); }

Result<std::unique_ptr<GatewayServer>> GatewayServer::start(std::shared_ptr<RequestHandler> service, std::size_t threads,
                                                             LogSink log) {
  auto impl = std::make_unique<Impl>();
  impl->service = std::move(service);
  impl->log = std::move(log);
  const GatewayConfig& config = impl->config();

  if (config.tls_certificate.empty() || config.tls_key.empty())
    return make_error(ErrorCode::invalid_input, "the gateway needs a TLS certificate and key (estlab.tls.certificate, estlab.tls.key)");
  auto identity = TlsIdentity::load(config.tls_certificate, config.tls_key);
  if (!identity.ok()) return identity.error().within("gateway TLS identity");
  SSL_CTX* ctx = impl->ssl_context.native_handle();
  const bool old_tls = config.faults.count(Fault::allow_tls1_1) != 0;
  if (auto r = set_tls_versions(ctx, old_tls ? TlsVersion::tls1_0 : config.min_tls, config.max_tls); !r.ok()) return r.error();
  if (auto r = use_tls_identity(ctx, *identity); !r.ok()) return r.error();
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_client_certificate);
  static constexpr unsigned char kSessionContext[] = "estlab-gateway";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);
  // Resumption from the server's session cache (TLS 1.2 session IDs, TLS 1.3 stateful tickets),
  // not stateless tickets: OpenSSL 3.0 mints each of those by encoding the session and decoding it
  // again, client certificate and all, which was 14% of the gateway's CPU under a fleet of devices
  // that never resume. One ticket per handshake is enough for the one resumption a client makes.
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx, 1);
  SSL_CTX_sess_set_cache_size(ctx, kSessionCacheSize);
  // RFC 5929 3.1 / RFC 7030 3.5: no renegotiation while linking is in progress; none at all here.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (auto r = enable_tls_keylog(ctx, config.keylog_file); !r.ok()) return r.error();
  impl->service->set_ra_identity(*identity);

  if (!config.transcript_dir.empty()) {
    auto transcript = TranscriptWriter::open(config.transcript_dir, config.transcript_secrets);
    if (!transcript.ok()) return transcript.error();
    impl->transcript = std::move(transcript).value();
  }

  beast::error_code ec;
  const auto address = asio::ip::make_address(config.listen_host, ec);
  if (ec) return make_error(ErrorCode::invalid_input, "listen address '" + config.listen_host + "' is not an IP address");
  const tcp::endpoint endpoint(address, config.port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return make_error(ErrorCode::io, "cannot listen on " + config.listen_host + ":" + std::to_string(config.port) + ": " + ec.message());
  impl->port = impl->acceptor.local_endpoint().port();
  impl->do_accept();
  Impl* raw = impl.get();
  for (std::size_t i = 0; i < std::max<std::size_t>(threads, 1); ++i) raw->threads.emplace_back([raw] { raw->io.run(); });
  return std::unique_ptr<GatewayServer>(new GatewayServer(std::move(impl)));  // private constructor
}

std::uint16_t GatewayServer::port() const { return impl_->port; }

std::string GatewayServer::base_url() const {
  const std::string& host = impl_->config().listen_host;
  const bool v6 = host.find(':') != std::string::npos;
  return "https://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(impl_->port);
}

ServerStats GatewayServer::stats() const {
  return {impl_->connections.load(), impl_->handshake_failures.load(), impl_->requests.load(), impl_->refused.load()};
}

RequestHandler& GatewayServer::handler() { return *impl_->service; }

void GatewayServer::stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  // Close the acceptor on the loop (it is not thread-safe) and wait for that, so no connection
  // is accepted after stop() returns.
  auto closed = std::make_shared<std::promise<void>>();
  auto closed_future = closed->get_future();
  asio::post(impl_->io, [impl = impl_.get(), closed] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
    closed->set_value();
  });
  closed_future.wait_for(impl_->config().timeouts.shutdown);
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(impl_->sessions_mutex);
    for (auto& [_, weak] : impl_->sessions)
      if (auto session = weak.lock()) live.push_back(std::move(session));
  }
  for (auto& session : live) session->cancel();
  live.clear();
  // Bounded wait for the sessions to end by themselves, then stop the loop regardless.
  const auto deadline = std::chrono::steady_clock::now() + impl_->config().timeouts.shutdown;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(impl_->sessions_mutex);
      if (impl_->sessions.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  impl_->io.stop();
  for (auto& thread : impl_->threads)
    if (thread.joinable()) thread.join();
  beast::error_code ignored;
  impl_->acceptor.close(ignored);  // in case the loop was too busy to run the close above
}

}  // namespace estlab::gateway
