#include "estlab/conformance/runner.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>
#include <regex>
#include <set>
#include <shared_mutex>
#include <sstream>
#include <thread>

#include "csr_maker.hpp"
#include "estlab/core/base64.hpp"
#include "estlab/core/cmc.hpp"
#include "estlab/core/coaps_client.hpp"
#include "estlab/core/describe.hpp"
#include "estlab/core/est.hpp"
#include "estlab/core/https_client.hpp"
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

// EST-coaps (RFC 9148): the CoAP code as the status (2.05 -> 205) and the binary body shown as an
// EST body would be, so one set of expectations serves both transports.
HttpResponse as_http(const CoapResponse& response) {
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


// A step that cannot be judged because something it depends on is missing: a role the target
// does not give, a credential, a CA label, or a value an earlier failed step should have captured.
struct NotJudged : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// State of one scenario run.
class ScenarioRun {
 public:
  ScenarioRun(const Scenario& scenario, const Target& target, int repetition, const RunOptions& options)
      : scenario_(scenario), target_(target), options_(options), csr_maker_(target.key_type, scenario.file.parent_path()) {
    const std::string unique = unique_for(options.seed, scenario.id, target.profile, repetition);
    vars_["unique"] = unique;
    vars_["profile"] = target.profile;
    vars_["label"] = target.default_label;
    for (const auto& [role, identity] : target.identities) add_identity_vars(role, identity);
    for (const auto& [name, credential] : target.credentials) {
      vars_["credential." + name + ".user"] = credential.user;
      vars_["credential." + name + ".password"] = credential.password;
      vars_["credential." + name + ".subject"] = credential.subject;
    }
    for (const auto& [purpose, label] : target.ca_labels) vars_["ca_label." + purpose] = label;
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
    result_.unique = unique;
  }

  ScenarioResult run() {
    const auto started = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < scenario_.steps.size(); ++i) {
      const Step& step = scenario_.steps[i];
      StepResult r;
      r.index = i;
      r.line = step.line;
      r.kind = kind_name(step.kind);
      const auto step_started = std::chrono::steady_clock::now();
      try {
        // A target that stopped answering cannot be judged further in this scenario: every
        // later step would only wait out its deadline too.
        if (!timed_out_.empty() && step.kind != Step::Kind::note && step.kind != Step::Kind::wait)
          throw NotJudged("not judged: an earlier " + timed_out_);
        execute(step, r);
      } catch (const NotJudged& e) {
        r.verdict = Verdict::skip;
        r.message = e.what();
      } catch (const std::exception& e) {
        r.verdict = Verdict::error;
        r.message = std::string("internal error: ") + e.what();
      }
      if (r.verdict == Verdict::skip && (step.kind == Step::Kind::connect)) skipped_connection_ = r.message;
      for (const auto& [var, what] : step.capture)
        if (r.verdict == Verdict::skip || !vars_.count(var) && !captured_.count(var) && !bags_.count(var))
          unavailable_[var] = "step " + std::to_string(i + 1) + (r.verdict == Verdict::skip ? " was skipped" : " could not capture it");
      r.elapsed_ms = ms_since(step_started);
      result_.steps.push_back(std::move(r));
    }
    if (connection_) connection_->close();
    if (coaps_) coaps_->close();
    roll_up();
    result_.elapsed_ms = ms_since(started);
    return std::move(result_);
  }

 private:
  static const char* kind_name(Step::Kind kind) {
    switch (kind) {
      case Step::Kind::connect: return "connect";
      case Step::Kind::send: return "send";
      case Step::Kind::raw: return "raw";
      case Step::Kind::control: return "control";
      case Step::Kind::wait: return "wait";
      case Step::Kind::note: return "note";
    }
    return "step";
  }

  // The scenario's verdict is the worst of its steps; skipped only when nothing was judged.
  void roll_up() {
    Verdict verdict = Verdict::skip;
    const StepResult* worst = nullptr;
    bool judged = false;
    for (const auto& step : result_.steps) {
      if (step.verdict == Verdict::skip) continue;
      if (!step.checks.empty() || step.verdict != Verdict::pass) judged = true;
      if (worst == nullptr || severity(step.verdict) > severity(worst->verdict)) worst = &step;
      verdict = worse(verdict, step.verdict);
    }
    if (!judged) {
      result_.verdict = Verdict::skip;
      for (const auto& step : result_.steps)
        if (step.verdict == Verdict::skip) {
          result_.message = step.message;
          break;
        }
      if (result_.message.empty()) result_.message = "nothing in the scenario could be judged";
      return;
    }
    result_.verdict = verdict;
    if (worst && worst->verdict != Verdict::pass)
      result_.message = "step " + std::to_string(worst->index + 1) + " (line " + std::to_string(worst->line) + "): " + worst->message;
  }

  void add_identity_vars(const std::string& name, const TlsIdentity& identity) {
    vars_["role." + name + ".subject"] = identity.certificate.subject().to_string();
    vars_["role." + name + ".cn"] = identity.certificate.subject().common_name().value_or("");
    vars_["role." + name + ".serial"] = identity.certificate.serial_hex();
  }

  // Why a variable is missing, as a reason to skip the step that needs it.
  std::string missing_reason(const std::string& name) const {
    for (const auto& [var, why] : unavailable_)
      if (name == var || name.rfind("role." + var + ".", 0) == 0) return "not judged: {{" + name + "}} is missing because " + why;
    if (name.rfind("role.", 0) == 0) {
      const auto role = name.substr(5, name.rfind('.') - 5);
      return "not judged: the target gives no identity for role '" + role + "'";
    }
    if (name.rfind("credential.", 0) == 0) {
      const auto credential = name.substr(11, name.rfind('.') - 11);
      return "not judged: the target gives no credentials." + credential;
    }
    if (name.rfind("ca_label.", 0) == 0) return "not judged: the target gives no ca_labels." + name.substr(9);
    return "";
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
      if (found == vars_.end()) {
        if (auto why = missing_reason(name); !why.empty()) throw NotJudged(why);
        throw std::runtime_error("unknown variable {{" + name + "}}");
      }
      out += found->second;
      last = static_cast<std::size_t>(it->position() + it->length());
    }
    return out + text.substr(last);
  }

  Expectation resolve(const Expectation& e) const {
    Expectation r = e;
    for (auto& [name, value] : r.headers) value = substitute(value);
    r.issued_subject = substitute(e.issued_subject);
    r.issued_common_name = substitute(e.issued_common_name);
    r.issued_issuer = substitute(e.issued_issuer);
    r.issued_serial = substitute(e.issued_serial);
    for (auto& s : r.issued_san) s = substitute(s);
    for (auto& s : r.issued_san_contains) s = substitute(s);
    r.body_contains = substitute(e.body_contains);
    if (!r.issued_chains_to.empty() && !bags_.count(r.issued_chains_to)) {
      if (auto it = unavailable_.find(r.issued_chains_to); it != unavailable_.end())
        throw NotJudged("not judged: the /cacerts bag '" + r.issued_chains_to + "' is missing because " + it->second);
    }
    return r;
  }

  CsrTemplate resolve(const CsrTemplate& t) const {
    CsrTemplate r = t;
    r.subject = t.cn_given ? fresh_subject(target_.subject_template, substitute(t.cn)) : substitute(t.subject);
    for (auto& san : r.subject_alt_names) san = substitute(san);
    r.unstructured_name = substitute(t.unstructured_name);
    r.unstructured_address = substitute(t.unstructured_address);
    if (t.challenge_password != "tls-unique" && t.challenge_password != "tls-exporter") r.challenge_password = substitute(t.challenge_password);
    r.file = substitute(t.file);
    return r;
  }

  const TlsIdentity* identity(const std::string& name) const {
    if (auto it = captured_.find(name); it != captured_.end()) return &it->second;
    if (auto it = target_.identities.find(name); it != target_.identities.end()) return &it->second;
    return nullptr;
  }

  std::chrono::milliseconds step_timeout(const Step& step) const {
    return step.timeout_seconds ? std::chrono::milliseconds(static_cast<long long>(*step.timeout_seconds * 1000))
                                : options_.step_timeout;
  }

  HttpsClientOptions client_options(const Step& step) const {
    HttpsClientOptions o;
    o.host = target_.host;
    o.port = target_.port;
    o.server_name = target_.server_name;
    o.trust_anchors = target_.trust_anchors;
    o.use_tls = !connection_plain_;
    if (connection_tls_ == "any") {
      o.min_version = TlsVersion::tls1_2;
      o.max_version = TlsVersion::tls1_3;
    } else {
      o.min_version = o.max_version = *parse_tls_version(connection_tls_);
    }
    if (!connection_as_.empty()) o.identity = *identity(connection_as_);
    o.connect_timeout = o.handshake_timeout = o.io_timeout = step_timeout(step);
    return o;
  }

  std::string describe_connection() const {
    std::string text = connection_plain_ ? "http (no TLS)" : std::string("https ") + (connection_ ? to_string(connection_->tls().version) : "");
    return text + (connection_as_.empty() ? " anonymous" : " as " + connection_as_);
  }

  bool coaps() const { return scenario_.transport == "coaps"; }

  // A judged expectation becomes the step's checks and verdict.
  void apply(const Judgement& judgement, StepResult& r) {
    for (auto check : judgement.checks) {
      if (options_.strict && check.verdict == Verdict::warn) check.verdict = Verdict::fail;
      r.verdict = worse(r.verdict, check.verdict);
      r.checks.push_back(std::move(check));
    }
    if (r.verdict != Verdict::pass && r.message.empty()) {
      for (const auto& c : r.checks)
        if (c.verdict == r.verdict) {
          r.message = c.what;
          break;
        }
    }
  }

  void fail_step(StepResult& r, Verdict verdict, const std::string& message) {
    r.verdict = worse(r.verdict, verdict);
    if (r.message.empty()) r.message = message;
    r.checks.push_back({message, verdict, scenario_.requirements.front(), ""});
  }

  JudgeContext judge_context() const {
    JudgeContext c;
    c.level_of = options_.level_of;
    c.default_requirement = scenario_.requirements.front();
    c.bags = bags_;
    return c;
  }

  // --- steps ---------------------------------------------------------------------------------
  void execute(const Step& step, StepResult& r) {
    switch (step.kind) {
      case Step::Kind::connect: return connect(step, r);
      case Step::Kind::send: return send(step, r);
      case Step::Kind::raw: return raw(step, r);
      case Step::Kind::control: return control(step, r);
      case Step::Kind::wait:
        r.summary = "wait " + std::to_string(step.wait_seconds) + " s";
        std::this_thread::sleep_for(std::chrono::duration<double>(step.wait_seconds));
        return;
      case Step::Kind::note:
        r.summary = step.note;
        return;
    }
  }

  void connect(const Step& step, StepResult& r) {
    skipped_connection_.clear();
    const std::string as = step.as.empty() ? "" : substitute(step.as);
    r.summary = "connect " + (step.plain_http ? std::string("over plain HTTP") : "TLS " + step.tls) + (as.empty() ? " anonymously" : " as " + as);
    if (connection_) connection_->close();
    connection_.reset();
    if (coaps_) coaps_->close();
    coaps_.reset();
    connect_failure_.clear();
    requests_on_connection_ = 0;
    if (!as.empty() && !identity(as)) {
      if (auto why = missing_reason("role." + as + ".subject"); !why.empty()) throw NotJudged(why);
      throw NotJudged("not judged: no identity '" + as + "' (neither a target role nor captured earlier)");
    }
    connection_as_ = as;
    connection_tls_ = step.tls;
    connection_plain_ = step.plain_http;
    const bool expect_failure = step.expect && step.expect->connection_fails;
    std::string failure;
    if (coaps()) {
      r.summary = "connect DTLS" + std::string(as.empty() ? " anonymously" : " as " + as);
      auto connected = CoapsConnection::connect(coaps_options(step));
      if (connected.ok()) coaps_ = std::move(connected).value();
      else failure = connected.error().message;
    } else {
      auto connected = HttpsConnection::connect(client_options(step));
      if (connected.ok()) connection_ = std::move(connected).value();
      else failure = connected.error().message;
    }
    const bool failed = !failure.empty();
    if (expect_failure) {
      const Level level = step.expect && parse_level(step.expect->level) ? *parse_level(step.expect->level)
                          : options_.level_of ? options_.level_of(step.expect->requirement.empty() ? scenario_.requirements.front() : step.expect->requirement)
                                              : Level::must;
      Verdict v = failed ? Verdict::pass : verdict_when_failed(level);
      if (options_.strict && v == Verdict::warn) v = Verdict::fail;
      r.checks.push_back({failed ? "the handshake fails: " + failure : "the handshake was expected to fail but succeeded", v,
                          step.expect->requirement, to_string(level)});
      r.verdict = worse(r.verdict, v);
      if (v != Verdict::pass) r.message = r.checks.back().what;
      return;
    }
    if (failed) {
      // Not judged here: a refusal at the handshake may be exactly what the next request expects
      // (a revoked or untrusted client, 7030-3.3.2-b), so that request judges it.
      connect_failure_ = failure;
      // Recorded, not a verdict of its own: the step stays pass and the next request decides.
      r.checks.push_back({"the handshake failed (" + failure + "); the next request judges whether a refusal was expected", Verdict::info,
                          "", "info"});
      return;
    }
    r.checks.push_back({std::string("connected") + (coaps() ? " (DTLS)" : connection_plain_ ? " (plain HTTP)" : std::string(" (") + to_string(connection_->tls().version) + ")"),
                        Verdict::pass, "", ""});
  }

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

  void check_connection_usable() const {
    if (!skipped_connection_.empty()) throw NotJudged(skipped_connection_);
  }

  // Builds the step's CSR (if any) on the current connection's TLS facts.
  std::optional<MadeCsr> make_csr(const Step& step, StepResult& r) {
    if (!step.csr) return std::nullopt;
    const TlsConnectionInfo* tls = connection_ && !connection_plain_ ? &connection_->tls() : nullptr;
    auto made = csr_maker_.make(resolve(*step.csr), tls);
    if (!made.ok()) {
      if (made.error().code == ErrorCode::unsupported) throw NotJudged("not judged: building the CSR: " + made.error().message);
      fail_step(r, Verdict::error, "building the CSR: " + made.error().message);
      return std::nullopt;
    }
    last_csr_ = made->csr;
    last_csr_key_ = made->key;
    return *made;
  }

  void send_coaps(const Step& step, StepResult& r) {
    std::optional<EstOperation> op;
    if (!step.operation.empty()) op = parse_est_operation(step.operation);
    const std::string label = step.label.empty() ? target_.default_label : substitute(step.label);
    CoapRequest request;
    if (!step.path.empty()) request.path = substitute(step.path);
    else if (auto path = coaps_est_path(label, *op)) request.path = *path;
    else request.path = est_path(label, *op);  // fullcmc has no EST-coaps resource: ask for the HTTPS name (PG-COAP-3)
    const std::string method = !step.method.empty() ? step.method : std::string(op ? http_method(*op) : "GET");
    request.method = method == "POST" ? CoapMethod::post : method == "PUT" ? CoapMethod::put : method == "DELETE" ? CoapMethod::del : CoapMethod::get;
    r.summary = method + " coaps " + request.path + " as " + (connection_as_.empty() ? "anonymous" : connection_as_);
    Observation observation;
    if (!coaps_ && connect_failure_.empty()) {
      auto connected = CoapsConnection::connect(coaps_options(step));
      if (connected.ok()) coaps_ = std::move(connected).value();
      else connect_failure_ = connected.error().message;
    }
    std::optional<Csr> csr;
    if (auto made = make_csr(step, r)) {
      csr = made->csr;
      request.payload = csr->der();
    } else if (r.verdict == Verdict::error) {
      return;
    } else if (step.body) {
      const std::string body = substitute(*step.body);
      request.payload.assign(body.begin(), body.end());
    } else if (step.resend && last_coap_payload_) {
      request.payload = *last_coap_payload_;
      csr = last_csr_;
    }
    last_coap_payload_ = request.payload;
    if (!request.payload.empty() && op) request.content_format = coaps_request_format(*op);
    if (!step.content_type.empty())
      if (auto type = MediaType::parse(step.content_type); type.ok()) request.content_format = format_of_media_type(*type);
    Exchange exchange;
    exchange.transport = "coaps DTLS 1.2" + std::string(connection_as_.empty() ? "" : " as " + connection_as_);
    exchange.request = method + " coaps://" + target_.host + ":" + std::to_string(target_.coaps_port) + request.path +
                       (request.content_format ? "\nContent-Format: " + std::to_string(*request.content_format) : "") + "\n\n" +
                       (request.payload.empty() ? "" : base64_encode(request.payload, LineBreaks::every64_lf));
    if (csr) exchange.decoded = "request CSR:\n" + csr->to_text() + "\n";
    observation.csr = csr;
    observation.last_csr = last_csr_;
    if (!coaps_) {
      observation.kind = Observation::Kind::refused_at_handshake;
      observation.failure = connect_failure_;
    } else {
      const auto started = std::chrono::steady_clock::now();
      auto response = coaps_->send(request);
      exchange.elapsed_ms = ms_since(started);
      if (!response.ok()) {
        observation.kind = Observation::Kind::no_response;
        observation.failure = response.error().message;
        if (response.error().code == ErrorCode::timeout) timed_out_ = "step timed out waiting for an answer (" + response.error().message + ")";
        coaps_.reset();
      } else {
        observation.response = as_http(*response);
        exchange.response = response->code.to_string() + (response->content_format ? " Content-Format: " + std::to_string(*response->content_format) : "") +
                            (response->max_age ? " Max-Age: " + std::to_string(*response->max_age) : "") + "\n\n" + observation.response.body;
        const auto decoded = describe_est_body(observation.response.header("Content-Type").value_or(""), observation.response.body);
        if (!decoded.empty()) exchange.decoded += "response:\n" + clip(decoded);
      }
    }
    r.exchange = exchange;
    judge_and_capture(step, observation, r);
  }

  // A request on the current connection; a connection the server closed after its last answer
  // (a 401 without "Connection: close", say) is replaced by a new one, as any HTTP client does
  // with a stale persistent connection.
  Observation exchange_https(const HttpRequest& request, const Step& step, Exchange& exchange) {
    Observation observation;
    const bool fresh = step.new_connection;
    if (fresh && connection_) {
      connection_->close();
      connection_.reset();
      connect_failure_.clear();
    }
    if (!connect_failure_.empty()) {
      observation.kind = Observation::Kind::refused_at_handshake;
      observation.failure = connect_failure_;
      return observation;
    }
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!connection_ || !connection_->open()) {
        if (connection_) connection_->close();
        auto connected = HttpsConnection::connect(client_options(step));
        if (!connected.ok()) {
          observation.kind = Observation::Kind::refused_at_handshake;
          observation.failure = connected.error().message;
          connection_.reset();
          return observation;
        }
        connection_ = std::move(connected).value();
        requests_on_connection_ = 0;
      }
      const bool reused = requests_on_connection_ > 0;
      const auto started = std::chrono::steady_clock::now();
      auto response = connection_->send(request);
      exchange.elapsed_ms = ms_since(started);
      ++requests_on_connection_;
      if (response.ok()) {
        observation.response = *response;
        if (!response->keep_alive) connection_->close();
        return observation;
      }
      observation.kind = Observation::Kind::no_response;
      observation.failure = response.error().message;
      connection_->close();
      if (response.error().code == ErrorCode::timeout) timed_out_ = "step timed out waiting for an answer (" + response.error().message + ")";
      if (!reused || response.error().code == ErrorCode::timeout) return observation;
      exchange.request = "(the kept-alive connection had been closed by the server; sent again on a new connection)\n" + exchange.request;
    }
    return observation;
  }

  void send(const Step& step, StepResult& r) {
    check_connection_usable();
    if (coaps()) return send_coaps(step, r);
    HttpRequest request;
    std::optional<EstOperation> op;
    if (!step.operation.empty()) op = parse_est_operation(step.operation);
    const std::string label = step.label.empty() ? target_.default_label : substitute(step.label);
    request.target = !step.path.empty() ? substitute(step.path) : est_path(label, *op);
    request.method = !step.method.empty() ? step.method : std::string(op ? http_method(*op) : "GET");
    r.summary = request.method + " " + request.target + " " + describe_connection();

    // A CSR with linking needs the connection first (tls-unique of this connection).
    if (step.csr && (step.new_connection || !connection_ || !connection_->open()) && connect_failure_.empty() && !connection_plain_) {
      if (connection_) connection_->close();
      auto connected = HttpsConnection::connect(client_options(step));
      if (connected.ok()) {
        connection_ = std::move(connected).value();
        requests_on_connection_ = 0;
      } else {
        connect_failure_ = connected.error().message;
        connection_.reset();
      }
    }
    std::optional<Csr> csr;
    if (auto made = make_csr(step, r)) {
      csr = made->csr;
      if (step.full_cmc) {
        if (!made->key) return fail_step(r, Verdict::error, "a Full PKI Request needs the CSR's key (not a CSR file)");
        auto pki = make_full_pki_request(made->csr, *made->key, nullptr);
        if (!pki.ok()) {
          // The suite's own limit (OpenSSL 3.0's CMS cannot sign with EdDSA), nothing about the target.
          if (pki.error().code == ErrorCode::unsupported) throw NotJudged("not judged: building the Full PKI Request: " + pki.error().message);
          return fail_step(r, Verdict::error, "building the Full PKI Request: " + pki.error().message);
        }
        request.body = layout_base64(*pki, step.base64_layout);
      } else {
        request.body = layout_base64(made->csr.der(), step.base64_layout);
      }
    } else if (r.verdict == Verdict::error) {
      return;
    } else if (step.body) {
      request.body = substitute(*step.body);
    } else if (step.resend) {
      if (!last_request_body_) return fail_step(r, Verdict::error, "resend: no earlier send step to repeat");
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

    Exchange exchange;
    exchange.request = clip(request.to_text());
    if (csr) exchange.decoded = "request CSR:\n" + csr->to_text() + "\n";
    Observation observation = exchange_https(request, step, exchange);
    r.summary = request.method + " " + request.target + " " + describe_connection();
    exchange.transport = describe_connection();
    observation.csr = csr;
    observation.last_csr = last_csr_;
    if (observation.kind == Observation::Kind::response) {
      exchange.response = clip(observation.response.to_text());
      const auto decoded = describe_est_body(observation.response.header("Content-Type").value_or(""), observation.response.body);
      if (!decoded.empty()) exchange.decoded += "response:\n" + clip(decoded);
    } else {
      exchange.response = "(no HTTP answer: " + observation.failure + ")";
    }
    r.exchange = exchange;
    judge_and_capture(step, observation, r);
  }

  // The checks of a send step, then its captures; the issued certificate is found for a capture
  // even when no check looked for it. HTTPS and coaps answers (as_http) alike.
  void judge_and_capture(const Step& step, const Observation& observation, StepResult& r) {
    Expectation expectation = step.expect ? resolve(*step.expect) : Expectation{};
    if (!step.expect && observation.kind != Observation::Kind::response) {
      // Nothing was expected, but something must come back for the step to mean anything.
      expectation.level = "must";
    }
    const Judgement judgement = judge(expectation, observation, judge_context());
    apply(judgement, r);
    if (step.capture.empty()) return;
    if (observation.kind != Observation::Kind::response) return;
    capture(step, observation.response, judgement, r);
  }

  void raw(const Step& step, StepResult& r) {
    check_connection_usable();
    if (coaps()) return fail_step(r, Verdict::error, "raw steps are HTTP only; garbage datagrams are tested by tests/e2e/test_coap_proxy.py");
    r.summary = "raw " + std::to_string(step.raw_text.size()) + " bytes " + describe_connection();
    Exchange exchange;
    exchange.request = clip(step.raw_text);
    exchange.transport = describe_connection();
    if (!connection_ || !connection_->open()) {
      auto connected = HttpsConnection::connect(client_options(step));
      if (!connected.ok()) {
        r.exchange = exchange;
        return fail_step(r, Verdict::fail, "could not connect: " + connected.error().message);
      }
      connection_ = std::move(connected).value();
    }
    auto response = connection_->send_raw(step.raw_text);
    Observation observation;
    if (!response.ok()) {
      observation.kind = Observation::Kind::no_response;
      observation.failure = response.error().message;
      exchange.response = "(no HTTP answer: " + observation.failure + ")";
      connection_->close();
    } else {
      observation.response = *response;
      exchange.response = clip(response->to_text());
    }
    r.exchange = exchange;
    // A closed connection is a fine answer to garbage unless the step expects a status.
    Expectation expectation = step.expect ? resolve(*step.expect) : Expectation{};
    if (observation.kind != Observation::Kind::response && expectation.status.empty() && !expectation.status_class) expectation.refused = true;
    apply(judge(expectation, observation, judge_context()), r);
  }

  void control(const Step& step, StepResult& r) {
    ControlArguments arguments;
    for (const auto& [k, v] : step.arguments) arguments[k] = substitute(v);
    // approve/reject act on this scenario's own pending request (the SHA-256 of its last CSR), so
    // parallel scenarios never decide each other's requests.
    if ((step.control == "approve" || step.control == "reject") && !arguments.count("request") && last_csr_) {
      arguments["request"] = sha256_hex(last_csr_->der());
    }
    // A CRL of the CA the target enrolls with, unless the scenario names one.
    if (step.control == "publish-crl" && !arguments.count("ca") && !arguments.count("value")) arguments["ca"] = target_.default_label;
    std::string args_text;
    for (const auto& [k, v] : arguments) args_text += " " + k + "=" + v;
    r.summary = "control " + step.control + args_text;
    if (!target_.control_hook || !target_.controls.count(step.control)) throw NotJudged("not judged: the target has no '" + step.control + "' control");
    auto done = target_.control_hook(step.control, arguments);
    if (!done.ok()) return fail_step(r, Verdict::error, "control " + step.control + " failed: " + done.error().message);
    r.checks.push_back({*done, Verdict::pass, "", ""});
    if (step.control == "restart") {
      if (connection_) connection_->close();
      connection_.reset();
      auto ready = wait_until_ready(target_, step_timeout(step));
      if (!ready.ok()) return fail_step(r, Verdict::error, "after restart: " + ready.error().message);
      r.checks.push_back({"the target answered /cacerts again after " + std::to_string(ready->count()) + " ms", Verdict::pass, "", ""});
    }
  }

  void capture(const Step& step, const HttpResponse& response, const Judgement& judgement, StepResult& r) {
    // After a failed check, a capture that cannot be made is that failure's consequence, not an
    // error of the suite: later steps that need it are not judged (run() names why).
    const bool checks_failed = is_failure(r.verdict);
    for (const auto& [var, what] : step.capture) {
      if (checks_failed && what != "status" && what.rfind("header.", 0) != 0 &&
          (what == "certificates" ? judgement.certificates.empty()
                                  : !judgement.issued || (what == "server_key.identity" && !judgement.server_key) ||
                                        (what == "issued.identity" && !last_csr_key_)))
        continue;
      if (what == "status") {
        vars_[var] = std::to_string(response.status);
      } else if (what.rfind("header.", 0) == 0) {
        vars_[var] = response.header(what.substr(7)).value_or("");
      } else if (what == "certificates") {
        if (judgement.certificates.empty()) {
          fail_step(r, Verdict::error, "capture " + var + ": the response carried no certificates" +
                                           (judgement.extract_problem.empty() ? "" : " (" + judgement.extract_problem + ")"));
          continue;
        }
        bags_[var] = judgement.certificates;
      } else if (!judgement.issued) {
        fail_step(r, response.status / 100 == 2 ? Verdict::error : r.verdict, "capture " + var + ": the response carried no certificate");
        continue;
      } else if (what == "issued.serial") {
        vars_[var] = judgement.issued->serial_hex();
      } else if (what == "issued.subject") {
        vars_[var] = judgement.issued->subject().to_string();
      } else if (what == "issued.identity" || what == "server_key.identity") {
        const std::optional<PrivateKey> key = what == "issued.identity" ? last_csr_key_ : judgement.server_key;
        if (!key) {
          fail_step(r, Verdict::error, "capture " + var + ": no private key for the issued certificate");
          continue;
        }
        TlsIdentity id{*key, *judgement.issued, {}};
        // The chain: intermediates of the answer, else those the target's identities of the same issuer carry.
        for (std::size_t i = 1; i < judgement.certificates.size(); ++i)
          if (!judgement.certificates[i].is_self_signed()) id.chain.push_back(judgement.certificates[i]);
        if (id.chain.empty())
          for (const auto& [role, known] : target_.identities)
            if (known.certificate.issuer() == judgement.issued->issuer()) {
              id.chain = known.chain;
              break;
            }
        if (id.chain.empty())
          for (const auto& [name, bag] : bags_)
            for (const auto& c : bag)
              if (!c.is_self_signed()) id.chain.push_back(c);
        captured_.insert_or_assign(var, id);
        add_identity_vars(var, id);
      }
      r.checks.push_back({"captured " + var + " = " + what, Verdict::pass, "", ""});
    }
  }

  const Scenario& scenario_;
  const Target& target_;
  const RunOptions& options_;
  CsrMaker csr_maker_;
  ScenarioResult result_;
  std::map<std::string, std::string> vars_;
  std::map<std::string, std::string> unavailable_;  // variable -> why it was never captured
  std::map<std::string, TlsIdentity> captured_;
  std::map<std::string, std::vector<Certificate>> bags_;
  std::optional<HttpsConnection> connection_;
  std::optional<CoapsConnection> coaps_;
  std::optional<Bytes> last_coap_payload_;
  std::string connection_as_;
  std::string connection_tls_ = "any";
  bool connection_plain_ = false;
  std::string connect_failure_;     // the last connect step's handshake failure, judged by the next request
  std::string skipped_connection_;  // the last connect step was not judged: neither is what uses it
  int requests_on_connection_ = 0;
  std::string timed_out_;           // set once a step waited out its deadline
  std::optional<Csr> last_csr_;
  std::optional<PrivateKey> last_csr_key_;
  std::optional<std::string> last_request_body_;
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
      auto offers_all = [&](const Target* t) {
        return std::all_of(scenario.needs_features.begin(), scenario.needs_features.end(), [&](const std::string& f) { return t->features.count(f) != 0; }) &&
               std::none_of(scenario.needs_absent_features.begin(), scenario.needs_absent_features.end(),
                            [&](const std::string& f) { return t->features.count(f) != 0; }) &&
               std::all_of(scenario.needs_controls.begin(), scenario.needs_controls.end(), [&](const std::string& c) { return t->controls.count(c) != 0; });
      };
      // The first target of the profile that offers every feature the scenario needs, else the
      // first of the profile (which then skips with the reason).
      const Target* target = nullptr;
      for (const auto* t : targets) {
        if (t->profile != profile) continue;
        if (offers_all(t)) {
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
      for (const auto& credential : scenario.needs_credentials)
        if (!target->credentials.count(credential)) missing.push_back("credentials." + credential);
      std::string skip;
      for (const auto& m : missing) skip += (skip.empty() ? "the target lacks " : ", ") + m;
      for (const auto& feature : scenario.needs_absent_features)
        if (target->features.count(feature)) skip += (skip.empty() ? "" : "; ") + std::string("applies only where '") + feature + "' is not offered";
      bool has_control = false;
      for (const auto& step : scenario.steps) has_control |= step.kind == Step::Kind::control;
      const bool exclusive = has_control && !target->controls_isolated;
      std::vector<std::string> roles_lacking;
      for (const auto& role : scenario.step_roles)
        if (!target->identities.count(role)) roles_lacking.push_back(role);
      for (int rep = 0; rep < std::max(1, options.repeat); ++rep) runs.push_back({&scenario, target, profile, skip, rep, exclusive, roles_lacking});
    }
  }
  return runs;
}

std::function<Level(const std::string& requirement)> levels_from(std::shared_ptr<const Catalog> catalog) {
  return [catalog](const std::string& id) {
    const auto* row = catalog->find(id);
    if (row == nullptr) return Level::must;
    switch (row->verdict_level) {
      case FailLevel::fail: return Level::must;
      case FailLevel::warn: return Level::should;
      case FailLevel::info: return Level::info;
    }
    return Level::must;
  };
}

std::string unique_for(std::uint64_t seed, const std::string& scenario_id, const std::string& profile, int repetition) {
  // splitmix64 over the seed and an FNV-1a hash of what names the run.
  std::uint64_t h = 1469598103934665603ULL;
  for (char c : scenario_id + "|" + profile + "|" + std::to_string(repetition)) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  std::uint64_t z = seed + h + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  char text[17];
  std::snprintf(text, sizeof(text), "%012llx", static_cast<unsigned long long>(z & 0xffffffffffffULL));
  return text;
}

Result<void> preflight(const Target& target, std::chrono::milliseconds timeout) {
  HttpsClientOptions o;
  o.host = target.host;
  o.port = target.port;
  o.server_name = target.server_name;
  o.trust_anchors = target.trust_anchors;
  o.connect_timeout = o.handshake_timeout = o.io_timeout = timeout;
  const std::string where = target.host + ":" + std::to_string(target.port);
  auto connection = HttpsConnection::connect(o);
  if (!connection.ok())
    return make_error(connection.error().code, "pre-flight: connecting to " + where + " (TCP, then a TLS handshake checked against the trust anchors for the name '" +
                                                    (target.server_name.empty() ? target.host : target.server_name) + "'): " + connection.error().message);
  HttpRequest request;
  request.target = est_path(target.default_label, EstOperation::cacerts);
  auto response = connection->send(request);
  connection->close();
  if (!response.ok()) return make_error(response.error().code, "pre-flight: GET " + request.target + " on " + where + ": no answer: " + response.error().message);
  if (response->status != 200)
    return make_error(ErrorCode::invalid_input, "pre-flight: GET " + request.target + " on " + where + " answered " + std::to_string(response->status) +
                                                    " " + response->reason + ", not 200");
  return {};
}

Result<std::chrono::milliseconds> wait_until_ready(const Target& target, std::chrono::milliseconds step_timeout) {
  const auto started = std::chrono::steady_clock::now();
  const auto deadline = started + target.ready_timeout;
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    auto ok = preflight(target, std::min(step_timeout, std::chrono::milliseconds(5000)));
    if (ok.ok()) return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    last = ok.error().message;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return make_error(ErrorCode::timeout, "the target did not answer within " + std::to_string(target.ready_timeout.count()) + " ms: " + last);
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
  std::shared_mutex exclusive_mutex;  // exclusive runs hold it alone; the others share it
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
      else if (run.exclusive) {
        std::unique_lock lock(exclusive_mutex);
        results[i] = run_scenario(*run.scenario, *run.target, run.repetition, options);
      } else {
        std::shared_lock lock(exclusive_mutex);
        results[i] = run_scenario(*run.scenario, *run.target, run.repetition, options);
      }
      if (options.fail_fast && is_failure(results[i].verdict)) stop = true;
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
