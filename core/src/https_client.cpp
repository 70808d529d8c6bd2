#include "estlab/core/https_client.hpp"

#include "estlab/core/est.hpp"
#include "estlab/core/net_error.hpp"
#include "estlab/core/text.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/x509v3.h>

#include <poll.h>

#include <cctype>
#include <mutex>
#include <sstream>
#include <variant>

namespace estlab {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Counts HelloRequest messages from the server after the handshake: RFC 5929 3.1 forbids a server
// to renegotiate while linking is in progress (7030-3.5-e).
void count_hello_requests(int write_p, int, int content_type, const void* buf, std::size_t len, SSL* ssl, void* arg) {
  if (write_p != 0 || content_type != SSL3_RT_HANDSHAKE || len < 1 || arg == nullptr) return;
  if (static_cast<const unsigned char*>(buf)[0] == SSL3_MT_HELLO_REQUEST && SSL_is_init_finished(ssl) == 1)
    ++static_cast<TlsConnectionInfo*>(arg)->hello_requests;
}

// Runs the context until the posted operation finishes; the stream's own timer bounds it.
void run_until_done(asio::io_context& io) {
  io.restart();
  io.run();
}

}  // namespace

std::optional<std::string> find_header(const HttpHeaders& headers, std::string_view name) {
  for (const auto& [key, value] : headers)
    if (iequals(key, name)) return value;
  return std::nullopt;
}

std::optional<std::string> HttpRequest::header(std::string_view name) const { return find_header(headers, name); }
std::optional<std::string> HttpResponse::header(std::string_view name) const { return find_header(headers, name); }

std::string HttpRequest::to_text(bool show_secrets) const {
  std::ostringstream out;
  out << method << ' ' << target << " HTTP/1.1\r\n";
  for (const auto& [k, v] : headers) out << k << ": " << printable_header_value(k, v, show_secrets) << "\r\n";
  out << "\r\n" << body;
  return out.str();
}

std::string HttpResponse::to_text() const {
  std::ostringstream out;
  out << "HTTP/1.1 " << status << ' ' << reason << "\r\n";
  for (const auto& [k, v] : headers) out << k << ": " << v << "\r\n";
  out << "\r\n" << body;
  return out.str();
}

struct HttpsConnection::Impl {
  HttpsClientOptions options;
  asio::io_context io;
  asio::ssl::context ssl_context{asio::ssl::context::tls_client};
  std::variant<std::monostate, beast::tcp_stream, beast::ssl_stream<beast::tcp_stream>> stream;
  beast::flat_buffer buffer;
  TlsConnectionInfo tls;
  bool is_open = false;

  beast::tcp_stream& tcp() {
    if (auto* plain = std::get_if<beast::tcp_stream>(&stream)) return *plain;
    return beast::get_lowest_layer(std::get<beast::ssl_stream<beast::tcp_stream>>(stream));
  }

  Result<void> setup_tls_context() {
    SSL_CTX* ctx = ssl_context.native_handle();
    if (auto r = set_tls_versions(ctx, options.min_version, options.max_version); !r.ok()) return r;
    // A suite list that leaves nothing to offer at these versions is this client's limit, not a
    // refusal by the server.
    if (auto problem = local_suite_problem(options.tls12_ciphers, options.tls13_ciphersuites, options.min_version, options.max_version);
        !problem.empty())
      return make_error(ErrorCode::unsupported, problem);
    if (auto r = offer_cipher_suites(ctx, options.tls12_ciphers, options.tls13_ciphersuites); !r.ok()) return r;
    SSL_CTX_set_msg_callback(ctx, count_hello_requests);
    if (options.identity) {
      if (auto r = use_tls_identity(ctx, *options.identity); !r.ok()) return r;
    }
    if (auto r = add_trust_anchors(ctx, options.trust_anchors); !r.ok()) return r;
    SSL_CTX_set_verify(ctx, options.verify_server ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
    return enable_tls_keylog(ctx, options.keylog_file);
  }

  Result<void> connect() {
    tcp::resolver resolver(io);
    beast::error_code ec;
    auto endpoints = resolver.resolve(options.host, std::to_string(options.port), ec);
    if (ec) return make_error(ErrorCode::io, "cannot resolve " + options.host + ": " + ec.message());
    const std::string where = options.host + ":" + std::to_string(options.port);

    if (options.use_tls) {
      if (auto r = setup_tls_context(); !r.ok()) return r;
      stream.emplace<beast::ssl_stream<beast::tcp_stream>>(io, ssl_context);
    } else {
      stream.emplace<beast::tcp_stream>(io);
    }
    tcp().expires_after(options.connect_timeout);
    tcp().async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    run_until_done(io);
    if (ec) return make_error(ec == beast::error::timeout ? ErrorCode::timeout : ErrorCode::io,
                              "connect to " + where + ": " + describe_network_error(ec));
    // EST exchanges are small request/response pairs: without this each one waits on Nagle
    // and delayed ACKs (~40 ms).
    tcp().socket().set_option(tcp::no_delay(true), ec);

    if (options.use_tls) {
      auto& tls_stream = std::get<beast::ssl_stream<beast::tcp_stream>>(stream);
      SSL* ssl = tls_stream.native_handle();
      const std::string name = options.server_name.empty() ? options.host : options.server_name;
      beast::error_code addr_ec;
      asio::ip::make_address(name, addr_ec);
      const bool is_ip = !addr_ec;
      if (!is_ip && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1)
        return ossl::error(ErrorCode::internal, "setting SNI");
      SSL_set_msg_callback_arg(ssl, &tls);
      if (options.resume_session && SSL_set_session(ssl, options.resume_session.get()) != 1)
        return ossl::error(ErrorCode::invalid_input, "the session to resume was refused by OpenSSL");
      if (options.verify_server) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        const int set = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                              : X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
        if (set != 1) return ossl::error(ErrorCode::invalid_input, "server name '" + name + "' not usable for checking");
      }
      tcp().expires_after(options.handshake_timeout);
      tls_stream.async_handshake(asio::ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
      run_until_done(io);
      if (ec) {
        std::string reason = describe_network_error(ec);
        if (const long verify = SSL_get_verify_result(ssl); verify != X509_V_OK)
          reason += " (server certificate: " + std::string(X509_verify_cert_error_string(verify)) + ")";
        return make_error(ec == beast::error::timeout ? ErrorCode::timeout : ErrorCode::verify_failed,
                          "TLS handshake with " + where + ": " + reason);
      }
      const int hello_requests = tls.hello_requests;
      tls = describe_tls_connection(ssl, false);
      tls.hello_requests = hello_requests;
    }
    tcp().expires_never();
    is_open = true;
    return {};
  }

  template <typename Write>
  Result<HttpResponse> exchange(Write&& write) {
    if (!is_open) return make_error(ErrorCode::io, "connection is closed");
    beast::error_code ec;
    tcp().expires_after(options.io_timeout);
    std::visit(
        [&](auto& s) {
          if constexpr (!std::is_same_v<std::decay_t<decltype(s)>, std::monostate>) write(s, ec);
        },
        stream);
    run_until_done(io);
    if (ec) {
      is_open = false;
      return make_error(ec == beast::error::timeout ? ErrorCode::timeout : ErrorCode::io, "sending request: " + describe_network_error(ec));
    }
    http::response_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.max_response_header));
    parser.body_limit(options.max_response_body);
    tcp().expires_after(options.io_timeout);
    std::visit(
        [&](auto& s) {
          if constexpr (!std::is_same_v<std::decay_t<decltype(s)>, std::monostate>)
            http::async_read(s, buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
        },
        stream);
    run_until_done(io);
    tcp().expires_never();
    if (ec) {
      is_open = false;
      if (ec == http::error::body_limit || ec == http::error::header_limit)
        return make_error(ErrorCode::limit_exceeded, "response larger than the configured limit: " + ec.message());
      if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::ssl::error::stream_truncated)
        return make_error(ErrorCode::io, "server closed the connection without a response");
      return make_error(ec == beast::error::timeout ? ErrorCode::timeout : ErrorCode::io,
                        "reading response: " + describe_network_error(ec));
    }
    auto message = parser.release();
    HttpResponse response;
    response.status = static_cast<int>(message.result_int());
    response.reason = std::string(message.reason());
    for (const auto& field : message) response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    response.body = std::move(message.body());
    response.keep_alive = message.keep_alive();
    if (!response.keep_alive) is_open = false;
    return response;
  }
};

HttpsConnection::HttpsConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpsConnection::HttpsConnection(HttpsConnection&&) noexcept = default;
HttpsConnection& HttpsConnection::operator=(HttpsConnection&&) noexcept = default;
HttpsConnection::~HttpsConnection() {
  if (impl_) close();
}

Result<HttpsConnection> HttpsConnection::connect(const HttpsClientOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (auto r = impl->connect(); !r.ok()) return r.error();
  return HttpsConnection(std::move(impl));
}

Result<HttpResponse> HttpsConnection::send(const HttpRequest& request) {
  http::request<http::string_body> message;
  const auto verb = http::string_to_verb(request.method);
  if (verb == http::verb::unknown) message.method_string(request.method);
  else message.method(verb);
  message.target(request.target);
  message.version(11);
  for (const auto& [k, v] : request.headers) message.insert(k, v);
  if (!request.header("Host")) {
    const std::string host = impl_->options.server_name.empty() ? impl_->options.host : impl_->options.server_name;
    message.set(http::field::host, host + ":" + std::to_string(impl_->options.port));
  }
  message.body() = request.body;
  if (!request.header("Content-Length") && !request.header("Transfer-Encoding")) message.prepare_payload();
  if (request.method == "GET" && request.body.empty()) message.erase(http::field::content_length);
  return impl_->exchange([&](auto& stream, beast::error_code& ec) {
    http::async_write(stream, message, [&](beast::error_code e, std::size_t) { ec = e; });
  });
}

Result<HttpResponse> HttpsConnection::send_raw(std::string_view bytes) {
  return impl_->exchange([&](auto& stream, beast::error_code& ec) {
    asio::async_write(stream, asio::buffer(bytes.data(), bytes.size()), [&](beast::error_code e, std::size_t) { ec = e; });
  });
}

const TlsConnectionInfo& HttpsConnection::tls() const { return impl_->tls; }

TlsSession HttpsConnection::session() const {
  auto* tls_stream = impl_ ? std::get_if<beast::ssl_stream<beast::tcp_stream>>(&impl_->stream) : nullptr;
  if (tls_stream == nullptr) return nullptr;
  // A copy: OpenSSL marks the connection's own session object not resumable when the connection
  // later ends in an error (a server closing without close_notify), which would spoil it here too.
  SSL_SESSION* session = SSL_get0_session(tls_stream->native_handle());
  if (session == nullptr) return nullptr;
  SSL_SESSION* copy = SSL_SESSION_dup(session);
  if (copy == nullptr) return nullptr;
  return TlsSession(copy, SSL_SESSION_free);
}
bool HttpsConnection::open() const { return impl_ && impl_->is_open; }

bool HttpsConnection::idle_and_open() const {
  if (!open() || impl_->buffer.size() > 0) return false;
  auto* tls_stream = std::get_if<beast::ssl_stream<beast::tcp_stream>>(&impl_->stream);
  if (tls_stream != nullptr && SSL_pending(tls_stream->native_handle()) > 0) return false;
  pollfd descriptor{impl_->tcp().socket().native_handle(), POLLIN | POLLRDHUP, 0};
  return ::poll(&descriptor, 1, 0) == 0;
}

void HttpsConnection::close() {
  if (!impl_) return;
  beast::error_code ec;
  if (auto* tls_stream = std::get_if<beast::ssl_stream<beast::tcp_stream>>(&impl_->stream); tls_stream && impl_->is_open) {
    impl_->tcp().expires_after(std::chrono::milliseconds(500));
    tls_stream->async_shutdown([&](beast::error_code e) { ec = e; });
    run_until_done(impl_->io);
  }
  if (!std::holds_alternative<std::monostate>(impl_->stream)) {
    impl_->tcp().socket().shutdown(tcp::socket::shutdown_both, ec);
    impl_->tcp().close();
  }
  impl_->is_open = false;
}

Result<HttpResponse> https_request(const HttpsClientOptions& options, const HttpRequest& request) {
  auto connection = HttpsConnection::connect(options);
  if (!connection.ok()) return connection.error();
  return connection->send(request);
}

struct HttpsConnectionPool::Impl {
  HttpsClientOptions options;
  std::size_t max_idle;
  std::chrono::milliseconds max_idle_time;
  std::mutex mutex;
  struct Idle {
    HttpsConnection connection;
    std::chrono::steady_clock::time_point since;
  };
  std::vector<Idle> idle;  // the most recently returned last
  TlsSession last_session;
  std::size_t opened = 0;
  std::size_t resumed = 0;
  std::size_t resent = 0;

  // Connections passed over are closed after the lock is released: closing sends close_notify and
  // waits (briefly) for the server's, which must not hold up the other workers.
  std::optional<HttpsConnection> take_idle() {
    std::vector<Idle> stale;
    std::optional<HttpsConnection> found;
    {
      std::lock_guard lock(mutex);
      const auto now = std::chrono::steady_clock::now();
      while (!idle.empty() && !found) {
        Idle candidate = std::move(idle.back());
        idle.pop_back();
        if (now - candidate.since <= max_idle_time && candidate.connection.idle_and_open()) found = std::move(candidate.connection);
        else stale.push_back(std::move(candidate));
      }
    }
    return found;  // `stale` closes here, unlocked
  }

  // A session the server no longer knows costs it a full handshake, never a failure, so a failed
  // connect is not tried again without it (that only doubled the wait on an unreachable server);
  // the session is dropped all the same, and the next connection starts afresh.
  Result<HttpsConnection> open_new() {
    HttpsClientOptions attempt = options;
    {
      std::lock_guard lock(mutex);
      if (!attempt.resume_session) attempt.resume_session = last_session;
    }
    auto connection = HttpsConnection::connect(attempt);
    std::lock_guard lock(mutex);
    if (!connection.ok()) {
      last_session.reset();
      return connection;
    }
    ++opened;
    if (connection->tls().resumed) ++resumed;
    return connection;
  }

  // Also after the server's last answer on it: its session is still worth resuming.
  void give_back(HttpsConnection connection) {
    TlsSession session = connection.session();
    std::optional<Idle> evicted;  // closed after the lock is released
    std::lock_guard lock(mutex);
    if (session) last_session = std::move(session);
    if (!connection.open()) return;
    if (idle.size() >= max_idle) {  // the one idle longest makes room
      evicted = std::move(idle.front());
      idle.erase(idle.begin());
    }
    idle.push_back({std::move(connection), std::chrono::steady_clock::now()});
  }
};

HttpsConnectionPool::HttpsConnectionPool(HttpsClientOptions options, std::size_t max_idle, std::chrono::milliseconds max_idle_time)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->max_idle = max_idle;
  impl_->max_idle_time = max_idle_time;
}

HttpsConnectionPool::~HttpsConnectionPool() = default;

const HttpsClientOptions& HttpsConnectionPool::options() const { return impl_->options; }

std::size_t HttpsConnectionPool::connections_opened() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->opened;
}

std::size_t HttpsConnectionPool::sessions_resumed() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->resumed;
}

std::size_t HttpsConnectionPool::resends() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->resent;
}

HttpsConnectionPool::Answer HttpsConnectionPool::send(const HttpRequest& request) {
  if (auto reused = impl_->take_idle()) {
    Answer answer{reused->send(request), reused->tls(), true};
    if (answer.response.ok()) {
      impl_->give_back(std::move(*reused));
      return answer;
    }
    // Only a connection that failed without a word from the server is worth a second try: a
    // timeout may be a server still working on the request, which must not get it twice.
    if (answer.response.error().code != ErrorCode::io) return answer;
    std::lock_guard lock(impl_->mutex);
    ++impl_->resent;
  }
  auto fresh = impl_->open_new();
  if (!fresh.ok()) return Answer{fresh.error(), {}, false};
  Answer answer{fresh->send(request), fresh->tls(), false};
  if (answer.response.ok()) impl_->give_back(std::move(fresh).value());
  return answer;
}

}  // namespace estlab
