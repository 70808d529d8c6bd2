// `estlab idm`: the simulated identity manager (PG-IDM-1/2). Without a subcommand it serves the
// IDM over HTTPS until SIGINT/SIGTERM; `list`, `show`, `approve`, `reject` are an operator's
// commands against a running IDM's REST API.
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <iostream>

#include "commands.hpp"
#include "serve.hpp"
#include "estlab/core/https_client.hpp"
#include "estlab/gateway/config.hpp"
#include "estlab/gateway/idm_gate.hpp"
#include "estlab/gateway/server.hpp"
#include "estlab/idm/service.hpp"

namespace estlab::cli {
namespace {

namespace fs = std::filesystem;

struct IdmCliOptions {
  std::string lab;
  std::string host;
  int port = 8444;
  std::string policy = "manual";
  std::vector<std::string> gateway_certs;
  bool quiet = false;
  // Operator commands.
  std::string url;    // default: the running IDM's, from LAB/idm/url
  std::string token;  // default: LAB/idm/operator-token
  std::string id;
  std::string reason;
  std::string operator_name;
  std::string state = "pending";
  bool json = false;
};

fs::path idm_dir(const IdmCliOptions& o) { return fs::path(o.lab) / "idm"; }

bool write_private(const fs::path& file, const std::string& text) {
  // Created 0600 before anything is written: the token never sits in a readable file.
  std::error_code ec;
  fs::remove(file, ec);
  const mode_t old = ::umask(077);
  std::ofstream out(file, std::ios::trunc);
  out << text << "\n";
  ::umask(old);
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace, ec);
  return static_cast<bool>(out) && !ec;
}

int serve(const IdmCliOptions& o) {
  if (o.lab.empty()) {
    std::cerr << "estlab idm: give --lab DIR (a fixture directory from `estlab fixtures`)\n";
    return kExitUsage;
  }
  const fs::path properties = fs::path(o.lab) / "config" / "est.properties";
  if (!fs::exists(properties)) {
    std::cerr << "estlab idm: " << properties.string() << " does not exist (make a lab with `estlab fixtures DIR`)\n";
    return kExitUsage;
  }
  auto policy = gateway::parse_operator_policy(o.policy);
  if (!policy) {
    std::cerr << "estlab idm: --policy must be manual, approve-after=N (N >= 1), reject=REASON or never; not '" << o.policy << "'\n";
    return kExitUsage;
  }
  // The IDM serves with the lab's TLS identity and pins the gateway's client certificate: the
  // token its handler.<n>.idm.tls.token names (PG-IDM-2).
  const auto lab_config = gateway::GatewayConfig::load(properties);  // ConfigError -> exit 2
  idm::IdmOptions options;
  options.server = lab_config;
  options.server.listen_host = o.host.empty() ? lab_config.listen_host : o.host;
  options.server.port = static_cast<std::uint16_t>(o.port);
  options.server.transcript_dir.clear();
  options.server.faults.clear();
  for (const auto& handler : lab_config.idm_handlers) {
    auto token = TlsIdentity::load_pkcs12(handler.token, handler.token_password);
    if (!token.ok()) {
      std::cerr << "estlab idm: handler." << handler.number << ".idm.tls.token: " << token.error().message << "\n";
      return kExitUsage;
    }
    options.gateway_fingerprints.push_back(token->certificate.sha256_fingerprint());
    if (auto endpoint = gateway::parse_idm_url(handler.request_url); endpoint.ok()) options.gateway_path = endpoint->path;
  }
  for (const auto& file : o.gateway_certs) {
    auto bytes = read_file_bytes(file);
    auto cert = bytes.ok() ? Certificate::parse(*bytes) : Result<Certificate>(bytes.error());
    if (!cert.ok()) {
      std::cerr << "estlab idm: --gateway-cert " << file << ": " << cert.error().message << "\n";
      return kExitUsage;
    }
    options.gateway_fingerprints.push_back(cert->sha256_fingerprint());
  }
  if (options.gateway_fingerprints.empty()) {
    std::cerr << "estlab idm: " << properties.string()
              << " names no handler.<n>.idm.tls.token and no --gateway-cert was given: no gateway could call the IDM\n";
    return kExitUsage;
  }
  std::error_code ec;
  fs::create_directories(idm_dir(o), ec);
  if (ec) {
    std::cerr << "estlab idm: cannot create " << idm_dir(o).string() << ": " << ec.message() << "\n";
    return kExitUsage;
  }
  auto store = idm::IdmStore::open(idm_dir(o) / "idm.db");
  if (!store.ok()) {
    std::cerr << "estlab idm: " << store.error().message << "\n";
    return kExitUsage;
  }
  options.operator_token = idm::make_token();
  options.policy = *policy;
  const std::string token = options.operator_token;
  const std::string gateway_path = options.gateway_path;
  auto service = std::make_shared<idm::IdmService>(std::move(options), std::shared_ptr<idm::IdmStore>(std::move(store).value()));

  StopSignals stop_signals;
  auto server = gateway::GatewayServer::start(service, 2, o.quiet ? gateway::LogSink{} : gateway::stderr_log_sink());
  if (!server.ok()) {
    std::cerr << "estlab idm: " << server.error().message << "\n";
    return kExitUsage;
  }
  const std::string base = (*server)->base_url();
  if (!write_private(idm_dir(o) / "operator-token", token) || !write_private(idm_dir(o) / "url", base)) {
    std::cerr << "estlab idm: cannot write " << idm_dir(o).string() << "/operator-token and url\n";
    (*server)->stop();
    return kExitUsage;
  }
  std::cout << "estlab idm: listening on " << base << "\n"
            << "  operator page:  " << base << "/idm/\n"
            << "  operator API:   " << base << "/idm/api/ (Authorization: Bearer <token>)\n"
            << "  gateway API:    " << base << gateway_path << " (mutual TLS, the gateway's idm.tls.token)\n"
            << "  operator token: " << token << " (also in " << (idm_dir(o) / "operator-token").string() << ", mode 0600)\n"
            << "  policy:         " << o.policy << std::endl;
  stop_signals.wait();
  (*server)->stop();
  std::cout << "estlab idm: stopped" << std::endl;
  return kExitOk;
}

// --- Operator commands against a running IDM -------------------------------------------------

struct Client {
  HttpsClientOptions options;
  std::string token;
};

Result<std::string> read_trimmed(const fs::path& file) {
  auto bytes = read_file_bytes(file.string());
  if (!bytes.ok()) return bytes.error();
  std::string text(bytes->begin(), bytes->end());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  return text;
}

Result<Client> client_for(const IdmCliOptions& o) {
  Client c;
  std::string url = o.url;
  if (url.empty()) {
    auto text = read_trimmed(idm_dir(o) / "url");
    if (!text.ok()) return make_error(ErrorCode::not_found, "no running IDM for this lab (" + text.error().message + "); start `estlab idm --lab " + o.lab + "`");
    url = *text;
  }
  c.token = o.token;
  if (c.token.empty()) {
    auto text = read_trimmed(idm_dir(o) / "operator-token");
    if (!text.ok()) return make_error(ErrorCode::not_found, "no operator token (" + text.error().message + ")");
    c.token = *text;
  }
  auto endpoint = gateway::parse_idm_url(url);
  if (!endpoint.ok()) return endpoint.error();
  c.options.host = endpoint->host;
  c.options.port = endpoint->port;
  if (!o.lab.empty()) {
    auto anchors = read_file_bytes((fs::path(o.lab) / "trust" / "anchors.pem").string());
    if (!anchors.ok()) return anchors.error();
    auto certs = Certificate::parse_all(*anchors);
    if (!certs.ok()) return certs.error();
    c.options.trust_anchors = *certs;
  } else {
    return make_error(ErrorCode::invalid_input, "--lab DIR is needed for the trust anchors that validate the IDM's certificate");
  }
  c.options.connect_timeout = c.options.handshake_timeout = c.options.io_timeout = std::chrono::milliseconds(5000);
  return c;
}

Result<YAML::Node> call(const Client& c, const std::string& method, const std::string& path, const std::string& body) {
  HttpRequest request;
  request.method = method;
  request.target = "/idm/api/" + path;
  request.headers = {{"Authorization", "Bearer " + c.token}, {"Accept", "application/json"}};
  if (method == "POST") {
    request.headers.emplace_back("X-IDM-Request", "1");
    request.headers.emplace_back("Content-Type", "application/json");
  }
  request.body = body;
  auto response = https_request(c.options, request);
  if (!response.ok()) return response.error().within("the IDM at " + c.options.host + ":" + std::to_string(c.options.port));
  YAML::Node node;
  try {
    node = YAML::Load(response->body);
  } catch (const YAML::Exception&) {
    return make_error(ErrorCode::invalid_input, "the IDM answered " + std::to_string(response->status) + " with no JSON: " + response->body.substr(0, 200));
  }
  if (response->status != 200) {
    const std::string why = node.IsMap() && node["error"] ? node["error"].as<std::string>() : response->body;
    return make_error(response->status == 404 ? ErrorCode::not_found : ErrorCode::policy_refused,
                      "the IDM refused (" + std::to_string(response->status) + "): " + why);
  }
  return node;
}

std::string text(const YAML::Node& node, const char* key) {
  return node[key] && node[key].IsScalar() ? node[key].as<std::string>() : std::string();
}

void print_request(const YAML::Node& r, bool details) {
  std::cout << text(r, "id").substr(0, 16) << "  " << text(r, "state") << "  " << text(r, "operation") << "  " << text(r, "subject")
            << "  polls " << text(r, "polls") << "  last seen " << text(r, "last_seen") << "\n";
  if (!details) return;
  std::string sans;
  if (r["sans"] && r["sans"].IsSequence())
    for (const auto& san : r["sans"]) sans += (sans.empty() ? "" : ", ") + san.as<std::string>();
  std::cout << "  id:             " << text(r, "id") << "\n"
            << "  subject:        " << text(r, "subject") << "\n"
            << "  CSR subject:    " << text(r, "csr_subject") << "\n"
            << "  SANs:           " << (sans.empty() ? "(none)" : sans) << "\n"
            << "  key:            " << text(r, "key") << "\n"
            << "  client:         " << text(r, "client_subject") << " (" << text(r, "client") << ")\n"
            << "  first seen:     " << text(r, "first_seen") << "\n"
            << "  last seen:      " << text(r, "last_seen") << "\n"
            << "  polls:          " << text(r, "polls") << "\n"
            << "  state:          " << text(r, "state") << "\n";
  if (!text(r, "decided_by").empty())
    std::cout << "  decided by:     " << text(r, "decided_by") << " at " << text(r, "decided_at") << "\n";
  if (!text(r, "reason").empty()) std::cout << "  reason:         " << text(r, "reason") << "\n";
  if (!text(r, "issued_serial").empty() && text(r, "issued_serial") != "~") std::cout << "  issued serial:  " << text(r, "issued_serial") << "\n";
}

// An id as typed: the full id, or a unique prefix of one as `list` shows it.
Result<std::string> resolve_id(const Client& c, const std::string& id) {
  if (id.size() == 64) return id;
  auto all = call(c, "GET", "requests?state=all", "");
  if (!all.ok()) return all.error();
  std::vector<std::string> matches;
  for (const auto& r : (*all)["requests"]) {
    const std::string full = r["id"].as<std::string>();
    if (!id.empty() && full.rfind(id, 0) == 0) matches.push_back(full);
  }
  if (matches.empty()) return make_error(ErrorCode::not_found, "no request id starts with '" + id + "'");
  if (matches.size() > 1) return make_error(ErrorCode::invalid_input, "'" + id + "' matches " + std::to_string(matches.size()) + " requests; give more of the id");
  return matches.front();
}

int operator_command(const IdmCliOptions& o, const std::string& command) {
  auto fail = [&](const Error& e) {
    std::cerr << "estlab idm " << command << ": " << e.message << "\n";
    return e.code == ErrorCode::invalid_input ? kExitUsage : kExitFailed;
  };
  auto c = client_for(o);
  if (!c.ok()) return fail(c.error());
  if (command == "list") {
    auto list = call(*c, "GET", "requests?state=" + o.state, "");
    if (!list.ok()) return fail(list.error());
    if (o.json) {
      std::cout << YAML::Dump((*list)) << "\n";
      return kExitOk;
    }
    std::size_t n = 0;
    for (const auto& r : (*list)["requests"]) print_request(r, false), ++n;
    if (n == 0) std::cout << "no " << (o.state == "all" ? "" : o.state + " ") << "requests\n";
    return kExitOk;
  }
  auto id = resolve_id(*c, o.id);
  if (!id.ok()) return fail(id.error());
  if (command == "show") {
    auto shown = call(*c, "GET", "requests/" + *id, "");
    if (!shown.ok()) return fail(shown.error());
    print_request(*shown, true);
    return kExitOk;
  }
  if (command == "reject" && o.reason.empty()) return fail(make_error(ErrorCode::invalid_input, "--reason is required: the device is told why"));
  std::string body = "{\"reason\":" + gateway::json_string(o.reason);
  if (!o.operator_name.empty()) body += ",\"operator\":" + gateway::json_string(o.operator_name);
  body += "}";
  auto decided = call(*c, "POST", "requests/" + *id + "/" + command, body);
  if (!decided.ok()) return fail(decided.error());
  std::cout << command << "d ";
  print_request(*decided, false);
  return kExitOk;
}

}  // namespace

void register_idm(CLI::App& app, Action& action) {
  auto o = std::make_shared<IdmCliOptions>();
  CLI::App* cmd = app.add_subcommand("idm", "Run the simulated identity manager (manual approval, PG-IDM-1/2), or act as its operator");
  cmd->require_subcommand(0, 1);
  cmd->fallthrough();  // --lab may follow the operator command
  cmd->add_option("--lab", o->lab, "Fixture directory (from `estlab fixtures`); the IDM keeps DIR/idm/idm.db, url and operator-token")
      ->required();
  cmd->add_option("--host", o->host, "Listen address (default: estlab.listen.host)");
  cmd->add_option("--port", o->port, "Listen port; 0 picks a free one")->capture_default_str()->check(CLI::Range(0, 65535));
  cmd->add_option("--policy", o->policy, "What the operator does unasked: manual, approve-after=N, reject=REASON, never")
      ->capture_default_str();
  cmd->add_option("--gateway-cert", o->gateway_certs, "Also accept this client certificate (PEM) on the gateway API (repeatable)");
  cmd->add_flag("--quiet", o->quiet, "No per-request log lines on stderr");
  cmd->footer("Serves until SIGINT/SIGTERM: the gateway API (mutual TLS with handler.<n>.idm.tls.token), the operator\n"
              "REST API and page (/idm/, token printed at start and written to DIR/idm/operator-token, mode 0600).\n"
              "Exit codes: 0 stopped by a signal or command done, 1 the IDM refused or could not be reached, 2 usage.");

  auto add_client_options = [&](CLI::App* sub) {
    sub->add_option("--url", o->url, "The IDM's base URL (default: DIR/idm/url of the running IDM)");
    sub->add_option("--token", o->token, "Operator token (default: DIR/idm/operator-token)");
  };
  CLI::App* list = cmd->add_subcommand("list", "List requests (pending unless --state says otherwise)");
  list->add_option("--state", o->state, "pending, approved, rejected or all")->capture_default_str()
      ->check(CLI::IsMember({"pending", "approved", "rejected", "all"}));
  list->add_flag("--json", o->json, "Print the API's JSON");
  add_client_options(list);
  CLI::App* show = cmd->add_subcommand("show", "Show one request: subject, SANs, key, requesting client, first/last seen, polls");
  show->add_option("id", o->id, "Request id or a unique prefix (as `list` shows it)")->required();
  add_client_options(show);
  CLI::App* approve = cmd->add_subcommand("approve", "Approve a pending request: the device's next retry gets its certificate");
  approve->add_option("id", o->id, "Request id or a unique prefix")->required();
  approve->add_option("--operator", o->operator_name, "Your name, for the history");
  add_client_options(approve);
  CLI::App* reject = cmd->add_subcommand("reject", "Reject a pending request with a reason the device is told");
  reject->add_option("id", o->id, "Request id or a unique prefix")->required();
  reject->add_option("--reason", o->reason, "Why (required)")->required();
  reject->add_option("--operator", o->operator_name, "Your name, for the history");
  add_client_options(reject);

  cmd->callback([o, cmd, &action] {
    if (cmd->get_subcommands().empty()) {
      action = [o] { return serve(*o); };
      return;
    }
    const std::string name = cmd->get_subcommands().front()->get_name();
    action = [o, name] { return operator_command(*o, name); };
  });
}

}  // namespace estlab::cli
