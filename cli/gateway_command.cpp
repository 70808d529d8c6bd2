// `estlab gateway`: the reference EST gateway over HTTPS, configured by est.properties.

#include <iostream>

#include "commands.hpp"
#include "serve.hpp"
#include "estlab/ca/ca.hpp"
#include "estlab/gateway/config.hpp"
#include "estlab/gateway/idm_gate.hpp"
#include "estlab/gateway/server.hpp"
#include "estlab/gateway/service.hpp"

namespace estlab::cli {
namespace {

struct GatewayOptions {
  std::string lab;
  std::string config;
  std::string profile;
  std::string host;
  int port = -1;
  std::string port_file;
  std::vector<std::string> faults;
  std::string transcript;
  bool transcript_secrets = false;
  std::string keylog;
  std::string tls_min;
  std::string tls_max;
  std::size_t threads = 2;
  bool quiet = false;
  std::string approval;
  std::string idm_url;
};

int list_faults() {
  std::cout << "Faults (each makes the gateway wrong in one way; repeat --fault for several):\n";
  for (const auto& fault : gateway::all_faults())
    std::cout << "  " << fault.name << std::string(fault.name.size() < 28 ? 28 - fault.name.size() : 1, ' ')
              << fault.description << "  [" << fault.requirement << "]\n";
  return kExitOk;
}

int run_gateway(const GatewayOptions& o) {
  for (const auto& name : o.faults)
    if (name == "list") return list_faults();

  std::filesystem::path config_file = o.config;
  if (config_file.empty()) {
    if (o.lab.empty()) {
      std::cerr << "estlab gateway: give --lab DIR (a fixture directory) or --config est.properties\n";
      return kExitUsage;
    }
    config_file = std::filesystem::path(o.lab) / "config" / "est.properties";
  }
  if (!std::filesystem::exists(config_file)) {
    std::cerr << "estlab gateway: " << config_file.string() << " does not exist"
              << (o.lab.empty() ? "" : " (make a lab with `estlab fixtures DIR`)") << "\n";
    return kExitUsage;
  }
  std::optional<gateway::Profile> profile;
  if (!o.profile.empty()) {
    profile = gateway::parse_profile(o.profile);
    if (!profile) {
      std::cerr << "estlab gateway: --profile must be rfc7030 or protocol-gateway, not '" << o.profile << "'\n";
      return kExitUsage;
    }
  }
  gateway::GatewayConfig config = gateway::GatewayConfig::load(config_file, profile);  // ConfigError -> exit 2
  if (!o.host.empty()) config.listen_host = o.host;
  if (o.port >= 0) config.port = static_cast<std::uint16_t>(o.port);
  for (const auto& name : o.faults) {
    auto fault = gateway::parse_fault(name);
    if (!fault) {
      std::cerr << "estlab gateway: unknown fault '" << name << "' (estlab gateway --fault list shows them)\n";
      return kExitUsage;
    }
    config.faults.insert(*fault);
  }
  if (!o.transcript.empty()) config.transcript_dir = o.transcript;
  if (o.transcript_secrets) config.transcript_secrets = true;
  if (!o.keylog.empty()) config.keylog_file = o.keylog;
  for (auto [text, target] : {std::pair{&o.tls_min, &config.min_tls}, std::pair{&o.tls_max, &config.max_tls}}) {
    if (text->empty()) continue;
    auto version = parse_tls_version(*text);
    if (!version) {
      std::cerr << "estlab gateway: TLS version must be 1.2 or 1.3 (or 1.0/1.1 to test refusals), not '" << *text << "'\n";
      return kExitUsage;
    }
    *target = *version;
  }
  if (config.ca_store.empty()) {
    std::cerr << "estlab gateway: " << config_file.string() << ": estlab.ca.store is not set\n";
    return kExitUsage;
  }
  for (const auto& warning : config.warnings) std::cerr << "estlab gateway: warning: " << warning << "\n";

  auto ca = ca::SimulatedCa::open({config.ca_store});
  if (!ca.ok()) {
    std::cerr << "estlab gateway: CA store: " << ca.error().message << "\n";
    return kExitUsage;
  }
  if (!o.approval.empty()) {
    if (o.approval != "manual" && o.approval != "automatic") {
      std::cerr << "estlab gateway: --approval must be manual or automatic, not '" << o.approval << "'\n";
      return kExitUsage;
    }
    config.approval = o.approval == "manual" ? gateway::ApprovalMode::manual : gateway::ApprovalMode::automatic;
  }
  if (!o.idm_url.empty()) {
    if (config.idm_handlers.empty()) {
      std::cerr << "estlab gateway: --idm-url needs a handler.<n>.idm.tls.token in " << config_file.string() << "\n";
      return kExitUsage;
    }
    config.idm_handlers.front().request_url = o.idm_url;
  }
  std::shared_ptr<ca::SimulatedCa> shared_ca(std::move(ca).value());
  // Manual approval asks the identity manager the handler names (PG-IDM-2); without one, an
  // operator queue in memory.
  std::shared_ptr<gateway::ApprovalGate> approver;
  if (config.approval == gateway::ApprovalMode::manual && !config.idm_handlers.empty()) {
    std::vector<Certificate> anchors;
    if (auto cas = shared_ca->list(); cas.ok())
      for (const auto& info : *cas)
        if (info.parent_label.empty()) anchors.push_back(info.certificate);
    auto gate = gateway::IdmApprovalGate::create(config.idm_handlers.front(), anchors);
    if (!gate.ok()) {
      std::cerr << "estlab gateway: " << gate.error().message << "\n";
      return kExitUsage;
    }
    approver = *gate;
    std::cout << "estlab gateway: manual approval by the identity manager at " << config.idm_handlers.front().request_url << std::endl;
  }
  auto service = std::make_shared<gateway::EstService>(config, shared_ca, approver);

  StopSignals stop_signals;  // before the I/O threads start, so only its wait() sees them

  gateway::LogSink log = o.quiet ? gateway::LogSink{} : gateway::stderr_log_sink();
  auto server = gateway::GatewayServer::start(service, o.threads, log);
  if (!server.ok()) {
    std::cerr << "estlab gateway: " << server.error().message << "\n";
    return kExitUsage;
  }
  std::string labels;
  for (const auto& label : service->labels()) labels += (labels.empty() ? "" : ", ") + label;
  std::string faults;
  for (auto fault : config.faults) faults += (faults.empty() ? "" : ", ") + std::string(gateway::to_string(fault));
  std::cout << "estlab gateway: listening on " << (*server)->base_url() << "/.well-known/est (profile "
            << gateway::to_string(config.profile) << ", CA labels " << labels << ", default " << config.default_ca
            << (faults.empty() ? "" : ", FAULTS " + faults) << ")" << std::endl;
  if (!o.port_file.empty()) {
    if (auto failed = write_port_file(o.port_file, (*server)->port()); !failed.empty()) {
      std::cerr << "estlab gateway: " << failed << "\n";
      (*server)->stop();
      return kExitUsage;
    }
  }
  stop_signals.wait();
  (*server)->stop();
  const auto stats = (*server)->stats();
  std::cout << "estlab gateway: stopped (" << stats.connections << " connections, " << stats.requests << " requests, "
            << stats.handshake_failures << " failed handshakes)" << std::endl;
  return kExitOk;
}

}  // namespace

void register_gateway(CLI::App& app, Action& action) {
  auto o = std::make_shared<GatewayOptions>();
  CLI::App* cmd = app.add_subcommand("gateway", "Run the reference EST gateway (RFC 7030 over HTTPS) until SIGINT/SIGTERM");
  cmd->add_option("--lab", o->lab, "Fixture directory (from `estlab fixtures`); reads DIR/config/est.properties");
  cmd->add_option("--config", o->config, "est.properties to read (relative paths in it are taken from its directory)");
  cmd->add_option("--profile", o->profile, "rfc7030 or protocol-gateway (default: estlab.profile in est.properties)");
  cmd->add_option("--host", o->host, "Listen address (default 127.0.0.1)");
  cmd->add_option("--port", o->port, "Listen port; 0 picks a free one (default: estlab.listen.port, else 8443)");
  cmd->add_option("--port-file", o->port_file, "Write the port listened on to this file once listening");
  cmd->add_option("--fault", o->faults, "Make the gateway wrong in one named way (repeatable); `--fault list` lists them");
  cmd->add_option("--transcript", o->transcript, "Record every exchange as a YAML file in this directory");
  cmd->add_flag("--transcript-secrets", o->transcript_secrets,
                "Transcripts show Authorization values (passwords) as sent; redacted by default (estlab.transcript.secrets)");
  cmd->add_option("--keylog", o->keylog, "Write TLS secrets (NSS key log) here; default: $SSLKEYLOGFILE if set");
  cmd->add_option("--tls-min", o->tls_min, "Lowest TLS version (1.2 unless configured)");
  cmd->add_option("--tls-max", o->tls_max, "Highest TLS version (1.3 unless configured)");
  cmd->add_option("--threads", o->threads, "I/O threads")->capture_default_str()->check(CLI::Range(1, 64));
  cmd->add_flag("--quiet", o->quiet, "No per-request log lines on stderr");
  cmd->add_option("--approval", o->approval, "manual or automatic (default: estlab.approval); manual asks the IDM of handler.<n>.idm.*");
  cmd->add_option("--idm-url", o->idm_url, "The IDM's request URL, over handler.<n>.idm.requestUrl (e.g. from `estlab idm`)");
  cmd->footer("Logs one line per request on stderr: client subject, operation, the rule that decided, status.\n"
              "Exit codes: 0 stopped by a signal, 2 bad configuration.");
  cmd->callback([o, &action] { action = [o] { return run_gateway(*o); }; });
}

}  // namespace estlab::cli
