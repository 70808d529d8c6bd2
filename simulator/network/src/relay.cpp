#include "estlab/network/relay.hpp"

#include <algorithm>
#include <boost/asio.hpp>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "estlab/network/dtls_records.hpp"

namespace estlab::network {

namespace asio = boost::asio;
using udp = asio::ip::udp;

// ---- Settings ---------------------------------------------------------------------------------

namespace {

std::string percent(double p) {
  std::ostringstream out;
  out << std::round(p * 1000) / 10 << "%";
  return out.str();
}

const char* to_string(ClientHelloSplit split) {
  switch (split) {
    case ClientHelloSplit::none: return "none";
    case ClientHelloSplit::before_cookie: return "before-cookie";
    case ClientHelloSplit::after_cookie: return "after-cookie";
    case ClientHelloSplit::always: return "always";
  }
  return "none";
}

std::optional<double> parse_probability(const std::string& text) {
  std::string number = text;
  double scale = 1;
  if (!number.empty() && number.back() == '%') {
    number.pop_back();
    scale = 100;
  }
  double value = 0;
  const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (number.empty() || error != std::errc() || end != number.data() + number.size()) return std::nullopt;
  value /= scale;
  if (!(value >= 0 && value <= 1)) return std::nullopt;
  return value;
}

std::optional<std::chrono::milliseconds> parse_millis(const std::string& text) {
  std::string number = text;
  long long scale = 1;
  if (number.size() > 2 && number.ends_with("ms")) number.resize(number.size() - 2);
  else if (number.size() > 1 && number.back() == 's') number.pop_back(), scale = 1000;
  long long value = 0;
  const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (number.empty() || error != std::errc() || end != number.data() + number.size() || value < 0 || value > 60000 / scale)
    return std::nullopt;
  return std::chrono::milliseconds(value * scale);
}

}  // namespace

const std::vector<std::string>& impairment_keys() {
  static const std::vector<std::string> keys = {"loss", "duplicate", "reorder", "delay", "jitter", "mtu", "split-client-hello", "seed"};
  return keys;
}

bool Impairment::active() const {
  return loss > 0 || duplicate > 0 || reorder > 0 || delay.count() > 0 || jitter.count() > 0 || mtu > 0 ||
         split_client_hello != ClientHelloSplit::none || drop_fragmented_client_hello;
}

std::string Impairment::describe() const {
  std::string out;
  auto add = [&out](const std::string& part) { out += (out.empty() ? "" : ", ") + part; };
  if (loss > 0) add("loss " + percent(loss));
  if (duplicate > 0) add("duplicate " + percent(duplicate));
  if (reorder > 0) add("reorder " + percent(reorder));
  if (delay.count() > 0 || jitter.count() > 0)
    add("delay " + std::to_string(delay.count()) + " ms" + (jitter.count() > 0 ? " +- " + std::to_string(jitter.count()) + " ms" : ""));
  if (mtu > 0) add("mtu " + std::to_string(mtu));
  if (split_client_hello != ClientHelloSplit::none) add(std::string("ClientHello split in two (") + to_string(split_client_hello) + ")");
  if (drop_fragmented_client_hello) add("fragmented ClientHellos dropped");
  if (out.empty()) out = "no impairment";
  return out + " (seed " + std::to_string(seed) + ")";
}

Result<Impairment> parse_impairment(const std::vector<std::pair<std::string, std::string>>& settings) {
  Impairment impairment;
  for (const auto& setting : settings) {
    const std::string& key = setting.first;  // named, not bound: clang before 16 cannot capture a structured binding in a lambda
    const std::string& value = setting.second;
    auto bad = [&](const std::string& expected) {
      return make_error(ErrorCode::invalid_input, "network " + key + ": '" + value + "' is not " + expected);
    };
    if (key == "loss" || key == "duplicate" || key == "reorder") {
      auto p = parse_probability(value);
      if (!p) return bad("a probability (\"20%\" or \"0.2\", 0 to 100%)");
      (key == "loss" ? impairment.loss : key == "duplicate" ? impairment.duplicate : impairment.reorder) = *p;
    } else if (key == "delay" || key == "jitter") {
      auto ms = parse_millis(value);
      if (!ms) return bad("a time (\"30ms\", \"1s\"; at most 60 s)");
      (key == "delay" ? impairment.delay : impairment.jitter) = *ms;
    } else if (key == "mtu") {
      std::size_t mtu = 0;
      const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), mtu);
      // 68: the smallest IPv4 MTU (RFC 791); below it no path exists.
      if (value.empty() || error != std::errc() || end != value.data() + value.size() || mtu < 68 || mtu > 65535)
        return bad("an MTU in bytes (68 to 65535)");
      impairment.mtu = mtu;
    } else if (key == "split-client-hello") {
      if (value == "none") impairment.split_client_hello = ClientHelloSplit::none;
      else if (value == "before-cookie") impairment.split_client_hello = ClientHelloSplit::before_cookie;
      else if (value == "after-cookie") impairment.split_client_hello = ClientHelloSplit::after_cookie;
      else if (value == "always") impairment.split_client_hello = ClientHelloSplit::always;
      else return bad("one of none, before-cookie, after-cookie, always");
    } else if (key == "seed") {
      std::uint64_t seed = 0;
      const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seed);
      if (value.empty() || error != std::errc() || end != value.data() + value.size()) return bad("a whole number");
      impairment.seed = seed;
    } else {
      std::string known;
      for (const auto& k : impairment_keys()) known += (known.empty() ? "" : ", ") + k;
      return make_error(ErrorCode::invalid_input, "network: unknown setting '" + key + "' (known: " + known + ")");
    }
  }
  return impairment;
}

Result<Impairment> parse_impairment(const std::string& comma_separated) {
  std::vector<std::pair<std::string, std::string>> settings;
  std::stringstream in(comma_separated);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    const auto equals = item.find('=');
    if (equals == std::string::npos || equals == 0)
      return make_error(ErrorCode::invalid_input, "network: '" + item + "' is not KEY=VALUE (e.g. loss=20%,mtu=576,seed=7)");
    settings.emplace_back(item.substr(0, equals), item.substr(equals + 1));
  }
  return parse_impairment(settings);
}

std::string RelayStats::describe() const {
  std::string out = std::to_string(to_server) + " datagrams to the server, " + std::to_string(to_device) + " back";
  auto add = [&out](std::uint64_t n, const char* what) {
    if (n > 0) out += ", " + std::to_string(n) + " " + what;
  };
  add(lost, "lost");
  add(too_big, "dropped over the MTU");
  add(duplicated, "duplicated");
  add(reordered, "reordered");
  add(client_hellos_split, "ClientHellos split");
  add(fragmented_client_hellos_dropped, "fragmented ClientHellos dropped");
  add(refused_flows, "devices refused (flow limit)");
  return out;
}

// ---- The relay --------------------------------------------------------------------------------

namespace {

constexpr std::size_t kMaxFlows = 1024;
constexpr auto kFlowIdle = std::chrono::seconds(120);
// A reordered datagram waits this long for a successor (beyond any scheduling stall of a sender).
constexpr auto kHoldAtMost = std::chrono::milliseconds(200);
constexpr std::size_t kIpUdpHeaders = 28;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

struct ImpairedRelay::Impl {
  enum Direction { to_server = 0, to_device = 1 };

  // One device's path: its own upstream socket and, per direction, its own random stream, so
  // what happens to a device's n-th datagram depends on the seed, not on other devices.
  struct Flow {
    Flow(asio::io_context& io, std::uint64_t seed, std::uint64_t index) : upstream(io) {
      for (int d = 0; d < 2; ++d) random[d].seed(splitmix64(seed ^ splitmix64(index * 2 + static_cast<std::uint64_t>(d))));
      for (int d = 0; d < 2; ++d) hold_timer[d] = std::make_unique<asio::steady_timer>(io);
    }
    udp::endpoint device;
    udp::socket upstream;
    std::array<Bytes, 1> receive_buffer{Bytes(65536)};
    std::mt19937_64 random[2];
    std::optional<Bytes> held[2];  // a datagram held back to be overtaken (reorder)
    std::unique_ptr<asio::steady_timer> hold_timer[2];
    std::uint64_t epoch0_shift = 0;  // extra epoch-0 records this relay inserted (split ClientHellos)
    std::chrono::steady_clock::time_point last_seen;
    std::uint64_t index = 0;
  };

  Impairment impairment;
  asio::io_context io;
  udp::socket listener{io};
  udp::endpoint server;
  udp::endpoint sender;
  Bytes listen_buffer = Bytes(65536);
  std::map<udp::endpoint, std::shared_ptr<Flow>> flows;
  std::uint64_t flows_created = 0;
  std::uint16_t bound_port = 0;
  const bool trace_enabled = std::getenv("ESTLAB_NETWORK_TRACE") != nullptr;
  const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::thread thread;
  mutable std::mutex stats_mutex;
  RelayStats stats;

  void count(std::uint64_t RelayStats::*field, std::uint64_t n = 1) {
    std::lock_guard lock(stats_mutex);
    stats.*field += n;
  }

  double draw(Flow& flow, Direction d) { return std::uniform_real_distribution<double>(0, 1)(flow.random[d]); }

  void receive_from_devices() {
    listener.async_receive_from(asio::buffer(listen_buffer), sender, [this](boost::system::error_code ec, std::size_t size) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) from_device(Bytes(listen_buffer.begin(), listen_buffer.begin() + static_cast<std::ptrdiff_t>(size)));
      receive_from_devices();
    });
  }

  void receive_from_server(const std::shared_ptr<Flow>& flow) {
    flow->upstream.async_receive(asio::buffer(flow->receive_buffer[0]), [this, flow](boost::system::error_code ec, std::size_t size) {
      if (ec == asio::error::operation_aborted || !flow->upstream.is_open()) return;
      // ICMP port unreachable from a server not (yet) listening shows up here: keep reading.
      if (!ec) {
        count(&RelayStats::to_device);
        flow->last_seen = std::chrono::steady_clock::now();
        impair(flow, to_device, Bytes(flow->receive_buffer[0].begin(), flow->receive_buffer[0].begin() + static_cast<std::ptrdiff_t>(size)));
      }
      receive_from_server(flow);
    });
  }

  std::shared_ptr<Flow> flow_for(const udp::endpoint& device) {
    const auto now = std::chrono::steady_clock::now();
    if (auto it = flows.find(device); it != flows.end()) return it->second;
    for (auto it = flows.begin(); it != flows.end();) {
      if (now - it->second->last_seen > kFlowIdle) {
        boost::system::error_code ignored;
        it->second->upstream.close(ignored);
        it = flows.erase(it);
      } else {
        ++it;
      }
    }
    if (flows.size() >= kMaxFlows) {
      count(&RelayStats::refused_flows);
      return nullptr;
    }
    auto flow = std::make_shared<Flow>(io, impairment.seed, flows_created);
    flow->index = flows_created++;
    flow->device = device;
    boost::system::error_code ec;
    flow->upstream.open(server.protocol(), ec);
    if (!ec) flow->upstream.connect(server, ec);
    if (ec) return nullptr;
    flows.emplace(device, flow);
    count(&RelayStats::flows);
    receive_from_server(flow);
    return flow;
  }

  void from_device(Bytes datagram) {
    auto flow = flow_for(sender);
    if (!flow) return;
    flow->last_seen = std::chrono::steady_clock::now();
    count(&RelayStats::to_server);
    for (auto& piece : rewrite_handshake(*flow, std::move(datagram))) impair(flow, to_server, std::move(piece));
  }

  // FB-37 on the device's side: split or refuse ClientHellos; epoch-0 records after a split move
  // up by the records inserted, so the server's replay window sees one run of sequence numbers.
  std::vector<Bytes> rewrite_handshake(Flow& flow, Bytes datagram) {
    if (impairment.split_client_hello == ClientHelloSplit::none && !impairment.drop_fragmented_client_hello) return {std::move(datagram)};
    auto records = parse_dtls_records(datagram);
    if (!records) return {std::move(datagram)};
    if (impairment.drop_fragmented_client_hello) {
      for (const auto& record : *records)
        if (auto hello = client_hello_fragment(record); hello && !hello->whole()) {
          count(&RelayStats::fragmented_client_hellos_dropped);
          return {};
        }
    }
    if (impairment.split_client_hello == ClientHelloSplit::none) return {std::move(datagram)};
    std::vector<Bytes> out;
    Bytes rest;
    for (auto& record : *records) {
      if (record.epoch == 0) record.sequence += flow.epoch0_shift;
      auto hello = client_hello_fragment(record);
      const bool split = hello && hello->whole() && hello->has_cookie &&
                         (impairment.split_client_hello == ClientHelloSplit::always ||
                          (impairment.split_client_hello == ClientHelloSplit::before_cookie && !*hello->has_cookie) ||
                          (impairment.split_client_hello == ClientHelloSplit::after_cookie && *hello->has_cookie));
      if (!split) {
        const Bytes encoded = record.encode();
        rest.insert(rest.end(), encoded.begin(), encoded.end());
        continue;
      }
      if (!rest.empty()) out.push_back(std::exchange(rest, {}));
      for (const auto& part : split_client_hello(record)) out.push_back(part.encode());  // separate datagrams
      ++flow.epoch0_shift;
      count(&RelayStats::client_hellos_split);
    }
    if (!rest.empty()) out.push_back(std::move(rest));
    return out;
  }

  // ESTLAB_NETWORK_TRACE=1: one line per datagram on stderr (time, direction, size, record
  // type and epoch, fate), to see where a slow run spent its time.
  void trace(const Flow& flow, Direction d, const Bytes& datagram, const char* fate) const {
    if (!trace_enabled) return;
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    char line[160];
    std::snprintf(line, sizeof line, "relay %9.1f ms flow %llu %s %5zu bytes type %u epoch %u: %s\n", ms,
                  static_cast<unsigned long long>(flow.index), d == to_server ? "->" : "<-", datagram.size(),
                  datagram.empty() ? 0u : datagram[0], datagram.size() > 4 ? (datagram[3] << 8 | datagram[4]) : 0u, fate);
    std::fputs(line, stderr);
  }

  void impair(const std::shared_ptr<Flow>& flow, Direction d, Bytes datagram) {
    if (impairment.mtu > 0 && datagram.size() + kIpUdpHeaders > impairment.mtu) {
      count(&RelayStats::too_big);
      trace(*flow, d, datagram, "dropped over the MTU");
      return;
    }
    // Every draw is made for every datagram, so one setting does not shift the others' streams.
    const double lose = draw(*flow, d), twice = draw(*flow, d), hold = draw(*flow, d), wobble = draw(*flow, d);
    if (lose < impairment.loss) {
      count(&RelayStats::lost);
      if (d == to_device) count(&RelayStats::lost_to_device);
      trace(*flow, d, datagram, "lost");
      return;
    }
    trace(*flow, d, datagram, twice < impairment.duplicate ? "duplicated" : hold < impairment.reorder ? "passed (held back?)" : "passed");
    const int copies = twice < impairment.duplicate ? 2 : 1;
    if (copies == 2) count(&RelayStats::duplicated);
    auto delay = impairment.delay;
    if (impairment.jitter.count() > 0)
      delay += std::chrono::milliseconds(static_cast<long long>(std::lround((wobble * 2 - 1) * static_cast<double>(impairment.jitter.count()))));
    if (delay.count() < 0) delay = std::chrono::milliseconds(0);
    const bool held_back = hold < impairment.reorder && !flow->held[d];
    for (int i = 0; i < copies; ++i) {
      if (held_back && i == 0) {
        flow->held[d] = datagram;
        count(&RelayStats::reordered);
        flow->hold_timer[d]->expires_after(kHoldAtMost + delay);
        flow->hold_timer[d]->async_wait([this, weak = std::weak_ptr<Flow>(flow), d](boost::system::error_code ec) {
          if (auto alive = weak.lock(); alive && !ec) release_held(*alive, d);
        });
        continue;
      }
      deliver_after(flow, d, datagram, delay);
    }
  }

  void release_held(Flow& flow, Direction d) {
    if (!flow.held[d]) return;
    Bytes datagram = std::move(*flow.held[d]);
    flow.held[d].reset();
    send_now(flow, d, datagram);
  }

  // Sends, then lets a datagram held back for reordering follow the one that overtook it.
  void deliver(Flow& flow, Direction d, const Bytes& datagram) {
    send_now(flow, d, datagram);
    if (flow.held[d]) {
      flow.hold_timer[d]->cancel();
      release_held(flow, d);
    }
  }

  void deliver_after(const std::shared_ptr<Flow>& flow, Direction d, Bytes datagram, std::chrono::milliseconds delay) {
    if (delay.count() == 0) return deliver(*flow, d, datagram);
    auto timer = std::make_shared<asio::steady_timer>(io, delay);
    auto payload = std::make_shared<Bytes>(std::move(datagram));
    timer->async_wait([this, timer, payload, weak = std::weak_ptr<Flow>(flow), d](boost::system::error_code ec) {
      if (auto alive = weak.lock(); alive && !ec) deliver(*alive, d, *payload);
    });
  }

  void send_now(Flow& flow, Direction d, const Bytes& datagram) {
    boost::system::error_code ignored;  // a lost datagram is what this relay is for
    if (d == to_server) flow.upstream.send(asio::buffer(datagram), 0, ignored);
    else listener.send_to(asio::buffer(datagram), flow.device, 0, ignored);
  }
};

Result<std::unique_ptr<ImpairedRelay>> ImpairedRelay::start(const std::string& server_host, std::uint16_t server_port,
                                                           const Impairment& impairment, const std::string& listen_host,
                                                           std::uint16_t listen_port) {
  auto impl = std::make_unique<Impl>();
  impl->impairment = impairment;
  boost::system::error_code ec;
  udp::resolver resolver(impl->io);
  auto servers = resolver.resolve(server_host, std::to_string(server_port), ec);
  if (ec || servers.empty())
    return make_error(ErrorCode::io, "network relay: cannot resolve " + server_host + ": " + (ec ? ec.message() : "no address"));
  impl->server = *servers.begin();
  const auto listen_address = asio::ip::make_address(listen_host, ec);
  if (ec) return make_error(ErrorCode::invalid_input, "network relay: '" + listen_host + "' is not an IP address");
  impl->listener.open(listen_address.is_v6() ? udp::v6() : udp::v4(), ec);
  if (!ec) impl->listener.bind(udp::endpoint(listen_address, listen_port), ec);
  if (ec)
    return make_error(ErrorCode::io, "network relay: cannot listen on udp " + listen_host + ":" + std::to_string(listen_port) + ": " + ec.message());
  impl->bound_port = impl->listener.local_endpoint(ec).port();
  impl->receive_from_devices();
  Impl* self = impl.get();
  impl->thread = std::thread([self] {
    try {
      self->io.run();
    } catch (...) {
      // A handler threw (allocation): the relay stops relaying, which the scenario sees as loss.
    }
  });
  return std::unique_ptr<ImpairedRelay>(new ImpairedRelay(std::move(impl)));
}

ImpairedRelay::ImpairedRelay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ImpairedRelay::~ImpairedRelay() { stop(); }

std::uint16_t ImpairedRelay::port() const { return impl_->bound_port; }

const Impairment& ImpairedRelay::impairment() const { return impl_->impairment; }

RelayStats ImpairedRelay::stats() const {
  std::lock_guard lock(impl_->stats_mutex);
  return impl_->stats;
}

void ImpairedRelay::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->io.stop();
  impl_->thread.join();
  // Closing every socket and timer aborts what waits on them; running those handlers drops the
  // references they hold, so no flow outlives the relay's io_context.
  boost::system::error_code ignored;
  impl_->listener.close(ignored);
  for (auto& [device, flow] : impl_->flows) {
    flow->upstream.close(ignored);
    for (auto& timer : flow->hold_timer) timer->cancel();
  }
  impl_->io.restart();
  impl_->io.poll();
  impl_->flows.clear();
}

}  // namespace estlab::network
