#include "estlab/core/async_https.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "estlab/core/net_error.hpp"
#include "estlab/core/ossl.hpp"

namespace estlab {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

Result<std::shared_ptr<AsyncTlsClientContext>> AsyncTlsClientContext::make(const std::vector<Certificate>& trust_anchors,
                                                                           const std::optional<TlsIdentity>& identity,
                                                                           TlsVersion min_version, TlsVersion max_version) {
  auto context = std::make_shared<AsyncTlsClientContext>();
  SSL_CTX* ctx = context->context_.native_handle();
  if (auto r = set_tls_versions(ctx, min_version, max_version); !r.ok()) return r.error();
  if (identity) {
    if (auto r = use_tls_identity(ctx, *identity); !r.ok()) return r.error();
  }
  if (auto r = add_trust_anchors(ctx, trust_anchors); !r.ok()) return r.error();
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  // One exchange per connection: no session cache to grow over a million devices.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  return context;
}

namespace {

class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(asio::io_context& io, std::shared_ptr<AsyncTlsClientContext> context, const AsyncExchangeTarget& target,
           HttpRequest request, AsyncExchangeHandler handler)
      : context_(std::move(context)), target_(target), stream_(io, context_->native()), handler_(std::move(handler)) {
    request_.method(http::string_to_verb(request.method));
    request_.target(request.target);
    request_.version(11);
    request_.set(http::field::host, target.server_name.empty() ? target.endpoint.address().to_string() : target.server_name);
    request_.set(http::field::connection, "close");
    for (const auto& [k, v] : request.headers) request_.set(k, v);
    request_.body() = std::move(request.body);
    request_.prepare_payload();
    parser_.body_limit(target.max_response_body);
  }

  void start() {
    SSL* ssl = stream_.native_handle();
    const std::string& name = target_.server_name;
    if (!name.empty()) {
      beast::error_code ec;
      asio::ip::make_address(name, ec);  // an IP address gets no SNI and is checked as an IP
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      if (ec) {
        SSL_set_tlsext_host_name(ssl, name.c_str());
        X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
      } else {
        X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
      }
    }
    tcp().expires_after(target_.connect_timeout);
    tcp().async_connect(target_.endpoint, [self = shared_from_this()](beast::error_code ec) { self->on_connect(ec); });
  }

 private:
  beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream_); }

  void fail(const char* phase, beast::error_code ec) {
    const auto code = ec == beast::error::timeout ? ErrorCode::timeout : ErrorCode::io;
    std::string message = std::string(phase) + ": " + describe_network_error(ec);
    beast::error_code ignored;
    tcp().socket().close(ignored);
    finish(make_error(code, message));
  }

  void finish(Result<HttpResponse> result) {
    if (!handler_) return;
    auto handler = std::move(handler_);
    handler_ = nullptr;
    handler(std::move(result));
  }

  void on_connect(beast::error_code ec) {
    if (ec) return fail("connect", ec);
    tcp().socket().set_option(asio::ip::tcp::no_delay(true), ec);  // small exchanges: no Nagle wait
    tcp().expires_after(target_.handshake_timeout);
    stream_.async_handshake(asio::ssl::stream_base::client,
                            [self = shared_from_this()](beast::error_code e) { self->on_handshake(e); });
  }

  void on_handshake(beast::error_code ec) {
    if (ec) return fail("TLS handshake", ec);
    tcp().expires_after(target_.io_timeout);
    http::async_write(stream_, request_, [self = shared_from_this()](beast::error_code e, std::size_t) { self->on_write(e); });
  }

  void on_write(beast::error_code ec) {
    if (ec) return fail("write", ec);
    tcp().expires_after(target_.io_timeout);
    http::async_read(stream_, buffer_, parser_, [self = shared_from_this()](beast::error_code e, std::size_t) { self->on_read(e); });
  }

  void on_read(beast::error_code ec) {
    if (ec) return fail("read", ec);
    auto message = parser_.release();
    HttpResponse response;
    response.status = static_cast<int>(message.result_int());
    response.reason = std::string(message.reason());
    for (const auto& field : message) response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    response.body = std::move(message.body());
    response.keep_alive = false;
    beast::error_code ignored;
    tcp().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    tcp().socket().close(ignored);
    finish(std::move(response));
  }

  std::shared_ptr<AsyncTlsClientContext> context_;
  AsyncExchangeTarget target_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  http::request<http::string_body> request_;
  http::response_parser<http::string_body> parser_;
  beast::flat_buffer buffer_;
  AsyncExchangeHandler handler_;
};

}  // namespace

void async_https_exchange(asio::io_context& io, std::shared_ptr<AsyncTlsClientContext> context, const AsyncExchangeTarget& target,
                          HttpRequest request, AsyncExchangeHandler handler) {
  std::make_shared<Exchange>(io, std::move(context), target, std::move(request), std::move(handler))->start();
}

}  // namespace estlab
