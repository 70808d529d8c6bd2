// The reference gateway's throughput and latency over loopback HTTPS, each rate reported as a ratio
// to a bound measured in the same run:
//   - enrollment against the simulated CA's own issuance rate (what no gateway in front of it can
//     beat), with the EST service called in-process as the intermediate step, so the table shows
//     what the policy checks cost and what TLS + HTTP cost on top;
//   - cacerts over keep-alive against the service answering cacerts in-process;
//   - a new TLS connection per cacerts against cacerts over keep-alive (the handshake's cost: a
//     bare OpenSSL loopback handshake bound would need a second server, so none is claimed);
//   - N clients in parallel, each on its own keep-alive connection, against the same CA bound.
// Latencies (mean, p50, p99, max) come with every row: a small request/response exchange that
// stalls on Nagle and delayed ACKs takes about 40 ms, so keep-alive latencies far below that show
// that TCP_NODELAY works on both ends.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "estlab/ca/ca.hpp"
#include "estlab/core/certs_only.hpp"
#include "estlab/core/csr.hpp"
#include "estlab/core/est.hpp"
#include "estlab/core/https_client.hpp"
#include "estlab/fixtures/fixture_set.hpp"
#include "estlab/gateway/config.hpp"
#include "estlab/gateway/server.hpp"
#include "estlab/gateway/service.hpp"

using namespace estlab;
using BenchClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr std::size_t kServerThreads = 2;  // what `estlab gateway` runs with by default
constexpr double kStallMs = 30;  // a delayed ACK holds a Nagle-delayed segment ~40 ms on Linux

// Any failure ends the run: a benchmark that measured errors measured nothing.
struct BenchFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename T>
T need(Result<T> result, const std::string& what) {
  if (!result.ok()) throw BenchFailure(what + ": " + result.error().message);
  return std::move(result).value();
}

double ms_between(BenchClock::time_point a, BenchClock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// The fixture directory; removed on every way out, after everything that uses it has stopped.
class TempDir {
 public:
  TempDir() : path_(std::filesystem::temp_directory_path() / ("estlab-gateway-bench-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// What one measured phase produced: how many operations in how long, and each one's latency.
struct Sample {
  long count = 0;
  double seconds = 0;
  std::vector<double> latencies_ms;

  double per_second() const { return seconds > 0 ? count / seconds : 0; }
  double mean_ms() const {
    double sum = 0;
    for (double l : latencies_ms) sum += l;
    return latencies_ms.empty() ? 0 : sum / static_cast<double>(latencies_ms.size());
  }
  // Nearest-rank percentile.
  double percentile_ms(double p) const {
    if (latencies_ms.empty()) return 0;
    std::vector<double> sorted = latencies_ms;
    std::sort(sorted.begin(), sorted.end());
    const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
    return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
  }
  // Exchanges that took as long as a Nagle / delayed-ACK stall would make them.
  long stalls() const { return std::count_if(latencies_ms.begin(), latencies_ms.end(), [](double l) { return l >= kStallMs; }); }
  double max_ms() const { return latencies_ms.empty() ? 0 : *std::max_element(latencies_ms.begin(), latencies_ms.end()); }
};

// Runs `op` back to back for about `seconds`, timing each call. `op` throws BenchFailure on error.
Sample run_for(double seconds, const std::function<void(std::size_t)>& op) {
  Sample sample;
  const auto start = BenchClock::now();
  auto now = start;
  for (std::size_t i = 0; ms_between(start, now) < seconds * 1000; ++i) {
    const auto before = BenchClock::now();
    op(i);
    now = BenchClock::now();
    sample.latencies_ms.push_back(ms_between(before, now));
    ++sample.count;
  }
  sample.seconds = ms_between(start, now) / 1000;
  return sample;
}

struct Row {
  std::string id;         // stable, for the JSON
  std::string operation;  // what a reader sees
  Sample sample;
  std::string bound_id;   // "" = this row is a bound
  double ratio = 0;
};

HttpRequest enroll_request(const Csr& csr) {
  HttpRequest request;
  request.method = "POST";
  request.target = "/.well-known/est/simpleenroll";
  request.headers = {{"Content-Type", std::string(media_types::pkcs10)}};
  request.body = encode_est_body(csr.der());
  return request;
}

HttpRequest cacerts_request() {
  HttpRequest request;
  request.target = "/.well-known/est/cacerts";
  return request;
}

void expect_ok(const Result<HttpResponse>& response, const std::string& what) {
  if (!response.ok()) throw BenchFailure(what + ": " + response.error().message);
  if (response->status != 200)
    throw BenchFailure(what + ": HTTP " + std::to_string(response->status) + " " + response->reason + ": " + response->body);
}

// A request on a connection that must stay open: the gateway closing it ends the run.
void expect_ok_keep_alive(HttpsConnection& connection, const HttpRequest& request, const std::string& what) {
  expect_ok(connection.send(request), what);
  if (!connection.open()) throw BenchFailure(what + ": the gateway closed the keep-alive connection (Connection: close)");
}

void expect_ok(const gateway::Handled& handled, const std::string& what) {
  if (handled.response.status != 200)
    throw BenchFailure(what + ": status " + std::to_string(handled.response.status) + " (" + handled.decision.rule + ": " +
                       handled.decision.reason + ")");
}

// The EST service maps estlab.ca.profile to a CA profile the same way (service.cpp,
// certificate_profile()); the bound must issue under the same one.
ca::CertificateProfile profile_named(const std::string& name) {
  if (name == "no-eku") return ca::CertificateProfile::no_eku();
  if (name == "officer") return ca::CertificateProfile::officer();
  return ca::CertificateProfile::device();
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return in ? one + " " + five + " " + fifteen : "unknown";
}

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\', out += c;
    else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else out += c;
  }
  return out + "\"";
}

std::string json_number(double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%.6g", value);
  return text;
}

struct Options {
  double seconds = 3.0;
  std::string key_type = "ec-p256";
  int clients = 4;
  std::string json;
};

struct Report {
  std::vector<Row> rows;
  std::vector<std::string> notes;
  std::string tls;
  std::string load_before;
  std::string load_after;
  gateway::ServerStats stats;
};

Report run(const Options& options, const std::filesystem::path& dir) {
  Report report;
  report.load_before = load_average();
  const KeyType key_type = need(parse_key_type(options.key_type), "--key-type");

  // --- The lab and the gateway ------------------------------------------------------------------
  fixtures::GenerateOptions generate;
  generate.dir = dir;
  generate.key_type = key_type;
  const auto set = need(fixtures::generate(generate), "generating the lab in " + dir.string());
  const auto* device_item = set.find("device-factory");
  if (device_item == nullptr) throw BenchFailure("the lab has no device-factory item");
  const auto device = need(TlsIdentity::load(dir / device_item->chain, dir / device_item->key), "device-factory identity");
  const auto anchors_pem = need(read_file_bytes((dir / "trust" / "anchors.pem").string()), "trust/anchors.pem");
  const auto anchors = need(Certificate::parse_all(anchors_pem), "trust/anchors.pem");

  gateway::GatewayConfig config =
      gateway::GatewayConfig::load(dir / "config" / "est.properties", gateway::Profile::protocol_gateway);
  config.port = 0;
  // Each keep-alive phase must stay on its one connection; the lab's default closes it after
  // 1000 requests, fewer than a phase sends. 1000000 is the most the configuration allows.
  report.notes.push_back("estlab.limits.max-requests-per-connection raised from " +
                         std::to_string(config.limits.max_requests_per_connection) +
                         " to 1000000 so that each keep-alive client keeps its one connection");
  config.limits.max_requests_per_connection = 1000000;
  auto ca = std::shared_ptr<ca::SimulatedCa>(need(ca::SimulatedCa::open({config.ca_store}), "CA store"));
  auto service = std::make_shared<gateway::EstService>(config, ca);
  auto server = need(gateway::GatewayServer::start(service, kServerThreads, gateway::LogSink{}), "starting the gateway");

  HttpsClientOptions client;
  client.host = "127.0.0.1";
  client.port = server->port();
  client.server_name = "localhost";
  client.trust_anchors = anchors;
  client.min_version = client.max_version = TlsVersion::tls1_3;
  client.connect_timeout = 5s;
  client.handshake_timeout = 5s;
  client.io_timeout = 10s;
  HttpsClientOptions device_client = client;
  device_client.identity = device;

  // CSRs made beforehand, so no phase measures key generation. Keys are reused across CSRs
  // (the CA does not care, and RSA key generation would otherwise dominate the setup).
  const DistinguishedName subject = device.certificate.subject();
  const std::size_t key_count = key_type == KeyType::rsa2048 ? 4 : 16;
  std::vector<PrivateKey> keys;
  for (std::size_t i = 0; i < key_count; ++i) keys.push_back(need(PrivateKey::generate(key_type), "generating a device key"));
  std::vector<Csr> csrs;
  std::vector<HttpRequest> enrolls;
  for (std::size_t i = 0; i < 64; ++i) {
    csrs.push_back(need(CsrBuilder().subject(subject).sign(keys[i % key_count]), "signing a CSR"));
    enrolls.push_back(enroll_request(csrs.back()));
  }

  // --- (a) The bound: the CA issuing in-process, as the service asks it to ------------------------
  const ca::CertificateProfile profile = profile_named(config.certificate_profile);
  ca::IssueOverrides overrides;
  overrides.subject = subject;
  overrides.subject_alt_names = std::vector<SubjectAltName>{};
  need(ca->issue(config.default_ca, csrs[0], profile, overrides), "CA issue (warm-up)");
  report.rows.push_back({"ca_issue", "(a) CA issue, in-process [bound]", run_for(options.seconds, [&](std::size_t i) {
                           need(ca->issue(config.default_ca, csrs[i % csrs.size()], profile, overrides), "CA issue");
                         }), "", 0});

  // --- The EST service in-process: policy, CSR parsing and encoding, no sockets -------------------
  gateway::EstRequest service_enroll;
  service_enroll.method = "POST";
  service_enroll.target = enrolls[0].target;
  service_enroll.headers = enrolls[0].headers;
  service_enroll.client.over_tls = true;
  service_enroll.client.tls_version = TlsVersion::tls1_3;
  service_enroll.client.peer_chain.push_back(device.certificate);
  service_enroll.client.peer_chain.insert(service_enroll.client.peer_chain.end(), device.chain.begin(), device.chain.end());
  service_enroll.client.remote = "127.0.0.1:0";
  std::vector<gateway::EstRequest> service_enrolls;
  for (const auto& request : enrolls) {
    service_enrolls.push_back(service_enroll);
    service_enrolls.back().body = request.body;
  }
  expect_ok(service->handle(service_enrolls[0]), "in-process simpleenroll (warm-up)");
  report.rows.push_back({"service_simpleenroll", "(a2) simpleenroll, EstService in-process",
                         run_for(options.seconds, [&](std::size_t i) {
                           expect_ok(service->handle(service_enrolls[i % service_enrolls.size()]), "in-process simpleenroll");
                         }),
                         "ca_issue", 0});

  // --- (b) simpleenroll over one keep-alive connection -------------------------------------------
  {
    auto connection = need(HttpsConnection::connect(device_client), "connecting as device-factory");
    report.tls = std::string(to_string(connection.tls().version)) + " " + connection.tls().cipher;
    // Warm-up, and proof that the answer is the device's certificate.
    auto first = connection.send(enrolls[0]);
    expect_ok(first, "simpleenroll (warm-up)");
    const auto bag = need(CertsOnly::parse(as_bytes(first->body)), "simpleenroll response");
    if (bag.certificates().size() != 1 || !(bag.certificates().front().subject() == subject) ||
        !(bag.certificates().front().public_key() == keys[0].public_key()))
      throw BenchFailure("simpleenroll answered something other than one certificate for " + subject.to_string());
    report.rows.push_back({"https_simpleenroll_keepalive", "(b) simpleenroll, 1 keep-alive conn",
                           run_for(options.seconds, [&](std::size_t i) {
                             expect_ok_keep_alive(connection, enrolls[i % enrolls.size()], "simpleenroll over keep-alive");
                           }),
                           "ca_issue", 0});
  }

  // --- cacerts: in-process bound, then (c) over keep-alive ----------------------------------------
  gateway::EstRequest service_cacerts;
  service_cacerts.method = "GET";
  service_cacerts.target = cacerts_request().target;
  service_cacerts.client = service_enroll.client;
  service_cacerts.client.peer_chain.clear();
  expect_ok(service->handle(service_cacerts), "in-process cacerts (warm-up)");
  report.rows.push_back({"service_cacerts", "(c0) cacerts, EstService in-process [bound]",
                         run_for(options.seconds, [&](std::size_t) { expect_ok(service->handle(service_cacerts), "in-process cacerts"); }),
                         "", 0});
  const HttpRequest cacerts = cacerts_request();
  {
    auto connection = need(HttpsConnection::connect(client), "connecting without a client certificate");
    auto first = connection.send(cacerts);
    expect_ok(first, "cacerts (warm-up)");
    need(CertsOnly::parse(as_bytes(first->body)), "cacerts response");
    report.rows.push_back({"https_cacerts_keepalive", "(c) cacerts, 1 keep-alive conn",
                           run_for(options.seconds, [&](std::size_t) { expect_ok_keep_alive(connection, cacerts, "cacerts over keep-alive"); }),
                           "service_cacerts", 0});
  }

  // --- (d) a new TLS connection per cacerts: TCP connect, full TLS 1.3 handshake, request, close --
  expect_ok(https_request(client, cacerts), "cacerts on a new connection (warm-up)");
  report.rows.push_back({"https_cacerts_new_connection", "(d) cacerts, new TLS connection each",
                         run_for(options.seconds, [&](std::size_t) {
                           auto connection = need(HttpsConnection::connect(client), "TLS connect");
                           expect_ok(connection.send(cacerts), "cacerts on a new connection");
                           connection.close();
                         }),
                         "https_cacerts_keepalive", 0});

  // --- (e) N clients in parallel, each on its own keep-alive connection ---------------------------
  {
    const auto n = static_cast<std::size_t>(options.clients);
    std::vector<HttpsConnection> connections;
    for (std::size_t c = 0; c < n; ++c) {
      connections.push_back(need(HttpsConnection::connect(device_client), "client " + std::to_string(c) + ": connecting"));
      expect_ok(connections.back().send(enrolls[c % enrolls.size()]), "client " + std::to_string(c) + ": simpleenroll (warm-up)");
    }
    std::atomic<bool> go{false};
    std::atomic<bool> failed{false};
    std::mutex error_mutex;
    std::string first_error;
    std::vector<Sample> samples(n);
    BenchClock::time_point deadline;
    std::vector<std::thread> threads;
    for (std::size_t c = 0; c < n; ++c) {
      threads.emplace_back([&, c] {
        while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
        try {
          for (std::size_t i = c; BenchClock::now() < deadline && !failed; i += n) {
            const auto before = BenchClock::now();
            expect_ok_keep_alive(connections[c], enrolls[i % enrolls.size()], "client " + std::to_string(c) + ": simpleenroll");
            samples[c].latencies_ms.push_back(ms_between(before, BenchClock::now()));
            ++samples[c].count;
          }
        } catch (const std::exception& e) {
          std::lock_guard lock(error_mutex);
          if (!failed.exchange(true)) first_error = e.what();
        }
      });
    }
    const auto start = BenchClock::now();
    deadline = start + std::chrono::duration_cast<BenchClock::duration>(std::chrono::duration<double>(options.seconds));
    go.store(true, std::memory_order_release);
    for (auto& thread : threads) thread.join();
    if (failed) throw BenchFailure(first_error);
    Sample total;
    total.seconds = ms_between(start, BenchClock::now()) / 1000;
    for (auto& s : samples) {
      total.count += s.count;
      total.latencies_ms.insert(total.latencies_ms.end(), s.latencies_ms.begin(), s.latencies_ms.end());
    }
    report.rows.push_back({"https_simpleenroll_parallel",
                           "(e) simpleenroll, " + std::to_string(n) + " clients x 1 keep-alive", std::move(total), "ca_issue", 0});
  }

  for (auto& row : report.rows) {
    if (row.bound_id.empty()) continue;
    auto bound = std::find_if(report.rows.begin(), report.rows.end(), [&](const Row& r) { return r.id == row.bound_id; });
    row.ratio = row.sample.per_second() / bound->sample.per_second();
  }
  report.stats = server->stats();
  server->stop();
  if (report.stats.handshake_failures != 0)
    throw BenchFailure(std::to_string(report.stats.handshake_failures) + " TLS handshakes failed on the gateway");
  report.load_after = load_average();
  return report;
}

const Row& row(const Report& report, const std::string& id) {
  return *std::find_if(report.rows.begin(), report.rows.end(), [&](const Row& r) { return r.id == id; });
}

void print_table(const Options& options, const Report& report) {
  std::printf("estlab gateway bench: key %s, TLS %s, gateway %zu I/O threads, %u CPUs, %.1f s per phase\n",
              options.key_type.c_str(), report.tls.c_str(), kServerThreads, std::thread::hardware_concurrency(), options.seconds);
  std::printf("\n%-46s %8s %10s %7s %6s %8s %8s %8s %8s %6s\n", "operation", "count", "per s", "ratio", "to",
              "mean ms", "p50 ms", "p99 ms", "max ms", ">=30ms");
  for (const auto& r : report.rows) {
    std::string bound = "-";
    if (!r.bound_id.empty()) {
      const std::string& name = row(report, r.bound_id).operation;
      bound = name.substr(0, name.find(' '));
    }
    char ratio[16] = "-";
    if (!r.bound_id.empty()) std::snprintf(ratio, sizeof ratio, "%.3f", r.ratio);
    std::printf("%-46s %8ld %10.1f %7s %6s %8.3f %8.3f %8.3f %8.3f %6ld\n", r.operation.c_str(), r.sample.count,
                r.sample.per_second(), ratio, bound.c_str(), r.sample.mean_ms(), r.sample.percentile_ms(50),
                r.sample.percentile_ms(99), r.sample.max_ms(), r.sample.stalls());
  }
  const auto& keepalive = row(report, "https_cacerts_keepalive").sample;
  const auto& fresh = row(report, "https_cacerts_new_connection");
  std::printf("\nratio = rate / rate of the bound named, measured in this run (1.0 = no overhead over it).\n");
  std::printf("The new-connection row is compared with cacerts over keep-alive, not with a bare OpenSSL handshake:\n"
              "its ratio is what a TCP connect + full TLS 1.3 handshake (no resumption; the client builds a new SSL_CTX\n"
              "each time) + close cost, i.e. about %.2f ms per connection over the keep-alive request.\n",
              fresh.sample.mean_ms() - keepalive.mean_ms());
  const double p99 = keepalive.percentile_ms(99);
  std::printf("cacerts over keep-alive: mean %.3f ms, p99 %.3f ms: %s\n", keepalive.mean_ms(), p99,
              p99 < 10 ? "well under the ~40 ms of a Nagle / delayed-ACK stall"
                       : "WARNING: close to a Nagle / delayed-ACK stall (~40 ms); check TCP_NODELAY on both ends");
  std::printf("(e)'s latencies include queueing: %d clients share %zu gateway I/O threads and one CA that issues one\n"
              "certificate at a time, so they are not evidence of a stall.\n",
              options.clients, kServerThreads);
  std::printf("gateway counted %llu connections, %llu requests, %llu failed handshakes\n",
              static_cast<unsigned long long>(report.stats.connections), static_cast<unsigned long long>(report.stats.requests),
              static_cast<unsigned long long>(report.stats.handshake_failures));
  for (const auto& note : report.notes) std::printf("note: %s\n", note.c_str());
  std::printf("load average before %s, after %s (on a busy machine the rates are noisy; the ratios less so)\n",
              report.load_before.c_str(), report.load_after.c_str());
}

void write_json(const Options& options, const Report& report) {
  std::ostringstream out;
  out << "{\n  \"bench\": \"estlab_gateway_bench\",\n";
  out << "  \"key_type\": " << json_string(options.key_type) << ",\n";
  out << "  \"tls\": " << json_string(report.tls) << ",\n";
  out << "  \"seconds_per_phase\": " << json_number(options.seconds) << ",\n";
  out << "  \"server_threads\": " << kServerThreads << ",\n";
  out << "  \"clients\": " << options.clients << ",\n";
  out << "  \"cpus\": " << std::thread::hardware_concurrency() << ",\n";
  out << "  \"load_average_before\": " << json_string(report.load_before) << ",\n";
  out << "  \"load_average_after\": " << json_string(report.load_after) << ",\n";
  out << "  \"gateway\": {\"connections\": " << report.stats.connections << ", \"requests\": " << report.stats.requests
      << ", \"handshake_failures\": " << report.stats.handshake_failures << "},\n";
  out << "  \"notes\": [";
  for (std::size_t i = 0; i < report.notes.size(); ++i) out << (i ? ", " : "") << json_string(report.notes[i]);
  out << "],\n";
  out << "  \"rows\": [\n";
  for (std::size_t i = 0; i < report.rows.size(); ++i) {
    const auto& r = report.rows[i];
    out << "    {\"id\": " << json_string(r.id) << ", \"operation\": " << json_string(r.operation)
        << ", \"count\": " << r.sample.count << ", \"seconds\": " << json_number(r.sample.seconds)
        << ", \"per_second\": " << json_number(r.sample.per_second())
        << ", \"bound\": " << (r.bound_id.empty() ? "null" : json_string(r.bound_id))
        << ", \"ratio\": " << (r.bound_id.empty() ? "null" : json_number(r.ratio))
        << ", \"latency_ms\": {\"mean\": " << json_number(r.sample.mean_ms())
        << ", \"p50\": " << json_number(r.sample.percentile_ms(50)) << ", \"p99\": " << json_number(r.sample.percentile_ms(99))
        << ", \"max\": " << json_number(r.sample.max_ms()) << ", \"at_least_30ms\": " << r.sample.stalls() << "}}" << (i + 1 < report.rows.size() ? "," : "") << "\n";
  }
  out << "  ]\n}\n";
  std::ofstream file(options.json, std::ios::trunc);
  file << out.str();
  if (!file) throw BenchFailure("cannot write " + options.json);
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"estlab gateway benchmark: EST over loopback HTTPS against bounds measured in the same run\n"
               "(the CA's own issuance rate, the service in-process, keep-alive vs new connections)"};
  app.add_option("--seconds", options.seconds, "Duration of each of the 7 phases")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 60.0));
  app.add_option("--key-type", options.key_type, "Key type of the lab (CAs, TLS) and of the CSRs")
      ->capture_default_str()
      ->check(CLI::IsMember({"ec-p256", "rsa2048"}));
  app.add_option("--clients", options.clients, "Parallel clients in the last phase")->capture_default_str()->check(CLI::Range(1, 64));
  app.add_option("--json", options.json, "Also write the results as JSON to this file");
  app.footer("Exit codes: 0 measured, 1 a request failed or timed out (the message says which), 2 usage.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }

  try {
    TempDir dir;
    const Report report = run(options, dir.path());
    print_table(options, report);
    if (!options.json.empty()) write_json(options, report);
    return kExitOk;
  } catch (const std::exception& e) {  // BenchFailure, and ConfigError from loading est.properties
    std::fflush(stdout);
    std::cerr << "estlab_gateway_bench: FAILED: " << e.what() << "\n";
    return kExitFailed;
  }
}
