#include "estlab/fleet/virtual_year.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cmath>
#include <mutex>
#include <optional>
#include <queue>
#include <sstream>
#include <thread>

#include "device_support.hpp"
#include "estlab/core/async_https.hpp"
#include "estlab/core/est.hpp"
#include "estlab/reports/html.hpp"
#include "estlab/reports/json.hpp"

namespace estlab::fleet {

namespace asio = boost::asio;

namespace {

using Day = std::chrono::duration<std::int64_t, std::ratio<86400>>;

enum class Action { enroll, renew, rollover };

// Kept as DER (about 0.7 KB a device, where parsed OpenSSL objects take over 10 KB): parsed again
// only on the days the device renews.
struct VirtualDevice {
  Bytes certificate_der;  // the certificate the CA issued last; empty before the first enrollment
  Bytes key_der;          // its key, PKCS#8
  TimePoint not_after{};
  std::uint32_t generation = 0;  // schedule entries of older generations are stale
  bool enrolled() const { return !certificate_der.empty(); }
};

struct Due {
  TimePoint at;
  std::size_t device;
  std::uint32_t generation;
  Action action;
  bool operator>(const Due& other) const { return at > other.at; }
};

// What one device's exchanges on one day came to, applied by the driver after the day's batch.
struct Outcome {
  std::size_t device = 0;
  Action action = Action::enroll;
  bool expired = false;  // its certificate had expired: it enrolled with the factory certificate instead
  bool fetched_cacerts = false;
  // The certificate issued, as DER at once: a day's batch may hold 100,000 outcomes.
  bool issued = false;
  Bytes certificate_der, key_der;
  TimePoint not_before{}, not_after{};
  std::string error;
};

class YearRunner {
 public:
  YearRunner(const conformance::Target& target, const VirtualYearOptions& options) : target_(target), options_(options) {
    if (!target.controls.count("advance-time") || !target.now)
      throw ConfigError("fleet: --virtual-days needs a target whose clock the fleet can share (the advance-time control and its time), as the embedded lab's; " +
                        target.name + " has none");
    auto factory = target.identities.find("device-factory");
    if (factory == target.identities.end()) throw ConfigError("fleet: --virtual-days needs the role device-factory, which " + target.name + " lacks");
    factory_ = factory->second;
    if (!(options.renew_at > 0 && options.renew_at < 1)) throw ConfigError("fleet: --renew-at must be between 0 and 1");
    if (options.days < 1) throw ConfigError("fleet: --virtual-days must be at least 1");
    asio::io_context resolver_io;
    asio::ip::tcp::resolver resolver(resolver_io);
    boost::system::error_code ec;
    auto endpoints = resolver.resolve(target.host, std::to_string(target.port), ec);
    if (ec || endpoints.empty()) throw ConfigError("fleet: cannot resolve " + target.host + ": " + ec.message());
    exchange_.endpoint = endpoints.begin()->endpoint();
    exchange_.server_name = target.server_name.empty() ? target.host : target.server_name;
    exchange_.connect_timeout = exchange_.handshake_timeout = exchange_.io_timeout = options.timeout;
    factory_context_ = context_for(factory_);
  }

  VirtualYearReport run(const std::function<void(int, std::uint64_t)>& on_day) {
    on_day_ = on_day;
    const auto wall_start = std::chrono::steady_clock::now();
    report_.target = target_.name;
    report_.profile = target_.profile;
    report_.options = options_;
    report_.days.assign(static_cast<std::size_t>(options_.days), VirtualDay{});
    devices_.assign(options_.devices, VirtualDevice{});
    start_ = target_.now();
    const int onboard = std::max(1, options_.onboard_days);
    for (std::size_t n = 0; n < devices_.size(); ++n) schedule(start_ + Day(static_cast<std::int64_t>(n % onboard)), n, Action::enroll);
    for (std::size_t i = 0; i < std::max<std::size_t>(1, options_.threads); ++i) ios_.push_back(std::make_unique<asio::io_context>(1));

    bool rolled = options_.rollover_day < 0 || options_.rollover_day >= options_.days;
    if (options_.rollover_day < 0) report_.rollover_note = "no CA rollover";
    for (;;) {
      // The next virtual day with work: the earliest due entry, or the rollover.
      while (!due_.empty() && stale(due_.top())) due_.pop();
      int day = options_.days;
      if (!due_.empty()) day = std::max(day_, static_cast<int>(std::ceil(std::chrono::duration<double, std::ratio<86400>>(due_.top().at - start_).count())));
      if (!rolled && options_.rollover_day <= day) {
        advance_to(options_.rollover_day);
        roll_over();
        rolled = true;
        continue;
      }
      if (day >= options_.days) break;
      advance_to(day);
      std::vector<Due> jobs;
      const TimePoint now = target_.now();
      while (!due_.empty() && due_.top().at <= now) {
        if (!stale(due_.top())) jobs.push_back(due_.top());
        due_.pop();
      }
      run_batch(jobs);
      if (on_day_) on_day_(day_, report_.exchanges);
    }
    // Leave the lab's clock as it was found.
    if (target_.controls.count("reset-time")) (void)target_.control_hook("reset-time", {});
    report_.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    return std::move(report_);
  }

 private:
  std::shared_ptr<AsyncTlsClientContext> context_for(const TlsIdentity& identity) const {
    auto context = AsyncTlsClientContext::make(target_.trust_anchors, identity);
    if (!context.ok()) throw ConfigError("fleet: TLS context: " + context.error().message);
    return *context;
  }

  bool stale(const Due& d) const { return d.generation != devices_[d.device].generation; }

  void schedule(TimePoint at, std::size_t device, Action action) {
    due_.push(Due{at, device, ++devices_[device].generation, action});
  }

  void advance_to(int day) {
    if (day <= day_) return;
    auto moved = target_.control_hook("advance-time", {{"by", std::to_string(day - day_) + "d"}});
    if (!moved.ok()) throw ConfigError("fleet: advance-time: " + moved.error().message);
    day_ = day;
  }

  // The CA's root gets a new key; every device learns of it (/cacerts) and renews within the spread.
  void roll_over() {
    if (target_.controls.count("rollover-ca")) {
      auto rolled = target_.control_hook("rollover-ca", {{"ca", options_.rollover_ca}});
      report_.rollover_note = rolled.ok() ? "day " + std::to_string(day_) + ": " + *rolled : "day " + std::to_string(day_) + ": " + rolled.error().message;
    } else {
      report_.rollover_note = "day " + std::to_string(day_) + ": the target has no rollover-ca control; the devices still fetch /cacerts and renew";
    }
    const int spread = std::max(1, options_.rollover_spread);
    for (std::size_t n = 0; n < devices_.size(); ++n) {
      if (!devices_[n].enrolled()) continue;  // not yet onboarded: it enrolls under the new CA anyway
      // On whole virtual days: the lab's clock also runs on in real time.
      schedule(start_ + Day(day_ + static_cast<std::int64_t>(n % spread)), n, Action::rollover);
    }
  }

  std::string subject_of(std::size_t n) const {
    // The product binds the CSR subject to the client certificate (PG-ENR-1); RFC 7030 does not.
    if (target_.profile == "protocol-gateway") return factory_.certificate.subject().to_string();
    return detail::fill_subject(target_.subject_template, "year-" + std::to_string(options_.seed) + "-" + std::to_string(n));
  }

  HttpRequest est_post(const std::string& operation, const Bytes& csr_der) const {
    HttpRequest request;
    request.method = "POST";
    const auto& label = target_.default_label;
    request.target = "/.well-known/est/" + (label.empty() ? "" : label + "/") + operation;
    request.headers.emplace_back("Content-Type", "application/pkcs10");
    request.headers.emplace_back("Content-Transfer-Encoding", "base64");
    request.body = encode_est_body(csr_der);
    return request;
  }

  // One device's work of the day, asynchronously; `finish` runs once with the outcome.
  void start_job(asio::io_context& io, const Due& job, const TimePoint now, std::function<void(Outcome)> finish) {
    Outcome outcome;
    outcome.device = job.device;
    outcome.action = job.action;
    const auto& device = devices_[job.device];
    const bool renewing = job.action != Action::enroll && device.enrolled();
    outcome.expired = renewing && now >= device.not_after;
    const bool with_own = renewing && !outcome.expired;
    std::optional<TlsIdentity> own;
    if (with_own) {
      auto certificate = Certificate::from_der(device.certificate_der);
      auto own_key = PrivateKey::from_pkcs8_der(device.key_der);
      if (!certificate.ok() || !own_key.ok()) {
        outcome.error = "cannot read the device's own certificate or key back";
        return finish(std::move(outcome));
      }
      own = TlsIdentity{std::move(own_key).value(), std::move(certificate).value(), {}};
    }
    auto name = own ? Result<DistinguishedName>(own->certificate.subject()) : DistinguishedName::parse(subject_of(job.device));
    auto csr = name.ok() ? detail::make_device_csr(*name, options_.key_type) : Result<detail::DeviceCsr>(name.error());
    if (!csr.ok()) {
      outcome.error = csr.error().message;
      return finish(std::move(outcome));
    }
    auto key = std::make_shared<PrivateKey>(std::move(csr->key));
    std::shared_ptr<AsyncTlsClientContext> context;
    try {
      context = own ? context_for(*own) : factory_context_;
    } catch (const ConfigError& e) {
      outcome.error = e.what();
      return finish(std::move(outcome));
    }
    auto enroll = [this, &io, context, key, with_own, der = std::move(csr->der), finish](Outcome o) mutable {
      async_https_exchange(io, context, exchange_, est_post(with_own ? "simplereenroll" : "simpleenroll", der),
                           [key, finish = std::move(finish), o = std::move(o)](Result<HttpResponse> answer) mutable {
                             if (!answer.ok()) {
                               o.error = answer.error().message;
                             } else if (answer->status != 200) {
                               o.error = "HTTP " + std::to_string(answer->status);
                             } else if (auto issued = detail::issued_for(as_bytes(answer->body), *key)) {
                               o.issued = true;
                               o.certificate_der = issued->der();
                               o.key_der = key->pkcs8_der();
                               o.not_before = issued->not_before();
                               o.not_after = issued->not_after();
                             } else {
                               o.error = "the answer holds no certificate for the device's key";
                             }
                             finish(std::move(o));
                           });
    };
    if (job.action != Action::rollover) return enroll(std::move(outcome));
    // After a rollover the device first fetches the CA certificates (RFC 7030 4.1.3).
    HttpRequest cacerts;
    cacerts.method = "GET";
    const auto& label = target_.default_label;
    cacerts.target = "/.well-known/est/" + (label.empty() ? "" : label + "/") + "cacerts";
    async_https_exchange(io, factory_context_, exchange_, std::move(cacerts),
                         [enroll = std::move(enroll), o = std::move(outcome)](Result<HttpResponse> answer) mutable {
                           o.fetched_cacerts = answer.ok() && answer->status == 200;
                           enroll(std::move(o));
                         });
  }

  // The day's jobs on the event loops, `concurrency` devices in flight; then their outcomes.
  void run_batch(const std::vector<Due>& jobs) {
    if (jobs.empty()) return;
    std::mutex mutex;
    std::condition_variable all_done;
    std::vector<Outcome> outcomes;
    outcomes.reserve(jobs.size());
    std::atomic<std::size_t> next{0};
    const TimePoint now = target_.now();
    std::function<void(asio::io_context&)> take = [&](asio::io_context& io) {
      const std::size_t i = next++;
      if (i >= jobs.size()) return;
      start_job(io, jobs[i], now, [&, &io_ref = io](Outcome o) {
        {
          std::lock_guard lock(mutex);
          outcomes.push_back(std::move(o));
          if (outcomes.size() == jobs.size()) all_done.notify_all();
        }
        take(io_ref);
      });
    };
    const std::size_t width = std::min(jobs.size(), std::max<std::size_t>(1, options_.concurrency));
    for (std::size_t i = 0; i < width; ++i) {
      auto& io = *ios_[i % ios_.size()];
      asio::post(io, [&take, &io] { take(io); });
    }
    std::vector<std::thread> loops;
    for (std::size_t i = 0; i < ios_.size(); ++i) loops.emplace_back([this, i] { ios_[i]->run(); });
    {
      // A day can hold every device of the fleet: progress once a second meanwhile.
      std::unique_lock lock(mutex);
      while (outcomes.size() < jobs.size()) {
        all_done.wait_for(lock, std::chrono::seconds(1));
        const std::uint64_t so_far = outcomes.size();
        lock.unlock();
        if (on_day_) on_day_(day_, report_.exchanges + so_far);
        lock.lock();
      }
    }
    for (auto& t : loops) t.join();
    for (auto& io : ios_) io->restart();

    VirtualDay& today = report_.days[static_cast<std::size_t>(day_)];
    for (auto& o : outcomes) {
      auto& device = devices_[o.device];
      report_.exchanges += o.action == Action::rollover ? 2 : 1;
      if (o.fetched_cacerts) ++today.cacerts;
      if (!o.issued) {
        ++today.failures;
        if (report_.errors.size() < 5) report_.errors.push_back("day " + std::to_string(day_) + ": " + o.error);
        schedule(start_ + Day(day_ + 1), o.device, o.action);  // the device tries again tomorrow
        continue;
      }
      if (o.expired) ++today.expired;
      else if (o.action == Action::enroll) ++today.enrollments;
      else if (o.action == Action::renew) ++today.renewals;
      else ++today.rollover_renewals;
      const auto lifetime = o.not_after - o.not_before;
      if (report_.lifetime_days == 0) report_.lifetime_days = std::chrono::duration<double, std::ratio<86400>>(lifetime).count();
      device.certificate_der = std::move(o.certificate_der);
      device.key_der = std::move(o.key_der);
      device.not_after = o.not_after;
      // Renew when renew_at of this certificate's lifetime has passed.
      schedule(o.not_before + std::chrono::duration_cast<TimePoint::duration>(lifetime * options_.renew_at), o.device, Action::renew);
    }
  }

  const conformance::Target& target_;
  VirtualYearOptions options_;
  TlsIdentity factory_;
  AsyncExchangeTarget exchange_;
  std::shared_ptr<AsyncTlsClientContext> factory_context_;
  std::vector<std::unique_ptr<asio::io_context>> ios_;
  std::vector<VirtualDevice> devices_;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> due_;
  TimePoint start_;
  int day_ = 0;
  VirtualYearReport report_;
  std::function<void(int, std::uint64_t)> on_day_;
};

std::string fixed(double v, int decimals = 1) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, v);
  return buffer;
}

void add(VirtualDay& into, const VirtualDay& d) {
  into.enrollments += d.enrollments;
  into.renewals += d.renewals;
  into.rollover_renewals += d.rollover_renewals;
  into.cacerts += d.cacerts;
  into.expired += d.expired;
  into.failures += d.failures;
}

std::string day_json(const VirtualDay& d) {
  std::ostringstream out;
  out << "{\"enrollments\": " << d.enrollments << ", \"renewals\": " << d.renewals << ", \"rollover_renewals\": " << d.rollover_renewals
      << ", \"cacerts\": " << d.cacerts << ", \"expired\": " << d.expired << ", \"failures\": " << d.failures << "}";
  return out.str();
}

}  // namespace

VirtualDay VirtualYearReport::totals() const {
  VirtualDay t;
  for (const auto& d : days) add(t, d);
  return t;
}

std::vector<VirtualDay> VirtualYearReport::weeks() const {
  std::vector<VirtualDay> out((days.size() + 6) / 7);
  for (std::size_t i = 0; i < days.size(); ++i) add(out[i / 7], days[i]);
  return out;
}

std::size_t VirtualYearReport::peak_day() const {
  std::size_t peak = 0;
  for (std::size_t i = 0; i < days.size(); ++i)
    if (days[i].total() > days[peak].total()) peak = i;
  return peak;
}

VirtualYearReport run_virtual_year(const conformance::Target& target, const VirtualYearOptions& options,
                                   const std::function<void(int, std::uint64_t)>& on_day) {
  YearRunner runner(target, options);
  return runner.run(on_day);
}

std::string to_text(const VirtualYearReport& r) {
  std::ostringstream out;
  const auto t = r.totals();
  out << "virtual year against " << r.target << " (" << r.profile << "): " << r.options.devices << " devices, " << r.days.size()
      << " virtual days in " << fixed(r.wall_s, 2) << " s (" << r.exchanges << " exchanges, " << fixed(r.wall_s > 0 ? r.exchanges / r.wall_s : 0)
      << "/s)\n";
  out << "certificate lifetime " << fixed(r.lifetime_days, 2) << " days, renewal at " << fixed(r.options.renew_at * 100, 0) << "% of it; "
      << r.rollover_note << "\n";
  out << "enrollments " << t.enrollments << ", renewals " << t.renewals << ", rollover renewals " << t.rollover_renewals << ", /cacerts "
      << t.cacerts << ", expired " << t.expired << ", failures " << t.failures << "\n";
  const auto peak = r.peak_day();
  const auto weeks = r.weeks();
  std::size_t peak_week = 0;
  for (std::size_t i = 0; i < weeks.size(); ++i)
    if (weeks[i].total() > weeks[peak_week].total()) peak_week = i;
  if (!r.days.empty())
    out << "peak day " << peak << " (" << r.days[peak].total() << " issuances and fetches), peak week " << peak_week << " ("
        << (weeks.empty() ? 0 : weeks[peak_week].total()) << ")\n";
  for (const auto& e : r.errors) out << "  error: " << e << "\n";
  return out.str();
}

std::string to_json(const VirtualYearReport& r) {
  using reports::json_string;
  std::ostringstream out;
  const auto t = r.totals();
  out << "{\n  \"format\": \"estlab-fleet-virtual-year\",\n  \"format_version\": 1,\n";
  out << "  \"target\": " << json_string(r.target) << ",\n  \"profile\": " << json_string(r.profile) << ",\n";
  out << "  \"options\": {\"devices\": " << r.options.devices << ", \"days\": " << r.options.days << ", \"renew_at\": " << fixed(r.options.renew_at, 4)
      << ", \"onboard_days\": " << r.options.onboard_days << ", \"rollover_day\": " << r.options.rollover_day << ", \"rollover_spread\": "
      << r.options.rollover_spread << ", \"concurrency\": " << r.options.concurrency << ", \"threads\": " << r.options.threads << "},\n";
  out << "  \"wall_s\": " << fixed(r.wall_s, 3) << ",\n  \"exchanges\": " << r.exchanges << ",\n  \"lifetime_days\": " << fixed(r.lifetime_days, 4)
      << ",\n  \"rollover\": " << json_string(r.rollover_note) << ",\n  \"peak_day\": " << r.peak_day() << ",\n";
  out << "  \"totals\": " << day_json(t) << ",\n  \"errors\": [";
  for (std::size_t i = 0; i < r.errors.size(); ++i) out << (i ? ", " : "") << json_string(r.errors[i]);
  out << "],\n  \"weeks\": [";
  const auto weeks = r.weeks();
  for (std::size_t i = 0; i < weeks.size(); ++i) out << (i ? ",\n    " : "\n    ") << day_json(weeks[i]);
  out << "\n  ],\n  \"days\": [";
  for (std::size_t i = 0; i < r.days.size(); ++i) out << (i ? ",\n    " : "\n    ") << day_json(r.days[i]);
  out << "\n  ]\n}\n";
  return out.str();
}

std::string to_html(const VirtualYearReport& r) {
  using reports::html_escape;
  std::ostringstream out;
  out << "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>estlab fleet: a virtual year</title>\n<style>"
         "body{font:14px system-ui,sans-serif;margin:2em;color:#222}pre{white-space:pre-wrap}svg{background:#fafafa;border:1px solid #ddd;margin:.5em 0}"
         ".enroll{fill:#4a7fb5}.renew{fill:#5aa469}.rollover{fill:#d08a2e}.expired{fill:#b5504a}text{font-size:11px}</style></head><body>\n";
  out << "<h1>A virtual year of certificate lifetimes</h1>\n<pre id=\"summary\">" << html_escape(to_text(r)) << "</pre>\n";
  auto chart = [&](const std::string& id, const std::string& title, const std::vector<VirtualDay>& series, const std::string& unit) {
    std::uint64_t top = 1;
    for (const auto& d : series) top = std::max(top, d.enrollments + d.renewals + d.rollover_renewals + d.expired);
    const int width = 900, height = 220;
    const double bar = series.empty() ? 1 : static_cast<double>(width) / static_cast<double>(series.size());
    out << "<h2>" << html_escape(title) << "</h2>\n<svg id=\"" << id << "\" width=\"" << width << "\" height=\"" << height + 30 << "\">";
    for (std::size_t i = 0; i < series.size(); ++i) {
      double y = height;
      const std::pair<const char*, std::uint64_t> parts[] = {{"enroll", series[i].enrollments}, {"renew", series[i].renewals},
                                                            {"rollover", series[i].rollover_renewals}, {"expired", series[i].expired}};
      for (const auto& [cls, count] : parts) {
        if (count == 0) continue;
        const double h = static_cast<double>(count) / static_cast<double>(top) * height;
        y -= h;
        out << "<rect class=\"" << cls << "\" data-" << unit << "=\"" << i << "\" data-count=\"" << count << "\" x=\"" << fixed(i * bar, 2) << "\" y=\""
            << fixed(y, 2) << "\" width=\"" << fixed(std::max(bar - 0.5, 0.5), 2) << "\" height=\"" << fixed(h, 2) << "\"><title>" << unit << " " << i
            << ": " << count << " " << cls << "</title></rect>";
      }
    }
    out << "<text x=\"4\" y=\"12\">peak " << top << " per " << unit << "</text><text x=\"4\" y=\"" << height + 15 << "\">" << unit
        << " 0</text><text x=\"" << width - 70 << "\" y=\"" << height + 15 << "\">" << unit << " " << series.size() << "</text></svg>\n";
  };
  chart("load-per-day", "Issuances per virtual day (blue: enrollments, green: renewals, orange: after the rollover, red: after expiry)", r.days, "day");
  chart("load-per-week", "Issuances per virtual week", r.weeks(), "week");
  out << "</body></html>\n";
  return out.str();
}

}  // namespace estlab::fleet
