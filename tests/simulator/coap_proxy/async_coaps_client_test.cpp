// core's asynchronous coaps client (the fleet's coaps devices) against the reference proxy and
// gateway on loopback: many DTLS sessions on one io_context thread, each handler run exactly once,
// the loop ending when the last exchange has, and the failure paths (a refused device, nothing
// listening, no trust anchors).
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <functional>
#include <map>

#include "estlab/coap_proxy/proxy.hpp"
#include "estlab/core/async_coaps.hpp"
#include "estlab/core/certs_only.hpp"
#include "estlab/core/csr.hpp"
#include "estlab/gateway/server.hpp"
#include "estlab/network/relay.hpp"
#include "lab_support.hpp"

namespace estlab {
namespace {

using namespace std::chrono_literals;

class AsyncCoapsClientTest : public ::testing::Test {
 protected:
  void SetUp() override { start([](gateway::GatewayConfig&) {}); }

  // The gateway (the lab's protocol-gateway config, changed by `adjust`) and the proxy in front of it.
  void start(const std::function<void(gateway::GatewayConfig&)>& adjust) {
    proxy.reset();
    if (gateway) gateway->stop();
    auto gateway_config = gateway::GatewayConfig::load(lab.est_properties(), gateway::Profile::protocol_gateway);
    gateway_config.port = 0;
    adjust(gateway_config);
    auto service = std::make_shared<gateway::EstService>(std::move(gateway_config), lab.open_ca());
    auto gateway_started = gateway::GatewayServer::start(service, 2, [](const std::string&) {});
    ASSERT_TRUE(gateway_started.ok()) << gateway_started.error().message;
    gateway = std::move(gateway_started).value();
    auto config = coap_proxy::CoapProxyConfig::load(lab.path("config/coap.properties"));
    config.port = 0;
    config.est_url = "https://localhost:" + std::to_string(gateway->port()) + "/.well-known/est";
    auto proxy_started = coap_proxy::CoapProxy::start(config, [](const std::string&) {});
    ASSERT_TRUE(proxy_started.ok()) << proxy_started.error().message;
    proxy = std::move(proxy_started).value();
  }

  AsyncCoapsOptions options() {
    AsyncCoapsOptions o;
    o.port = proxy->port();
    o.trust_anchors = lab.trust_anchors();
    o.server_name = "127.0.0.1";
    o.timeout = 20s;
    return o;
  }

  CoapRequest enroll_request(const Certificate& device, const PrivateKey& key) {
    CoapRequest request;
    request.method = CoapMethod::post;
    request.path = *coaps_est_path("", EstOperation::simpleenroll);
    request.content_format = coap_formats::pkcs10;
    request.payload = CsrBuilder().subject(device.subject()).sign(key).value().der();
    return request;
  }

  test::TestLab lab;
  std::unique_ptr<gateway::GatewayServer> gateway;
  std::unique_ptr<coap_proxy::CoapProxy> proxy;
};

TEST_F(AsyncCoapsClientTest, ManyDevicesOnOneLoopEnrollAndTheLoopEndsWithTheLastOne) {
  boost::asio::io_context io;
  auto client = AsyncCoapsClient::make(io, options());
  ASSERT_TRUE(client.ok()) << client.error().message;
  const auto identity = lab.identity("device-factory");
  constexpr int kDevices = 12;
  std::vector<PrivateKey> keys;
  std::map<int, int> calls;
  std::vector<Result<CoapResponse>> answers(kDevices, make_error(ErrorCode::internal, "no answer"));
  for (int i = 0; i < kDevices; ++i) {
    keys.push_back(PrivateKey::generate(KeyType::ec_p256).value());
    (*client)->exchange(identity, enroll_request(identity.certificate, keys.back()), [&, i](Result<CoapResponse> r) {
      ++calls[i];
      answers[i] = std::move(r);
    });
  }
  EXPECT_EQ((*client)->in_flight(), static_cast<std::size_t>(kDevices)) << "all in flight at once, on one thread";
  io.run();  // returns only when no exchange is left: the loop holds no work of its own
  EXPECT_EQ((*client)->in_flight(), 0u);
  for (int i = 0; i < kDevices; ++i) {
    EXPECT_EQ(calls[i], 1) << "device " << i << ": the handler runs exactly once";
    ASSERT_TRUE(answers[i].ok()) << answers[i].error().message;
    EXPECT_EQ(answers[i]->code.to_string(), "2.04") << answers[i]->payload_text();
    EXPECT_EQ(answers[i]->content_format, coap_formats::certs_only);
    auto bag = CertsOnly::from_der(answers[i]->payload);
    ASSERT_TRUE(bag.ok()) << bag.error().message;
    EXPECT_EQ(bag->certificates().front().public_key(), keys[i].public_key()) << "each device gets the certificate for its own key";
  }
}

TEST_F(AsyncCoapsClientTest, ARefusedDeviceAndASilentPortEndInErrorsNotHangs) {
  boost::asio::io_context io;
  auto client = AsyncCoapsClient::make(io, options());
  ASSERT_TRUE(client.ok()) << client.error().message;
  // PG-COAP-4: a device of a CA the proxy does not trust is refused at the handshake.
  const auto unknown = lab.identity("device-unknown-ca");
  std::optional<Result<CoapResponse>> refused;
  const auto key = PrivateKey::generate(KeyType::ec_p256).value();
  (*client)->exchange(unknown, enroll_request(unknown.certificate, key), [&](Result<CoapResponse> r) { refused = std::move(r); });

  // Nothing listening: an error within the deadline, never a hang.
  auto silent_options = options();
  silent_options.port = 9;  // discard: nothing answers DTLS there
  silent_options.timeout = 1500ms;
  auto silent = AsyncCoapsClient::make(io, silent_options);
  ASSERT_TRUE(silent.ok()) << silent.error().message;
  std::optional<Result<CoapResponse>> nobody;
  const auto factory = lab.identity("device-factory");
  (*silent)->exchange(factory, enroll_request(factory.certificate, key), [&](Result<CoapResponse> r) { nobody = std::move(r); });
  const auto started = std::chrono::steady_clock::now();
  io.run();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  ASSERT_TRUE(refused.has_value());
  EXPECT_FALSE(refused->ok()) << refused->value().code.to_string();
  ASSERT_TRUE(nobody.has_value());
  ASSERT_FALSE(nobody->ok());
  EXPECT_FALSE(nobody->error().message.empty());

  // A block size RFC 7959 does not have (SZX 7 is reserved): an error naming it, nothing sent.
  CoapRequest reserved_szx = enroll_request(factory.certificate, key);
  reserved_szx.block_szx = 7;
  std::optional<Result<CoapResponse>> bad_size;
  (*client)->exchange(factory, reserved_szx, [&](Result<CoapResponse> r) { bad_size = std::move(r); });
  io.restart();
  io.run();
  ASSERT_TRUE(bad_size.has_value());
  ASSERT_FALSE(bad_size->ok());
  EXPECT_NE(bad_size->error().message.find("block_szx"), std::string::npos) << bad_size->error().message;

  AsyncCoapsOptions no_anchors = options();
  no_anchors.trust_anchors.clear();
  auto made = AsyncCoapsClient::make(io, no_anchors);
  ASSERT_FALSE(made.ok());
  EXPECT_NE(made.error().message.find("trust anchors"), std::string::npos) << made.error().message;
}

// One coap_io_process reads for many sessions here. A refused device's handshake leaves errors in
// the thread's OpenSSL queue, and libcoap 4.3.1 asks SSL_get_error without clearing it: without a
// clean queue at each record, the next session's dropped replay read as a fatal error and that
// device failed too. Every record arrives twice (replays) while refused devices come and go.
TEST_F(AsyncCoapsClientTest, RefusedDevicesNeverEndAnotherDevicesSession) {  // RFC 6347 4.1.2.6
  network::Impairment duplicate_all;
  duplicate_all.duplicate = 1.0;
  duplicate_all.seed = 5;
  auto relay = network::ImpairedRelay::start("127.0.0.1", proxy->port(), duplicate_all);
  ASSERT_TRUE(relay.ok()) << relay.error().message;
  auto through_relay = options();
  through_relay.port = (*relay)->port();
  boost::asio::io_context io;
  auto client = AsyncCoapsClient::make(io, through_relay);
  ASSERT_TRUE(client.ok()) << client.error().message;
  const auto factory = lab.identity("device-factory");
  const auto unknown = lab.identity("device-unknown-ca");
  constexpr int kDevices = 64;
  std::vector<std::optional<Result<CoapResponse>>> answers(kDevices);
  for (int i = 0; i < kDevices; ++i) {
    CoapRequest cacerts;
    cacerts.path = *coaps_est_path("", EstOperation::cacerts);
    (*client)->exchange(i % 2 == 0 ? factory : unknown, cacerts, [&, i](Result<CoapResponse> r) { answers[i] = std::move(r); });
  }
  io.run();
  for (int i = 0; i < kDevices; ++i) {
    ASSERT_TRUE(answers[i].has_value()) << i;
    if (i % 2 == 0) {
      ASSERT_TRUE(answers[i]->ok()) << "device " << i << " (trusted): " << answers[i]->error().message;
      EXPECT_EQ((*answers[i])->code.to_string(), "2.05");
    } else {
      EXPECT_FALSE(answers[i]->ok()) << "device " << i << " of an unknown CA was answered (PG-COAP-4)";
    }
  }
}

// RFC 7252 5.2.2 with RFC 7959: an answer that takes the gateway longer than the proxy waits before
// its empty ACK comes as a separate response, and a large one in Block2 blocks. The device must get
// all of it (9148-4.6-a, 9148-4.7-a): libcoap 4.3.1's block mode dropped a separate Block2 answer
// to a one-message request, and the device waited until its session closed. Both ways here: a
// server-generated RSA key in 1024-byte blocks, and an enrollment in 64-byte blocks both ways.
TEST_F(AsyncCoapsClientTest, ASlowAnswerInBlocksArrivesWhole) {
  start([](gateway::GatewayConfig& slow) {
    slow.answer_delay = 2s;  // the proxy sends its empty ACK after 1 s
    slow.serverkeygen_key_type = KeyType::rsa2048;  // key and certificate: about 2 KiB
  });
  ASSERT_FALSE(HasFatalFailure());

  boost::asio::io_context io;
  auto client = AsyncCoapsClient::make(io, options());
  ASSERT_TRUE(client.ok()) << client.error().message;
  const auto device = lab.identity("device-factory");
  const auto key = PrivateKey::generate(KeyType::ec_p256).value();
  CoapRequest serverkeygen = enroll_request(device.certificate, key);
  serverkeygen.path = *coaps_est_path("", EstOperation::serverkeygen);
  CoapRequest small_blocks = enroll_request(device.certificate, key);
  small_blocks.block_szx = 2;
  ASSERT_GT(small_blocks.payload.size(), 64u) << "the CSR should need several Block1 blocks";
  std::optional<Result<CoapResponse>> generated, enrolled;
  (*client)->exchange(device, serverkeygen, [&](Result<CoapResponse> r) { generated = std::move(r); });
  (*client)->exchange(device, small_blocks, [&](Result<CoapResponse> r) { enrolled = std::move(r); });
  io.run();

  ASSERT_TRUE(generated.has_value() && enrolled.has_value());
  ASSERT_TRUE(generated->ok()) << generated->error().message;
  EXPECT_EQ((*generated)->code.to_string(), "2.04") << (*generated)->payload_text();
  EXPECT_TRUE((*generated)->separate) << "the answer should come after an empty ACK";
  EXPECT_GT((*generated)->payload.size(), 1024u) << "the answer should need several 1024-byte blocks";
  auto parts = decode_multipart_core((*generated)->payload);
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  EXPECT_EQ(parts->size(), 2u) << "the key and its certificate";

  ASSERT_TRUE(enrolled->ok()) << enrolled->error().message;
  ASSERT_EQ((*enrolled)->code.to_string(), "2.04") << (*enrolled)->payload_text();
  EXPECT_TRUE((*enrolled)->separate);
  EXPECT_EQ((*enrolled)->block2_szx, 2u);
  auto bag = CertsOnly::from_der((*enrolled)->payload);
  ASSERT_TRUE(bag.ok()) << bag.error().message;
  EXPECT_EQ(bag->certificates().front().public_key(), key.public_key()) << "the whole certificate, every block of it";
}

}  // namespace
}  // namespace estlab
