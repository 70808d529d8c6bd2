#include "estlab/gateway/transcript.hpp"

#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "estlab/core/describe.hpp"
#include "estlab/core/est.hpp"

namespace estlab::gateway {

namespace {

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const auto t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buffer;
}

// logfmt value: bare when safe, else quoted with \" and \\ escaped.
std::string logfmt(std::string_view value) {
  const bool bare = !value.empty() && value.find_first_of(" \"=\\\t\n") == std::string_view::npos;
  if (bare) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out + "\"";
}

bool printable(std::string_view text) {
  for (unsigned char c : text)
    if (c < 0x20 && c != '\r' && c != '\n' && c != '\t') return false;
  return true;
}

void emit_headers(YAML::Emitter& out, const HttpHeaders& headers, bool show_secrets) {
  out << YAML::Key << "headers" << YAML::Value << YAML::BeginSeq;
  for (const auto& [k, v] : headers) out << YAML::Flow << YAML::BeginSeq << k << printable_header_value(k, v, show_secrets) << YAML::EndSeq;
  out << YAML::EndSeq;
}

void emit_body(YAML::Emitter& out, std::string_view content_type, const std::string& body) {
  if (body.empty()) return;
  if (printable(body)) out << YAML::Key << "body" << YAML::Value << YAML::Literal << body;
  else out << YAML::Key << "body_hex" << YAML::Value << to_hex(ByteView(reinterpret_cast<const std::uint8_t*>(body.data()), body.size()));
  const std::string decoded = describe_est_body(content_type, body);
  if (!decoded.empty()) out << YAML::Key << "decoded" << YAML::Value << YAML::Literal << decoded;
}


}  // namespace

std::string log_line(const EstRequest& request, const Decision& decision, std::string_view profile,
                     std::chrono::microseconds elapsed) {
  std::ostringstream out;
  out << "time=" << utc_now() << " conn=" << request.client.connection_id << " peer=" << logfmt(request.client.remote)
      << " tls=" << (request.client.over_tls ? to_string(request.client.tls_version) : "none") << " method="
      << logfmt(request.method.empty() ? "-" : request.method) << " op=" << logfmt(decision.operation.empty() ? "-" : decision.operation)
      << " label=" << logfmt(decision.label.empty() ? "-" : decision.label) << " client="
      << logfmt(decision.client_subject.empty() ? "-" : decision.client_subject) << " profile=" << profile
      << " rule=" << logfmt(decision.rule) << " status=" << decision.status;
  if (!decision.issued_serial.empty()) out << " serial=" << decision.issued_serial;
  out << " ms=" << std::fixed << std::setprecision(2) << static_cast<double>(elapsed.count()) / 1000.0;
  if (!decision.reason.empty()) out << " reason=" << logfmt(decision.reason);
  return out.str();
}

Result<std::unique_ptr<TranscriptWriter>> TranscriptWriter::open(const std::filesystem::path& dir, bool show_secrets) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir))
    return make_error(ErrorCode::io, "transcript directory " + dir.string() + ": " + (ec ? ec.message() : "not a directory"));
  return std::make_unique<TranscriptWriter>(dir, show_secrets);
}

Result<std::filesystem::path> TranscriptWriter::record(const EstRequest& request, const EstResponse& response,
                                                       const Decision& decision, std::chrono::microseconds elapsed) {
  const std::uint64_t number = ++sequence_;
  YAML::Emitter out;
  out << YAML::Comment("estlab gateway transcript: one exchange; `estlab replay` turns it into a scenario");
  out << YAML::BeginMap;
  out << YAML::Key << "estlab_transcript" << YAML::Value << 1;
  out << YAML::Key << "sequence" << YAML::Value << number;
  out << YAML::Key << "time" << YAML::Value << YAML::DoubleQuoted << utc_now();
  out << YAML::Key << "elapsed_ms" << YAML::Value << static_cast<double>(elapsed.count()) / 1000.0;
  out << YAML::Key << "connection" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "id" << YAML::Value << request.client.connection_id;
  out << YAML::Key << "peer" << YAML::Value << request.client.remote;
  out << YAML::Key << "tls" << YAML::Value << (request.client.over_tls ? to_string(request.client.tls_version) : "none");
  if (!request.client.peer_chain.empty()) {
    out << YAML::Key << "client_certificate" << YAML::Value << YAML::Literal << request.client.peer_chain.front().pem();
    out << YAML::Key << "client_subject" << YAML::Value << YAML::DoubleQuoted << request.client.peer_chain.front().subject().to_string();
  }
  out << YAML::EndMap;
  out << YAML::Key << "request" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "method" << YAML::Value << request.method;
  out << YAML::Key << "target" << YAML::Value << YAML::DoubleQuoted << request.target;
  emit_headers(out, request.headers, show_secrets_);
  emit_body(out, find_header(request.headers, "Content-Type").value_or(""), request.body);
  out << YAML::EndMap;
  out << YAML::Key << "response" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "status" << YAML::Value << response.status;
  emit_headers(out, response.headers, show_secrets_);
  emit_body(out, find_header(response.headers, "Content-Type").value_or(""), response.body);
  out << YAML::EndMap;
  out << YAML::Key << "decision" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "operation" << YAML::Value << decision.operation;
  out << YAML::Key << "label" << YAML::Value << decision.label;
  out << YAML::Key << "rule" << YAML::Value << decision.rule;
  out << YAML::Key << "reason" << YAML::Value << YAML::DoubleQuoted << decision.reason;
  if (!decision.issued_serial.empty()) out << YAML::Key << "issued_serial" << YAML::Value << YAML::DoubleQuoted << decision.issued_serial;
  out << YAML::EndMap;
  out << YAML::EndMap;

  char name[64];
  std::snprintf(name, sizeof(name), "%06llu-%s.yaml", static_cast<unsigned long long>(number),
                decision.operation.empty() ? "request" : decision.operation.c_str());
  const auto path = dir_ / name;
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << out.c_str() << '\n';
  file.close();
  if (!file) return make_error(ErrorCode::io, "writing transcript " + path.string());
  return path;
}

}  // namespace estlab::gateway
