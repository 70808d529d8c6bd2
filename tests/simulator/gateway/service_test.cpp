// The EST service without sockets: every protocol-gateway rule in scope (PG-*) in its allowed and
// its refused case, the rfc7030 profile's differences, and what each fault changes. Requests carry
// the client chain and channel bindings the TLS layer would have reported.
#include "estlab/gateway/service.hpp"

#include <gtest/gtest.h>

#include "estlab/core/base64.hpp"
#include "estlab/core/certs_only.hpp"
#include "estlab/core/cmc.hpp"
#include "estlab/core/csr.hpp"
#include "estlab/core/csrattrs.hpp"
#include "estlab/core/der.hpp"
#include "estlab/core/est.hpp"
#include "estlab/core/oids.hpp"
#include "estlab/core/server_key.hpp"
#include "lab_support.hpp"

namespace estlab::gateway {
namespace {

using test::TestLab;

const std::string kDevice1 = "C=SE,O=estlab lab devices,CN=device-0001";
const std::string kDevice6 = "C=SE,O=estlab lab devices,CN=device-0006";

class ServiceTest : public ::testing::Test {
 protected:
  GatewayConfig config(Profile profile = Profile::protocol_gateway) { return GatewayConfig::load(lab.est_properties(), profile); }

  EstService& service(GatewayConfig c) {
    svc = std::make_unique<EstService>(std::move(c), lab.open_ca());
    svc->set_ra_identity(lab.identity("gateway-tls"));
    return *svc;
  }
  EstService& service(Profile profile = Profile::protocol_gateway) { return service(config(profile)); }

  ClientContext as(const std::string& item, TlsVersion version = TlsVersion::tls1_3) {
    ClientContext client;
    client.tls_version = version;
    if (!item.empty()) {
      auto identity = lab.identity(item);
      client.peer_chain.push_back(identity.certificate);
      for (const auto& c : identity.chain) client.peer_chain.push_back(c);
    }
    client.bindings.tls_unique = Bytes{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    client.bindings.tls_exporter = Bytes(32, 0x5a);
    return client;
  }

  Csr csr(const std::string& subject, std::function<void(CsrBuilder&)> extra = {}) {
    CsrBuilder builder;
    if (!subject.empty()) builder.subject(DistinguishedName::parse(subject).value());
    if (extra) extra(builder);
    auto made = builder.sign(key);
    EXPECT_TRUE(made.ok()) << made.error().message;
    return std::move(made).value();
  }

  Handled post(const std::string& op, const Csr& request_csr, ClientContext client, HttpHeaders extra_headers = {}) {
    return post_body(op, encode_est_body(request_csr.der()), std::move(client), std::move(extra_headers));
  }

  Handled post_body(const std::string& op, std::string body, ClientContext client, HttpHeaders extra_headers = {},
                    std::string content_type = "application/pkcs10") {
    EstRequest request;
    request.method = "POST";
    request.target = "/.well-known/est/" + op;
    request.headers = {{"Content-Type", content_type}};
    for (auto& h : extra_headers) request.headers.push_back(std::move(h));
    request.body = std::move(body);
    request.client = std::move(client);
    return svc->handle(request);
  }

  Handled get(const std::string& target, ClientContext client = {}) {
    EstRequest request;
    request.method = "GET";
    request.target = target;
    request.client = std::move(client);
    return svc->handle(request);
  }

  static Certificate issued(const Handled& h) {
    EXPECT_EQ(h.response.status, 200) << h.response.body;
    auto bag = CertsOnly::parse(as_bytes(h.response.body));
    EXPECT_TRUE(bag.ok()) << (bag.ok() ? "" : bag.error().message);
    EXPECT_EQ(bag->certificates().size(), 1u);
    return bag->certificates().front();
  }

  static void expect_refused(const Handled& h, int status, const std::string& rule) {
    EXPECT_EQ(h.response.status, status) << h.response.body;
    EXPECT_EQ(h.decision.rule, rule) << h.decision.reason;
    EXPECT_NE(h.response.body.find(rule), std::string::npos) << "the body should name the rule: " << h.response.body;
    EXPECT_TRUE(h.decision.issued_serial.empty());
  }

  TestLab lab;
  std::unique_ptr<EstService> svc;
  PrivateKey key = PrivateKey::generate(KeyType::ec_p256).value();
};

// --- Paths and methods ------------------------------------------------------------------------

TEST_F(ServiceTest, PathsLabelsAndMethods) {
  service();
  EXPECT_EQ(get("/.well-known/est/cacerts").response.status, 200);
  EXPECT_EQ(get("/.well-known/est/twin-a/cacerts").response.status, 200);
  expect_refused(get("/.well-known/est/nosuchlabel/cacerts"), 404, "7030-3.2.2-g");
  expect_refused(get("/.well-known/est/nosuchop"), 404, "7030-3.2.2-g");
  expect_refused(get("/.well-known/est/cacerts/cacerts"), 404, "7030-3.2.2-g");
  auto wrong_method = post_body("cacerts", "", {});
  expect_refused(wrong_method, 405, "7030-3.2.2-h");
  bool has_allow = false;
  for (const auto& [k, v] : wrong_method.response.headers) has_allow |= (k == "Allow" && v == "GET");
  EXPECT_TRUE(has_allow);
}

TEST_F(ServiceTest, CacertsOfALabelIsThatCasCertificatesAndRolloverCarriesAllFour) {
  service();
  auto twin = CertsOnly::parse(as_bytes(get("/.well-known/est/twin-b/cacerts").response.body));
  ASSERT_TRUE(twin.ok());
  EXPECT_EQ(twin->certificates().front().subject().to_string(), "C=SE,O=estlab lab,CN=estlab Twin CA");
  auto rollover = CertsOnly::parse(as_bytes(get("/.well-known/est/rollover/cacerts").response.body));
  ASSERT_TRUE(rollover.ok());
  EXPECT_EQ(rollover->certificates().size(), 4u);
}

TEST_F(ServiceTest, FaultCacertsWithoutRolloverDropsThem) {
  GatewayConfig c = config();
  c.faults.insert(Fault::cacerts_without_rollover);
  service(c);
  auto rollover = CertsOnly::parse(as_bytes(get("/.well-known/est/rollover/cacerts").response.body));
  ASSERT_TRUE(rollover.ok());
  EXPECT_EQ(rollover->certificates().size(), 1u);
}

// --- PG-AUTH-1 / PG-AUTH-2: client certificate and Basic ---------------------------------------

TEST_F(ServiceTest, PgAuth1BasicWithoutClientCertificateIsRefused) {
  service();
  auto h = post("simpleenroll", csr(kDevice1), as(""), {{"Authorization", make_basic_authorization("device-0001", "prereg-secret-0001")}});
  expect_refused(h, 403, "PG-AUTH-1");
}

TEST_F(ServiceTest, PgAuth2PreregisteredBasicWithCertificateIsIssuedUnknownIs401) {
  service();
  auto ok = post("simpleenroll", csr(kDevice1), as("device-factory"),
                 {{"Authorization", make_basic_authorization("device-0001", "prereg-secret-0001")}});
  issued(ok);
  auto unknown = post("simpleenroll", csr(kDevice1), as("device-factory"),
                      {{"Authorization", make_basic_authorization("device-9999", "guess")}});
  expect_refused(unknown, 401, "PG-AUTH-2");
  bool challenge = false;
  for (const auto& [k, v] : unknown.response.headers) challenge |= (k == "WWW-Authenticate" && v.find("Basic realm=") == 0);
  EXPECT_TRUE(challenge);
}

TEST_F(ServiceTest, PgAuth2MandatoryPasswordWants401WithoutCredentials) {
  GatewayConfig c = config();
  c.mandatory_password = true;
  service(c);
  expect_refused(post("simpleenroll", csr(kDevice1), as("device-factory")), 401, "PG-AUTH-2");
}

TEST_F(ServiceTest, Rfc7030AnonymousGets401ChallengeAndBasicAloneEnrolls) {
  service(Profile::rfc7030);
  auto anonymous = post("simpleenroll", csr(kDevice1), as(""));
  expect_refused(anonymous, 401, "7030-4.2-b");
  issued(post("simpleenroll", csr(kDevice1), as(""), {{"Authorization", make_basic_authorization("device-0001", "prereg-secret-0001")}}));
}

TEST_F(ServiceTest, FaultNoAuthChallengeDropsWwwAuthenticate) {
  GatewayConfig c = config(Profile::rfc7030);
  c.faults.insert(Fault::no_auth_challenge);
  service(c);
  auto h = post("simpleenroll", csr(kDevice1), as(""));
  EXPECT_EQ(h.response.status, 401);
  for (const auto& [k, v] : h.response.headers) EXPECT_NE(k, "WWW-Authenticate");
}

// --- PG-AUTH-3 / PG-RA-1: officer role and cmcRA -----------------------------------------------

TEST_F(ServiceTest, PgAuth3OfficerEnrollsOnBehalfOfADevice) {
  service();
  auto cert = issued(post("simpleenroll", csr("C=SE,O=estlab lab devices,CN=device-0042"), as("ra-officer")));
  EXPECT_EQ(cert.subject().common_name(), "device-0042");
}

TEST_F(ServiceTest, PgRa1CmcRaCertificateGetsNoRights) {
  service();
  expect_refused(post("simpleenroll", csr("C=SE,O=estlab lab devices,CN=device-0042"), as("ra-cmc-only")), 403, "PG-RA-1");
}

// --- PG-ENR-1..4 -------------------------------------------------------------------------------

TEST_F(ServiceTest, PgEnr1SubjectMustEqualTheClientCertificate) {
  service();
  issued(post("simpleenroll", csr(kDevice1), as("device-factory")));
  expect_refused(post("simpleenroll", csr("C=SE,O=estlab lab devices,CN=device-0002"), as("device-factory")), 403, "PG-ENR-1");
}

TEST_F(ServiceTest, FaultIgnoreSubjectMismatchIssuesForAnotherSubject) {
  GatewayConfig c = config();
  c.faults.insert(Fault::ignore_subject_mismatch);
  service(c);
  issued(post("simpleenroll", csr("C=SE,O=estlab lab devices,CN=device-0002"), as("device-factory")));
}

TEST_F(ServiceTest, PgEnr2ClientAuthEkuRequiredEvenWhenTheEkuIsAbsent) {
  service();
  expect_refused(post("simpleenroll", csr("C=SE,O=estlab lab devices,CN=device-0002"), as("device-no-clientauth")), 403, "PG-ENR-2");
  expect_refused(post("simpleenroll", csr("C=SE,O=estlab lab devices,CN=device-0003"), as("device-no-eku")), 403, "PG-ENR-2");
}

TEST_F(ServiceTest, Rfc7030AcceptsACertificateWithoutAnyEku) {
  service(Profile::rfc7030);
  issued(post("simpleenroll", csr("C=SE,O=estlab lab devices,CN=device-0003"), as("device-no-eku")));
  expect_refused(post("simpleenroll", csr("C=SE,O=estlab lab devices,CN=device-0002"), as("device-no-clientauth")), 403,
                 "7030-3.3.2-b");
}

TEST_F(ServiceTest, FaultSkipEkuCheckAcceptsNoClientAuth) {
  GatewayConfig c = config();
  c.faults.insert(Fault::skip_eku_check);
  service(c);
  issued(post("simpleenroll", csr("C=SE,O=estlab lab devices,CN=device-0002"), as("device-no-clientauth")));
}

TEST_F(ServiceTest, PgEnr3RevokedCertificateRefusedBeforeAnyCrl) {
  service();
  expect_refused(post("simpleenroll", csr("C=SE,O=estlab lab devices,CN=device-0004"), as("device-revoked")), 403, "PG-ENR-3");
  // A certificate revoked now, with no CRL published since, is refused at once.
  auto ca = lab.open_ca();
  ASSERT_TRUE(ca->revoke(lab.certificate("device-factory").serial_hex(), RevocationReason::key_compromise).ok());
  expect_refused(post("simpleenroll", csr(kDevice1), as("device-factory")), 403, "PG-ENR-3");
}

TEST_F(ServiceTest, PgEnr3WithCrlSourceOnlyPublishedRevocationsCount) {
  GatewayConfig c = config();
  c.revocation = RevocationSource::published_crl;
  service(c);
  auto ca = lab.open_ca();
  ASSERT_TRUE(ca->revoke(lab.certificate("device-factory").serial_hex(), RevocationReason::key_compromise).ok());
  issued(post("simpleenroll", csr(kDevice1), as("device-factory")));  // not on a CRL yet
  ASSERT_TRUE(ca->publish_crl("issuing").ok());
  expect_refused(post("simpleenroll", csr(kDevice1), as("device-factory")), 403, "PG-ENR-3");
}

TEST_F(ServiceTest, FaultAcceptRevokedIssues) {
  GatewayConfig c = config();
  c.faults.insert(Fault::accept_revoked);
  service(c);
  issued(post("simpleenroll", csr("C=SE,O=estlab lab devices,CN=device-0004"), as("device-revoked")));
}

TEST_F(ServiceTest, PgEnr4ReenrollNeedsTheLastIssuedCertificate) {
  service();
  ASSERT_TRUE(config().renewal_requires_last_issued());
  expect_refused(post("simplereenroll", csr(kDevice6), as("device-superseded")), 403, "PG-ENR-4");
  issued(post("simplereenroll", csr(kDevice6), as("device-current")));
}

TEST_F(ServiceTest, PgEnr4RuleOffOrInvertedReadingAllowsTheOlderCertificate) {
  GatewayConfig off = config();
  off.allow_renewal_with_old_certificates = false;
  service(off);
  issued(post("simplereenroll", csr(kDevice6), as("device-superseded")));

  GatewayConfig inverted = config();
  inverted.renewal_rule_polarity = RenewalRulePolarity::inverted;  // true now reads "rule off"
  service(inverted);
  issued(post("simplereenroll", csr(kDevice6), as("device-current")));
}

TEST_F(ServiceTest, FaultIgnoreRenewalRule) {
  GatewayConfig c = config();
  c.faults.insert(Fault::ignore_renewal_rule);
  service(c);
  issued(post("simplereenroll", csr(kDevice6), as("device-superseded")));
}

TEST_F(ServiceTest, ReenrollSubjectAndSanMustMatchInBothProfiles) {
  for (auto profile : {Profile::rfc7030, Profile::protocol_gateway}) {
    service(profile);
    auto other = post("simplereenroll", csr("C=SE,O=estlab lab devices,CN=device-0099"), as("device-current"));
    EXPECT_EQ(other.response.status, 403) << to_string(profile);
    auto added_san = post("simplereenroll", csr(kDevice6, [](CsrBuilder& b) { b.add_subject_alt_name(SubjectAltName::dns("extra.example")); }),
                          as("device-current"));
    EXPECT_EQ(added_san.response.status, 403) << to_string(profile);
    EXPECT_EQ(added_san.decision.rule, "7030-4.2.2-a");
  }
}

TEST_F(ServiceTest, ReenrollWithoutClientCertificateIsRefused) {
  service(Profile::rfc7030);
  auto h = post("simplereenroll", csr(kDevice6), as(""), {{"Authorization", make_basic_authorization("device-0001", "prereg-secret-0001")}});
  expect_refused(h, 403, "7030-4.2.2-c");
}

// --- Trust ---------------------------------------------------------------------------------------

TEST_F(ServiceTest, UnknownCaAndExpiredCertificatesAreRefused) {
  service();
  expect_refused(post("simpleenroll", csr("C=SE,O=estlab lab devices,CN=device-0007"), as("device-unknown-ca")), 403, "7030-3.3.2-b");
  expect_refused(post("simpleenroll", csr("C=SE,O=estlab lab devices,CN=device-0005"), as("device-expired")), 403, "7030-3.3.2-b");
}

TEST_F(ServiceTest, FaultAcceptUnknownCa) {
  GatewayConfig c = config();
  c.faults.insert(Fault::accept_unknown_ca);
  service(c);
  issued(post("simpleenroll", csr("C=SE,O=estlab lab devices,CN=device-0007"), as("device-unknown-ca")));
}

// --- PG-SAN-1 / PG-SAN-2 -------------------------------------------------------------------------

TEST_F(ServiceTest, PgSan1CopiesCommonNameOrUnstructuredNameAndAddress) {
  service();
  auto from_cn = issued(post("simpleenroll", csr(kDevice1), as("device-factory")));
  EXPECT_EQ(from_cn.subject_alt_names(), (std::vector<SubjectAltName>{SubjectAltName::dns("device-0001")}));

  auto from_unstructured = issued(post("simpleenroll", csr(kDevice1, [](CsrBuilder& b) {
                                         b.unstructured_name("dev1.example").unstructured_address("192.0.2.7");
                                       }),
                                       as("device-factory")));
  EXPECT_EQ(from_unstructured.subject_alt_names(),
            (std::vector<SubjectAltName>{SubjectAltName::dns("dev1.example"), SubjectAltName::ip("192.0.2.7")}));

  auto kept = issued(post("simpleenroll", csr(kDevice1, [](CsrBuilder& b) { b.add_subject_alt_name(SubjectAltName::dns("own.example")); }),
                          as("device-factory")));
  EXPECT_EQ(kept.subject_alt_names(), (std::vector<SubjectAltName>{SubjectAltName::dns("own.example")}));
}

TEST_F(ServiceTest, PgSan1CopiesOnlyValuesThatCanBeADnsName) {
  service();
  auto cert = issued(post("simpleenroll", csr("C=SE,O=estlab lab devices,CN=device 0001 x"), as("ra-officer")));
  EXPECT_TRUE(cert.subject_alt_names().empty());
}

TEST_F(ServiceTest, PgSan2CopiesDnsNameIntoAMissingCommonName) {
  service();
  auto cert = issued(post("simpleenroll", csr("C=SE,O=estlab lab devices", [](CsrBuilder& b) { b.add_subject_alt_name(SubjectAltName::dns("device-0042.example")); }),
                          as("ra-officer")));
  EXPECT_EQ(cert.subject().common_name(), "device-0042.example");
}

TEST_F(ServiceTest, Rfc7030CopiesNothing) {
  service(Profile::rfc7030);
  auto cert = issued(post("simpleenroll", csr(kDevice1), as("device-factory")));
  EXPECT_TRUE(cert.subject_alt_names().empty());
}

TEST_F(ServiceTest, FaultNoSanCopy) {
  GatewayConfig c = config();
  c.faults.insert(Fault::no_san_copy);
  service(c);
  EXPECT_TRUE(issued(post("simpleenroll", csr(kDevice1), as("device-factory"))).subject_alt_names().empty());
}

// --- PG-PRE-1 ------------------------------------------------------------------------------------

TEST_F(ServiceTest, PgPre1FactoryCertificateMatchedToTheCommonName) {
  GatewayConfig c = config();
  c.use_authentication_cert = true;
  service(c);
  // The factory certificate's registration allows device-0001 even under another O.
  issued(post("simpleenroll", csr("C=SE,O=operational,CN=device-0001"), as("device-factory")));
  expect_refused(post("simpleenroll", csr("C=SE,O=operational,CN=device-0002"), as("device-factory")), 403, "PG-PRE-1");
  expect_refused(post("simpleenroll", csr(kDevice6), as("device-current")), 403, "PG-PRE-1");  // not registered
}

// --- PG-PWD-1 and RFC 7030 3.5 linking -----------------------------------------------------------

TEST_F(ServiceTest, PgPwd1ChallengePasswordDeniedEvenWhenItsTlsUniqueIsRight) {
  service();
  const auto client = as("device-factory", TlsVersion::tls1_2);
  const std::string right = base64_encode(*client.bindings.tls_unique);
  expect_refused(post("simpleenroll", csr(kDevice1, [&](CsrBuilder& b) { b.challenge_password(right); }), client), 403, "PG-PWD-1");
}

TEST_F(ServiceTest, FaultAcceptChallengePassword) {
  GatewayConfig c = config();
  c.faults.insert(Fault::accept_challenge_password);
  service(c);
  issued(post("simpleenroll", csr(kDevice1, [](CsrBuilder& b) { b.challenge_password("whatever"); }), as("device-factory")));
}

TEST_F(ServiceTest, Rfc7030LinkingChecksTlsUniqueOrExporter) {
  service(Profile::rfc7030);
  auto tls12 = as("device-factory", TlsVersion::tls1_2);
  const std::string unique = base64_encode(*tls12.bindings.tls_unique);
  EXPECT_EQ(unique.size(), 16u);
  issued(post("simpleenroll", csr(kDevice1, [&](CsrBuilder& b) { b.challenge_password(unique); }), tls12));
  issued(post("simpleenroll", csr(kDevice1, [&](CsrBuilder& b) { b.challenge_password(unique, StringEncoding::utf8); }), tls12));
  expect_refused(post("simpleenroll", csr(kDevice1, [](CsrBuilder& b) { b.challenge_password("AAAAAAAAAAAAAAAA"); }), tls12), 403,
                 "7030-3.5-b");

  auto tls13 = as("device-factory", TlsVersion::tls1_3);
  const std::string exporter = base64_encode(*tls13.bindings.tls_exporter);
  issued(post("simpleenroll", csr(kDevice1, [&](CsrBuilder& b) { b.challenge_password(exporter); }), tls13));
  expect_refused(post("simpleenroll", csr(kDevice1, [&](CsrBuilder& b) { b.challenge_password(unique); }), tls13), 403, "7030-3.5-b");
}

TEST_F(ServiceTest, Tls13LinkingDenyIsAChoice) {
  GatewayConfig c = config(Profile::rfc7030);
  c.tls13_linking = Tls13Linking::deny;
  service(c);
  auto tls13 = as("device-factory", TlsVersion::tls1_3);
  expect_refused(post("simpleenroll", csr(kDevice1, [&](CsrBuilder& b) { b.challenge_password(base64_encode(*tls13.bindings.tls_exporter)); }), tls13),
                 403, "9266-2-a");
}

TEST_F(ServiceTest, LinkingRequiredRefusesCsrsWithoutItAndListsTheOid) {
  GatewayConfig c = config(Profile::rfc7030);
  c.linking_required = true;
  service(c);
  expect_refused(post("simpleenroll", csr(kDevice1), as("device-factory")), 403, "7030-3.5-c");
  auto attrs = get("/.well-known/est/csrattrs");
  ASSERT_EQ(attrs.response.status, 200);
  auto parsed = CsrAttrs::from_der(decode_est_body(attrs.response.body, std::nullopt).value());
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->contains_oid(oid::challenge_password));
}

TEST_F(ServiceTest, FaultIgnoreTlsUnique) {
  GatewayConfig c = config(Profile::rfc7030);
  c.faults.insert(Fault::ignore_tls_unique);
  service(c);
  issued(post("simpleenroll", csr(kDevice1, [](CsrBuilder& b) { b.challenge_password("AAAAAAAAAAAAAAAA"); }), as("device-factory", TlsVersion::tls1_2)));
}

// --- Request checking ----------------------------------------------------------------------------

TEST_F(ServiceTest, MalformedBodiesAndMediaTypes) {
  service();
  const auto client = as("device-factory");
  expect_refused(post_body("simpleenroll", "***not base64***", client), 400, "8951-3-a");
  expect_refused(post_body("simpleenroll", base64_encode(as_bytes("hello world")), client), 400, "7030-4.2.1-a");
  expect_refused(post_body("simpleenroll", encode_est_body(csr(kDevice1).der()), client, {}, "application/octet-stream"), 415,
                 "7030-4.2.1-c");
  expect_refused(post_body("simpleenroll", encode_est_body(with_corrupted_signature(csr(kDevice1).der())), client), 400,
                 "7030-4.2.1-b");
  // RFC 8951: line breaks, a Content-Transfer-Encoding header, or none: all accepted.
  const std::string wrapped = base64_encode(csr(kDevice1).der(), LineBreaks::every64_lf);
  issued(post_body("simpleenroll", wrapped, client));
  issued(post_body("simpleenroll", wrapped, client, {{"Content-Transfer-Encoding", "base64"}}));
}

TEST_F(ServiceTest, FaultAcceptBadCsrSignature) {
  GatewayConfig c = config();
  c.faults.insert(Fault::accept_bad_csr_signature);
  service(c);
  issued(post_body("simpleenroll", encode_est_body(with_corrupted_signature(csr(kDevice1).der())), as("device-factory")));
}

TEST_F(ServiceTest, ResponseEncodingFaults) {
  GatewayConfig media = config();
  media.faults.insert(Fault::wrong_media_type);
  service(media);
  auto h = get("/.well-known/est/cacerts");
  ASSERT_EQ(h.response.status, 200);
  EXPECT_EQ(h.response.headers.front().second, "application/octet-stream");

  GatewayConfig raw = config();
  raw.faults.insert(Fault::no_base64);
  service(raw);
  auto der = get("/.well-known/est/cacerts");
  ASSERT_FALSE(der.response.body.empty());
  EXPECT_EQ(static_cast<unsigned char>(der.response.body[0]), 0x30);
}

TEST_F(ServiceTest, FaultExtraCertsInEnroll) {
  GatewayConfig c = config();
  c.faults.insert(Fault::extra_certs_in_enroll);
  service(c);
  auto h = post("simpleenroll", csr(kDevice1), as("device-factory"));
  auto bag = CertsOnly::parse(as_bytes(h.response.body));
  ASSERT_TRUE(bag.ok());
  EXPECT_GT(bag->certificates().size(), 1u);
}

TEST_F(ServiceTest, FaultErrorsAs200) {
  GatewayConfig c = config();
  c.faults.insert(Fault::errors_as_200);
  service(c);
  auto h = post("simpleenroll", csr("C=SE,O=estlab lab devices,CN=device-0002"), as("device-factory"));
  EXPECT_EQ(h.response.status, 200);
  EXPECT_EQ(h.decision.rule, "PG-ENR-1");
}

TEST_F(ServiceTest, FaultUnknownLabelServed) {
  GatewayConfig c = config();
  c.faults.insert(Fault::unknown_label_served);
  service(c);
  EXPECT_EQ(get("/.well-known/est/nosuchlabel/cacerts").response.status, 200);
}

// --- PG-COAP-2: a certificate forwarded by the officer-authenticated CoAP proxy ---------------

std::string forwarded(const TestLab& lab, const std::string& item) {
  auto identity = lab.identity(item);
  std::string value = base64_encode(identity.certificate.der());
  for (const auto& c : identity.chain) value += "," + base64_encode(c.der());
  return value;
}

TEST_F(ServiceTest, PgCoap2TheOfficerForwardsTheDevicesCertificateAndTheDeviceIsAuthorized) {
  service();
  // The device's own certificate decides: its subject may re-enroll, another's may not.
  auto own = post("simplereenroll", csr(kDevice6), as("ra-officer"), {{kForwardedClientCertHeader, forwarded(lab, "device-current")}});
  issued(own);
  EXPECT_NE(own.decision.client_subject.find("forwarded by"), std::string::npos);
  expect_refused(post("simplereenroll", csr(kDevice6), as("ra-officer"), {{kForwardedClientCertHeader, forwarded(lab, "device-superseded")}}),
                 403, "PG-ENR-4");
  expect_refused(post("simpleenroll", csr("C=SE,O=estlab lab devices,CN=device-0004"), as("ra-officer"),
                      {{kForwardedClientCertHeader, forwarded(lab, "device-revoked")}}),
                 403, "PG-ENR-3");
}

TEST_F(ServiceTest, PgCoap2OnlyAnOfficerMayForwardAndTheHeaderMustParse) {
  service();
  expect_refused(post("simpleenroll", csr(kDevice6), as("device-factory"), {{kForwardedClientCertHeader, forwarded(lab, "device-current")}}),
                 403, "PG-COAP-2");
  expect_refused(post("simpleenroll", csr(kDevice6), as("ra-officer"), {{kForwardedClientCertHeader, "not base64 at all!"}}), 400,
                 "PG-COAP-2");
}

// --- Manual approval: one admission path for every issuing operation (PG-IDM-1/2) ----------------

// One issuing operation as a device would post it: the CSR, as which client, how to read a 200.
struct IssuingOp {
  std::string op;
  std::string subject;
  std::string client;
};

class ApprovalTest : public ServiceTest {
 protected:
  std::shared_ptr<OperatorQueue> queue = std::make_shared<OperatorQueue>();

  void manual(GatewayConfig c) {
    c.approval = ApprovalMode::manual;
    c.serverkeygen_enabled = true;
    svc = std::make_unique<EstService>(std::move(c), lab.open_ca(), queue);
    svc->set_ra_identity(lab.identity("gateway-tls"));
  }

  Handled send(const IssuingOp& op, const Csr& request) {
    if (op.op == "fullcmc") {
      auto pki = make_full_pki_request(request, key, nullptr);
      EXPECT_TRUE(pki.ok());
      return post_body("fullcmc", encode_est_body(*pki), as(op.client), {}, "application/pkcs7-mime; smime-type=CMC-request");
    }
    return post(op.op, request, as(op.client));
  }

  // The serial of the certificate a 200 carries, whatever the operation's encoding.
  static std::string serial_of(const IssuingOp& op, const Handled& h) {
    EXPECT_EQ(h.response.status, 200) << op.op << ": " << h.response.body;
    if (h.response.status != 200) return "";
    EXPECT_FALSE(h.decision.issued_serial.empty()) << op.op;
    return h.decision.issued_serial;
  }

  std::size_t entries_for(const std::string& op) const {
    std::size_t n = 0;
    for (const auto& entry : queue->list()) n += entry.request.operation == op;
    return n;
  }
};

const std::vector<IssuingOp> kIssuingOps = {
    {"simpleenroll", kDevice1, "device-factory"},
    {"simplereenroll", kDevice6, "device-current"},
    {"serverkeygen", kDevice1, "device-factory"},
    {"fullcmc", kDevice1, "device-factory"},
};

TEST_F(ApprovalTest, NoIssuingOperationIssuesBeforeApprovalAndEachIssuesOnceAfter) {
  manual(config());
  for (const auto& op : kIssuingOps) {
    SCOPED_TRACE(op.op);
    const Csr request = csr(op.subject);
    for (int poll = 0; poll < 3; ++poll) {
      auto waiting = send(op, request);
      EXPECT_EQ(waiting.response.status, 202) << waiting.response.body;
      EXPECT_EQ(waiting.decision.rule, "PG-IDM-1");
      EXPECT_TRUE(waiting.decision.issued_serial.empty()) << "issued before approval";
      EXPECT_TRUE(find_header(waiting.response.headers, "Retry-After").has_value());
    }
    ASSERT_EQ(entries_for(op.op), 1u) << "retries of one request must not open new ones (FB-19)";
    auto entries = queue->list();
    auto entry = std::find_if(entries.begin(), entries.end(), [&](const auto& e) { return e.request.operation == op.op; });
    ASSERT_NE(entry, entries.end());
    EXPECT_EQ(entry->polls, 3);
    EXPECT_EQ(entry->request.csr_sha256, sha256_hex(request.der()));
    ASSERT_TRUE(queue->approve(entry->request.id));
    const std::string serial = serial_of(op, send(op, request));
    if (op.op == "serverkeygen") {
      // The generated key is delivered once and not kept: a repeat is refused, never re-issued.
      expect_refused(send(op, request), 409, "PG-IDM-1");
    } else {
      EXPECT_EQ(serial_of(op, send(op, request)), serial) << "RFC 7030 4.2.3: the retry gets the same certificate";
    }
  }
}

TEST_F(ApprovalTest, ARejectionIsRefusedWithTheOperatorsReasonForEveryOperation) {
  manual(config());
  for (const auto& op : kIssuingOps) {
    SCOPED_TRACE(op.op);
    const Csr request = csr(op.subject);
    EXPECT_EQ(send(op, request).response.status, 202);
    for (const auto& entry : queue->list())
      if (entry.request.operation == op.op) queue->reject(entry.request.id, "unknown device serial");
    auto refused = send(op, request);
    EXPECT_EQ(refused.response.status, 403);
    EXPECT_EQ(refused.decision.rule, "PG-IDM-1");
    EXPECT_TRUE(refused.decision.issued_serial.empty());
    EXPECT_NE(refused.decision.reason.find("unknown device serial"), std::string::npos) << refused.decision.reason;
    if (op.op != "fullcmc") {
      EXPECT_NE(refused.response.body.find("unknown device serial"), std::string::npos);
    }
  }
}

TEST_F(ApprovalTest, FullcmcPendingIsA202WithACmcPendingStatusAndPendInfo) {
  manual(config());
  auto h = send(kIssuingOps[3], csr(kDevice1));
  ASSERT_EQ(h.response.status, 202);
  EXPECT_TRUE(find_header(h.response.headers, "Retry-After").has_value());
  auto response = parse_full_pki_response(decode_est_body(h.response.body, std::nullopt).value());
  ASSERT_TRUE(response.ok()) << response.error().message;
  ASSERT_EQ(response->statuses.size(), 1u);
  EXPECT_EQ(response->statuses.front().status, CmcStatusCode::pending);
  ASSERT_TRUE(response->statuses.front().pend_info.has_value()) << "RFC 5272 6.1.1: pendInfo is present when pending";
  EXPECT_FALSE(response->statuses.front().pend_info->token.empty());
  EXPECT_EQ(response->statuses.front().pend_info->time.size(), 15u);  // YYYYMMDDHHMMSSZ
  EXPECT_TRUE(response->certificates.empty() || response->certificates.size() == 1u);  // at most the RA's own
}

TEST_F(ApprovalTest, AnotherClientCannotCollectACertificateApprovedForACopyOfTheCsr) {
  GatewayConfig c = config();
  c.faults.insert(Fault::ignore_subject_mismatch);  // let a second client ask for the same subject at all
  manual(c);
  const Csr request = csr(kDevice1);
  EXPECT_EQ(post("simpleenroll", request, as("device-factory")).response.status, 202);
  ASSERT_TRUE(queue->approve(queue->list().front().request.id));
  EXPECT_EQ(post("simpleenroll", request, as("device-current")).response.status, 202) << "a different client is a new request";
  EXPECT_EQ(queue->list().size(), 2u);
  issued(post("simpleenroll", request, as("device-factory")));
}

TEST_F(ApprovalTest, AnUnreachableApproverIs503WithRetryAfterAndTheRequestIsKept) {
  manual(config());
  const Csr request = csr(kDevice1);
  EXPECT_EQ(post("simpleenroll", request, as("device-factory")).response.status, 202);
  queue->set_available(false);
  for (const auto& op : kIssuingOps) {
    SCOPED_TRACE(op.op);
    auto down = send(op, csr(op.subject));
    EXPECT_EQ(down.response.status, 503) << down.response.body;
    EXPECT_EQ(down.decision.rule, "PG-IDM-2");
    EXPECT_TRUE(find_header(down.response.headers, "Retry-After").has_value());
    EXPECT_TRUE(down.decision.issued_serial.empty());
  }
  queue->set_available(true);
  ASSERT_EQ(queue->list().size(), 1u);
  queue->approve(queue->list().front().request.id);
  issued(post("simpleenroll", request, as("device-factory")));
}

TEST_F(ApprovalTest, OperatorPolicies) {
  manual(config());
  queue->set_policy(*parse_operator_policy("approve-after=2"));
  const Csr request = csr(kDevice1);
  EXPECT_EQ(post("simpleenroll", request, as("device-factory")).response.status, 202);
  EXPECT_EQ(post("simpleenroll", request, as("device-factory")).response.status, 202);
  issued(post("simpleenroll", request, as("device-factory")));
  queue->set_policy(*parse_operator_policy("reject=not on the list"));
  auto refused = post("simpleenroll", csr(kDevice1), as("device-factory"));
  EXPECT_EQ(refused.response.status, 403);
  EXPECT_NE(refused.response.body.find("not on the list"), std::string::npos);
  queue->set_policy(*parse_operator_policy("never"));
  const Csr ignored = csr(kDevice1);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(post("simpleenroll", ignored, as("device-factory")).response.status, 202);
  for (const char* bad : {"", "approve-after=0", "approve-after=x", "reject=", "sometimes"}) EXPECT_FALSE(parse_operator_policy(bad)) << bad;
}

TEST_F(ApprovalTest, ApprovalIdBindsOperationCsrAndClient) {
  const std::string a = approval_id("simpleenroll", "00", "cert:aa");
  EXPECT_EQ(a, approval_id("simpleenroll", "00", "cert:aa"));
  EXPECT_NE(a, approval_id("serverkeygen", "00", "cert:aa"));
  EXPECT_NE(a, approval_id("simpleenroll", "01", "cert:aa"));
  EXPECT_NE(a, approval_id("simpleenroll", "00", "cert:ab"));
  EXPECT_EQ(client_binding(nullptr, nullptr), "anonymous");
  const std::string user = "dev";
  EXPECT_EQ(client_binding(nullptr, &user), "basic:dev");
}

TEST_F(ServiceTest, FaultsPendingAs503AndRetryCreatesNewRequest) {
  auto queue = std::make_shared<OperatorQueue>();
  GatewayConfig c = config();
  c.approval = ApprovalMode::manual;
  c.faults = {Fault::pending_as_503, Fault::retry_creates_new_request};
  svc = std::make_unique<EstService>(c, lab.open_ca(), queue);
  const Csr request = csr(kDevice1);
  EXPECT_EQ(post("simpleenroll", request, as("device-factory")).response.status, 503);  // FB-18
  EXPECT_EQ(post("simpleenroll", request, as("device-factory")).response.status, 503);
  EXPECT_EQ(queue->list().size(), 2u);  // FB-19
}

TEST_F(ServiceTest, FaultDropRetryAfter) {
  GatewayConfig c = config();
  c.approval = ApprovalMode::manual;
  c.faults.insert(Fault::drop_retry_after);
  service(c);
  auto h = post("simpleenroll", csr(kDevice1), as("device-factory"));
  EXPECT_EQ(h.response.status, 202);
  for (const auto& [k, v] : h.response.headers) EXPECT_NE(k, "Retry-After");
}

// --- serverkeygen, csrattrs, fullcmc ---------------------------------------------------------------

TEST_F(ServiceTest, ServerkeygenReturnsAKeyThatMatchesTheCertificateAndIgnoresTheCsrSignature) {
  service();
  auto h = post_body("serverkeygen", encode_est_body(with_corrupted_signature(csr(kDevice1).der())), as("device-factory"));
  ASSERT_EQ(h.response.status, 200) << h.response.body;
  auto type = MediaType::parse(h.response.headers.front().second);
  ASSERT_TRUE(type.ok());
  auto boundary = multipart_boundary(*type);
  ASSERT_TRUE(boundary.ok());
  auto parts = parse_multipart(h.response.body, *boundary);
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].header("Content-Type"), "application/pkcs8");
  auto server_key = PrivateKey::from_pkcs8_der(decode_est_body((*parts)[0].body, std::nullopt).value());
  ASSERT_TRUE(server_key.ok());
  auto bag = CertsOnly::parse(as_bytes((*parts)[1].body));
  ASSERT_TRUE(bag.ok());
  ASSERT_EQ(bag->certificates().size(), 1u);
  EXPECT_TRUE(bag->certificates().front().public_key() == server_key->public_key());
  EXPECT_FALSE(bag->certificates().front().public_key() == key.public_key());
}

TEST_F(ServiceTest, ServerkeygenPolicyAndEncryptedDelivery) {
  service();
  expect_refused(post("serverkeygen", csr("C=SE,O=estlab lab devices,CN=device-0002"), as("device-factory")), 403, "PG-ENR-1");
  // RFC 7030 4.4.1.1: a DecryptKeyIdentifier names a shared key; this gateway has none, so it
  // answers a documented 501 rather than an unencrypted key.
  auto encrypted = post("serverkeygen", csr(kDevice1, [](CsrBuilder& b) {
                          b.add_attribute("1.2.840.113549.1.9.16.2.37", Bytes{0x04, 0x02, 0xab, 0xcd});
                        }),
                        as("device-factory"));
  expect_refused(encrypted, 501, "7030-4.4.1.1-a");
  // RFC 7030 4.4.1.2: an unknown AsymmetricDecryptKeyIdentifier is an error, and so is one naming
  // a certificate whose keyUsage allows only signatures (device-factory's).
  auto unknown = post("serverkeygen", csr(kDevice1, [](CsrBuilder& b) {
                        b.add_attribute("1.2.840.113549.1.9.16.2.54", Bytes{0x04, 0x02, 0xab, 0xcd});
                      }),
                      as("device-factory"));
  expect_refused(unknown, 400, "7030-4.4.1.2-a");
  const Bytes factory_id = key_identifier(lab.identity("device-factory").certificate);
  auto signature_only = post("serverkeygen", csr(kDevice1, [&](CsrBuilder& b) {
                               b.add_attribute("1.2.840.113549.1.9.16.2.54", der::encode_octet_string(factory_id));
                               b.add_attribute("1.2.840.113549.1.9.15", encode_smime_capabilities(default_smime_capabilities()));
                             }),
                             as("device-factory"));
  expect_refused(signature_only, 400, "7030-4.4.1.2-a");
  GatewayConfig off = config();
  off.serverkeygen_enabled = false;
  service(off);
  expect_refused(post("serverkeygen", csr(kDevice1), as("device-factory")), 501, "7030-4.4-a");
}

TEST_F(ServiceTest, FaultServerkeygenKeyMismatch) {
  GatewayConfig c = config();
  c.faults.insert(Fault::serverkeygen_key_mismatch);
  service(c);
  auto h = post("serverkeygen", csr(kDevice1), as("device-factory"));
  ASSERT_EQ(h.response.status, 200);
  auto type = MediaType::parse(h.response.headers.front().second);
  auto parts = parse_multipart(h.response.body, multipart_boundary(*type).value()).value();
  auto server_key = PrivateKey::from_pkcs8_der(decode_est_body(parts[0].body, std::nullopt).value()).value();
  auto bag = CertsOnly::parse(as_bytes(parts[1].body)).value();
  EXPECT_FALSE(bag.certificates().front().public_key() == server_key.public_key());
}

TEST_F(ServiceTest, CsrattrsAnswersTheConfiguredAttributesOrTheConfiguredEmptyAnswer) {
  service();
  auto h = get("/.well-known/est/csrattrs");
  ASSERT_EQ(h.response.status, 200);
  EXPECT_EQ(h.response.headers.front().second, "application/csrattrs");
  auto attrs = CsrAttrs::from_der(decode_est_body(h.response.body, std::nullopt).value());
  ASSERT_TRUE(attrs.ok());
  EXPECT_FALSE(attrs->entries().empty());

  for (auto [when, status] : {std::pair{CsrAttrsWhenEmpty::no_content, 204}, std::pair{CsrAttrsWhenEmpty::not_found, 404},
                              std::pair{CsrAttrsWhenEmpty::empty_sequence, 200}}) {
    GatewayConfig c = config();
    c.csrattrs.clear();
    c.csrattrs_when_empty = when;
    service(c);
    auto empty = get("/.well-known/est/csrattrs");
    EXPECT_EQ(empty.response.status, status);
    if (status == 200) {
      EXPECT_EQ(decode_est_body(empty.response.body, std::nullopt).value(), (Bytes{0x30, 0x00}));
    }
  }
}

TEST_F(ServiceTest, FullcmcIssuesForAPkiDataAndAnswersFailuresAsCmc) {
  service();
  const Csr request = csr(kDevice1);
  auto identity = lab.identity("device-factory");
  auto pki = make_full_pki_request(request, key, nullptr);
  ASSERT_TRUE(pki.ok()) << pki.error().message;
  auto h = post_body("fullcmc", encode_est_body(*pki), as("device-factory"), {}, "application/pkcs7-mime; smime-type=CMC-request");
  ASSERT_EQ(h.response.status, 200) << h.response.body;
  auto response = parse_full_pki_response(decode_est_body(h.response.body, std::nullopt).value());
  ASSERT_TRUE(response.ok()) << response.error().message;
  ASSERT_FALSE(response->statuses.empty());
  EXPECT_EQ(response->statuses.front().status, CmcStatusCode::success);
  bool found = false;
  for (const auto& cert : response->certificates) found |= cert.public_key() == key.public_key();
  EXPECT_TRUE(found);

  // Another device's subject: refused, with a CMC failure body (RFC 7030 4.3.2).
  auto other = make_full_pki_request(csr("C=SE,O=estlab lab devices,CN=device-0002"), key, nullptr);
  auto refused = post_body("fullcmc", encode_est_body(*other), as("device-factory"), {}, "application/pkcs7-mime; smime-type=CMC-request");
  EXPECT_EQ(refused.response.status, 403);
  auto failure = parse_full_pki_response(decode_est_body(refused.response.body, std::nullopt).value());
  ASSERT_TRUE(failure.ok());
  EXPECT_EQ(failure->statuses.front().status, CmcStatusCode::failed);

  // A bare PKCS#10 is not a Full PKI Request.
  EXPECT_EQ(post_body("fullcmc", encode_est_body(request.der()), as("device-factory"), {}, "application/pkcs7-mime; smime-type=CMC-request")
                .response.status,
            400);
  EXPECT_EQ(post("fullcmc", request, as("device-factory")).response.status, 415);
}

// A vendor may leave fullcmc out (RFC 7030 4.3) and serve no CA labels (3.2.2).
TEST_F(ServiceTest, FullcmcAndLabelsCanBeSwitchedOff) {
  GatewayConfig c = config();
  c.fullcmc_enabled = false;
  c.labels_enabled = false;
  service(c);
  auto pki = make_full_pki_request(csr(kDevice1), key, nullptr);
  ASSERT_TRUE(pki.ok()) << pki.error().message;
  expect_refused(post_body("fullcmc", encode_est_body(*pki), as("device-factory"), {}, "application/pkcs7-mime; smime-type=CMC-request"),
                 501, "7030-4.3-a");
  EXPECT_EQ(get("/.well-known/est/cacerts").response.status, 200);
  expect_refused(get("/.well-known/est/twin-a/cacerts"), 404, "7030-3.2.2-g");
  expect_refused(get("/.well-known/est/" + c.default_ca + "/cacerts"), 404, "7030-3.2.2-g");
}

}  // namespace
}  // namespace estlab::gateway
