#include "estlab/conformance/lab.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>

#include "csr_maker.hpp"
#include "estlab/ca/ca.hpp"
#include "estlab/coap_proxy/proxy.hpp"
#include "estlab/core/base64.hpp"
#include "estlab/core/est.hpp"
#include "estlab/fixtures/fixture_set.hpp"
#include "estlab/gateway/approval.hpp"
#include "estlab/gateway/server.hpp"

namespace estlab::conformance {

struct EmbeddedLab::Impl {
  struct Instance {
    std::string name;
    gateway::GatewayConfig config;
    std::shared_ptr<gateway::EstService> service;
    std::unique_ptr<gateway::GatewayServer> server;
    std::shared_ptr<gateway::OperatorQueue> queue;
    Target target;
    std::mutex restart_mutex;
    std::string configuration_key;  // profile and est.properties values of a configured gateway; "" = a standing one
  };

  // What an instance of the lab's gateway is: a profile, and for the four standing ones a role.
  struct Variant {
    std::string name;
    gateway::Profile profile;
    bool manual = false;
    bool restartable = false;
    std::map<std::string, std::string> config;  // est.properties values over the lab's file
  };

  LabOptions options;
  // The lab's virtual time: the CA issues, signs CRLs and judges client certificates by it.
  std::shared_ptr<OffsetClock> clock = std::make_shared<OffsetClock>();
  std::shared_ptr<ca::SimulatedCa> ca;
  std::map<std::string, TlsIdentity> identities;
  std::vector<Certificate> anchors;
  mutable std::mutex instances_mutex;  // configured gateways are added while scenarios run
  std::vector<std::unique_ptr<Instance>> instances;
  // The product's CoAP proxy in front of the protocol-gateway instance, and one in front of the
  // manual-approval instance (5.03 + Max-Age while an operator decides, 9148-4.7-b).
  std::vector<std::unique_ptr<coap_proxy::CoapProxy>> coap_proxies;
  mutable std::mutex log_mutex;
  std::vector<std::string> log_lines;
  mutable std::mutex upstream_mutex;
  std::vector<UpstreamRecord> upstream_records;  // what the CoAP proxy forwarded to the gateway

  void record_upstream(const HttpRequest& sent, const Result<HttpResponse>& answer, const coap_proxy::UpstreamConnection& connection) {
    UpstreamRecord record;
    record.scheme = connection.scheme;
    record.tls_version = connection.tls_version;
    if (connection.client_certificate) {
      record.tls_client = connection.client_certificate->subject().to_string();
      record.tls_client_ekus = connection.client_certificate->extended_key_usages();
    }
    record.method = sent.method;
    record.path = sent.target;
    record.content_type = sent.header("Content-Type").value_or("");
    if (!sent.body.empty()) {
      auto body = decode_est_body(sent.body, sent.header("Content-Transfer-Encoding"));
      if (body.ok()) record.body = std::move(body).value();
    }
    // The device's chain as the gateway reads it (PG-COAP-2): base64 DER certificates, leaf first.
    if (auto chain = sent.header(kForwardedClientCertHeader)) {
      auto leaf = base64_decode(chain->substr(0, chain->find(',')));
      if (leaf.ok())
        if (auto certificate = Certificate::from_der(*leaf); certificate.ok()) record.client = certificate->subject().to_string();
    }
    if (answer.ok()) record.status = answer->status;
    std::lock_guard lock(upstream_mutex);
    if (upstream_records.size() < 100000) upstream_records.push_back(std::move(record));
  }

  std::vector<UpstreamRecord> upstream_for(ByteView body) const {
    std::vector<UpstreamRecord> out;
    std::lock_guard lock(upstream_mutex);
    for (const auto& record : upstream_records)
      if (!body.empty() && record.body.size() == body.size() && std::equal(record.body.begin(), record.body.end(), body.begin()))
        out.push_back(record);
    return out;
  }

  gateway::LogSink sink() {
    return [this](const std::string& line) {
      std::lock_guard lock(log_mutex);
      if (log_lines.size() < 100000) log_lines.push_back(line);
    };
  }

  void start_server(Instance& instance) {
    instance.service = std::make_shared<gateway::EstService>(instance.config, ca, instance.queue);
    auto server = gateway::GatewayServer::start(instance.service, options.io_threads, sink());
    if (!server.ok()) throw ConfigError("starting the " + instance.name + " gateway: " + server.error().message);
    instance.server = std::move(server).value();
    instance.config.port = instance.server->port();  // a restart binds the same port again
  }

  // The lab's est.properties with the variant's values over it.
  gateway::GatewayConfig configuration(const Variant& v) const {
    const auto file = options.dir / "config" / "est.properties";
    if (v.config.empty()) return gateway::GatewayConfig::load(file, v.profile);
    auto properties = Properties::load_file(file);
    if (!properties.ok()) throw ConfigError(properties.error().message);
    for (const auto& [key, value] : v.config) properties->set(key, value);
    return gateway::GatewayConfig::from_properties(*properties, file.parent_path(), v.profile);
  }

  std::unique_ptr<Instance> make_instance(const Variant& v) {
    auto instance = std::make_unique<Impl::Instance>();
    instance->name = v.name;
    instance->config = configuration(v);
    instance->config.port = 0;
    instance->config.faults = options.faults;
    if (options.transcripts) {
      std::string directory = v.name;
      std::replace_if(directory.begin(), directory.end(), [](char c) { return c == ' ' || c == '/' || c == '='; }, '_');
      instance->config.transcript_dir = options.dir / "transcripts" / directory;
    }
    // A configured gateway asked for estlab.approval=manual (the fleet's approval devices) gets the
    // standing manual-approval gateway's operator queue and controls.
    const bool manual = v.manual || instance->config.approval == gateway::ApprovalMode::manual;
    if (manual) {
      instance->config.approval = gateway::ApprovalMode::manual;
      instance->queue = std::make_shared<gateway::OperatorQueue>(clock);
    }
    start_server(*instance);

    Target& t = instance->target;
    t.name = "embedded " + v.name;
    t.profile = gateway::to_string(v.profile);
    t.host = "127.0.0.1";
    t.port = instance->server->port();
    t.server_name = "localhost";
    t.trust_anchors = anchors;
    t.identities = identities;
    t.key_type = options.key_type;
    t.features = {"tls1.2", "tls1.3", "fullcmc", "csrattrs", "basic-auth", "labels", "rollover"};
    if (instance->config.serverkeygen_enabled) t.features.insert("serverkeygen");
    // The key package is signed with the gateway's identity; OpenSSL 3.0's CMS cannot sign with Ed25519.
    if (instance->config.serverkeygen_enabled && options.key_type != KeyType::ed25519) t.features.insert("serverkeygen-encrypted");
    if (manual) t.features.insert("manual-approval");
    t.controls = {"revoke", "publish-crl", "advance-time", "reset-time", "rollover-ca"};
    if (v.profile == gateway::Profile::protocol_gateway) t.controls.insert("start-coap-proxy");
    // One clock for the whole lab: a scenario that moves it runs alone (the runner brings it back
    // afterwards). A restart stops the gateway under every scenario on it (repetitions too).
    t.exclusive_controls = {"advance-time", "restart", "rollover-ca"};
    if (manual) {
      // The operator's policy and the IDM's reachability hold for every request on this gateway.
      t.exclusive_controls.insert({"operator", "idm-down", "idm-up"});
      t.undo_controls = {{"operator", "idm-reset"}, {"idm-down", "idm-reset"}, {"idm-up", "idm-reset"}};
    }
    t.now = [clock = clock] { return clock->now(); };
    t.controls_isolated = true;  // restarts and approvals have gateways of their own; revocations touch fresh subjects
    t.ca_labels = {{"other", "twin-a"}, {"rollover", "rollover"}};
    for (const auto& device : instance->config.preregistered) {
      if (device.password.empty()) continue;
      // The subject the preregistered device requests: its factory certificate's, where one carries its CN.
      std::string subject = fresh_subject(t.subject_template, device.common_name);
      for (const auto& [role, identity] : identities)
        if (identity.certificate.subject().common_name() == device.common_name) subject = identity.certificate.subject().to_string();
      t.credentials.emplace("preregistered", Target::Credential{device.user, device.password, subject});
      break;
    }
    if (v.restartable) t.controls.insert("restart");
    if (manual) {
      for (const char* control : {"approve", "reject", "operator", "idm-down", "idm-up"}) t.controls.insert(control);
    }
    Impl* raw_impl = this;
    Impl::Instance* raw_instance = instance.get();
    t.control_hook = [raw_impl, raw_instance](const std::string& name, const ControlArguments& args) {
      return raw_impl->control(*raw_instance, name, args);
    };
    t.configured = [raw_impl, profile = t.profile](const std::map<std::string, std::string>& config) {
      return raw_impl->configured(profile, config);
    };
    if (v.profile == gateway::Profile::protocol_gateway) {
      t.readings.emplace_back("PG-ENR-4 allowRenewalWithOldCertificates",
                              std::string(instance->config.allow_renewal_with_old_certificates ? "true" : "false") + " read as " +
                                  (instance->config.renewal_rule_polarity == gateway::RenewalRulePolarity::documented
                                       ? "documented (true = the rule is on)"
                                       : "inverted (true = the rule is off)"));
      t.readings.emplace_back("PG-ENR-3 revocation", instance->config.revocation == gateway::RevocationSource::published_crl
                                                         ? "seen once on a published CRL"
                                                         : "seen at once (before any CRL is published)");
      t.readings.emplace_back("PG-EP-2 csrattrs/serverkeygen", "RFC 7030 semantics (the product table swaps the two descriptions)");
    } else {
      t.readings.emplace_back("9266-2-a identity linking over TLS 1.3",
                              instance->config.tls13_linking == gateway::Tls13Linking::exporter ? "tls-exporter (RFC 9266)" : "refused");
    }
    return instance;
  }

  // A second proxy in front of the protocol-gateway instance whose requests wait on their worker
  // before going upstream, as behind a slow EST server: a target of its own with the feature
  // coaps-slow-upstream, for what a device sees then (9148-4.7-a: empty ACK, separate response).
  std::vector<std::unique_ptr<Target>> slow_targets;
  static constexpr std::chrono::milliseconds kSlowUpstream{1600};  // well beyond the proxy's 1 s empty-ACK delay, also on a loaded machine

  void add_slow_upstream_target(const Instance& product) {
    auto coap_config = coap_proxy::CoapProxyConfig::load(options.dir / "config" / "coap.properties");
    coap_config.port = 0;
    coap_config.faults = options.proxy_faults;
    coap_config.upstream_delay = kSlowUpstream;
    coap_config.est_url = "https://127.0.0.1:" + std::to_string(product.target.port) + "/.well-known/est";
    coap_config.est_server_name = "localhost";
    auto proxy = coap_proxy::CoapProxy::start(coap_config, sink());
    if (!proxy.ok()) throw ConfigError("starting the lab's slow-upstream CoAP proxy: " + proxy.error().message);
    auto target = std::make_unique<Target>(product.target);
    target->name += " (CoAP proxy with a slow upstream)";
    target->coaps_port = (*proxy)->port();
    target->features.insert("coaps-slow-upstream");
    target->features.erase("coaps-upstream");  // its forwarding is not recorded
    target->coaps_upstream = nullptr;
    target->readings.clear();  // the product target reports them
    coap_proxies.push_back(std::move(proxy).value());
    slow_targets.push_back(std::move(target));
  }

  // The product's CoAP proxy in front of a protocol-gateway instance: coaps scenarios run there, and
  // what it forwards is recorded for expect.upstream.
  void add_coap_proxy(Instance& product) {
    auto coap_config = coap_proxy::CoapProxyConfig::load(options.dir / "config" / "coap.properties");
    coap_config.port = 0;
    coap_config.faults = options.proxy_faults;
    coap_config.est_url = "https://127.0.0.1:" + std::to_string(product.target.port) + "/.well-known/est";
    coap_config.est_server_name = "localhost";
    auto proxy = coap_proxy::CoapProxy::start(
        coap_config, sink(), {},
        [this](const HttpRequest& sent, const Result<HttpResponse>& answer, const coap_proxy::UpstreamConnection& connection) {
          record_upstream(sent, answer, connection);
        });
    if (!proxy.ok()) throw ConfigError("starting the lab's CoAP proxy for " + product.name + ": " + proxy.error().message);
    product.target.coaps_port = (*proxy)->port();
    coap_proxies.push_back(std::move(proxy).value());
    product.target.features.insert("coaps");
    product.target.features.insert("coaps-upstream");
    product.target.coaps_upstream = [this](ByteView body) { return upstream_for(body); };
    product.target.readings.emplace_back("PG-COAP-5 two CA certificates with one subject",
                                         std::string("the proxy ") + coap_proxy::to_string(coap_config.duplicate_ca_subjects) +
                                             " (see the proxy's log for the CA ignored)");
  }

  // A gateway of the profile with `config` over the lab's est.properties, started on first use
  // and shared by every scenario that asks for the same values.
  const Target* configured(const std::string& profile, const std::map<std::string, std::string>& config) {
    std::string key = profile;
    for (const auto& [k, v] : config) key += " " + k + "=" + v;
    std::lock_guard lock(instances_mutex);
    for (const auto& instance : instances)
      if (instance->configuration_key == key) return &instance->target;
    auto parsed = gateway::parse_profile(profile);
    if (!parsed) throw ConfigError("unknown profile '" + profile + "'");
    Variant v{profile, *parsed, false, false, config};
    for (const auto& [k, value] : config) v.name += " " + k + "=" + value;
    auto instance = make_instance(v);
    instance->configuration_key = key;
    if (*parsed == gateway::Profile::protocol_gateway) add_coap_proxy(*instance);
    instances.push_back(std::move(instance));
    return &instances.back()->target;
  }

  // Starts a second CoAP proxy with these coap.properties values over the lab's file and stops it
  // again: its startup checks (PG-COAP-5 duplicate CA subjects, PG-COAP-6 serverAuth) are what a
  // scenario judges. The message carries the proxy's own PG-COAP notes (which CA it ignored).
  Result<std::string> start_proxy_once(const ControlArguments& args) {
    const auto base = options.dir / "config" / "coap.properties";
    auto properties = Properties::load_file(base);
    if (!properties.ok()) return properties.error();
    for (const auto& [key, value] : args) {
      if (key.empty() || key.find_first_of("=:\n") != std::string::npos || value.find('\n') != std::string::npos)
        return make_error(ErrorCode::invalid_input, "start-coap-proxy: bad setting '" + key + "'");
      properties->set(key, value);
    }
    std::vector<std::string> notes;
    std::mutex notes_mutex;
    try {
      // The scenario's values over the lab's file, in memory: relative paths still resolve
      // against the lab's config directory.
      auto config = coap_proxy::CoapProxyConfig::from_properties(*properties, base);
      config.port = 0;
      config.faults = options.proxy_faults;
      {
        std::lock_guard lock(instances_mutex);  // another scenario may be adding a configured gateway
        for (const auto& instance : instances)
          if (instance->name == "protocol-gateway")
            config.est_url = "https://127.0.0.1:" + std::to_string(instance->target.port) + "/.well-known/est";
      }
      config.est_server_name = "localhost";
      auto proxy = coap_proxy::CoapProxy::start(config, [&](const std::string& line) {
        std::lock_guard lock(notes_mutex);
        if (line.find("PG-COAP") != std::string::npos) notes.push_back(line);
      });
      if (!proxy.ok()) return proxy.error();
      (*proxy)->stop();
    } catch (const ConfigError& e) {
      return make_error(ErrorCode::invalid_input, e.what());
    }
    std::lock_guard lock(notes_mutex);
    std::string said = "the proxy started";
    for (const auto& note : notes) said += "; " + note;
    return said;
  }

  Result<std::string> control(Instance& instance, const std::string& name, const ControlArguments& args) {
    auto arg = [&](const std::string& key, const std::string& fallback) {
      auto it = args.find(key);
      return it == args.end() ? fallback : it->second;
    };
    if (name == "revoke") {
      auto reason = parse_revocation_reason(arg("reason", "unspecified"));
      if (!reason.ok()) return reason.error();
      auto revoked = ca->revoke(arg("serial", ""), *reason);
      if (!revoked.ok()) return revoked.error();
      return "revoked " + arg("serial", "") + " (" + revoked->certificate.subject().to_string() + ")";
    }
    if (name == "advance-time") {
      const std::string by = arg("by", arg("value", ""));
      const auto duration = parse_duration(by);
      if (!duration) return make_error(ErrorCode::invalid_input, "advance-time: '" + by + "' is not a duration such as 400d, 12h, 30m or 90s");
      clock->advance(*duration);
      return "the lab's clock is now " + std::to_string(std::chrono::duration_cast<std::chrono::hours>(clock->offset()).count() / 24) +
             " days ahead of real time";
    }
    if (name == "start-coap-proxy") return start_proxy_once(args);
    if (name == "rollover-ca") {  // the fleet's virtual year: a root key rollover (RFC 7030 4.1.3)
      const std::string label = arg("ca", arg("value", "root"));
      auto rolled = ca->rollover(label, options.key_type);
      if (!rolled.ok()) return rolled.error();
      return "rolled the CA " + label + " over to a new key (" + rolled->new_with_new.subject().to_string() + ")";
    }
    if (name == "reset-time") {
      clock->reset();
      return std::string("the lab's clock is back to real time");
    }
    if (name == "publish-crl") {
      std::string label = arg("ca", arg("value", ""));
      if (label.empty()) label = instance.config.default_ca;
      auto crl = ca->publish_crl(label);
      if (!crl.ok()) return crl.error();
      return "published a CRL for " + label;
    }
    if (name == "approve" || name == "reject") {
      if (!instance.queue) return make_error(ErrorCode::unsupported, "this gateway has no operator queue");
      std::size_t count = 0;
      const std::string only = arg("request", "");
      const std::string reason = arg("reason", arg("value", "rejected by the lab's operator"));
      for (const auto& entry : instance.queue->list()) {
        if (entry.status.state != gateway::ApprovalState::pending) continue;
        // The runner names a request by its CSR's SHA-256; the gateway's id binds the client too.
        if (!only.empty() && entry.request.id != only && entry.request.csr_sha256 != only) continue;
        const bool done = name == "approve" ? instance.queue->approve(entry.request.id, "lab control")
                                            : instance.queue->reject(entry.request.id, reason, "lab control");
        count += done ? 1 : 0;
      }
      if (count == 0) return make_error(ErrorCode::not_found, "no pending request to " + name);
      return name + "d " + std::to_string(count) + " pending request(s)";
    }
    // Operator behaviours and the IDM's reachability (PG-IDM-1, PG-IDM-2): they hold until the
    // scenario changes them again; the runner gives approval scenarios this gateway one at a time.
    if (name == "operator" || name == "idm-down" || name == "idm-up" || name == "idm-reset") {
      if (!instance.queue) return make_error(ErrorCode::unsupported, "this gateway has no operator queue");
      if (name == "idm-reset") {  // run by the runner after a scenario that used the others
        instance.queue->set_available(true);
        instance.queue->set_policy({});
        return std::string("the identity manager answers and its operator decides by hand again");
      }
      if (name != "operator") {
        instance.queue->set_available(name == "idm-up");
        return std::string(name == "idm-up" ? "the identity manager answers again" : "the identity manager is unreachable");
      }
      const std::string policy = arg("policy", arg("value", ""));
      auto parsed = gateway::parse_operator_policy(policy);
      if (!parsed)
        return make_error(ErrorCode::invalid_input,
                          "operator: '" + policy + "' is not manual, approve-after=N (N >= 1), reject=REASON or never");
      instance.queue->set_policy(*parsed);
      return "the operator now answers " + policy;
    }
    if (name == "restart") {
      std::lock_guard lock(instance.restart_mutex);
      instance.server->stop();
      instance.server.reset();
      start_server(instance);
      return "restarted the " + instance.name + " gateway on port " + std::to_string(instance.config.port);
    }
    return make_error(ErrorCode::unsupported, "unknown control " + name);
  }
};

EmbeddedLab::EmbeddedLab(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

EmbeddedLab::~EmbeddedLab() {
  // Gateways first: a proxy's worker waiting on a stalled gateway is released by the closed
  // connection instead of its upstream deadline.
  for (auto& instance : impl_->instances)
    if (instance->server) instance->server->stop();
  for (auto& proxy : impl_->coap_proxies) proxy->stop();
}

std::unique_ptr<EmbeddedLab> EmbeddedLab::start(const LabOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  fixtures::GenerateOptions generate;
  generate.dir = options.dir;
  generate.key_type = options.key_type;
  generate.force = true;
  auto set = fixtures::generate(generate);
  if (!set.ok()) throw ConfigError("building the embedded lab: " + set.error().message);
  ca::SimulatedCa::Options ca_options;
  ca_options.store_path = options.dir / "lab.db";
  ca_options.clock = impl->clock;
  auto ca = ca::SimulatedCa::open(std::move(ca_options));
  if (!ca.ok()) throw ConfigError("opening the lab's CA: " + ca.error().message);
  impl->ca = std::shared_ptr<ca::SimulatedCa>(std::move(ca).value());

  auto& identities = impl->identities;
  for (const auto& item : set->items) {
    if (item.key.empty() || item.chain.empty()) continue;
    auto identity = TlsIdentity::load(options.dir / item.chain, options.dir / item.key);
    if (identity.ok()) identities.emplace(item.name, std::move(identity).value());
  }
  auto anchors_bytes = read_file_bytes((options.dir / "trust" / "anchors.pem").string());
  if (!anchors_bytes.ok()) throw ConfigError(anchors_bytes.error().message);
  impl->anchors = value_or_throw(Certificate::parse_all(*anchors_bytes), "lab trust anchors");

  // Scenarios that change a gateway for everyone (manual approval, restarts) get their own, so
  // parallel scenarios on the shared ones never notice.
  using Variant = Impl::Variant;
  for (const Variant& v : {Variant{"rfc7030", gateway::Profile::rfc7030, false, false, {}},
                           Variant{"protocol-gateway", gateway::Profile::protocol_gateway, false, false, {}},
                           Variant{"protocol-gateway-manual-approval", gateway::Profile::protocol_gateway, true, false, {}},
                           Variant{"protocol-gateway-restartable", gateway::Profile::protocol_gateway, false, true, {}}}) {
    impl->instances.push_back(impl->make_instance(v));
  }

  // The product's CoAP proxy (PG-COAP-1) in front of the shared protocol-gateway instance, and one
  // of its own in front of the manual-approval instance.
  for (const char* name : {"protocol-gateway", "protocol-gateway-manual-approval"})
    impl->add_coap_proxy(**std::find_if(impl->instances.begin(), impl->instances.end(),
                                        [name](const auto& instance) { return instance->name == name; }));
  impl->add_slow_upstream_target(**std::find_if(impl->instances.begin(), impl->instances.end(),
                                                [](const auto& instance) { return instance->name == "protocol-gateway"; }));
  return std::unique_ptr<EmbeddedLab>(new EmbeddedLab(std::move(impl)));
}

std::vector<const Target*> EmbeddedLab::targets() const {
  std::vector<const Target*> out;
  {
    std::lock_guard lock(impl_->instances_mutex);
    for (const auto& instance : impl_->instances) out.push_back(&instance->target);
  }
  // After the gateways' own: the planner takes the first target that offers what a scenario needs.
  for (const auto& target : impl_->slow_targets) out.push_back(target.get());
  return out;
}

std::vector<std::string> EmbeddedLab::log() const {
  std::lock_guard lock(impl_->log_mutex);
  return impl_->log_lines;
}

}  // namespace estlab::conformance
