// Private and public keys: every KeyType the suite can generate, PKCS#8 in and out, and the
// traditional forms openssl writes.
#include "estlab/core/key.hpp"

#include <gtest/gtest.h>

#include "estlab/core/base64.hpp"
#include "estlab/core/certificate.hpp"
#include "estlab/core/encoding.hpp"
#include "test_support.hpp"

namespace estlab {
namespace {

using test::cached_key;
using test::expected;
using test::read_data;

struct KeyTypeFacts {
  KeyType type;
  std::string_view name;
  std::string_view algorithm;  // as key.hpp documents it
  const char* openssl_type;    // EVP_PKEY_is_a
  int bits;
  int digest_nid;              // NID_undef: the algorithm hashes internally
};

const KeyTypeFacts kFacts[] = {
    {KeyType::ec_p256, "ec-p256", "EC P-256", "EC", 256, NID_sha256},
    {KeyType::ec_p384, "ec-p384", "EC P-384", "EC", 384, NID_sha384},
    {KeyType::rsa2048, "rsa2048", "RSA 2048", "RSA", 2048, NID_sha256},
    {KeyType::rsa3072, "rsa3072", "RSA 3072", "RSA", 3072, NID_sha256},
    {KeyType::rsa4096, "rsa4096", "RSA 4096", "RSA", 4096, NID_sha256},
    {KeyType::ed25519, "ed25519", "ED25519", "ED25519", 256, NID_undef},
};

TEST(KeyType, NamesRoundTrip) {
  ASSERT_EQ(all_key_types().size(), std::size(kFacts));
  for (const auto& f : kFacts) {
    EXPECT_EQ(to_string(f.type), f.name);
    auto parsed = parse_key_type(f.name);
    ASSERT_TRUE(parsed.ok()) << f.name;
    EXPECT_EQ(*parsed, f.type);
  }
}

TEST(KeyType, ParseErrorListsTheValidNames) {
  for (std::string_view bad : {"rsa-2048", "EC-P256", "", "p256"}) {
    auto parsed = parse_key_type(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error().code, ErrorCode::invalid_input);
    EXPECT_EQ(parsed.error().message, "unknown key type '" + std::string(bad) +
                                          "' (valid: ec-p256, ec-p384, rsa2048, rsa3072, rsa4096, ed25519)");
  }
}

TEST(PrivateKey, GenerateEachTypeHasThatType) {
  for (const auto& f : kFacts) {
    auto generated = PrivateKey::generate(f.type);
    ASSERT_TRUE(generated.ok()) << f.name << ": " << generated.error().message;
    const PrivateKey& key = *generated;
    EXPECT_EQ(key.type(), f.type) << f.name;
    EXPECT_TRUE(EVP_PKEY_is_a(key.native(), f.openssl_type)) << f.name;
    EXPECT_EQ(EVP_PKEY_get_bits(key.native()), f.bits) << f.name;
    EXPECT_EQ(key.public_key().type(), f.type) << f.name;
  }
}

TEST(PrivateKey, AlgorithmNamesAsDocumented) {
  for (const auto& f : kFacts) {
    const PrivateKey& key = cached_key(f.type);
    if (f.type == KeyType::ec_p256 || f.type == KeyType::ec_p384) continue;  // see the test below
    EXPECT_EQ(key.algorithm(), f.algorithm) << f.name;
    EXPECT_EQ(key.public_key().algorithm(), f.algorithm) << f.name;
  }
}

TEST(PrivateKey, EcAlgorithmNamesTheCurveAsDocumented) {
  EXPECT_EQ(cached_key(KeyType::ec_p256).algorithm(), "EC P-256");
  EXPECT_EQ(cached_key(KeyType::ec_p384).algorithm(), "EC P-384");
}

TEST(PrivateKey, GenerateMakesDistinctKeys) {
  auto a = PrivateKey::generate(KeyType::ec_p256);
  auto b = PrivateKey::generate(KeyType::ec_p256);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(a->public_key() == b->public_key());
  EXPECT_TRUE(a->public_key() == a->public_key());
}

TEST(PrivateKey, SigningDigestPerType) {
  for (const auto& f : kFacts) {
    const EVP_MD* md = cached_key(f.type).signing_digest();
    if (f.digest_nid == NID_undef) {
      EXPECT_EQ(md, nullptr) << f.name;
    } else {
      ASSERT_NE(md, nullptr) << f.name;
      EXPECT_EQ(EVP_MD_get_type(md), f.digest_nid) << f.name;
    }
  }
}

TEST(PrivateKey, Pkcs8DerAndPemRoundTripForEachType) {
  for (const auto& f : kFacts) {
    const PrivateKey& key = cached_key(f.type);
    Bytes der = key.pkcs8_der();
    ASSERT_FALSE(der.empty()) << f.name;
    auto from_der = PrivateKey::from_pkcs8_der(der);
    ASSERT_TRUE(from_der.ok()) << f.name << ": " << from_der.error().message;
    EXPECT_EQ(from_der->pkcs8_der(), der) << f.name;
    EXPECT_TRUE(from_der->public_key() == key.public_key()) << f.name;
    EXPECT_EQ(from_der->type(), f.type);

    std::string pem = key.pkcs8_pem();
    EXPECT_EQ(pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u) << f.name;
    auto from_pem = PrivateKey::parse(as_bytes(pem));
    ASSERT_TRUE(from_pem.ok()) << f.name << ": " << from_pem.error().message;
    EXPECT_EQ(from_pem->pkcs8_der(), der) << f.name;
    auto from_parse_der = PrivateKey::parse(der);
    ASSERT_TRUE(from_parse_der.ok()) << f.name;
    EXPECT_EQ(from_parse_der->pkcs8_der(), der);
    auto from_base64 = PrivateKey::parse(as_bytes(base64_encode(der, LineBreaks::every76_crlf)));
    ASSERT_TRUE(from_base64.ok()) << f.name << ": " << from_base64.error().message;
    EXPECT_EQ(from_base64->pkcs8_der(), der);
  }
}

// openssl reads what we write and derives the same public key.
TEST(PrivateKey, OpensslReadsOurPkcs8) {
  ESTLAB_REQUIRE_OPENSSL_COMMAND();
  for (KeyType type : {KeyType::ec_p256, KeyType::rsa2048, KeyType::ed25519}) {
    const PrivateKey& key = cached_key(type);
    test::TempFile file("key.pem");
    file.write(key.pkcs8_pem());
    auto out = test::run_command("openssl pkey -in '" + file.path() + "' -pubout -outform DER | openssl dgst -sha256 -r");
    ASSERT_EQ(out.exit_code, 0) << out.output;
    EXPECT_EQ(out.output.substr(0, 64), test::sha256_hex(key.public_key().spki_der())) << to_string(type);
  }
}

TEST(PrivateKey, ParsesOpensslTraditionalEcKeyAfterParametersBlock) {
  // openssl ecparam -genkey: "EC PARAMETERS" block, then "EC PRIVATE KEY" (RFC 5915).
  auto key = PrivateKey::parse(read_data("leaf.key.pem"));
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_EQ(key->type(), KeyType::ec_p256);
  EXPECT_EQ(test::sha256_hex(key->public_key().spki_der()), expected("leaf_key.public_key_sha256"));
  // It is the key of the leaf certificate.
  auto cert = Certificate::parse(read_data("leaf.cert.pem"));
  ASSERT_TRUE(cert.ok());
  EXPECT_TRUE(cert->public_key() == key->public_key());
  // The traditional DER itself also parses as a key file...
  auto blocks = pem_decode_all(test::read_text("leaf.key.pem"));
  ASSERT_TRUE(blocks.ok());
  auto from_der = PrivateKey::from_any_der((*blocks)[1].der);
  ASSERT_TRUE(from_der.ok()) << from_der.error().message;
  EXPECT_TRUE(from_der->public_key() == key->public_key());
  // ...but not as PKCS#8, which is what RFC 7030 4.4.2 puts on the wire (SEC1 there is a deviation).
  auto strict = PrivateKey::from_pkcs8_der((*blocks)[1].der);
  ASSERT_FALSE(strict.ok());
  EXPECT_EQ(strict.error().message.rfind("private key: not a DER PKCS#8 PrivateKeyInfo", 0), 0u) << strict.error().message;
  auto pkcs8 = PrivateKey::from_pkcs8_der(key->pkcs8_der());
  ASSERT_TRUE(pkcs8.ok()) << pkcs8.error().message;
  EXPECT_TRUE(pkcs8->public_key() == key->public_key());
}

TEST(PrivateKey, ParsesOpensslTraditionalRsaKey) {
  ASSERT_EQ(test::read_text("root.key.pem").rfind("-----BEGIN RSA PRIVATE KEY-----", 0), 0u);
  auto key = PrivateKey::parse(read_data("root.key.pem"));
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_EQ(key->type(), KeyType::rsa2048);
  EXPECT_EQ(key->algorithm(), "RSA 2048");
  EXPECT_EQ(test::sha256_hex(key->public_key().spki_der()), expected("root_key.public_key_sha256"));
  EXPECT_EQ(EVP_MD_get_type(key->signing_digest()), NID_sha256);
}

TEST(PrivateKey, ParsesOpensslPkcs8Keys) {
  auto ed = PrivateKey::parse(read_data("ed25519.key.pem"));
  ASSERT_TRUE(ed.ok()) << ed.error().message;
  EXPECT_EQ(ed->type(), KeyType::ed25519);
  EXPECT_EQ(ed->algorithm(), "ED25519");
  EXPECT_EQ(test::sha256_hex(ed->public_key().spki_der()), expected("ed25519_key.public_key_sha256"));
  auto p384 = PrivateKey::parse(read_data("int.key.pem"));
  ASSERT_TRUE(p384.ok()) << p384.error().message;
  EXPECT_EQ(p384->type(), KeyType::ec_p384);
  EXPECT_EQ(EVP_MD_get_type(p384->signing_digest()), NID_sha384);
}

TEST(PrivateKey, EncryptedPkcs8IsNotSupported) {
  auto key = PrivateKey::parse(read_data("leaf.key.enc-pkcs8.pem"));
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.error().code, ErrorCode::unsupported);
  EXPECT_EQ(key.error().message, "private key: encrypted PKCS#8 is not supported; give the key unencrypted");
}

TEST(PrivateKey, EncryptedTraditionalPemIsNotSupported) {
  auto key = PrivateKey::parse(read_data("leaf.key.enc-trad.pem"));
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.error().code, ErrorCode::unsupported);
  EXPECT_NE(key.error().message.find("encrypted"), std::string::npos) << key.error().message;
}

TEST(PrivateKey, GarbageAndTrailingBytes) {
  const Bytes garbage = {0x30, 0x03, 0x02, 0x01, 0x00};
  auto key = PrivateKey::from_any_der(garbage);
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.error().code, ErrorCode::invalid_input);
  EXPECT_EQ(key.error().message.rfind("private key: not a DER PKCS#8 or traditional key", 0), 0u) << key.error().message;
  auto strict = PrivateKey::from_pkcs8_der(garbage);
  ASSERT_FALSE(strict.ok());
  EXPECT_EQ(strict.error().code, ErrorCode::invalid_input);

  Bytes der = cached_key(KeyType::ec_p256).pkcs8_der();
  der.push_back(0x00);
  auto trailing = PrivateKey::from_pkcs8_der(der);
  ASSERT_FALSE(trailing.ok());
  EXPECT_EQ(trailing.error().message, "private key: trailing bytes after the DER key");

  auto cert = PrivateKey::parse(read_data("leaf.cert.pem"));
  ASSERT_FALSE(cert.ok());
  EXPECT_EQ(cert.error().message, "private key: no PEM block labelled PRIVATE KEY or EC PRIVATE KEY or RSA PRIVATE KEY");
}

TEST(PublicKey, SpkiRoundTripAndPem) {
  for (KeyType type : {KeyType::ec_p384, KeyType::rsa3072, KeyType::ed25519}) {
    PublicKey pub = cached_key(type).public_key();
    auto back = PublicKey::from_spki_der(pub.spki_der());
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_TRUE(*back == pub);
    EXPECT_EQ(back->type(), type);
    auto blocks = pem_decode_all(pub.pem());
    ASSERT_TRUE(blocks.ok());
    ASSERT_EQ(blocks->size(), 1u);
    EXPECT_EQ((*blocks)[0].label, "PUBLIC KEY");
    EXPECT_EQ((*blocks)[0].der, pub.spki_der());
  }
  auto bad = PublicKey::from_spki_der(as_bytes("not a key"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.rfind("public key: not a DER SubjectPublicKeyInfo", 0), 0u);
}

TEST(PublicKey, UnusualRsaSizeHasNoKeyType) {
  EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(1024));
  ASSERT_NE(raw, nullptr);
  ossl::Pkey owned(raw);
  PublicKey pub = PublicKey::borrow_shared(raw);
  EXPECT_EQ(pub.type(), std::nullopt);
  EXPECT_EQ(pub.algorithm(), "RSA 1024");
}

}  // namespace
}  // namespace estlab
