#include "estlab/fleet/fleet.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>

#include "estlab/core/async_https.hpp"
#include "estlab/core/certs_only.hpp"
#include "estlab/core/csr.hpp"
#include "estlab/core/est.hpp"
#include "estlab/core/name.hpp"

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
                                         {Behaviour::no_eku, "no-eku"},   {Behaviour::serverkeygen, "serverkeygen"}};

// The fixture role each behaviour connects as ("" = no client certificate).
std::string role_of(Behaviour b) {
  switch (b) {
    case Behaviour::enroll:
    case Behaviour::reenroll:
    case Behaviour::serverkeygen: return "device-factory";
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

// One device: its key, its subject, its behaviour's exchanges, on one event loop.
class Device : public std::enable_shared_from_this<Device> {
 public:
  Device(Engine& engine, asio::io_context& io, std::uint64_t number, Behaviour behaviour)
      : engine_(engine), io_(io), number_(number), behaviour_(behaviour), poll_timer_(io) {}
  void start();

 private:
  void send(const std::string& operation);
  void on_answer(const std::string& operation, SteadyClock::time_point sent, Result<HttpResponse> answer);
  void done();

  Engine& engine_;
  asio::io_context& io_;
  std::uint64_t number_;
  Behaviour behaviour_;
  asio::steady_timer poll_timer_;
  int polls_ = 0;
  std::optional<PrivateKey> key_;
  std::string body_;  // the CSR as an EST body, the same on every poll (a retry is the same request)
  std::shared_ptr<AsyncTlsClientContext> context_;
  std::optional<std::pair<std::string, std::string>> basic_;
};

class Engine {
 public:
  Engine(const conformance::Target& target, const FleetOptions& options) : target_(target), options_(options) {
    asio::io_context resolver_io;
    asio::ip::tcp::resolver resolver(resolver_io);
    boost::system::error_code ec;
    auto endpoints = resolver.resolve(target.host, std::to_string(target.port), ec);
    if (ec || endpoints.empty()) throw ConfigError("fleet: cannot resolve " + target.host + ": " + ec.message());
    exchange_target_.endpoint = endpoints.begin()->endpoint();
    exchange_target_.server_name = target.server_name.empty() ? target.host : target.server_name;
    exchange_target_.connect_timeout = exchange_target_.handshake_timeout = exchange_target_.io_timeout = options.timeout;
    for (const auto& [b, w] : options.mix.weights) {
      const std::string role = role_of(b);
      if (b == Behaviour::basic) {
        if (!target.credentials.count("preregistered"))
          throw ConfigError("fleet: behaviour 'basic' needs the target's preregistered Basic credential (credentials: preregistered)");
      } else if (!contexts_.count(role)) {
        auto identity = target.identities.find(role);
        if (identity == target.identities.end())
          throw ConfigError("fleet: behaviour '" + std::string(to_string(b)) + "' needs the role '" + role + "', which the target lacks");
        contexts_[role] = context_for(identity->second);
      }
    }
    contexts_[""] = context_for(std::nullopt);
  }

  std::shared_ptr<AsyncTlsClientContext> context_for(const std::optional<TlsIdentity>& identity) const {
    auto context = AsyncTlsClientContext::make(target_.trust_anchors, identity);
    if (!context.ok()) throw ConfigError("fleet: TLS context: " + context.error().message);
    return *context;
  }

  FleetReport run(const std::function<void(const Progress&)>& on_progress) {
    const std::size_t threads = std::max<std::size_t>(1, options_.threads);
    for (std::size_t i = 0; i < threads; ++i) ios_.push_back(std::make_unique<asio::io_context>(1));
    started_at_ = SteadyClock::now();
    if (options_.rate > 0) {
      for (std::size_t i = 0; i < threads; ++i) arm_arrivals(i, SteadyClock::now());
    } else {
      for (std::size_t i = 0; i < std::max<std::size_t>(1, options_.concurrency); ++i) {
        auto& io = *ios_[i % threads];
        asio::post(io, [this, &io] { start_next(io); });
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

    FleetReport report;
    report.target = target_.name;
    report.profile = target_.profile;
    report.options = options_;
    report.devices = started_.load();
    report.wall_s = seconds_since(started_at_);
    report.exchanges = std::move(records_);
    report.arrivals_delayed = delayed_.load();
    return report;
  }

  // Closed loop: a finished device makes room for the next.
  void start_next(asio::io_context& io) {
    const auto number = claim();
    if (!number) return;
    in_flight_++;
    std::make_shared<Device>(*this, io, *number, options_.mix.pick(*number))->start();
  }

  void device_done(asio::io_context& io) {
    in_flight_--;
    finished_++;
    if (options_.rate <= 0) start_next(io);
  }

  void record(ExchangeRecord r) {
    r.finished_at_s = seconds_since(started_at_);
    if (r.status == 0) errors_++;
    std::lock_guard lock(records_mutex_);
    records_.push_back(std::move(r));
  }

  const conformance::Target& target() const { return target_; }
  const FleetOptions& options() const { return options_; }
  const AsyncExchangeTarget& exchange_target() const { return exchange_target_; }
  std::shared_ptr<AsyncTlsClientContext> role_context(const std::string& role) const { return contexts_.at(role); }

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
      std::make_shared<Device>(*this, io, *number, options_.mix.pick(*number))->start();
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

  const conformance::Target& target_;
  FleetOptions options_;
  AsyncExchangeTarget exchange_target_;
  std::map<std::string, std::shared_ptr<AsyncTlsClientContext>> contexts_;
  std::vector<std::unique_ptr<asio::io_context>> ios_;
  SteadyClock::time_point started_at_;
  std::atomic<std::uint64_t> started_{0}, finished_{0}, errors_{0}, delayed_{0};
  std::atomic<std::size_t> in_flight_{0};
  std::mutex records_mutex_;
  std::vector<ExchangeRecord> records_;
  std::mutex monitor_mutex_;
  std::condition_variable monitor_cv_;
};

std::string fill_subject(const std::string& subject_template, const std::string& cn) {
  std::string out = subject_template;
  if (auto at = out.find("{{cn}}"); at != std::string::npos) out.replace(at, 6, cn);
  return out;
}

void Device::start() {
  const auto& target = engine_.target();
  std::string subject;
  if (behaviour_ == Behaviour::basic) {
    const auto& credential = target.credentials.at("preregistered");
    basic_ = {credential.user, credential.password};
    subject = credential.subject;
    context_ = engine_.role_context("");
  } else {
    const std::string role = role_of(behaviour_);
    context_ = engine_.role_context(role);
    // The product binds the CSR subject to the client certificate (PG-ENR-1); RFC 7030 does not,
    // so there each device has a name of its own.
    subject = target.profile == "protocol-gateway" ? target.identities.at(role).certificate.subject().to_string()
                                                   : fill_subject(target.subject_template, "fleet-" + std::to_string(engine_.options().seed) + "-" + std::to_string(number_));
  }
  auto key = PrivateKey::generate(engine_.options().key_type);
  auto name = DistinguishedName::parse(subject);
  if (!key.ok() || !name.ok()) {
    engine_.record({behaviour_, "csr", 0, 0, 0, "cannot make the CSR: " + (key.ok() ? name.error().message : key.error().message)});
    return done();
  }
  auto csr = CsrBuilder().subject(*name).sign(*key);
  if (!csr.ok()) {
    engine_.record({behaviour_, "csr", 0, 0, 0, "cannot sign the CSR: " + csr.error().message});
    return done();
  }
  key_ = std::move(key).value();
  body_ = encode_est_body(csr->der());
  send(behaviour_ == Behaviour::serverkeygen ? "serverkeygen" : "simpleenroll");
}

void Device::send(const std::string& operation) {
  HttpRequest request;
  request.method = "POST";
  const auto& label = engine_.target().default_label;
  request.target = "/.well-known/est/" + (label.empty() ? "" : label + "/") + operation;
  request.headers.emplace_back("Content-Type", "application/pkcs10");
  request.headers.emplace_back("Content-Transfer-Encoding", "base64");
  if (basic_) request.headers.emplace_back("Authorization", make_basic_authorization(basic_->first, basic_->second));
  request.body = body_;
  const auto sent = SteadyClock::now();
  async_https_exchange(io_, context_, engine_.exchange_target(), std::move(request),
                       [self = shared_from_this(), operation, sent](Result<HttpResponse> answer) {
                         self->on_answer(operation, sent, std::move(answer));
                       });
}

void Device::on_answer(const std::string& operation, SteadyClock::time_point sent, Result<HttpResponse> answer) {
  ExchangeRecord r;
  r.behaviour = behaviour_;
  r.operation = operation;
  r.latency_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - sent).count();
  if (!answer.ok()) {
    r.error = answer.error().message;
    engine_.record(std::move(r));
    return done();
  }
  r.status = answer->status;
  engine_.record(std::move(r));
  // Waiting for approval (RFC 7030 4.2.3): the same request again after Retry-After.
  if (answer->status == 202 && polls_ < engine_.options().max_polls) {
    ++polls_;
    int wait_s = 1;
    if (auto after = answer->header("Retry-After")) {
      try {
        wait_s = std::clamp(std::stoi(*after), 0, 3600);
      } catch (const std::exception&) {
      }
    }
    poll_timer_.expires_after(std::chrono::seconds(wait_s));
    poll_timer_.async_wait([self = shared_from_this(), operation](boost::system::error_code) { self->send(operation); });
    return;
  }
  if (behaviour_ == Behaviour::reenroll && operation == "simpleenroll" && answer->status == 200) {
    auto bag = CertsOnly::parse(as_bytes(answer->body));
    std::optional<Certificate> issued;
    if (bag.ok())
      for (const auto& cert : bag->certificates())
        if (cert.public_key() == key_->public_key()) issued = cert;
    if (!issued) {
      engine_.record({behaviour_, "simplereenroll", 0, 0, 0, "the enrollment answer holds no certificate for the device's key"});
      return done();
    }
    // Renew as the certificate just issued, with a new key (RFC 7030 4.2.2).
    context_ = engine_.context_for(TlsIdentity{*key_, *issued, {}});
    auto key = PrivateKey::generate(engine_.options().key_type);
    auto csr = key.ok() ? CsrBuilder().subject(issued->subject()).sign(*key) : Result<Csr>(key.error());
    if (!csr.ok()) {
      engine_.record({behaviour_, "simplereenroll", 0, 0, 0, "cannot make the re-enrollment CSR: " + csr.error().message});
      return done();
    }
    key_ = std::move(key).value();
    body_ = encode_est_body(csr->der());
    polls_ = 0;
    return send("simplereenroll");
  }
  done();
}

void Device::done() { engine_.device_done(io_); }

}  // namespace

FleetReport run_fleet(const conformance::Target& target, const FleetOptions& options, const std::function<void(const Progress&)>& on_progress) {
  if (options.mix.weights.empty()) throw ConfigError("fleet: the behaviour mix is empty");
  Engine engine(target, options);
  return engine.run(on_progress);
}

}  // namespace estlab::fleet
