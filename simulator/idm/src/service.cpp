#include "estlab/idm/service.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <yaml-cpp/yaml.h>

#include "estlab/core/base64.hpp"
#include "estlab/core/csr.hpp"
#include "estlab/core/text.hpp"
#include "estlab/gateway/idm_gate.hpp"

namespace estlab::idm {
namespace {

using gateway::ApprovalState;
using gateway::EstRequest;
using gateway::Handled;
using gateway::json_string;

Handled json(int status, const std::string& body, const std::string& rule, const std::string& reason) {
  Handled h;
  h.response.status = status;
  h.response.headers = {{"Content-Type", "application/json"}, {"Cache-Control", "no-store"}};
  h.response.body = body + "\n";
  h.decision.rule = rule;
  h.decision.reason = reason;
  h.decision.status = status;
  return h;
}

// A 4xx/5xx with the reason in words, as JSON {"error": "..."}.
Handled error(int status, const std::string& reason) { return json(status, "{\"error\":" + json_string(reason) + "}", "idm", reason); }

std::string optional_time(const std::optional<TimePoint>& t) { return t ? json_string(format_time(*t)) : "null"; }

// What an operator needs to decide: the request, and what the CSR asks for.
std::string request_json(const StoredRequest& r, bool details) {
  std::string out = "{\"id\":" + json_string(r.request.id) + ",\"operation\":" + json_string(r.request.operation) +
                    ",\"subject\":" + json_string(r.request.subject) + ",\"client\":" + json_string(r.request.client) +
                    ",\"client_subject\":" + json_string(r.request.client_subject) +
                    ",\"first_seen\":" + json_string(format_time(r.request.first_seen)) +
                    ",\"last_seen\":" + json_string(format_time(r.last_seen)) + ",\"polls\":" + std::to_string(r.polls) +
                    ",\"state\":" + json_string(gateway::to_string(r.status.state)) + ",\"reason\":" + json_string(r.status.reason) +
                    ",\"decided_by\":" + json_string(r.status.decided_by) + ",\"decided_at\":" + optional_time(r.decided_at) +
                    ",\"issued_serial\":" + (r.status.issued ? json_string(r.status.issued->serial_hex()) : "null");
  if (details) {
    // The CSR's own view: its subject and SANs, its key (the signature is the gateway's business).
    auto csr = Csr::from_der(r.request.csr_der, Csr::SignatureCheck::skip);
    out += ",\"csr_sha256\":" + json_string(r.request.csr_sha256);
    if (csr.ok()) {
      out += ",\"csr_subject\":" + json_string(csr->subject().to_string()) + ",\"sans\":[";
      bool first = true;
      for (const auto& san : csr->subject_alt_names()) {
        out += (first ? "" : ",") + json_string(san.to_string());
        first = false;
      }
      out += "],\"key\":" + json_string(csr->public_key().algorithm());
    } else {
      out += ",\"csr_error\":" + json_string(csr.error().message);
    }
  }
  return out + "}";
}

Result<YAML::Node> parse_body(const std::string& body) {
  if (body.empty()) return YAML::Node(YAML::NodeType::Map);
  try {
    YAML::Node node = YAML::Load(body);
    if (!node.IsMap()) return make_error(ErrorCode::invalid_input, "the body must be a JSON object");
    return node;
  } catch (const YAML::Exception& e) {
    return make_error(ErrorCode::invalid_input, std::string("the body is not JSON: ") + e.msg);
  }
}

Result<std::string> text_field(const YAML::Node& node, const char* name, bool required) {
  if (!node[name]) {
    if (required) return make_error(ErrorCode::invalid_input, std::string("missing field \"") + name + "\"");
    return std::string();
  }
  if (!node[name].IsScalar()) return make_error(ErrorCode::invalid_input, std::string("field \"") + name + "\" must be a string");
  return node[name].as<std::string>();
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string path_of(const std::string& target) { return target.substr(0, target.find('?')); }

std::string query_value(const std::string& target, const std::string& key) {
  const auto q = target.find('?');
  if (q == std::string::npos) return "";
  std::string rest = target.substr(q + 1);
  std::size_t start = 0;
  while (start <= rest.size()) {
    const auto end = rest.find('&', start);
    const std::string pair = rest.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (pair.rfind(key + "=", 0) == 0) return pair.substr(key.size() + 1);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return "";
}

}  // namespace

std::string make_token() {
  Bytes random(32);
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) throw std::runtime_error("RAND_bytes failed");
  return to_hex(random);
}

IdmService::IdmService(IdmOptions options, std::shared_ptr<IdmStore> store) : options_(std::move(options)), store_(std::move(store)) {
  if (options_.operator_token.size() < 16) throw ConfigError("the IDM's operator token must have at least 16 characters");
  if (options_.gateway_fingerprints.empty()) throw ConfigError("the IDM needs the gateway's client certificate (handler.<n>.idm.tls.token)");
}

void IdmService::set_policy(gateway::OperatorPolicy policy) {
  std::lock_guard lock(policy_mutex_);
  options_.policy = std::move(policy);
}

Handled IdmService::handle(const EstRequest& request) {
  const std::string path = path_of(request.target);
  Handled h;
  if (path == "/" || path == "/idm" || path == "/idm/") {
    if (request.method != "GET") return error(405, "use GET for the operator page");
    h.response.status = 200;
    // The page runs only its own inline script; nothing may frame it (clickjacking the buttons).
    h.response.headers = {{"Content-Type", "text/html; charset=utf-8"},
                          {"Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                                      "connect-src 'self'; frame-ancestors 'none'"},
                          {"X-Frame-Options", "DENY"},
                          {"Cache-Control", "no-store"}};
    h.response.body = operator_page();
    h.decision.rule = "idm";
    h.decision.status = 200;
    return h;
  }
  const std::string gateway_prefix = options_.gateway_path + "/";
  if (path.rfind(gateway_prefix, 0) == 0) return gateway_api(request, path.substr(gateway_prefix.size()));
  if (path.rfind("/idm/api/", 0) == 0) return operator_api(request, path.substr(9));
  return error(404, "no such IDM resource: " + path + " (the operator page is /idm/, its API /idm/api/, the gateway's " +
                        options_.gateway_path + "/)");
}

Handled IdmService::gateway_api(const EstRequest& request, const std::string& what) {
  // Mutual TLS: the gateway's own client certificate (its idm.tls.token), pinned.
  if (request.client.peer_chain.empty()) return error(401, "the gateway API needs the gateway's client certificate (mutual TLS)");
  const std::string fingerprint = request.client.peer_chain.front().sha256_fingerprint();
  bool known = false;
  for (const auto& allowed : options_.gateway_fingerprints) known |= iequals(allowed, fingerprint);
  if (!known) return error(403, "client certificate " + request.client.peer_chain.front().subject().to_string() + " is not the gateway's");
  if (request.method != "POST") return error(405, "the gateway API takes POST");
  auto body = parse_body(request.body);
  if (!body.ok()) return error(400, body.error().message);
  if (what == "check") {
    gateway::ApprovalRequest r;
    auto op = text_field(*body, "operation", true);
    auto client = text_field(*body, "client", true);
    auto csr = text_field(*body, "csr", true);
    auto subject = text_field(*body, "subject", false);
    auto client_subject = text_field(*body, "client_subject", false);
    for (const auto* f : {&op, &client, &csr, &subject, &client_subject})
      if (!f->ok()) return error(400, f->error().message);
    auto der = base64_decode(*csr);
    if (!der.ok() || der->empty()) return error(400, "field \"csr\" is not base64 DER");
    r.operation = *op;
    r.client = *client;
    r.subject = *subject;
    r.client_subject = *client_subject;
    r.csr_der = std::move(der).value();
    // The binding is derived here from what is stored, never taken from the caller.
    r.csr_sha256 = sha256_hex(r.csr_der);
    r.id = gateway::approval_id(r.operation, r.csr_sha256, r.client);
    gateway::OperatorPolicy policy;
    {
      std::lock_guard lock(policy_mutex_);
      policy = options_.policy;
    }
    auto status = store_->check(r, policy);
    if (!status.ok()) return error(500, status.error().message);
    return json(200,
                "{\"id\":" + json_string(r.id) + ",\"state\":" + json_string(gateway::to_string(status->state)) + ",\"reason\":" +
                    json_string(status->reason) + ",\"decided_by\":" + json_string(status->decided_by) + ",\"issued\":" +
                    (status->issued ? json_string(base64_encode(status->issued->der())) : "null") + "}",
                "PG-IDM-2", "check " + r.id.substr(0, 16) + ": " + gateway::to_string(status->state));
  }
  auto id = text_field(*body, "id", true);
  if (!id.ok()) return error(400, id.error().message);
  if (what == "lookup") {
    auto issued = store_->issued_for(*id);
    if (!issued.ok()) return error(500, issued.error().message);
    return json(200, "{\"issued\":" + (issued->has_value() ? json_string(base64_encode((*issued)->der())) : std::string("null")) + "}",
                "PG-IDM-2", "lookup");
  }
  if (what == "issued") {
    auto text = text_field(*body, "certificate", true);
    if (!text.ok()) return error(400, text.error().message);
    auto der = base64_decode(*text);
    auto cert = der.ok() ? Certificate::from_der(*der) : Result<Certificate>(der.error());
    if (!cert.ok()) return error(400, "field \"certificate\": " + cert.error().message);
    auto recorded = store_->record_issued(*id, *cert);
    if (!recorded.ok()) return error(recorded.error().code == ErrorCode::policy_refused ? 409 : 500, recorded.error().message);
    return json(200, "{\"recorded\":true}", "PG-IDM-2", "issued " + cert->serial_hex());
  }
  return error(404, "the gateway API has check, lookup and issued; not '" + what + "'");
}

Handled IdmService::operator_api(const EstRequest& request, const std::string& path) {
  // The operator's credential: a bearer token, never a cookie.
  const auto authorization = request.header("Authorization").value_or("");
  const std::string prefix = "Bearer ";
  if (authorization.rfind(prefix, 0) != 0 || !constant_time_equal(authorization.substr(prefix.size()), options_.operator_token)) {
    Handled h = error(401, "the operator API needs 'Authorization: Bearer <operator token>' (printed at start, in the lab's idm/operator-token)");
    h.response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"estlab IDM\"");
    return h;
  }
  if (request.method == "POST") {
    // Cross-site requests: a custom header forces a CORS preflight, which is never granted; an
    // Origin, when sent, must be this IDM's own.
    if (request.header("X-IDM-Request").value_or("") != "1")
      return error(403, "operator POSTs need the header 'X-IDM-Request: 1' (protection against cross-site requests)");
    if (auto origin = request.header("Origin")) {
      const std::string host = request.header("Host").value_or("");
      if (*origin != "https://" + host) return error(403, "cross-site request refused: Origin " + *origin + " is not https://" + host);
    }
  } else if (request.method != "GET") {
    return error(405, request.method + " is not served; the operator API takes GET and POST");
  }
  const std::string operator_name = "operator (token)";
  if (path == "requests" && request.method == "GET") {
    const std::string state_text = query_value(request.target, "state");
    std::optional<ApprovalState> state = ApprovalState::pending;
    if (state_text == "all") state = std::nullopt;
    else if (!state_text.empty()) {
      state = gateway::parse_approval_state(state_text);
      if (!state) return error(400, "state '" + state_text + "' is not pending, approved, rejected or all");
    }
    auto list = store_->list(state);
    if (!list.ok()) return error(500, list.error().message);
    std::string out = "{\"requests\":[";
    for (std::size_t i = 0; i < list->size(); ++i) out += (i ? "," : "") + request_json((*list)[i], true);
    return json(200, out + "]}", "idm", "list");
  }
  if (path == "history" && request.method == "GET") {
    auto history = store_->history();
    if (!history.ok()) return error(500, history.error().message);
    std::string out = "{\"history\":[";
    for (std::size_t i = 0; i < history->size(); ++i) {
      const auto& e = (*history)[i];
      out += std::string(i ? "," : "") + "{\"request\":" + json_string(e.request_id) + ",\"subject\":" + json_string(e.subject) +
             ",\"action\":" + json_string(e.action) + ",\"by\":" + json_string(e.by) + ",\"reason\":" + json_string(e.reason) +
             ",\"at\":" + json_string(format_time(e.at)) + "}";
    }
    return json(200, out + "]}", "idm", "history");
  }
  if (path.rfind("requests/", 0) == 0) {
    std::string rest = path.substr(9);
    std::string action;
    if (const auto slash = rest.find('/'); slash != std::string::npos) {
      action = rest.substr(slash + 1);
      rest = rest.substr(0, slash);
    }
    if (rest.empty()) return error(400, "no request id in " + path);
    if (action.empty()) {
      if (request.method != "GET") return error(405, "use GET to show a request; POST .../approve or .../reject to decide");
      auto found = store_->find(rest);
      if (!found.ok()) return error(500, found.error().message);
      if (!*found) return error(404, "no request with id '" + rest + "'");
      return json(200, request_json(**found, true), "idm", "show");
    }
    if (request.method != "POST") return error(405, "use POST to " + action);
    if (action != "approve" && action != "reject") return error(404, "a request can be approved or rejected; not '" + action + "'");
    auto body = parse_body(request.body);
    if (!body.ok()) return error(400, body.error().message);
    auto reason = text_field(*body, "reason", action == "reject");
    if (!reason.ok()) return error(400, reason.error().message + (action == "reject" ? " (the device is told why it was rejected)" : ""));
    auto by = text_field(*body, "operator", false);
    if (!by.ok()) return error(400, by.error().message);
    const std::string who = by->empty() ? operator_name : *by + " (token)";
    auto decided = store_->decide(rest, action == "approve" ? ApprovalState::approved : ApprovalState::rejected, who, *reason);
    if (!decided.ok()) {
      const auto code = decided.error().code;
      return error(code == ErrorCode::not_found ? 404 : code == ErrorCode::policy_refused ? 409 : code == ErrorCode::invalid_input ? 400 : 500,
                   decided.error().message);
    }
    return json(200, request_json(*decided, true), "idm", action + " " + rest.substr(0, 16));
  }
  return error(404, "the operator API has GET requests[?state=], GET requests/ID, POST requests/ID/approve|reject, GET history; not '" +
                        path + "'");
}

}  // namespace estlab::idm
