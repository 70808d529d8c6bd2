// X.509 certificates made by openssl (tests/data/core/make.sh), read back and checked against what
// openssl itself reports about them (expected.txt).
#include "estlab/core/certificate.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <openssl/ec.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <map>

#include "estlab/core/base64.hpp"
#include "estlab/core/oids.hpp"
#include "test_support.hpp"

namespace estlab {
namespace {

using test::expected;
using test::read_data;
using test::read_text;
using test::split;

Certificate load(const std::string& name) {
  auto cert = Certificate::parse(read_data(name + ".cert.pem"));
  if (!cert.ok()) throw std::runtime_error(name + ": " + cert.error().message);
  return std::move(cert).value();
}

// An IP address in one canonical text form, whatever form it was printed in.
std::string canonical_ip(const std::string& text) {
  unsigned char buf[16];
  char out[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1) return inet_ntop(AF_INET, buf, out, sizeof out);
  if (inet_pton(AF_INET6, text.c_str(), buf) == 1) return inet_ntop(AF_INET6, buf, out, sizeof out);
  return "not-an-ip(" + text + ")";
}

// openssl's printing of a subjectAltName ("DNS:a, IP Address:192.0.2.1, email:x, URI:y").
std::vector<SubjectAltName> sans_from_openssl(const std::string& printed) {
  std::vector<SubjectAltName> out;
  for (const auto& item : split(printed, ", ")) {
    if (item.rfind("DNS:", 0) == 0) out.push_back(SubjectAltName::dns(item.substr(4)));
    else if (item.rfind("IP Address:", 0) == 0) out.push_back(SubjectAltName::ip(canonical_ip(item.substr(11))));
    else if (item.rfind("email:", 0) == 0) out.push_back(SubjectAltName::email(item.substr(6)));
    else if (item.rfind("URI:", 0) == 0) out.push_back(SubjectAltName::uri(item.substr(4)));
    else ADD_FAILURE() << "unexpected SAN in expected.txt: " << item;
  }
  return out;
}

std::vector<SubjectAltName> canonical(std::vector<SubjectAltName> sans) {
  for (auto& san : sans) {
    if (san.kind == SubjectAltName::Kind::ip) san.value = canonical_ip(san.value);
  }
  return sans;
}

std::uint32_t key_usage_from_openssl(const std::string& printed) {
  static const std::map<std::string, std::uint32_t> bits = {
      {"Digital Signature", key_usage::digital_signature}, {"Non Repudiation", key_usage::non_repudiation},
      {"Key Encipherment", key_usage::key_encipherment},   {"Data Encipherment", key_usage::data_encipherment},
      {"Key Agreement", key_usage::key_agreement},         {"Certificate Sign", key_usage::key_cert_sign},
      {"CRL Sign", key_usage::crl_sign},
  };
  std::uint32_t out = 0;
  for (const auto& item : split(printed, ", ")) {
    auto it = bits.find(item);
    if (it == bits.end()) ADD_FAILURE() << "unexpected key usage in expected.txt: " << item;
    else out |= it->second;
  }
  return out;
}

// Every certificate make.sh issued, checked field by field against openssl's view of it.
class OpensslCertificate : public testing::TestWithParam<std::string> {};

TEST_P(OpensslCertificate, SubjectIssuerSerialValidityFingerprint) {
  const std::string& name = GetParam();
  Certificate cert = load(name);
  EXPECT_EQ(cert.subject().to_string(), expected(name + ".subject"));
  EXPECT_EQ(cert.issuer().to_string(), expected(name + ".issuer"));
  EXPECT_EQ(cert.serial_hex(), expected(name + ".serial"));
  EXPECT_EQ(format_time(cert.not_before()), expected(name + ".not_before"));
  EXPECT_EQ(format_time(cert.not_after()), expected(name + ".not_after"));
  EXPECT_EQ(cert.not_before(), test::utc(expected(name + ".not_before")));
  EXPECT_EQ(cert.not_after(), test::utc(expected(name + ".not_after")));
  EXPECT_EQ(cert.sha256_fingerprint(), expected(name + ".sha256"));
}

TEST_P(OpensslCertificate, Extensions) {
  const std::string& name = GetParam();
  Certificate cert = load(name);
  EXPECT_EQ(canonical(cert.subject_alt_names()), sans_from_openssl(expected(name + ".subjectAltName")));

  std::vector<std::string> ekus;
  for (const auto& long_name : split(expected(name + ".extendedKeyUsage"), ", ")) ekus.push_back(oid::to_dotted(long_name));
  EXPECT_EQ(cert.extended_key_usages(), ekus);

  std::string ku = expected(name + ".keyUsage");
  if (ku.empty()) {
    EXPECT_EQ(cert.key_usage(), std::nullopt);
  } else {
    EXPECT_EQ(cert.key_usage(), key_usage_from_openssl(ku));
  }

  std::string bc = expected(name + ".basicConstraints");
  EXPECT_EQ(cert.is_ca(), bc.rfind("CA:TRUE", 0) == 0) << bc;
  auto pathlen = bc.find("pathlen:");
  if (pathlen == std::string::npos) {
    EXPECT_EQ(cert.path_length(), std::nullopt) << bc;
  } else {
    EXPECT_EQ(cert.path_length(), std::stoi(bc.substr(pathlen + 8))) << bc;
  }

  std::vector<std::string> policies;
  for (const auto& line : split(expected(name + ".certificatePolicies"), "|")) policies.push_back(line.substr(line.find(": ") + 2));
  EXPECT_EQ(cert.certificate_policies(), policies);
}

INSTANTIATE_TEST_SUITE_P(MadeByOpenssl, OpensslCertificate,
                         testing::Values("root", "int", "leaf", "server", "revoked", "plain"));

TEST(Certificate, LeafValuesSpelledOut) {
  // The same facts as above, written out, so a wrong expected.txt cannot hide a wrong parser.
  Certificate leaf = load("leaf");
  EXPECT_EQ(leaf.subject().to_string(), "C=DE,O=estlab Lab,OU=Devices,CN=device-1.example");
  EXPECT_EQ(leaf.subject().common_name(), "device-1.example");
  EXPECT_EQ(leaf.serial_hex(), "0a1b2c3d4e5f");
  EXPECT_EQ(format_time(leaf.not_before()), "2025-01-01T00:00:00Z");
  EXPECT_EQ(format_time(leaf.not_after()), "2026-01-01T00:00:00Z");
  // RFC 5952 text for IPv6: lower case, longest zero run compressed.
  const std::vector<SubjectAltName> sans = {
      SubjectAltName::dns("device-1.example"), SubjectAltName::dns("alt.example"), SubjectAltName::ip("192.0.2.10"),
      SubjectAltName::ip("2001:db8::10"),     SubjectAltName::email("ops@example.com"),
      SubjectAltName::uri("coap://device-1.example:5684/est")};
  EXPECT_EQ(leaf.subject_alt_names(), sans);
  EXPECT_EQ(leaf.extended_key_usages(), (std::vector<std::string>{std::string(oid::client_auth), std::string(oid::server_auth)}));
  EXPECT_TRUE(leaf.has_extended_key_usage(oid::client_auth));
  EXPECT_TRUE(leaf.has_extended_key_usage("serverAuth"));
  EXPECT_FALSE(leaf.has_extended_key_usage(oid::code_signing));
  EXPECT_FALSE(leaf.has_extended_key_usage(oid::cmc_ra));
  EXPECT_EQ(leaf.key_usage(), key_usage::digital_signature | key_usage::key_agreement);
  EXPECT_FALSE(leaf.is_ca());
  EXPECT_EQ(leaf.certificate_policies(), (std::vector<std::string>{std::string(oid::estlab_officer_role), "1.3.6.1.4.1.99999.7"}));

  Certificate intermediate = load("int");
  EXPECT_TRUE(intermediate.is_ca());
  EXPECT_EQ(intermediate.path_length(), 0);
  EXPECT_EQ(intermediate.key_usage(), key_usage::digital_signature | key_usage::key_cert_sign | key_usage::crl_sign);
  Certificate root = load("root");
  EXPECT_TRUE(root.is_ca());
  EXPECT_EQ(root.path_length(), std::nullopt);
}

// A certificate whose key algorithm OpenSSL does not know parses (its other fields are still to be
// judged), and its key says so instead of crashing whoever asks: id-ecPublicKey's OID turned into
// 1.2.840.10045.2.9 in the leaf's SubjectPublicKeyInfo.
TEST(Certificate, AKeyOfAnUnknownAlgorithmIsNamedNotDereferenced) {
  Bytes der = load("leaf").der();
  const Bytes ec_public_key = {0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01};
  auto at = std::search(der.begin(), der.end(), ec_public_key.begin(), ec_public_key.end());
  ASSERT_NE(at, der.end()) << "the leaf's key is not an EC key any more: regenerate this case";
  *(at + 8) = 0x09;
  auto odd = Certificate::from_der(der);
  ASSERT_TRUE(odd.ok()) << odd.error().message;
  EXPECT_EQ(odd->subject().common_name(), "device-1.example");
  const PublicKey key = odd->public_key();
  EXPECT_EQ(key.native(), nullptr);
  EXPECT_EQ(key.type(), std::nullopt);
  EXPECT_EQ(key.algorithm(), "unknown (1.2.840.10045.2.9)");
  EXPECT_FALSE(key.legacy_copy());
  EXPECT_FALSE(odd->signed_by(key));
  EXPECT_FALSE(key == load("leaf").public_key());
  EXPECT_EQ(odd->public_key(), key) << "the same SubjectPublicKeyInfo, the same key";
}

TEST(Certificate, KeyCertSignWithoutBasicConstraintsIsNotACa) {
  Certificate cert = load("kusign");
  EXPECT_EQ(cert.subject().to_string(), expected("kusign.subject"));
  EXPECT_EQ(cert.key_usage(), key_usage_from_openssl(expected("kusign.keyUsage")));
  EXPECT_EQ(cert.path_length(), std::nullopt);
  EXPECT_FALSE(cert.is_ca());
}

TEST(Certificate, SerialWithHighBitHasNoSignByte) {
  // DER encodes 0xc0ffee as 00 c0 ff ee; the serial's text has no leading "00".
  Certificate server = load("server");
  EXPECT_EQ(server.serial_hex(), "c0ffee");
  EXPECT_NE(to_hex(server.der()).find("020400c0ffee"), std::string::npos);
}

TEST(Certificate, NoExtensionsMeansEmptyAndNullopt) {
  Certificate plain = load("plain");
  EXPECT_TRUE(plain.subject_alt_names().empty());
  EXPECT_TRUE(plain.extended_key_usages().empty());
  EXPECT_FALSE(plain.has_extended_key_usage(oid::client_auth));
  EXPECT_EQ(plain.key_usage(), std::nullopt);
  EXPECT_FALSE(plain.is_ca());
  EXPECT_EQ(plain.path_length(), std::nullopt);
  EXPECT_TRUE(plain.certificate_policies().empty());
  // Only the key identifiers: subjectKeyIdentifier, authorityKeyIdentifier.
  auto exts = plain.extensions();
  ASSERT_EQ(exts.size(), 2u);
  EXPECT_EQ(exts[0].oid, "2.5.29.14");
  EXPECT_EQ(exts[1].oid, "2.5.29.35");
}

TEST(Certificate, RawExtensionsWithCriticality) {
  Certificate leaf = load("leaf");
  std::map<std::string, bool> critical;
  for (const auto& e : leaf.extensions()) critical[e.oid] = e.critical;
  EXPECT_EQ(critical.at("2.5.29.19"), true);   // basicConstraints
  EXPECT_EQ(critical.at("2.5.29.15"), true);   // keyUsage
  EXPECT_EQ(critical.at("2.5.29.37"), false);  // extendedKeyUsage
  EXPECT_EQ(critical.at("2.5.29.17"), false);  // subjectAltName
  EXPECT_EQ(critical.at("2.5.29.32"), false);  // certificatePolicies
  for (const auto& e : leaf.extensions()) {
    if (e.oid == "2.5.29.19") {
      EXPECT_EQ(to_hex(e.value_der), "3000");  // SEQUENCE {} : cA defaults to FALSE
    }
  }
}

TEST(Certificate, DerPemAndBase64AreTheSameCertificate) {
  Bytes der = read_data("leaf.cert.der");
  auto from_der = Certificate::parse(der);
  auto from_pem = Certificate::parse(read_data("leaf.cert.pem"));
  auto from_b64 = Certificate::parse(as_bytes(base64_encode(der, LineBreaks::every76_crlf)));
  ASSERT_TRUE(from_der.ok() && from_pem.ok() && from_b64.ok());
  EXPECT_EQ(from_der->der(), der);
  EXPECT_TRUE(*from_pem == *from_der);
  EXPECT_TRUE(*from_b64 == *from_der);
  EXPECT_EQ(from_der->pem(), read_text("leaf.cert.pem"));
  auto direct = Certificate::from_der(der);
  ASSERT_TRUE(direct.ok());
  EXPECT_TRUE(*direct == *from_der);
  Certificate borrowed = Certificate::borrow_shared(direct->native());
  EXPECT_EQ(borrowed.der(), der);
}

TEST(Certificate, ParseAllReadsABundleInOrder) {
  auto certs = Certificate::parse_all(read_data("chain.pem"));
  ASSERT_TRUE(certs.ok()) << certs.error().message;
  ASSERT_EQ(certs->size(), 3u);
  EXPECT_EQ((*certs)[0].subject().common_name(), "device-1.example");
  EXPECT_EQ((*certs)[1].subject().common_name(), "estlab Test Issuing CA");
  EXPECT_EQ((*certs)[2].subject().common_name(), "estlab Test Root CA");
  // Certificate::parse takes the first one.
  auto first = Certificate::parse(read_data("chain.pem"));
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(*first == (*certs)[0]);
  // Other blocks are skipped; a single DER certificate is a bundle of one.
  auto mixed = Certificate::parse_all(as_bytes(read_text("leaf.key.pem") + read_text("int.cert.pem")));
  ASSERT_TRUE(mixed.ok()) << mixed.error().message;
  EXPECT_EQ(mixed->size(), 1u);
  auto one = Certificate::parse_all(read_data("root.cert.der"));
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_TRUE((*one)[0] == load("root"));
}

TEST(Certificate, ParseAllErrors) {
  auto none = Certificate::parse_all(read_data("leaf.key.pem"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message, "certificate bundle: no CERTIFICATE block");
  // A block that is not a certificate is named by its number.
  std::string bad = read_text("leaf.cert.pem") + "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n";
  auto broken = Certificate::parse_all(as_bytes(bad));
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.error().message.rfind("PEM block 2: certificate: not a DER X.509 certificate", 0), 0u)
      << broken.error().message;
}

TEST(Certificate, TruncatedDerGivesClearErrors) {
  Bytes der = read_data("leaf.cert.der");
  Bytes truncated(der.begin(), der.begin() + 200);
  auto parsed = Certificate::parse(truncated);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().code, ErrorCode::invalid_input);
  EXPECT_EQ(parsed.error().message,
            "certificate: DER: element says " + std::to_string(der.size() - 4) + " bytes but only 196 follow");
  auto direct = Certificate::from_der(truncated);
  ASSERT_FALSE(direct.ok());
  EXPECT_EQ(direct.error().message.rfind("certificate: not a DER X.509 certificate", 0), 0u) << direct.error().message;
}

TEST(Certificate, TrailingBytesGiveClearErrors) {
  Bytes der = read_data("leaf.cert.der");
  der.insert(der.end(), {0x00, 0x00});
  auto direct = Certificate::from_der(der);
  ASSERT_FALSE(direct.ok());
  EXPECT_EQ(direct.error().message, "certificate: 2 trailing bytes after the DER certificate");
  auto parsed = Certificate::parse(der);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().message, "certificate: 2 trailing bytes after the DER element");
}

TEST(Certificate, GarbageAndOtherObjects) {
  auto garbage = Certificate::from_der(as_bytes("hello"));
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().code, ErrorCode::invalid_input);
  auto crl = Certificate::parse(read_data("int.crl.der"));  // a SEQUENCE, but a CRL
  ASSERT_FALSE(crl.ok());
  EXPECT_EQ(crl.error().message.rfind("certificate: not a DER X.509 certificate", 0), 0u) << crl.error().message;
  auto csr_pem = Certificate::parse(read_data("openssl.csr.pem"));
  ASSERT_FALSE(csr_pem.ok());
  EXPECT_EQ(csr_pem.error().message, "certificate: no PEM block labelled CERTIFICATE or TRUSTED CERTIFICATE");
}

TEST(Certificate, TrustedCertificateLabelIsAccepted) {
  auto cert = Certificate::parse(read_data("root.trusted.pem"));
  ASSERT_TRUE(cert.ok()) << cert.error().message;
  EXPECT_TRUE(*cert == load("root"));
  auto all = Certificate::parse_all(read_data("root.trusted.pem"));
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_EQ(all->size(), 1u);
}

TEST(Certificate, SignedByAndSelfSigned) {
  Certificate root = load("root"), intermediate = load("int"), leaf = load("leaf");
  EXPECT_TRUE(leaf.signed_by(intermediate.public_key()));
  EXPECT_FALSE(leaf.signed_by(root.public_key()));
  EXPECT_FALSE(leaf.signed_by(leaf.public_key()));
  EXPECT_TRUE(intermediate.signed_by(root.public_key()));
  EXPECT_TRUE(root.signed_by(root.public_key()));
  EXPECT_TRUE(root.is_self_issued());
  EXPECT_TRUE(root.is_self_signed());
  EXPECT_FALSE(intermediate.is_self_issued());
  EXPECT_FALSE(intermediate.is_self_signed());
  EXPECT_FALSE(leaf.is_self_signed());
}

TEST(Certificate, SignedByFailsWhenTheSignatureIsDamaged) {
  Bytes der = read_data("leaf.cert.der");
  der.back() ^= 0x01;  // the last byte of the signature value
  auto cert = Certificate::from_der(der);
  ASSERT_TRUE(cert.ok()) << "still well-formed: " << cert.error().message;
  EXPECT_FALSE(cert->signed_by(load("int").public_key()));
}

TEST(Certificate, PublicKeyIsTheKeyOfTheKeyFile) {
  auto key = PrivateKey::parse(read_data("leaf.key.pem"));
  ASSERT_TRUE(key.ok());
  EXPECT_TRUE(load("leaf").public_key() == key->public_key());
  EXPECT_EQ(load("root").public_key().type(), KeyType::rsa2048);
  EXPECT_EQ(load("int").public_key().type(), KeyType::ec_p384);
}

TEST(Certificate, ValidAtIncludesBothEnds) {
  Certificate leaf = load("leaf");
  EXPECT_TRUE(leaf.valid_at(leaf.not_before()));
  EXPECT_TRUE(leaf.valid_at(leaf.not_after()));
  EXPECT_TRUE(leaf.valid_at(test::utc("2025-06-01T00:00:00Z")));
  EXPECT_FALSE(leaf.valid_at(leaf.not_before() - Seconds(1)));
  EXPECT_FALSE(leaf.valid_at(leaf.not_after() + Seconds(1)));
}

TEST(Certificate, ToTextIsOpensslStyle) {
  std::string text = load("leaf").to_text();
  EXPECT_NE(text.find("device-1.example"), std::string::npos);
  EXPECT_NE(text.find("X509v3 Subject Alternative Name"), std::string::npos);
  EXPECT_NE(text.find("Serial Number"), std::string::npos);
}

TEST(SerialAndTime, HexRoundTripAndFormat) {
  for (std::string_view hex : {"01", "c0ffee", "0a1b2c3d4e5f", "7fffffffffffffffffffffffffffffffffffffff"}) {
    auto serial = serial_from_hex(hex);
    ASSERT_TRUE(serial.ok()) << hex;
    EXPECT_EQ(serial_to_hex(serial->get()), hex);
  }
  auto odd = serial_from_hex("abc");
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.error().message, "serial 'abc': hex: odd number of digits");
  EXPECT_EQ(format_time(from_unix(0)), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_time(test::utc("2049-12-31T23:59:59Z")), "2049-12-31T23:59:59Z");
  EXPECT_EQ(format_time(test::utc("2050-01-01T00:00:00Z")), "2050-01-01T00:00:00Z");  // GeneralizedTime era
}

// The extension builders the CA and CsrBuilder share, checked at the byte level (RFC 5280 4.2.1).
RawExtension built(Result<ossl::X509Extension> ext) {
  if (!ext.ok()) throw std::runtime_error(ext.error().message);
  ossl::ExtensionStack stack(sk_X509_EXTENSION_new_null());
  sk_X509_EXTENSION_push(stack.get(), ext->release());  // the stack owns it now
  return ext::read_all(stack.get()).at(0);
}

TEST(ExtensionBuilders, ByteLevelEncodings) {
  auto bc = built(ext::basic_constraints(true, 0));
  EXPECT_EQ(bc.oid, "2.5.29.19");
  EXPECT_TRUE(bc.critical);
  EXPECT_EQ(to_hex(bc.value_der), "30060101ff020100");  // { cA TRUE, pathLen 0 }
  EXPECT_EQ(to_hex(built(ext::basic_constraints(false, 3)).value_der), "3000");  // no pathLen without cA
  auto ku = built(ext::key_usage(key_usage::digital_signature | key_usage::key_cert_sign));
  EXPECT_EQ(ku.oid, "2.5.29.15");
  EXPECT_TRUE(ku.critical);
  EXPECT_EQ(to_hex(ku.value_der), "03020284");  // bits 0 and 5, two unused bits
  EXPECT_EQ(to_hex(built(ext::key_usage(key_usage::crl_sign)).value_der), "03020102");
  auto eku = built(ext::extended_key_usage({"clientAuth", std::string(oid::cmc_ra)}));
  EXPECT_EQ(eku.oid, "2.5.29.37");
  EXPECT_FALSE(eku.critical);
  EXPECT_EQ(to_hex(eku.value_der), "301406082b0601050507030206082b0601050507031c");
  auto policies = built(ext::certificate_policies({std::string(oid::estlab_officer_role)}));
  EXPECT_EQ(policies.oid, "2.5.29.32");
  EXPECT_EQ(to_hex(policies.value_der), "300a300806068837b6760101");  // 2.999 -> 88 37, 7030 -> b6 76
  auto san = built(ext::subject_alt_name({SubjectAltName::dns("a.example"), SubjectAltName::ip("192.0.2.1"),
                                          SubjectAltName::ip("2001:db8::1")}));
  EXPECT_EQ(to_hex(san.value_der), "30238209612e6578616d706c65" "8704c0000201" "871020010db8000000000000000000000001");
}

TEST(ExtensionBuilders, Errors) {
  auto ip = ext::subject_alt_name({SubjectAltName::ip("example.com")});
  ASSERT_FALSE(ip.ok());
  EXPECT_EQ(ip.error().message.rfind("SAN IP 'example.com' is not an IPv4 or IPv6 address", 0), 0u) << ip.error().message;
  auto other = ext::subject_alt_name({{SubjectAltName::Kind::other, "x"}});
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, ErrorCode::unsupported);
  auto policy = ext::certificate_policies({"not an oid"});
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.error().message.rfind("certificate policy 'not an oid' is not an OID", 0), 0u);
}

TEST(ExtensionInputs, SubjectAltNameText) {
  EXPECT_EQ(*SubjectAltName::parse("DNS:device.example"), SubjectAltName::dns("device.example"));
  EXPECT_EQ(*SubjectAltName::parse("IP:2001:db8::1"), SubjectAltName::ip("2001:db8::1"));  // first colon splits
  EXPECT_EQ(*SubjectAltName::parse("email:a@example.com"), SubjectAltName::email("a@example.com"));
  EXPECT_EQ(*SubjectAltName::parse("uri:coap://x:5684/est"), SubjectAltName::uri("coap://x:5684/est"));
  for (const auto& san : {SubjectAltName::dns("d"), SubjectAltName::ip("192.0.2.1"), SubjectAltName::email("e@x"),
                          SubjectAltName::uri("https://x/")}) {
    EXPECT_EQ(*SubjectAltName::parse(san.to_string()), san) << san.to_string();
  }
  EXPECT_EQ(SubjectAltName::email("a@b").to_string(), "email:a@b");
  auto no_type = SubjectAltName::parse("device.example");
  ASSERT_FALSE(no_type.ok());
  EXPECT_EQ(no_type.error().message, "SAN 'device.example': expected TYPE:value (DNS, IP, email, URI)");
  auto unknown = SubjectAltName::parse("X400:foo");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().message, "SAN 'X400:foo': unknown type 'X400' (DNS, IP, email, URI)");
}

// A certificate built here with the digest, version and extensions a test needs (make.sh's
// certificates are all SHA-256 v3 without CRL distribution points or AIA).
Certificate built(const EVP_MD* digest, long version, bool revocation_pointers) {
  ossl::Pkey key(EVP_EC_gen("P-256"));
  ossl::X509Ptr x(X509_new());
  X509_set_version(x.get(), version);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 7);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x.get()), "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("lint"), -1, -1, 0);
  X509_set_issuer_name(x.get(), X509_get_subject_name(x.get()));
  X509_gmtime_adj(X509_getm_notBefore(x.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 3600);
  X509_set_pubkey(x.get(), key.get());
  if (revocation_pointers) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x.get(), x.get(), nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair{NID_crl_distribution_points, "URI:http://crl.example/ca.crl"},
                              std::pair{NID_info_access, "caIssuers;URI:http://ca.example/ca.cer"}}) {
      ossl::X509Extension e(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
      X509_add_ext(x.get(), e.get(), -1);
    }
  }
  X509_sign(x.get(), key.get(), digest);
  return Certificate::borrow_shared(x.get());
}

TEST(Certificate, SignatureAlgorithmAndDigest) {
  const Certificate sha256 = built(EVP_sha256(), 2, false);
  EXPECT_EQ(sha256.signature_algorithm(), "ecdsa-with-SHA256");
  EXPECT_EQ(sha256.signature_digest(), "SHA256");
  EXPECT_FALSE(sha256.has_weak_signature());
  const Certificate sha1 = built(EVP_sha1(), 2, false);
  EXPECT_EQ(sha1.signature_algorithm(), "ecdsa-with-SHA1");
  EXPECT_EQ(sha1.signature_digest(), "SHA1");
  EXPECT_TRUE(sha1.has_weak_signature());
  // make.sh's leaf is an RSA-signed SHA-256 certificate.
  EXPECT_FALSE(load("leaf").has_weak_signature());
}

TEST(Certificate, VersionAndRevocationPointers) {
  const Certificate v3 = built(EVP_sha256(), 2, true);
  EXPECT_EQ(v3.version(), 3);
  EXPECT_TRUE(v3.has_crl_distribution_points());
  EXPECT_TRUE(v3.has_authority_info_access());
  EXPECT_FALSE(v3.has_basic_constraints());
  const Certificate v1 = built(EVP_sha256(), 0, false);
  EXPECT_EQ(v1.version(), 1);
  EXPECT_FALSE(v1.has_crl_distribution_points());
  EXPECT_FALSE(v1.has_authority_info_access());
  EXPECT_TRUE(load("int").has_basic_constraints());
  EXPECT_EQ(load("leaf").version(), 3);
}

TEST(Certificate, CarriesNameOnlyFromSubjectAltName) {
  const Certificate leaf = load("leaf");  // SAN: device-1.example, alt.example, 192.0.2.10, 2001:db8::10
  EXPECT_TRUE(leaf.carries_name("device-1.example"));
  EXPECT_TRUE(leaf.carries_name("ALT.example"));
  EXPECT_TRUE(leaf.carries_name("192.0.2.10"));
  EXPECT_TRUE(leaf.carries_name("2001:db8:0::10"));
  EXPECT_FALSE(leaf.carries_name("192.0.2.11"));
  EXPECT_FALSE(leaf.carries_name("other.example"));
  EXPECT_FALSE(leaf.carries_name(""));
  // built() has CN=lint and no SAN: the commonName alone does not carry a name.
  EXPECT_FALSE(built(EVP_sha256(), 2, false).carries_name("lint"));
}

TEST(ExtensionInputs, KeyUsageText) {
  auto bits = key_usage::parse("digitalSignature, keyEncipherment");
  ASSERT_TRUE(bits.ok());
  EXPECT_EQ(*bits, key_usage::digital_signature | key_usage::key_encipherment);
  EXPECT_EQ(key_usage::to_string(*bits), "digitalSignature,keyEncipherment");
  std::uint32_t all = key_usage::digital_signature | key_usage::non_repudiation | key_usage::key_encipherment |
                      key_usage::data_encipherment | key_usage::key_agreement | key_usage::key_cert_sign |
                      key_usage::crl_sign;
  EXPECT_EQ(*key_usage::parse(key_usage::to_string(all)), all);
  EXPECT_EQ(*key_usage::parse(""), 0u);
  auto bad = key_usage::parse("digitalSignature,signEverything");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "key usage: unknown bit 'signEverything'");
}

TEST(Oids, DottedAndShortNames) {
  EXPECT_EQ(oid::to_dotted("clientAuth"), oid::client_auth);
  EXPECT_EQ(oid::to_dotted("TLS Web Server Authentication"), oid::server_auth);
  EXPECT_EQ(oid::to_dotted("1.3.6.1.5.5.7.3.28"), oid::cmc_ra);
  EXPECT_EQ(oid::to_dotted("noSuchName"), "");
  EXPECT_EQ(oid::short_name(oid::client_auth), "clientAuth");
  EXPECT_EQ(oid::short_name(oid::cmc_ra), "cmcRA");
  EXPECT_EQ(oid::short_name(oid::estlab_officer_role), oid::estlab_officer_role);  // unknown to OpenSSL
}

}  // namespace
}  // namespace estlab
