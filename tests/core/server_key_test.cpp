// Encrypted server-generated keys (RFC 7030 4.4.1.2 / 4.4.2, RFC 5958 4): what the gateway wraps
// the judge opens, to the right key only, in the algorithms the client listed.
#include <gtest/gtest.h>

#include <stdexcept>

#include "estlab/core/der.hpp"
#include "estlab/core/extensions.hpp"
#include "estlab/core/oids.hpp"
#include "estlab/core/ossl.hpp"
#include "estlab/core/server_key.hpp"

namespace estlab {
namespace {

template <typename T>
T must(Result<T> result) {
  if (!result.ok()) throw std::runtime_error(result.error().message);
  return std::move(result).value();
}

// A self-signed certificate for `key` with this keyUsage (nullopt: no extension) and, when asked,
// a subjectKeyIdentifier.
Certificate certificate_for(const PrivateKey& key, std::optional<std::uint32_t> usage, bool with_ski) {
  ossl::X509Ptr x(X509_new());
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 11);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x.get()), "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("skg"), -1, -1, 0);
  X509_set_issuer_name(x.get(), X509_get_subject_name(x.get()));
  X509_gmtime_adj(X509_getm_notBefore(x.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 3600);
  X509_set_pubkey(x.get(), key.native());
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, x.get(), x.get(), nullptr, nullptr, 0);
  if (with_ski) {
    ossl::X509Extension e(X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_key_identifier, "hash"));
    X509_add_ext(x.get(), e.get(), -1);
  }
  if (usage) {
    auto e = must(ext::key_usage(*usage));
    X509_add_ext(x.get(), e.get(), -1);
  }
  X509_sign(x.get(), key.native(), EVP_sha256());
  return Certificate::borrow_shared(x.get());
}

const PrivateKey& key(KeyType type, int which = 0) {
  static std::map<std::pair<KeyType, int>, PrivateKey> keys;
  auto it = keys.find({type, which});
  if (it == keys.end()) it = keys.emplace(std::pair{type, which}, must(PrivateKey::generate(type))).first;
  return it->second;
}

struct Parties {
  PrivateKey generated = key(KeyType::ec_p256, 1);
  PrivateKey signer_key = key(KeyType::ec_p256, 2);
  Certificate signer = certificate_for(key(KeyType::ec_p256, 2), std::nullopt, true);
};

TEST(ServerKey, EcRecipientGetsKariThatOpensToTheKeyPackage) {
  Parties p;
  const PrivateKey& client = key(KeyType::ec_p256, 3);
  const Certificate recipient = certificate_for(client, key_usage::digital_signature | key_usage::key_agreement, true);
  const Bytes enveloped = must(envelope_server_key(p.generated, p.signer_key, p.signer, recipient, default_smime_capabilities()));
  const auto opened = must(open_server_key(enveloped, client, recipient));
  EXPECT_EQ(opened.recipient_info, "kari");
  EXPECT_EQ(opened.recipient_version, 3);
  EXPECT_EQ(opened.key_wrap_algorithm, oid::aes256_wrap);
  EXPECT_EQ(opened.content_encryption_algorithm, oid::aes256_cbc);
  EXPECT_EQ(opened.enveloped_content_type, "1.2.840.113549.1.7.2");
  EXPECT_EQ(opened.signed_content_type, oid::asymmetric_key_package);
  ASSERT_TRUE(opened.key.has_value());
  EXPECT_EQ(opened.key->public_key(), p.generated.public_key());
}

TEST(ServerKey, RsaRecipientGetsKtriWithItsKeyIdentifier) {
  Parties p;
  const PrivateKey& client = key(KeyType::rsa2048);
  const Certificate recipient = certificate_for(client, key_usage::digital_signature | key_usage::key_encipherment, true);
  const Bytes enveloped = must(envelope_server_key(p.generated, p.signer_key, p.signer, recipient, default_smime_capabilities()));
  const auto opened = must(open_server_key(enveloped, client, recipient));
  EXPECT_EQ(opened.recipient_info, "ktri");
  EXPECT_EQ(opened.recipient_version, 2);  // rid = subjectKeyIdentifier (RFC 5652 6.2.1)
  EXPECT_EQ(opened.key_encryption_algorithm, oid::rsa_encryption);
  ASSERT_TRUE(opened.key.has_value());
  EXPECT_EQ(opened.key->public_key(), p.generated.public_key());
}

TEST(ServerKey, AnotherKeyCannotOpenIt) {
  Parties p;
  const Certificate recipient = certificate_for(key(KeyType::ec_p256, 3), std::nullopt, true);
  const Certificate other = certificate_for(key(KeyType::ec_p256, 4), std::nullopt, true);
  const Bytes enveloped = must(envelope_server_key(p.generated, p.signer_key, p.signer, recipient, default_smime_capabilities()));
  auto opened = open_server_key(enveloped, key(KeyType::ec_p256, 4), other);
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.error().message.find("does not decrypt"), std::string::npos) << opened.error().message;
}

TEST(ServerKey, TheCipherFollowsTheClientsListAndNothingUsableIsAnError) {
  Parties p;
  const Certificate recipient = certificate_for(key(KeyType::ec_p256, 3), std::nullopt, true);
  const std::vector<std::string> aes128 = {std::string(oid::aes128_cbc), std::string(oid::aes128_wrap)};
  const auto opened = must(open_server_key(must(envelope_server_key(p.generated, p.signer_key, p.signer, recipient, aes128)),
                                           key(KeyType::ec_p256, 3), recipient));
  EXPECT_EQ(opened.content_encryption_algorithm, oid::aes128_cbc);
  EXPECT_EQ(opened.key_wrap_algorithm, oid::aes128_wrap);
  // AES-256-CBC without its key wrap is not enough: kari wraps with the content key's length.
  auto none = envelope_server_key(p.generated, p.signer_key, p.signer, recipient, {std::string(oid::aes256_cbc)});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::unsupported);
  EXPECT_NE(none.error().message.find("SMIMECapabilities"), std::string::npos);
  EXPECT_EQ(none.error().message, capabilities_problem({std::string(oid::aes256_cbc)}));
  EXPECT_EQ(capabilities_problem(default_smime_capabilities()), "");
  EXPECT_EQ(capabilities_problem(aes128), "");
}

TEST(ServerKey, NotAnEnvelopeIsNamed) {
  const Certificate recipient = certificate_for(key(KeyType::ec_p256, 3), std::nullopt, true);
  auto opened = open_server_key(key(KeyType::ec_p256, 1).pkcs8_der(), key(KeyType::ec_p256, 3), recipient);
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.error().message.find("ContentInfo"), std::string::npos) << opened.error().message;
}

TEST(ServerKey, RecipientKeyUsageAsRfc7030Section4412Says) {
  const auto& ec = key(KeyType::ec_p256, 3);
  const auto& rsa = key(KeyType::rsa2048);
  EXPECT_EQ(key_recipient_problem(certificate_for(ec, std::nullopt, true)), "");
  EXPECT_EQ(key_recipient_problem(certificate_for(ec, key_usage::key_agreement, true)), "");
  EXPECT_NE(key_recipient_problem(certificate_for(ec, key_usage::digital_signature, true)), "");
  EXPECT_NE(key_recipient_problem(certificate_for(ec, key_usage::key_encipherment, true)), "");  // EC transports nothing
  EXPECT_EQ(key_recipient_problem(certificate_for(rsa, key_usage::key_encipherment, true)), "");
  EXPECT_NE(key_recipient_problem(certificate_for(rsa, key_usage::digital_signature, true)), "");
}

TEST(ServerKey, KeyIdentifierIsTheSkiElseTheKeyHash) {
  const auto& ec = key(KeyType::ec_p256, 3);
  const Certificate with = certificate_for(ec, std::nullopt, true);
  const Certificate without = certificate_for(ec, std::nullopt, false);
  EXPECT_EQ(key_identifier(with).size(), 20u);
  // OpenSSL's "hash" SKI is RFC 5280 method 1, so both name the same key the same way.
  EXPECT_EQ(key_identifier(with), key_identifier(without));
}

TEST(ServerKey, SmimeCapabilitiesRoundTripAndBadOnesAreErrors) {
  const std::vector<std::string> caps = {std::string(oid::aes128_cbc), std::string(oid::aes128_wrap)};
  EXPECT_EQ(must(parse_smime_capabilities(encode_smime_capabilities(caps))), caps);
  const Bytes not_a_list = der::encode_octet_string(Bytes{1, 2});
  EXPECT_FALSE(parse_smime_capabilities(not_a_list).ok());
}

}  // namespace
}  // namespace estlab
