// The impaired relay on loopback between a test "device" socket and a UDP server that records
// what it receives and echoes it: each impairment happens as set, the seed repeats a run, and
// ClientHellos are split or refused at the record layer.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "estlab/network/dtls_records.hpp"
#include "estlab/network/relay.hpp"

namespace estlab::network {
namespace {

// A bound UDP socket on 127.0.0.1 (closed with the object).
class UdpSocket {
 public:
  UdpSocket() : fd_(::socket(AF_INET, SOCK_DGRAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
  }
  ~UdpSocket() { ::close(fd_); }
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;
  std::uint16_t port() const {
    sockaddr_in address{};
    socklen_t size = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size);
    return ntohs(address.sin_port);
  }
  void send_to(std::uint16_t port, const Bytes& datagram) const {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    ::sendto(fd_, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&address), sizeof address);
  }
  // The next datagram within `wait`, and the port it came from.
  std::optional<std::pair<Bytes, std::uint16_t>> receive(std::chrono::milliseconds wait) const {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) != 1) return std::nullopt;
    Bytes buffer(65536);
    sockaddr_in from{};
    socklen_t size = sizeof from;
    const auto n = ::recvfrom(fd_, buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&from), &size);
    if (n < 0) return std::nullopt;
    buffer.resize(static_cast<std::size_t>(n));
    return std::make_pair(buffer, ntohs(from.sin_port));
  }

 private:
  int fd_;
};

// Records every datagram (in arrival order, with the relay port it came from) and echoes it.
class EchoServer {
 public:
  EchoServer() : thread_([this] { run(); }) {}
  ~EchoServer() {
    stop_ = true;
    thread_.join();
  }
  std::uint16_t port() const { return socket_.port(); }
  std::vector<std::pair<Bytes, std::uint16_t>> received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }

 private:
  void run() {
    while (!stop_) {
      auto got = socket_.receive(std::chrono::milliseconds(20));
      if (!got) continue;
      {
        std::lock_guard lock(mutex_);
        received_.push_back(*got);
      }
      socket_.send_to(got->second, got->first);
    }
  }
  UdpSocket socket_;
  mutable std::mutex mutex_;
  std::vector<std::pair<Bytes, std::uint16_t>> received_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

Bytes numbered(std::uint32_t n, std::size_t size = 32) {
  Bytes datagram(size, 0xab);
  for (int i = 0; i < 4; ++i) datagram[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n >> (24 - 8 * i));
  return datagram;
}
std::uint32_t number_of(const Bytes& datagram) {
  return (std::uint32_t{datagram[0]} << 24) | (std::uint32_t{datagram[1]} << 16) | (std::uint32_t{datagram[2]} << 8) | datagram[3];
}

// Sends `count` numbered datagrams through a relay with `impairment`, one every 200 us, and returns
// the numbers the server received, in order, once nothing more arrives.
std::vector<std::uint32_t> through(const Impairment& impairment, std::uint32_t count, RelayStats* stats = nullptr,
                                   std::vector<std::uint32_t>* echoed = nullptr) {
  EchoServer server;
  auto relay = ImpairedRelay::start("127.0.0.1", server.port(), impairment);
  EXPECT_TRUE(relay.ok()) << (relay.ok() ? "" : relay.error().message);
  if (!relay.ok()) return {};
  UdpSocket device;
  for (std::uint32_t i = 0; i < count; ++i) {
    device.send_to((*relay)->port(), numbered(i));
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  while (auto back = device.receive(std::chrono::milliseconds(300)))
    if (echoed) echoed->push_back(number_of(back->first));
  std::vector<std::uint32_t> numbers;
  for (const auto& [datagram, from] : server.received()) numbers.push_back(number_of(datagram));
  if (stats) *stats = (*relay)->stats();
  return numbers;
}

TEST(Impairment, ParsesEachSettingAndNamesTheBadOne) {
  auto parsed = parse_impairment("loss=20%,duplicate=0.05,reorder=10%,delay=30ms,jitter=1s,mtu=576,split-client-hello=before-cookie,seed=7");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_DOUBLE_EQ(parsed->loss, 0.2);
  EXPECT_DOUBLE_EQ(parsed->duplicate, 0.05);
  EXPECT_DOUBLE_EQ(parsed->reorder, 0.1);
  EXPECT_EQ(parsed->delay, std::chrono::milliseconds(30));
  EXPECT_EQ(parsed->jitter, std::chrono::milliseconds(1000));
  EXPECT_EQ(parsed->mtu, 576u);
  EXPECT_EQ(parsed->split_client_hello, ClientHelloSplit::before_cookie);
  EXPECT_EQ(parsed->seed, 7u);
  EXPECT_EQ(parsed->describe(), "loss 20%, duplicate 5%, reorder 10%, delay 30 ms +- 1000 ms, mtu 576, ClientHello split in two (before-cookie) (seed 7)");
  for (const auto& [text, named] : std::vector<std::pair<std::string, std::string>>{
           {"loss=120%", "network loss: '120%'"}, {"loss=abc", "network loss"}, {"mtu=40", "network mtu: '40'"},
           {"delay=5h", "network delay"}, {"split-client-hello=sometimes", "network split-client-hello"},
           {"los=20%", "unknown setting 'los'"}, {"loss", "is not KEY=VALUE"}, {"seed=-1", "network seed"}}) {
    auto bad = parse_impairment(text);
    ASSERT_FALSE(bad.ok()) << text;
    EXPECT_NE(bad.error().message.find(named), std::string::npos) << text << ": " << bad.error().message;
  }
}

TEST(ImpairedRelay, WithoutImpairmentEveryDatagramPassesBothWaysInOrder) {
  RelayStats stats;
  std::vector<std::uint32_t> echoed;
  const auto numbers = through(Impairment{}, 200, &stats, &echoed);
  ASSERT_EQ(numbers.size(), 200u);
  for (std::uint32_t i = 0; i < 200; ++i) EXPECT_EQ(numbers[i], i);
  EXPECT_EQ(echoed.size(), 200u);
  EXPECT_EQ(stats.to_server, 200u);
  EXPECT_EQ(stats.to_device, 200u);
  EXPECT_EQ(stats.flows, 1u);
}

TEST(ImpairedRelay, LossIsNearItsRateAndTheSeedRepeatsExactlyWhichDatagramsAreLost) {
  Impairment lossy;
  lossy.loss = 0.3;
  lossy.seed = 42;
  RelayStats stats;
  const auto first = through(lossy, 400, &stats);
  const auto again = through(lossy, 400);
  lossy.seed = 43;
  const auto other = through(lossy, 400);
  EXPECT_EQ(first, again) << "the same seed must lose the same datagrams";
  EXPECT_NE(first, other) << "another seed must lose others";
  // 400 draws at 30%: 120 expected, sd 9.2; the bounds are > 4 sd out.
  EXPECT_GT(first.size(), 400u - 160u);
  EXPECT_LT(first.size(), 400u - 80u);
  EXPECT_EQ(stats.to_device, first.size()) << "the server echoed what reached it, back through the relay";
  EXPECT_GT(stats.lost, 400u - first.size()) << "the echoes were lost at the same rate on the way back";
}

TEST(ImpairedRelay, TheMtuClampDropsDatagramsLargerThanThePathAndPassesTheRest) {
  EchoServer server;
  Impairment clamp;
  clamp.mtu = 576;  // 548 bytes of UDP payload
  auto relay = ImpairedRelay::start("127.0.0.1", server.port(), clamp);
  ASSERT_TRUE(relay.ok());
  UdpSocket device;
  device.send_to((*relay)->port(), numbered(1, 548));
  device.send_to((*relay)->port(), numbered(2, 549));
  device.send_to((*relay)->port(), numbered(3, 100));
  ASSERT_TRUE(device.receive(std::chrono::seconds(2)));
  ASSERT_TRUE(device.receive(std::chrono::seconds(2)));
  EXPECT_FALSE(device.receive(std::chrono::milliseconds(200)));
  const auto received = server.received();
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(number_of(received[0].first), 1u);
  EXPECT_EQ(number_of(received[1].first), 3u);
  EXPECT_EQ((*relay)->stats().too_big, 1u);
}

TEST(ImpairedRelay, DuplicationSendsCopiesAndReorderingLetsTheNextDatagramOvertake) {
  Impairment twice;
  twice.duplicate = 1;
  const auto doubled = through(twice, 20);
  ASSERT_EQ(doubled.size(), 40u);
  for (std::uint32_t i = 0; i < 20; ++i) EXPECT_EQ(std::count(doubled.begin(), doubled.end(), i), 2) << i;

  Impairment swapped;
  swapped.reorder = 1;  // every datagram not following a held one is held until the next passes
  RelayStats stats;
  const auto reordered = through(swapped, 20, &stats);
  ASSERT_EQ(reordered.size(), 20u);
  EXPECT_EQ(std::set<std::uint32_t>(reordered.begin(), reordered.end()).size(), 20u);
  EXPECT_EQ(reordered[0], 1u) << "datagram 0 was held, so 1 overtook it";
  EXPECT_EQ(reordered[1], 0u);
  EXPECT_GT(stats.reordered, 5u);
}

TEST(ImpairedRelay, EachDeviceGetsItsOwnUpstreamAddress) {
  EchoServer server;
  auto relay = ImpairedRelay::start("127.0.0.1", server.port(), Impairment{});
  ASSERT_TRUE(relay.ok());
  UdpSocket a, b;
  a.send_to((*relay)->port(), numbered(1));
  b.send_to((*relay)->port(), numbered(2));
  ASSERT_TRUE(a.receive(std::chrono::seconds(2)));
  auto back = b.receive(std::chrono::seconds(2));
  ASSERT_TRUE(back);
  EXPECT_EQ(number_of(back->first), 2u) << "each answer goes back to the device that sent the request";
  const auto received = server.received();
  ASSERT_EQ(received.size(), 2u);
  EXPECT_NE(received[0].second, received[1].second);
  EXPECT_EQ((*relay)->stats().flows, 2u);
}

// A DTLS 1.2 ClientHello record: handshake header, client_version, random, session id, cookie, and
// filler for the suites and extensions.
Bytes client_hello(std::uint64_t sequence, std::size_t cookie_length, std::size_t filler = 200) {
  Bytes body = {0xfe, 0xfd};
  body.insert(body.end(), 32, 0x11);  // random
  body.push_back(0);                  // session_id
  body.push_back(static_cast<std::uint8_t>(cookie_length));
  body.insert(body.end(), cookie_length, 0xc0);
  body.insert(body.end(), filler, 0x22);
  DtlsRecord record;
  record.content_type = 22;
  record.version = 0xfefd;
  record.sequence = sequence;
  const auto n = body.size();
  record.fragment = {1, static_cast<std::uint8_t>(n >> 16), static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n), 0, 0,
                     0, 0, 0, static_cast<std::uint8_t>(n >> 16), static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
  record.fragment.insert(record.fragment.end(), body.begin(), body.end());
  return record.encode();
}

TEST(DtlsRecords, AClientHelloSplitsIntoTwoFragmentsThatReassembleToIt) {
  const Bytes datagram = client_hello(5, 20);
  auto records = parse_dtls_records(datagram);
  ASSERT_TRUE(records);
  ASSERT_EQ(records->size(), 1u);
  auto hello = client_hello_fragment(records->front());
  ASSERT_TRUE(hello);
  EXPECT_TRUE(hello->whole());
  EXPECT_EQ(hello->has_cookie, true);
  EXPECT_EQ(client_hello_fragment(parse_dtls_records(client_hello(0, 0))->front())->has_cookie, false);

  const auto parts = split_client_hello(records->front());
  ASSERT_EQ(parts.size(), 2u);
  Bytes joined;
  std::uint32_t expected_offset = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    auto part = client_hello_fragment(parts[i]);
    ASSERT_TRUE(part);
    EXPECT_FALSE(part->whole());
    EXPECT_EQ(part->message_length, hello->message_length);
    EXPECT_EQ(part->fragment_offset, expected_offset);
    expected_offset += part->fragment_length;
    EXPECT_EQ(parts[i].sequence, 5u + i);
    joined.insert(joined.end(), parts[i].fragment.begin() + 12, parts[i].fragment.end());
  }
  EXPECT_EQ(expected_offset, hello->message_length);
  EXPECT_EQ(joined, Bytes(records->front().fragment.begin() + 12, records->front().fragment.end()));
  // Not records at all: left alone.
  EXPECT_FALSE(parse_dtls_records(numbered(1)));
  EXPECT_FALSE(parse_dtls_records(Bytes(datagram.begin(), datagram.end() - 1)));
}

TEST(ImpairedRelay, SplitsTheClientHellosItIsToldToAndShiftsLaterEpochZeroRecords) {
  EchoServer server;
  Impairment split;
  split.split_client_hello = ClientHelloSplit::after_cookie;
  auto relay = ImpairedRelay::start("127.0.0.1", server.port(), split);
  ASSERT_TRUE(relay.ok());
  UdpSocket device;
  device.send_to((*relay)->port(), client_hello(0, 0));   // first flight: passes whole
  device.send_to((*relay)->port(), client_hello(1, 20));  // with the cookie: split in two
  device.send_to((*relay)->port(), client_hello(2, 20));  // the next epoch-0 record moves up by one...
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(device.receive(std::chrono::seconds(2))) << i;
  const auto received = server.received();
  ASSERT_EQ(received.size(), 5u);
  std::vector<std::uint64_t> sequences;
  for (const auto& [datagram, from] : received) sequences.push_back(parse_dtls_records(datagram)->front().sequence);
  EXPECT_EQ(sequences, (std::vector<std::uint64_t>{0, 1, 2, 3, 4})) << "...and is split too, so sequence numbers stay in one run";
  EXPECT_TRUE(client_hello_fragment(parse_dtls_records(received[0].first)->front())->whole());
  EXPECT_FALSE(client_hello_fragment(parse_dtls_records(received[1].first)->front())->whole());
  EXPECT_EQ((*relay)->stats().client_hellos_split, 2u);
}

TEST(ImpairedRelay, TheFb37BugDropsFragmentedClientHellosOnly) {
  EchoServer server;
  Impairment bug;
  bug.drop_fragmented_client_hello = true;
  auto relay = ImpairedRelay::start("127.0.0.1", server.port(), bug);
  ASSERT_TRUE(relay.ok());
  UdpSocket device;
  const auto whole = client_hello(0, 0);
  const auto parts = split_client_hello(parse_dtls_records(client_hello(1, 0))->front());
  device.send_to((*relay)->port(), parts[0].encode());
  device.send_to((*relay)->port(), parts[1].encode());
  device.send_to((*relay)->port(), whole);
  device.send_to((*relay)->port(), numbered(9));  // not DTLS: passes
  ASSERT_TRUE(device.receive(std::chrono::seconds(2)));
  ASSERT_TRUE(device.receive(std::chrono::seconds(2)));
  EXPECT_FALSE(device.receive(std::chrono::milliseconds(200)));
  ASSERT_EQ(server.received().size(), 2u);
  EXPECT_EQ(server.received()[0].first, whole);
  EXPECT_EQ((*relay)->stats().fragmented_client_hellos_dropped, 2u);
}

TEST(ImpairedRelay, StartErrorsNameWhatIsWrong) {
  auto bad_listen = ImpairedRelay::start("127.0.0.1", 9, Impairment{}, "not-an-address");
  ASSERT_FALSE(bad_listen.ok());
  EXPECT_NE(bad_listen.error().message.find("'not-an-address' is not an IP address"), std::string::npos) << bad_listen.error().message;
  UdpSocket taken;
  auto in_use = ImpairedRelay::start("127.0.0.1", 9, Impairment{}, "127.0.0.1", taken.port());
  ASSERT_FALSE(in_use.ok());
  EXPECT_NE(in_use.error().message.find("cannot listen on udp 127.0.0.1:" + std::to_string(taken.port())), std::string::npos);
}

}  // namespace
}  // namespace estlab::network
