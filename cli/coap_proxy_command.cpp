// `estlab coap-proxy`: the EST-coaps proxy (RFC 9148) in front of an EST gateway, configured by coap.properties.

#include <iostream>

#include "commands.hpp"
#include "serve.hpp"
#include "estlab/coap_proxy/proxy.hpp"

namespace estlab::cli {
namespace {

struct CoapProxyOptions {
  std::string lab;
  std::string config;
  std::string host;
  int port = -1;
  std::string port_file;
  std::string est_url;
  std::string duplicates;
  std::vector<std::string> faults;
  bool quiet = false;
};

int list_faults() {
  std::cout << "Faults (each makes the proxy wrong in one way; repeat --fault for several):\n";
  for (const auto& fault : coap_proxy::all_proxy_faults())
    std::cout << "  " << fault.name << std::string(fault.name.size() < 26 ? 26 - fault.name.size() : 1, ' ') << fault.description
              << "  [" << fault.requirement << "]\n";
  return kExitOk;
}

int run_coap_proxy(const CoapProxyOptions& o) {
  for (const auto& name : o.faults)
    if (name == "list") return list_faults();
  std::filesystem::path config_file = o.config;
  if (config_file.empty()) {
    if (o.lab.empty()) {
      std::cerr << "estlab coap-proxy: give --lab DIR (a fixture directory) or --config coap.properties\n";
      return kExitUsage;
    }
    config_file = std::filesystem::path(o.lab) / "config" / "coap.properties";
  }
  if (!std::filesystem::exists(config_file)) {
    std::cerr << "estlab coap-proxy: " << config_file.string() << " does not exist\n";
    return kExitUsage;
  }
  auto config = coap_proxy::CoapProxyConfig::load(config_file);  // ConfigError -> exit 2
  if (!o.host.empty()) config.listen_host = o.host;
  if (o.port >= 0) config.port = static_cast<std::uint16_t>(o.port);
  if (!o.est_url.empty()) {
    coap_proxy::parse_upstream_url(o.est_url);
    config.est_url = o.est_url;
  }
  if (!o.duplicates.empty()) {
    if (o.duplicates == "refuse") config.duplicate_ca_subjects = coap_proxy::DuplicateCaSubjects::refuse;
    else if (o.duplicates == "ignore-later") config.duplicate_ca_subjects = coap_proxy::DuplicateCaSubjects::ignore_later;
    else {
      std::cerr << "estlab coap-proxy: --duplicate-ca-subjects must be refuse or ignore-later\n";
      return kExitUsage;
    }
  }
  for (const auto& name : o.faults) {
    auto fault = coap_proxy::parse_proxy_fault(name);
    if (!fault) {
      std::cerr << "estlab coap-proxy: unknown fault '" << name << "' (--fault list shows them)\n";
      return kExitUsage;
    }
    config.faults.insert(*fault);
  }
  for (const auto& warning : config.warnings) std::cerr << "estlab coap-proxy: warning: " << warning << "\n";

  StopSignals stop_signals;

  coap_proxy::LogSink log = coap_proxy::stderr_log_sink();
  if (o.quiet) log = [](const std::string& line) {
    if (line.rfind("coap-proxy: op=", 0) != 0) std::cerr << line << std::endl;
  };
  auto proxy = coap_proxy::CoapProxy::start(config, log);
  if (!proxy.ok()) {
    std::cerr << "estlab coap-proxy: " << proxy.error().message << "\n";
    return kExitUsage;
  }
  std::cout << "estlab coap-proxy: listening on coaps://" << config.listen_host << ":" << (*proxy)->port()
            << "/.well-known/est -> " << config.est_url;
  if (!config.faults.empty()) {
    std::cout << " (FAULTS";
    for (auto fault : config.faults) std::cout << " " << coap_proxy::to_string(fault);
    std::cout << ")";
  }
  std::cout << std::endl;
  if (!o.port_file.empty()) {
    if (auto failed = write_port_file(o.port_file, (*proxy)->port()); !failed.empty()) {
      std::cerr << "estlab coap-proxy: " << failed << "\n";
      (*proxy)->stop();
      return kExitUsage;
    }
  }
  stop_signals.wait();
  (*proxy)->stop();
  const auto stats = (*proxy)->stats();
  std::cout << "estlab coap-proxy: stopped (" << stats.requests << " requests, " << stats.forwarded << " forwarded, "
            << stats.dtls_failures << " failed handshakes)" << std::endl;
  return kExitOk;
}

}  // namespace

void register_coap_proxy(CLI::App& app, Action& action) {
  auto o = std::make_shared<CoapProxyOptions>();
  CLI::App* cmd = app.add_subcommand("coap-proxy", "Run the EST-coaps proxy (RFC 9148, DTLS) in front of an EST gateway until SIGINT/SIGTERM");
  cmd->add_option("--lab", o->lab, "Fixture directory (from `estlab fixtures`); reads DIR/config/coap.properties");
  cmd->add_option("--config", o->config, "coap.properties to read");
  cmd->add_option("--host", o->host, "Listen address (default: estlab.listen.host, else 127.0.0.1)");
  cmd->add_option("--port", o->port, "UDP port; 0 picks a free one (default: coap.port, else 5684)");
  cmd->add_option("--port-file", o->port_file, "Write the port listened on to this file once listening");
  cmd->add_option("--est-url", o->est_url, "The EST gateway, https://host:port/.well-known/est (default: est.url)");
  cmd->add_option("--duplicate-ca-subjects", o->duplicates,
                  "PG-COAP-5 reading: refuse (do not start) or ignore-later (keep the first CA of a subject)");
  cmd->add_option("--fault", o->faults, "Make the proxy wrong in one named way (repeatable); `--fault list` lists them");
  cmd->add_flag("--quiet", o->quiet, "No per-request log lines on stderr");
  cmd->footer("Exit codes: 0 stopped by a signal, 2 bad configuration (including PG-COAP-5/6 refusals).");
  cmd->callback([o, &action] { action = [o] { return run_coap_proxy(*o); }; });
}

}  // namespace estlab::cli
