// The conformance engine: the scenario loader's errors, the built-in scenarios against the embedded
// lab (all must pass), and testing the tester: every gateway fault makes at least one scenario fail,
// and one that checks the requirement the fault breaks.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>
#include <set>

#include "estlab/conformance/lab.hpp"
#include "estlab/conformance/runner.hpp"
#include "estlab/conformance/scenario.hpp"

namespace estlab::gateway {
void PrintTo(Fault fault, std::ostream* out) { *out << to_string(fault); }
}  // namespace estlab::gateway

namespace estlab::conformance {
namespace {

namespace fs = std::filesystem;

const fs::path kScenarios = fs::path(ESTLAB_SOURCE_DIR) / "conformance" / "scenarios";

fs::path temp_dir(const std::string& name) {
  static int counter = 0;
  auto dir = fs::temp_directory_path() / ("estlab-engine-" + std::to_string(::getpid()) + "-" + name + "-" + std::to_string(counter++));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string load_error(const std::string& yaml) {
  const auto dir = temp_dir("broken");
  const auto file = dir / "broken.yaml";
  std::ofstream(file) << yaml;
  try {
    load_scenario_file(file);
  } catch (const ConfigError& e) {
    fs::remove_all(dir);
    return e.what();
  }
  fs::remove_all(dir);
  return "";
}

const char* kValidHead = "id: x\ntitle: t\nrequirements: [7030-4.2-a]\n";

TEST(ScenarioLoader, BuiltInScenariosLoadAndHaveUniqueIds) {
  const auto scenarios = load_scenarios(kScenarios);
  ASSERT_GE(scenarios.size(), 25u);
  std::set<std::string> ids;
  for (const auto& s : scenarios) {
    EXPECT_TRUE(ids.insert(s.id).second) << s.id;
    EXPECT_FALSE(s.requirements.empty()) << s.id;
    EXPECT_FALSE(s.steps.empty()) << s.id;
  }
}

TEST(ScenarioLoader, BrokenFilesNameFileLineAndProblem) {
  struct Case {
    std::string yaml;
    std::string line;     // ":N:" expected in the message
    std::string message;  // substring expected
  };
  const std::vector<Case> cases = {
      {"id: x\ntitle: [unclosed\n", ":", "YAML syntax"},
      {"title: t\nrequirements: [7030-4.2-a]\nsteps:\n  - wait: 1\n", ":1:", "missing id"},
      {std::string(kValidHead) + "steps:\n  - sned: {op: cacerts}\n", ":5:", "needs exactly one of connect, send"},
      {std::string(kValidHead) + "steps:\n  - send: {op: enrol}\n", ":5:", "'enrol' is not an EST operation"},
      {std::string(kValidHead) + "steps:\n  - send: {op: cacerts}\n    expect: {status: 2000}\n", ":6:", "expect.status must be a whole number"},
      {std::string(kValidHead) + "steps:\n  - send: {op: cacerts}\n    expect: {stauts: 200}\n", ":6:", "unknown key 'stauts'"},
      {"id: x\ntitle: t\nrequirements: [RFC-7030]\nsteps:\n  - wait: 1\n", ":3:", "not an ID like"},
      {std::string(kValidHead) + "profiles: [rfc9999]\nsteps:\n  - wait: 1\n", ":4:", "profile 'rfc9999'"},
      {std::string(kValidHead) + "steps:\n  - control: {revoke: {reason: x}}\n", ":5:", "revoke needs serial"},
      // The operator's behaviour: a policy the lab and a hook can act on, checked at load time.
      {std::string(kValidHead) + "steps:\n  - control: operator\n", ":5:", "control operator needs a policy"},
      {std::string(kValidHead) + "steps:\n  - control: {operator: approve-after=0}\n", ":5:", "approve-after=N (N >= 1)"},
      {std::string(kValidHead) + "steps:\n  - control: {operator: sometimes}\n", ":5:", "control operator needs a policy"},
      {std::string(kValidHead) + "steps:\n  - control: idm_down\n", ":5:", "unknown control 'idm_down'"},
      {std::string(kValidHead) + "steps:\n  - send: {op: simpleenroll, csr: {subject: \"CN={{bad name}}\"}}\n", ":5:", "bad variable reference"},
      {std::string(kValidHead) + "steps: []\n", ":1:", "steps must be a non-empty list"},
      {std::string(kValidHead) + "steps:\n  - connect: {tls: \"1.4\"}\n", ":5:", "connect.tls must be"},
      {std::string(kValidHead) + "steps:\n  - send: {op: cacerts}\n    capture: {x: issued.nothing}\n", ":6:", "capture 'issued.nothing'"},
      // Misspelled names are load errors with the closest known one, never skips at run time.
      {std::string(kValidHead) + "needs: {features: [serverkeygn]}\nsteps:\n  - wait: 0\n", ":4:", "unknown feature 'serverkeygn' (did you mean 'serverkeygen'?)"},
      {std::string(kValidHead) + "needs: {controls: [aprove]}\nsteps:\n  - wait: 0\n", ":4:", "unknown control 'aprove' (did you mean 'approve'?)"},
      {std::string(kValidHead) + "steps:\n  - connect: {as: device-factroy}\n", ":5:", "unknown role 'device-factroy' (did you mean 'device-factory'?)"},
      {std::string(kValidHead) + "steps:\n  - send: {op: cacerts}\n    expect: {level: maybe}\n", ":6:", "expect.level must be must, should or info"},
      {std::string(kValidHead) + "steps:\n  - send: {op: cacerts}\n    expect: {requirement: RFC7030}\n", ":6:", "is not an ID like"},
      {std::string(kValidHead) + "steps:\n  - send: {op: simpleenroll, csr: {cn: a, subject: \"CN=b\"}}\n", ":5:", "both subject and cn"},
      {std::string(kValidHead) + "steps:\n  - send: {op: simpleenroll, base64_layout: wrapped}\n", ":5:", "base64_layout must be one of"},
      // Gateway configuration: est.properties keys the gateway reads, one value each.
      {std::string(kValidHead) + "needs: {config: {estlab.linking.requird: \"true\"}}\nsteps:\n  - wait: 0\n", ":4:",
       "'estlab.linking.requird' is not an est.properties key the gateway reads (did you mean 'estlab.linking.required'?)"},
      {std::string(kValidHead) + "needs: {config: {estlab.linking.required: [a, b]}}\nsteps:\n  - wait: 0\n", ":4:", "must be a single value"},
      {std::string(kValidHead) + "needs: {config: []}\nsteps:\n  - wait: 0\n", ":4:", "needs.config maps est.properties keys"},
      {std::string(kValidHead) + "field_bugs: [FB3]\nsteps:\n  - wait: 0\n", ":4:", "field bug 'FB3' is not an ID like FB-03"},
      // Parametrization: names, lists, values; a value that does not fit its field names the step's line.
      {std::string(kValidHead) + "for_each: {Key: [a]}\nsteps:\n  - wait: 0\n", ":4:", "for_each parameter 'Key' must be lower-case"},
      {std::string(kValidHead) + "for_each: {k: []}\nsteps:\n  - wait: 0\n", ":4:", "for_each.k must be a non-empty list"},
      {std::string(kValidHead) + "for_each: {k: [[a]]}\nsteps:\n  - wait: 0\n", ":4:", "for_each.k values must be single values"},
      {std::string(kValidHead) + "for_each: {k: [a]}\nsteps:\n  - for_each: {k: [b]}\n    wait: 0\n", ":6:", "already set by an outer for_each"},
      {std::string(kValidHead) + "steps:\n  - for_each: {layout: [one-line, wrapped]}\n    send: {op: simpleenroll, base64_layout: \"{{layout}}\"}\n", ":6:",
       "base64_layout must be one of"},
      {std::string(kValidHead) + "steps:\n  - send: {op: simpleenroll, csr: {key_type: rsa-2048}}\n", ":5:", "csr.key_type: unknown key type 'rsa-2048'"},
      {std::string(kValidHead) + "steps:\n  - control: {advance-time: 400y}\n", ":5:", "'400y' is not a duration such as 400d"},
      {std::string(kValidHead) + "steps:\n  - control: {advance-time: {}}\n", ":5:", "needs a duration ({advance-time: 400d}) or an identity"},
      {std::string(kValidHead) + "steps:\n  - control: {advance-time: {by: 1d, past: device}}\n", ":5:", "one of them"},
      {std::string(kValidHead) + "steps:\n  - send: {op: cacerts}\n    expect: {control_fails: true}\n", ":6:", "control_fails and message_contains are for control steps"},
      {std::string(kValidHead) + "steps:\n  - control: restart\n    expect: {status: 200}\n", ":6:", "a control step can only expect control_fails"},
      {std::string(kValidHead) + "steps:\n  - send: {op: simpleenroll, csr: {challenge_password: tls-unique, challenge_password_type: bmp}}\n", ":5:",
       "challenge_password_type must be printable or utf8, not 'bmp'"},
      // The TLS and certificate words.
      {std::string(kValidHead) + "steps:\n  - connect: {tls: \"1.3\", ciphers: \"eNULL\"}\n", ":5:", "TLS 1.3 takes ciphersuites"},
      {std::string(kValidHead) + "steps:\n  - connect: {tls: \"1.2\", ciphersuites: \"TLS_AES_128_GCM_SHA256\"}\n", ":5:", "connect.ciphersuites are TLS 1.3 suites"},
      {std::string(kValidHead) + "steps:\n  - connect: {plain_http: true, resume: true}\n", ":5:", "plain_http has no TLS"},
      {std::string(kValidHead) + "steps:\n  - connect: {resume: yes}\n", ":5:", "connect.resume must be true or false"},
      {std::string(kValidHead) + "steps:\n  - connect: anonymous\n    expect: {status: 200}\n", ":6:", "a connect step can only expect"},
      {std::string(kValidHead) + "steps:\n  - connect: anonymous\n    expect: {connection_fails: true, resumed: true}\n", ":6:", "cannot be combined"},
      {std::string(kValidHead) + "steps:\n  - connect: anonymous\n    expect: {server_certificate: {validity: inside}}\n", ":6:", "expect.server_certificate.validity must be within-ca, not 'inside'"},
      {std::string(kValidHead) + "steps:\n  - connect: anonymous\n    expect: {server_certificate: {subject: x}}\n", ":6:", "unknown key 'subject' in expect.server_certificate"},
      {std::string(kValidHead) + "steps:\n  - send: {op: cacerts}\n    expect: {issued: {key_usage_absent: [certSign]}}\n", ":6:", "unknown bit 'certSign'"},
      {std::string(kValidHead) + "steps:\n  - send: {op: cacerts}\n    expect: {issued: {basic_constraints: {pathlen: 0}}}\n", ":6:", "unknown key 'pathlen'"},
      {std::string(kValidHead) + "steps:\n  - send: {op: cacerts}\n    expect: {issued: {signature_algorithm: sha256}}\n", ":6:", "signature_algorithm must be strong"},
      {std::string(kValidHead) + "steps:\n  - send: {op: cacerts}\n    expect: {issued: {crl_distribution_points: yes}}\n", ":6:", "must be present, absent"},
      {std::string(kValidHead) + "steps:\n  - send: {op: cacerts}\n    expect: {status: 400, error_text: yes}\n", ":6:", "expect.error_text must be 'readable'"},
      {std::string(kValidHead) + "steps:\n  - send: {op: cacerts}\n    expect: {multipart_parts: 0}\n", ":6:", "expect.multipart_parts"},
      {std::string(kValidHead) + "steps:\n  - send: {op: cacerts}\n    expect: {retry_after: present}\n", ":6:", "expect.retry_after must be 'valid'"},
      {std::string(kValidHead) + "steps:\n  - send: {op: cacerts}\n    expect: {certs_only_structure: maybe}\n", ":6:", "expect.certs_only_structure"},
      {std::string(kValidHead) + "steps:\n  - send: {op: csrattrs}\n    expect: {csrattrs_key_type: p384}\n", ":6:",
       "expect.csrattrs_key_type: unknown key type 'p384'"},
      // Encrypted server-generated keys (7030-4.4.2-c).
      {std::string(kValidHead) + "steps:\n  - send: {op: serverkeygen, csr: {cn: a, encrypted_key: symmetric}}\n", ":5:",
       "csr.encrypted_key must be asymmetric"},
      {std::string(kValidHead) + "steps:\n  - send: {op: serverkeygen}\n    expect: {server_key_encrypted: false}\n", ":6:",
       "expect.server_key_encrypted can only be true"},
      {std::string(kValidHead) + "steps:\n  - send: {op: serverkeygen}\n    expect: {server_key_encrypted: maybe}\n", ":6:",
       "expect.server_key_encrypted must be true or false"},
  };
  for (const auto& c : cases) {
    const auto message = load_error(c.yaml);
    EXPECT_NE(message.find("broken.yaml" + c.line), std::string::npos) << "got: " << message << "\nfor:\n" << c.yaml;
    EXPECT_NE(message.find(c.message), std::string::npos) << "got: " << message << "\nfor:\n" << c.yaml;
  }
}

TEST(ScenarioLoader, DuplicateIdsAcrossFilesAreRefused) {
  const auto dir = temp_dir("dupes");
  for (const char* name : {"a.yaml", "b.yaml"}) std::ofstream(dir / name) << kValidHead << "steps:\n  - wait: 0\n";
  try {
    load_scenarios(dir);
    ADD_FAILURE() << "duplicate ids were accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("also used by"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(Selection, KeywordIdProfileAndTransport) {
  Scenario s;
  s.id = "pg-enr-1-subject";
  s.title = "Subject must match";
  s.requirements = {"PG-ENR-1"};
  s.transport = "https";
  Selection sel;
  sel.keyword = "subject";
  EXPECT_TRUE(sel.matches(s));
  sel.keyword = "not subject";
  EXPECT_FALSE(sel.matches(s));
  sel.keyword = "nothing or enr";
  EXPECT_TRUE(sel.matches(s));
  sel.keyword = "";
  sel.requirements = {"PG-ENR"};
  EXPECT_TRUE(sel.matches(s));
  sel.requirements = {"7030-4.2.1-a"};
  EXPECT_FALSE(sel.matches(s));
  sel.requirements.clear();
  sel.transports = {"coaps"};
  EXPECT_FALSE(sel.matches(s));
}

std::string failures_text(const std::vector<ScenarioResult>& results) {
  std::string text;
  for (const auto& r : results) {
    if (r.verdict == Verdict::pass || r.verdict == Verdict::skip || r.verdict == Verdict::info) continue;
    text += r.id + " [" + r.profile + "] " + to_string(r.verdict) + ": " + r.message + "\n";
    for (const auto& step : r.steps) {
      if (step.verdict == Verdict::pass) continue;
      for (const auto& check : step.checks) text += std::string("    ") + to_string(check.verdict) + " " + check.what + "\n";
      if (step.exchange) text += "    request:\n" + step.exchange->request.substr(0, 800) + "\n    response:\n" + step.exchange->response.substr(0, 800) + "\n";
    }
  }
  return text;
}

struct LabRun {
  std::vector<ScenarioResult> results;
};

// Scenarios over a lossy network spend seconds on retransmission timers whatever the gateway does;
// the fault matrices leave them out (no fault's row needs them) and the plain run keeps them.
// A fault matrix run selects the scenarios naming the fault's requirement: only those can make its
// assertion hold, and the whole suite per fault was two thirds of the unit tests' time.
LabRun run_lab(const std::set<gateway::Fault>& faults, std::chrono::milliseconds step_timeout, std::size_t jobs = 2,
               const coap_proxy::ProxyFaults& proxy_faults = {}, const Selection& selection = {}) {
  auto scenarios = load_scenarios(kScenarios);
  if (!faults.empty() || !proxy_faults.empty())
    std::erase_if(scenarios, [](const Scenario& s) { return s.needs_network && s.needs_network->loss > 0; });
  LabOptions options;
  options.dir = temp_dir("lab");
  options.faults = faults;
  options.proxy_faults = proxy_faults;
  auto lab = EmbeddedLab::start(options);
  RunOptions run;
  run.jobs = jobs;
  run.step_timeout = step_timeout;
  run.seed = 20261206;
  run.level_of = levels_from(std::make_shared<Catalog>(Catalog::load(fs::path(ESTLAB_SOURCE_DIR) / "conformance" / "catalog" / "requirements.yaml")));
  const auto planned = plan(scenarios, lab->targets(), selection, run);
  LabRun out{run_plan(planned, run)};
  lab.reset();
  fs::remove_all(options.dir);
  return out;
}

TEST(EmbeddedLab, EveryBuiltInScenarioPassesAgainstThePlainGateway) {
  const auto run = run_lab({}, std::chrono::milliseconds(10'000));
  std::size_t passed = 0, skipped = 0;
  std::set<std::string> profiles;
  for (const auto& r : run.results) {
    // info is what the catalog only asks to record (TLS 1.3 offered or not): a pass for the lab.
    passed += r.verdict == Verdict::pass || r.verdict == Verdict::info;
    skipped += r.verdict == Verdict::skip;
    profiles.insert(r.profile);
  }
  EXPECT_EQ(passed + skipped, run.results.size()) << failures_text(run.results);
  // The lab offers every feature and control; only scenarios for servers that lack a feature skip,
  // and those whose cipher suites the local OpenSSL cannot offer (EXPORT, DES).
  for (const auto& r : run.results)
    if (r.verdict == Verdict::skip) {
      EXPECT_TRUE(r.message.find("applies only where") != std::string::npos || r.message.find("this OpenSSL (") != std::string::npos)
          << r.id << ": " << r.message;
    }
  EXPECT_EQ(profiles, (std::set<std::string>{"rfc7030", "protocol-gateway"}));
  EXPECT_GE(passed, 40u);
}

// What a fault matrix run caught: the runs that failed (or warned, where the fault breaks a row
// the catalog rates SHOULD), and whether one of them on `transport` ("" = any) names the
// requirement the fault breaks.
struct FaultCatch {
  std::vector<std::string> failed;
  bool requirement_caught = false;
};
FaultCatch caught(const LabRun& run, std::string_view requirement, bool should_row, std::string_view transport = "") {
  FaultCatch c;
  for (const auto& r : run.results) {
    if (r.verdict != Verdict::fail && !(should_row && r.verdict == Verdict::warn)) continue;
    c.failed.push_back(r.id + " [" + r.profile + " " + r.transport + "]");
    if (!transport.empty() && r.transport != transport) continue;
    for (const auto& req : r.requirements) c.requirement_caught |= (req == requirement);
  }
  return c;
}

// gtest parameter names allow only letters, digits and '_': a fault's name with its '-' and '.' as '_'.
template <typename Fault>
std::string fault_test_name(const ::testing::TestParamInfo<Fault>& info) {
  std::string name(to_string(info.param));
  for (auto& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

class FaultMatrix : public ::testing::TestWithParam<gateway::Fault> {};

TEST_P(FaultMatrix, TheFaultMakesAScenarioOfItsRequirementFail) {
  const auto& fault = gateway::info(GetParam());
  // At the normal step timeout (but see stall-response), and only a real catch counts: a fail, or a warn where the fault
  // breaks a row the catalog rates SHOULD (the suite may only warn there). An error means the
  // suite could not judge. Many jobs: a stalling fault makes each scenario wait out one deadline.
  const auto catalog = Catalog::load(fs::path(ESTLAB_SOURCE_DIR) / "conformance" / "catalog" / "requirements.yaml");
  const auto* row = catalog.find(fault.requirement);
  ASSERT_NE(row, nullptr) << "fault " << fault.name << " names " << fault.requirement << ", which is not in the catalog";
  const bool should_row = row->verdict_level == FailLevel::warn;
  // A stalling gateway answers nothing whatever the deadline, so its run waits 3 s per stalled step
  // rather than 15 (it was the longest unit test: 78 s).
  const auto step_timeout = GetParam() == gateway::Fault::stall_response ? std::chrono::milliseconds(3'000) : RunOptions{}.step_timeout;
  Selection naming_it;
  naming_it.requirements = {std::string(fault.requirement)};
  const auto [failed, requirement_caught] = caught(run_lab({GetParam()}, step_timeout, 64, {}, naming_it), fault.requirement, should_row);
  EXPECT_FALSE(failed.empty()) << "fault " << fault.name << " went unnoticed by every scenario";
  EXPECT_TRUE(requirement_caught) << "fault " << fault.name << " breaks " << fault.requirement
                                  << " but no failing scenario names that requirement; failed: " << ::testing::PrintToString(failed);
}

// The same for the CoAP proxy's faults: each makes a coaps scenario naming its requirement fail
// (the plain proxy passes everything: EveryBuiltInScenarioPassesAgainstThePlainGateway).
class ProxyFaultMatrix : public ::testing::TestWithParam<coap_proxy::ProxyFault> {};

TEST_P(ProxyFaultMatrix, TheFaultMakesACoapsScenarioOfItsRequirementFail) {
  const auto& fault = coap_proxy::info(GetParam());
  const auto catalog = Catalog::load(fs::path(ESTLAB_SOURCE_DIR) / "conformance" / "catalog" / "requirements.yaml");
  const auto* row = catalog.find(fault.requirement);
  ASSERT_NE(row, nullptr) << "proxy fault " << fault.name << " names " << fault.requirement << ", which is not in the catalog";
  const bool should_row = row->verdict_level == FailLevel::warn;
  // The proxy is only on the coaps path: only a coaps run naming the requirement counts.
  Selection naming_it;
  naming_it.requirements = {std::string(fault.requirement)};
  naming_it.transports = {"coaps"};
  const auto [failed, requirement_caught] =
      caught(run_lab({}, RunOptions{}.step_timeout, 16, {GetParam()}, naming_it), fault.requirement, should_row, "coaps");
  EXPECT_FALSE(failed.empty()) << "proxy fault " << fault.name << " went unnoticed by every scenario";
  EXPECT_TRUE(requirement_caught) << "proxy fault " << fault.name << " breaks " << fault.requirement
                                  << " but no failing coaps scenario names that requirement; failed: " << ::testing::PrintToString(failed);
}

INSTANTIATE_TEST_SUITE_P(AllProxyFaults, ProxyFaultMatrix, ::testing::ValuesIn([] {
                           std::vector<coap_proxy::ProxyFault> faults;
                           for (const auto& f : coap_proxy::all_proxy_faults()) faults.push_back(f.fault);
                           return faults;
                         }()),
                         fault_test_name<coap_proxy::ProxyFault>);

INSTANTIATE_TEST_SUITE_P(AllFaults, FaultMatrix, ::testing::ValuesIn([] {
                           std::vector<gateway::Fault> faults;
                           for (const auto& f : gateway::all_faults()) faults.push_back(f.fault);
                           return faults;
                         }()),
                         fault_test_name<gateway::Fault>);

}  // namespace
}  // namespace estlab::conformance

namespace estlab::conformance {
namespace {

// Target mode cannot race: a scenario whose controls change a shared gateway runs alone. Two
// targets: "shared" (a vendor's hooks, controls_isolated = false) and "isolated" (the lab's
// gateways of their own). Every hook records who else is inside a hook at the same moment.
// A scenario over a list becomes one scenario per combination (id and title say which, the value
// in every field); a step over a list becomes one step per value, each at the step's line.
TEST(ScenarioLoader, ForEachExpandsScenariosAndSteps) {
  const auto dir = temp_dir("for-each");
  const auto file = dir / "s.yaml";
  std::ofstream(file) << "id: enroll-kt\ntitle: Key types\nrequirements: [7030-4.2-a]\n"
                         "for_each: {key_type: [ec-p384, ed25519], tls: [\"1.2\", \"1.3\"]}\n"
                         "steps:\n"
                         "  - connect: {as: ra-officer, tls: \"{{tls}}\"}\n"
                         "  - for_each: {layout: [one-line, wrap76-lf, whitespace]}\n"
                         "    send: {op: simpleenroll, base64_layout: \"{{layout}}\", csr: {cn: \"x-{{key_type}}-{{unique}}\", key_type: \"{{key_type}}\"}}\n"
                         "    expect: {status: 200}\n"
                         "  - wait: 0\n";
  const auto variants = load_scenario_variants(file);
  ASSERT_EQ(variants.size(), 4u);
  EXPECT_EQ(variants[0].id, "enroll-kt.ec-p384.1.2");
  EXPECT_EQ(variants[3].id, "enroll-kt.ed25519.1.3");
  EXPECT_EQ(variants[3].title, "Key types [key_type=ed25519, tls=1.3]");
  const std::map<std::string, std::string> params = {{"key_type", "ed25519"}, {"tls", "1.3"}};
  EXPECT_EQ(variants[3].parameters, params);
  const auto& steps = variants[3].steps;
  ASSERT_EQ(steps.size(), 5u);
  EXPECT_EQ(steps[0].tls, "1.3");
  for (std::size_t i = 1; i <= 3; ++i) {
    EXPECT_EQ(steps[i].line, 7) << i;
    ASSERT_TRUE(steps[i].csr.has_value());
    EXPECT_EQ(steps[i].csr->key_type, "ed25519");
    EXPECT_EQ(steps[i].csr->cn, "x-ed25519-{{unique}}") << "run-time variables stay for the runner";
  }
  EXPECT_EQ(steps[1].base64_layout, "one-line");
  EXPECT_EQ(steps[2].base64_layout, "wrap76-lf");
  EXPECT_EQ(steps[3].base64_layout, "whitespace");
  EXPECT_EQ(steps[4].kind, Step::Kind::wait);
  EXPECT_EQ(load_scenarios(dir).size(), 4u);
  fs::remove_all(dir);
}

// status: [4xx, 5xx] accepts both classes (a second class was once dropped silently).
TEST(ScenarioLoader, TwoStatusClassesAreBothAccepted) {
  const auto dir = temp_dir("classes");
  const auto file = dir / "s.yaml";
  std::ofstream(file) << kValidHead << "steps:\n  - send: {op: cacerts}\n    expect: {status: [4xx, 5xx, 200]}\n";
  const auto s = load_scenario_file(file);
  const auto& e = *s.steps[0].expect;
  ASSERT_TRUE(e.status_class.has_value());
  EXPECT_EQ(*e.status_class, '4');
  EXPECT_NE(std::find(e.status.begin(), e.status.end(), 501), e.status.end());
  EXPECT_NE(std::find(e.status.begin(), e.status.end(), 200), e.status.end());
  EXPECT_EQ(std::find(e.status.begin(), e.status.end(), 302), e.status.end());
  fs::remove_all(dir);
}

TEST(ScenarioLoader, ConfigAndFieldBugsAreRead) {
  const auto dir = temp_dir("config");
  const auto file = dir / "s.yaml";
  std::ofstream(file) << kValidHead
                      << "field_bugs: [FB-26]\nneeds: {config: {allowRenewalWithOldCertificates: \"false\", handler.2.realm: r}}\nsteps:\n  - wait: 0\n";
  const auto s = load_scenario_file(file);
  EXPECT_EQ(s.field_bugs, std::vector<std::string>{"FB-26"});
  const std::map<std::string, std::string> want = {{"allowRenewalWithOldCertificates", "false"}, {"handler.2.realm", "r"}};
  EXPECT_EQ(s.needs_config, want);
  fs::remove_all(dir);
}

// A scenario needing a gateway configuration runs on the target the hook gives; a target without
// the hook (a vendor's gateway) skips it with the values named.
TEST(RunPlan, NeedsConfigPicksTheConfiguredGatewayOrSkips) {
  Target configured;
  configured.name = "configured";
  configured.profile = "rfc7030";
  std::map<std::string, std::string> asked;
  Target lab;
  lab.name = "lab";
  lab.profile = "rfc7030";
  lab.configured = [&](const std::map<std::string, std::string>& config) -> const Target* {
    asked = config;
    return &configured;
  };
  Target vendor;
  vendor.name = "vendor";
  vendor.profile = "rfc7030";
  Scenario s;
  s.id = "x";
  s.profiles = {"rfc7030"};
  s.needs_config = {{"estlab.linking.required", "true"}};
  const std::vector<Scenario> scenarios = {s};
  auto runs = plan(scenarios, {&lab}, Selection{}, RunOptions{});
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].target, &configured);
  EXPECT_EQ(runs[0].skip_reason, "");
  EXPECT_EQ(asked, s.needs_config);
  runs = plan(scenarios, {&vendor}, Selection{}, RunOptions{});
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].target, &vendor);
  EXPECT_NE(runs[0].skip_reason.find("estlab.linking.required=true (needs.config)"), std::string::npos) << runs[0].skip_reason;
  lab.configured = [](const std::map<std::string, std::string>&) -> const Target* { throw ConfigError("bad value"); };
  s.file = "s.yaml";
  EXPECT_THROW(plan({s}, {&lab}, Selection{}, RunOptions{}), ConfigError);
}

// Moving the clock changes what every scenario sees: such a scenario runs alone even on a target
// whose other controls are isolated, and the clock is brought back after it, whatever its verdict.
TEST(RunPlan, AScenarioThatMovesTheClockRunsAloneAndTheClockComesBack) {
  std::vector<std::string> calls;
  std::mutex calls_mutex;
  Target lab;
  lab.name = "lab";
  lab.profile = "rfc7030";
  lab.controls = {"advance-time", "reset-time"};
  lab.controls_isolated = true;
  lab.exclusive_controls = {"advance-time"};
  lab.control_hook = [&](const std::string& name, const ControlArguments& args) -> Result<std::string> {
    std::lock_guard lock(calls_mutex);
    calls.push_back(name + (args.count("by") ? " " + args.at("by") : ""));
    return std::string("ok");
  };
  Scenario mover;
  mover.id = "mover";
  mover.requirements = {"7030-3.3.2-b"};
  mover.profiles = {"rfc7030"};
  Step advance;
  advance.kind = Step::Kind::control;
  advance.control = "advance-time";
  advance.arguments = {{"by", "400d"}};
  Step note;
  note.kind = Step::Kind::note;
  note.note = "after";
  mover.steps = {advance, note};
  Scenario other = mover;
  other.id = "other";
  other.steps = {note};
  const std::vector<Scenario> scenarios = {mover, other};
  const auto runs = plan(scenarios, {&lab}, Selection{}, RunOptions{});
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_TRUE(runs[0].exclusive);
  EXPECT_FALSE(runs[1].exclusive);
  RunOptions options;
  options.jobs = 2;
  run_plan(runs, options, {});
  const std::vector<std::string> want = {"advance-time 400d", "reset-time"};
  EXPECT_EQ(calls, want);
}

// transports: [https, coaps] makes one scenario per transport, grouped; steps that exist over
// HTTPS only are refused at load.
TEST(ScenarioLoader, TransportsMakeOneScenarioPerTransport) {
  const auto dir = temp_dir("transports");
  const auto file = dir / "s.yaml";
  std::ofstream(file) << kValidHead << "transports: [https, coaps]\nsteps:\n  - send: {op: cacerts}\n";
  const auto variants = load_scenario_variants(file);
  ASSERT_EQ(variants.size(), 2u);
  EXPECT_EQ(variants[0].id, "x.https");
  EXPECT_EQ(variants[1].id, "x.coaps");
  EXPECT_EQ(variants[1].transport, "coaps");
  EXPECT_EQ(variants[0].transport_group, "x");
  EXPECT_EQ(variants[1].transport_group, "x");
  std::ofstream(file) << kValidHead << "transports: [https, coaps]\nsteps:\n  - send: {op: simpleenroll, auth: {user: a, password: b}}\n";
  try {
    load_scenario_variants(file);
    ADD_FAILURE() << "HTTP Basic in a scenario over coaps loaded";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("s.yaml:6: a step of a scenario over several transports uses HTTP Basic"), std::string::npos) << e.what();
  }
  std::ofstream(file) << kValidHead << "transports: [https]\nsteps:\n  - wait: 0\n";
  EXPECT_THROW(load_scenario_variants(file), ConfigError);
  fs::remove_all(dir);
}

// After both runs, each step must mean the same: 200 over https and 2.04 over coaps are both
// "served"; 403 and 4.03 both "refused"; a step served over one transport and refused over the
// other fails the coaps run under 9148-5-e.
TEST(RunPlan, TransportsThatDisagreeFailTheCoapsRun) {
  auto run = [](const std::string& transport, std::vector<int> statuses) {
    ScenarioResult r;
    r.id = "x." + transport;
    r.transport = transport;
    r.transport_group = "x";
    r.profile = "protocol-gateway";
    for (int status : statuses) {
      StepResult step;
      step.kind = "send";
      step.observed_status = status;
      r.steps.push_back(step);
    }
    return r;
  };
  std::vector<ScenarioResult> agree = {run("https", {200, 200, 403, -1, 202}), run("coaps", {205, 204, 403, 403, 503})};
  compare_transports(agree);
  EXPECT_EQ(agree[1].verdict, Verdict::pass) << agree[1].message;
  EXPECT_EQ(agree[1].steps[1].checks.size(), 1u);
  std::vector<ScenarioResult> differ = {run("https", {200, 403}), run("coaps", {205, 204})};
  compare_transports(differ);
  EXPECT_EQ(differ[1].verdict, Verdict::fail);
  EXPECT_NE(differ[1].message.find("step 2: the same request over https was refused (403), over coaps served (204)"), std::string::npos)
      << differ[1].message;
  EXPECT_EQ(differ[1].steps[1].checks.back().requirement, "9148-5-e");
  EXPECT_EQ(differ[0].verdict, Verdict::pass) << "the https run is the reference";
}

TEST(RunPlan, ScenariosWithControlsOnASharedGatewayRunAlone) {
  std::atomic<int> shared_inside{0}, isolated_inside{0}, violations{0}, isolated_calls{0};
  auto hold = [] { std::this_thread::sleep_for(std::chrono::milliseconds(20)); };
  Target shared;
  shared.name = "shared";
  shared.profile = "protocol-gateway";
  shared.controls = {"revoke"};
  shared.controls_isolated = false;
  shared.control_hook = [&](const std::string&, const ControlArguments&) -> Result<std::string> {
    ++shared_inside;
    if (isolated_inside > 0 || shared_inside > 1) ++violations;
    hold();
    if (isolated_inside > 0) ++violations;
    --shared_inside;
    return std::string("revoked");
  };
  Target isolated;
  isolated.name = "isolated";
  isolated.profile = "rfc7030";
  isolated.controls = {"revoke"};
  isolated.controls_isolated = true;
  isolated.control_hook = [&](const std::string&, const ControlArguments&) -> Result<std::string> {
    ++isolated_inside;
    ++isolated_calls;
    if (shared_inside > 0) ++violations;
    hold();
    --isolated_inside;
    return std::string("revoked");
  };
  auto scenario = [](const std::string& id, const std::string& profile) {
    Scenario s;
    s.id = id;
    s.title = id;
    s.requirements = {"PG-ENR-3"};
    s.profiles = {profile};
    s.needs_controls = {"revoke"};
    Step control;
    control.kind = Step::Kind::control;
    control.control = "revoke";
    control.arguments = {{"serial", "01"}};
    s.steps = {control, control, control};
    return s;
  };
  std::vector<Scenario> scenarios;
  for (int i = 0; i < 12; ++i) scenarios.push_back(scenario("isolated-" + std::to_string(i), "rfc7030"));
  for (int i = 0; i < 3; ++i) scenarios.push_back(scenario("shared-" + std::to_string(i), "protocol-gateway"));
  RunOptions options;
  options.jobs = 6;
  const auto planned = plan(scenarios, {&shared, &isolated}, Selection{}, options);
  ASSERT_EQ(planned.size(), 15u);
  for (const auto& run : planned) ASSERT_EQ(run.exclusive, run.target == &shared) << run.scenario->id;
  const auto results = run_plan(planned, options);
  for (const auto& r : results) EXPECT_EQ(r.verdict, Verdict::pass) << r.id << ": " << r.message;
  EXPECT_EQ(isolated_calls.load(), 36);
  // Isolated scenarios do run beside one another (that is what -j is for); never beside a shared one.
  EXPECT_EQ(violations.load(), 0);
}

}  // namespace
}  // namespace estlab::conformance

namespace estlab::conformance {
namespace {

// One defect never hides another: a failed check does not stop its scenario; a step that depends
// on a capture the failed step could not make is skipped with that reason, and the rest is judged.
TEST(ScenarioRunner, AFailedStepDoesNotStopTheScenario) {
  const auto dir = temp_dir("masking");
  std::ofstream(dir / "masking.yaml") << R"(id: masking
title: three defects in a row
requirements: [7030-4.1.2-a]
profiles: [rfc7030]
steps:
  - connect: anonymous
  - send: {op: cacerts}
    expect: {status: 299}
  - send: {op: cacerts}
    expect: {media_type: application/json}
    capture: {bag: certificates}
  - send: {op: simpleenroll, csr: {cn: "masking-{{unique}}"}}
    expect: {status: 200}
    capture: {device: issued.identity}
  - connect: {as: device}
  - send: {op: cacerts}
    expect: {status: 200, level: should}
  - send: {op: cacerts}
    expect: {status: 200, contains_root: true}
  - connect: anonymous
  - send: {op: cacerts}
    expect: {status: 200, contains_root: true}
)";
  const auto scenarios = load_scenarios(dir);
  LabOptions options;
  options.dir = dir / "lab";
  auto lab = EmbeddedLab::start(options);
  RunOptions run;
  run.level_of = [](const std::string&) { return Level::must; };
  const auto planned = plan(scenarios, lab->targets(), Selection{}, run);
  ASSERT_EQ(planned.size(), 1u);
  const auto result = run_scenario(*planned[0].scenario, *planned[0].target, 0, run);
  ASSERT_EQ(result.steps.size(), 9u);
  EXPECT_EQ(result.verdict, Verdict::fail);
  EXPECT_EQ(result.steps[1].verdict, Verdict::fail) << "status 299 is not what came";
  EXPECT_EQ(result.steps[2].verdict, Verdict::fail) << "the media type is not application/json";
  EXPECT_EQ(result.steps[3].verdict, Verdict::fail) << "an anonymous enrollment is refused, so nothing is captured";
  EXPECT_EQ(result.steps[4].verdict, Verdict::skip) << result.steps[4].message;
  EXPECT_NE(result.steps[4].message.find("could not capture"), std::string::npos) << result.steps[4].message;
  EXPECT_EQ(result.steps[5].verdict, Verdict::skip) << "the connection of a skipped connect step is not used";
  EXPECT_EQ(result.steps[6].verdict, Verdict::skip) << result.steps[6].message;
  // A new connection needs nothing that failed: what follows it is judged again.
  EXPECT_EQ(result.steps[7].verdict, Verdict::pass) << result.steps[7].message;
  EXPECT_EQ(result.steps[8].verdict, Verdict::pass) << result.steps[8].message;
  EXPECT_EQ(result.skipped_steps(), 3u);
  lab.reset();
  fs::remove_all(dir);
}


// The TLS words against the lab's gateway: a suite list the local OpenSSL cannot offer skips (a
// broken client would report the handshake failing, a pass); `resume` resumes; the server
// certificate is judged by the judge, so a wrong name fails with the reason instead of ending the
// handshake; other-finished is not the linking value.
TEST(ScenarioRunner, TlsConnectOptionsAndChecks) {
  const auto dir = temp_dir("tls");
  std::ofstream(dir / "tls.yaml") << R"(id: tls-words
title: TLS words
requirements: [7030-3.3-d]
profiles: [rfc7030]
steps:
  - connect: {tls: "1.2", ciphers: "EXPORT:@SECLEVEL=0"}
    expect: {connection_fails: true}
  - send: {op: cacerts}
  - connect: {resume: true}
  - connect: {as: device-factory, tls: "1.2"}
  - send: {op: cacerts}
    expect: {status: 200, resumed: false, secure_renegotiation: true, renegotiation_requested: false}
  - connect: {as: device-factory, tls: "1.2", resume: true}
    expect: {resumed: true, server_certificate: {name: "not-the-server.example", chains_to: trust-anchors}}
  - send:
      op: simpleenroll
      csr: {subject: "{{role.device-factory.subject}}", challenge_password: other-finished}
    expect: {status: 200}
  - connect: {tls: "1.2", ciphers: "aNULL:@SECLEVEL=0"}
    expect: {connection_fails: true}
)";
  const auto scenarios = load_scenarios(dir);
  LabOptions options;
  options.dir = dir / "lab";
  auto lab = EmbeddedLab::start(options);
  RunOptions run;
  run.level_of = [](const std::string&) { return Level::must; };
  const auto planned = plan(scenarios, lab->targets(), Selection{}, run);
  ASSERT_EQ(planned.size(), 1u);
  // Planning already says why (run_plan would skip it whole); run here, each step says it too.
  EXPECT_NE(planned[0].skip_reason.find("no cipher suite matching 'EXPORT:@SECLEVEL=0'"), std::string::npos) << planned[0].skip_reason;
  const auto result = run_scenario(*planned[0].scenario, *planned[0].target, 0, run);
  ASSERT_EQ(result.steps.size(), 8u);
  EXPECT_EQ(result.steps[0].verdict, Verdict::skip) << result.steps[0].message;
  EXPECT_NE(result.steps[0].message.find("EXPORT"), std::string::npos) << result.steps[0].message;
  EXPECT_EQ(result.steps[1].verdict, Verdict::skip) << "the connection of a skipped connect step is not used";
  EXPECT_EQ(result.steps[2].verdict, Verdict::skip) << "nothing to resume yet: " << result.steps[2].message;
  EXPECT_EQ(result.steps[4].verdict, Verdict::pass) << result.steps[4].message;
  // Resumed, chained to the anchors, but not carrying that name.
  EXPECT_EQ(result.steps[5].verdict, Verdict::fail) << result.steps[5].message;
  std::size_t passed_checks = 0;
  for (const auto& c : result.steps[5].checks) passed_checks += c.verdict == Verdict::pass;
  EXPECT_EQ(passed_checks, 3u) << "connected, resumed, chains to the trust anchors";
  EXPECT_NE(result.steps[5].message.find("not-the-server.example"), std::string::npos) << result.steps[5].message;
  EXPECT_EQ(result.steps[6].verdict, Verdict::fail) << "the client Finished is not tls-unique on a resumed session";
  EXPECT_EQ(result.steps[7].verdict, Verdict::pass) << result.steps[7].message;
  lab.reset();
  fs::remove_all(dir);
}

// A check the row only warns about is a failure too: a capture it made impossible is its
// consequence (a warn, later steps skipped), not an error of the suite (FB-19's retry after approval).
TEST(ScenarioRunner, ACaptureMissingAfterAWarnedCheckIsNotAnError) {
  const auto dir = temp_dir("warned");
  std::ofstream(dir / "warned.yaml") << R"(id: warned
title: a warned step cannot capture
requirements: [7030-4.1.2-a]
profiles: [rfc7030]
steps:
  - connect: anonymous
  - send: {op: simpleenroll, csr: {cn: "warned-{{unique}}"}}
    expect: {status: 200, level: should}
    capture: {device: issued.identity}
  - connect: {as: device}
)";
  const auto scenarios = load_scenarios(dir);
  LabOptions options;
  options.dir = dir / "lab";
  auto lab = EmbeddedLab::start(options);
  RunOptions run;
  run.level_of = [](const std::string&) { return Level::must; };
  const auto planned = plan(scenarios, lab->targets(), Selection{}, run);
  ASSERT_EQ(planned.size(), 1u);
  const auto result = run_scenario(*planned[0].scenario, *planned[0].target, 0, run);
  ASSERT_EQ(result.steps.size(), 3u);
  EXPECT_EQ(result.steps[1].verdict, Verdict::warn) << result.steps[1].message;
  EXPECT_EQ(result.steps[2].verdict, Verdict::skip) << result.steps[2].message;
  EXPECT_EQ(result.verdict, Verdict::warn) << result.message;
  lab.reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace estlab::conformance

namespace estlab::conformance {
namespace {

// The IDM controls of the embedded lab: a scenario that leaves the IDM down or the operator on a
// policy is undone by the runner afterwards (whatever its verdict), and a decision with nothing
// pending is an error of the scenario unless an earlier step already failed.
TEST(ScenarioRunner, IdmControlsAreUndoneAndADecisionAfterAFailureIsNotAnError) {
  const auto dir = temp_dir("idm-controls");
  const auto files = dir / "scenarios";
  fs::create_directories(files);
  std::ofstream(files / "down.yaml") << R"(id: leaves-idm-down
title: leaves the IDM down and the operator rejecting
requirements: [PG-IDM-2]
profiles: [protocol-gateway]
needs: {features: [manual-approval], controls: [idm-down, operator]}
steps:
  - control: {operator: "reject=never"}
  - control: idm-down
  - connect: {as: device-factory}
  - send: {op: simpleenroll, csr: {subject: "{{role.device-factory.subject}}"}}
    expect: {status: 503, headers: {Retry-After: present}}
)";
  std::ofstream(files / "after.yaml") << R"(id: after
title: a failed step, then nothing to approve
requirements: [PG-IDM-1]
profiles: [protocol-gateway]
needs: {features: [manual-approval], controls: [approve]}
steps:
  - connect: {as: device-factory}
  - send: {op: cacerts}
    expect: {status: 404}
  - control: approve
)";
  std::ofstream(files / "plain.yaml") << R"(id: plain
title: nothing left to approve, with no failure before
requirements: [PG-IDM-1]
profiles: [protocol-gateway]
needs: {features: [manual-approval], controls: [approve]}
steps:
  - connect: {as: device-factory}
  - send: {op: simpleenroll, csr: {subject: "{{role.device-factory.subject}}"}}
    expect: {status: 202}
  - control: approve
  - control: approve
)";
  const auto scenarios = load_scenarios(files);
  LabOptions options;
  options.dir = dir / "lab";
  auto lab = EmbeddedLab::start(options);
  RunOptions run;
  run.jobs = 1;
  run.level_of = [](const std::string&) { return Level::must; };
  Selection only_down;
  only_down.keyword = "leaves-idm-down";
  const auto results = run_plan(plan(scenarios, lab->targets(), only_down, run), run);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].verdict, Verdict::pass) << results[0].message;
  // The next scenario finds the IDM up and the operator deciding by hand: its request is pending.
  const Target* manual = nullptr;
  for (const auto* t : lab->targets())
    if (t->features.count("manual-approval")) manual = t;
  ASSERT_NE(manual, nullptr);
  std::ofstream(files / "again.yaml") << R"(id: again
title: pending again
requirements: [PG-IDM-1]
profiles: [protocol-gateway]
steps:
  - connect: {as: device-factory}
  - send: {op: simpleenroll, csr: {subject: "{{role.device-factory.subject}}"}}
    expect: {status: 202}
)";
  for (const auto& s : load_scenarios(files)) {
    if (s.id == "again") {
      EXPECT_EQ(run_scenario(s, *manual, 0, run).verdict, Verdict::pass) << "idm-reset did not run";
    }
    if (s.id == "after") {
      const auto r = run_scenario(s, *manual, 0, run);
      EXPECT_EQ(r.verdict, Verdict::fail) << r.message;
      EXPECT_EQ(r.steps.back().verdict, Verdict::skip) << r.steps.back().message;
    }
    if (s.id == "plain") {
      const auto r = run_scenario(s, *manual, 0, run);
      EXPECT_EQ(r.verdict, Verdict::error);
      EXPECT_EQ(r.steps.back().verdict, Verdict::error) << r.steps.back().message;
    }
  }
  lab.reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace estlab::conformance
