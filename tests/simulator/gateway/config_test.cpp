// est.properties as the gateway reads it (PG-CFG-1): the product's keys, the lab's keys, defaults
// per profile, the PG-ENR-4 polarity, and errors that name file, line and key.
#include "estlab/gateway/config.hpp"

#include <gtest/gtest.h>

namespace estlab::gateway {
namespace {

GatewayConfig parse(const std::string& text, std::optional<Profile> profile = std::nullopt) {
  auto properties = Properties::parse(text, "est.properties");
  EXPECT_TRUE(properties.ok()) << properties.error().message;
  return GatewayConfig::from_properties(*properties, "/lab/config", profile);
}

std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(GatewayConfig, ProfileDefaults) {
  EXPECT_EQ(GatewayConfig::defaults(Profile::protocol_gateway).challenge_password, ChallengePasswordPolicy::deny);  // PG-PWD-1
  EXPECT_EQ(GatewayConfig::defaults(Profile::rfc7030).challenge_password, ChallengePasswordPolicy::check_linking);
  EXPECT_FALSE(GatewayConfig::defaults(Profile::rfc7030).serverkeygen_enabled);  // RFC 7030 4.4: off by default
  EXPECT_EQ(parse("estlab.profile = protocol-gateway\n").profile, Profile::protocol_gateway);
  EXPECT_EQ(parse("estlab.profile = protocol-gateway\n", Profile::rfc7030).profile, Profile::rfc7030);  // --profile wins
}

TEST(GatewayConfig, RenewalRulePolarityIsExplicit) {
  EXPECT_TRUE(parse("allowRenewalWithOldCertificates = true\n").renewal_requires_last_issued());
  EXPECT_FALSE(parse("allowRenewalWithOldCertificates = false\n").renewal_requires_last_issued());
  EXPECT_FALSE(parse("allowRenewalWithOldCertificates = true\nestlab.renewal-rule-polarity = inverted\n").renewal_requires_last_issued());
  EXPECT_TRUE(parse("allowRenewalWithOldCertificates = false\nestlab.renewal-rule-polarity = inverted\n").renewal_requires_last_issued());
}

TEST(GatewayConfig, ProductKeysPathsAndLists) {
  const auto c = parse(
      "enroll.use-authentication-cert = true\n"
      "enroll.mandatorypassword = TRUE\n"
      "handler.1.realm = Factory Realm\n"
      "estlab.base-dir = ..\n"
      "estlab.tls.certificate = gateway/gw.pem\n"
      "estlab.trust-anchors = /abs/anchors.pem\n"
      "estlab.ca.labels = issuing, twin-a\n"
      "estlab.faults = skip-eku-check, no-base64\n"
      "estlab.timeouts.read = 2m\n"
      "estlab.answer-delay = 3\n"
      "estlab.prereg.7.cn = device-7\n"
      "estlab.prereg.7.user = u7\n");
  EXPECT_TRUE(c.use_authentication_cert);
  EXPECT_TRUE(c.mandatory_password);
  EXPECT_EQ(c.realm, "Factory Realm");
  EXPECT_EQ(c.tls_certificate, std::filesystem::path("/lab/config/../gateway/gw.pem"));
  EXPECT_EQ(c.trust_anchors, std::filesystem::path("/abs/anchors.pem"));
  EXPECT_EQ(c.ca_labels, (std::vector<std::string>{"issuing", "twin-a"}));
  EXPECT_EQ(c.faults, (std::set<Fault>{Fault::skip_eku_check, Fault::no_base64}));
  EXPECT_EQ(c.timeouts.read, std::chrono::minutes(2));
  EXPECT_EQ(c.answer_delay, std::chrono::seconds(3));
  ASSERT_EQ(c.preregistered.size(), 1u);
  EXPECT_EQ(c.preregistered[0].common_name, "device-7");
  EXPECT_EQ(c.preregistered[0].user, "u7");
}

TEST(GatewayConfig, BadValuesNameFileLineAndKey) {
  struct Case {
    std::string text;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"\nallowRenewalWithOldCertificates = maybe\n", "est.properties:2: allowRenewalWithOldCertificates"},
      {"estlab.listen.port = 70000\n", "estlab.listen.port"},
      {"estlab.profile = rfc9999\n", "est.properties:1: estlab.profile: expected rfc7030 or protocol-gateway"},
      {"estlab.renewal-rule-polarity = sideways\n", "expected one of documented, inverted"},
      {"estlab.tls.min-version = 1.3\nestlab.tls.max-version = 1.2\n", "is above estlab.tls.max-version"},
      {"estlab.faults = no-such-fault\n", "unknown fault 'no-such-fault'"},
      {"estlab.serverkeygen.key-type = dsa\n", "estlab.serverkeygen.key-type"},
      {"estlab.prereg.1.user = x\n", "estlab.prereg.1.cn: missing"},
      {"estlab.timeouts.read = 0\n", "at least 1 second"},
      {"estlab.answer-delay = soon\n", "estlab.answer-delay"},
  };
  for (const auto& c : cases) {
    const auto message = error_of(c.text);
    EXPECT_NE(message.find(c.expected), std::string::npos) << "got '" << message << "' for:\n" << c.text;
  }
}

TEST(GatewayConfig, UnknownKeysAreWarnedWithASuggestion) {
  const auto c = parse("allowRenewalWithOldCertificate = true\nhandler.2.idm.requestUrl = https://x\n");
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find("allowRenewalWithOldCertificates"), std::string::npos) << c.warnings[0];
}

TEST(GatewayConfig, FullcmcAndLabelsSwitches) {
  const auto defaults = parse("");
  EXPECT_TRUE(defaults.fullcmc_enabled);
  EXPECT_TRUE(defaults.labels_enabled);
  const auto off = parse("estlab.fullcmc.enabled = false\nestlab.ca.labels.enabled = false\n");
  EXPECT_FALSE(off.fullcmc_enabled);
  EXPECT_FALSE(off.labels_enabled);
  EXPECT_TRUE(off.warnings.empty()) << off.warnings.front();
  EXPECT_NE(error_of("estlab.fullcmc.enabled = sometimes\n").find("estlab.fullcmc.enabled"), std::string::npos);
}

}  // namespace
}  // namespace estlab::gateway
