// PKCS#10 requests (RFC 2986): CsrBuilder for every key type, every field read back, openssl's
// CSRs parsed, ours accepted by `openssl req -verify`, and proof of possession enforced on parse.
#include "estlab/core/csr.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "estlab/core/certificate.hpp"
#include "estlab/core/encoding.hpp"
#include "estlab/core/oids.hpp"
#include "test_support.hpp"

namespace estlab {
namespace {

using test::cached_key;
using test::expected;
using test::read_data;
using test::read_text;

const std::map<KeyType, std::string> kSignatureAlgorithm = {
    {KeyType::ec_p256, "ecdsa-with-SHA256"},       {KeyType::ec_p384, "ecdsa-with-SHA384"},
    {KeyType::rsa2048, "sha256WithRSAEncryption"}, {KeyType::rsa3072, "sha256WithRSAEncryption"},
    {KeyType::rsa4096, "sha256WithRSAEncryption"}, {KeyType::ed25519, "ED25519"},
};

// A private extension whose value is DER UTF8String "hello".
const RawExtension kRawExtension{"1.3.6.1.4.1.99999.42", false, {0x0c, 0x05, 'h', 'e', 'l', 'l', 'o'}};

const std::vector<SubjectAltName> kSans = {
    SubjectAltName::dns("device-7.example"), SubjectAltName::ip("192.0.2.7"), SubjectAltName::ip("2001:db8::7"),
    SubjectAltName::email("device-7@example.com"), SubjectAltName::uri("coap://device-7.example/est")};

CsrBuilder full_builder() {
  CsrBuilder builder;
  builder.subject(*DistinguishedName::parse("CN=device-7,OU=Devices,O=estlab Lab"));
  for (const auto& san : kSans) builder.add_subject_alt_name(san);
  builder.add_extended_key_usage(std::string(oid::client_auth))
      .add_extended_key_usage("cmcRA")  // a name OpenSSL knows
      .key_usage(key_usage::digital_signature | key_usage::key_agreement)
      .add_extension(kRawExtension)
      .challenge_password("Secret-1234")
      .unstructured_name("estlab unit 7")
      .unstructured_address("Lab 3, Bench 2");
  return builder;
}

void expect_full_fields(const Csr& csr, const PrivateKey& key) {
  EXPECT_EQ(csr.subject().to_string(), "CN=device-7,OU=Devices,O=estlab Lab");
  EXPECT_TRUE(csr.public_key() == key.public_key());
  EXPECT_TRUE(csr.signature_valid());
  EXPECT_EQ(csr.subject_alt_names(), kSans);
  EXPECT_EQ(csr.requested_extended_key_usages(),
            (std::vector<std::string>{std::string(oid::client_auth), std::string(oid::cmc_ra)}));
  EXPECT_EQ(csr.requested_key_usage(), key_usage::digital_signature | key_usage::key_agreement);
  EXPECT_EQ(csr.challenge_password(), "Secret-1234");
  EXPECT_EQ(csr.challenge_password_encoding(), StringEncoding::printable);
  EXPECT_EQ(csr.unstructured_name(), "estlab unit 7");
  EXPECT_EQ(csr.unstructured_address(), "Lab 3, Bench 2");

  auto exts = csr.requested_extensions();
  std::vector<std::string> oids;
  for (const auto& e : exts) oids.push_back(e.oid);
  EXPECT_EQ(oids, (std::vector<std::string>{"2.5.29.17", "2.5.29.37", "2.5.29.15", kRawExtension.oid}));
  auto raw = std::find_if(exts.begin(), exts.end(), [](const RawExtension& e) { return e.oid == kRawExtension.oid; });
  ASSERT_NE(raw, exts.end());
  EXPECT_EQ(raw->critical, false);
  EXPECT_EQ(raw->value_der, kRawExtension.value_der);
  auto ku = std::find_if(exts.begin(), exts.end(), [](const RawExtension& e) { return e.oid == "2.5.29.15"; });
  ASSERT_NE(ku, exts.end());
  EXPECT_TRUE(ku->critical);  // keyUsage is requested critical (RFC 5280 4.2.1.3 SHOULD)
  EXPECT_EQ(to_hex(ku->value_der), "03020388");  // BIT STRING, 3 unused bits, 1000 1xxx

  auto attrs = csr.attribute_oids();
  std::sort(attrs.begin(), attrs.end());
  std::vector<std::string> want = {std::string(oid::challenge_password), std::string(oid::unstructured_name),
                                   std::string(oid::unstructured_address), std::string(oid::extension_request)};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(attrs, want);
}

class CsrForKeyType : public testing::TestWithParam<KeyType> {};

TEST_P(CsrForKeyType, BuildsAndReadsBackEveryField) {
  const PrivateKey& key = cached_key(GetParam());
  auto csr = full_builder().sign(key);
  ASSERT_TRUE(csr.ok()) << csr.error().message;
  expect_full_fields(*csr, key);
  EXPECT_EQ(csr->signature_algorithm(), kSignatureAlgorithm.at(GetParam()));
  // The builder hands over the request it signed, not a parse of its DER: that request's signature
  // must verify as it stands (signature_valid() says so without checking again).
  EXPECT_EQ(X509_REQ_verify(csr->native(), key.public_key().native()), 1);

  // The same fields survive DER and PEM.
  auto from_der = Csr::from_der(csr->der());
  ASSERT_TRUE(from_der.ok()) << from_der.error().message;
  expect_full_fields(*from_der, key);
  auto from_pem = Csr::parse(as_bytes(csr->pem()));
  ASSERT_TRUE(from_pem.ok()) << from_pem.error().message;
  EXPECT_EQ(from_pem->der(), csr->der());
  EXPECT_EQ(csr->pem().rfind("-----BEGIN CERTIFICATE REQUEST-----\n", 0), 0u);
}

TEST_P(CsrForKeyType, OpensslReqVerifyAcceptsIt) {
  ESTLAB_REQUIRE_OPENSSL_COMMAND();
  auto csr = full_builder().sign(cached_key(GetParam()));
  ASSERT_TRUE(csr.ok()) << csr.error().message;
  test::TempFile file("req.pem");
  file.write(csr->pem());
  auto out = test::run_command("openssl req -verify -noout -in '" + file.path() + "'");
  EXPECT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("verify OK"), std::string::npos) << out.output;

  // And openssl refuses the same request with a damaged signature: the check is not vacuous.
  test::TempFile bad("bad.der");
  bad.write(with_corrupted_signature(csr->der()));
  auto refused = test::run_command("openssl req -verify -noout -inform DER -in '" + bad.path() + "'");
  // OpenSSL 3.0 exits 0 even here; its message is what tells.
  EXPECT_NE(refused.output.find("verify failure"), std::string::npos) << refused.output;
  EXPECT_EQ(refused.output.find("verify OK"), std::string::npos) << refused.output;
}

TEST_P(CsrForKeyType, CorruptedSignatureIsRefusedUnlessSkipped) {
  const PrivateKey& key = cached_key(GetParam());
  auto csr = CsrBuilder().subject(*DistinguishedName::parse("CN=pop")).sign(key);
  ASSERT_TRUE(csr.ok()) << csr.error().message;
  Bytes corrupted = with_corrupted_signature(csr->der());
  ASSERT_EQ(corrupted.size(), csr->der().size());
  EXPECT_EQ(corrupted.back(), csr->der().back() ^ 0x01);
  EXPECT_TRUE(std::equal(corrupted.begin(), corrupted.end() - 1, csr->der().begin()));

  auto required = Csr::from_der(corrupted, Csr::SignatureCheck::required);
  ASSERT_FALSE(required.ok());
  EXPECT_EQ(required.error().code, ErrorCode::verify_failed);
  EXPECT_EQ(required.error().message, "CSR signature does not verify");
  auto required_parse = Csr::parse(as_bytes(pem_encode("CERTIFICATE REQUEST", corrupted)));
  ASSERT_FALSE(required_parse.ok());
  EXPECT_EQ(required_parse.error().message, "CSR signature does not verify");

  // RFC 7030 4.4.1 (serverkeygen) may ignore the signature: the request is still readable.
  auto skipped = Csr::from_der(corrupted, Csr::SignatureCheck::skip);
  ASSERT_TRUE(skipped.ok()) << skipped.error().message;
  EXPECT_FALSE(skipped->signature_valid());
  EXPECT_EQ(skipped->subject().common_name(), "pop");
  EXPECT_TRUE(skipped->public_key() == key.public_key());

  // A good signature checked under skip still reports itself valid.
  auto good_skipped = Csr::from_der(csr->der(), Csr::SignatureCheck::skip);
  ASSERT_TRUE(good_skipped.ok());
  EXPECT_TRUE(good_skipped->signature_valid());
}

INSTANTIATE_TEST_SUITE_P(AllKeyTypes, CsrForKeyType, testing::ValuesIn(all_key_types()),
                         [](const testing::TestParamInfo<KeyType>& info) {
                           std::string name(to_string(info.param));
                           name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
                           return name;
                         });

TEST(CsrBuilder, Utf8ChallengePassword) {
  auto csr = CsrBuilder()
                 .subject(*DistinguishedName::parse("CN=x"))
                 .challenge_password("p\xc3\xa4sswort", StringEncoding::utf8)
                 .sign(cached_key(KeyType::ec_p256));
  ASSERT_TRUE(csr.ok()) << csr.error().message;
  EXPECT_EQ(csr->challenge_password(), "p\xc3\xa4sswort");
  EXPECT_EQ(csr->challenge_password_encoding(), StringEncoding::utf8);
  // 0c = UTF8String tag in the DER, with the 9-byte value.
  EXPECT_NE(to_hex(csr->der()).find("0c0970c3a4737377", 0), std::string::npos);
}

TEST(CsrBuilder, PrintableChallengePasswordIsAPrintableString) {
  auto csr = CsrBuilder()
                 .subject(*DistinguishedName::parse("CN=x"))
                 .challenge_password("Secret-1234", StringEncoding::printable)
                 .sign(cached_key(KeyType::ec_p256));
  ASSERT_TRUE(csr.ok()) << csr.error().message;
  EXPECT_EQ(csr->challenge_password_encoding(), StringEncoding::printable);
  // 13 = PrintableString tag, then length 11 and "Secret-1234".
  EXPECT_NE(to_hex(csr->der()).find("130b" + to_hex(as_bytes("Secret-1234"))), std::string::npos);
}

TEST(CsrBuilder, PrintableChallengePasswordRefusesNonPrintableCharacters) {
  for (std::string_view password : {"p@ss", "secret!", "under_score", "p\xc3\xa4ss"}) {
    auto csr = CsrBuilder()
                   .subject(*DistinguishedName::parse("CN=x"))
                   .challenge_password(std::string(password), StringEncoding::printable)
                   .sign(cached_key(KeyType::ec_p256));
    EXPECT_FALSE(csr.ok() && csr->challenge_password_encoding() == StringEncoding::printable)
        << "'" << password << "' written as a PrintableString";
  }
}

TEST(CsrBuilder, KeyUsageBitsBeyondTheFirstOctet) {
  // decipherOnly is bit 8: the BIT STRING needs a second octet (RFC 5280 4.2.1.3).
  const std::uint32_t bits = key_usage::key_agreement | KU_DECIPHER_ONLY;
  auto csr = CsrBuilder().subject(*DistinguishedName::parse("CN=x")).key_usage(bits).sign(cached_key(KeyType::ec_p256));
  ASSERT_TRUE(csr.ok()) << csr.error().message;
  EXPECT_EQ(csr->requested_key_usage(), bits);
  auto exts = csr->requested_extensions();
  ASSERT_EQ(exts.size(), 1u);
  EXPECT_EQ(to_hex(exts[0].value_der), "0303070880");  // 7 unused bits; 0000 1000, 1xxx xxxx
}

TEST(CsrBuilder, MinimalRequestHasNoAttributes) {
  auto csr = CsrBuilder().subject(*DistinguishedName::parse("CN=minimal")).sign(cached_key(KeyType::ed25519));
  ASSERT_TRUE(csr.ok()) << csr.error().message;
  EXPECT_TRUE(csr->attribute_oids().empty());
  EXPECT_TRUE(csr->requested_extensions().empty());
  EXPECT_TRUE(csr->subject_alt_names().empty());
  EXPECT_TRUE(csr->requested_extended_key_usages().empty());
  EXPECT_EQ(csr->requested_key_usage(), std::nullopt);
  EXPECT_EQ(csr->challenge_password(), std::nullopt);
  EXPECT_EQ(csr->challenge_password_encoding(), std::nullopt);
  EXPECT_EQ(csr->unstructured_name(), std::nullopt);
  EXPECT_EQ(csr->unstructured_address(), std::nullopt);
  // version 0 (v1), RFC 2986 4.1.
  EXPECT_EQ(X509_REQ_get_version(csr->native()), 0);
}

TEST(CsrBuilder, EmptySubjectWithSan) {
  // RFC 7030 allows identifying a device by SAN alone.
  auto csr = CsrBuilder().add_subject_alt_name(SubjectAltName::dns("only-san.example")).sign(cached_key(KeyType::ec_p256));
  ASSERT_TRUE(csr.ok()) << csr.error().message;
  EXPECT_TRUE(csr->subject().empty());
  EXPECT_EQ(csr->subject_alt_names(), (std::vector<SubjectAltName>{SubjectAltName::dns("only-san.example")}));
}

TEST(CsrBuilder, ErrorsNameTheBadInput) {
  const PrivateKey& key = cached_key(KeyType::ec_p256);
  auto bad_ip = CsrBuilder().add_subject_alt_name(SubjectAltName::ip("999.1.1.1")).sign(key);
  ASSERT_FALSE(bad_ip.ok());
  EXPECT_EQ(bad_ip.error().code, ErrorCode::invalid_input);
  EXPECT_EQ(bad_ip.error().message.rfind("CSR: SAN IP '999.1.1.1' is not an IPv4 or IPv6 address", 0), 0u)
      << bad_ip.error().message;
  auto bad_eku = CsrBuilder().add_extended_key_usage("notAnOid").sign(key);
  ASSERT_FALSE(bad_eku.ok());
  EXPECT_EQ(bad_eku.error().message.rfind("CSR: extended key usage 'notAnOid' is not an OID or known name", 0), 0u)
      << bad_eku.error().message;
  auto bad_raw = CsrBuilder().add_extension({"1.2.x", false, {0x05, 0x00}}).sign(key);
  ASSERT_FALSE(bad_raw.ok());
  EXPECT_EQ(bad_raw.error().message.rfind("CSR: extension OID '1.2.x' is not valid", 0), 0u) << bad_raw.error().message;
}

TEST(Csr, ParsesOpensslMadeRequest) {
  auto csr = Csr::parse(read_data("openssl.csr.pem"));
  ASSERT_TRUE(csr.ok()) << csr.error().message;
  EXPECT_TRUE(csr->signature_valid());
  EXPECT_EQ(csr->subject().to_string(), expected("csr.subject"));
  EXPECT_EQ(csr->signature_algorithm(), expected("csr.signature_algorithm"));
  EXPECT_EQ(test::sha256_hex(csr->public_key().spki_der()), expected("csr.public_key_sha256"));
  // openssl printed "IP Address:2001:DB8:0:0:0:0:0:7"; the suite writes RFC 5952 text.
  EXPECT_EQ(csr->subject_alt_names(),
            (std::vector<SubjectAltName>{SubjectAltName::dns("csr-device.example"), SubjectAltName::ip("198.51.100.7"),
                                         SubjectAltName::ip("2001:db8::7"), SubjectAltName::email("csr@example.com")}));
  EXPECT_EQ(expected("csr.subjectAltName"),
            "DNS:csr-device.example, IP Address:198.51.100.7, IP Address:2001:DB8:0:0:0:0:0:7, email:csr@example.com");
  std::vector<std::string> ekus;
  for (const auto& name : test::split(expected("csr.extendedKeyUsage"), ", ")) ekus.push_back(oid::to_dotted(name));
  EXPECT_EQ(csr->requested_extended_key_usages(), ekus);
  EXPECT_EQ(ekus, (std::vector<std::string>{std::string(oid::client_auth), std::string(oid::cmc_ra)}));
  EXPECT_EQ(expected("csr.keyUsage"), "Digital Signature, Key Encipherment");
  EXPECT_EQ(csr->requested_key_usage(), key_usage::digital_signature | key_usage::key_encipherment);
  EXPECT_EQ(csr->challenge_password(), expected("csr.challengePassword"));
  EXPECT_EQ(csr->challenge_password_encoding(),
            expected("csr.challengePassword_type") == "UTF8STRING" ? StringEncoding::utf8 : StringEncoding::printable);
  EXPECT_EQ(csr->unstructured_name(), expected("csr.unstructuredName"));
  EXPECT_EQ(csr->unstructured_address(), std::nullopt);

  auto der = Csr::parse(read_data("openssl.csr.der"));
  ASSERT_TRUE(der.ok()) << der.error().message;
  EXPECT_EQ(der->der(), csr->der());
  EXPECT_EQ(csr->pem(), read_text("openssl.csr.pem"));
  EXPECT_NE(csr->to_text().find("csr-device.example"), std::string::npos);
}

TEST(Csr, AcceptsTheNewCertificateRequestLabel) {
  std::string pem = read_text("openssl.csr.pem");
  std::string old_style = "-----BEGIN NEW CERTIFICATE REQUEST-----" + pem.substr(pem.find('\n'));
  old_style.replace(old_style.find("-----END CERTIFICATE REQUEST-----"), 33, "-----END NEW CERTIFICATE REQUEST-----");
  auto csr = Csr::parse(as_bytes(old_style));
  ASSERT_TRUE(csr.ok()) << csr.error().message;
  EXPECT_EQ(csr->subject().to_string(), expected("csr.subject"));
}

TEST(Csr, GarbageTruncatedAndTrailingInput) {
  auto garbage = Csr::from_der(as_bytes("garbage"));
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().code, ErrorCode::invalid_input);
  EXPECT_EQ(garbage.error().message.rfind("CSR: not a DER PKCS#10 request", 0), 0u) << garbage.error().message;

  Bytes der = read_data("openssl.csr.der");
  Bytes truncated(der.begin(), der.end() - 20);
  auto direct = Csr::from_der(truncated);
  ASSERT_FALSE(direct.ok());
  EXPECT_EQ(direct.error().message.rfind("CSR: not a DER PKCS#10 request", 0), 0u) << direct.error().message;
  auto parsed = Csr::parse(truncated);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().message, "CSR: DER: element says " + std::to_string(der.size() - 4) + " bytes but only " +
                                        std::to_string(der.size() - 24) + " follow");

  Bytes trailing = der;
  trailing.push_back(0x0a);
  auto extra = Csr::from_der(trailing);
  ASSERT_FALSE(extra.ok());
  EXPECT_EQ(extra.error().message, "CSR: 1 trailing bytes after the DER request");

  auto cert = Csr::parse(read_data("leaf.cert.der"));  // well-formed DER, wrong object
  ASSERT_FALSE(cert.ok());
  EXPECT_EQ(cert.error().message.rfind("CSR: not a DER PKCS#10 request", 0), 0u) << cert.error().message;
  auto pem_cert = Csr::parse(read_data("leaf.cert.pem"));
  ASSERT_FALSE(pem_cert.ok());
  EXPECT_EQ(pem_cert.error().message, "CSR: no PEM block labelled CERTIFICATE REQUEST or NEW CERTIFICATE REQUEST");
}

}  // namespace
}  // namespace estlab
