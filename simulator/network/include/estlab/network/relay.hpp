// An impaired network path for datagrams: a UDP relay that devices talk to instead of an EST-coaps
// server, and that loses, duplicates, reorders, delays and size-clamps what passes, in both
// directions, decided by a seeded generator so a run can be repeated. It can also split a DTLS
// ClientHello into two fragments (FB-37, what a stack behind a small MTU sends) or drop fragmented
// ClientHellos (the FB-37 bug itself, for the proxy's fault).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "estlab/core/result.hpp"

namespace estlab::network {

enum class ClientHelloSplit {
  none,
  before_cookie,  // ClientHellos without a cookie: the first flight, before HelloVerifyRequest
  after_cookie,   // ClientHellos answering a HelloVerifyRequest
  always,
};

struct Impairment {
  double loss = 0;       // 0..1: each datagram, each direction, is lost with this probability
  double duplicate = 0;  // 0..1: a datagram is sent twice
  double reorder = 0;    // 0..1: a datagram is held back until the next one in its direction passed
  std::chrono::milliseconds delay{0};
  std::chrono::milliseconds jitter{0};  // each datagram's delay varies uniformly by +- jitter
  // The path's IP MTU (0 = none). A datagram whose IP packet (payload + 28 bytes of IPv4 and UDP
  // headers) is larger is dropped, as on a path that does not fragment (IPv6, or DF set).
  std::size_t mtu = 0;
  ClientHelloSplit split_client_hello = ClientHelloSplit::none;
  bool drop_fragmented_client_hello = false;
  std::uint64_t seed = 1;

  bool active() const;
  std::string describe() const;  // "loss 20%, mtu 576 (seed 7)"
};

// Settings as a scenario or a command line writes them: loss, duplicate, reorder ("20%" or
// "0.2"), delay, jitter ("30ms", "1s"), mtu (bytes, >= 68), split-client-hello (none,
// before-cookie, after-cookie, always), seed. Errors name the key and the value.
Result<Impairment> parse_impairment(const std::vector<std::pair<std::string, std::string>>& settings);
// "loss=20%,mtu=576,seed=7": the same keys, for command lines.
Result<Impairment> parse_impairment(const std::string& comma_separated);
const std::vector<std::string>& impairment_keys();

struct RelayStats {
  std::uint64_t flows = 0;           // devices (source addresses) seen
  std::uint64_t to_server = 0;       // datagrams received from devices
  std::uint64_t to_device = 0;       // datagrams received from the server
  std::uint64_t lost = 0;
  std::uint64_t lost_to_device = 0;  // of them, the server's datagrams
  std::uint64_t too_big = 0;         // dropped by the MTU clamp
  std::uint64_t duplicated = 0;
  std::uint64_t reordered = 0;
  std::uint64_t client_hellos_split = 0;
  std::uint64_t fragmented_client_hellos_dropped = 0;
  std::uint64_t refused_flows = 0;   // devices beyond the flow limit

  std::string describe() const;  // "412 datagrams to the server, 398 back; 81 lost, 2 duplicated"
};

class ImpairedRelay {
 public:
  // Listens on listen_host:listen_port (0: any free port) and relays to server_host:server_port,
  // one upstream socket per device so the server tells devices apart by address.
  static Result<std::unique_ptr<ImpairedRelay>> start(const std::string& server_host, std::uint16_t server_port,
                                                      const Impairment& impairment, const std::string& listen_host = "127.0.0.1",
                                                      std::uint16_t listen_port = 0);
  ~ImpairedRelay();
  ImpairedRelay(const ImpairedRelay&) = delete;
  ImpairedRelay& operator=(const ImpairedRelay&) = delete;

  std::uint16_t port() const;
  const Impairment& impairment() const;
  RelayStats stats() const;
  void stop();

  struct Impl;

 private:
  explicit ImpairedRelay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace estlab::network
