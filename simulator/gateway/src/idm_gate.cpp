#include "estlab/gateway/idm_gate.hpp"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdio>

#include "estlab/core/base64.hpp"

namespace estlab::gateway {

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') out += '\\', out += static_cast<char>(c);
    else if (c < 0x20) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
      out += buffer;
    } else out += static_cast<char>(c);
  }
  return out + "\"";
}

namespace {

// The IDM's answers are JSON; yaml-cpp reads JSON (a YAML 1.2 subset).
Result<YAML::Node> parse_json(const std::string& body, const std::string& what) {
  try {
    YAML::Node node = YAML::Load(body);
    if (!node.IsMap()) return make_error(ErrorCode::invalid_input, what + ": the identity manager's answer is not a JSON object");
    return node;
  } catch (const YAML::Exception& e) {
    return make_error(ErrorCode::invalid_input, what + ": the identity manager's answer is not JSON: " + e.what());
  }
}

std::string field(const YAML::Node& node, const char* name) {
  return node[name] && node[name].IsScalar() ? node[name].as<std::string>() : std::string();
}

Result<std::optional<Certificate>> issued_of(const YAML::Node& node) {
  const std::string text = field(node, "issued");
  if (text.empty()) return std::optional<Certificate>();
  auto der = base64_decode(text);
  if (!der.ok()) return der.error().within("the identity manager's issued certificate");
  auto cert = Certificate::from_der(*der);
  if (!cert.ok()) return cert.error().within("the identity manager's issued certificate");
  return std::optional<Certificate>(std::move(cert).value());
}

}  // namespace

Result<IdmEndpoint> parse_idm_url(const std::string& url) {
  constexpr std::string_view scheme = "https://";
  auto bad = [&](const std::string& why) { return make_error(ErrorCode::invalid_input, "idm.requestUrl '" + url + "': " + why); };
  if (url.rfind(scheme, 0) != 0) return bad("must start with https://");
  const std::string rest = url.substr(scheme.size());
  const std::size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  IdmEndpoint e;
  e.path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!e.path.empty() && e.path.back() == '/') e.path.pop_back();
  std::string port;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string::npos) return bad("unclosed IPv6 literal");
    e.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return bad("unexpected text after the IPv6 literal");
      port = authority.substr(close + 2);
    }
  } else {
    const std::size_t colon = authority.find(':');
    e.host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
  }
  if (e.host.empty()) return bad("no host");
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) return bad("port '" + port + "' is not 1-65535");
    e.port = static_cast<std::uint16_t>(value);
  }
  return e;
}

Result<std::shared_ptr<IdmApprovalGate>> IdmApprovalGate::create(const IdmHandler& handler, std::vector<Certificate> trust_anchors,
                                                                 std::chrono::milliseconds timeout) {
  auto endpoint = parse_idm_url(handler.request_url);
  if (!endpoint.ok()) return endpoint.error();
  if (handler.token.empty())
    return make_error(ErrorCode::invalid_input, "handler." + std::to_string(handler.number) +
                                                    ".idm.tls.token is not set: the gateway authenticates to the IDM with it");
  auto identity = TlsIdentity::load_pkcs12(handler.token, handler.token_password);
  if (!identity.ok()) return identity.error().within("handler." + std::to_string(handler.number) + ".idm.tls.token");
  std::shared_ptr<IdmApprovalGate> gate(new IdmApprovalGate());
  gate->endpoint_ = std::move(endpoint).value();
  gate->options_.host = gate->endpoint_.host;
  gate->options_.port = gate->endpoint_.port;
  gate->options_.trust_anchors = std::move(trust_anchors);
  gate->options_.identity = std::move(identity).value();
  gate->options_.connect_timeout = timeout;
  gate->options_.handshake_timeout = timeout;
  gate->options_.io_timeout = timeout;
  gate->options_.max_response_body = 256 * 1024;
  return gate;
}

Result<std::string> IdmApprovalGate::post(const std::string& what, const std::string& json) {
  HttpRequest request;
  request.method = "POST";
  request.target = endpoint_.path + "/" + what;
  request.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
  request.body = json;
  auto response = https_request(options_, request);
  const std::string where = "identity manager https://" + endpoint_.host + ":" + std::to_string(endpoint_.port) + request.target;
  if (!response.ok()) return response.error().within(where);
  if (response->status != 200)
    return make_error(ErrorCode::io, where + " answered " + std::to_string(response->status) + ": " + response->body.substr(0, 300));
  return response->body;
}

Result<ApprovalStatus> IdmApprovalGate::check(const ApprovalRequest& request) {
  // The IDM derives the id itself from these fields and the CSR, so it binds what it shows.
  const std::string json = "{\"operation\":" + json_string(request.operation) + ",\"client\":" + json_string(request.client) +
                           ",\"client_subject\":" + json_string(request.client_subject) + ",\"subject\":" + json_string(request.subject) +
                           ",\"csr\":" + json_string(base64_encode(request.csr_der)) + "}";
  auto body = post("check", json);
  if (!body.ok()) return body.error();
  auto node = parse_json(*body, "check");
  if (!node.ok()) return node.error();
  if (field(*node, "id") != request.id)
    return make_error(ErrorCode::invalid_input, "the identity manager bound the request to id '" + field(*node, "id") + "', not '" +
                                                    request.id + "'");
  ApprovalStatus status;
  auto state = parse_approval_state(field(*node, "state"));
  if (!state) return make_error(ErrorCode::invalid_input, "the identity manager answered state '" + field(*node, "state") + "'");
  status.state = *state;
  status.reason = field(*node, "reason");
  status.decided_by = field(*node, "decided_by");
  auto issued = issued_of(*node);
  if (!issued.ok()) return issued.error();
  status.issued = std::move(issued).value();
  return status;
}

Result<void> IdmApprovalGate::record_issued(const std::string& id, const Certificate& certificate) {
  auto body = post("issued", "{\"id\":" + json_string(id) + ",\"certificate\":" + json_string(base64_encode(certificate.der())) + "}");
  if (!body.ok()) return body.error();
  return {};
}

Result<std::optional<Certificate>> IdmApprovalGate::issued_for(const std::string& id) {
  auto body = post("lookup", "{\"id\":" + json_string(id) + "}");
  if (!body.ok()) return body.error();
  auto node = parse_json(*body, "lookup");
  if (!node.ok()) return node.error();
  return issued_of(*node);
}

}  // namespace estlab::gateway
