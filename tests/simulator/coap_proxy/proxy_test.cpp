// The proxy on loopback between core's coaps client and the reference gateway, both in-process:
// PG-COAP-1..6 each with its allowed and its refused case, block-wise, and garbage datagrams.
#include "estlab/coap_proxy/proxy.hpp"

#include <fstream>
#include <iostream>

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <thread>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <set>

#include "estlab/core/base64.hpp"
#include "estlab/core/certs_only.hpp"
#include "estlab/core/coaps_client.hpp"
#include "estlab/core/csr.hpp"
#include "estlab/core/ossl.hpp"
#include "estlab/core/properties.hpp"
#include "estlab/gateway/server.hpp"
#include "estlab/network/relay.hpp"
#include "lab_support.hpp"
#include "sanitized.hpp"

namespace estlab::coap_proxy {
namespace {

using namespace std::chrono_literals;
using test::TestLab;

class CoapProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto gateway_config = gateway::GatewayConfig::load(lab.est_properties(), gateway::Profile::protocol_gateway);
    gateway_config.port = 0;
    auto service = std::make_shared<gateway::EstService>(std::move(gateway_config), lab.open_ca());
    auto started = gateway::GatewayServer::start(service, 2, [](const std::string&) {});
    ASSERT_TRUE(started.ok()) << started.error().message;
    gateway = std::move(started).value();
  }

  // The proxy logs into `log` until it has stopped, and members are destroyed in reverse order
  // (log before proxy): stop it first, or a late line (a failed handshake's) writes freed memory.
  void TearDown() override {
    proxy.reset();
    gateway.reset();
  }

  CoapProxyConfig config() {
    CoapProxyConfig c = CoapProxyConfig::load(lab.path("config/coap.properties"));
    c.port = 0;
    c.est_url = "https://localhost:" + std::to_string(gateway->port()) + "/.well-known/est";
    return c;
  }

  void start(CoapProxyConfig c) {
    auto started = CoapProxy::start(c, [this](const std::string& line) {
      std::lock_guard lock(log_mutex);
      log += line + "\n";
    });
    ASSERT_TRUE(started.ok()) << started.error().message;
    proxy = std::move(started).value();
  }

  CoapsClientOptions client(const std::string& identity) {
    CoapsClientOptions o;
    o.port = proxy->port();
    o.identity = lab.identity(identity);
    o.trust_anchors = lab.trust_anchors();
    o.server_name = "127.0.0.1";
    o.handshake_timeout = 5s;
    o.request_timeout = 20s;
    return o;
  }

  DtlsHandshakeOptions handshake(const std::string& identity) {
    DtlsHandshakeOptions o;
    o.port = proxy->port();
    o.identity = lab.identity(identity);
    o.trust_anchors = lab.trust_anchors();
    o.server_name = "localhost";
    o.timeout = 5s;
    return o;
  }

  CoapsConnection connect(const std::string& identity, unsigned szx = 6) {
    auto o = client(identity);
    o.block_szx = szx;
    auto connection = CoapsConnection::connect(o);
    if (!connection.ok()) throw std::runtime_error(connection.error().message);
    return std::move(connection).value();
  }

  Csr csr_for(const Certificate& certificate) {
    CsrBuilder builder;
    builder.subject(certificate.subject());
    return builder.sign(key).value();
  }

  std::string log_text() {
    std::lock_guard lock(log_mutex);
    return log;
  }

  // A proxy counter once it has reached `at_least`, or after 2 s: the proxy's loop thread counts
  // just after the datagram the test's client has already seen went out.
  std::uint64_t counted(std::uint64_t ProxyStats::*counter, std::uint64_t at_least) {
    const auto deadline = std::chrono::steady_clock::now() + 2s;
    while (proxy->stats().*counter < at_least && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return proxy->stats().*counter;
  }

  TestLab lab;
  std::unique_ptr<gateway::GatewayServer> gateway;
  std::unique_ptr<CoapProxy> proxy;
  std::mutex log_mutex;
  std::string log;
  PrivateKey key = PrivateKey::generate(KeyType::ec_p256).value();
};

TEST_F(CoapProxyTest, DiscoveryListsTheEstResourcesButNoFullcmc) {  // 9148-4.1-d, 9148-5-i
  start(config());
  auto connection = connect("device-factory");
  auto response = connection.discover();
  ASSERT_TRUE(response.ok()) << response.error().message;
  EXPECT_EQ(response->code.to_string(), "2.05");
  EXPECT_EQ(response->content_format, coap_formats::link_format);
  const std::string links = response->payload_text();
  for (const char* expected : {"</.well-known/est/crts>", "rt=\"ace.est.crts\"", "rt=\"ace.est.sen\"", "rt=\"ace.est.sren\"",
                               "rt=\"ace.est.skg\"", "rt=\"ace.est.att\"", "</.well-known/est/twin-a/sen>"})
    EXPECT_NE(links.find(expected), std::string::npos) << expected << " in " << links;
  EXPECT_EQ(links.find("fullcmc"), std::string::npos);
}

TEST_F(CoapProxyTest, CacertsIsBinaryCertsOnly) {  // PG-COAP-1, 9148-4.3-a, 9148-4.5-a
  start(config());
  auto connection = connect("device-factory");
  auto response = connection.cacerts();
  ASSERT_TRUE(response.ok()) << response.error().message;
  EXPECT_EQ(response->code.to_string(), "2.05");
  EXPECT_EQ(response->content_format, coap_formats::certs_only);
  auto bag = CertsOnly::from_der(response->payload);
  ASSERT_TRUE(bag.ok()) << bag.error().message;
  EXPECT_GE(bag->certificates().size(), 2u);
}

TEST_F(CoapProxyTest, ReenrollIsAuthorizedAsTheDeviceNotTheOfficer) {  // PG-COAP-1, PG-COAP-2
  start(config());
  const Certificate device = lab.certificate("device-current");
  auto connection = connect("device-current");
  // Allowed: the device's own, latest certificate re-enrolls its own subject.
  auto reenrolled = connection.enroll(csr_for(device).der(), true);
  ASSERT_TRUE(reenrolled.ok()) << reenrolled.error().message;
  ASSERT_EQ(reenrolled->code.to_string(), "2.04") << reenrolled->payload_text() << "\n" << log_text();
  EXPECT_EQ(reenrolled->content_format, coap_formats::certs_only);
  auto issued = CertsOnly::from_der(reenrolled->payload);
  ASSERT_TRUE(issued.ok());
  EXPECT_EQ(issued->certificates().front().subject(), device.subject());

  // Refused: the gateway sees the forwarded device, not the officer (who could enroll anyone):
  // a CSR for another subject is refused (PG-ENR-1) ...
  auto other = connection.enroll(csr_for(lab.certificate("device-factory")).der(), true);
  ASSERT_TRUE(other.ok()) << other.error().message;
  EXPECT_EQ(other->code.code_class(), 4) << other->code.to_string();
  // ... and a superseded device certificate may not re-enroll (PG-ENR-4, as the device's own TLS would be).
  auto superseded = connect("device-superseded");
  auto refused = superseded.enroll(csr_for(lab.certificate("device-superseded")).der(), true);
  ASSERT_TRUE(refused.ok()) << refused.error().message;
  EXPECT_EQ(refused->code.to_string(), "4.03") << refused->payload_text();
  EXPECT_NE(log_text().find("client=\"C=SE,O=estlab lab devices,CN="), std::string::npos) << log_text();
}

// RFC 7252 4.5 through the lab's lossy relay: a request whose piggybacked answer was lost comes
// again, and must get that answer again (not an empty ACK, after which the device would wait for
// a separate response that never comes), and never be forwarded twice (a second certificate).
TEST_F(CoapProxyTest, ThroughLossEachRequestIsForwardedOnceAndALostAnswerIsSentAgain) {  // 9148-5-h
  start(config());
  network::Impairment lossy;
  lossy.loss = 0.3;
  lossy.seed = 3;
  auto relay = network::ImpairedRelay::start("127.0.0.1", proxy->port(), lossy);
  ASSERT_TRUE(relay.ok()) << relay.error().message;
  auto o = client("device-factory");
  o.port = (*relay)->port();
  o.handshake_timeout = 60s;  // DTLS retransmits after 1, 2, 4... s
  o.request_timeout = 90s;    // CoAP after 2-3, 4-6, 8-12... s
  auto connection = CoapsConnection::connect(o);
  ASSERT_TRUE(connection.ok()) << connection.error().message;
  const Certificate device = lab.certificate("device-factory");
  constexpr int kEnrollments = 4;
  for (int i = 0; i < kEnrollments; ++i) {
    key = PrivateKey::generate(KeyType::ec_p256).value();
    auto enrolled = connection->enroll(csr_for(device).der());
    ASSERT_TRUE(enrolled.ok()) << "enrollment " << i << ": " << enrolled.error().message << "\n" << (*relay)->stats().describe() << "\n" << log_text();
    ASSERT_EQ(enrolled->code.to_string(), "2.04") << enrolled->payload_text();
  }
  (*relay)->stop();
  const auto relayed = (*relay)->stats();
  const auto stats = proxy->stats();
  EXPECT_EQ(stats.forwarded, static_cast<std::uint64_t>(kEnrollments)) << "a copy was forwarded again: " << relayed.describe();
  EXPECT_GT(relayed.lost, 0u);
  // Seed 3 loses at least one piggybacked answer; its request's copy must get it again.
  EXPECT_GT(stats.answers_resent, 0u) << relayed.describe() << "\n" << log_text();
}

TEST_F(CoapProxyTest, DevicesShareOneKeptUpstreamConnection) {  // PG-COAP-2
  start(config());
  const Certificate device = lab.certificate("device-factory");
  for (int i = 0; i < 3; ++i) {
    auto connection = connect("device-factory");  // a new device session each time
    auto enrolled = connection.enroll(csr_for(device).der());
    ASSERT_TRUE(enrolled.ok()) << enrolled.error().message;
    ASSERT_EQ(enrolled->code.to_string(), "2.04") << enrolled->payload_text();
    // Each device still enrolls as itself, not as the officer of the kept connection.
    auto issued = CertsOnly::from_der(enrolled->payload);
    ASSERT_TRUE(issued.ok()) << issued.error().message;
    EXPECT_EQ(issued->certificates().front().subject(), device.subject());
  }
  const auto stats = proxy->stats();
  EXPECT_EQ(stats.forwarded, 3u);
  EXPECT_EQ(stats.upstream_connections, 1u) << "a TLS handshake to the gateway per forwarded request";
  EXPECT_EQ(gateway->stats().connections, 1u);
  EXPECT_EQ(stats.upstream_resends, 0u);
}

TEST_F(CoapProxyTest, AResumedUpstreamSessionStillCarriesTheOfficersAuthority) {  // PG-COAP-2
  // A gateway that answers one request per connection: every forward after the first resumes the
  // officer's TLS session, where the gateway sees no certificate chain sent again.
  auto gateway_config = gateway::GatewayConfig::load(lab.est_properties(), gateway::Profile::protocol_gateway);
  gateway_config.port = 0;
  gateway_config.limits.max_requests_per_connection = 1;
  auto service = std::make_shared<gateway::EstService>(std::move(gateway_config), lab.open_ca());
  auto one_per_connection = gateway::GatewayServer::start(service, 2, [](const std::string&) {});
  ASSERT_TRUE(one_per_connection.ok()) << one_per_connection.error().message;
  gateway = std::move(one_per_connection).value();
  start(config());
  const Certificate device = lab.certificate("device-factory");
  for (int i = 0; i < 3; ++i) {
    auto connection = connect("device-factory");
    auto enrolled = connection.enroll(csr_for(device).der());
    ASSERT_TRUE(enrolled.ok()) << enrolled.error().message;
    ASSERT_EQ(enrolled->code.to_string(), "2.04") << "enrollment " << i << ": " << enrolled->payload_text();
  }
  EXPECT_EQ(proxy->stats().upstream_connections, 3u);
  EXPECT_EQ(proxy->stats().upstream_resumed, 2u);
}

TEST_F(CoapProxyTest, SmallBlocksBothWays) {  // 9148-4.6-a, 9148-5-h
  start(config());
  auto connection = connect("device-factory", 2);  // 64-byte blocks
  auto crts = connection.cacerts();
  ASSERT_TRUE(crts.ok()) << crts.error().message;
  EXPECT_EQ(crts->code.to_string(), "2.05");
  EXPECT_GT(crts->payload.size(), 64u * 4);
  EXPECT_TRUE(CertsOnly::from_der(crts->payload).ok());
  const auto forwarded_before = proxy->stats().forwarded;
  auto enrolled = connection.enroll(csr_for(lab.certificate("device-factory")).der());
  ASSERT_TRUE(enrolled.ok()) << enrolled.error().message;
  EXPECT_EQ(enrolled->code.to_string(), "2.04") << enrolled->payload_text();
  EXPECT_EQ(proxy->stats().forwarded, forwarded_before + 1);  // every Block1 reassembled into one POST
}

TEST_F(CoapProxyTest, ServerkeygenAnswersMultipartCore) {  // 9148-4.3-e, 9148-5-g
  start(config());
  auto connection = connect("device-factory");
  auto response = connection.serverkeygen(csr_for(lab.certificate("device-factory")).der());
  ASSERT_TRUE(response.ok()) << response.error().message;
  ASSERT_EQ(response->code.to_string(), "2.04") << response->payload_text();
  EXPECT_EQ(response->content_format, coap_formats::multipart_core);
  auto parts = decode_multipart_core(response->payload);
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  ASSERT_EQ(parts->size(), 2u);
}

// A response several datagrams long: an RSA-4096 server-generated key with its certificate, sent
// in 1024-byte Block2 blocks and reassembled by the client.
TEST_F(CoapProxyTest, LargeRsa4096ServerkeygenResponseArrivesInBlocks) {  // 9148-4.6-a
  gateway->stop();
  auto gateway_config = gateway::GatewayConfig::load(lab.est_properties(), gateway::Profile::protocol_gateway);
  gateway_config.port = 0;
  gateway_config.serverkeygen_key_type = KeyType::rsa4096;
  auto restarted = gateway::GatewayServer::start(std::make_shared<gateway::EstService>(std::move(gateway_config), lab.open_ca()), 2,
                                                  [](const std::string&) {});
  ASSERT_TRUE(restarted.ok()) << restarted.error().message;
  gateway = std::move(restarted).value();
  // An RSA-4096 key takes a while to generate: a second or two alone, over a minute on a machine
  // loaded far beyond its cores (measured: 77 s at load 9.7 on 2 cores). The proxy's upstream
  // deadline and the device's are set beyond that; both stay bounded.
  auto c = config();
  c.upstream_io_timeout = 180s;
  start(c);
  auto o = client("device-factory");
  o.block_szx = 6;  // 1024-byte blocks
  o.request_timeout = 200s;
  auto connection = CoapsConnection::connect(o);
  ASSERT_TRUE(connection.ok()) << connection.error().message;
  auto response = connection->serverkeygen(csr_for(lab.certificate("device-factory")).der());
  ASSERT_TRUE(response.ok()) << response.error().message;
  ASSERT_EQ(response->code.to_string(), "2.04") << response->payload_text();
  EXPECT_GT(response->payload.size(), 2u * 1024u) << "the answer should need several blocks";
  auto parts = decode_multipart_core(response->payload);
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  ASSERT_EQ(parts->size(), 2u);
  std::optional<PrivateKey> server_key;
  std::optional<Certificate> issued;
  for (const auto& part : *parts) {
    if (part.content_format == coap_formats::pkcs8) server_key = PrivateKey::from_pkcs8_der(part.data).value();
    if (part.content_format == coap_formats::certs_only) issued = CertsOnly::from_der(part.data).value().certificates().front();
  }
  ASSERT_TRUE(server_key && issued);
  EXPECT_TRUE(issued->public_key() == server_key->public_key());
  EXPECT_EQ(EVP_PKEY_get_bits(server_key->native()), 4096);
  // The device retransmits while the key is generated (longer than ACK_TIMEOUT): those copies are
  // acknowledged, never forwarded again (RFC 7252 4.5): one key, one certificate.
  EXPECT_EQ(proxy->stats().forwarded, 1u);
  std::printf("answer %s; copies acknowledged without forwarding: %llu\n",
              response->separate ? "separate (empty ACK first)" : "piggybacked", static_cast<unsigned long long>(proxy->stats().duplicates));
}

// The loop never waits for the gateway (RFC 7252 5.2.2): while one device's request is stalled
// upstream, another device enrolls within a bound; the stalled device gets an empty ACK, then its
// answer as a separate response; its request went upstream once.
TEST_F(CoapProxyTest, StalledUpstreamDelaysNoOtherDevice) {  // PG-COAP-1, 9148-4.7-a
  auto officer = TlsIdentity::load_pkcs12(config().officer_token, config().officer_password);
  ASSERT_TRUE(officer.ok()) << officer.error().message;
  HttpsClientOptions upstream_options;
  upstream_options.port = gateway->port();
  upstream_options.server_name = "localhost";
  upstream_options.identity = std::move(officer).value();
  upstream_options.trust_anchors = lab.trust_anchors();
  const std::string stalled_subject = lab.certificate("device-current").subject().to_string();
  std::mutex mutex;
  std::condition_variable released_cv;
  bool released = false;
  std::atomic<int> upstream_calls{0};
  // The stalled device's requests wait until released (at most 10 s); everyone else's go through.
  Upstream upstream = [&](const HttpRequest& request) -> Result<HttpResponse> {
    ++upstream_calls;
    auto chain = request.header(kForwardedClientCertHeader).value_or("");
    auto der = base64_decode(chain.substr(0, chain.find(',')));
    auto leaf = der.ok() ? Certificate::from_der(*der) : Result<Certificate>(der.error());
    if (leaf.ok() && leaf->subject().to_string() == stalled_subject) {
      std::unique_lock lock(mutex);
      released_cv.wait_for(lock, 10s, [&] { return released; });
    }
    return https_request(upstream_options, request);
  };
  auto started = CoapProxy::start(config(), [](const std::string&) {}, upstream);
  ASSERT_TRUE(started.ok()) << started.error().message;
  proxy = std::move(started).value();

  Result<CoapResponse> stalled_answer = make_error(ErrorCode::internal, "not run");
  std::thread stalled_device([&] {
    auto connection = connect("device-current");
    stalled_answer = connection.enroll(csr_for(lab.certificate("device-current")).der(), true);
  });
  const auto wait_start = std::chrono::steady_clock::now();
  while (upstream_calls.load() == 0 && std::chrono::steady_clock::now() - wait_start < 5s) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(upstream_calls.load(), 1) << "the stalled device's request never reached the upstream";

  const auto started_at = std::chrono::steady_clock::now();
  auto other = connect("device-factory");
  auto enrolled = other.enroll(csr_for(lab.certificate("device-factory")).der());
  const auto took = std::chrono::steady_clock::now() - started_at;
  ASSERT_TRUE(enrolled.ok()) << enrolled.error().message;
  EXPECT_EQ(enrolled->code.to_string(), "2.04") << enrolled->payload_text();
  EXPECT_FALSE(enrolled->separate) << "a quick answer rides on the ACK";
  EXPECT_LT(took, 2s) << "the second device waited for the first one's upstream";

  std::this_thread::sleep_for(1200ms);  // past the proxy's empty-ACK delay, below the device's timeout
  {
    std::lock_guard lock(mutex);
    released = true;
  }
  released_cv.notify_all();
  stalled_device.join();
  ASSERT_TRUE(stalled_answer.ok()) << stalled_answer.error().message;
  EXPECT_EQ(stalled_answer->code.to_string(), "2.04") << stalled_answer->payload_text();
  EXPECT_TRUE(stalled_answer->separate) << "a slow answer comes after an empty ACK (RFC 7252 5.2.2)";
  EXPECT_EQ(upstream_calls.load(), 2) << "each request goes upstream exactly once";
  EXPECT_EQ(proxy->stats().forwarded, 2u);
}

TEST_F(CoapProxyTest, FullcmcIs404AndNeverForwarded) {  // PG-COAP-3
  start(config());
  auto connection = connect("device-factory");
  CoapRequest request;
  request.method = CoapMethod::post;
  request.path = "/.well-known/est/fullcmc";
  request.content_format = 279;
  request.payload = {0x30, 0x00};
  auto response = connection.send(request);
  ASSERT_TRUE(response.ok()) << response.error().message;
  EXPECT_EQ(response->code.to_string(), "4.04");
  EXPECT_EQ(proxy->stats().forwarded, 0u);
  // Allowed case of the same rule: the supported operations are forwarded.
  ASSERT_TRUE(connection.cacerts().ok());
  EXPECT_EQ(proxy->stats().forwarded, 1u);
}

TEST_F(CoapProxyTest, RequestsRfc9148RefusesLocally) {  // 9148-4.3-a/b/c, 9148-4.5-d
  start(config());
  auto connection = connect("device-factory");
  CoapRequest request;
  request.method = CoapMethod::post;
  request.path = "/.well-known/est/sen";
  request.content_format = coap_formats::csrattrs;
  request.payload = csr_for(lab.certificate("device-factory")).der();
  EXPECT_EQ(connection.send(request)->code.to_string(), "4.15");
  request.content_format = coap_formats::pkcs10;
  const std::string base64 = "MIIBIjANBgkq";
  request.payload.assign(base64.begin(), base64.end());
  EXPECT_EQ(connection.send(request)->code.to_string(), "4.00");
  request.method = CoapMethod::put;
  EXPECT_EQ(connection.send(request)->code.to_string(), "4.05");
  CoapRequest crts;
  crts.path = "/.well-known/est/crts";
  crts.accept = coap_formats::csrattrs;
  EXPECT_EQ(connection.send(crts)->code.to_string(), "4.06");
  EXPECT_EQ(proxy->stats().forwarded, 0u);
}

TEST_F(CoapProxyTest, UnknownCaDeviceIsRefusedAtTheHandshake) {  // PG-COAP-4
  start(config());
  auto refused = CoapsConnection::connect(client("device-unknown-ca"));
  EXPECT_FALSE(refused.ok());
  // The device sees the alert before the proxy's loop has counted the failed handshake.
  EXPECT_GE(counted(&ProxyStats::dtls_failures, 1), 1u);
  EXPECT_TRUE(CoapsConnection::connect(client("device-factory")).ok());  // an open CA's device is accepted
}

TEST_F(CoapProxyTest, TwinCasIgnoreLaterKeepsTheFirstAndSaysWhichItIgnored) {  // PG-COAP-5
  auto c = config();
  c.duplicate_ca_subjects = DuplicateCaSubjects::ignore_later;
  start(c);
  EXPECT_NE(log_text().find("ignoring CA 'twin-b'"), std::string::npos) << log_text();
  auto kept = CoapsConnection::connect(client("device-twin-a"));
  ASSERT_TRUE(kept.ok()) << kept.error().message;
  EXPECT_EQ(kept->cacerts()->code.to_string(), "2.05");
  // A device of the ignored CA that sends its leaf alone: its issuer's name leads only to twin-a,
  // whose key did not sign it.
  auto leaf_alone = client("device-twin-b");
  leaf_alone.identity->chain.clear();
  EXPECT_FALSE(CoapsConnection::connect(leaf_alone).ok());
  // With its CA after the leaf it reaches the root, which the proxy trusts (PG-COAP-4).
  auto with_chain = CoapsConnection::connect(client("device-twin-b"));
  ASSERT_TRUE(with_chain.ok()) << with_chain.error().message;
  EXPECT_EQ(with_chain->cacerts()->code.to_string(), "2.05");
}

TEST_F(CoapProxyTest, TwinCasRefuseStopsStartup) {  // PG-COAP-5
  auto c = config();
  c.duplicate_ca_subjects = DuplicateCaSubjects::refuse;
  auto refused = CoapProxy::start(c, [](const std::string&) {});
  ASSERT_FALSE(refused.ok());
  const std::string& message = refused.error().message;
  EXPECT_NE(message.find("PG-COAP-5"), std::string::npos) << message;
  EXPECT_NE(message.find("'twin-a'"), std::string::npos) << message;
  EXPECT_NE(message.find("'twin-b'"), std::string::npos) << message;
}

TEST_F(CoapProxyTest, DtlsCertificateWithoutServerAuthStopsStartup) {  // PG-COAP-6
  auto c = config();
  c.tls_token = lab.path("coap/dtls-server-no-serverauth.p12");
  auto refused = CoapProxy::start(c, [](const std::string&) {});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("PG-COAP-6"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("serverAuth"), std::string::npos) << refused.error().message;
  start(config());  // allowed case: the lab's tlsToken has serverAuth
  EXPECT_GT(proxy->port(), 0);
}

TEST_F(CoapProxyTest, UnreachableGatewayGivesA5xxInTime) {  // PG-COAP-1 failure path, deadlines
  auto c = config();
  gateway->stop();
  c.upstream_connect_timeout = 1s;
  start(c);
  auto connection = connect("device-factory");
  auto response = connection.cacerts();
  ASSERT_TRUE(response.ok()) << response.error().message;
  EXPECT_EQ(response->code.code_class(), 5) << response->code.to_string();
}

// Block1 transfers that never complete, start in the middle or use the reserved size: an error or
// nothing, never a forwarded half request, and the proxy keeps serving.
TEST_F(CoapProxyTest, TruncatedOutOfOrderAndReservedSizeBlocksAreNeverForwarded) {  // 9148-4.6-a, RFC 7959 2.3
  start(config());
  const Bytes csr = csr_for(lab.certificate("device-factory")).der();
  ASSERT_GT(csr.size(), 128u);
  const auto forwarded_before = proxy->stats().forwarded;
  auto fragment = [&](std::uint32_t num, bool more, unsigned szx) {
    CoapRequest request;
    request.method = CoapMethod::post;
    request.path = "/.well-known/est/sen";
    request.content_format = coap_formats::pkcs10;
    const std::size_t size = std::size_t{16} << std::min(szx, 6u);
    request.payload.assign(csr.begin() + std::min<std::size_t>(num * size, csr.size() - 1),
                           csr.begin() + std::min<std::size_t>((num + 1) * size, csr.size()));
    request.block1_fragment = CoapRequest::Block1Fragment{num, more, szx, std::nullopt};
    auto o = client("device-factory");
    o.request_timeout = 2s;
    auto connection = CoapsConnection::connect(o);
    EXPECT_TRUE(connection.ok()) << connection.error().message;
    return connection.ok() ? connection->send(request) : Result<CoapResponse>(connection.error());
  };
  // The first block of several, then nothing: libcoap asks for more (2.31) or the proxy says the
  // body is incomplete (4.08); either way nothing reaches the gateway.
  auto first = fragment(0, true, 2);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_TRUE(first->code.to_string() == "2.31" || first->code.to_string() == "4.08") << first->code.to_string();
  // A transfer that starts at block 2: 4.08 Request Entity Incomplete (or another 4.xx).
  auto middle = fragment(2, true, 2);
  if (middle.ok()) {
    EXPECT_EQ(middle->code.code_class(), 4) << middle->code.to_string();
  }
  // SZX 7 is reserved (RFC 7959 2.2): refused with 4.xx or dropped.
  auto reserved = fragment(0, false, 7);
  if (reserved.ok()) {
    EXPECT_EQ(reserved->code.to_string(), "4.00");
  }
  EXPECT_EQ(proxy->stats().forwarded, forwarded_before) << "a partial body was forwarded to the gateway";
  auto connection = connect("device-factory");
  auto after = connection.cacerts();
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_EQ(after->code.to_string(), "2.05");
}

// Issue 13 (abuse): what a Block1 transfer costs while libcoap 4.3.1 reassembles it. libcoap
// believes the Size1 a device claims and allocates that much at the first block (it reassembles
// nothing without Size1: such a first block reaches the proxy, which answers 4.08), then grows the
// body to any block's offset. Neither is touched beyond the blocks received, so resident memory
// stays flat while the address space grows: measured here with a claimed gigabyte per device and
// blocks up to 64 MiB ahead. Nothing reaches the gateway.
TEST_F(CoapProxyTest, Block1ClaimsOfAGigabyteLeaveResidentMemoryFlat) {  // RFC 7959 2.9.2, 4
  start(config());
  auto status_kib = [](const char* field) {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
      if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::string(field).size()));
    return 0L;
  };
  const auto forwarded_before = proxy->stats().forwarded;
  const long resident_before = status_kib("VmRSS:"), virtual_before = status_kib("VmSize:");
  std::string codes;
  for (int device = 0; device < 4; ++device) {
    auto o = client("device-factory");
    o.request_timeout = 3s;
    auto connection = CoapsConnection::connect(o);
    ASSERT_TRUE(connection.ok()) << connection.error().message;
    for (std::uint32_t num : {0u, 1'000'000u, 500'000u, 1'048'575u}) {
      CoapRequest request;
      request.method = CoapMethod::post;
      request.path = "/.well-known/est/sen";
      request.content_format = coap_formats::pkcs10;
      request.payload.assign(64, 0x30);
      request.block1_fragment = CoapRequest::Block1Fragment{num, true, 2, 1u << 30};  // 64-byte blocks, "1 GiB in all"
      auto answer = connection->send(request);
      if (answer.ok()) {
        EXPECT_TRUE(answer->code.to_string() == "2.31" || answer->code.code_class() == 4) << answer->code.to_string();
      }
      codes += (answer.ok() ? answer->code.to_string() : "none") + " ";
    }
  }
  const long resident = status_kib("VmRSS:") - resident_before, reserved = status_kib("VmSize:") - virtual_before;
  std::cout << "4 devices claiming 1 GiB each: resident +" << resident << " KiB, address space +" << reserved / 1024
            << " MiB; answers: " << codes << "\n";
  EXPECT_NE(codes.find("2.31"), std::string::npos) << "libcoap never started reassembling: the test measured nothing";
  if (!test::kAddressSanitized) {
    EXPECT_LT(resident, 64 * 1024) << "resident memory grew by " << resident << " KiB for 16 blocks of 64 bytes";
  }
  EXPECT_EQ(proxy->stats().forwarded, forwarded_before);
  auto connection = connect("device-factory");
  auto after = connection.cacerts();
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_EQ(after->code.to_string(), "2.05");
}

// Issue 13 (abuse): a flood of DTLS ClientHellos from 250 addresses, none of which ever completes
// a handshake. The proxy answers each with a HelloVerifyRequest (RFC 6347 4.2.1: the cookie
// exchange keeps no state per ClientHello), its memory stays bounded, and a device beside the
// flood still enrolls within a bound.
TEST_F(CoapProxyTest, ClientHelloFloodIsAnsweredWithCookiesAndADeviceStillEnrolls) {  // RFC 6347 4.2.1
  start(config());
  // A real ClientHello, as OpenSSL's DTLS client writes it into a memory BIO.
  ossl::SslCtx context(SSL_CTX_new(DTLS_client_method()));
  ASSERT_TRUE(context);
  ossl::Ssl ssl(SSL_new(context.get()));
  BIO* into = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl.get(), into, out);  // the SSL owns both
  ASSERT_EQ(SSL_connect(ssl.get()), -1);
  Bytes hello(static_cast<std::size_t>(BIO_ctrl_pending(out)));
  ASSERT_GT(hello.size(), 100u);
  ASSERT_EQ(BIO_read(out, hello.data(), static_cast<int>(hello.size())), static_cast<int>(hello.size()));

  auto resident_kib = [] {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return 0L;
  };
  const long before = resident_kib();
  sockaddr_in proxy_address{};
  proxy_address.sin_family = AF_INET;
  proxy_address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  proxy_address.sin_port = htons(proxy->port());

  // A device enrolls while the flood is being answered.
  std::string enroll_code, enroll_error;
  std::chrono::steady_clock::duration took{};
  std::thread device_thread([&] {
    try {
      const auto started = std::chrono::steady_clock::now();
      auto device = connect("device-factory");
      auto enrolled = device.enroll(csr_for(lab.certificate("device-factory")).der());
      took = std::chrono::steady_clock::now() - started;
      if (enrolled.ok()) enroll_code = enrolled->code.to_string();
      else enroll_error = enrolled.error().message;
    } catch (const std::exception& e) {
      enroll_error = e.what();
    }
  });

  // In waves of 25 addresses (100 ClientHellos): a wave fits the proxy's socket receive buffer
  // (Linux's default 208 KiB), so an address without an answer means the proxy gave none, not that
  // the kernel dropped a burst the proxy had no time to read (as a sanitized build is slow to).
  constexpr int kAddresses = 250, kHellosEach = 4, kWave = 25;
  int verify_requests = 0, other = 0, unanswered = 0;
  for (int first = 0; first < kAddresses; first += kWave) {
    std::vector<int> wave;
    for (int i = first; i < std::min(first + kWave, kAddresses); ++i) {
      wave.push_back(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0));
      for (int n = 0; n < kHellosEach; ++n)
        ::sendto(wave.back(), hello.data(), hello.size(), 0, reinterpret_cast<sockaddr*>(&proxy_address), sizeof proxy_address);
    }
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    for (int fd : wave) {
      bool answered = false;
      while (std::chrono::steady_clock::now() < deadline) {
        std::uint8_t answer[2048];
        const auto n = ::recv(fd, answer, sizeof answer, 0);
        if (n < 0) {
          if (answered) break;  // the rest of this address's answers are not waited for
          std::this_thread::sleep_for(1ms);
          continue;
        }
        answered = true;
        // Record type 22 (handshake), epoch 0, handshake type 3 (HelloVerifyRequest).
        if (n > 13 && answer[0] == 22 && answer[13] == 3) ++verify_requests;
        else ++other;
      }
      if (!answered) ++unanswered;
      ::close(fd);
    }
  }
  device_thread.join();
  const long grown = resident_kib() - before;
  std::cout << kAddresses * kHellosEach << " ClientHellos from " << kAddresses << " addresses: " << verify_requests
            << " HelloVerifyRequests, " << other << " other answers, " << unanswered << " addresses unanswered; resident +"
            << grown << " KiB; a device enrolled in " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
            << " ms\n";
  EXPECT_EQ(enroll_code, "2.04") << enroll_error;
  EXPECT_LT(took, 3s) << "the flood held the device up";
  EXPECT_EQ(unanswered, 0) << "the cookie exchange was not used";
  EXPECT_GE(verify_requests, kAddresses);
  EXPECT_EQ(other, 0) << "a ClientHello without a cookie got something other than a HelloVerifyRequest";
  if (!test::kAddressSanitized) {
    EXPECT_LT(grown, 32 * 1024) << "resident memory grew by " << grown << " KiB";
  }
}

TEST_F(CoapProxyTest, GarbageDatagramsNeverCrashIt) {
  start(config());
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(proxy->port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::mt19937 random(7);
  for (int i = 0; i < 300; ++i) {
    std::vector<std::uint8_t> datagram(random() % 1400 + 1);
    for (auto& byte : datagram) byte = static_cast<std::uint8_t>(random());
    if (i % 3 == 0) {  // a DTLS record header with a lying length, and a truncated ClientHello
      datagram.resize(std::max<std::size_t>(datagram.size(), 14));
      datagram[0] = 22;
      datagram[1] = 0xfe;
      datagram[2] = 0xfd;
    }
    ::sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  }
  ::close(fd);
  auto connection = connect("device-factory");
  auto response = connection.cacerts();
  ASSERT_TRUE(response.ok()) << response.error().message;
  EXPECT_EQ(response->code.to_string(), "2.05");
}


// What the embedded lab shows scenarios (expect.upstream): each forwarded request once, as sent,
// with the gateway's answer; a request the proxy refuses itself is never reported.
TEST(CoapProxyObserver, SeesEachForwardedRequestAndItsAnswer) {  // 9148-5-d, 9148-5-f, 9148-5-h
  TestLab lab;
  auto gateway_config = gateway::GatewayConfig::load(lab.est_properties(), gateway::Profile::protocol_gateway);
  gateway_config.port = 0;
  auto gateway = gateway::GatewayServer::start(std::make_shared<gateway::EstService>(std::move(gateway_config), lab.open_ca()), 2,
                                               [](const std::string&) {});
  ASSERT_TRUE(gateway.ok()) << gateway.error().message;
  CoapProxyConfig c = CoapProxyConfig::load(lab.path("config/coap.properties"));
  c.port = 0;
  c.est_url = "https://localhost:" + std::to_string((*gateway)->port()) + "/.well-known/est";
  std::mutex mutex;
  std::vector<std::pair<HttpRequest, int>> seen;
  std::vector<UpstreamConnection> connections;
  auto proxy = CoapProxy::start(c, [](const std::string&) {}, {},
                                [&](const HttpRequest& sent, const Result<HttpResponse>& answer, const UpstreamConnection& connection) {
                                  std::lock_guard lock(mutex);
                                  seen.emplace_back(sent, answer.ok() ? answer->status : 0);
                                  connections.push_back(connection);
                                });
  ASSERT_TRUE(proxy.ok()) << proxy.error().message;
  CoapsClientOptions o;
  o.port = (*proxy)->port();
  o.identity = lab.identity("device-factory");
  o.trust_anchors = lab.trust_anchors();
  o.server_name = "127.0.0.1";
  auto connection = CoapsConnection::connect(o);
  ASSERT_TRUE(connection.ok()) << connection.error().message;
  const PrivateKey key = PrivateKey::generate(KeyType::ec_p256).value();
  const Csr csr = CsrBuilder().subject(lab.certificate("device-factory").subject()).sign(key).value();
  CoapRequest request;
  request.method = CoapMethod::post;
  request.path = "/.well-known/est/sen";
  request.content_format = coap_formats::pkcs10;
  request.payload = csr.der();
  request.block_szx = 2;  // 64-byte Block1 blocks: still one request upstream
  auto enrolled = connection->send(request);
  ASSERT_TRUE(enrolled.ok()) << enrolled.error().message;
  EXPECT_EQ(enrolled->code.to_string(), "2.04");
  request.payload.assign({'M', 'I', 'I'});  // base64 text: refused by the proxy, never forwarded
  request.block_szx.reset();
  auto refused = connection->send(request);
  ASSERT_TRUE(refused.ok()) << refused.error().message;
  EXPECT_EQ(refused->code.to_string(), "4.00");
  std::lock_guard lock(mutex);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].first.method, "POST");
  EXPECT_EQ(seen[0].first.target, "/.well-known/est/simpleenroll");
  EXPECT_EQ(seen[0].first.header("Content-Type"), "application/pkcs10");
  EXPECT_EQ(decode_est_body(seen[0].first.body, std::nullopt).value(), csr.der());
  EXPECT_EQ(seen[0].second, 200);
  // 9148-5-a/b: over TLS, as the officer (the certificate of officer.token).
  ASSERT_EQ(connections.size(), 1u);
  EXPECT_EQ(connections[0].scheme, "https");
  EXPECT_FALSE(connections[0].tls_version.empty());
  ASSERT_TRUE(connections[0].client_certificate.has_value());
  EXPECT_EQ(connections[0].client_certificate->subject(), TlsIdentity::load_pkcs12(c.officer_token, c.officer_password)->certificate.subject());
}

// core's dtls_handshake, the connect step behind `dtls`, `ciphers` and `groups`: the mandatory
// RFC 7925 suite with P-256 completes; DTLS 1.0 (RFC 8996) and a client without a certificate are
// refused; what was offered is what was negotiated.
TEST_F(CoapProxyTest, HandshakeAloneOffersOnlyWhatItIsTold) {  // 9148-3-a, 9148-3-c, 9148-3-e, 9148-9.1-b
  start(config());
  DtlsHandshakeOptions o = handshake("device-factory");
  o.version = DtlsHandshakeOptions::Version::dtls1_2;
  o.ciphers = "ECDHE-ECDSA-AES128-CCM8";
  o.groups = "P-256";
  auto mandatory = dtls_handshake(o);
  ASSERT_TRUE(mandatory.ok()) << mandatory.error().message;
  EXPECT_EQ(mandatory->version, "DTLSv1.2");
  EXPECT_EQ(mandatory->cipher, "ECDHE-ECDSA-AES128-CCM8");
  EXPECT_TRUE(mandatory->extended_master_secret);
  EXPECT_FALSE(mandatory->peer_chain.empty());

  auto old = o;
  old.version = DtlsHandshakeOptions::Version::dtls1_0;
  old.ciphers.clear();
  auto refused = dtls_handshake(old);
  ASSERT_FALSE(refused.ok()) << "DTLS 1.0 was accepted: " << refused->version;
  EXPECT_NE(refused.error().message.find("DTLS handshake refused"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("protocol version"), std::string::npos) << refused.error().message;

  auto anonymous = o;
  anonymous.identity.reset();
  EXPECT_FALSE(dtls_handshake(anonymous).ok());

  auto nonsense = o;
  nonsense.ciphers = "NO-SUCH-CIPHER";
  auto bad = dtls_handshake(nonsense);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::invalid_input);

  // A port nobody answers on: the deadline, not a hang.
  auto silent = o;
  silent.port = 9;  // discard
  silent.timeout = 300ms;
  const auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(dtls_handshake(silent).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
}

// libcoap 4.3.1 asks OpenSSL's SSL_get_error after an SSL_read that only dropped a replayed
// record (RFC 6347 4.1.2.6), without clearing the thread's error queue. Another device's refused
// handshake leaves errors there, and the replay then read as a fatal error and ended an
// established session: coaps-fb40-block-size-reordered failed this way, at random, for months.
TEST_F(CoapProxyTest, AnotherDevicesRefusedHandshakeNeverEndsAnEstablishedSession) {  // RFC 6347 4.1.2.6
  start(config());
  network::Impairment duplicate_all;
  duplicate_all.duplicate = 1.0;  // every record arrives twice: each second copy is a replay
  duplicate_all.seed = 11;
  auto relay = network::ImpairedRelay::start("127.0.0.1", proxy->port(), duplicate_all);
  ASSERT_TRUE(relay.ok()) << relay.error().message;
  auto options = client("device-factory");
  options.port = (*relay)->port();
  options.block_szx = 0;  // 16-byte Block2 blocks: libcoap serves blocks 1.. from its cache, not our handler
  auto device = CoapsConnection::connect(options);
  ASSERT_TRUE(device.ok()) << device.error().message;

  // Devices without a certificate keep being refused meanwhile (9148-3-e).
  std::atomic<bool> done{false};
  std::atomic<int> refused{0}, admitted{0};
  std::thread others([&] {
    DtlsHandshakeOptions anonymous;
    anonymous.port = proxy->port();
    anonymous.trust_anchors = lab.trust_anchors();
    anonymous.timeout = 3s;
    while (!done.load()) (dtls_handshake(anonymous).ok() ? admitted : refused)++;
  });
  std::optional<Error> failed;
  for (int round = 0; round < 3 && !failed; ++round) {
    auto cacerts = device->cacerts();
    if (!cacerts.ok()) failed = cacerts.error();
    else EXPECT_EQ(cacerts->code.to_string(), "2.05");
  }
  done = true;
  others.join();
  ASSERT_FALSE(failed) << failed->message << "\n" << log_text();
  EXPECT_EQ(admitted.load(), 0);
  EXPECT_GT(refused.load(), 0);
  // The last refused device can see the alert before the proxy counts it (this read once came 1
  // short under load).
  const auto refusals = static_cast<std::uint64_t>(refused.load());
  EXPECT_EQ(counted(&ProxyStats::dtls_failures, refusals), refusals) << "only the refused handshakes failed\n" << log_text();
}

// RFC 6347 4.2.8: a device that lost its session (no close_notify: a power cut) and comes back
// from the same address and port gets a new handshake at once, after a cookie exchange. Before,
// libcoap gave its ClientHello to the old session, which dropped it until that session expired.
// A ClientHello without the cookie (anyone can send one from that address) ends nothing.
TEST_F(CoapProxyTest, ADeviceBackFromTheAddressOfALostSessionGetsANewHandshake) {
  start(config());
  std::uint16_t port = 0;
  {
    const int probe = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in any{};
    any.sin_family = AF_INET;
    ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&any), sizeof any), 0);
    socklen_t size = sizeof any;
    ::getsockname(probe, reinterpret_cast<sockaddr*>(&any), &size);
    port = ntohs(any.sin_port);
    ::close(probe);
  }
  DtlsHandshakeOptions o = handshake("device-factory");
  o.timeout = 3s;
  o.local_port = port;
  o.close_notify = false;
  auto lost = dtls_handshake(o);
  ASSERT_TRUE(lost.ok()) << lost.error().message;
  EXPECT_EQ(proxy->stats().sessions_replaced, 0u);

  const auto started = std::chrono::steady_clock::now();
  auto back = dtls_handshake(o);
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(back.ok()) << back.error().message << "\n" << log_text();
  // One round trip more than a first contact; no DTLS retransmission timer (1 s) waited out.
  EXPECT_LT(took, 900ms);
  EXPECT_GE(proxy->stats().rehandshake_cookies, 1u);
  EXPECT_EQ(proxy->stats().sessions_replaced, 1u);
  EXPECT_NE(log_text().find("came back with a new DTLS handshake (RFC 6347 4.2.8)"), std::string::npos) << log_text();

  // And through libcoap's client from that port: CoAP works on the session that replaced it.
  auto options = client("device-factory");
  options.local_port = port;
  auto device = CoapsConnection::connect(options);
  ASSERT_TRUE(device.ok()) << device.error().message << "\n" << log_text();
  auto cacerts = device->cacerts();
  ASSERT_TRUE(cacerts.ok()) << cacerts.error().message;
  EXPECT_EQ(cacerts->code.to_string(), "2.05");
  EXPECT_EQ(proxy->stats().sessions_replaced, 2u);

  // Someone else's ClientHello from that address, without the cookie: answered with a
  // HelloVerifyRequest, and the device's session goes on.
  ossl::SslCtx context(SSL_CTX_new(DTLS_client_method()));
  ossl::Ssl ssl(SSL_new(context.get()));
  BIO* into = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl.get(), into, out);
  ASSERT_EQ(SSL_connect(ssl.get()), -1);
  Bytes hello(static_cast<std::size_t>(BIO_ctrl_pending(out)));
  ASSERT_EQ(BIO_read(out, hello.data(), static_cast<int>(hello.size())), static_cast<int>(hello.size()));
  const int spoofer = ::socket(AF_INET, SOCK_DGRAM, 0);
  const int reuse = 1;
  ::setsockopt(spoofer, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  from.sin_port = htons(port);
  ASSERT_EQ(::bind(spoofer, reinterpret_cast<sockaddr*>(&from), sizeof from), 0) << "cannot send from port " << port;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(proxy->port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const auto cookies_before = proxy->stats().rehandshake_cookies;
  ::sendto(spoofer, hello.data(), hello.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  ::close(spoofer);
  EXPECT_EQ(counted(&ProxyStats::rehandshake_cookies, cookies_before + 1), cookies_before + 1) << "the ClientHello was not answered with a cookie";
  auto still = device->cacerts();
  ASSERT_TRUE(still.ok()) << still.error().message;
  EXPECT_EQ(still->code.to_string(), "2.05");
  EXPECT_EQ(proxy->stats().sessions_replaced, 2u) << "a ClientHello without the cookie ended the session";
}

// A request's own block size overrides the connection's; a bad one is an error, not a crash.
TEST_F(CoapProxyTest, PerRequestBlockSize) {  // 9148-4.6-a
  start(config());
  auto connection = connect("device-factory");
  CoapRequest request;
  request.path = "/.well-known/est/crts";
  request.block_szx = 0;  // 16-byte Block2 blocks
  auto crts = connection.send(request);
  ASSERT_TRUE(crts.ok()) << crts.error().message;
  EXPECT_EQ(crts->code.to_string(), "2.05");
  EXPECT_TRUE(CertsOnly::from_der(crts->payload).ok());
  EXPECT_EQ(crts->block2_szx, 0u);  // the blocks' size is seen (FB-40), the body reassembled
  request.block_szx.reset();
  auto whole = connection.send(request);
  ASSERT_TRUE(whole.ok()) << whole.error().message;
  EXPECT_EQ(whole->payload, crts->payload);
  EXPECT_TRUE(!whole->block2_szx || *whole->block2_szx == 6u);
  request.block_szx = 7;
  auto bad = connection.send(request);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::invalid_input);
}

}  // namespace
}  // namespace estlab::coap_proxy

namespace estlab::coap_proxy {
namespace {

// The lab puts a scenario's values over its coap.properties in memory: the result is what loading
// a file with those lines would give, relative paths resolved against the named file's directory,
// and a bad value is refused naming the key.
TEST(CoapProxyConfigFromProperties, MatchesTheFileAndResolvesPathsAgainstIt) {
  const std::filesystem::path file = "/etc/estlab/coap.properties";
  auto properties = Properties::parse("tlsToken = tokens/dtls.p12\nofficer.token = /abs/officer.p12\n"
                                      "est.url = https://gw:8443/.well-known/est\nestlab.labels = twin-a\n",
                                      file.string());
  ASSERT_TRUE(properties.ok()) << properties.error().message;
  properties->set("estlab.duplicate-ca-subjects", "ignore-later");
  const auto config = CoapProxyConfig::from_properties(*properties, file);
  EXPECT_EQ(config.tls_token, std::filesystem::path("/etc/estlab/tokens/dtls.p12"));
  EXPECT_EQ(config.officer_token, std::filesystem::path("/abs/officer.p12"));
  EXPECT_EQ(config.duplicate_ca_subjects, DuplicateCaSubjects::ignore_later);
  EXPECT_EQ(config.labels, std::vector<std::string>{"twin-a"});
  EXPECT_TRUE(config.faults.empty()) << "faults never come from a file";
  properties->set("estlab.duplicate-ca-subjects", "sometimes");
  try {
    CoapProxyConfig::from_properties(*properties, file);
    ADD_FAILURE() << "a bad value was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("estlab.duplicate-ca-subjects"), std::string::npos) << e.what();
  }
}

TEST(ProxyFaults, EachHasAUniqueNameAndARequirement) {
  std::set<std::string_view> names;
  for (const auto& fault : all_proxy_faults()) {
    EXPECT_TRUE(names.insert(fault.name).second) << fault.name;
    EXPECT_FALSE(fault.requirement.empty()) << fault.name;
    EXPECT_EQ(parse_proxy_fault(fault.name), fault.fault);
    EXPECT_EQ(to_string(fault.fault), fault.name);
  }
  EXPECT_GE(names.size(), 8u);
  EXPECT_FALSE(parse_proxy_fault("no-such-fault"));
}

}  // namespace
}  // namespace estlab::coap_proxy
