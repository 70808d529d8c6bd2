// The gateway's HTTPS server on loopback, driven by core's HttpsConnection: TLS versions, client
// certificates, keep-alive, limits, deadlines, plain HTTP, transcripts, key log, shutdown.
#include "estlab/gateway/server.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <algorithm>
#include <atomic>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <sstream>
#include <thread>

#include "estlab/core/base64.hpp"
#include "estlab/core/certs_only.hpp"
#include "estlab/core/csr.hpp"
#include "estlab/core/est.hpp"
#include "estlab/core/https_client.hpp"
#include "lab_support.hpp"

namespace estlab::gateway {
namespace {

using namespace std::chrono_literals;
using test::TestLab;

class GatewayServerTest : public ::testing::Test {
 protected:
  // The server goes first: its sessions still log into `log` while they close.
  void TearDown() override { server.reset(); }

  GatewayConfig config(Profile profile = Profile::protocol_gateway) {
    GatewayConfig c = GatewayConfig::load(lab.est_properties(), profile);
    c.port = 0;
    return c;
  }

  void start(GatewayConfig c) {
    auto service = std::make_shared<EstService>(std::move(c), lab.open_ca());
    auto started = GatewayServer::start(service, 2, [this](const std::string& line) {
      std::lock_guard lock(log_mutex);
      log.push_back(line);
    });
    ASSERT_TRUE(started.ok()) << started.error().message;
    server = std::move(started).value();
  }

  HttpsClientOptions client(const std::string& identity = "", TlsVersion version = TlsVersion::tls1_3) {
    HttpsClientOptions o;
    o.host = "127.0.0.1";
    o.port = server->port();
    o.server_name = "localhost";
    o.trust_anchors = lab.trust_anchors();
    o.min_version = o.max_version = version;
    o.io_timeout = 5s;
    if (!identity.empty()) o.identity = lab.identity(identity);
    return o;
  }

  static HttpRequest enroll_request(const Csr& csr, const std::string& op = "simpleenroll") {
    HttpRequest r;
    r.method = "POST";
    r.target = "/.well-known/est/" + op;
    r.headers = {{"Content-Type", "application/pkcs10"}};
    r.body = encode_est_body(csr.der());
    return r;
  }

  static HttpRequest get(const std::string& op) {
    HttpRequest r;
    r.target = "/.well-known/est/" + op;
    return r;
  }

  Csr csr_for(const std::string& subject, const PrivateKey& key, std::optional<std::string> password = std::nullopt) {
    CsrBuilder builder;
    builder.subject(DistinguishedName::parse(subject).value());
    if (password) builder.challenge_password(*password);
    auto csr = builder.sign(key);
    EXPECT_TRUE(csr.ok());
    return std::move(csr).value();
  }

  std::string log_text() {
    std::lock_guard lock(log_mutex);
    std::string all;
    for (const auto& line : log) all += line + "\n";
    return all;
  }

  TestLab lab;
  std::unique_ptr<GatewayServer> server;
  std::mutex log_mutex;
  std::vector<std::string> log;
  PrivateKey key = PrivateKey::generate(KeyType::ec_p256).value();
};

TEST_F(GatewayServerTest, CacertsOverTls12AndTls13) {
  start(config());
  for (auto version : {TlsVersion::tls1_2, TlsVersion::tls1_3}) {
    auto connection = HttpsConnection::connect(client("", version));
    ASSERT_TRUE(connection.ok()) << connection.error().message;
    EXPECT_EQ(connection->tls().version, version);
    auto response = connection->send(get("cacerts"));
    ASSERT_TRUE(response.ok()) << response.error().message;
    EXPECT_EQ(response->status, 200);
    auto type = MediaType::parse(response->header("Content-Type").value_or(""));
    ASSERT_TRUE(type.ok());
    EXPECT_TRUE(media_type_matches(*type, media_types::certs_only)) << type->to_string();
    auto bag = CertsOnly::parse(as_bytes(response->body));
    ASSERT_TRUE(bag.ok()) << bag.error().message;
    std::vector<std::string> subjects;
    for (const auto& cert : bag->certificates()) subjects.push_back(cert.subject().to_string());
    EXPECT_NE(std::find(subjects.begin(), subjects.end(), "C=SE,O=estlab lab,CN=estlab Issuing CA"), subjects.end());
    EXPECT_NE(std::find(subjects.begin(), subjects.end(), "C=SE,O=estlab lab,CN=estlab Root CA"), subjects.end());
  }
}

TEST_F(GatewayServerTest, Tls11IsRefusedUnlessTheFaultAllowsIt) {
  start(config());
  auto refused = HttpsConnection::connect(client("", TlsVersion::tls1_1));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("TLS handshake"), std::string::npos) << refused.error().message;
  server->stop();

  GatewayConfig faulty = config();
  faulty.faults.insert(Fault::allow_tls1_1);
  start(faulty);
  auto accepted = HttpsConnection::connect(client("", TlsVersion::tls1_1));
  ASSERT_TRUE(accepted.ok()) << accepted.error().message;
  EXPECT_EQ(accepted->tls().version, TlsVersion::tls1_1);
}

TEST_F(GatewayServerTest, DeviceEnrollsWithItsClientCertificateAndGetsOnlyItsCertificate) {
  start(config());
  const auto device = lab.certificate("device-factory");
  auto connection = HttpsConnection::connect(client("device-factory"));
  ASSERT_TRUE(connection.ok()) << connection.error().message;
  auto response = connection->send(enroll_request(csr_for(device.subject().to_string(), key)));
  ASSERT_TRUE(response.ok()) << response.error().message;
  ASSERT_EQ(response->status, 200) << response->body;
  auto bag = CertsOnly::parse(as_bytes(response->body));
  ASSERT_TRUE(bag.ok());
  ASSERT_EQ(bag->certificates().size(), 1u);
  const auto& issued = bag->certificates().front();
  EXPECT_TRUE(issued.public_key() == key.public_key());
  EXPECT_EQ(issued.subject(), device.subject());
  EXPECT_EQ(issued.issuer().to_string(), "C=SE,O=estlab lab,CN=estlab Issuing CA");
  EXPECT_NE(log_text().find("op=simpleenroll"), std::string::npos);
  EXPECT_NE(log_text().find("status=200"), std::string::npos);
  EXPECT_NE(log_text().find("client=\"C=SE,O=estlab lab devices,CN=device-0001\""), std::string::npos) << log_text();
}

TEST_F(GatewayServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  start(config());
  auto connection = HttpsConnection::connect(client());
  ASSERT_TRUE(connection.ok());
  for (int i = 0; i < 3; ++i) {
    auto response = connection->send(get("cacerts"));
    ASSERT_TRUE(response.ok()) << response.error().message;
    EXPECT_EQ(response->status, 200);
  }
  EXPECT_EQ(server->stats().connections, 1u);
  EXPECT_EQ(server->stats().requests, 3u);
}

TEST_F(GatewayServerTest, OversizedBodyGets413AndOversizedHeader431) {
  GatewayConfig c = config();
  c.limits.max_body_bytes = 4096;
  c.limits.max_header_bytes = 2048;
  start(c);
  {
    auto connection = HttpsConnection::connect(client("device-factory"));
    ASSERT_TRUE(connection.ok());
    HttpRequest big = enroll_request(csr_for("CN=x", key));
    big.body = std::string(5000, 'A');
    auto response = connection->send(big);
    ASSERT_TRUE(response.ok()) << response.error().message;
    EXPECT_EQ(response->status, 413);
    EXPECT_NE(response->body.find("4096"), std::string::npos) << response->body;
  }
  {
    auto connection = HttpsConnection::connect(client());
    ASSERT_TRUE(connection.ok());
    HttpRequest request = get("cacerts");
    request.headers.emplace_back("X-Padding", std::string(3000, 'p'));
    auto response = connection->send(request);
    ASSERT_TRUE(response.ok()) << response.error().message;
    EXPECT_EQ(response->status, 431);
  }
}

TEST_F(GatewayServerTest, GarbageOverTlsGets400AndTheServerKeepsServing) {
  start(config());
  {
    auto connection = HttpsConnection::connect(client());
    ASSERT_TRUE(connection.ok());
    auto response = connection->send_raw("\x01\x02 NOT HTTP\r\n\r\n");
    ASSERT_TRUE(response.ok()) << response.error().message;
    EXPECT_EQ(response->status, 400);
  }
  auto again = https_request(client(), get("cacerts"));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->status, 200);
}

TEST_F(GatewayServerTest, PlainHttpIsToldToUseHttps) {
  start(config());
  HttpsClientOptions plain = client();
  plain.use_tls = false;
  auto response = https_request(plain, get("cacerts"));
  ASSERT_TRUE(response.ok()) << response.error().message;
  EXPECT_EQ(response->status, 400);
  EXPECT_NE(response->body.find("HTTPS"), std::string::npos);
  EXPECT_NE(log_text().find("rule=7030-3.3-a"), std::string::npos);
}

TEST_F(GatewayServerTest, IncompleteRequestIsClosedAtTheReadDeadline) {
  GatewayConfig c = config();
  c.timeouts.read = 1s;
  start(c);
  auto connection = HttpsConnection::connect(client());
  ASSERT_TRUE(connection.ok());
  const auto started = std::chrono::steady_clock::now();
  auto response = connection->send_raw("POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
  const auto waited = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(response.ok());
  EXPECT_NE(response.error().message.find("closed"), std::string::npos) << response.error().message;
  EXPECT_LT(waited, 4s);
  EXPECT_GE(waited, 900ms);
}

TEST_F(GatewayServerTest, StallFaultMakesTheClientDeadlineFire) {
  GatewayConfig c = config();
  c.faults.insert(Fault::stall_response);
  start(c);
  HttpsClientOptions o = client("device-factory");
  o.io_timeout = 700ms;
  auto connection = HttpsConnection::connect(o);
  ASSERT_TRUE(connection.ok());
  auto response = connection->send(enroll_request(csr_for(lab.certificate("device-factory").subject().to_string(), key)));
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.error().code, ErrorCode::timeout) << response.error().message;
}

TEST_F(GatewayServerTest, TlsUniqueLinkingUnderTls12AndExporterUnderTls13) {
  start(config(Profile::rfc7030));
  const auto subject = lab.certificate("device-factory").subject().to_string();
  for (auto version : {TlsVersion::tls1_2, TlsVersion::tls1_3}) {
    auto connection = HttpsConnection::connect(client("device-factory", version));
    ASSERT_TRUE(connection.ok());
    const auto& bindings = connection->tls().bindings;
    const Bytes binding = version == TlsVersion::tls1_2 ? bindings.tls_unique.value() : bindings.tls_exporter.value();
    EXPECT_EQ(binding.size(), version == TlsVersion::tls1_2 ? 12u : 32u);
    auto good = connection->send(enroll_request(csr_for(subject, key, base64_encode(binding))));
    ASSERT_TRUE(good.ok()) << good.error().message;
    EXPECT_EQ(good->status, 200) << to_string(version) << ": " << good->body;
    auto bad = connection->send(enroll_request(csr_for(subject, key, "AAAAAAAAAAAAAAAAAAAAAA==")));
    ASSERT_TRUE(bad.ok()) << bad.error().message;
    EXPECT_EQ(bad->status, 403) << to_string(version);
    EXPECT_NE(bad->body.find("7030-3.5-b"), std::string::npos) << bad->body;
  }
}

// A loopback TCP connection that sends `bytes` (maybe none) and then nothing: a client that is
// slow, or that never starts its TLS handshake.
class RawConnection {
 public:
  RawConnection(std::uint16_t port, const std::string& bytes = "") : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    if (connected_ && !bytes.empty()) connected_ = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  bool connected() const { return connected_; }
  // True once the server closed the connection (a read returns end of stream or a reset), within `wait`.
  bool closed_by_server(std::chrono::milliseconds wait) const {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) != 1) return false;
    char byte;
    return ::recv(fd_, &byte, 1, MSG_DONTWAIT) <= 0;
  }

 private:
  int fd_;
  bool connected_ = false;
};

// The connection pool (the CoAP proxy's upstream side) against the real gateway.
TEST_F(GatewayServerTest, APoolCarriesRequestsOnOneConnectionAndResumesTheSessionWhenTheServerEndsIt) {
  GatewayConfig c = config();
  c.limits.max_requests_per_connection = 3;  // the third answer says Connection: close
  start(c);
  HttpsConnectionPool pool(client("device-factory"), 4, 5s);
  for (int i = 0; i < 3; ++i) {
    auto answer = pool.send(get("cacerts"));
    ASSERT_TRUE(answer.response.ok()) << answer.response.error().message;
    EXPECT_EQ(answer.response->status, 200);
    EXPECT_EQ(answer.reused, i > 0) << "request " << i;
  }
  EXPECT_EQ(pool.connections_opened(), 1u);
  EXPECT_EQ(server->stats().connections, 1u);
  // The server closed the first connection after its third answer: the next request opens a
  // second one, resuming the session of the first (no certificate exchanged, no signature).
  auto after_close = pool.send(get("cacerts"));
  ASSERT_TRUE(after_close.response.ok()) << after_close.response.error().message;
  EXPECT_FALSE(after_close.reused);
  EXPECT_TRUE(after_close.tls.resumed);
  EXPECT_EQ(pool.connections_opened(), 2u);
  EXPECT_EQ(pool.resends(), 0u);
}

TEST_F(GatewayServerTest, APoolNeverUsesAConnectionTheServerClosedWhileItWasIdle) {
  GatewayConfig c = config();
  c.timeouts.read = 300ms;  // the gateway's keep-alive wait between requests
  start(c);
  HttpsConnectionPool pool(client(), 4, 60s);
  ASSERT_TRUE(pool.send(get("cacerts")).response.ok());
  // A second connection, idle from later on, tells when the gateway has closed the pool's.
  auto witness = HttpsConnection::connect(client());
  ASSERT_TRUE(witness.ok());
  ASSERT_TRUE(witness->send(get("cacerts")).ok());
  EXPECT_TRUE(witness->idle_and_open());
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (witness->idle_and_open() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
  ASSERT_FALSE(witness->idle_and_open()) << "the gateway kept an idle connection past its read deadline";
  auto answer = pool.send(get("cacerts"));
  ASSERT_TRUE(answer.response.ok()) << answer.response.error().message;
  EXPECT_FALSE(answer.reused);
  EXPECT_EQ(pool.resends(), 0u) << "the close was seen before the request was sent";
  EXPECT_EQ(pool.connections_opened(), 2u);
  EXPECT_EQ(server->stats().connections, 3u);
}

// A plain-HTTP server on loopback that follows a script per request: answer and keep the
// connection, close it without answering (a server closing an idle connection just as a request
// arrives), or hold the request without answering. Counts what it received.
class ScriptedHttpServer {
 public:
  enum class Act { answer, close_silently, hold };
  explicit ScriptedHttpServer(std::function<Act(int request_number)> script) : script_(std::move(script)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(listener_, 8) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0)
      throw std::runtime_error("cannot listen on loopback");
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedHttpServer() {
    stopping_ = true;
    thread_.join();
    ::close(listener_);
  }
  std::uint16_t port() const { return port_; }
  int requests() const { return requests_; }
  int connections() const { return connections_; }

 private:
  void serve() {
    std::vector<int> open;
    while (!stopping_) {
      std::vector<pollfd> fds{{listener_, POLLIN, 0}};
      for (int fd : open) fds.push_back({fd, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        open.push_back(::accept(listener_, nullptr, nullptr));
        ++connections_;
      }
      for (std::size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
        char buffer[4096];
        const ssize_t n = ::recv(fds[i].fd, buffer, sizeof buffer, 0);
        if (n <= 0 || std::string_view(buffer, static_cast<std::size_t>(n)).find("\r\n\r\n") == std::string_view::npos) {
          if (n <= 0) close_fd(open, fds[i].fd);
          continue;
        }
        const Act act = script_(++requests_);
        if (act == Act::answer) {
          const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
          ::send(fds[i].fd, response.data(), response.size(), MSG_NOSIGNAL);
        } else if (act == Act::close_silently) {
          close_fd(open, fds[i].fd);
        }
      }
    }
    for (int fd : open) ::close(fd);
  }
  static void close_fd(std::vector<int>& open, int fd) {
    ::close(fd);
    open.erase(std::remove(open.begin(), open.end(), fd), open.end());
  }

  std::function<Act(int)> script_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

HttpsClientOptions plain_client(std::uint16_t port) {
  HttpsClientOptions o;
  o.use_tls = false;
  o.port = port;
  o.io_timeout = 500ms;
  return o;
}

TEST(HttpsConnectionPoolTest, ARequestLostToACloseUnderItIsSentOnceMoreOnANewConnection) {
  ScriptedHttpServer server([](int n) { return n == 2 ? ScriptedHttpServer::Act::close_silently : ScriptedHttpServer::Act::answer; });
  HttpsConnectionPool pool(plain_client(server.port()), 4, 5s);
  ASSERT_TRUE(pool.send({}).response.ok());
  auto answer = pool.send({});  // the server closes the kept connection as this request arrives
  ASSERT_TRUE(answer.response.ok()) << answer.response.error().message;
  EXPECT_EQ(answer.response->body, "ok");
  EXPECT_FALSE(answer.reused);
  EXPECT_EQ(pool.resends(), 1u);
  EXPECT_EQ(server.requests(), 3);
  EXPECT_EQ(server.connections(), 2);
}

TEST(HttpsConnectionPoolTest, ARequestThatTimedOutIsNeverSentAgain) {
  ScriptedHttpServer server([](int n) { return n == 2 ? ScriptedHttpServer::Act::hold : ScriptedHttpServer::Act::answer; });
  HttpsConnectionPool pool(plain_client(server.port()), 4, 5s);
  ASSERT_TRUE(pool.send({}).response.ok());
  auto answer = pool.send({});  // the server may still be working on it: it must not get it twice
  ASSERT_FALSE(answer.response.ok());
  EXPECT_EQ(answer.response.error().code, ErrorCode::timeout) << answer.response.error().message;
  EXPECT_EQ(pool.resends(), 0u);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(server.requests(), 2);
}

TEST(HttpsConnectionPoolTest, AFreshConnectionThatFailsIsNotSentAgain) {
  ScriptedHttpServer server([](int) { return ScriptedHttpServer::Act::close_silently; });
  HttpsConnectionPool pool(plain_client(server.port()), 4, 5s);
  auto answer = pool.send({});
  ASSERT_FALSE(answer.response.ok());
  EXPECT_NE(answer.response.error().message.find("closed the connection without a response"), std::string::npos)
      << answer.response.error().message;
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(server.requests(), 1);
  EXPECT_EQ(pool.resends(), 0u);
}

TEST_F(GatewayServerTest, ConnectionsOverTheLimitAreRefusedWhileNoneIsIdle) {
  GatewayConfig c = config();
  c.limits.max_connections = 1;
  start(c);
  // Busy: it has begun a request (plain HTTP, so the test need not speak TLS by hand).
  RawConnection busy(server->port(), "GET /.well-known/est/cacerts HTTP/1.1\r\nHost: x\r\n");
  ASSERT_TRUE(busy.connected());
  std::this_thread::sleep_for(100ms);  // the gateway has read its first bytes
  HttpsClientOptions o = client();
  o.handshake_timeout = 2s;
  auto second = HttpsConnection::connect(o);
  EXPECT_FALSE(second.ok());
  EXPECT_EQ(server->stats().refused_connections, 1u);
  EXPECT_FALSE(busy.closed_by_server(0ms));
}

// 1,000 idle connections must not keep a device out: at the limit, the connection idle longest
// (a finished handshake and no request, or no handshake at all) is closed to make room.
TEST_F(GatewayServerTest, AnIdleConnectionIsClosedToMakeRoomAtTheLimit) {
  GatewayConfig c = config();
  c.limits.max_connections = 2;
  start(c);
  auto idle_tls = HttpsConnection::connect(client());
  ASSERT_TRUE(idle_tls.ok());
  std::this_thread::sleep_for(100ms);  // the gateway has seen its handshake end: it is idle first
  RawConnection silent(server->port());
  ASSERT_TRUE(silent.connected());
  std::this_thread::sleep_for(100ms);  // both wait for their peer now
  const auto subject = lab.certificate("device-factory").subject().to_string();
  auto device_connection = HttpsConnection::connect(client("device-factory"));
  ASSERT_TRUE(device_connection.ok()) << device_connection.error().message << "\n" << log_text();
  auto device = device_connection->send(enroll_request(csr_for(subject, key)));
  ASSERT_TRUE(device.ok()) << device.error().message << "\n" << log_text();
  EXPECT_EQ(device->status, 200);
  EXPECT_EQ(server->stats().refused_connections, 0u);
  // Each newcomer closed the connection idle longest. Which ones those were depends on when the
  // gateway saw each handshake end (under load the TLS one may finish after the device's answer),
  // so only this is asserted: nobody was refused, two idle connections were closed, and at least
  // one of them is one of the two that never sent a request.
  auto next = https_request(client("device-factory"), get("cacerts"));
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_EQ(server->stats().refused_connections, 0u);
  const bool silent_closed = silent.closed_by_server(2s);
  const bool tls_closed = !idle_tls->send(get("cacerts")).ok();
  EXPECT_TRUE(silent_closed || tls_closed) << log_text();
  const std::string text = log_text();
  std::size_t closes = 0;
  for (auto at = text.find("closed while idle"); at != std::string::npos; at = text.find("closed while idle", at + 1)) ++closes;
  EXPECT_EQ(closes, 2u) << text;
  EXPECT_NE(log_text().find("closed while idle: connection limit 2 reached"), std::string::npos) << log_text();
}

TEST_F(GatewayServerTest, APipelinedRequestBehindAnotherIsServedWithoutWaitingForMoreBytes) {
  start(config());
  auto connection = HttpsConnection::connect(client());
  ASSERT_TRUE(connection.ok());
  const std::string one = "GET /.well-known/est/cacerts HTTP/1.1\r\nHost: x\r\n\r\n";
  auto first = connection->send_raw(one + one);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->status, 200);
  auto second = connection->send_raw("");  // reads the answer to the pipelined request
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->status, 200);
}

TEST_F(GatewayServerTest, TranscriptRecordsEachExchangeWithDecodedParts) {
  GatewayConfig c = config();
  c.transcript_dir = lab.path("transcript");
  start(c);
  auto connection = HttpsConnection::connect(client("device-factory"));
  ASSERT_TRUE(connection.ok());
  ASSERT_TRUE(connection->send(get("cacerts")).ok());
  auto enrolled = connection->send(enroll_request(csr_for(lab.certificate("device-factory").subject().to_string(), key)));
  ASSERT_TRUE(enrolled.ok());
  ASSERT_EQ(enrolled->status, 200);
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(lab.path("transcript"))) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].filename().string(), "000001-cacerts.yaml");
  EXPECT_EQ(files[1].filename().string(), "000002-simpleenroll.yaml");
  std::ifstream in(files[1]);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("Certificate Request"), std::string::npos) << text.str();  // the CSR decoded
  EXPECT_NE(text.str().find("client_certificate"), std::string::npos);
  EXPECT_NE(text.str().find("BEGIN CERTIFICATE"), std::string::npos);
}

TEST_F(GatewayServerTest, KeyLogFileGetsTheSecretsOfEachHandshake) {
  GatewayConfig c = config();
  c.keylog_file = lab.path("keys.log");
  start(c);
  ASSERT_TRUE(https_request(client("", TlsVersion::tls1_3), get("cacerts")).ok());
  ASSERT_TRUE(https_request(client("", TlsVersion::tls1_2), get("cacerts")).ok());
  std::ifstream in(lab.path("keys.log"));
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("CLIENT_HANDSHAKE_TRAFFIC_SECRET"), std::string::npos);  // TLS 1.3
  EXPECT_NE(text.str().find("CLIENT_RANDOM"), std::string::npos);                     // TLS 1.2
}

TEST_F(GatewayServerTest, ClientRefusesAWrongNameOrAnUntrustedServer) {
  start(config());
  HttpsClientOptions wrong_name = client();
  wrong_name.server_name = "not-the-gateway.example";
  auto refused = HttpsConnection::connect(wrong_name);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::verify_failed);
  EXPECT_NE(refused.error().message.find("hostname mismatch"), std::string::npos) << refused.error().message;

  HttpsClientOptions untrusted = client();
  untrusted.trust_anchors = {lab.certificate("unknown-root-ca")};
  auto refused_again = HttpsConnection::connect(untrusted);
  ASSERT_FALSE(refused_again.ok());
  EXPECT_NE(refused_again.error().message.find("unable to get local issuer certificate"), std::string::npos)
      << refused_again.error().message;

  HttpsClientOptions by_address = client();
  by_address.server_name = "127.0.0.1";  // the certificate's iPAddress SAN
  EXPECT_TRUE(HttpsConnection::connect(by_address).ok());
}

TEST_F(GatewayServerTest, ConnectToAClosedPortFailsFastWithTheAddress) {
  start(config());
  HttpsClientOptions o = client();
  const auto port = server->port();
  server->stop();
  o.port = port;
  const auto started = std::chrono::steady_clock::now();
  auto refused = HttpsConnection::connect(o);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);  // refused, not a connect timeout
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << refused.error().message;
}

TEST_F(GatewayServerTest, StopEndsIdleConnectionsPromptly) {
  GatewayConfig c = config();
  c.timeouts.read = 60s;
  start(c);
  auto idle = HttpsConnection::connect(client());
  ASSERT_TRUE(idle.ok());
  const auto started = std::chrono::steady_clock::now();
  server->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  auto after = idle->send(get("cacerts"));
  EXPECT_FALSE(after.ok());
}

}  // namespace
}  // namespace estlab::gateway
