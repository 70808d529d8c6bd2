#include "estlab/fleet/fleet.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>

#include "estlab/core/async_coaps.hpp"
#include "estlab/core/async_https.hpp"
#include "estlab/core/certs_only.hpp"
#include "estlab/core/csr.hpp"
#include "estlab/core/est.hpp"
#include "estlab/core/name.hpp"
#include "device_support.hpp"

namespace estlab::fleet {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

namespace {

struct BehaviourName {
  Behaviour behaviour;
  std::string_view name;
};
constexpr BehaviourName kBehaviours[] = {{Behaviour::enroll, "enroll"},   {Behaviour::reenroll, "reenroll"},
                                         {Behaviour::basic, "basic"},     {Behaviour::revoked, "revoked"},
                                         {Behaviour::no_eku, "no-eku"},   {Behaviour::serverkeygen, "serverkeygen"},
                                         {Behaviour::approval, "approval"}};

// The fixture role each behaviour connects as ("" = no client certificate).
std::string role_of(Behaviour b) {
  switch (b) {
    case Behaviour::enroll:
    case Behaviour::reenroll:
    case Behaviour::serverkeygen:
    case Behaviour::approval: return "device-factory";
    case Behaviour::revoked: return "device-revoked";
    case Behaviour::no_eku: return "device-no-eku";
    case Behaviour::basic: return "";
  }
  return "";
}

double seconds_since(SteadyClock::time_point t) { return std::chrono::duration<double>(SteadyClock::now() - t).count(); }

}  // namespace

std::string_view to_string(Behaviour behaviour) {
  for (const auto& b : kBehaviours)
    if (b.behaviour == behaviour) return b.name;
  return "?";
}

std::string_view to_string(Transport transport) { return transport == Transport::coaps ? "coaps" : "https"; }

const std::vector<Behaviour>& all_behaviours() {
  static const std::vector<Behaviour> all = [] {
    std::vector<Behaviour> out;
    for (const auto& b : kBehaviours) out.push_back(b.behaviour);
    return out;
  }();
  return all;
}

Result<BehaviourMix> BehaviourMix::parse(std::string_view text) {
  BehaviourMix mix;
  std::string names;
  for (const auto& b : kBehaviours) names += (names.empty() ? "" : ", ") + std::string(b.name);
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    const std::string_view part = text.substr(pos, comma - pos);
    pos = comma + 1;
    if (part.empty()) return make_error(ErrorCode::invalid_input, "empty entry in the mix '" + std::string(text) + "' (use NAME=WEIGHT,...)");
    const std::size_t eq = part.find('=');
    const std::string_view name = part.substr(0, eq);
    unsigned weight = 1;
    if (eq != std::string_view::npos) {
      const std::string digits(part.substr(eq + 1));
      if (digits.empty() || digits.size() > 6 || !std::all_of(digits.begin(), digits.end(), ::isdigit))
        return make_error(ErrorCode::invalid_input, "weight of '" + std::string(name) + "' must be a whole number, not '" + digits + "'");
      weight = static_cast<unsigned>(std::stoul(digits));
    }
    const auto* found = std::find_if(std::begin(kBehaviours), std::end(kBehaviours), [&](const auto& b) { return b.name == name; });
    if (found == std::end(kBehaviours))
      return make_error(ErrorCode::invalid_input, "unknown behaviour '" + std::string(name) + "' (known: " + names + ")");
    if (std::any_of(mix.weights.begin(), mix.weights.end(), [&](const auto& w) { return w.first == found->behaviour; }))
      return make_error(ErrorCode::invalid_input, "behaviour '" + std::string(name) + "' appears twice in the mix");
    if (weight > 0) mix.weights.emplace_back(found->behaviour, weight);
    if (comma == text.size()) break;
  }
  if (mix.weights.empty()) return make_error(ErrorCode::invalid_input, "the mix '" + std::string(text) + "' gives every behaviour weight 0");
  return mix;
}

Behaviour BehaviourMix::pick(std::uint64_t device) const {
  // Smooth weighted round robin over one cycle of sum(weights) devices: every prefix of the fleet
  // has the mix's proportions (to within one device per behaviour).
  const std::uint64_t total = std::accumulate(weights.begin(), weights.end(), std::uint64_t{0}, [](auto s, const auto& w) { return s + w.second; });
  const std::uint64_t slot = device % total;
  // Behaviour b owns the slots k where floor((k+1)*w_b/total) > floor(k*w_b/total), resolved in order.
  std::vector<std::int64_t> current(weights.size(), 0);
  std::size_t chosen = 0;
  for (std::uint64_t k = 0; k <= slot; ++k) {
    for (std::size_t i = 0; i < weights.size(); ++i) current[i] += weights[i].second;
    chosen = static_cast<std::size_t>(std::max_element(current.begin(), current.end()) - current.begin());
    current[chosen] -= static_cast<std::int64_t>(total);
  }
  return weights[chosen].first;
}

std::string BehaviourMix::to_string() const {
  std::string out;
  for (const auto& [b, w] : weights) out += (out.empty() ? "" : ",") + std::string(fleet::to_string(b)) + "=" + std::to_string(w);
  return out;
}

Result<std::pair<std::uint64_t, std::uint64_t>> parse_shard(std::string_view text) {
  const auto slash = text.find('/');
  auto number = [](std::string_view digits) -> std::optional<std::uint64_t> {
    if (digits.empty() || digits.size() > 9 || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return std::nullopt;
    return std::stoull(std::string(digits));
  };
  const auto index = slash == std::string_view::npos ? std::nullopt : number(text.substr(0, slash));
  const auto count = slash == std::string_view::npos ? std::nullopt : number(text.substr(slash + 1));
  if (!index || !count || *count == 0 || *index >= *count)
    return make_error(ErrorCode::invalid_input, "shard '" + std::string(text) + "' is not I/N with 0 <= I < N (e.g. 0/4)");
  return std::make_pair(*index, *count);
}

LatencySummary summarize(std::vector<double> latencies_ms) {
  LatencySummary s;
  s.count = latencies_ms.size();
  if (latencies_ms.empty()) return s;
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto at = [&](double q) {
    const std::size_t index = static_cast<std::size_t>(std::ceil(q * static_cast<double>(latencies_ms.size()))) ;
    return latencies_ms[std::min(latencies_ms.size() - 1, index == 0 ? 0 : index - 1)];
  };
  s.p50 = at(0.50);
  s.p95 = at(0.95);
  s.p99 = at(0.99);
  s.max = latencies_ms.back();
  s.mean = std::accumulate(latencies_ms.begin(), latencies_ms.end(), 0.0) / static_cast<double>(latencies_ms.size());
  return s;
}

std::uint64_t FleetReport::errors() const {
  return static_cast<std::uint64_t>(std::count_if(exchanges.begin(), exchanges.end(), [](const auto& e) { return e.status == 0; }));
}

double FleetReport::exchanges_per_second() const { return wall_s > 0 ? static_cast<double>(exchanges.size()) / wall_s : 0; }

std::map<std::string, std::map<std::string, std::uint64_t>> FleetReport::outcomes() const {
  std::map<std::string, std::map<std::string, std::uint64_t>> out;
  for (const auto& e : exchanges)
    ++out[std::string(to_string(e.behaviour)) + " " + e.operation][e.status == 0 ? "error" : std::to_string(e.status)];
  return out;
}

std::map<std::string, std::uint64_t> FleetReport::errors_by_message() const {
  std::map<std::string, std::uint64_t> out;
  for (const auto& e : exchanges)
    if (e.status == 0) ++out[e.error];
  return out;
}

LatencySummary FleetReport::latency() const {
  std::vector<double> ms;
  ms.reserve(exchanges.size());
  for (const auto& e : exchanges)
    if (e.status != 0) ms.push_back(e.latency_ms);
  return summarize(std::move(ms));
}

namespace {
// The answer that ends a device's wait with its certificate: 2xx, but not 202 (still waiting).
bool approved_after_waiting(const ExchangeRecord& e) { return e.polls > 0 && e.status >= 200 && e.status < 300 && e.status != 202; }
}  // namespace

LatencySummary FleetReport::time_to_approval() const {
  std::vector<double> ms;
  for (const auto& e : exchanges)
    if (approved_after_waiting(e)) ms.push_back(e.waited_ms);
  return summarize(std::move(ms));
}

std::uint64_t FleetReport::approval_polls() const {
  std::uint64_t polls = 0;
  for (const auto& e : exchanges)
    if (approved_after_waiting(e)) polls += static_cast<std::uint64_t>(e.polls);
  return polls;
}

std::vector<std::uint64_t> FleetReport::throughput_per_second() const {
  std::vector<std::uint64_t> out(static_cast<std::size_t>(std::ceil(wall_s)) + 1, 0);
  for (const auto& e : exchanges) {
    const auto second = static_cast<std::size_t>(std::max(0.0, e.finished_at_s));
    if (second < out.size()) ++out[second];
  }
  while (out.size() > 1 && out.back() == 0) out.pop_back();
  return out;
}

namespace {

class Engine;

// A device's answer, whatever the transport: a status (CoAP codes as 100*class+detail), the wait a
// waiting answer asks for, and the body (certs-only, binary or base64).
struct Answer {
  int status = 0;
  bool waiting = false;  // 202 (RFC 7030 4.2.3) or 5.03 (RFC 9148 4.7)
  int wait_s = 1;
  Bytes body;
};

// One device: its key, its subject, its behaviour's exchanges, on one event loop.
class Device : public std::enable_shared_from_this<Device> {
 public:
  Device(Engine& engine, asio::io_context& io, std::size_t loop, std::uint64_t number, Behaviour behaviour)
      : engine_(engine), io_(io), loop_(loop), number_(number), behaviour_(behaviour), poll_timer_(io) {}
  void start();

 private:
  void send(const std::string& operation);
  void on_answer(const std::string& operation, SteadyClock::time_point sent, Result<Answer> answer);
  void done();

  Engine& engine_;
  asio::io_context& io_;
  std::size_t loop_;
  std::uint64_t number_;
  Behaviour behaviour_;
  asio::steady_timer poll_timer_;
  int polls_ = 0;
  SteadyClock::time_point first_sent_;
  std::optional<PrivateKey> key_;
  Bytes csr_der_;     // coaps sends it binary (RFC 9148 4.3)
  std::string body_;  // the CSR as an EST body, the same on every poll (a retry is the same request)
  std::shared_ptr<AsyncTlsClientContext> context_;
  std::optional<TlsIdentity> identity_;  // coaps: the identity of the DTLS session
  std::optional<std::pair<std::string, std::string>> basic_;
};

// A gateway the devices talk to: the main target, or the one with manual approval.
struct Endpoint {
  const conformance::Target* target = nullptr;
  AsyncExchangeTarget exchange;
  std::map<std::string, std::shared_ptr<AsyncTlsClientContext>> contexts;  // role -> TLS context
  std::vector<std::unique_ptr<AsyncCoapsClient>> coaps;                    // one per event loop
};

class Engine {
 public:
  Engine(const conformance::Target& target, const conformance::Target* approval_target, const FleetOptions& options) : options_(options) {
    main_.target = &target;
    approval_.target = approval_target ? approval_target : &target;
    for (Endpoint* endpoint : {&main_, &approval_}) {
      const auto& t = *endpoint->target;
      asio::io_context resolver_io;
      asio::ip::tcp::resolver resolver(resolver_io);
      boost::system::error_code ec;
      auto endpoints = resolver.resolve(t.host, std::to_string(t.port), ec);
      if (ec || endpoints.empty()) throw ConfigError("fleet: cannot resolve " + t.host + ": " + ec.message());
      endpoint->exchange.endpoint = endpoints.begin()->endpoint();
      endpoint->exchange.server_name = t.server_name.empty() ? t.host : t.server_name;
      endpoint->exchange.connect_timeout = endpoint->exchange.handshake_timeout = endpoint->exchange.io_timeout = options.timeout;
      if (options.transport == Transport::coaps && t.coaps_port == 0)
        throw ConfigError("fleet: --transport coaps needs EST-coaps on " + t.name + " (coaps_port), which it lacks");
      endpoint->contexts[""] = context_for(t, std::nullopt);
    }
    for (const auto& [b, w] : options.mix.weights) {
      const std::string role = role_of(b);
      const auto& t = *endpoint(b).target;
      if (b == Behaviour::basic) {
        if (options.transport == Transport::coaps)
          throw ConfigError("fleet: behaviour 'basic' has no EST-coaps form (RFC 9148 devices authenticate with certificates)");
        if (!t.credentials.count("preregistered"))
          throw ConfigError("fleet: behaviour 'basic' needs the target's preregistered Basic credential (credentials: preregistered)");
      } else if (!endpoint(b).contexts.count(role)) {
        auto identity = t.identities.find(role);
        if (identity == t.identities.end())
          throw ConfigError("fleet: behaviour '" + std::string(to_string(b)) + "' needs the role '" + role + "', which " + t.name + " lacks");
        endpoint(b).contexts[role] = context_for(t, identity->second);
      }
    }
  }

  std::shared_ptr<AsyncTlsClientContext> context_for(const conformance::Target& t, const std::optional<TlsIdentity>& identity) const {
    auto context = AsyncTlsClientContext::make(t.trust_anchors, identity);
    if (!context.ok()) throw ConfigError("fleet: TLS context: " + context.error().message);
    return *context;
  }

  FleetReport run(const std::function<void(const Progress&)>& on_progress) {
    const std::size_t threads = std::max<std::size_t>(1, options_.threads);
    for (std::size_t i = 0; i < threads; ++i) ios_.push_back(std::make_unique<asio::io_context>(1));
    if (options_.transport == Transport::coaps) {
      // One libcoap context per event loop, with every session of that loop's devices.
      std::map<std::pair<std::string, std::uint16_t>, std::uint16_t> relay_ports;  // one impaired path per target
      for (Endpoint* endpoint : {&main_, &approval_}) {
        AsyncCoapsOptions o;
        o.host = endpoint->target->host;
        o.port = endpoint->target->coaps_port;
        if (options_.network) {
          auto& relay_port = relay_ports[{o.host, o.port}];
          if (relay_port == 0) {
            auto relay = network::ImpairedRelay::start(o.host, o.port, *options_.network);
            if (!relay.ok()) throw ConfigError("fleet: --network: " + relay.error().message);
            relay_port = (*relay)->port();
            relays_.push_back(std::move(relay).value());
          }
          o.host = "127.0.0.1";
          o.port = relay_port;
        }
        o.trust_anchors = endpoint->target->trust_anchors;
        o.server_name = endpoint->exchange.server_name;
        o.timeout = options_.timeout;
        for (auto& io : ios_) {
          auto client = AsyncCoapsClient::make(*io, o);
          if (!client.ok()) throw ConfigError("fleet: coaps client: " + client.error().message);
          endpoint->coaps.push_back(std::move(client).value());
        }
      }
    }
    started_at_ = SteadyClock::now();
    if (options_.rate > 0) {
      for (std::size_t i = 0; i < threads; ++i) arm_arrivals(i, SteadyClock::now());
    } else {
      for (std::size_t i = 0; i < std::max<std::size_t>(1, options_.concurrency); ++i) {
        const std::size_t loop = i % threads;
        asio::post(*ios_[loop], [this, loop] { start_next(loop); });
      }
    }
    std::atomic<bool> finished{false};
    std::thread monitor;
    if (on_progress) {
      monitor = std::thread([&] {
        std::unique_lock lock(monitor_mutex_);
        while (!finished) {
          monitor_cv_.wait_for(lock, std::chrono::milliseconds(250));
          on_progress(progress());
        }
      });
    }
    std::vector<std::thread> loops;
    for (std::size_t i = 1; i < threads; ++i) loops.emplace_back([this, i] { ios_[i]->run(); });
    ios_[0]->run();
    for (auto& t : loops) t.join();
    {
      std::lock_guard lock(monitor_mutex_);
      finished = true;
    }
    monitor_cv_.notify_all();
    if (monitor.joinable()) monitor.join();
    if (on_progress) on_progress(progress());
    // libcoap contexts before the loops they were made for.
    main_.coaps.clear();
    approval_.coaps.clear();

    FleetReport report;
    report.target = main_.target->name;
    report.profile = main_.target->profile;
    report.options = options_;
    report.devices = started_.load();
    for (const auto& relay : relays_) {
      relay->stop();
      if (relay->stats().flows == 0) continue;  // the approval target's, when no device used it
      report.network += (report.network.empty() ? "" : "; ") + relay->impairment().describe() + ": " + relay->stats().describe();
    }
    report.wall_s = seconds_since(started_at_);
    report.exchanges = std::move(records_);
    report.arrivals_delayed = delayed_.load();
    return report;
  }

  // Closed loop: a finished device makes room for the next.
  void start_next(std::size_t loop) {
    const auto number = claim();
    if (!number) return;
    in_flight_++;
    std::make_shared<Device>(*this, *ios_[loop], loop, *number, options_.mix.pick(*number))->start();
  }

  void device_done(std::size_t loop) {
    in_flight_--;
    finished_++;
    if (options_.rate <= 0) start_next(loop);
  }

  void record(ExchangeRecord r) {
    r.finished_at_s = seconds_since(started_at_);
    if (r.status == 0) errors_++;
    std::lock_guard lock(records_mutex_);
    records_.push_back(std::move(r));
  }

  const FleetOptions& options() const { return options_; }
  Endpoint& endpoint(Behaviour b) { return b == Behaviour::approval ? approval_ : main_; }

 private:
  // The next device number of this shard (n % shard_count == shard_index).
  std::optional<std::uint64_t> claim() {
    const std::uint64_t stride = std::max<std::uint64_t>(1, options_.shard_count);
    if (options_.duration.count() > 0) {
      if (SteadyClock::now() - started_at_ >= options_.duration) return std::nullopt;
      return started_++ * stride + options_.shard_index;
    }
    auto k = started_.load();
    while (k * stride + options_.shard_index < options_.devices)
      if (started_.compare_exchange_weak(k, k + 1)) return k * stride + options_.shard_index;
    return std::nullopt;
  }

  // Open loop: each event loop starts its share of the arrivals on a schedule, whatever is in flight
  // (up to max_in_flight, beyond which arrivals wait and are counted).
  void arm_arrivals(std::size_t loop, SteadyClock::time_point due) {
    auto& io = *ios_[loop];
    auto timer = std::make_shared<asio::steady_timer>(io, due);
    const auto interval = std::chrono::duration_cast<SteadyClock::duration>(
        std::chrono::duration<double>(static_cast<double>(ios_.size()) / options_.rate));
    timer->async_wait([this, timer, loop, due, interval, &io](boost::system::error_code) {
      if (in_flight_.load() >= options_.max_in_flight) {
        delayed_++;
        return arm_arrivals(loop, SteadyClock::now() + std::chrono::milliseconds(1));
      }
      const auto number = claim();
      if (!number) return;
      in_flight_++;
      std::make_shared<Device>(*this, io, loop, *number, options_.mix.pick(*number))->start();
      arm_arrivals(loop, due + interval);
    });
  }

  Progress progress() const {
    Progress p;
    p.started = started_.load();
    p.finished = finished_.load();
    const std::uint64_t stride = std::max<std::uint64_t>(1, options_.shard_count);
    p.target = options_.duration.count() > 0 ? 0 : (options_.devices + stride - 1 - options_.shard_index) / stride;
    p.errors = errors_.load();
    p.elapsed_s = seconds_since(started_at_);
    return p;
  }

  FleetOptions options_;
  std::vector<std::unique_ptr<network::ImpairedRelay>> relays_;  // --network, one per distinct target
  std::vector<std::unique_ptr<asio::io_context>> ios_;
  Endpoint main_, approval_;  // after the loops: their coaps clients go first
  SteadyClock::time_point started_at_;
  std::atomic<std::uint64_t> started_{0}, finished_{0}, errors_{0}, delayed_{0};
  std::atomic<std::size_t> in_flight_{0};
  std::mutex records_mutex_;
  std::vector<ExchangeRecord> records_;
  std::mutex monitor_mutex_;
  std::condition_variable monitor_cv_;
};

void Device::start() {
  auto& endpoint = engine_.endpoint(behaviour_);
  const auto& target = *endpoint.target;
  std::string subject;
  if (behaviour_ == Behaviour::basic) {
    const auto& credential = target.credentials.at("preregistered");
    basic_ = {credential.user, credential.password};
    subject = credential.subject;
    context_ = endpoint.contexts.at("");
  } else {
    const std::string role = role_of(behaviour_);
    context_ = endpoint.contexts.at(role);
    identity_ = target.identities.at(role);
    // The product binds the CSR subject to the client certificate (PG-ENR-1); RFC 7030 does not,
    // so there each device has a name of its own.
    subject = target.profile == "protocol-gateway" ? target.identities.at(role).certificate.subject().to_string()
                                                   : detail::fill_subject(target.subject_template, "fleet-" + std::to_string(engine_.options().seed) + "-" + std::to_string(number_));
  }
  auto name = DistinguishedName::parse(subject);
  auto csr = name.ok() ? detail::make_device_csr(*name, engine_.options().key_type) : Result<detail::DeviceCsr>(name.error());
  if (!csr.ok()) {
    engine_.record({behaviour_, "csr", 0, 0, 0, "cannot make the CSR: " + csr.error().message});
    return done();
  }
  key_ = std::move(csr->key);
  csr_der_ = std::move(csr->der);
  body_ = encode_est_body(csr_der_);
  send(behaviour_ == Behaviour::serverkeygen ? "serverkeygen" : "simpleenroll");
}

void Device::send(const std::string& operation) {
  auto& endpoint = engine_.endpoint(behaviour_);
  const auto& label = endpoint.target->default_label;
  const auto sent = SteadyClock::now();
  if (polls_ == 0) first_sent_ = sent;
  if (engine_.options().transport == Transport::coaps) {
    CoapRequest request;
    request.method = CoapMethod::post;
    const auto op = operation == "serverkeygen" ? EstOperation::serverkeygen
                    : operation == "simplereenroll" ? EstOperation::simplereenroll
                                                    : EstOperation::simpleenroll;
    request.path = *coaps_est_path(label, op);
    request.content_format = coap_formats::pkcs10;
    request.payload = csr_der_;
    endpoint.coaps[loop_]->exchange(identity_, std::move(request), [self = shared_from_this(), operation, sent](Result<CoapResponse> r) {
      if (!r.ok()) return self->on_answer(operation, sent, r.error());
      Answer a;
      a.status = r->code.code_class() * 100 + r->code.detail();
      a.waiting = r->code == CoapCode::make(5, 3);  // 9148-4.7-b: Max-Age says when to ask again
      a.wait_s = static_cast<int>(std::min<std::uint32_t>(r->max_age.value_or(60), 3600));
      a.body = std::move(r->payload);
      self->on_answer(operation, sent, std::move(a));
    });
    return;
  }
  HttpRequest request;
  request.method = "POST";
  request.target = "/.well-known/est/" + (label.empty() ? "" : label + "/") + operation;
  request.headers.emplace_back("Content-Type", "application/pkcs10");
  request.headers.emplace_back("Content-Transfer-Encoding", "base64");
  if (basic_) request.headers.emplace_back("Authorization", make_basic_authorization(basic_->first, basic_->second));
  request.body = body_;
  async_https_exchange(io_, context_, endpoint.exchange, std::move(request), [self = shared_from_this(), operation, sent](Result<HttpResponse> r) {
    if (!r.ok()) return self->on_answer(operation, sent, r.error());
    Answer a;
    a.status = r->status;
    a.waiting = r->status == 202;
    if (auto after = r->header("Retry-After")) {
      try {
        a.wait_s = std::clamp(std::stoi(*after), 0, 3600);
      } catch (const std::exception&) {
      }
    }
    a.body = Bytes(r->body.begin(), r->body.end());
    self->on_answer(operation, sent, std::move(a));
  });
}

void Device::on_answer(const std::string& operation, SteadyClock::time_point sent, Result<Answer> answer) {
  ExchangeRecord r;
  r.behaviour = behaviour_;
  r.operation = operation;
  const auto now = SteadyClock::now();
  r.latency_ms = std::chrono::duration<double, std::milli>(now - sent).count();
  r.polls = polls_;
  r.waited_ms = std::chrono::duration<double, std::milli>(now - first_sent_).count();
  if (!answer.ok()) {
    r.error = answer.error().message;
    engine_.record(std::move(r));
    return done();
  }
  r.status = answer->status;
  engine_.record(std::move(r));
  // Waiting for approval (RFC 7030 4.2.3, RFC 9148 4.7): the same request again when asked to.
  if (answer->waiting && polls_ < engine_.options().max_polls) {
    ++polls_;
    poll_timer_.expires_after(std::chrono::seconds(answer->wait_s));
    poll_timer_.async_wait([self = shared_from_this(), operation](boost::system::error_code) { self->send(operation); });
    return;
  }
  const bool issued_ok = answer->status >= 200 && answer->status < 300;
  if (behaviour_ == Behaviour::reenroll && operation == "simpleenroll" && issued_ok) {
    const auto issued = detail::issued_for(answer->body, *key_);
    if (!issued) {
      engine_.record({behaviour_, "simplereenroll", 0, 0, 0, "the enrollment answer holds no certificate for the device's key"});
      return done();
    }
    // Renew as the certificate just issued, with a new key (RFC 7030 4.2.2).
    identity_ = TlsIdentity{*key_, *issued, {}};
    if (engine_.options().transport == Transport::https) context_ = engine_.context_for(*engine_.endpoint(behaviour_).target, identity_);
    auto csr = detail::make_device_csr(issued->subject(), engine_.options().key_type);
    if (!csr.ok()) {
      engine_.record({behaviour_, "simplereenroll", 0, 0, 0, "cannot make the re-enrollment CSR: " + csr.error().message});
      return done();
    }
    key_ = std::move(csr->key);
    csr_der_ = std::move(csr->der);
    body_ = encode_est_body(csr_der_);
    polls_ = 0;
    return send("simplereenroll");
  }
  done();
}

void Device::done() { engine_.device_done(loop_); }

}  // namespace

FleetReport run_fleet(const conformance::Target& target, const FleetOptions& options, const std::function<void(const Progress&)>& on_progress,
                      const conformance::Target* approval_target) {
  if (options.mix.weights.empty()) throw ConfigError("fleet: the behaviour mix is empty");
  Engine engine(target, approval_target, options);
  return engine.run(on_progress);
}

}  // namespace estlab::fleet
