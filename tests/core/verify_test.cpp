// RFC 5280 path validation through OpenSSL's verifier, with the validation time as a parameter.
// The chain (make.sh): root (RSA, 2024-2044) -> issuing CA (P-384, 2024-2034, pathlen 0) -> leaves.
//   leaf     device-1.example, 2025-01-01..2026-01-01, EKU clientAuth+serverAuth
//   server   server.example, EKU serverAuth only
//   revoked  device-revoked, revoked 2025-03-15 (keyCompromise) on the issuing CA's CRL
//   plain    no EKU
// Both CRLs: thisUpdate 2025-06-01, nextUpdate 2035-06-01.
#include "estlab/core/verify.hpp"

#include <gtest/gtest.h>

#include "estlab/core/oids.hpp"
#include "test_support.hpp"

namespace estlab {
namespace {

Certificate load_cert(const std::string& name) {
  auto cert = Certificate::parse(test::read_data(name + ".cert.pem"));
  if (!cert.ok()) throw std::runtime_error(name + ": " + cert.error().message);
  return std::move(cert).value();
}

Crl load_crl(const std::string& file) {
  auto crl = Crl::parse(test::read_data(file));
  if (!crl.ok()) throw std::runtime_error(file + ": " + crl.error().message);
  return std::move(crl).value();
}

const TimePoint kInside = test::utc("2025-07-01T00:00:00Z");  // every certificate and CRL is current

PathValidation chain_options(TimePoint at = kInside) {
  PathValidation options;
  options.trust_anchors = {load_cert("root")};
  options.intermediates = {load_cert("int")};
  options.at = at;
  return options;
}

PathVerdict validate(const std::string& leaf, const PathValidation& options) {
  auto verdict = validate_path(load_cert(leaf), options);
  if (!verdict.ok()) throw std::runtime_error("verifier did not run: " + verdict.error().message);
  return std::move(verdict).value();
}

void expect_invalid(const PathVerdict& verdict, int code, int depth, const std::string& reason) {
  EXPECT_FALSE(verdict.valid);
  EXPECT_EQ(verdict.openssl_code, code) << verdict.reason;
  EXPECT_EQ(verdict.error_depth, depth) << verdict.reason;
  EXPECT_EQ(verdict.reason, reason);
  // A chain that did not validate has no path. (An EKU refusal comes after a validated chain; its
  // path is left as validate_path fills it.)
  if (code != X509_V_ERR_INVALID_PURPOSE) {
    EXPECT_TRUE(verdict.path.empty());
  }
}

TEST(ValidatePath, ValidChainRootIntermediateLeaf) {
  PathVerdict verdict = validate("leaf", chain_options());
  ASSERT_TRUE(verdict.valid) << verdict.reason << " at depth " << verdict.error_depth;
  EXPECT_EQ(verdict.openssl_code, 0);
  EXPECT_EQ(verdict.reason, "");
  ASSERT_EQ(verdict.path.size(), 3u);  // leaf first, anchor last
  EXPECT_TRUE(verdict.path[0] == load_cert("leaf"));
  EXPECT_TRUE(verdict.path[1] == load_cert("int"));
  EXPECT_TRUE(verdict.path[2] == load_cert("root"));
}

TEST(ValidatePath, IntermediateAsLeafAndRootAlone) {
  PathVerdict intermediate = validate("int", chain_options());
  EXPECT_TRUE(intermediate.valid) << intermediate.reason;
  EXPECT_EQ(intermediate.path.size(), 2u);
  PathVerdict root = validate("root", chain_options());
  EXPECT_TRUE(root.valid) << root.reason;
  EXPECT_EQ(root.path.size(), 1u);
}

TEST(ValidatePath, MissingIntermediate) {
  PathValidation options = chain_options();
  options.intermediates.clear();
  expect_invalid(validate("leaf", options), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 0,
                 "unable to get local issuer certificate");
}

TEST(ValidatePath, NoTrustAnchor) {
  PathValidation options = chain_options();
  options.intermediates.push_back(load_cert("root"));  // offered, but not trusted
  options.trust_anchors.clear();
  expect_invalid(validate("leaf", options), X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, 2,
                 "self-signed certificate in certificate chain");
}

// The same leaf, at times inside and outside its validity (2025-01-01 .. 2026-01-01).
TEST(ValidatePath, ValidationTimeIsAParameter) {
  Certificate leaf = load_cert("leaf");
  EXPECT_TRUE(validate("leaf", chain_options(test::utc("2025-01-01T00:00:00Z"))).valid);
  EXPECT_TRUE(validate("leaf", chain_options(leaf.not_after() - Seconds(1))).valid);
  expect_invalid(validate("leaf", chain_options(leaf.not_after() + Seconds(1))), X509_V_ERR_CERT_HAS_EXPIRED, 0,
                 "certificate has expired");
  expect_invalid(validate("leaf", chain_options(test::utc("2026-06-01T00:00:00Z"))), X509_V_ERR_CERT_HAS_EXPIRED, 0,
                 "certificate has expired");
  expect_invalid(validate("leaf", chain_options(test::utc("2024-12-31T23:59:59Z"))), X509_V_ERR_CERT_NOT_YET_VALID, 0,
                 "certificate is not yet valid");
}

// RFC 5280 4.1.2.5: the validity period is notBefore through notAfter, inclusive, and
// Certificate::valid_at agrees; OpenSSL's verifier counts notAfter itself as expired.
TEST(ValidatePath, NotAfterItselfIsInsideTheValidityPeriod) {
  Certificate leaf = load_cert("leaf");
  ASSERT_TRUE(leaf.valid_at(leaf.not_after()));
  EXPECT_TRUE(validate("leaf", chain_options(leaf.not_before())).valid);
  PathVerdict verdict = validate("leaf", chain_options(leaf.not_after()));
  EXPECT_TRUE(verdict.valid) << verdict.reason;
}

TEST(ValidatePath, ExpiredIntermediateIsReportedAtItsDepth) {
  // In 2034-07 the issuing CA (until 2034-06-01) has expired; "plain" is valid until 2055.
  expect_invalid(validate("plain", chain_options(test::utc("2034-07-01T00:00:00Z"))), X509_V_ERR_CERT_HAS_EXPIRED, 1,
                 "certificate has expired");
}

TEST(ValidatePath, RevokedLeafWithCrl) {
  PathValidation options = chain_options();
  options.crls = {load_crl("int.crl.pem")};
  options.revocation = RevocationCheck::leaf;
  expect_invalid(validate("revoked", options), X509_V_ERR_CERT_REVOKED, 0, "certificate revoked");
  // Not revoked: the same options accept the other leaf.
  PathVerdict good = validate("leaf", options);
  EXPECT_TRUE(good.valid) << good.reason;
}

TEST(ValidatePath, RevocationIsOnlyCheckedWhenAsked) {
  PathValidation options = chain_options();
  options.crls = {load_crl("int.crl.pem")};
  options.revocation = RevocationCheck::none;
  PathVerdict verdict = validate("revoked", options);
  EXPECT_TRUE(verdict.valid) << verdict.reason;
}

TEST(ValidatePath, RevocationCheckWithoutACrl) {
  PathValidation options = chain_options();
  options.revocation = RevocationCheck::leaf;
  expect_invalid(validate("leaf", options), X509_V_ERR_UNABLE_TO_GET_CRL, 0, "unable to get certificate CRL");
}

TEST(ValidatePath, CrlTimesFollowTheValidationTime) {
  // Before the CRL's thisUpdate (2025-06-01) the CRL is not yet valid.
  PathValidation options = chain_options(test::utc("2025-05-01T00:00:00Z"));
  options.crls = {load_crl("int.crl.pem")};
  options.revocation = RevocationCheck::leaf;
  expect_invalid(validate("revoked", options), X509_V_ERR_CRL_NOT_YET_VALID, 0, "CRL is not yet valid");
}

TEST(ValidatePath, WholeChainNeedsEveryCrl) {
  PathValidation options = chain_options();
  options.revocation = RevocationCheck::whole_chain;
  options.crls = {load_crl("int.crl.pem")};
  expect_invalid(validate("leaf", options), X509_V_ERR_UNABLE_TO_GET_CRL, 1, "unable to get certificate CRL");
  options.crls.push_back(load_crl("root.crl.pem"));
  PathVerdict verdict = validate("leaf", options);
  EXPECT_TRUE(verdict.valid) << verdict.reason << " at depth " << verdict.error_depth;
  expect_invalid(validate("revoked", options), X509_V_ERR_CERT_REVOKED, 0, "certificate revoked");
}

TEST(ValidatePath, RequiredEkuPresent) {
  PathValidation options = chain_options();
  options.required_eku = std::string(oid::client_auth);
  EXPECT_TRUE(validate("leaf", options).valid);
  options.required_eku = "serverAuth";  // by name
  EXPECT_TRUE(validate("leaf", options).valid);
  EXPECT_TRUE(validate("server", options).valid);
}

TEST(ValidatePath, RequiredEkuMissingNamesTheEku) {
  PathValidation options = chain_options();
  options.required_eku = std::string(oid::client_auth);
  expect_invalid(validate("server", options), X509_V_ERR_INVALID_PURPOSE, 0,
                 "certificate lacks the extended key usage clientAuth");
  options.required_eku = std::string(oid::cmc_ra);
  expect_invalid(validate("leaf", options), X509_V_ERR_INVALID_PURPOSE, 0,
                 "certificate lacks the extended key usage cmcRA");
  // No EKU extension at all is not "any purpose" for the suite.
  options.required_eku = std::string(oid::server_auth);
  expect_invalid(validate("plain", options), X509_V_ERR_INVALID_PURPOSE, 0,
                 "certificate lacks the extended key usage serverAuth");
}

TEST(ValidatePath, ChainFailureWinsOverEku) {
  PathValidation options = chain_options(test::utc("2026-06-01T00:00:00Z"));
  options.required_eku = std::string(oid::cmc_ra);
  expect_invalid(validate("leaf", options), X509_V_ERR_CERT_HAS_EXPIRED, 0, "certificate has expired");
}

TEST(ValidatePath, WrongAnchor) {
  PathValidation options = chain_options();
  options.trust_anchors = {load_cert("leaf")};  // some unrelated certificate
  PathVerdict verdict = validate("server", options);
  EXPECT_FALSE(verdict.valid);
  EXPECT_NE(verdict.openssl_code, 0);
}

}  // namespace
}  // namespace estlab
