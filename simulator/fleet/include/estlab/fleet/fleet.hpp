// The device fleet (issue 12): N simulated devices on a few Asio event loops (one per thread,
// never a thread per device), each with a behaviour from a weighted mix, over HTTPS against a
// Target (the embedded lab's or a target file's, the same as `estlab run`). Closed loop (a fixed
// number of devices in flight) or open loop (arrivals per second); a device count or a duration.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "estlab/network/relay.hpp"
#include "estlab/conformance/target.hpp"
#include "estlab/core/key.hpp"
#include "estlab/core/result.hpp"

namespace estlab::fleet {

enum class Behaviour {
  enroll,        // first enrollment with the factory certificate (role device-factory)
  reenroll,      // enroll, then re-enroll with the certificate just issued and a new key
  basic,         // a preregistered device: HTTP Basic, no client certificate
  revoked,       // a device whose certificate was revoked (role device-revoked): expects a refusal
  no_eku,        // a device certificate without the clientAuth EKU (role device-no-eku)
  serverkeygen,  // asks the server to generate its key
  approval,      // enrolls where an operator approves: polls on Retry-After (202) or Max-Age (5.03)
};

// How devices talk to the target: HTTPS to the gateway, or EST-coaps (RFC 9148) to its CoAP proxy.
enum class Transport { https, coaps };
std::string_view to_string(Transport transport);
std::string_view to_string(Behaviour behaviour);
const std::vector<Behaviour>& all_behaviours();

// "enroll=70,reenroll=20,basic=10": weights, not percentages; the error names the bad part.
struct BehaviourMix {
  std::vector<std::pair<Behaviour, unsigned>> weights;
  static Result<BehaviourMix> parse(std::string_view text);
  // Device i's behaviour: a deterministic interleaving that keeps the proportions at every prefix.
  Behaviour pick(std::uint64_t device) const;
  std::string to_string() const;
};

struct FleetOptions {
  std::uint64_t devices = 100;            // how many devices live (ignored when duration is set)
  std::chrono::milliseconds duration{0};  // > 0: start devices until then, then wait for those in flight
  std::size_t concurrency = 32;           // closed loop: devices in flight at once
  double rate = 0;                        // > 0: open loop, devices started per second
  std::size_t max_in_flight = 10'000;     // open loop: arrivals beyond this wait (reported)
  std::size_t threads = 1;                // event loops
  BehaviourMix mix;
  KeyType key_type = KeyType::ec_p256;
  std::uint64_t seed = 1;                 // names of devices: fleet-<seed>-<n>
  Transport transport = Transport::https;
  int max_polls = 10;                     // a device waiting for approval polls this often at most
  std::chrono::milliseconds timeout{15'000};  // per exchange phase
  // This process runs shard shard_index of shard_count (--shard I/N): the devices n with
  // n % N == I, so N processes on N hosts split one fleet; `estlab fleet merge` joins their JSON.
  std::uint64_t shard_index = 0;
  std::uint64_t shard_count = 1;
  // coaps: the devices reach the proxy through the lab's impaired relay (loss, reordering, MTU...).
  std::optional<network::Impairment> network;
};

// "I/N" with 0 <= I < N.
Result<std::pair<std::uint64_t, std::uint64_t>> parse_shard(std::string_view text);

struct Progress {
  std::uint64_t started = 0;
  std::uint64_t finished = 0;
  std::uint64_t target = 0;  // 0 when a duration governs
  std::uint64_t errors = 0;
  double elapsed_s = 0;
};

// One HTTP exchange of one device.
struct ExchangeRecord {
  Behaviour behaviour = Behaviour::enroll;
  std::string operation;  // simpleenroll, simplereenroll, serverkeygen
  int status = 0;         // 0 = no answer (error says why); coaps codes as 100*class+detail (2.04 = 204)
  double latency_ms = 0;
  double finished_at_s = 0;  // since the fleet started
  std::string error;
  int polls = 0;          // waiting answers (202, 5.03) this device had for the operation before this one
  double waited_ms = 0;   // since the device first sent the operation: the time to approval on the last answer
};

struct LatencySummary {
  std::uint64_t count = 0;
  double p50 = 0, p95 = 0, p99 = 0, max = 0, mean = 0;
};
LatencySummary summarize(std::vector<double> latencies_ms);

struct FleetReport {
  std::string target;
  std::string profile;
  FleetOptions options;
  std::uint64_t devices = 0;  // devices that lived
  double wall_s = 0;
  std::vector<ExchangeRecord> exchanges;
  std::uint64_t arrivals_delayed = 0;  // open loop: arrivals that waited for max_in_flight
  std::string network;  // --network: the impairment, its seed and what the relay did; "" without

  std::uint64_t errors() const;  // exchanges without an HTTP answer
  double exchanges_per_second() const;
  // behaviour -> status -> count ("error" for no answer).
  std::map<std::string, std::map<std::string, std::uint64_t>> outcomes() const;
  std::map<std::string, std::uint64_t> errors_by_message() const;
  LatencySummary latency() const;  // of answered exchanges
  // Finished exchanges per whole second since the start.
  std::vector<std::uint64_t> throughput_per_second() const;
  // Devices that waited for approval and got their certificate: how long from their first request
  // to the issuing answer, and how often they polled in all.
  LatencySummary time_to_approval() const;
  std::uint64_t approval_polls() const;
};

// Runs the fleet; throws ConfigError when the target lacks what the mix needs (a role, the
// preregistered credential), naming it. on_progress is called from a monitor thread.
// approval_target serves the behaviour 'approval' (a gateway with manual approval); null = target.
FleetReport run_fleet(const conformance::Target& target, const FleetOptions& options,
                      const std::function<void(const Progress&)>& on_progress = {},
                      const conformance::Target* approval_target = nullptr);

std::string to_json(const FleetReport& report);
// Reads what to_json wrote (its "records" carry every exchange); ConfigError names what is wrong.
FleetReport from_json(const std::string& text, const std::string& source);
// One report of the shards' reports: exchanges and devices added, the longest wall time.
FleetReport merge(const std::vector<FleetReport>& shards);
std::string to_html(const FleetReport& report);  // one self-contained page
std::string to_text(const FleetReport& report);  // the console summary

}  // namespace estlab::fleet
