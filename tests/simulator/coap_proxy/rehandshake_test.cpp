// RFC 6347 4.2.8 at the record layer: which datagrams the proxy's guard answers itself, and that
// the HelloVerifyRequest it writes is one OpenSSL's DTLS client accepts and answers with the cookie.
#include "estlab/coap_proxy/rehandshake.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>

#include "estlab/core/ossl.hpp"

namespace estlab::coap_proxy {
namespace {

// OpenSSL's DTLS client on memory BIOs: what it sends, and what it makes of an answer.
class OpensslDtlsClient {
 public:
  OpensslDtlsClient() : context_(SSL_CTX_new(DTLS_client_method())), ssl_(SSL_new(context_.get())) {
    into_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(into_, -1);  // an empty input is "nothing yet", not the end
    SSL_set_bio(ssl_.get(), into_, out_);  // the SSL owns both
  }
  // Runs the handshake as far as it goes and returns what it wrote.
  Bytes step() {
    SSL_connect(ssl_.get());
    Bytes written(static_cast<std::size_t>(BIO_ctrl_pending(out_)));
    if (!written.empty()) BIO_read(out_, written.data(), static_cast<int>(written.size()));
    return written;
  }
  void receive(ByteView datagram) { BIO_write(into_, datagram.data(), static_cast<int>(datagram.size())); }

 private:
  ossl::SslCtx context_;
  ossl::Ssl ssl_;
  BIO* into_ = nullptr;
  BIO* out_ = nullptr;
};

Bytes cookie_of(ByteView datagram) {
  auto records = network::parse_dtls_records(datagram);
  if (!records || records->empty()) return {};
  auto hello = network::client_hello_fragment(records->front());
  return hello && hello->cookie ? *hello->cookie : Bytes{};
}

TEST(Rehandshake, OpensslAnswersTheHelloVerifyRequestWithItsCookie) {
  OpensslDtlsClient client;
  const Bytes first = client.step();
  auto records = network::parse_dtls_records(first);
  ASSERT_TRUE(records);
  auto hello = network::client_hello_fragment(records->front());
  ASSERT_TRUE(hello && hello->cookie);
  EXPECT_TRUE(hello->cookie->empty()) << "a first ClientHello has no cookie";

  const Bytes cookie = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01};
  const network::DtlsRecord verify = network::hello_verify_request(records->front(), cookie);
  EXPECT_EQ(verify.sequence, records->front().sequence) << "RFC 6347 4.2.1: the ClientHello's record sequence number";
  client.receive(verify.encode());
  const Bytes second = client.step();
  ASSERT_FALSE(second.empty()) << "OpenSSL did not answer the HelloVerifyRequest";
  EXPECT_EQ(cookie_of(second), cookie) << "the second ClientHello does not carry the cookie";
}

// The two ClientHellos of one client's handshake: without a cookie, and with `cookie`.
struct Handshake {
  Bytes first, second, random;
};
Handshake client_hellos(const Bytes& cookie) {
  OpensslDtlsClient client;
  Handshake h;
  h.first = client.step();
  auto records = network::parse_dtls_records(h.first);
  if (!records) return h;
  h.random = *network::client_hello_fragment(records->front())->random;
  client.receive(network::hello_verify_request(records->front(), cookie).encode());
  h.second = client.step();
  return h;
}

TEST(Rehandshake, OnlyANewClientHelloOnAnEstablishedSessionIsAnsweredHere) {
  const Bytes cookie(32, 0x5c);
  const Handshake old_device = client_hellos(cookie);  // made the established session
  const Handshake back = client_hellos(cookie);        // the device back, with a new random
  ASSERT_FALSE(old_device.second.empty());
  ASSERT_FALSE(back.second.empty());
  ASSERT_NE(old_device.random, back.random);
  const SessionHandshake session{cookie, old_device.random};

  // A new address: libcoap's own cookie exchange.
  EXPECT_EQ(decide_client_hello(back.first, false, std::nullopt).action, HelloAction::pass);
  EXPECT_EQ(decide_client_hello(back.second, false, std::nullopt).action, HelloAction::pass);
  EXPECT_EQ(decide_client_hello(back.second, false, std::nullopt).cookie, cookie) << "the cookie a new session brings is seen";
  EXPECT_EQ(decide_client_hello(back.second, false, std::nullopt).random, back.random);
  // An established session whose handshake is known: a new ClientHello gets the cookie, and
  // coming back with it proves the device is reachable there.
  EXPECT_EQ(decide_client_hello(back.first, true, session).action, HelloAction::answer_cookie);
  EXPECT_EQ(decide_client_hello(back.second, true, session).action, HelloAction::replace_session);
  // Late copies of the session's own ClientHellos (duplicated or delayed by the network) are not
  // a new handshake: ending the session for them would cut off the device it serves.
  EXPECT_EQ(decide_client_hello(old_device.first, true, session).action, HelloAction::pass);
  EXPECT_EQ(decide_client_hello(old_device.second, true, session).action, HelloAction::pass);
  // A wrong cookie proves nothing: the old session stays (RFC 6347 4.2.8 MUST NOT).
  EXPECT_EQ(decide_client_hello(back.second, true, SessionHandshake{Bytes(32, 0x5d), old_device.random}).action, HelloAction::pass);
  // Its handshake unknown: nothing to answer with.
  EXPECT_EQ(decide_client_hello(back.first, true, std::nullopt).action, HelloAction::pass);
  // Not ClientHellos: application data, garbage, a truncated record, a later epoch.
  Bytes application = back.first;
  application[0] = 23;
  EXPECT_EQ(decide_client_hello(application, true, session).action, HelloAction::pass);
  EXPECT_EQ(decide_client_hello(Bytes{0x16, 0xfe}, true, session).action, HelloAction::pass);
  EXPECT_EQ(decide_client_hello(Bytes(back.first.begin(), back.first.end() - 1), true, session).action, HelloAction::pass);
  Bytes later_epoch = back.first;
  later_epoch[4] = 1;  // epoch 1: encrypted, never a ClientHello to answer
  EXPECT_EQ(decide_client_hello(later_epoch, true, session).action, HelloAction::pass);
}

TEST(Rehandshake, AddressKeysTellPortsAndFamiliesApart) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(5684);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sockaddr_in b = a;
  b.sin_port = htons(5685);
  sockaddr_in6 c{};
  c.sin6_family = AF_INET6;
  c.sin6_port = htons(5684);
  c.sin6_addr = in6addr_loopback;
  const auto* sa = reinterpret_cast<const sockaddr*>(&a);
  EXPECT_EQ(address_key(sa), address_key(sa));
  EXPECT_NE(address_key(sa), address_key(reinterpret_cast<const sockaddr*>(&b)));
  EXPECT_NE(address_key(sa), address_key(reinterpret_cast<const sockaddr*>(&c)));
}

}  // namespace
}  // namespace estlab::coap_proxy
