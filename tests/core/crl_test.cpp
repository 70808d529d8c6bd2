// CRLs made by `openssl ca -gencrl` (tests/data/core/make.sh), read back against expected.txt.
#include "estlab/core/crl.hpp"

#include <gtest/gtest.h>

#include <map>

#include "estlab/core/base64.hpp"
#include "estlab/core/certificate.hpp"
#include "test_support.hpp"

namespace estlab {
namespace {

using test::expected;
using test::read_data;
using test::read_text;

Crl load_crl(const std::string& file) {
  auto crl = Crl::parse(read_data(file));
  if (!crl.ok()) throw std::runtime_error(file + ": " + crl.error().message);
  return std::move(crl).value();
}

Certificate load_cert(const std::string& name) {
  auto cert = Certificate::parse(read_data(name + ".cert.pem"));
  if (!cert.ok()) throw std::runtime_error(name + ": " + cert.error().message);
  return std::move(cert).value();
}

// The reason as `openssl crl -text` prints it.
std::optional<RevocationReason> reason_from_openssl(const std::string& printed) {
  static const std::map<std::string, RevocationReason> reasons = {
      {"Unspecified", RevocationReason::unspecified},
      {"Key Compromise", RevocationReason::key_compromise},
      {"CA Compromise", RevocationReason::ca_compromise},
      {"Affiliation Changed", RevocationReason::affiliation_changed},
      {"Superseded", RevocationReason::superseded},
      {"Cessation Of Operation", RevocationReason::cessation_of_operation},
      {"Certificate Hold", RevocationReason::certificate_hold},
      {"Remove From CRL", RevocationReason::remove_from_crl},
      {"Privilege Withdrawn", RevocationReason::privilege_withdrawn},
      {"AA Compromise", RevocationReason::aa_compromise},
  };
  if (printed.empty()) return std::nullopt;
  return reasons.at(printed);
}

TEST(Crl, ParsesOpensslCrlHeader) {
  Crl crl = load_crl("int.crl.pem");
  EXPECT_EQ(crl.issuer().to_string(), expected("crl.issuer"));
  EXPECT_EQ(format_time(crl.this_update()), expected("crl.this_update"));
  ASSERT_TRUE(crl.next_update().has_value());
  EXPECT_EQ(format_time(*crl.next_update()), expected("crl.next_update"));
  EXPECT_EQ(crl.crl_number(), std::stoll(expected("crl.number")));
  // Spelled out as well: make.sh fixes these.
  EXPECT_EQ(crl.issuer().to_string(), "C=DE,O=estlab Lab,CN=estlab Test Issuing CA");
  EXPECT_EQ(crl.this_update(), test::utc("2025-06-01T00:00:00Z"));
  EXPECT_EQ(crl.next_update(), test::utc("2035-06-01T00:00:00Z"));
  EXPECT_EQ(crl.crl_number(), 42);
  // The CRL's issuer is the intermediate's subject (RFC 5280 name matching).
  EXPECT_TRUE(crl.issuer() == load_cert("int").subject());
}

TEST(Crl, EntriesWithReasons) {
  Crl crl = load_crl("int.crl.pem");
  auto entries = crl.entries();
  ASSERT_EQ(entries.size(), static_cast<std::size_t>(std::stoi(expected("crl.entries"))));
  for (std::size_t i = 0; i < entries.size(); ++i) {
    auto fields = test::split(expected("crl.entry." + std::to_string(i + 1)), "|");
    ASSERT_EQ(fields.size(), 3u);
    EXPECT_EQ(entries[i].serial_hex, fields[0]) << i;
    EXPECT_EQ(format_time(entries[i].revoked_at), fields[1]) << i;
    EXPECT_EQ(entries[i].reason, reason_from_openssl(fields[2])) << i;
  }
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].serial_hex, "3003");
  EXPECT_EQ(entries[0].reason, RevocationReason::key_compromise);
  EXPECT_EQ(entries[0].revoked_at, test::utc("2025-03-15T12:00:00Z"));
  EXPECT_EQ(entries[1].reason, RevocationReason::superseded);
  EXPECT_EQ(entries[2].reason, std::nullopt);  // no reasonCode extension
}

TEST(Crl, FindBySerial) {
  Crl crl = load_crl("int.crl.pem");
  auto revoked = crl.find(load_cert("revoked").serial_hex());
  ASSERT_TRUE(revoked.has_value());
  EXPECT_EQ(revoked->serial_hex, "3003");
  EXPECT_EQ(revoked->reason, RevocationReason::key_compromise);
  auto superseded = crl.find("3004");
  ASSERT_TRUE(superseded.has_value());
  EXPECT_EQ(superseded->reason, RevocationReason::superseded);
  EXPECT_FALSE(crl.find(load_cert("leaf").serial_hex()).has_value());
  EXPECT_FALSE(crl.find("30").has_value());  // a prefix is not a match
  EXPECT_FALSE(crl.find("").has_value());
}

TEST(Crl, SignedBy) {
  Crl crl = load_crl("int.crl.pem");
  EXPECT_TRUE(crl.signed_by(load_cert("int").public_key()));
  EXPECT_FALSE(crl.signed_by(load_cert("root").public_key()));
  EXPECT_FALSE(crl.signed_by(load_cert("leaf").public_key()));
  Crl root_crl = load_crl("root.crl.pem");
  EXPECT_TRUE(root_crl.signed_by(load_cert("root").public_key()));
  EXPECT_FALSE(root_crl.signed_by(load_cert("int").public_key()));
}

TEST(Crl, SignedByFailsWhenTheSignatureIsDamaged) {
  Bytes der = read_data("int.crl.der");
  der.back() ^= 0x01;
  auto crl = Crl::from_der(der);
  ASSERT_TRUE(crl.ok()) << crl.error().message;
  EXPECT_FALSE(crl->signed_by(load_cert("int").public_key()));
}

TEST(Crl, EmptyCrl) {
  Crl crl = load_crl("root.crl.pem");
  EXPECT_TRUE(crl.entries().empty());
  EXPECT_FALSE(crl.find("1001").has_value());
  EXPECT_EQ(crl.crl_number(), std::stoll(expected("root_crl.number")));
  EXPECT_EQ(crl.issuer().to_string(), "C=DE,O=estlab Lab,CN=estlab Test Root CA");
}

TEST(Crl, DerPemAndBase64AreTheSameCrl) {
  Bytes der = read_data("int.crl.der");
  Crl from_pem = load_crl("int.crl.pem");
  EXPECT_EQ(from_pem.der(), der);
  EXPECT_EQ(from_pem.pem(), read_text("int.crl.pem"));
  auto from_der = Crl::parse(der);
  ASSERT_TRUE(from_der.ok());
  EXPECT_EQ(from_der->der(), der);
  auto from_b64 = Crl::parse(as_bytes(base64_encode(der)));
  ASSERT_TRUE(from_b64.ok()) << from_b64.error().message;
  EXPECT_EQ(from_b64->entries().size(), 3u);
  Crl borrowed = Crl::borrow_shared(from_pem.native());
  EXPECT_EQ(borrowed.der(), der);
  EXPECT_NE(from_pem.to_text().find("Key Compromise"), std::string::npos);
}

TEST(Crl, ParseErrors) {
  auto garbage = Crl::from_der(as_bytes("garbage"));
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().code, ErrorCode::invalid_input);
  EXPECT_EQ(garbage.error().message.rfind("CRL: not a DER X.509 CRL", 0), 0u) << garbage.error().message;

  Bytes der = read_data("int.crl.der");
  Bytes trailing = der;
  trailing.push_back(0x00);
  auto extra = Crl::from_der(trailing);
  ASSERT_FALSE(extra.ok());
  EXPECT_EQ(extra.error().message, "CRL: trailing bytes after the DER CRL");

  Bytes truncated(der.begin(), der.end() - 1);
  auto cut = Crl::parse(truncated);
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.error().message.rfind("CRL: DER: element says", 0), 0u) << cut.error().message;

  auto cert = Crl::parse(read_data("leaf.cert.der"));
  ASSERT_FALSE(cert.ok());
  EXPECT_EQ(cert.error().message.rfind("CRL: not a DER X.509 CRL", 0), 0u) << cert.error().message;
  auto cert_pem = Crl::parse(read_data("leaf.cert.pem"));
  ASSERT_FALSE(cert_pem.ok());
  EXPECT_EQ(cert_pem.error().message, "CRL: no PEM block labelled X509 CRL");
}

TEST(RevocationReason, ParseVariants) {
  for (std::string_view text : {"keyCompromise", "key-compromise", "KEY_COMPROMISE", "KeyCompromise", "1"}) {
    auto reason = parse_revocation_reason(text);
    ASSERT_TRUE(reason.ok()) << text << ": " << reason.error().message;
    EXPECT_EQ(*reason, RevocationReason::key_compromise) << text;
  }
  EXPECT_EQ(*parse_revocation_reason("ca-compromise"), RevocationReason::ca_compromise);
  EXPECT_EQ(*parse_revocation_reason("aa-compromise"), RevocationReason::aa_compromise);
  EXPECT_EQ(*parse_revocation_reason("cessation-of-operation"), RevocationReason::cessation_of_operation);
  EXPECT_EQ(*parse_revocation_reason("removeFromCRL"), RevocationReason::remove_from_crl);
  EXPECT_EQ(*parse_revocation_reason("0"), RevocationReason::unspecified);
  EXPECT_EQ(*parse_revocation_reason("8"), RevocationReason::remove_from_crl);
  EXPECT_EQ(*parse_revocation_reason("10"), RevocationReason::aa_compromise);
}

TEST(RevocationReason, NamesRoundTrip) {
  for (int code : {0, 1, 2, 3, 4, 5, 6, 8, 9, 10}) {
    auto reason = static_cast<RevocationReason>(code);
    auto parsed = parse_revocation_reason(to_string(reason));
    ASSERT_TRUE(parsed.ok()) << code;
    EXPECT_EQ(*parsed, reason);
  }
  EXPECT_EQ(to_string(RevocationReason::key_compromise), "keyCompromise");
  EXPECT_EQ(to_string(RevocationReason::ca_compromise), "cACompromise");
}

TEST(RevocationReason, ErrorListsTheValidNames) {
  const std::string valid =
      "(valid: unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, "
      "certificateHold, removeFromCRL, privilegeWithdrawn, aACompromise)";
  // 7 is unused in RFC 5280's CRLReason.
  for (std::string_view bad : {"stolen", "7", "11", "", "key compromise"}) {
    auto reason = parse_revocation_reason(bad);
    ASSERT_FALSE(reason.ok()) << bad;
    EXPECT_EQ(reason.error().code, ErrorCode::invalid_input);
    EXPECT_EQ(reason.error().message, "unknown revocation reason '" + std::string(bad) + "' " + valid);
  }
}

}  // namespace
}  // namespace estlab
