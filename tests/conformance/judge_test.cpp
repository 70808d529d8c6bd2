// The judge as a pure function: answers built the way real servers answer, including answers that
// are right in ways the estlab lab never produces (a three-tier /cacerts bag, a root that issues
// directly, CN-only subjects, a TLS alert or a reset instead of a 403) and deviations real servers
// have (Cisco libest 3.2.0: pkcs7-mime without smime-type, a PKCS#1/SEC1 key under
// application/pkcs8, a NUL after the csrattrs base64). Certificates come from the simulated CA
// (created once per process in a temporary directory); everything else is built in memory.
#include <gtest/gtest.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "estlab/ca/ca.hpp"
#include "estlab/conformance/judge.hpp"
#include "estlab/core/certs_only.hpp"
#include "estlab/core/csr.hpp"
#include "estlab/core/csrattrs.hpp"
#include "estlab/core/est.hpp"
#include "estlab/core/der.hpp"
#include "estlab/core/key.hpp"
#include "estlab/core/name.hpp"
#include "estlab/core/oids.hpp"
#include "estlab/core/server_key.hpp"
#include "estlab/core/tls.hpp"

namespace estlab::conformance {
namespace {

namespace fs = std::filesystem;

template <typename T>
T must(Result<T> result, const std::string& what) {
  if (!result.ok()) throw std::runtime_error(what + ": " + result.error().message);
  return std::move(result).value();
}

DistinguishedName dn(const std::string& text) { return must(DistinguishedName::parse(text), "name " + text); }

const PrivateKey& ec_key(int which) {
  static std::map<int, PrivateKey> keys;
  auto it = keys.find(which);
  if (it == keys.end()) it = keys.emplace(which, must(PrivateKey::generate(KeyType::ec_p256), "EC key")).first;
  return it->second;
}

const PrivateKey& rsa_key() {
  static const PrivateKey key = must(PrivateKey::generate(KeyType::rsa2048), "RSA key");
  return key;
}

Csr csr_for(const PrivateKey& key, const std::string& subject) {
  return must(CsrBuilder().subject(dn(subject)).sign(key), "CSR " + subject);
}

// The PKI the recorded answers come from: made once per test process.
struct Pki {
  fs::path dir;
  std::unique_ptr<ca::SimulatedCa> ca;
  std::vector<Certificate> three_tier;  // issuing CA, policy CA, root (as /cacerts sends them)
  Certificate root, policy, issuing;
  Certificate solo_root;                // a root that issues end-entity certificates itself
  Certificate leaf;                     // CN-only subject, from the issuing CA, key ec_key(1)
  Csr leaf_csr;                         // the CSR leaf answers
  Certificate solo_leaf;                // from solo_root, key ec_key(2)
  Csr solo_csr;
  Certificate twin_leaf;                // from a root with the issuing CA's very subject, key ec_key(3)
  Certificate server_key_leaf;          // serverkeygen: for ec_key(4)
  Certificate rsa_server_key_leaf;      // serverkeygen: for rsa_key()

  ~Pki() {
    ca.reset();
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }

  static const Pki& get() {
    static const Pki pki = make();
    return pki;
  }

 private:
  static Pki make() {
    auto dir = fs::temp_directory_path() / ("estlab-judge-test-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    ca::SimulatedCa::Options options;
    options.store_path = dir / "ca.sqlite";
    auto ca = must(ca::SimulatedCa::open(options), "open CA store");
    auto root = must(ca->create_root("root", dn("C=SE,O=judge test,CN=Judge Root CA"), KeyType::ec_p256), "root");
    auto policy = must(ca->create_subordinate("policy", "root", dn("C=SE,O=judge test,CN=Judge Policy CA"), KeyType::ec_p256,
                                              Seconds(5LL * 365 * 24 * 3600), 1),
                       "policy CA");
    auto issuing = must(ca->create_subordinate("issuing", "policy", dn("C=SE,O=judge test,CN=Judge Issuing CA"), KeyType::ec_p256,
                                               Seconds(5LL * 365 * 24 * 3600), 0),
                        "issuing CA");
    auto solo = must(ca->create_root("solo", dn("CN=Solo Root"), KeyType::ec_p256), "solo root");
    // Another CA whose subject is the issuing CA's: its certificates name the right issuer but
    // are not signed by the issuing CA's key.
    must(ca->create_root("twin", dn("C=SE,O=judge test,CN=Judge Issuing CA"), KeyType::ec_p256), "twin root");

    auto leaf_csr = csr_for(ec_key(1), "CN=device-7");
    auto leaf = must(ca->issue("issuing", leaf_csr, ca::CertificateProfile::device()), "leaf");
    auto solo_csr = csr_for(ec_key(2), "CN=solo-device");
    auto solo_leaf = must(ca->issue("solo", solo_csr, ca::CertificateProfile::device()), "solo leaf");
    auto twin_leaf = must(ca->issue("twin", csr_for(ec_key(3), "CN=device-7"), ca::CertificateProfile::device()), "twin leaf");
    auto skg = must(ca->issue_for_key("issuing", dn("CN=keygen-1"), ec_key(4).public_key(), {}, ca::CertificateProfile::device()),
                    "serverkeygen leaf");
    auto rsa_skg = must(ca->issue_for_key("issuing", dn("CN=keygen-rsa"), rsa_key().public_key(), {}, ca::CertificateProfile::device()),
                        "serverkeygen RSA leaf");
    auto three_tier = must(ca->chain("issuing"), "chain");
    return Pki{dir,   std::move(ca), three_tier, root, policy, issuing, solo, leaf, leaf_csr, solo_leaf, solo_csr, twin_leaf, skg,
               rsa_skg};
  }
};

std::string certs_only_body(const std::vector<Certificate>& certs) {
  return encode_est_body(must(CertsOnly::make(certs), "certs-only").der());
}

HttpResponse answer(int status, HttpHeaders headers = {}, std::string body = {}) {
  HttpResponse r;
  r.status = status;
  r.reason = status == 200 ? "OK" : "Whatever";
  r.headers = std::move(headers);
  r.body = std::move(body);
  return r;
}

Observation seen(HttpResponse response, std::optional<Csr> csr = std::nullopt) {
  Observation o;
  o.kind = Observation::Kind::response;
  o.response = std::move(response);
  o.csr = std::move(csr);
  return o;
}

Observation not_answered(Observation::Kind kind, std::string failure) {
  Observation o;
  o.kind = kind;
  o.failure = std::move(failure);
  return o;
}

// A context with a fake catalog: these rows have these levels, every other one is MUST.
JudgeContext context(std::string default_requirement = "7030-4.1.3-c", std::map<std::string, Level> levels = {}) {
  JudgeContext c;
  c.default_requirement = std::move(default_requirement);
  c.level_of = [levels](const std::string& requirement) {
    auto it = levels.find(requirement);
    return it == levels.end() ? Level::must : it->second;
  };
  return c;
}

const HttpHeaders kCertsOnly = {{"Content-Type", "application/pkcs7-mime; smime-type=certs-only"}};

// The checks that did not pass, one per line, for failure messages.
std::string describe(const Judgement& j) {
  std::string text;
  for (const auto& c : j.checks) text += std::string(to_string(c.verdict)) + " [" + c.level + " " + c.requirement + "] " + c.what + "\n";
  return text;
}

const CheckResult* find_check(const Judgement& j, const std::string& part) {
  for (const auto& c : j.checks)
    if (c.what.find(part) != std::string::npos) return &c;
  return nullptr;
}

// ---- /cacerts bags --------------------------------------------------------------------------------

TEST(JudgeCacerts, ThreeTierBagHoldsRootAndEnoughCertificates) {
  const auto& pki = Pki::get();
  ASSERT_EQ(pki.three_tier.size(), 3u);
  Expectation e;
  e.status = {200};
  e.media_type = "certs-only";
  e.contains_root = true;
  e.min_certificates = 3;
  auto j = judge(e, seen(answer(200, kCertsOnly, certs_only_body(pki.three_tier))), context());
  EXPECT_EQ(j.verdict(), Verdict::pass) << describe(j);
  EXPECT_EQ(j.certificates.size(), 3u);
  ASSERT_NE(find_check(j, "self-signed root"), nullptr) << describe(j);
  ASSERT_NE(find_check(j, "at least 3"), nullptr) << describe(j);
}

TEST(JudgeCacerts, BagWithoutRootFailsContainsRootAndMinCertificates) {
  const auto& pki = Pki::get();
  Expectation e;
  e.status = {200};
  e.contains_root = true;
  e.min_certificates = 3;
  // Only the two CA certificates below the root: no self-signed certificate, one too few.
  auto j = judge(e, seen(answer(200, kCertsOnly, certs_only_body({pki.issuing, pki.policy}))), context());
  EXPECT_EQ(j.verdict(), Verdict::fail) << describe(j);
  auto root = find_check(j, "self-signed root");
  ASSERT_NE(root, nullptr) << describe(j);
  EXPECT_EQ(root->verdict, Verdict::fail);
  auto count = find_check(j, "2 certificate(s), expected at least 3");
  ASSERT_NE(count, nullptr) << describe(j);
  EXPECT_EQ(count->verdict, Verdict::fail);
}

TEST(JudgeCacerts, OneCertificateBagOfARootThatIssuesDirectlyPasses) {
  const auto& pki = Pki::get();
  Expectation e;
  e.status = {200};
  e.media_type = "certs-only";
  e.contains_root = true;
  e.min_certificates = 1;
  e.certificate_count = 1;
  auto j = judge(e, seen(answer(200, kCertsOnly, certs_only_body({pki.solo_root}))), context());
  EXPECT_EQ(j.verdict(), Verdict::pass) << describe(j);
  ASSERT_TRUE(j.issued.has_value());
  EXPECT_EQ(*j.issued, pki.solo_root);
}

TEST(JudgeCacerts, Pkcs7MimeWithoutSmimeTypeIsPkcs7MimeButNotCertsOnly) {
  const auto& pki = Pki::get();
  const HttpHeaders libest = {{"Content-Type", "application/pkcs7-mime"}};
  const auto body = certs_only_body(pki.three_tier);
  Expectation loose;
  loose.status = {200};
  loose.media_type = "pkcs7-mime";
  loose.contains_root = true;
  auto j = judge(loose, seen(answer(200, libest, body)), context());
  EXPECT_EQ(j.verdict(), Verdict::pass) << describe(j);

  Expectation strict = loose;
  strict.media_type = "certs-only";
  auto k = judge(strict, seen(answer(200, libest, body)), context());
  EXPECT_EQ(k.verdict(), Verdict::fail) << describe(k);
  auto check = find_check(k, "Content-Type 'application/pkcs7-mime' is certs-only");
  ASSERT_NE(check, nullptr) << describe(k);
  EXPECT_EQ(check->verdict, Verdict::fail);
  // The certificates are still read (a capture needs them), and the root check still passes.
  EXPECT_EQ(k.certificates.size(), 3u);
  EXPECT_EQ(find_check(k, "self-signed root")->verdict, Verdict::pass);
}

TEST(JudgeCacerts, SmimeTypeMatchesCaseInsensitivelyWithQuotes) {
  const auto& pki = Pki::get();
  Expectation e;
  e.status = {200};
  e.media_type = "certs-only";
  auto j = judge(e, seen(answer(200, {{"content-type", "Application/PKCS7-MIME; smime-type=\"CERTS-ONLY\""}}, certs_only_body({pki.root}))),
                 context());
  EXPECT_EQ(j.verdict(), Verdict::pass) << describe(j);
}

// ---- issued certificates ------------------------------------------------------------------------

JudgeContext with_bag(const std::string& name, std::vector<Certificate> bag) {
  auto c = context("7030-4.1.3-d");
  c.bags[name] = std::move(bag);
  return c;
}

TEST(JudgeIssued, CertificateFromTheIssuingCaChainsToTheThreeTierBag) {
  const auto& pki = Pki::get();
  Expectation e;
  e.status = {200};
  e.issued_chains_to = "cacerts";
  auto j = judge(e, seen(answer(200, kCertsOnly, certs_only_body({pki.leaf})), pki.leaf_csr), with_bag("cacerts", pki.three_tier));
  EXPECT_EQ(j.verdict(), Verdict::pass) << describe(j);
  ASSERT_NE(find_check(j, "chains to a root of /cacerts"), nullptr) << describe(j);
}

TEST(JudgeIssued, CertificateOfARootThatIssuesDirectlyChainsToItsOneCertificateBag) {
  const auto& pki = Pki::get();
  Expectation e;
  e.status = {200};
  e.issued_chains_to = "cacerts";
  auto j = judge(e, seen(answer(200, kCertsOnly, certs_only_body({pki.solo_leaf})), pki.solo_csr), with_bag("cacerts", {pki.solo_root}));
  EXPECT_EQ(j.verdict(), Verdict::pass) << describe(j);
}

TEST(JudgeIssued, CertificateFromAnotherCaWithTheSameIssuerNameDoesNotChain) {
  const auto& pki = Pki::get();
  ASSERT_EQ(pki.twin_leaf.issuer(), pki.issuing.subject());  // the name alone would match
  Expectation e;
  e.status = {200};
  e.issued_chains_to = "cacerts";
  auto j = judge(e, seen(answer(200, kCertsOnly, certs_only_body({pki.twin_leaf}))), with_bag("cacerts", pki.three_tier));
  EXPECT_EQ(j.verdict(), Verdict::fail) << describe(j);
  auto check = find_check(j, "chains to a root of /cacerts");
  ASSERT_NE(check, nullptr) << describe(j);
  EXPECT_EQ(check->verdict, Verdict::fail);
  EXPECT_EQ(check->requirement, "7030-4.1.3-d");
  // The reason OpenSSL gave follows the claim.
  const auto colon = check->what.find("(7030-4.1.3-d): ");
  ASSERT_NE(colon, std::string::npos) << check->what;
  EXPECT_GT(check->what.size(), colon + 17) << check->what;
}

TEST(JudgeIssued, CertificateOfTheSoloRootDoesNotChainToTheThreeTierBag) {
  const auto& pki = Pki::get();
  Expectation e;
  e.issued_chains_to = "cacerts";
  auto j = judge(e, seen(answer(200, kCertsOnly, certs_only_body({pki.solo_leaf}))), with_bag("cacerts", pki.three_tier));
  auto check = find_check(j, "chains to a root of /cacerts");
  ASSERT_NE(check, nullptr) << describe(j);
  EXPECT_EQ(check->verdict, Verdict::fail);
  EXPECT_NE(check->what.find("issuer"), std::string::npos) << check->what;  // "unable to get local issuer certificate"
}

TEST(JudgeIssued, BagMissingThePolicyCaDoesNotCompleteTheChain) {
  const auto& pki = Pki::get();
  Expectation e;
  e.issued_chains_to = "cacerts";
  auto j = judge(e, seen(answer(200, kCertsOnly, certs_only_body({pki.leaf}))), with_bag("cacerts", {pki.issuing, pki.root}));
  EXPECT_EQ(j.verdict(), Verdict::fail) << describe(j);
}

TEST(JudgeIssued, NoCapturedBagIsAnErrorOfTheSuiteNotAFailure) {
  const auto& pki = Pki::get();
  Expectation e;
  e.issued_chains_to = "cacerts";
  auto j = judge(e, seen(answer(200, kCertsOnly, certs_only_body({pki.leaf}))), context());
  EXPECT_EQ(j.verdict(), Verdict::error) << describe(j);
  EXPECT_NE(find_check(j, "no captured /cacerts bag 'cacerts'"), nullptr) << describe(j);
}

TEST(JudgeIssued, CnOnlySubjectAndTheCsrPublicKey) {
  const auto& pki = Pki::get();
  Expectation e;
  e.status = {200};
  e.media_type = "certs-only";
  e.issued_subject = "CN=device-7";
  e.issued_common_name = "device-7";
  e.issued_public_key = "csr";
  e.certificate_count = 1;
  auto j = judge(e, seen(answer(200, kCertsOnly, certs_only_body({pki.leaf})), pki.leaf_csr), context("7030-4.2.3-a"));
  EXPECT_EQ(j.verdict(), Verdict::pass) << describe(j);

  // Another CSR's key: the certificate is not for the key the request carried.
  auto k = judge(e, seen(answer(200, kCertsOnly, certs_only_body({pki.leaf})), pki.solo_csr), context("7030-4.2.3-a"));
  auto check = find_check(k, "issued public key equals the CSR's");
  ASSERT_NE(check, nullptr) << describe(k);
  EXPECT_EQ(check->verdict, Verdict::fail);
  EXPECT_EQ(find_check(k, "issued subject")->verdict, Verdict::pass);

  // A subject with more than the CN is a different subject.
  Expectation longer = e;
  longer.issued_subject = "C=SE,CN=device-7";
  auto l = judge(longer, seen(answer(200, kCertsOnly, certs_only_body({pki.leaf})), pki.leaf_csr), context("7030-4.2.3-a"));
  EXPECT_EQ(find_check(l, "issued subject")->verdict, Verdict::fail) << describe(l);
}

TEST(JudgeIssued, TheCertificateForTheCsrKeyIsTheIssuedOneWhateverItsPlaceInTheBag) {
  const auto& pki = Pki::get();
  Expectation e;
  e.issued_public_key = "csr";
  e.issued_common_name = "device-7";
  // A server that sends the chain with the leaf last.
  auto j = judge(e, seen(answer(200, kCertsOnly, certs_only_body({pki.issuing, pki.policy, pki.leaf})), pki.leaf_csr), context());
  EXPECT_EQ(j.verdict(), Verdict::pass) << describe(j);
  ASSERT_TRUE(j.issued.has_value());
  EXPECT_EQ(*j.issued, pki.leaf);
}

// ---- refusals -----------------------------------------------------------------------------------

Expectation refusal() {
  Expectation e;
  e.refused = true;
  e.status = {401, 403};
  return e;
}

TEST(JudgeRefused, TlsAlertIsARefusalAndTheCheckSaysTheHandshakeFailed) {
  auto j = judge(refusal(), not_answered(Observation::Kind::refused_at_handshake, "tlsv13 alert certificate required"), context("7030-3.3.2-b"));
  EXPECT_EQ(j.verdict(), Verdict::pass) << describe(j);
  ASSERT_EQ(j.checks.size(), 1u);
  EXPECT_NE(j.checks[0].what.find("handshake failed"), std::string::npos) << j.checks[0].what;
  EXPECT_NE(j.checks[0].what.find("tlsv13 alert certificate required"), std::string::npos) << j.checks[0].what;
  EXPECT_EQ(j.checks[0].requirement, "7030-3.3.2-b");
}

TEST(JudgeRefused, ResetBeforeAnyAnswerIsARefusal) {
  auto j = judge(refusal(), not_answered(Observation::Kind::no_response, "connection reset by peer"), context("7030-3.3.2-b"));
  EXPECT_EQ(j.verdict(), Verdict::pass) << describe(j);
  ASSERT_EQ(j.checks.size(), 1u);
  EXPECT_EQ(j.checks[0].what.find("handshake"), std::string::npos) << j.checks[0].what;
}

TEST(JudgeRefused, HttpStatusesInAndOutOfTheExpectedSet) {
  auto forbidden = judge(refusal(), seen(answer(403, {{"Content-Type", "text/plain"}}, "forbidden")), context("7030-3.3.2-b"));
  EXPECT_EQ(forbidden.verdict(), Verdict::pass) << describe(forbidden);
  EXPECT_NE(find_check(forbidden, "refused with HTTP 403"), nullptr) << describe(forbidden);

  const auto enrolled = judge(refusal(), seen(answer(200, kCertsOnly, certs_only_body({Pki::get().leaf}))), context("7030-3.3.2-b"));
  EXPECT_EQ(enrolled.verdict(), Verdict::fail) << describe(enrolled);
  EXPECT_NE(enrolled.first_problem().find("not refused"), std::string::npos) << describe(enrolled);

  // A 400 is a 4xx, but the step narrowed the refusal to 401 or 403.
  auto bad_request = judge(refusal(), seen(answer(400)), context("7030-3.3.2-b"));
  EXPECT_EQ(bad_request.verdict(), Verdict::fail) << describe(bad_request);
  EXPECT_NE(bad_request.first_problem().find("status 400, expected 401 or 403"), std::string::npos) << describe(bad_request);

  // Not narrowed: any 4xx refuses.
  Expectation any = refusal();
  any.status.clear();
  EXPECT_EQ(judge(any, seen(answer(400)), context()).verdict(), Verdict::pass);
}

// 7030-4.1.2-b: a gateway that demands a client certificate in the handshake for /cacerts breaks a
// SHOULD NOT, not the MUST of 7030-4.1.2-a: with refusal_tolerated that is a warning, an answer
// still has to be 200, and a 500 still fails.
TEST(JudgeRefused, ToleratedRefusalWarnsButAWrongAnswerStillFails) {
  Expectation e;
  e.status = {200};
  e.refusal_tolerated = true;
  auto alert = judge(e, not_answered(Observation::Kind::refused_at_handshake, "tlsv13 alert certificate required"), context("7030-4.1.2-a"));
  EXPECT_EQ(alert.verdict(), Verdict::warn) << describe(alert);
  EXPECT_NE(alert.first_problem().find("certificate required"), std::string::npos) << describe(alert);
  EXPECT_EQ(judge(e, seen(answer(500)), context("7030-4.1.2-a")).verdict(), Verdict::fail);
  e.level = "info";
  EXPECT_EQ(judge(e, not_answered(Observation::Kind::no_response, "reset"), context("7030-4.1.2-a")).verdict(), Verdict::info);
}

TEST(JudgeRefused, NoAnswerWithoutRefusedFailsAtTheStepLevel) {
  Expectation e;
  e.status = {200};
  auto j = judge(e, not_answered(Observation::Kind::no_response, "timed out"), context("7030-4.1.2-a"));
  EXPECT_EQ(j.verdict(), Verdict::fail) << describe(j);
  EXPECT_NE(j.first_problem().find("no answer"), std::string::npos);

  auto alert = judge(e, not_answered(Observation::Kind::refused_at_handshake, "handshake failure"), context("7030-4.1.2-a"));
  EXPECT_EQ(alert.verdict(), Verdict::fail) << describe(alert);

  Expectation info = e;
  info.level = "info";
  auto i = judge(info, not_answered(Observation::Kind::no_response, "timed out"), context("7030-4.1.2-a"));
  EXPECT_EQ(i.verdict(), Verdict::info) << describe(i);
  ASSERT_EQ(i.checks.size(), 1u);
  EXPECT_EQ(i.checks[0].level, "info");

  // The catalog's level when the step names none.
  auto s = judge(e, not_answered(Observation::Kind::no_response, "timed out"), context("7030-4.1.2-a", {{"7030-4.1.2-a", Level::should}}));
  EXPECT_EQ(s.verdict(), Verdict::warn) << describe(s);
}

// ---- statuses, tolerated statuses and levels ----------------------------------------------------

TEST(JudgeStatus, ToleratedStatusWarnsAndAnOtherOneFails) {
  Expectation e;
  e.status = {415};
  e.tolerated_class = '4';
  auto tolerated = judge(e, seen(answer(400)), context("7030-3.2.4-a"));
  EXPECT_EQ(tolerated.verdict(), Verdict::warn) << describe(tolerated);
  EXPECT_NE(tolerated.first_problem().find("tolerated"), std::string::npos) << describe(tolerated);

  auto server_error = judge(e, seen(answer(500)), context("7030-3.2.4-a"));
  EXPECT_EQ(server_error.verdict(), Verdict::fail) << describe(server_error);

  auto right = judge(e, seen(answer(415)), context("7030-3.2.4-a"));
  EXPECT_EQ(right.verdict(), Verdict::pass) << describe(right);
}

TEST(JudgeStatus, StepLevelOverridesTheCatalog) {
  Expectation e;
  e.status = {200};
  e.level = "should";
  auto should = judge(e, seen(answer(500)), context("7030-4.1.2-a"));
  EXPECT_EQ(should.verdict(), Verdict::warn) << describe(should);
  EXPECT_EQ(should.checks.at(0).level, "SHOULD");

  e.level = "info";
  auto info = judge(e, seen(answer(500)), context("7030-4.1.2-a"));
  EXPECT_EQ(info.verdict(), Verdict::info) << describe(info);

  // "must" overrides a SHOULD row of the catalog.
  e.level = "must";
  auto strict = judge(e, seen(answer(500)), context("7030-4.1.2-a", {{"7030-4.1.2-a", Level::should}}));
  EXPECT_EQ(strict.verdict(), Verdict::fail) << describe(strict);
}

TEST(JudgeStatus, CatalogLevelsAndTheExpectationsRequirement) {
  const std::map<std::string, Level> catalog = {{"7030-4.5.2-b", Level::should}, {"7030-4.4.2-c", Level::info}};
  Expectation e;
  e.status = {200};
  // The scenario's first requirement is a SHOULD row.
  auto j = judge(e, seen(answer(404)), context("7030-4.5.2-b", catalog));
  EXPECT_EQ(j.verdict(), Verdict::warn) << describe(j);
  EXPECT_EQ(j.checks.at(0).requirement, "7030-4.5.2-b");
  EXPECT_EQ(j.checks.at(0).level, "SHOULD");

  // The expectation names another row: its level and its ID apply.
  e.requirement = "7030-4.4.2-c";
  auto k = judge(e, seen(answer(404)), context("7030-4.5.2-b", catalog));
  EXPECT_EQ(k.verdict(), Verdict::info) << describe(k);
  EXPECT_EQ(k.checks.at(0).requirement, "7030-4.4.2-c");

  // A row the catalog does not list is MUST.
  e.requirement = "7030-9.9-z";
  EXPECT_EQ(judge(e, seen(answer(404)), context("7030-4.5.2-b", catalog)).verdict(), Verdict::fail);
}

TEST(JudgeStatus, HeadersAreNotJudgedWhenAToleratedStatusCame) {
  Expectation e;
  e.status = {405};
  e.tolerated_class = '4';
  e.headers = {{"Allow", "~GET"}};
  auto tolerated = judge(e, seen(answer(400)), context("7030-3.2.2-c"));
  EXPECT_EQ(tolerated.verdict(), Verdict::warn) << describe(tolerated);
  ASSERT_EQ(tolerated.checks.size(), 1u) << describe(tolerated);
  EXPECT_EQ(find_check(tolerated, "Allow"), nullptr);

  auto right = judge(e, seen(answer(405, {{"Allow", "GET, HEAD"}})), context("7030-3.2.2-c"));
  EXPECT_EQ(right.verdict(), Verdict::pass) << describe(right);
  EXPECT_NE(find_check(right, "header Allow contains 'GET'"), nullptr) << describe(right);

  auto no_allow = judge(e, seen(answer(405)), context("7030-3.2.2-c"));
  EXPECT_EQ(no_allow.verdict(), Verdict::fail) << describe(no_allow);
}

TEST(JudgeStatus, A401WithoutAChallengeFailsEvenWhenExpected) {
  Expectation e;
  e.status = {401};
  auto bare = judge(e, seen(answer(401)), context("7030-3.2.3-b", {{"7030-3.2.3-b", Level::should}}));
  EXPECT_EQ(bare.verdict(), Verdict::fail) << describe(bare);
  auto check = find_check(bare, "WWW-Authenticate");
  ASSERT_NE(check, nullptr) << describe(bare);
  EXPECT_EQ(check->verdict, Verdict::fail);
  EXPECT_EQ(find_check(bare, "status 401, expected 401")->verdict, Verdict::pass);

  // Also when the step expects a refusal, and when the step's level is only info.
  Expectation refused = refusal();
  refused.level = "info";
  auto r = judge(refused, seen(answer(401)), context("7030-3.3.2-b"));
  EXPECT_EQ(r.verdict(), Verdict::fail) << describe(r);

  auto challenged = judge(e, seen(answer(401, {{"WWW-Authenticate", "Basic realm=\"x\""}})), context("7030-3.2.3-b"));
  EXPECT_EQ(challenged.verdict(), Verdict::pass) << describe(challenged);
  EXPECT_EQ(find_check(challenged, "WWW-Authenticate")->verdict, Verdict::pass);
}

// ---- /serverkeygen multipart --------------------------------------------------------------------

std::string boundary() {
  std::array<std::uint8_t, 16> random{};
  for (std::size_t i = 0; i < random.size(); ++i) random[i] = static_cast<std::uint8_t>(i * 17 + 3);
  return make_boundary(random);
}

HttpResponse multipart_answer(ByteView key_der, const Certificate& cert, bool with_boundary = true) {
  const auto b = boundary();
  const auto bag = must(CertsOnly::make({cert}), "certs-only");
  const auto body = make_multipart({make_est_part(media_types::pkcs8, key_der), make_est_part(media_types::certs_only, bag.der())}, b);
  return answer(200, {{"Content-Type", with_boundary ? "multipart/mixed; boundary=" + b : std::string("multipart/mixed")}}, body);
}

// The traditional DER of a key: PKCS#1 RSAPrivateKey or SEC1 ECPrivateKey (libest's key part).
Bytes traditional_der(const PrivateKey& key) {
  unsigned char* out = nullptr;
  const int n = i2d_PrivateKey(key.native(), &out);
  if (n <= 0) throw std::runtime_error("i2d_PrivateKey failed");
  Bytes der(out, out + n);
  OPENSSL_free(out);
  return der;
}

Expectation serverkeygen_expectation() {
  Expectation e;
  e.status = {200};
  e.media_type = "multipart";
  e.server_key_matches = true;
  e.issued_public_key = "not-csr";
  return e;
}

TEST(JudgeServerkeygen, Pkcs8KeyMatchingTheCertificatePasses) {
  const auto& pki = Pki::get();
  auto j = judge(serverkeygen_expectation(), seen(multipart_answer(ec_key(4).pkcs8_der(), pki.server_key_leaf), pki.leaf_csr),
                 context("7030-4.4.2-a"));
  EXPECT_EQ(j.verdict(), Verdict::pass) << describe(j);
  ASSERT_TRUE(j.server_key.has_value());
  EXPECT_EQ(j.server_key->public_key(), ec_key(4).public_key());
  EXPECT_NE(find_check(j, "server-generated PKCS#8 key matches"), nullptr) << describe(j);
}

TEST(JudgeServerkeygen, Pkcs8KeyOfAnotherCertificateFails) {
  const auto& pki = Pki::get();
  auto j = judge(serverkeygen_expectation(), seen(multipart_answer(ec_key(2).pkcs8_der(), pki.server_key_leaf), pki.leaf_csr),
                 context("7030-4.4.2-a"));
  EXPECT_EQ(j.verdict(), Verdict::fail) << describe(j);
  EXPECT_EQ(find_check(j, "server-generated PKCS#8 key matches")->verdict, Verdict::fail);
}

TEST(JudgeServerkeygen, Pkcs1RsaKeyUnderApplicationPkcs8Fails) {
  const auto& pki = Pki::get();
  const auto der = traditional_der(rsa_key());
  ASSERT_FALSE(PrivateKey::from_pkcs8_der(der).ok());  // really not PKCS#8
  auto j = judge(serverkeygen_expectation(), seen(multipart_answer(der, pki.rsa_server_key_leaf), pki.leaf_csr), context("7030-4.4.2-a"));
  EXPECT_EQ(j.verdict(), Verdict::fail) << describe(j);
  EXPECT_FALSE(j.server_key.has_value());
  auto check = find_check(j, "server-generated PKCS#8 key");
  ASSERT_NE(check, nullptr) << describe(j);
  EXPECT_EQ(check->verdict, Verdict::fail);
  EXPECT_NE(check->what.find("PKCS#1/SEC1"), std::string::npos) << check->what;
}

TEST(JudgeServerkeygen, Sec1EcKeyUnderApplicationPkcs8Fails) {
  const auto& pki = Pki::get();
  const auto der = traditional_der(ec_key(4));
  ASSERT_FALSE(PrivateKey::from_pkcs8_der(der).ok());
  auto j = judge(serverkeygen_expectation(), seen(multipart_answer(der, pki.server_key_leaf), pki.leaf_csr), context("7030-4.4.2-a"));
  EXPECT_EQ(j.verdict(), Verdict::fail) << describe(j);
  auto check = find_check(j, "server-generated PKCS#8 key");
  ASSERT_NE(check, nullptr) << describe(j);
  EXPECT_NE(check->what.find("PKCS#1/SEC1"), std::string::npos) << check->what;
  // The certificate part was fine: only the key check fails.
  EXPECT_EQ(find_check(j, "Content-Type")->verdict, Verdict::pass);
}

TEST(JudgeServerkeygen, MultipartWithoutBoundaryFails) {
  const auto& pki = Pki::get();
  auto j = judge(serverkeygen_expectation(), seen(multipart_answer(ec_key(4).pkcs8_der(), pki.server_key_leaf, false), pki.leaf_csr),
                 context("7030-4.4.2-a"));
  EXPECT_EQ(j.verdict(), Verdict::fail) << describe(j);
  EXPECT_EQ(find_check(j, "Content-Type 'multipart/mixed' is multipart")->verdict, Verdict::fail) << describe(j);
  EXPECT_FALSE(j.extract_problem.empty());
  EXPECT_FALSE(j.server_key.has_value());
}

TEST(JudgeServerkeygen, IssuedKeyEqualToTheCsrKeyFailsNotCsr) {
  const auto& pki = Pki::get();
  // The server certified the client's CSR key instead of the key it generated.
  auto csr = csr_for(ec_key(4), "CN=keygen-1");
  auto j = judge(serverkeygen_expectation(), seen(multipart_answer(ec_key(4).pkcs8_der(), pki.server_key_leaf), csr), context("7030-4.4.2-a"));
  EXPECT_EQ(find_check(j, "issued public key differs from the CSR's")->verdict, Verdict::fail) << describe(j);
  EXPECT_EQ(find_check(j, "server-generated PKCS#8 key matches")->verdict, Verdict::pass) << describe(j);
}

// ---- /serverkeygen with an encrypted key (7030-4.4.2-c) --------------------------------------------

// A CSR asking for an encrypted key, listing `capabilities`.
Csr encrypting_csr(const std::vector<std::string>& capabilities) {
  return must(CsrBuilder()
                  .subject(dn("CN=skg"))
                  .add_attribute(std::string(oid::smime_capabilities), encode_smime_capabilities(capabilities))
                  .add_attribute(std::string(oid::asymmetric_decrypt_key_identifier), der::encode_octet_string(key_identifier(Pki::get().leaf)))
                  .sign(ec_key(1)),
              "encrypting CSR");
}

HttpResponse encrypted_answer(ByteView key_part, std::string_view key_type, const Certificate& cert) {
  const auto b = boundary();
  const auto bag = must(CertsOnly::make({cert}), "certs-only");
  const auto body = make_multipart({make_est_part(key_type, key_part), make_est_part(media_types::certs_only, bag.der())}, b);
  return answer(200, {{"Content-Type", "multipart/mixed; boundary=" + b}}, body);
}

// The key ec_key(4) of server_key_leaf, enveloped to `recipient` as a server following RFC 7030 4.4.2 would.
Bytes enveloped_key(const Certificate& recipient, const std::vector<std::string>& capabilities) {
  const auto& pki = Pki::get();
  return must(envelope_server_key(ec_key(4), ec_key(2), pki.solo_leaf, recipient, capabilities), "envelope");
}

Observation encrypted_seen(HttpResponse response, Csr csr, bool with_identity = true) {
  Observation o = seen(std::move(response), std::move(csr));
  if (with_identity) o.client_identity = TlsIdentity{ec_key(1), Pki::get().leaf, {}};
  return o;
}

Expectation encrypted_expectation() {
  Expectation e = serverkeygen_expectation();
  e.server_key_encrypted = true;
  return e;
}

TEST(JudgeServerkeygenEncrypted, EnvelopedKeyThatOpensWithTheClientKeyPasses) {
  const auto& pki = Pki::get();
  const auto caps = default_smime_capabilities();
  auto j = judge(encrypted_expectation(),
                 encrypted_seen(encrypted_answer(enveloped_key(pki.leaf, caps), media_types::server_generated_key, pki.server_key_leaf),
                                encrypting_csr(caps)),
                 context("7030-4.4.2-c"));
  EXPECT_EQ(j.verdict(), Verdict::pass) << describe(j);
  ASSERT_TRUE(j.server_key.has_value());
  EXPECT_EQ(j.server_key->public_key(), ec_key(4).public_key());
  EXPECT_EQ(find_check(j, "kari version 3")->verdict, Verdict::pass) << describe(j);
  EXPECT_EQ(find_check(j, "id-ct-KP-aKeyPackage")->verdict, Verdict::pass) << describe(j);
}

TEST(JudgeServerkeygenEncrypted, PlainPkcs8WhereAnEncryptedKeyWasAskedFails) {
  const auto& pki = Pki::get();
  auto j = judge(encrypted_expectation(),
                 encrypted_seen(encrypted_answer(ec_key(4).pkcs8_der(), media_types::pkcs8, pki.server_key_leaf),
                                encrypting_csr(default_smime_capabilities())),
                 context("7030-4.4.2-c"));
  EXPECT_EQ(j.verdict(), Verdict::fail) << describe(j);
  EXPECT_EQ(find_check(j, "smime-type=server-generated-key")->verdict, Verdict::fail);
}

TEST(JudgeServerkeygenEncrypted, AKeyWrapTheCsrDidNotListFails) {
  const auto& pki = Pki::get();
  // The server wrapped with AES-256, the client listed only AES-128.
  const std::vector<std::string> listed = {std::string(oid::aes128_cbc), std::string(oid::aes128_wrap), std::string(oid::ecdh_std_sha1kdf)};
  auto j = judge(encrypted_expectation(),
                 encrypted_seen(encrypted_answer(enveloped_key(pki.leaf, default_smime_capabilities()), media_types::server_generated_key,
                                                 pki.server_key_leaf),
                                encrypting_csr(listed)),
                 context("7030-4.4.2-c"));
  EXPECT_EQ(j.verdict(), Verdict::fail) << describe(j);
  EXPECT_EQ(find_check(j, "is one the CSR listed")->verdict, Verdict::fail) << describe(j);
}

TEST(JudgeServerkeygenEncrypted, KeyEncryptedToAnotherCertificateFails) {
  const auto& pki = Pki::get();
  const auto caps = default_smime_capabilities();
  auto j = judge(encrypted_expectation(),
                 encrypted_seen(encrypted_answer(enveloped_key(pki.solo_leaf, caps), media_types::server_generated_key, pki.server_key_leaf),
                                encrypting_csr(caps)),
                 context("7030-4.4.2-c"));
  EXPECT_EQ(j.verdict(), Verdict::fail) << describe(j);
  EXPECT_NE(find_check(j, "does not decrypt with the client's key"), nullptr) << describe(j);
}

TEST(JudgeServerkeygenEncrypted, WithoutAClientIdentityNothingCanBeOpened) {
  const auto& pki = Pki::get();
  const auto caps = default_smime_capabilities();
  auto j = judge(encrypted_expectation(),
                 encrypted_seen(encrypted_answer(enveloped_key(pki.leaf, caps), media_types::server_generated_key, pki.server_key_leaf),
                                encrypting_csr(caps), false),
                 context("7030-4.4.2-c"));
  EXPECT_EQ(j.verdict(), Verdict::error) << describe(j);
}

// ---- /csrattrs ----------------------------------------------------------------------------------

Bytes csrattrs_der() {
  return must(CsrAttrsBuilder().add_oid("challengePassword").require_ec_curve("secp384r1").build(), "csrattrs").der();
}

TEST(JudgeCsrattrs, KeyTypeIsTheOneTheAttributesAskFor) {
  Expectation e;
  e.status = {200};
  e.csrattrs_key_type = "ec-p384";
  const HttpHeaders type = {{"Content-Type", "application/csrattrs"}};
  EXPECT_EQ(judge(e, seen(answer(200, type, encode_est_body(csrattrs_der()))), context("7030-4.5.2-d")).verdict(), Verdict::pass);
  const auto p256 = must(CsrAttrsBuilder().require_ec_curve("prime256v1").build(), "csrattrs").der();
  auto j = judge(e, seen(answer(200, type, encode_est_body(p256))), context("7030-4.5.2-d"));
  EXPECT_EQ(j.verdict(), Verdict::fail) << describe(j);
  EXPECT_NE(find_check(j, "found ec-p256"), nullptr) << describe(j);
  const auto none = must(CsrAttrsBuilder().add_oid("challengePassword").build(), "csrattrs").der();
  auto k = judge(e, seen(answer(200, type, encode_est_body(none))), context("7030-4.5.2-d"));
  EXPECT_EQ(k.verdict(), Verdict::fail) << describe(k);
  EXPECT_NE(find_check(k, "found none"), nullptr) << describe(k);
}

TEST(JudgeCsrattrs, ValidDerPassesAndATrailingNulFails) {
  Expectation e;
  e.status = {200};
  e.media_type = "csrattrs";
  e.csrattrs_valid = true;
  e.csrattrs_contains = {"challengePassword"};
  const HttpHeaders type = {{"Content-Type", "application/csrattrs"}};
  auto j = judge(e, seen(answer(200, type, encode_est_body(csrattrs_der()))), context("7030-4.5.2-b"));
  EXPECT_EQ(j.verdict(), Verdict::pass) << describe(j);
  EXPECT_NE(find_check(j, "(2 entries)"), nullptr) << describe(j);

  // libest 3.2.0: a NUL byte after the base64.
  auto with_nul = encode_est_body(csrattrs_der());
  with_nul.push_back('\0');
  auto k = judge(e, seen(answer(200, type, with_nul)), context("7030-4.5.2-b"));
  EXPECT_EQ(k.verdict(), Verdict::fail) << describe(k);
  EXPECT_EQ(find_check(k, "the body is base64 of a DER CsrAttrs")->verdict, Verdict::fail);
  EXPECT_EQ(find_check(k, "Content-Type")->verdict, Verdict::pass);
}

TEST(JudgeCsrattrs, NoneAvailableAnswersHaveNoMediaTypeToJudge) {
  Expectation e;
  e.status = {200, 204, 404};
  e.media_type = "csrattrs";
  e.csrattrs_valid = true;
  auto no_content = judge(e, seen(answer(204)), context("7030-4.5.2-a"));
  EXPECT_EQ(no_content.verdict(), Verdict::pass) << describe(no_content);
  EXPECT_EQ(find_check(no_content, "Content-Type"), nullptr);

  auto not_found = judge(e, seen(answer(404, {{"Content-Type", "text/html"}}, "<h1>Not Found</h1>")), context("7030-4.5.2-a"));
  EXPECT_EQ(not_found.verdict(), Verdict::pass) << describe(not_found);

  // A 200 with a body still has to be application/csrattrs.
  auto wrong = judge(e, seen(answer(200, {{"Content-Type", "application/octet-stream"}}, encode_est_body(csrattrs_der()))), context("7030-4.5.2-a"));
  EXPECT_EQ(wrong.verdict(), Verdict::fail) << describe(wrong);
}


// RFC 9908's shape: a modern answer passes all three rows; RFC 7030's own inline example (a bare
// OID inside extensionRequest) warns under csrattrs-3.2-a; a signature scheme sent as an attribute
// warns under the SHOULD row 7030-4.5.2-f; two key types fail csrattrs-3.2-b.
TEST(JudgeCsrattrs, ShapeChecksSpeakForTheirOwnRows) {
  Expectation e;
  e.status = {200, 204, 404};
  e.csrattrs_lint = true;
  const HttpHeaders type = {{"Content-Type", "application/csrattrs"}};
  const auto ctx = context("csrattrs-3.2-a", {{"7030-4.5.2-f", Level::should}});
  auto modern = parse_csrattrs_spec("ecdsa-with-SHA256, id-ecPublicKey=prime256v1, extensionRequest=ext(subjectAltName)");
  ASSERT_TRUE(modern.ok());
  auto j = judge(e, seen(answer(200, type, encode_est_body(modern->der()))), ctx);
  EXPECT_EQ(j.verdict(), Verdict::pass) << describe(j);
  for (const char* row : {"csrattrs-3.2-a", "csrattrs-3.2-b", "7030-4.5.2-f"})
    EXPECT_TRUE(std::any_of(j.checks.begin(), j.checks.end(), [&](const CheckResult& c) { return c.requirement == row; })) << row;

  auto legacy = CsrAttrs::parse(as_bytes(std::string_view(
      "MEEGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAiMBYGCSqGSIb3DQEJDjEJBgcrBgEBAQEWBggqhkjOPQQDAw==")));
  ASSERT_TRUE(legacy.ok());
  auto k = judge(e, seen(answer(200, type, encode_est_body(legacy->der()))), ctx);
  EXPECT_EQ(k.verdict(), Verdict::warn) << describe(k);
  EXPECT_EQ(find_check(k, "legacy RFC 7030 form")->requirement, "csrattrs-3.2-a");

  auto broken = parse_csrattrs_spec("id-ecPublicKey=prime256v1, rsaEncryption=2048");
  ASSERT_TRUE(broken.ok());
  auto f = judge(e, seen(answer(200, type, encode_est_body(broken->der()))), ctx);
  EXPECT_EQ(f.verdict(), Verdict::fail) << describe(f);
  EXPECT_EQ(find_check(f, "2 key-type attributes")->requirement, "csrattrs-3.2-b");

  auto none = judge(e, seen(answer(204)), ctx);
  EXPECT_EQ(none.verdict(), Verdict::pass) << "no attributes, nothing to lint";
}

// A tolerated status is better than an intolerable one, whatever the step's level
// (a tolerated status warns at most, and is info where the step is info).
TEST(JudgeStatus, ToleratedStatusIsNeverWorseThanAnUntoleratedOne) {
  Expectation e;
  e.status = {415};
  e.tolerated_class = '4';
  e.level = "info";
  const auto tolerated = judge(e, seen(answer(400)), context()).verdict();
  const auto intolerable = judge(e, seen(answer(500)), context()).verdict();
  EXPECT_LE(severity(tolerated), severity(intolerable)) << to_string(tolerated) << " vs " << to_string(intolerable);
}


// A /serverkeygen certificate part that also carries the issuing CA, CA first: the certificate for
// the server-generated key is the issued one, as the CSR's key picks it out of a certs-only answer
// (judge.cpp:102-129 take the multipart's first certificate as issued).
TEST(JudgeServerkeygen, TheCertificateForTheServerKeyIsTheIssuedOneWhateverItsPlace) {
  const auto& pki = Pki::get();
  const auto b = boundary();
  const auto bag = must(CertsOnly::make({pki.issuing, pki.server_key_leaf}), "certs-only");
  const auto body =
      make_multipart({make_est_part(media_types::pkcs8, ec_key(4).pkcs8_der()), make_est_part(media_types::certs_only, bag.der())}, b);
  auto j = judge(serverkeygen_expectation(), seen(answer(200, {{"Content-Type", "multipart/mixed; boundary=" + b}}, body), pki.leaf_csr),
                 context("7030-4.4.2-a"));
  ASSERT_TRUE(j.issued.has_value());
  EXPECT_EQ(*j.issued, pki.server_key_leaf);
  EXPECT_EQ(find_check(j, "server-generated PKCS#8 key matches")->verdict, Verdict::pass) << describe(j);
}

// ---- RFC 5280 certificate checks (issued: and server_certificate:) ---------------------------------

CertificateChecks end_entity_lint() {
  CertificateChecks c;
  c.validity = "within-ca";
  c.valid_now = true;
  c.version = 3;
  c.key_usage_absent = {"keyCertSign"};
  c.basic_constraints_ca = false;
  c.signature_algorithm = "strong";
  return c;
}

TEST(JudgeCertificateChecks, AnEndEntityInsideItsCaPassesTheLint) {
  const auto& pki = Pki::get();
  Expectation e;
  e.status = {200};
  e.issued_profile = end_entity_lint();
  e.issued_profile.key_usage = {"digitalSignature"};
  auto c = context("7030-4.2.3-a");
  c.bags["ca"] = pki.three_tier;
  auto j = judge(e, seen(answer(200, kCertsOnly, certs_only_body({pki.leaf})), pki.leaf_csr), c);
  EXPECT_EQ(j.verdict(), Verdict::pass) << describe(j);
  EXPECT_EQ(j.checks.size(), 8u) << describe(j);  // the status and seven certificate checks
  ASSERT_NE(find_check(j, "lies within its CA's"), nullptr) << describe(j);
  ASSERT_NE(find_check(j, "Judge Issuing CA"), nullptr) << "the CA compared with is the issuer, not the root\n" << describe(j);
}

TEST(JudgeCertificateChecks, ABrokenCaFailsEachCheckItBreaks) {
  const auto& pki = Pki::get();
  // SHA-1 signed, and starting before the issuing CA does.
  ca::IssueOverrides broken;
  broken.signature_digest = "SHA1";
  broken.not_before = pki.issuing.not_before() - std::chrono::hours(48);
  auto csr = csr_for(ec_key(5), "CN=broken-ca-device");
  auto sha1 = must(pki.ca->issue("issuing", csr, ca::CertificateProfile::device(), broken), "SHA-1 leaf");
  Expectation e;
  e.status = {200};
  e.issued_profile = end_entity_lint();
  auto c = context("7030-4.2.3-a");
  c.bags["ca"] = pki.three_tier;
  auto j = judge(e, seen(answer(200, kCertsOnly, certs_only_body({sha1})), csr), c);
  EXPECT_EQ(j.verdict(), Verdict::fail) << describe(j);
  EXPECT_EQ(find_check(j, "lies within its CA's")->verdict, Verdict::fail) << describe(j);
  EXPECT_EQ(find_check(j, "ecdsa-with-SHA1 is not MD5 or SHA-1 based")->verdict, Verdict::fail) << describe(j);
  EXPECT_EQ(find_check(j, "is not a CA")->verdict, Verdict::pass) << describe(j);

  // A CA certificate handed out as the issued one: keyCertSign and cA TRUE fail, its validity
  // inside its own issuer's (found in the bag) passes.
  auto ca_as_issued = judge(e, seen(answer(200, kCertsOnly, certs_only_body({pki.issuing}))), c);
  EXPECT_EQ(find_check(ca_as_issued, "lacks keyCertSign")->verdict, Verdict::fail) << describe(ca_as_issued);
  EXPECT_EQ(find_check(ca_as_issued, "is not a CA")->verdict, Verdict::fail) << describe(ca_as_issued);
  EXPECT_EQ(find_check(ca_as_issued, "lies within its CA's")->verdict, Verdict::pass) << describe(ca_as_issued);
  EXPECT_EQ(find_check(ca_as_issued, "signature algorithm")->verdict, Verdict::pass) << describe(ca_as_issued);
}

TEST(JudgeCertificateChecks, WithoutTheIssuerValidityWithinCaCannotBeJudged) {
  const auto& pki = Pki::get();
  Expectation e;
  e.status = {200};
  e.issued_profile.validity = "within-ca";
  // No bag, no trust anchors, and the answer holds the leaf alone: an error, never a pass.
  auto j = judge(e, seen(answer(200, kCertsOnly, certs_only_body({pki.leaf})), pki.leaf_csr), context("7030-4.2.3-a"));
  EXPECT_EQ(j.verdict(), Verdict::error) << describe(j);
  // The issuer sent along in the answer is enough.
  auto with_chain = judge(e, seen(answer(200, kCertsOnly, certs_only_body({pki.leaf, pki.issuing})), pki.leaf_csr), context("7030-4.2.3-a"));
  EXPECT_EQ(with_chain.verdict(), Verdict::pass) << describe(with_chain);
}

TEST(JudgeCertificateChecks, PermitsMeansAbsentOrHolding) {
  const auto& pki = Pki::get();
  TlsConnectionInfo tls;
  tls.peer_chain = {pki.leaf, pki.issuing, pki.policy};
  Expectation e;
  e.server_certificate = CertificateChecks{};
  e.server_certificate->eku_permits = {"serverAuth"};
  e.server_certificate->key_usage_permits = {"digitalSignature"};
  auto j = judge_connection(e, tls, context("7030-3.3.1-b"));
  // The device profile's leaf: EKU clientAuth only, keyUsage digitalSignature.
  EXPECT_EQ(find_check(j, "permits serverAuth")->verdict, Verdict::fail) << describe(j);
  EXPECT_EQ(find_check(j, "permits digitalSignature")->verdict, Verdict::pass) << describe(j);
  // The root has no extendedKeyUsage: any purpose.
  tls.peer_chain = {pki.root};
  auto root = judge_connection(e, tls, context("7030-3.3.1-b"));
  EXPECT_EQ(find_check(root, "permits serverAuth")->verdict, Verdict::pass) << describe(root);
}

// ---- the TLS connection (connect steps, and send steps on their connection) -----------------------

TEST(JudgeConnection, ServerChainMustValidateToTheTargetsAnchorsAndCarryTheName) {
  const auto& pki = Pki::get();
  TlsConnectionInfo tls;
  tls.peer_chain = {pki.leaf, pki.issuing, pki.policy};
  Expectation e;
  e.server_certificate = CertificateChecks{};
  e.server_certificate->chains_to = "trust-anchors";
  auto c = context("7030-3.3-c");
  c.trust_anchors = {pki.root};
  auto j = judge_connection(e, tls, c);
  EXPECT_EQ(j.verdict(), Verdict::pass) << describe(j);
  // Another root: the same chain does not validate.
  c.trust_anchors = {pki.solo_root};
  auto other = judge_connection(e, tls, c);
  EXPECT_EQ(other.verdict(), Verdict::fail) << describe(other);
  // The intermediates are the ones the server sent: without them there is no path.
  c.trust_anchors = {pki.root};
  tls.peer_chain = {pki.leaf};
  EXPECT_EQ(judge_connection(e, tls, c).verdict(), Verdict::fail);
  // The leaf's only name is its CN, which does not count (RFC 6125: the SAN).
  e.server_certificate = CertificateChecks{};
  e.server_certificate->name = "device-7";
  auto named = judge_connection(e, tls, c);
  EXPECT_EQ(named.verdict(), Verdict::fail) << describe(named);
  // No certificate at all fails even the empty server_certificate check.
  e.server_certificate = CertificateChecks{};
  tls.peer_chain.clear();
  auto none = judge_connection(e, tls, c);
  EXPECT_EQ(none.verdict(), Verdict::fail) << describe(none);
  ASSERT_NE(find_check(none, "presented no certificate"), nullptr) << describe(none);
}

TEST(JudgeConnection, ResumptionRenegotiationAndHelloRequestsAtTheRowsLevel) {
  TlsConnectionInfo tls;
  tls.version = TlsVersion::tls1_2;
  tls.cipher = "ECDHE-ECDSA-AES128-GCM-SHA256";
  Expectation e;
  e.resumed = true;
  // 7030-3.3-d is a SHOULD: a full handshake warns.
  auto full = judge_connection(e, tls, context("7030-3.3-d", {{"7030-3.3-d", Level::should}}));
  EXPECT_EQ(full.verdict(), Verdict::warn) << describe(full);
  tls.resumed = true;
  EXPECT_EQ(judge_connection(e, tls, context("7030-3.3-d", {{"7030-3.3-d", Level::should}})).verdict(), Verdict::pass);
  e.resumed = false;
  EXPECT_EQ(judge_connection(e, tls, context("7030-3.3-d")).verdict(), Verdict::fail);

  Expectation reneg;
  reneg.secure_renegotiation = true;
  reneg.renegotiation_requested = false;
  tls.secure_renegotiation = true;
  EXPECT_EQ(judge_connection(reneg, tls, context("7030-3.5-e")).verdict(), Verdict::pass);
  tls.secure_renegotiation = false;
  auto insecure = judge_connection(reneg, tls, context("7030-3.5-e"));
  EXPECT_EQ(find_check(insecure, "RFC 5746")->verdict, Verdict::fail) << describe(insecure);
  tls.secure_renegotiation = true;
  tls.hello_requests = 1;
  auto hello = judge_connection(reneg, tls, context("7030-3.5-e"));
  EXPECT_EQ(find_check(hello, "HelloRequest")->verdict, Verdict::fail) << describe(hello);

  // A send step judges the connection its answer came on the same way.
  Observation o = seen(answer(200));
  o.tls = tls;
  auto on_send = judge(reneg, o, context("7030-3.5-e"));
  EXPECT_EQ(on_send.verdict(), Verdict::fail) << describe(on_send);
  // An answer without TLS cannot satisfy a TLS check.
  EXPECT_EQ(judge(reneg, seen(answer(200)), context("7030-3.5-e")).verdict(), Verdict::fail);
}

}  // namespace
}  // namespace estlab::conformance

// ---- field bugs (shared/spec/field-bugs.md) -----------------------------------------------------

namespace estlab::conformance {
namespace {

Expectation error_text_expectation() {
  Expectation e;
  e.status_class = '4';
  e.error_text = true;
  return e;
}

// FB-04, FB-18, FB-24: an error a person can read.
TEST(JudgeFieldBugs, ErrorTextIsNonEmptyReadableTextOrACmcResponse) {
  const auto judged = [](HttpResponse response) {
    auto j = judge(error_text_expectation(), seen(std::move(response)), context("7030-4.2.3-c"));
    const auto* check = find_check(j, "the error body is readable text");
    return check ? check->verdict : Verdict::error;
  };
  EXPECT_EQ(judged(answer(400, {{"Content-Type", "text/plain; charset=utf-8"}}, "the body is PEM; send base64 DER\n")), Verdict::pass);
  EXPECT_EQ(judged(answer(400, {}, "invalid base64 encoding")), Verdict::pass);  // no Content-Type: text (RFC 8951 5.1)
  EXPECT_EQ(judged(answer(400, {{"Content-Type", "text/plain"}}, "")), Verdict::fail);          // the empty 400 of FB-04
  EXPECT_EQ(judged(answer(403, {{"Content-Type", "text/plain"}}, " \r\n")), Verdict::fail);     // blanks say nothing
  EXPECT_EQ(judged(answer(400, {{"Content-Type", "text/plain"}}, std::string("\x30\x03\x02\x01\x00", 5))), Verdict::fail);
  EXPECT_EQ(judged(answer(400, {{"Content-Type", "application/octet-stream"}}, "invalid")), Verdict::fail);
  // Only errors are judged: a 2xx is not an error body, whatever it holds.
  auto ok = judge(error_text_expectation(), seen(answer(200, kCertsOnly, "")), context("7030-4.2.3-c"));
  EXPECT_EQ(find_check(ok, "the error body"), nullptr) << describe(ok);
}

// The DER of `body`'s ContentInfo, its SignedData, rebuilt: SignedData fields `edit`ed.
std::string signed_data_variant(const std::string& body, bool keep_content_info, int version) {
  const Bytes der = must(decode_est_body(body, std::nullopt), "body");
  const auto info = must(der::read_single(der, der::kSequence, "ContentInfo"), "ContentInfo");
  der::Reader fields(info.content);
  const auto type = must(fields.expect(der::kOid, "contentType"), "contentType");
  const auto wrapped = must(fields.expect(0xa0, "content"), "content");
  const auto signed_data = must(der::read_single(wrapped.content, der::kSequence, "SignedData"), "SignedData");
  Bytes content(signed_data.content.begin(), signed_data.content.end());
  content.at(2) = static_cast<std::uint8_t>(version);  // 02 01 <version>
  const Bytes rebuilt = der::encode_sequence(content);
  if (!keep_content_info) return encode_est_body(rebuilt);
  Bytes info_content(type.whole.begin(), type.whole.end());
  der::append(info_content, der::encode_tlv(0xa0, rebuilt));
  return encode_est_body(der::encode_sequence(info_content));
}

// FB-08: the whole certs-only stack, not only "some certificates could be read".
TEST(JudgeFieldBugs, CertsOnlyStructureNeedsBase64ContentInfoAndSignedDataVersion1) {
  const auto& pki = Pki::get();
  Expectation e;
  e.status = {200};
  e.certs_only_structure = true;
  const auto body = certs_only_body({pki.leaf});
  const auto judged = [&](std::string b) {
    auto j = judge(e, seen(answer(200, kCertsOnly, std::move(b))), context("7030-4.1.3-b"));
    const auto* check = find_check(j, "certs-only SignedData version 1");
    return check ? check->what + (check->verdict == Verdict::pass ? " => pass" : " => FAILED") : std::string("no check");
  };
  EXPECT_NE(judged(body).find("=> pass"), std::string::npos) << judged(body);
  EXPECT_NE(judged(signed_data_variant(body, true, 1)).find("=> pass"), std::string::npos);  // the rebuild itself is faithful
  const Bytes der = must(decode_est_body(body, std::nullopt), "body");
  const auto binary = judged(std::string(der.begin(), der.end()));
  EXPECT_NE(binary.find("not base64 text"), std::string::npos) << binary;
  const auto bare = judged(signed_data_variant(body, false, 4));
  EXPECT_NE(bare.find("no ContentInfo"), std::string::npos) << bare;
  const auto v4 = judged(signed_data_variant(body, true, 4));
  EXPECT_NE(v4.find("version is 4"), std::string::npos) << v4;
  EXPECT_NE(v4.find("FAILED"), std::string::npos) << v4;
}

// FB-11: a real parse with the boundary parameter, parts counted; a body that merely mentions both
// media types is not enough.
TEST(JudgeFieldBugs, MultipartPartsNeedTheBoundaryAndTheExactCount) {
  const auto& pki = Pki::get();
  Expectation e;
  e.status = {200};
  e.multipart_parts = 2;
  const auto judged = [&](HttpResponse response) {
    auto j = judge(e, seen(std::move(response), pki.leaf_csr), context("7030-4.4.2-a"));
    const auto* check = find_check(j, "multipart/mixed with a boundary");
    return check ? check->what + (check->verdict == Verdict::pass ? " => pass" : " => FAILED") : std::string("no check");
  };
  const auto good = multipart_answer(ec_key(4).pkcs8_der(), pki.server_key_leaf);
  EXPECT_NE(judged(good).find("=> pass"), std::string::npos) << judged(good);
  const auto no_boundary = judged(multipart_answer(ec_key(4).pkcs8_der(), pki.server_key_leaf, false));
  EXPECT_NE(no_boundary.find("FAILED"), std::string::npos) << no_boundary;
  auto other = good;
  other.headers = {{"Content-Type", "multipart/mixed; boundary=not-in-the-body"}};
  const auto absent = judged(other);
  EXPECT_NE(absent.find("does not occur in the body"), std::string::npos) << absent;
  // Three parts: the certificate part twice.
  const auto b = boundary();
  const auto bag = must(CertsOnly::make({pki.server_key_leaf}), "certs-only");
  const auto three = make_multipart({make_est_part(media_types::pkcs8, ec_key(4).pkcs8_der()), make_est_part(media_types::certs_only, bag.der()),
                                     make_est_part(media_types::certs_only, bag.der())},
                                    b);
  const auto counted = judged(answer(200, {{"Content-Type", "multipart/mixed; boundary=" + b}}, three));
  EXPECT_NE(counted.find("3 part(s), expected 2"), std::string::npos) << counted;
}

// FB-18: 202 with Retry-After as delta-seconds or an HTTP-date.
TEST(JudgeFieldBugs, RetryAfterIsDeltaSecondsOrAnHttpDate) {
  Expectation e;
  e.status = {202};
  e.retry_after_valid = true;
  const auto verdict = [&](HttpHeaders headers) { return judge(e, seen(answer(202, std::move(headers), "waiting")), context("7030-4.2.3-d")).verdict(); };
  EXPECT_EQ(verdict({{"Retry-After", "120"}}), Verdict::pass);
  EXPECT_EQ(verdict({{"Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT"}}), Verdict::pass);
  EXPECT_EQ(verdict({{"Retry-After", "Sunday, 06-Nov-94 08:49:37 GMT"}}), Verdict::pass);  // obsolete RFC 850 form
  EXPECT_EQ(verdict({}), Verdict::fail);
  EXPECT_EQ(verdict({{"Retry-After", "2 minutes"}}), Verdict::fail);
  EXPECT_EQ(verdict({{"Retry-After", "-5"}}), Verdict::fail);
  EXPECT_EQ(verdict({{"Retry-After", "1994-11-06T08:49:37Z"}}), Verdict::fail);
}

// FB-05: smime-type compared as RFC 9110 8.3.1 says, and nothing looser.
TEST(JudgeFieldBugs, CertsOnlyMediaTypeAsRfc9110ParsesIt) {
  const auto& pki = Pki::get();
  Expectation e;
  e.status = {200};
  e.media_type = "certs-only";
  const auto verdict = [&](const std::string& content_type) {
    return judge(e, seen(answer(200, {{"Content-Type", content_type}}, certs_only_body({pki.leaf}))), context("7030-4.2.3-a")).verdict();
  };
  EXPECT_EQ(verdict("application/pkcs7-mime;smime-type=certs-only"), Verdict::pass);
  EXPECT_EQ(verdict("application/pkcs7-mime ;  SMIME-Type=\"Certs-Only\" "), Verdict::pass);
  EXPECT_EQ(verdict("application/pkcs7-mime; name=cert.p7c; smime-type=certs-only"), Verdict::pass);
  EXPECT_EQ(verdict("application/pkcs7-mime"), Verdict::fail);                              // FB-05
  EXPECT_EQ(verdict("application/pkcs7-mime; smime-type=certs-only-x"), Verdict::fail);     // not a prefix match
  EXPECT_EQ(verdict("application/pkcs7-mime; x-smime-type=certs-only"), Verdict::fail);     // not a substring match
  EXPECT_EQ(verdict("application/pkcs7-mime; smime-type=CMC-response"), Verdict::fail);
}

}  // namespace
}  // namespace estlab::conformance
