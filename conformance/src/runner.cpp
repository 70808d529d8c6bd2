#include "estlab/conformance/runner.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "estlab/core/base64.hpp"
#include "estlab/core/certs_only.hpp"
#include "estlab/core/cmc.hpp"
#include "estlab/core/coaps_client.hpp"
#include "estlab/core/csr.hpp"
#include "estlab/core/csrattrs.hpp"
#include "estlab/core/describe.hpp"
#include "estlab/core/encoding.hpp"
#include "estlab/core/est.hpp"
#include "estlab/core/https_client.hpp"
#include "estlab/core/oids.hpp"
#include "estlab/core/text.hpp"

namespace estlab::conformance {

namespace {

bool contains_ci(const std::string& haystack, const std::string& needle) { return ascii_lowercase(haystack).find(ascii_lowercase(needle)) != std::string::npos; }

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// Evidence text is kept readable: long bodies are cut in the middle.
std::string clip(const std::string& text, std::size_t max = 6000) {
  if (text.size() <= max) return text;
  return text.substr(0, max / 2) + "\n... (" + std::to_string(text.size() - max) + " bytes not shown) ...\n" +
         text.substr(text.size() - max / 2);
}

std::string eku_oid(const std::string& name) {
  if (name == "clientAuth") return std::string(oid::client_auth);
  if (name == "serverAuth") return std::string(oid::server_auth);
  if (name == "cmcRA") return std::string(oid::cmc_ra);
  return name;
}

// State of one scenario run.
class ScenarioRun {
 public:
  ScenarioRun(const Scenario& scenario, const Target& target, int repetition, const RunOptions& options)
      : scenario_(scenario), target_(target), options_(options) {
    static std::atomic<std::uint64_t> counter{0};
    // Unique per run so repeated and parallel runs never enroll the same subject.
    char unique[32];
    std::snprintf(unique, sizeof(unique), "%llx%02x", static_cast<unsigned long long>(
                      std::chrono::system_clock::now().time_since_epoch().count() & 0xffffffffffULL),
                  static_cast<unsigned>(counter++ & 0xff));
    vars_["unique"] = unique;
    vars_["profile"] = target.profile;
    vars_["label"] = target.default_label;
    for (const auto& [role, identity] : target.identities) add_identity_vars(role, identity);
    result_.id = scenario.id;
    result_.title = scenario.title;
    result_.file = scenario.file.string();
    result_.line = scenario.line;
    result_.requirements = scenario.requirements;
    result_.profile = target.profile;
    result_.transport = scenario.transport;
    result_.spec = scenario.spec;
    result_.section = scenario.section;
    result_.repetition = repetition;
  }

  ScenarioResult run() {
    const auto started = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < scenario_.steps.size(); ++i) {
      const Step& step = scenario_.steps[i];
      StepResult r;
      r.index = i;
      r.line = step.line;
      const auto step_started = std::chrono::steady_clock::now();
      try {
        execute(step, r);
      } catch (const std::exception& e) {
        r.verdict = Verdict::error;
        r.message = std::string("internal error: ") + e.what();
      }
      r.elapsed_ms = ms_since(step_started);
      const Verdict v = r.verdict;
      result_.steps.push_back(std::move(r));
      if (v == Verdict::fail || v == Verdict::error || v == Verdict::skip) {
        result_.verdict = v;
        result_.message = "step " + std::to_string(i + 1) + " (line " + std::to_string(step.line) + "): " + result_.steps.back().message;
        break;
      }
    }
    if (connection_) connection_->close();
    if (coaps_) coaps_->close();
    result_.elapsed_ms = ms_since(started);
    return std::move(result_);
  }

 private:
  void add_identity_vars(const std::string& name, const TlsIdentity& identity) {
    vars_["role." + name + ".subject"] = identity.certificate.subject().to_string();
    vars_["role." + name + ".cn"] = identity.certificate.subject().common_name().value_or("");
    vars_["role." + name + ".serial"] = identity.certificate.serial_hex();
  }

  std::string substitute(const std::string& text) const {
    static const std::regex reference(R"(\{\{\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*\}\})");
    std::string out;
    auto begin = std::sregex_iterator(text.begin(), text.end(), reference);
    std::size_t last = 0;
    for (auto it = begin; it != std::sregex_iterator(); ++it) {
      out += text.substr(last, static_cast<std::size_t>(it->position()) - last);
      const auto name = (*it)[1].str();
      auto found = vars_.find(name);
      if (found == vars_.end()) throw UnknownVariable(name);
      out += found->second;
      last = static_cast<std::size_t>(it->position() + it->length());
    }
    return out + text.substr(last);
  }

  struct UnknownVariable : std::runtime_error {
    explicit UnknownVariable(const std::string& name) : std::runtime_error("unknown variable {{" + name + "}}") {}
  };

  const TlsIdentity* identity(const std::string& name) const {
    if (auto it = captured_.find(name); it != captured_.end()) return &it->second;
    if (auto it = target_.identities.find(name); it != target_.identities.end()) return &it->second;
    return nullptr;
  }

  HttpsClientOptions client_options(const std::string& as, const std::string& tls, bool plain, const Step& step) const {
    HttpsClientOptions o;
    o.host = target_.host;
    o.port = target_.port;
    o.server_name = target_.server_name;
    o.trust_anchors = target_.trust_anchors;
    o.use_tls = !plain;
    if (tls == "any") {
      o.min_version = TlsVersion::tls1_2;
      o.max_version = TlsVersion::tls1_3;
    } else {
      o.min_version = o.max_version = *parse_tls_version(tls);
    }
    if (!as.empty()) o.identity = *identity(as);
    o.connect_timeout = o.handshake_timeout = o.io_timeout = step_timeout(step);
    return o;
  }

  std::string describe_connection() const {
    std::string text = connection_plain_ ? "http (no TLS)" : std::string("https ") + (connection_ ? to_string(connection_->tls().version) : "");
    return text + (connection_as_.empty() ? " anonymous" : " as " + connection_as_);
  }

  // --- steps ---------------------------------------------------------------------------------
  void execute(const Step& step, StepResult& r) {
    switch (step.kind) {
      case Step::Kind::connect: return connect(step, r);
      case Step::Kind::send: return send(step, r);
      case Step::Kind::raw: return raw(step, r);
      case Step::Kind::control: return control(step, r);
      case Step::Kind::wait:
        r.kind = "wait";
        r.summary = "wait " + std::to_string(step.wait_seconds) + " s";
        std::this_thread::sleep_for(std::chrono::duration<double>(step.wait_seconds));
        return;
      case Step::Kind::note:
        r.kind = "note";
        r.summary = step.note;
        return;
    }
  }

  void connect(const Step& step, StepResult& r) {
    r.kind = "connect";
    const std::string as = step.as.empty() ? "" : substitute(step.as);
    r.summary = "connect " + (step.plain_http ? std::string("over plain HTTP") : "TLS " + step.tls) + (as.empty() ? " anonymously" : " as " + as);
    if (!as.empty() && !identity(as)) {
      r.verdict = Verdict::error;
      r.message = "no identity '" + as + "' (neither a target role nor captured earlier)";
      return;
    }
    if (connection_) connection_->close();
    connection_.reset();
    connection_as_ = as;
    connection_tls_ = step.tls;
    connection_plain_ = step.plain_http;
    if (coaps()) return connect_coaps(step, r);
    auto connected = HttpsConnection::connect(client_options(as, step.tls, step.plain_http, step));
    if (judge_connect(connected, step, r, connection_, "")) return;
    r.message += std::string(" (") + (connection_plain_ ? "plain" : to_string(connection_->tls().version)) + ")";
  }

  // The verdict of a connect step: a failure passes only when the step expects one. Returns true
  // when nothing more is to be said (the connection failed, or succeeded as expected).
  template <typename Connection>
  bool judge_connect(Result<Connection>& connected, const Step& step, StepResult& r, std::optional<Connection>& slot,
                     const std::string& what) {
    const bool expect_failure = step.expect && step.expect->connection_fails;
    if (!connected.ok()) {
      if (expect_failure) r.checks.push_back("connection fails: yes (" + connected.error().message + ")");
      else {
        r.verdict = Verdict::fail;
        r.message = "could not connect" + what + ": " + connected.error().message;
      }
      return true;
    }
    slot = std::move(connected).value();
    if (!expect_failure) return true;
    r.verdict = Verdict::fail;
    r.message = "the" + what + " connection was expected to fail but was established";
    r.checks.push_back("connection fails: no");
    return false;
  }

  std::chrono::milliseconds step_timeout(const Step& step) const {
    return step.timeout_seconds ? std::chrono::milliseconds(static_cast<long long>(*step.timeout_seconds * 1000))
                                : options_.step_timeout;
  }

  bool coaps() const { return scenario_.transport == "coaps"; }

  CoapsClientOptions coaps_options(const Step& step) const {
    CoapsClientOptions o;
    o.host = target_.host;
    o.port = target_.coaps_port;
    o.trust_anchors = target_.trust_anchors;
    o.server_name = target_.server_name.empty() ? target_.host : target_.server_name;
    if (!connection_as_.empty()) o.identity = *identity(connection_as_);
    o.handshake_timeout = o.request_timeout = step_timeout(step);
    return o;
  }

  void connect_coaps(const Step& step, StepResult& r) {
    r.summary = "connect DTLS" + std::string(connection_as_.empty() ? " anonymously" : " as " + connection_as_);
    if (coaps_) coaps_->close();
    coaps_.reset();
    auto connected = CoapsConnection::connect(coaps_options(step));
    judge_connect(connected, step, r, coaps_, " (DTLS)");
  }

  // EST-coaps (RFC 9148): the same steps and checks, with the CoAP code as the status (2.05 -> 205)
  // and the binary body shown as an EST body would be, so one set of expectations serves both.
  void send_coaps(const Step& step, StepResult& r) {
    r.kind = "send";
    std::optional<EstOperation> op;
    if (!step.operation.empty()) op = parse_est_operation(step.operation);
    const std::string label = step.label.empty() ? target_.default_label : substitute(step.label);
    CoapRequest request;
    if (!step.path.empty()) {
      request.path = substitute(step.path);
    } else if (auto path = coaps_est_path(label, *op)) {
      request.path = *path;
    } else {
      // fullcmc has no EST-coaps resource: ask for the HTTPS name, which must not exist (PG-COAP-3).
      request.path = est_path(label, *op);
    }
    const std::string method = !step.method.empty() ? step.method : std::string(op ? http_method(*op) : "GET");
    request.method = method == "POST" ? CoapMethod::post : method == "PUT" ? CoapMethod::put : method == "DELETE" ? CoapMethod::del : CoapMethod::get;
    if (!coaps_) {
      Step anonymous = step;
      connect_coaps(anonymous, r);
      if (r.verdict != Verdict::pass) return;
    }
    std::optional<Csr> csr;
    if (step.csr) {
      auto built = build_csr(*step.csr);
      if (!built.ok()) {
        r.verdict = built.error().code == ErrorCode::unsupported ? Verdict::skip : Verdict::error;
        r.message = "building the CSR: " + built.error().message;
        return;
      }
      csr = *built;
      last_csr_ = csr;
      request.payload = csr->der();
    } else if (step.body) {
      const std::string body = substitute(*step.body);
      request.payload.assign(body.begin(), body.end());
    } else if (step.resend && last_coap_payload_) {
      request.payload = *last_coap_payload_;
      csr = last_csr_;
    }
    last_coap_payload_ = request.payload;
    if (!request.payload.empty() && op) request.content_format = coaps_request_format(*op);
    if (!step.content_type.empty()) {
      auto type = MediaType::parse(step.content_type);
      if (type.ok()) request.content_format = format_of_media_type(*type);
    }
    const std::string shown_path = request.path;
    r.summary = method + " coaps " + shown_path + " as " + (connection_as_.empty() ? "anonymous" : connection_as_);
    const auto started = std::chrono::steady_clock::now();
    auto response = coaps_->send(request);
    Exchange exchange;
    exchange.transport = "coaps DTLS 1.2" + std::string(connection_as_.empty() ? "" : " as " + connection_as_);
    exchange.request = method + " coaps://" + target_.host + ":" + std::to_string(target_.coaps_port) + shown_path +
                       (request.content_format ? "\nContent-Format: " + std::to_string(*request.content_format) : "") +
                       "\n\n" + (request.payload.empty() ? "" : base64_encode(request.payload, LineBreaks::every64_lf));
    exchange.elapsed_ms = ms_since(started);
    if (csr) exchange.decoded = "request CSR:\n" + csr->to_text() + "\n";
    if (!response.ok()) {
      r.exchange = exchange;
      r.verdict = Verdict::fail;
      r.message = "no CoAP response: " + response.error().message;
      coaps_.reset();
      return;
    }
    HttpResponse http = as_http(*response);
    exchange.response = response->code.to_string() + (response->content_format ? " Content-Format: " + std::to_string(*response->content_format) : "") +
                        (response->max_age ? " Max-Age: " + std::to_string(*response->max_age) : "") + "\n\n" + http.body;
    const auto decoded = describe_est_body(http.header("Content-Type").value_or(""), http.body);
    if (!decoded.empty()) exchange.decoded += "response:\n" + clip(decoded);
    r.exchange = exchange;
    check_and_capture(step, http, csr, r);
  }

  static HttpResponse as_http(const CoapResponse& response) {
    HttpResponse http;
    http.status = response.code.code_class() * 100 + response.code.detail();
    http.reason = "CoAP " + response.code.to_string();
    if (response.max_age) http.headers.emplace_back("Max-Age", std::to_string(*response.max_age));
    const auto format = response.content_format;
    if (format && *format == coap_formats::multipart_core) {
      auto parts = decode_multipart_core(response.payload);
      if (parts.ok()) {
        std::vector<MimePart> mime;
        for (const auto& part : *parts)
          mime.push_back(make_est_part(media_type_of_format(part.content_format).value_or("application/octet-stream"), part.data));
        const std::array<std::uint8_t, 16> fixed{};
        const std::string boundary = make_boundary(fixed);
        http.headers.emplace_back("Content-Type", "multipart/mixed; boundary=" + boundary);
        http.body = make_multipart(mime, boundary);
        return http;
      }
    }
    if (format) {
      if (auto type = media_type_of_format(*format)) {
        http.headers.emplace_back("Content-Type", std::string(*type));
        if (*format != coap_formats::text_plain && *format != coap_formats::link_format) {
          http.body = encode_est_body(response.payload);
          return http;
        }
      }
    }
    http.body = response.payload_text();
    return http;
  }

  Result<void> ensure_connection(const Step& step, bool fresh) {
    if (connection_ && connection_->open() && !fresh) return {};
    if (connection_) connection_->close();
    auto connected = HttpsConnection::connect(client_options(connection_as_, connection_tls_, connection_plain_, step));
    if (!connected.ok()) return connected.error();
    connection_ = std::move(connected).value();
    return {};
  }

  Result<PrivateKey> key_for(const CsrTemplate& t) {
    if (t.key != "new") {
      if (auto it = keys_.find(t.key); it != keys_.end()) return it->second;
      auto type = parse_key_type(t.key_type.empty() ? std::string(to_string(target_.key_type)) : t.key_type);
      if (!type.ok()) return type.error();
      auto key = PrivateKey::generate(*type);
      if (!key.ok()) return key.error();
      keys_.emplace(t.key, *key);
      return key;
    }
    auto type = parse_key_type(t.key_type.empty() ? std::string(to_string(target_.key_type)) : t.key_type);
    if (!type.ok()) return type.error();
    return PrivateKey::generate(*type);
  }

  Result<Csr> build_csr(const CsrTemplate& t) {
    if (!t.file.empty()) {
      std::filesystem::path file = substitute(t.file);
      if (file.is_relative()) file = scenario_.file.parent_path() / file;
      auto bytes = read_file_bytes(file.string());
      if (!bytes.ok()) return bytes.error();
      return Csr::parse(*bytes, Csr::SignatureCheck::skip);
    }
    auto key = key_for(t);
    if (!key.ok()) return key.error();
    CsrBuilder builder;
    if (!t.subject.empty()) {
      auto subject = DistinguishedName::parse(substitute(t.subject));
      if (!subject.ok()) return subject.error().within("csr.subject");
      builder.subject(*subject);
    }
    for (const auto& san : t.subject_alt_names) {
      auto parsed = SubjectAltName::parse(substitute(san));
      if (!parsed.ok()) return parsed.error().within("csr.san");
      builder.add_subject_alt_name(*parsed);
    }
    for (const auto& eku : t.extended_key_usages) builder.add_extended_key_usage(eku_oid(eku));
    if (!t.unstructured_name.empty()) builder.unstructured_name(substitute(t.unstructured_name));
    if (!t.unstructured_address.empty()) builder.unstructured_address(substitute(t.unstructured_address));
    for (const auto& [oid, hex] : t.attributes) {
      auto der = from_hex(hex);
      if (!der.ok()) return der.error();
      builder.add_attribute(oid, *der);
    }
    if (!t.challenge_password.empty()) {
      std::string value = t.challenge_password;
      if (value == "tls-unique" || value == "tls-exporter") {
        if (!connection_) return make_error(ErrorCode::invalid_input, "challenge_password " + value + " needs a TLS connection first");
        const auto& b = connection_->tls().bindings;
        const auto& binding = value == "tls-unique" ? b.tls_unique : b.tls_exporter;
        if (!binding) return make_error(ErrorCode::unsupported, value + " is not defined on this " + to_string(connection_->tls().version) + " connection");
        value = base64_encode(*binding);
      } else {
        value = substitute(value);
      }
      builder.challenge_password(value);
    }
    auto csr = builder.sign(*key);
    if (!csr.ok()) return csr.error();
    last_csr_key_ = *key;
    if (t.corrupt_signature) return Csr::from_der(with_corrupted_signature(csr->der()), Csr::SignatureCheck::skip);
    return csr;
  }

  void send(const Step& step, StepResult& r) {
    if (coaps()) return send_coaps(step, r);
    r.kind = "send";
    HttpRequest request;
    std::optional<EstOperation> op;
    if (!step.operation.empty()) op = parse_est_operation(step.operation);
    const std::string label = step.label.empty() ? target_.default_label : substitute(step.label);
    request.target = !step.path.empty() ? substitute(step.path) : est_path(label, *op);
    request.method = !step.method.empty() ? step.method : std::string(op ? http_method(*op) : "GET");
    r.summary = request.method + " " + request.target + " " + describe_connection();

    std::optional<Csr> csr;
    if (step.csr) {
      if (auto connected = ensure_connection(step, step.new_connection); !connected.ok()) {
        r.verdict = Verdict::fail;
        r.message = "could not connect: " + connected.error().message;
        return;
      }
      auto built = build_csr(*step.csr);
      if (!built.ok()) {
        r.verdict = built.error().code == ErrorCode::unsupported ? Verdict::skip : Verdict::error;
        r.message = "building the CSR: " + built.error().message;
        return;
      }
      csr = *built;
      last_csr_ = csr;
      if (step.full_cmc) {
        auto pki = make_full_pki_request(*csr, last_csr_key_.value(), nullptr);
        if (!pki.ok()) {
          r.verdict = Verdict::error;
          r.message = "building the Full PKI Request: " + pki.error().message;
          return;
        }
        request.body = encode_est_body(*pki);
      } else {
        request.body = encode_est_body(csr->der());
      }
    } else if (step.body) {
      request.body = substitute(*step.body);
    } else if (step.resend) {
      if (!last_request_body_) {
        r.verdict = Verdict::error;
        r.message = "resend: no earlier send step to repeat";
        return;
      }
      request.body = *last_request_body_;
      csr = last_csr_;
    }
    last_request_body_ = request.body;
    std::string content_type = step.content_type;
    if (content_type.empty() && !request.body.empty() && op) {
      if (step.full_cmc || *op == EstOperation::fullcmc) content_type = std::string(media_types::cmc_request);
      else if (auto type = request_media_type(*op)) content_type = std::string(*type);
    }
    if (!content_type.empty()) request.headers.emplace_back("Content-Type", content_type);
    for (const auto& [k, v] : step.headers) request.headers.emplace_back(k, substitute(v));
    if (step.basic_auth)
      request.headers.emplace_back("Authorization", make_basic_authorization(substitute(step.basic_auth->first), substitute(step.basic_auth->second)));

    if (auto connected = ensure_connection(step, step.new_connection && !step.csr); !connected.ok()) {
      r.verdict = Verdict::fail;
      r.message = "could not connect: " + connected.error().message;
      return;
    }
    r.summary = request.method + " " + request.target + " " + describe_connection();
    const auto started = std::chrono::steady_clock::now();
    auto response = connection_->send(request);
    Exchange exchange;
    exchange.transport = describe_connection();
    exchange.request = clip(request.to_text());
    exchange.elapsed_ms = ms_since(started);
    if (csr) exchange.decoded = "request CSR:\n" + csr->to_text() + "\n";
    if (!response.ok()) {
      r.exchange = exchange;
      r.verdict = Verdict::fail;
      r.message = "no response: " + response.error().message;
      return;
    }
    exchange.response = clip(response->to_text());
    const auto decoded = describe_est_body(response->header("Content-Type").value_or(""), response->body);
    if (!decoded.empty()) exchange.decoded += "response:\n" + clip(decoded);
    r.exchange = exchange;
    check_and_capture(step, *response, csr, r);
  }

  // The checks of a send step, then its captures; the issued certificate is found for a capture
  // even when no check looked for it. HTTPS and coaps answers (as_http) alike.
  void check_and_capture(const Step& step, const HttpResponse& response, const std::optional<Csr>& csr, StepResult& r) {
    issued_.reset();
    server_key_.reset();
    check(step, response, csr, r);
    if (r.verdict != Verdict::pass || step.capture.empty()) return;
    if (!issued_ && response.status / 100 == 2) {
      std::vector<Certificate> certs;
      std::optional<PrivateKey> key;
      std::string problem;
      extract(response, certs, key, problem);
      if (!certs.empty()) issued_ = certs.front();
      server_key_ = key;
    }
    capture(step, response, r);
  }

  void raw(const Step& step, StepResult& r) {
    r.kind = "raw";
    if (coaps()) {
      r.verdict = Verdict::error;
      r.message = "raw steps are HTTP only; garbage datagrams are tested by tests/e2e/test_coap_proxy.py";
      return;
    }
    r.summary = "raw " + std::to_string(step.raw_text.size()) + " bytes " + describe_connection();
    if (auto connected = ensure_connection(step, false); !connected.ok()) {
      r.verdict = Verdict::fail;
      r.message = "could not connect: " + connected.error().message;
      return;
    }
    auto response = connection_->send_raw(step.raw_text);
    Exchange exchange;
    exchange.transport = describe_connection();
    exchange.request = clip(step.raw_text);
    if (!response.ok()) {
      r.exchange = exchange;
      // A closed connection is a fine answer to garbage unless the step expects a status.
      if (step.expect && (!step.expect->status.empty() || step.expect->status_class)) {
        r.verdict = Verdict::fail;
        r.message = "no response: " + response.error().message;
      } else {
        r.checks.push_back("no HTTP response (" + response.error().message + ")");
      }
      return;
    }
    exchange.response = clip(response->to_text());
    r.exchange = exchange;
    check(step, *response, std::nullopt, r);
  }

  void control(const Step& step, StepResult& r) {
    r.kind = "control";
    ControlArguments arguments;
    for (const auto& [k, v] : step.arguments) arguments[k] = substitute(v);
    // approve/reject act on this scenario's own pending request (the SHA-256 of its last CSR), so
    // parallel scenarios never decide each other's requests.
    if ((step.control == "approve" || step.control == "reject") && !arguments.count("request") && last_csr_) {
      arguments["request"] = sha256_hex(last_csr_->der());
    }
    std::string args_text;
    for (const auto& [k, v] : arguments) args_text += " " + k + "=" + v;
    r.summary = "control " + step.control + args_text;
    if (!target_.control_hook || !target_.controls.count(step.control)) {
      r.verdict = Verdict::skip;
      r.message = "the target has no '" + step.control + "' control";
      return;
    }
    auto done = target_.control_hook(step.control, arguments);
    if (!done.ok()) {
      r.verdict = Verdict::error;
      r.message = "control " + step.control + " failed: " + done.error().message;
      return;
    }
    r.checks.push_back(*done);
    if (step.control == "restart" && connection_) connection_->close();
  }

  // --- checks --------------------------------------------------------------------------------
  void check(const Step& step, const HttpResponse& response, const std::optional<Csr>& csr, StepResult& r) {
    if (!step.expect) return;
    const Expectation& e = *step.expect;
    std::vector<std::string> failures;
    auto verify = [&](bool ok, const std::string& what) {
      r.checks.push_back(std::string(ok ? "ok    " : "FAILED ") + what);
      if (!ok) failures.push_back(what);
    };
    if (!e.status.empty()) {
      std::string list;
      for (int s : e.status) list += (list.empty() ? "" : " or ") + std::to_string(s);
      verify(std::find(e.status.begin(), e.status.end(), response.status) != e.status.end(),
             "status " + std::to_string(response.status) + ", expected " + list);
    }
    if (e.status_class)
      verify(response.status / 100 == *e.status_class - '0',
             "status " + std::to_string(response.status) + ", expected " + std::string(1, *e.status_class) + "xx");
    for (const auto& [name, want] : e.headers) {
      const auto got = response.header(name);
      if (want == "present") verify(got.has_value(), "header " + name + " present");
      else if (want == "absent") verify(!got.has_value(), "header " + name + " absent" + (got ? " (got '" + *got + "')" : ""));
      else if (!want.empty() && want[0] == '~') verify(got && contains_ci(*got, want.substr(1)), "header " + name + " contains '" + want.substr(1) + "' (got '" + got.value_or("none") + "')");
      else verify(got == want, "header " + name + " = '" + want + "' (got '" + got.value_or("none") + "')");
    }
    const auto content_type = response.header("Content-Type").value_or("");
    if (!e.media_type.empty()) {
      auto type = MediaType::parse(content_type);
      bool ok = type.ok();
      std::string expected = e.media_type;
      if (ok) {
        if (e.media_type == "certs-only") ok = media_type_matches(*type, media_types::certs_only);
        else if (e.media_type == "csrattrs") ok = type->same_type(media_types::csrattrs);
        else if (e.media_type == "multipart") ok = multipart_boundary(*type).ok();
        else if (e.media_type == "cmc-response") ok = media_type_matches(*type, media_types::cmc_response);
        else if (e.media_type == "text") ok = type->same_type("text/plain");
        else ok = media_type_matches(*type, e.media_type);
      }
      verify(ok, "Content-Type '" + content_type + "' is " + expected);
    }
    if (!e.body_contains.empty()) verify(response.body.find(e.body_contains) != std::string::npos, "body contains '" + e.body_contains + "'");

    // Certificates in the answer.
    const bool wants_certs = e.certificate_count || !e.issued_subject.empty() || !e.issued_common_name.empty() ||
                             !e.issued_issuer.empty() || !e.issued_serial.empty() || !e.issued_san.empty() || !e.issued_san_contains.empty() ||
                             !e.issued_eku.empty() || !e.issued_public_key.empty() || e.server_key_matches;
    if (wants_certs) {
      std::vector<Certificate> certs;
      std::optional<PrivateKey> server_key;
      std::string problem;
      extract(response, certs, server_key, problem);
      if (!problem.empty()) {
        verify(false, "response carries certificates: " + problem);
      } else {
        if (e.certificate_count)
          verify(static_cast<int>(certs.size()) == *e.certificate_count,
                 std::to_string(certs.size()) + " certificate(s), expected " + std::to_string(*e.certificate_count));
        if (!certs.empty()) {
          const Certificate& issued = certs.front();
          issued_ = issued;
          server_key_ = server_key;
          if (!e.issued_subject.empty()) {
            auto want = DistinguishedName::parse(substitute(e.issued_subject));
            verify(want.ok() && issued.subject() == *want, "issued subject '" + issued.subject().to_string() + "' = '" + substitute(e.issued_subject) + "'");
          }
          if (!e.issued_serial.empty())
            verify(issued.serial_hex() == ascii_lowercase(substitute(e.issued_serial)),
                   "issued serial " + issued.serial_hex() + " = " + ascii_lowercase(substitute(e.issued_serial)));
          if (!e.issued_common_name.empty())
            verify(issued.subject().common_name() == substitute(e.issued_common_name),
                   "issued commonName '" + issued.subject().common_name().value_or("") + "' = '" + substitute(e.issued_common_name) + "'");
          if (!e.issued_issuer.empty())
            verify(contains_ci(issued.issuer().to_string(), substitute(e.issued_issuer)),
                   "issuer '" + issued.issuer().to_string() + "' contains '" + substitute(e.issued_issuer) + "'");
          std::vector<std::string> sans;
          for (const auto& san : issued.subject_alt_names()) sans.push_back(san.to_string());
          std::string sans_text;
          for (const auto& s : sans) sans_text += (sans_text.empty() ? "" : ", ") + s;
          if (!e.issued_san.empty()) {
            std::vector<std::string> want;
            for (const auto& s : e.issued_san) want.push_back(substitute(s));
            auto sorted_got = sans;
            std::sort(sorted_got.begin(), sorted_got.end());
            std::sort(want.begin(), want.end());
            verify(sorted_got == want, "issued SAN [" + sans_text + "] is exactly the expected set");
          }
          for (const auto& s : e.issued_san_contains) {
            const auto want = substitute(s);
            verify(std::find(sans.begin(), sans.end(), want) != sans.end(), "issued SAN [" + sans_text + "] contains " + want);
          }
          for (const auto& eku : e.issued_eku)
            verify(issued.has_extended_key_usage(eku_oid(eku)), "issued certificate has EKU " + eku);
          if (!e.issued_public_key.empty()) {
            const bool same = csr && issued.public_key() == csr->public_key();
            verify(e.issued_public_key == "csr" ? same : !same,
                   e.issued_public_key == "csr" ? "issued public key equals the CSR's" : "issued public key differs from the CSR's");
          }
          if (e.server_key_matches) {
            const bool matches = server_key && issued.public_key() == server_key->public_key();
            verify(matches == *e.server_key_matches, std::string("server-generated key ") + (*e.server_key_matches ? "matches" : "does not match") + " the certificate");
          }
        }
      }
    }
    if (!e.csrattrs_contains.empty()) {
      auto der = decode_est_body(response.body, std::nullopt);
      auto attrs = der.ok() ? CsrAttrs::from_der(*der) : Result<CsrAttrs>(der.error());
      for (const auto& want : e.csrattrs_contains)
        verify(attrs.ok() && attrs->contains_oid(want), "csrattrs contains " + want + (attrs.ok() ? "" : " (" + attrs.error().message + ")"));
    }
    if (!e.cmc_status.empty() || !e.cmc_fail_info.empty()) {
      auto der = decode_est_body(response.body, std::nullopt);
      auto pki = der.ok() ? parse_full_pki_response(*der) : Result<PkiResponse>(der.error());
      if (!pki.ok() || pki->statuses.empty()) {
        verify(false, "body is a CMC Full PKI Response with a status" + (pki.ok() ? std::string() : " (" + pki.error().message + ")"));
      } else {
        if (!e.cmc_status.empty())
          verify(to_string(pki->statuses.front().status) == e.cmc_status, "CMC status " + to_string(pki->statuses.front().status) + " = " + e.cmc_status);
        if (!e.cmc_fail_info.empty()) {
          const auto got = pki->statuses.front().fail_info ? to_string(*pki->statuses.front().fail_info) : std::string("none");
          verify(got == e.cmc_fail_info, "CMC failInfo " + got + " = " + e.cmc_fail_info);
        }
        for (const auto& cert : pki->certificates)
          if (csr && cert.public_key() == csr->public_key()) issued_ = cert;
      }
    }
    if (!failures.empty()) {
      if (e.severity == "warn") {
        r.checks.push_back("(warning only: " + failures.front() + ")");
        return;
      }
      r.verdict = Verdict::fail;
      r.message = failures.front();
      if (failures.size() > 1) r.message += " (and " + std::to_string(failures.size() - 1) + " more)";
    }
  }

  // Certificates (and a server-generated key) from a certs-only, CMC or multipart answer.
  void extract(const HttpResponse& response, std::vector<Certificate>& certs, std::optional<PrivateKey>& key, std::string& problem) const {
    auto type = MediaType::parse(response.header("Content-Type").value_or(""));
    if (type.ok() && type->same_type("multipart/mixed")) {
      auto boundary = multipart_boundary(*type);
      if (!boundary.ok()) return void(problem = boundary.error().message);
      auto parts = parse_multipart(response.body, *boundary);
      if (!parts.ok()) return void(problem = parts.error().message);
      for (const auto& part : *parts) {
        auto part_type = MediaType::parse(part.header("Content-Type").value_or(""));
        auto der = decode_est_body(part.body, std::nullopt);
        if (!part_type.ok() || !der.ok()) continue;
        if (part_type->same_type(media_types::pkcs8)) {
          auto parsed = PrivateKey::from_pkcs8_der(*der);
          if (parsed.ok()) key = *parsed;
        } else if (auto bag = CertsOnly::from_der(*der); bag.ok()) {
          certs = bag->certificates();
        }
      }
      if (certs.empty()) problem = "no certs-only part in the multipart answer";
      return;
    }
    auto der = decode_est_body(response.body, std::nullopt);
    if (!der.ok()) return void(problem = der.error().message);
    if (auto bag = CertsOnly::from_der(*der); bag.ok()) {
      certs = bag->certificates();
      return;
    }
    if (auto pki = parse_full_pki_response(*der); pki.ok()) {
      certs = pki->certificates;
      if (last_csr_) {
        // The issued certificate first: the one whose key is the CSR's.
        std::stable_partition(certs.begin(), certs.end(), [&](const Certificate& c) { return c.public_key() == last_csr_->public_key(); });
      }
      return;
    }
    problem = "body is neither certs-only nor a CMC response";
  }

  void capture(const Step& step, const HttpResponse& response, StepResult& r) {
    for (const auto& [var, what] : step.capture) {
      if (what == "status") {
        vars_[var] = std::to_string(response.status);
      } else if (what.rfind("header.", 0) == 0) {
        vars_[var] = response.header(what.substr(7)).value_or("");
      } else if (!issued_) {
        r.verdict = Verdict::error;
        r.message = "capture " + var + ": the response carried no certificate";
        return;
      } else if (what == "issued.serial") {
        vars_[var] = issued_->serial_hex();
      } else if (what == "issued.subject") {
        vars_[var] = issued_->subject().to_string();
      } else if (what == "issued.identity" || what == "server_key.identity") {
        const std::optional<PrivateKey> key = what == "issued.identity" ? last_csr_key_ : server_key_;
        if (!key) {
          r.verdict = Verdict::error;
          r.message = "capture " + var + ": no private key for the issued certificate";
          return;
        }
        TlsIdentity id{*key, *issued_, {}};
        // The chain the target's CA gave for the role identities is reused: same CA.
        for (const auto& [role, known] : target_.identities)
          if (known.certificate.issuer() == issued_->issuer()) {
            id.chain = known.chain;
            break;
          }
        captured_.insert_or_assign(var, id);
        add_identity_vars(var, id);
      }
      r.checks.push_back("captured " + var + " = " + what);
    }
  }

  const Scenario& scenario_;
  const Target& target_;
  const RunOptions& options_;
  ScenarioResult result_;
  std::map<std::string, std::string> vars_;
  std::map<std::string, TlsIdentity> captured_;
  std::map<std::string, PrivateKey> keys_;
  std::optional<HttpsConnection> connection_;
  std::optional<CoapsConnection> coaps_;
  std::optional<Bytes> last_coap_payload_;
  std::string connection_as_;
  std::string connection_tls_ = "any";
  bool connection_plain_ = false;
  std::optional<Csr> last_csr_;
  std::optional<PrivateKey> last_csr_key_;
  std::optional<std::string> last_request_body_;
  std::optional<Certificate> issued_;
  std::optional<PrivateKey> server_key_;
};

// "-k" expressions: words joined by "or"/"and", each optionally prefixed by "not".
bool keyword_matches(const std::string& expression, const Scenario& s) {
  if (expression.empty()) return true;
  const std::string haystack = s.id + " " + s.title + " " + s.file.string();
  std::istringstream words(expression);
  std::vector<std::string> tokens;
  for (std::string w; words >> w;) tokens.push_back(w);
  bool result = false;
  bool have = false;
  std::string joiner = "or";
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] == "or" || tokens[i] == "and") {
      joiner = tokens[i];
      continue;
    }
    bool negate = false;
    if (tokens[i] == "not" && i + 1 < tokens.size()) {
      negate = true;
      ++i;
    }
    bool term = contains_ci(haystack, tokens[i]) != negate;
    if (!have) result = term;
    else result = joiner == "and" ? (result && term) : (result || term);
    have = true;
  }
  return result;
}

}  // namespace

bool Selection::matches(const Scenario& s) const {
  if (!keyword_matches(keyword, s)) return false;
  if (!requirements.empty()) {
    bool any = false;
    for (const auto& want : requirements)
      for (const auto& r : s.requirements) any |= (r == want || r.rfind(want, 0) == 0);
    if (!any) return false;
  }
  if (!transports.empty() && std::find(transports.begin(), transports.end(), s.transport) == transports.end()) return false;
  return true;
}

std::vector<PlannedRun> plan(const std::vector<Scenario>& scenarios, const std::vector<const Target*>& targets,
                             const Selection& selection, const RunOptions& options) {
  std::vector<PlannedRun> runs;
  for (const auto& scenario : scenarios) {
    if (!selection.matches(scenario)) continue;
    for (const auto& profile : scenario.profiles) {
      if (!selection.profiles.empty() &&
          std::find(selection.profiles.begin(), selection.profiles.end(), profile) == selection.profiles.end())
        continue;
      // The first target of the profile that offers every feature the scenario needs, else the
      // first of the profile (which then skips with the reason).
      const Target* target = nullptr;
      for (const auto* t : targets) {
        if (t->profile != profile) continue;
        const bool offers_all = std::all_of(scenario.needs_features.begin(), scenario.needs_features.end(),
                                            [&](const std::string& f) { return t->features.count(f) != 0; }) &&
                                std::all_of(scenario.needs_controls.begin(), scenario.needs_controls.end(),
                                            [&](const std::string& c) { return t->controls.count(c) != 0; });
        if (offers_all) {
          target = t;
          break;
        }
        if (target == nullptr) target = t;
      }
      if (target == nullptr) continue;  // the target does not implement this profile
      // Every unmet need is named, so one fix to the target file is not followed by another skip.
      std::vector<std::string> missing;
      if (scenario.transport == "coaps" && target->coaps_port == 0) missing.push_back("an EST-coaps endpoint (coaps_port)");
      for (const auto& feature : scenario.needs_features)
        if (!target->features.count(feature)) missing.push_back("feature '" + feature + "'");
      for (const auto& control : scenario.needs_controls)
        if (!target->controls.count(control)) missing.push_back("control '" + control + "'");
      for (const auto& role : scenario.needs_roles)
        if (!target->identities.count(role)) missing.push_back("an identity for role '" + role + "'");
      std::string skip;
      for (const auto& m : missing) skip += (skip.empty() ? "the target lacks " : ", ") + m;
      for (int rep = 0; rep < std::max(1, options.repeat); ++rep) runs.push_back({&scenario, target, profile, skip, rep});
    }
  }
  return runs;
}

ScenarioResult run_scenario(const Scenario& scenario, const Target& target, int repetition, const RunOptions& options) {
  return ScenarioRun(scenario, target, repetition, options).run();
}

std::vector<ScenarioResult> run_plan(const std::vector<PlannedRun>& runs, const RunOptions& options, const ProgressCallback& progress) {
  std::vector<ScenarioResult> results(runs.size());
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> done{0};
  std::atomic<bool> stop{false};
  std::mutex progress_mutex;
  auto skipped = [](const PlannedRun& run, const std::string& reason) {
    ScenarioResult r;
    r.id = run.scenario->id;
    r.title = run.scenario->title;
    r.file = run.scenario->file.string();
    r.line = run.scenario->line;
    r.requirements = run.scenario->requirements;
    r.profile = run.profile;
    r.transport = run.scenario->transport;
    r.spec = run.scenario->spec;
    r.section = run.scenario->section;
    r.repetition = run.repetition;
    r.verdict = Verdict::skip;
    r.message = reason;
    return r;
  };
  auto worker = [&] {
    for (std::size_t i = next++; i < runs.size(); i = next++) {
      const auto& run = runs[i];
      if (!run.skip_reason.empty()) results[i] = skipped(run, run.skip_reason);
      else if (stop) results[i] = skipped(run, "not run: --fail-fast after an earlier failure");
      else results[i] = run_scenario(*run.scenario, *run.target, run.repetition, options);
      if (options.fail_fast && (results[i].verdict == Verdict::fail || results[i].verdict == Verdict::error)) stop = true;
      const std::size_t finished = ++done;
      if (progress) {
        std::lock_guard lock(progress_mutex);
        progress(results[i], finished, runs.size());
      }
    }
  };
  const std::size_t workers = std::max<std::size_t>(1, std::min(options.jobs, runs.size()));
  std::vector<std::thread> threads;
  for (std::size_t w = 1; w < workers; ++w) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  return results;
}

}  // namespace estlab::conformance
