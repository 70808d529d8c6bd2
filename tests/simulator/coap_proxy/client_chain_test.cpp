// core's two coaps clients send a device's intermediates after its leaf (RFC 5246 7.4.6), so a
// vendor's DTLS server that trusts only the root accepts them. libcoap 4.3.1 never calls the
// client's TLS setup hook, and for months estlab's devices sent the leaf alone; the reference proxy
// trusts every open CA and did not notice. The server here is OpenSSL alone, trusting the root.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "estlab/core/async_coaps.hpp"
#include "estlab/core/coaps_client.hpp"
#include "estlab/core/ossl.hpp"
#include "lab_support.hpp"

namespace estlab {
namespace {

using namespace std::chrono_literals;

// One DTLS 1.2 handshake on a loopback port, served by OpenSSL with only `root` trusted and a
// client certificate required. Records what the client's Certificate message carried.
class RootOnlyDtlsServer {
 public:
  struct Outcome {
    bool accepted = false;
    int intermediates = -1;  // certificates after the leaf
    std::string error;
  };

  RootOnlyDtlsServer(const TlsIdentity& identity, const Certificate& root) : context_(SSL_CTX_new(DTLS_server_method())) {
    socket_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (socket_ < 0 || ::bind(socket_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::getsockname(socket_, reinterpret_cast<sockaddr*>(&address), &length) != 0)
      throw std::runtime_error("cannot bind a loopback UDP socket");
    port_ = ntohs(address.sin_port);
    SSL_CTX_use_certificate(context_.get(), identity.certificate.native());
    SSL_CTX_use_PrivateKey(context_.get(), identity.key.native());
    for (const auto& certificate : identity.chain) SSL_CTX_add1_chain_cert(context_.get(), certificate.native());
    X509_STORE_add_cert(SSL_CTX_get_cert_store(context_.get()), root.native());
    SSL_CTX_set_verify(context_.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    thread_ = std::thread([this] { outcome_ = serve(); });
  }
  ~RootOnlyDtlsServer() {
    if (thread_.joinable()) thread_.join();
    if (socket_ >= 0) ::close(socket_);
  }

  std::uint16_t port() const { return port_; }
  // Waits for the handshake to end (at most 10 s).
  Outcome outcome() {
    if (thread_.joinable()) thread_.join();
    return outcome_;
  }

 private:
  Outcome serve() {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    auto wait_readable = [&](std::chrono::milliseconds at_most) {
      pollfd readable{socket_, POLLIN, 0};
      return ::poll(&readable, 1, static_cast<int>(at_most.count())) > 0;
    };
    if (!wait_readable(10s)) return {false, -1, "no ClientHello within 10 s"};
    sockaddr_in client{};
    socklen_t length = sizeof(client);
    char first;
    ::recvfrom(socket_, &first, 1, MSG_PEEK, reinterpret_cast<sockaddr*>(&client), &length);
    ::connect(socket_, reinterpret_cast<sockaddr*>(&client), length);  // this one client from now on
    ossl::Ssl ssl(SSL_new(context_.get()));
    BIO* datagrams = BIO_new_dgram(socket_, BIO_NOCLOSE);
    SSL_set_bio(ssl.get(), datagrams, datagrams);
    while (std::chrono::steady_clock::now() < deadline) {
      ERR_clear_error();
      const int result = SSL_accept(ssl.get());
      if (result == 1) {
        STACK_OF(X509)* sent = SSL_get_peer_cert_chain(ssl.get());  // server side: the leaf is not in it
        return {true, sent == nullptr ? 0 : sk_X509_num(sent), ""};
      }
      if (SSL_get_error(ssl.get(), result) != SSL_ERROR_WANT_READ) {
        char reason[256];
        ERR_error_string_n(ERR_peek_last_error(), reason, sizeof(reason));
        return {false, -1, reason};
      }
      timeval retransmit{};
      if (DTLSv1_get_timeout(ssl.get(), &retransmit) == 1 && retransmit.tv_sec == 0 && retransmit.tv_usec == 0)
        DTLSv1_handle_timeout(ssl.get());
      wait_readable(50ms);
    }
    return {false, -1, "the handshake did not end within 10 s"};
  }

  ossl::SslCtx context_;
  int socket_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
  Outcome outcome_;
};

class CoapsClientChainTest : public ::testing::Test {
 protected:
  test::TestLab lab;
  const TlsIdentity device = lab.identity("device-factory");  // issued by the issuing CA, below the root
};

TEST_F(CoapsClientChainTest, TheBlockingClientSendsTheDevicesIntermediates) {
  ASSERT_EQ(device.chain.size(), 1u) << "the fixture device has one intermediate";
  RootOnlyDtlsServer server(lab.identity("dtls-server"), lab.certificate("root-ca"));
  CoapsClientOptions options;
  options.port = server.port();
  options.identity = device;
  options.verify_server = false;
  options.handshake_timeout = 5s;
  auto connection = CoapsConnection::connect(options);
  const auto outcome = server.outcome();
  EXPECT_TRUE(outcome.accepted) << "a server trusting only the root refused the device: " << outcome.error;
  EXPECT_EQ(outcome.intermediates, 1);
  EXPECT_TRUE(connection.ok()) << connection.error().message;
}

TEST_F(CoapsClientChainTest, TheAsynchronousClientSendsTheDevicesIntermediates) {
  RootOnlyDtlsServer server(lab.identity("dtls-server"), lab.certificate("root-ca"));
  boost::asio::io_context io;
  AsyncCoapsOptions options;
  options.port = server.port();
  options.trust_anchors = lab.trust_anchors();
  options.timeout = 2s;  // the server speaks no CoAP: the exchange itself ends in a timeout
  auto client = AsyncCoapsClient::make(io, options);
  ASSERT_TRUE(client.ok()) << client.error().message;
  CoapRequest request;
  request.path = *coaps_est_path("", EstOperation::cacerts);
  std::optional<Result<CoapResponse>> answer;
  (*client)->exchange(device, request, [&](Result<CoapResponse> r) { answer = std::move(r); });
  io.run();
  const auto outcome = server.outcome();
  EXPECT_TRUE(outcome.accepted) << "a server trusting only the root refused the device: " << outcome.error;
  EXPECT_EQ(outcome.intermediates, 1);
  ASSERT_TRUE(answer.has_value()) << "the handler runs once";
}

}  // namespace
}  // namespace estlab
