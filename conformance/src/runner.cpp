// One scenario run: its steps in order, their variables and captures, the CSRs it builds (through
// the CSR maker), the requests it sends (through the channel to the target), the judge's verdicts
// and how they roll up. Planning and the worker pool are in planner.cpp.
#include "estlab/conformance/runner.hpp"

#include <algorithm>
#include <regex>
#include <thread>

#include "csr_maker.hpp"
#include "estlab/core/base64.hpp"
#include "estlab/core/cmc.hpp"
#include "estlab/core/coaps_client.hpp"
#include "estlab/core/der.hpp"
#include "estlab/core/describe.hpp"
#include "estlab/core/est.hpp"
#include "estlab/core/https_client.hpp"
#include "estlab/core/server_key.hpp"
#include "estlab/core/text.hpp"
#include "transport.hpp"

namespace estlab::conformance {

namespace {

// Evidence text is kept readable: long bodies are cut in the middle.
std::string clip(const std::string& text, std::size_t max = 6000) {
  if (text.size() <= max) return text;
  return text.substr(0, max / 2) + "\n... (" + std::to_string(text.size() - max) + " bytes not shown) ...\n" +
         text.substr(text.size() - max / 2);
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
      : scenario_(scenario), target_(target), options_(options), csr_maker_(target.key_type, scenario.file.parent_path()),
        channel_(target, scenario.transport == "coaps") {
    const std::string unique = unique_for(options.seed, scenario.id, target.profile, repetition);
    vars_["unique"] = unique;
    vars_["profile"] = target.profile;
    vars_["label"] = target.default_label;
    vars_["server_name"] = target.server_name.empty() ? target.host : target.server_name;
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
    result_.transport_group = scenario.transport_group;
    result_.spec = scenario.spec;
    result_.section = scenario.section;
    result_.repetition = repetition;
    result_.unique = unique;
  }

  ScenarioResult run() {
    const auto started = std::chrono::steady_clock::now();
    std::unique_ptr<network::ImpairedRelay> relay;
    if (scenario_.needs_network) {
      const network::Impairment impairment = network_impairment_for(scenario_, options_);
      auto started_relay = network::ImpairedRelay::start(target_.host, target_.coaps_port, impairment);
      if (!started_relay.ok()) {
        result_.verdict = Verdict::error;
        result_.message = "needs.network: " + started_relay.error().message;
        return std::move(result_);
      }
      relay = std::move(started_relay).value();
      channel_.route_coaps_via("127.0.0.1", relay->port());
    }
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
        if (!channel_.timed_out().empty() && step.kind != Step::Kind::note && step.kind != Step::Kind::wait)
          throw NotJudged("not judged: an earlier " + channel_.timed_out());
        const network::RelayStats before = relay ? relay->stats() : network::RelayStats{};
        execute(step, r);
        if (relay) blame_the_network_where_due(*relay, before, r);
      } catch (const NotJudged& e) {
        r.verdict = Verdict::skip;
        r.message = e.what();
      } catch (const std::exception& e) {
        r.verdict = Verdict::error;
        r.message = std::string("internal error: ") + e.what();
      }
      if (r.verdict == Verdict::skip && (step.kind == Step::Kind::connect)) skipped_connection_ = r.message;
      for (const auto& [var, what] : step.capture)
        if (r.verdict == Verdict::skip || (!vars_.count(var) && !captured_.count(var) && !bags_.count(var)))
          unavailable_[var] = "step " + std::to_string(i + 1) + (r.verdict == Verdict::skip ? " was skipped" : " could not capture it");
      r.elapsed_ms = ms_since(step_started);
      result_.steps.push_back(std::move(r));
    }
    channel_.close();
    if (relay) report_network(*relay);
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

  // On an impaired path a device gives up after MAX_RETRANSMIT (RFC 7252 4.2) or its handshake
  // deadline, whatever the server does: at 20% loss each way about one exchange in 170 loses all
  // five transmissions. A step left without an answer while the server did answer, and the relay
  // lost those answers, judges the network, not the server: it is an error (not judged), never a
  // fail. A server that sent nothing at all during the step still fails.
  void blame_the_network_where_due(const network::ImpairedRelay& relay, const network::RelayStats& before, StepResult& r) const {
    if (r.verdict != Verdict::fail || r.observed_status > 0) return;
    const auto after = relay.stats();
    const auto answered = after.to_device - before.to_device;
    const auto lost = after.lost_to_device - before.lost_to_device;
    if (answered == 0 || lost == 0) return;
    r.verdict = Verdict::error;
    for (auto& check : r.checks)
      if (check.verdict == Verdict::fail) check.verdict = Verdict::error;
    r.message = "not judged: the impaired network lost " + std::to_string(lost) + " of the " + std::to_string(answered) +
                " datagrams the server sent during this step, and the device gave up (RFC 7252 4.2, DTLS timers); "
                "another network seed repeats the scenario with other losses (" + r.message + ")";
  }

  // What the impaired path did, as a last step of the evidence with the seed that repeats it. A
  // ClientHello split the scenario asked for that never happened means its steps proved nothing.
  void report_network(network::ImpairedRelay& relay) {
    relay.stop();
    const auto stats = relay.stats();
    StepResult r;
    r.index = scenario_.steps.size();
    r.line = scenario_.line;
    r.kind = "network";
    r.summary = "network: " + relay.impairment().describe() + ": " + stats.describe() + " (needs.network.seed: " +
                std::to_string(relay.impairment().seed) + " repeats it)";
    if (relay.impairment().split_client_hello != network::ClientHelloSplit::none && stats.client_hellos_split == 0) {
      r.verdict = Verdict::error;
      r.message = "needs.network asked for split ClientHellos, but no ClientHello of that kind passed the relay: the steps did not test it";
    }
    result_.steps.push_back(std::move(r));
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
    // One line of base64 DER: what a front end forwards in a client-certificate header (FB-28).
    vars_["role." + name + ".certificate"] = base64_encode(identity.certificate.der());
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
    r.issued_profile.name = substitute(e.issued_profile.name);
    if (r.server_certificate) r.server_certificate->name = substitute(e.server_certificate->name);
    for (const auto* bag : {&r.issued_chains_to, r.server_certificate ? &r.server_certificate->chains_to : nullptr})
      if (bag && !bag->empty() && *bag != "trust-anchors" && !bags_.count(*bag))
        if (auto it = unavailable_.find(*bag); it != unavailable_.end())
          throw NotJudged("not judged: the /cacerts bag '" + *bag + "' is missing because " + it->second);
    if (r.upstream) {
      r.upstream->path = substitute(e.upstream->path);
      r.upstream->client = substitute(e.upstream->client);
    }
    return r;
  }

  CsrTemplate resolve(const CsrTemplate& t) const {
    CsrTemplate r = t;
    r.subject = t.cn_given ? fresh_subject(target_.subject_template, substitute(t.cn)) : substitute(t.subject);
    for (auto& san : r.subject_alt_names) san = substitute(san);
    r.unstructured_name = substitute(t.unstructured_name);
    r.unstructured_address = substitute(t.unstructured_address);
    if (!is_channel_value(t.challenge_password)) r.challenge_password = substitute(t.challenge_password);
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
    c.trust_anchors = target_.trust_anchors;
    c.now = target_.now ? target_.now() : std::chrono::system_clock::now();
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
    r.summary = coaps() ? "connect DTLS " + step.dtls + (step.ciphers.empty() ? "" : " ciphers " + step.ciphers) +
                              (step.groups.empty() ? "" : " groups " + step.groups) + (as.empty() ? " anonymously" : " as " + as) +
                              (step.rejoin ? ", back from the port of the connection just lost (no close_notify)" : "")
                        : "connect " + (step.plain_http ? std::string("over plain HTTP") : "TLS " + step.tls) + (as.empty() ? " anonymously" : " as " + as);
    if (!step.rejoin) channel_.close();  // rejoin: open() loses that connection without close_notify
    if (!as.empty() && !identity(as)) {
      if (auto why = missing_reason("role." + as + ".subject"); !why.empty()) throw NotJudged(why);
      throw NotJudged("not judged: no identity '" + as + "' (neither a target role nor captured earlier)");
    }
    ChannelSettings settings;
    settings.as = as;
    if (!as.empty()) settings.identity = *identity(as);
    settings.tls = step.tls;
    settings.plain_http = step.plain_http;
    settings.ciphers = step.ciphers;
    settings.ciphersuites = step.ciphersuites;
    settings.resume = step.resume;
    settings.dtls = step.dtls;
    settings.groups = step.groups;
    settings.rejoin = step.rejoin;
    // The judge validates the server certificate itself (and says why it fails); OpenSSL stopping
    // the handshake would leave nothing to judge.
    settings.verify_server = !(step.expect && step.expect->server_certificate);
    const std::string failure = channel_.open(settings, step_timeout(step));
    const bool failed = !failure.empty();
    // This client could not make the offer (a suite the local OpenSSL lacks, nothing to resume):
    // nothing about the target was learnt.
    if (failed && channel_.connect_failed_locally()) {
      skipped_connection_ = "not judged: " + failure;
      throw NotJudged(skipped_connection_);
    }
    if (step.expect && (step.expect->connection_fails || step.expect->extended_master_secret)) {
      // Judged here, at the expectation's level like any check (and through apply, so --strict holds).
      const Level level = level_of(*step.expect, judge_context());
      const std::string requirement = requirement_of(*step.expect, judge_context());
      Judgement handshake;
      auto check = [&](bool ok, const std::string& what) {
        handshake.checks.push_back({what, ok ? Verdict::pass : verdict_when_failed(level), requirement, to_string(level)});
      };
      if (step.expect->connection_fails) {
        if (*step.expect->connection_fails)
          check(failed, failed ? "the handshake fails: " + failure : "the handshake was expected to fail but succeeded (" + channel_.describe() + ")");
        else check(!failed, failed ? "the handshake was expected to complete but failed: " + failure : "the handshake completes (" + channel_.describe() + ")");
      }
      if (step.expect->extended_master_secret) {
        const bool want = *step.expect->extended_master_secret;
        const auto ems = channel_.extended_master_secret();
        if (failed) check(false, "no handshake to judge the extended master secret on: " + failure);
        else if (!ems) handshake.checks.push_back({"the extended master secret cannot be read on this connection", Verdict::error, requirement, to_string(level)});
        else check(*ems == want, std::string("the extended master secret (RFC 7627) was ") + (*ems ? "" : "not ") + "negotiated" +
                                     (*ems == want ? "" : want ? ", expected it" : ", expected not"));
      }
      return apply(handshake, r);
    }
    if (failed) {
      // Recorded, not judged here: a refusal at the handshake may be exactly what the next request
      // expects (a revoked or untrusted client, 7030-3.3.2-b), so that request judges it.
      r.checks.push_back({"the handshake failed (" + failure + "); the next request judges whether a refusal was expected", Verdict::info,
                          "", "info"});
      return;
    }
    r.checks.push_back({"connected (" + channel_.describe() + ")", Verdict::pass, "", ""});
    if (step.expect && channel_.tls_info()) apply(judge_connection(resolve(*step.expect), *channel_.tls_info(), judge_context()), r);
    else if (step.expect && (step.expect->server_certificate || step.expect->resumed || step.expect->secure_renegotiation || step.expect->renegotiation_requested))
      fail_step(r, Verdict::error, "the connection has no TLS to check");
  }

  void check_connection_usable() const {
    if (!skipped_connection_.empty()) throw NotJudged(skipped_connection_);
  }

  // Builds the step's CSR (if any) on the current connection's TLS facts.
  std::optional<MadeCsr> make_csr(const Step& step, StepResult& r) {
    if (!step.csr) return std::nullopt;
    const TlsConnectionInfo* tls = channel_.tls_for_request(step.new_connection, step_timeout(step));
    CsrTemplate t = resolve(*step.csr);
    if (t.encrypted_key == "asymmetric") {
      // RFC 7030 4.4.1.2: the key to encrypt to is this connection's certificate's.
      const auto& identity = channel_.identity();
      if (!identity) {
        fail_step(r, Verdict::error, "csr.encrypted_key: asymmetric needs a connection with a client certificate (connect: {as: ROLE})");
        return std::nullopt;
      }
      t.attributes.emplace_back(std::string(oid::smime_capabilities), to_hex(encode_smime_capabilities(default_smime_capabilities())));
      t.attributes.emplace_back(std::string(oid::asymmetric_decrypt_key_identifier),
                                to_hex(der::encode_octet_string(key_identifier(identity->certificate))));
    }
    auto made = csr_maker_.make(t, tls);
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
    if (!step.path.empty()) {
      // "/.well-known/core?rt=ace.est*": the query goes in Uri-Query options.
      request.path = substitute(step.path);
      if (auto question = request.path.find('?'); question != std::string::npos) {
        request.query = request.path.substr(question + 1);
        request.path.resize(question);
      }
    } else if (auto path = coaps_est_path(label, *op)) request.path = *path;
    else request.path = est_path(label, *op);  // fullcmc has no EST-coaps resource: ask for the HTTPS name (PG-COAP-3)
    const std::string method = !step.method.empty() ? step.method : std::string(op ? http_method(*op) : "GET");
    request.method = method == "POST" ? CoapMethod::post : method == "PUT" ? CoapMethod::put : method == "DELETE" ? CoapMethod::del : CoapMethod::get;
    r.summary = method + " coaps " + request.path + (request.query.empty() ? "" : "?" + request.query) + " " + channel_.describe();
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
    if (step.content_format) request.content_format = static_cast<std::uint16_t>(*step.content_format);
    if (step.accept) request.accept = static_cast<std::uint16_t>(*step.accept);
    if (step.uri_host) request.uri_host = substitute(*step.uri_host);
    if (step.size2) request.size2 = static_cast<std::uint32_t>(*step.size2);
    if (step.block_size) {
      unsigned szx = 0;
      while ((16 << szx) < *step.block_size) ++szx;
      request.block_szx = szx;
    }
    if (step.block1) {
      // Block `num` of the body cut at the block size (SZX 7 is reserved: cut as 1024), sent alone.
      const std::size_t size = std::size_t{16} << std::min(step.block1->szx, 6);
      const std::size_t begin = std::min(request.payload.size(), static_cast<std::size_t>(step.block1->num) * size);
      request.payload = Bytes(request.payload.begin() + static_cast<std::ptrdiff_t>(begin),
                              request.payload.begin() + static_cast<std::ptrdiff_t>(std::min(request.payload.size(), begin + size)));
      request.block1_fragment = CoapRequest::Block1Fragment{static_cast<std::uint32_t>(step.block1->num), step.block1->more,
                                                            static_cast<unsigned>(step.block1->szx), std::nullopt};
    }
    Exchange exchange;
    exchange.transport = channel_.describe();
    exchange.request = method + " coaps://" + target_.host + ":" + std::to_string(target_.coaps_port) + request.path +
                       (request.query.empty() ? "" : "?" + request.query) +
                       (request.content_format ? "\nContent-Format: " + std::to_string(*request.content_format) : "") +
                       (request.accept ? "\nAccept: " + std::to_string(*request.accept) : "") +
                       (request.uri_host ? "\nUri-Host: " + *request.uri_host : "") +
                       (request.size2 ? "\nSize2: " + std::to_string(*request.size2) : "") +
                       (step.block_size ? "\nBlock1/Block2 size: " + std::to_string(*step.block_size) : "") +
                       (step.block1 ? "\nBlock1: num " + std::to_string(step.block1->num) + (step.block1->more ? " M" : "") + " SZX " +
                                          std::to_string(step.block1->szx)
                                    : "") +
                       "\n\n" + (request.payload.empty() ? "" : base64_encode(request.payload, LineBreaks::every64_lf));
    if (csr) exchange.decoded = "request CSR:\n" + csr->to_text() + "\n";
    Observation observation = channel_.send(request, step_timeout(step), exchange);
    r.summary = method + " coaps " + request.path + (request.query.empty() ? "" : "?" + request.query) + " " + channel_.describe();
    exchange.transport = channel_.describe();
    observation.csr = csr;
    observation.last_csr = last_csr_;
    observation.client_identity = channel_.identity();
    if (step.expect && step.expect->upstream) {
      // The proxy forwards (or not) before it answers, so the record is there once the answer is.
      if (target_.coaps_upstream) observation.upstream = target_.coaps_upstream(request.payload);
      else observation.upstream_unavailable = "the target does not show what its EST-coaps proxy forwarded (only the embedded lab does)";
    }
    if (observation.kind == Observation::Kind::response) {
      const auto decoded = describe_est_body(observation.response.header("Content-Type").value_or(""), observation.response.body);
      if (!decoded.empty()) exchange.decoded += "response:\n" + clip(decoded);
    } else {
      exchange.response = "(no CoAP answer: " + observation.failure + ")";
    }
    r.exchange = exchange;
    judge_and_capture(step, observation, r);
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
    r.summary = request.method + " " + request.target + " " + channel_.describe();

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
    exchange.request = clip(request.to_text(options_.show_secrets));
    if (csr) exchange.decoded = "request CSR:\n" + csr->to_text() + "\n";
    // A CSR step has opened its (fresh) connection already, for its linking value.
    Observation observation = channel_.send(request, step.new_connection && !step.csr, step_timeout(step), exchange);
    r.summary = request.method + " " + request.target + " " + channel_.describe();
    exchange.transport = channel_.describe();
    observation.csr = csr;
    observation.last_csr = last_csr_;
    observation.client_identity = channel_.identity();
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

  // A scenario over both transports states HTTP statuses; over coaps they are read as RFC 9148
  // 4.5 maps them: 200 is 2.05 for GET and 2.04 for POST, 202 (pending) is 5.03, 204 is 4.04. The
  // 4.xx and 5.xx codes EST uses have the same numbers as their HTTP statuses.
  void read_over_coaps(const Step& step, Expectation& e) const {
    std::string method = step.method;
    if (method.empty() && !step.operation.empty())
      if (auto op = parse_est_operation(step.operation)) method = http_method(*op);
    auto coap = [&](int status) {
      if (status == 200 || status == 201) return method == "GET" ? 205 : 204;
      if (status == 202) return 503;
      if (status == 204) return 404;
      return status;
    };
    for (auto& status : e.status) status = coap(status);
    for (auto& status : e.tolerated_status) status = coap(status);
  }

  // The checks of a send step, then its captures; the issued certificate is found for a capture
  // even when no check looked for it. HTTPS and coaps answers (as_http) alike.
  void judge_and_capture(const Step& step, const Observation& observation, StepResult& r) {
    Expectation expectation = step.expect ? resolve(*step.expect) : Expectation{};
    if (coaps() && !scenario_.transport_group.empty()) read_over_coaps(step, expectation);
    r.observed_status = observation.kind == Observation::Kind::response ? observation.response.status
                        : observation.kind == Observation::Kind::refused_at_handshake ? -1
                                                                                        : 0;
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
    r.summary = "raw " + std::to_string(step.raw_text.size()) + " bytes " + channel_.describe();
    Exchange exchange;
    exchange.request = clip(step.raw_text);
    Observation observation = channel_.send_raw(step.raw_text, step_timeout(step), exchange);
    exchange.transport = channel_.describe();
    exchange.response = observation.kind == Observation::Kind::response ? clip(observation.response.to_text())
                                                                          : "(no HTTP answer: " + observation.failure + ")";
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
    // A rejection always carries a reason (a hook's {reason}; the device is told it).
    if (step.control == "reject" && !arguments.count("reason"))
      arguments["reason"] = arguments.count("value") ? arguments["value"] : "rejected by the estlab conformance suite";
    // A CRL of the CA the target enrolls with, unless the scenario names one.
    if (step.control == "publish-crl" && !arguments.count("ca") && !arguments.count("value")) arguments["ca"] = target_.default_label;
    // advance-time past an identity: to a minute after its certificate's notAfter, so "expired"
    // follows from the certificate the target issued, not from a lifetime the scenario assumes.
    if (step.control == "advance-time" && arguments.count("past")) {
      const TlsIdentity* identity = this->identity(arguments["past"]);
      if (!identity) throw NotJudged("not judged: advance-time past '" + arguments["past"] + "': no such identity (captured or role)");
      const TimePoint now = target_.now ? target_.now() : std::chrono::system_clock::now();
      const auto by = std::chrono::duration_cast<std::chrono::seconds>(identity->certificate.not_after() - now) + std::chrono::seconds(60);
      arguments.erase("past");
      arguments["by"] = std::to_string(std::max<long long>(by.count(), 1)) + "s";
    }
    std::string args_text;
    for (const auto& [k, v] : arguments) args_text += " " + k + "=" + v;
    r.summary = "control " + step.control + args_text;
    if (!target_.control_hook || !target_.controls.count(step.control)) throw NotJudged("not judged: the target has no '" + step.control + "' control");
    auto done = target_.control_hook(step.control, arguments);
    if (step.expect && (step.expect->control_fails || !step.expect->message_contains.empty())) {
      // The action's outcome is what is judged (a proxy that must refuse to start, PG-COAP-6).
      const Level level = level_of(*step.expect, judge_context());
      const std::string said = done.ok() ? *done : done.error().message;
      Judgement outcome;
      if (step.expect->control_fails) {
        const bool as_expected = done.ok() != *step.expect->control_fails;
        outcome.checks.push_back({std::string(*step.expect->control_fails ? "refused" : "done") + " as expected? " +
                                      (done.ok() ? "done: " : "refused: ") + said,
                                  as_expected ? Verdict::pass : verdict_when_failed(level), step.expect->requirement, to_string(level)});
      }
      if (!step.expect->message_contains.empty()) {
        const bool says = icontains(said, step.expect->message_contains);
        outcome.checks.push_back({"the target's message " + std::string(says ? "names" : "does not name") + " '" + step.expect->message_contains + "'",
                                  says ? Verdict::pass : verdict_when_failed(level), step.expect->requirement, to_string(level)});
      }
      return apply(outcome, r);
    }
    if (!done.ok() && (step.control == "approve" || step.control == "reject") && done.error().code == ErrorCode::not_found) {
      // Nothing pending after a step already failed (the target issued at once, or answered
      // otherwise): the decision has nothing to act on, a consequence of that failure.
      for (const auto& earlier : result_.steps)
        if (is_failure(earlier.verdict) || earlier.verdict == Verdict::warn)
          throw NotJudged("not judged: nothing was pending to " + step.control + " after step " + std::to_string(earlier.index + 1) +
                          " failed (" + done.error().message + ")");
    }
    if (!done.ok()) return fail_step(r, Verdict::error, "control " + step.control + " failed: " + done.error().message);
    r.checks.push_back({*done, Verdict::pass, "", ""});
    if (step.control == "restart") {
      channel_.close();
      auto ready = wait_until_ready(target_, step_timeout(step));
      if (!ready.ok()) return fail_step(r, Verdict::error, "after restart: " + ready.error().message);
      r.checks.push_back({"the target answered /cacerts again after " + std::to_string(ready->count()) + " ms", Verdict::pass, "", ""});
    }
  }

  void capture(const Step& step, const HttpResponse& response, const Judgement& judgement, StepResult& r) {
    // After a failed check (also one the row only warns about), a capture that cannot be made is
    // that failure's consequence, not an error of the suite: later steps that need it are not
    // judged (run() names why).
    const bool checks_failed = is_failure(r.verdict) || r.verdict == Verdict::warn || r.verdict == Verdict::info;
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
  TargetChannel channel_;
  std::optional<Bytes> last_coap_payload_;
  std::string skipped_connection_;  // the last connect step was not judged: neither is what uses it
  std::optional<Csr> last_csr_;
  std::optional<PrivateKey> last_csr_key_;
  std::optional<std::string> last_request_body_;
};

}  // namespace

ScenarioResult run_scenario(const Scenario& scenario, const Target& target, int repetition, const RunOptions& options) {
  return ScenarioRun(scenario, target, repetition, options).run();
}

}  // namespace estlab::conformance
