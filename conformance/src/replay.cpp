#include "yaml_file.hpp"
#include "estlab/conformance/replay.hpp"

#include <yaml-cpp/yaml.h>

#include <regex>
#include <sstream>

#include "estlab/core/bytes.hpp"
#include "estlab/core/csr.hpp"
#include "estlab/core/est.hpp"
#include "estlab/core/result.hpp"
#include "estlab/core/text.hpp"

namespace estlab::conformance {

namespace {

std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out + "\"";
}

struct Recorded {
  std::filesystem::path file;
  std::string tls;
  std::string client_subject;
  std::string client_pem;
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int status = 0;
  std::vector<std::pair<std::string, std::string>> response_headers;
  std::string rule;
  std::string profile;
};

Recorded read_transcript(const std::filesystem::path& file) {
  const YAML::Node root = load_yaml_file(file, "transcript");
  if (!root.IsMap() || !root["estlab_transcript"])
    throw ConfigError(file.string() + ": not an estlab gateway transcript (no estlab_transcript key)");
  Recorded r;
  r.file = file;
  try {
    const auto& connection = root["connection"];
    r.tls = connection["tls"].as<std::string>("none");
    r.client_subject = connection["client_subject"].as<std::string>("");
    r.client_pem = connection["client_certificate"].as<std::string>("");
    const auto& request = root["request"];
    r.method = request["method"].as<std::string>();
    r.target = request["target"].as<std::string>();
    for (const auto& h : request["headers"]) r.headers.emplace_back(h[0].as<std::string>(), h[1].as<std::string>());
    r.body = request["body"].as<std::string>("");
    const auto& response = root["response"];
    r.status = response["status"].as<int>();
    for (const auto& h : response["headers"]) r.response_headers.emplace_back(h[0].as<std::string>(), h[1].as<std::string>());
    r.rule = root["decision"]["rule"].as<std::string>("");
  } catch (const YAML::Exception& e) {
    throw ConfigError(file.string() + ":" + std::to_string(e.mark.line + 1) + ": transcript field missing or malformed: " + e.msg);
  }
  return r;
}

bool is_requirement_id(const std::string& text) {
  static const std::regex shape(R"(^(PG-[A-Z]+-\d+|\d{4}-[0-9A-Za-z.]+-[a-z])$)");
  return std::regex_match(text, shape);
}

std::string default_requirement(EstOperation op) {
  switch (op) {
    case EstOperation::cacerts: return "7030-4.1.2-a";
    case EstOperation::simpleenroll:
    case EstOperation::simplereenroll: return "7030-4.2-a";
    case EstOperation::fullcmc: return "7030-4.3-a";
    case EstOperation::csrattrs: return "7030-4.5.2-a";
    case EstOperation::serverkeygen: return "7030-4.4-a";
  }
  return "7030-3.2.2-a";
}

std::string slug(std::string text) {
  for (auto& c : text) c = std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : '-';
  return text;
}

}  // namespace

ReplayOutput make_replay_scenario(const ReplayInput& input) {
  ReplayOutput out;
  std::ostringstream steps;
  std::vector<std::string> requirements;
  std::string first_op;
  std::string title;
  std::string profile = input.profile;
  bool needs_role = false;

  auto add_requirement = [&](const std::string& id) {
    if (std::find(requirements.begin(), requirements.end(), id) == requirements.end()) requirements.push_back(id);
  };

  if (!input.csr_file.empty()) {
    auto bytes = read_file_bytes(input.csr_file.string());
    if (!bytes.ok()) throw ConfigError(bytes.error().message);
    auto csr = Csr::parse(*bytes, Csr::SignatureCheck::skip);
    if (!csr.ok()) throw ConfigError(input.csr_file.string() + ": " + csr.error().message);
    auto op = parse_est_operation(input.operation);
    if (!op) throw ConfigError("--op '" + input.operation + "' is not an EST operation");
    const std::string name = input.csr_file.stem().string() + ".csr.pem";
    out.files.emplace_back(name, csr->pem());
    first_op = input.operation;
    title = "Replay of " + input.operation + " with the CSR from " + input.csr_file.filename().string();
    add_requirement(default_requirement(*op));
    needs_role = true;
    steps << "  - connect: {as: " << input.role << "}\n"
          << "  - send:\n      op: " << input.operation << "\n      csr: {file: " << name << "}\n"
          << "    # the CSR's subject: " << csr->subject().to_string() << (csr->signature_valid() ? "" : " (its signature does NOT verify)") << "\n"
          << "    expect:\n      status: 200   # what the field saw instead goes here\n";
  }

  std::string last_connection;
  std::size_t index = 0;
  for (const auto& file : input.transcripts) {
    const Recorded r = read_transcript(file);
    ++index;
    auto path = parse_est_path(r.target);
    const std::string connection = r.tls + "|" + r.client_subject;
    if (connection != last_connection) {
      const bool anonymous = r.client_subject.empty();
      if (!anonymous) {
        needs_role = true;
        if (!r.client_pem.empty() && std::none_of(out.files.begin(), out.files.end(), [](const auto& f) { return f.first == "client-certificate.pem"; }))
          out.files.emplace_back("client-certificate.pem", r.client_pem);
      }
      const std::string tls = r.tls == "TLSv1.3" ? "1.3" : r.tls == "TLSv1.2" ? "1.2" : "any";
      steps << "  - connect: {" << (anonymous ? std::string("as: anonymous") : "as: " + input.role) << (r.tls == "none" ? ", plain_http: true" : ", tls: \"" + tls + "\"") << "}";
      if (!anonymous) steps << "   # recorded client: " << r.client_subject;
      steps << "\n";
      last_connection = connection;
    }
    steps << "  - send:\n";
    if (path.ok()) {
      if (first_op.empty()) first_op = std::string(to_string(path->operation));
      steps << "      op: " << to_string(path->operation) << "\n";
      if (!path->label.empty()) steps << "      label: " << path->label << "\n";
      add_requirement(default_requirement(path->operation));
    } else {
      steps << "      path: " << quoted(r.target) << "\n";
    }
    const std::string expected_method = path.ok() ? std::string(http_method(path->operation)) : "GET";
    if (r.method != expected_method) steps << "      method: " << r.method << "\n";
    std::string content_type;
    for (const auto& [k, v] : r.headers) {
      if (iequals(k, "content-type")) content_type = v;
      else if (iequals(k, "authorization")) steps << "      # the request carried an Authorization header (not replayed): add auth: {user, password}\n";
    }
    if (!r.body.empty()) {
      auto der = decode_est_body(r.body, std::nullopt);
      auto csr = der.ok() ? Csr::from_der(*der, Csr::SignatureCheck::skip) : Result<Csr>(der.error());
      if (csr.ok() && path.ok() && path->operation != EstOperation::fullcmc) {
        char name[64];
        std::snprintf(name, sizeof(name), "step%02zu.csr.pem", index);
        out.files.emplace_back(name, csr->pem());
        steps << "      csr: {file: " << name << "}\n";
      } else {
        steps << "      body: " << quoted(r.body) << "\n";
      }
    }
    if (!content_type.empty() && (!path.ok() || content_type != request_media_type(path->operation).value_or("")))
      steps << "      content_type: " << quoted(content_type) << "\n";
    steps << "    expect:\n      status: " << r.status << "   # recorded";
    if (!r.rule.empty()) steps << " (the gateway's rule: " << r.rule << ")";
    steps << "\n";
    for (const auto& [k, v] : r.response_headers)
      if (k == "Retry-After" || k == "WWW-Authenticate") steps << "      headers: {" << k << ": present}\n";
    if (is_requirement_id(r.rule)) add_requirement(r.rule);
    if (title.empty()) title = "Replay of " + r.method + " " + r.target + " (recorded " + std::to_string(r.status) + ")";
  }
  if (steps.str().empty()) throw ConfigError("nothing to replay: give transcript files or --csr");

  std::ostringstream yaml;
  yaml << "# Made by `estlab replay`. Map the role '" << input.role
       << "' to an identity (a lab role such as device-factory,\n# or an identity in your target file), check the expectations, then add it to your scenarios.\n";
  const std::string id = input.id.empty() ? "replay-" + slug(first_op.empty() ? "request" : first_op) + "-" +
                                                slug(input.transcripts.empty() ? input.csr_file.stem().string() : input.transcripts.front().stem().string())
                                          : input.id;
  yaml << "id: " << id << "\n";
  yaml << "title: " << quoted(title) << "\n";
  yaml << "requirements: [";
  for (std::size_t i = 0; i < requirements.size(); ++i) yaml << (i ? ", " : "") << requirements[i];
  yaml << "]\n";
  if (!profile.empty()) yaml << "profiles: [" << profile << "]\n";
  if (needs_role) yaml << "needs:\n  roles: [" << input.role << "]\n";
  yaml << "steps:\n" << steps.str();
  out.scenario_yaml = yaml.str();
  return out;
}

}  // namespace estlab::conformance
