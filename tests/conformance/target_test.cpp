// Target files and what the suite sends: several profiles in one file, target facts (subject
// template, credentials, CA labels), every misspelled name refused with file:line and the closest
// known one; fresh subjects and base64 layouts as the CSR maker builds them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "csr_maker.hpp"
#include "estlab/conformance/target.hpp"
#include "estlab/core/base64.hpp"
#include "estlab/core/est.hpp"
#include "lab_support.hpp"

namespace estlab::conformance {
namespace {

namespace fs = std::filesystem;

class TargetFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("estlab-target-test-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    lab_ = test::template_lab_dir();
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& yaml) {
    const auto file = dir_ / "target.yaml";
    std::ofstream(file) << "trust_anchors: " << (lab_ / "trust" / "anchors.pem").string() << "\n" << yaml;
    return file;
  }
  std::string error_of(const std::string& yaml) {
    try {
      load_target_file(write(yaml));
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
  fs::path lab_;
};

TEST_F(TargetFile, OneFileSeveralProfilesEachWithItsOwnKeys) {
  const auto targets = load_target_file(write(
      "name: vendor gateway\n"
      "base_url: https://127.0.0.1:8443\n"
      "subject_template: \"O=Vendor,CN={{cn}}\"\n"
      "features: [tls1.2, csrattrs]\n"
      "credentials: {preregistered: {user: meter-1, password: s3cret, subject: \"CN=meter-1\"}}\n"
      "ca_labels: {other: second}\n"
      "profiles:\n"
      "  rfc7030: {}\n"
      "  protocol-gateway: {base_url: \"https://127.0.0.1:9443\", label: pg, features: [tls1.3]}\n"));
  ASSERT_EQ(targets.size(), 2u);
  const Target& rfc = targets[0].profile == "rfc7030" ? targets[0] : targets[1];
  const Target& pg = targets[0].profile == "rfc7030" ? targets[1] : targets[0];
  EXPECT_EQ(rfc.port, 8443);
  EXPECT_EQ(pg.port, 9443);
  EXPECT_EQ(rfc.default_label, "");
  EXPECT_EQ(pg.default_label, "pg");
  EXPECT_EQ(rfc.features, (std::set<std::string>{"tls1.2", "csrattrs"}));
  EXPECT_EQ(pg.features, (std::set<std::string>{"tls1.3"}));
  for (const auto* t : {&rfc, &pg}) {
    EXPECT_EQ(t->name, "vendor gateway");
    EXPECT_EQ(t->subject_template, "O=Vendor,CN={{cn}}");
    ASSERT_EQ(t->credentials.count("preregistered"), 1u);
    EXPECT_EQ(t->credentials.at("preregistered").user, "meter-1");
    EXPECT_EQ(t->credentials.at("preregistered").subject, "CN=meter-1");
    EXPECT_EQ(t->ca_labels.at("other"), "second");
    EXPECT_FALSE(t->controls_isolated) << "hooks act on a shared gateway";
    EXPECT_FALSE(t->trust_anchors.empty());
  }
}

TEST_F(TargetFile, EveryMisspelledNameIsAnErrorWithFileLineAndTheClosestName) {
  const std::string head = "profile: rfc7030\nbase_url: https://127.0.0.1:8443\n";
  struct Case {
    std::string yaml;
    std::string message;
  };
  const std::vector<Case> cases = {
      {head + "features: [tls13]\n", ":4: unknown feature 'tls13' (did you mean 'tls1.3'?)"},
      {head + "identities:\n  device-factroy: {certificate: a.pem, key: a.key}\n", ":5: unknown role 'device-factroy' (did you mean 'device-factory'?)"},
      {head + "controls: {revokee: \"true\"}\n", ":4: unknown control 'revokee' (did you mean 'revoke'?)"},
      {head + "credentials: {prereg: {user: a, password: b, subject: \"CN=a\"}}\n", ":4: unknown credential 'prereg'"},
      {head + "ca_labels: {othr: x}\n", ":4: unknown CA label purpose 'othr' (did you mean 'other'?)"},
      {head + "featurs: [tls1.3]\n", ":4: unknown key 'featurs' (did you mean 'features'?)"},
      {head + "subject_template: \"CN=device\"\n", ":4: subject_template must contain {{cn}}"},
      {head + "credentials: {preregistered: {user: a, password: b}}\n", "needs user, password and subject"},
      {"base_url: https://127.0.0.1:8443\nprofiles: {rfc9999: {}}\n", "profile 'rfc9999' is not rfc7030 or protocol-gateway"},
      {"base_url: https://127.0.0.1:8443\nprofile: rfc7030\nprofiles: {rfc7030: {}}\n", "give profile or profiles, not both"},
      {"profile: rfc7030\n", "missing base_url"},
  };
  for (const auto& c : cases) {
    const auto message = error_of(c.yaml);
    EXPECT_NE(message.find("target.yaml"), std::string::npos) << message;
    EXPECT_NE(message.find(c.message), std::string::npos) << "got: " << message << "\nfor:\n" << c.yaml;
  }
}

TEST(FreshSubject, TheTargetsTemplateWithTheScenariosCommonName) {
  EXPECT_EQ(fresh_subject("C=SE,O=estlab lab devices,CN={{cn}}", "renew-1"), "C=SE,O=estlab lab devices,CN=renew-1");
  EXPECT_EQ(fresh_subject("CN={{cn}},OU=Meters,L=Uppsala", "m-2"), "CN=m-2,OU=Meters,L=Uppsala");
  // No commonName at all (PG-SAN-2): the RDN that holds the placeholder goes.
  EXPECT_EQ(fresh_subject("C=SE,O=x,CN={{cn}}", ""), "C=SE,O=x");
  EXPECT_EQ(fresh_subject("CN={{cn}},OU=Meters", ""), "OU=Meters");
  EXPECT_EQ(fresh_subject("CN={{cn}}", ""), "");
}

TEST(Base64Layout, EveryLayoutDecodesToTheSameDerAndLooksAsNamed) {
  Bytes der(300);
  for (std::size_t i = 0; i < der.size(); ++i) der[i] = static_cast<std::uint8_t>(i * 7);
  const std::string one_line = base64_encode(der);
  EXPECT_EQ(layout_base64(der, "one-line"), one_line);
  EXPECT_EQ(layout_base64(der, "one-line-lf"), one_line + "\n");
  EXPECT_EQ(layout_base64(der, "one-line-crlf"), one_line + "\r\n");
  const auto wrapped64 = layout_base64(der, "wrap64-crlf");
  EXPECT_EQ(wrapped64.substr(64, 2), "\r\n");
  EXPECT_EQ(layout_base64(der, ""), wrapped64);
  const auto wrapped76 = layout_base64(der, "wrap76-lf");
  EXPECT_EQ(wrapped76[76], '\n');
  EXPECT_EQ(wrapped76.find('\r'), std::string::npos);
  const auto spaced = layout_base64(der, "whitespace");
  EXPECT_NE(spaced.find(' '), std::string::npos);
  EXPECT_NE(spaced.find('\t'), std::string::npos);
  EXPECT_EQ(layout_base64(der, "pem").rfind("-----BEGIN CERTIFICATE REQUEST-----", 0), 0u);
  for (const char* layout : {"one-line", "one-line-lf", "one-line-crlf", "wrap64-crlf", "wrap76-lf", "whitespace"}) {
    auto decoded = decode_est_body(layout_base64(der, layout), std::nullopt);
    ASSERT_TRUE(decoded.ok()) << layout << ": " << decoded.error().message;
    EXPECT_EQ(*decoded, der) << layout;
  }
}

}  // namespace
}  // namespace estlab::conformance
