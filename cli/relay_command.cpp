// `estlab relay`: the lab's impaired network path on its own, in front of any EST-coaps server
// (the lab's proxy or a vendor's), so real devices and other clients can be run through loss,
// reordering, an MTU clamp or split ClientHellos (FB-37).

#include <iostream>

#include "commands.hpp"
#include "serve.hpp"
#include "estlab/network/relay.hpp"

namespace estlab::cli {
namespace {

struct RelayOptions {
  std::string to;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string port_file;
  std::string impair;
};

int run_relay(const RelayOptions& o) {
  const auto colon = o.to.rfind(':');
  int server_port = 0;
  if (colon == std::string::npos || colon == 0 || (server_port = std::atoi(o.to.c_str() + colon + 1)) <= 0 || server_port > 65535) {
    std::cerr << "estlab relay: --to must be HOST:PORT (the EST-coaps server), not '" << o.to << "'\n";
    return kExitUsage;
  }
  std::string server_host = o.to.substr(0, colon);
  if (server_host.size() > 2 && server_host.front() == '[' && server_host.back() == ']') server_host = server_host.substr(1, server_host.size() - 2);
  auto impairment = network::parse_impairment(o.impair);
  if (!impairment.ok()) {
    std::cerr << "estlab relay: " << impairment.error().message << "\n";
    return kExitUsage;
  }
  StopSignals stop_signals;
  auto relay = network::ImpairedRelay::start(server_host, static_cast<std::uint16_t>(server_port), *impairment, o.host,
                                             static_cast<std::uint16_t>(o.port));
  if (!relay.ok()) {
    std::cerr << "estlab relay: " << relay.error().message << "\n";
    return kExitUsage;
  }
  std::cout << "estlab relay: udp " << o.host << ":" << (*relay)->port() << " -> " << o.to << ": " << impairment->describe() << std::endl;
  if (!o.port_file.empty()) {
    if (auto failed = write_port_file(o.port_file, (*relay)->port()); !failed.empty()) {
      std::cerr << "estlab relay: " << failed << "\n";
      (*relay)->stop();
      return kExitUsage;
    }
  }
  stop_signals.wait();
  (*relay)->stop();
  std::cout << "estlab relay: stopped: " << (*relay)->stats().describe() << std::endl;
  return kExitOk;
}

}  // namespace

void register_relay(CLI::App& app, Action& action) {
  auto o = std::make_shared<RelayOptions>();
  CLI::App* cmd = app.add_subcommand("relay", "Relay UDP (EST-coaps) to a server through an impaired path (loss, reordering, MTU, split ClientHellos) until SIGINT/SIGTERM");
  cmd->add_option("--to", o->to, "The EST-coaps server, HOST:PORT")->required();
  cmd->add_option("--host", o->host, "Listen address (default 127.0.0.1)");
  cmd->add_option("--port", o->port, "UDP port to listen on; 0 picks a free one")->check(CLI::Range(0, 65535));
  cmd->add_option("--port-file", o->port_file, "Write the port listened on to this file once listening");
  cmd->add_option("--impair", o->impair,
                  "KEY=VALUE,...: loss, duplicate, reorder (\"20%\"), delay, jitter (\"30ms\"), mtu (bytes), "
                  "split-client-hello (none, before-cookie, after-cookie, always), seed");
  cmd->footer("Each device gets its own upstream socket and its own random stream from the seed, so a run repeats.\n"
              "Exit codes: 0 stopped by a signal (the counts are printed), 2 bad arguments.");
  cmd->callback([o, &action] { action = [o] { return run_relay(*o); }; });
}

}  // namespace estlab::cli
