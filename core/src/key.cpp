#include "estlab/core/key.hpp"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "estlab/core/encoding.hpp"

namespace estlab {
namespace {

std::shared_ptr<EVP_PKEY> share(EVP_PKEY* key) { return std::shared_ptr<EVP_PKEY>(key, ossl::Deleter<EVP_PKEY_free>{}); }

Bytes spki_of(EVP_PKEY* key) { return ossl::i2d_bytes(i2d_PUBKEY, key); }

std::string curve_of(EVP_PKEY* key) {
  char name[64] = {};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, &len) != 1) return {};
  return std::string(name, len);
}

// An EVP_PKEY of the legacy kind owning `key` (an EC_KEY or RSA; freed if that fails); empty for null.
template <typename Key>
ossl::Pkey legacy_of(Key* key, int type, void (*free_key)(Key*)) {
  if (key == nullptr) return {};
  ossl::Pkey legacy(EVP_PKEY_new());
  if (legacy && EVP_PKEY_assign(legacy.get(), type, key) == 1) return legacy;
  free_key(key);
  return {};
}

// From the key itself: a PublicKey would encode its SubjectPublicKeyInfo first.
std::optional<KeyType> type_of(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "ED25519")) return KeyType::ed25519;
  if (EVP_PKEY_is_a(key, "EC")) {
    std::string curve = curve_of(key);
    if (curve == "prime256v1" || curve == "P-256") return KeyType::ec_p256;
    if (curve == "secp384r1" || curve == "P-384") return KeyType::ec_p384;
    return std::nullopt;
  }
  if (EVP_PKEY_is_a(key, "RSA")) {
    switch (EVP_PKEY_get_bits(key)) {
      case 2048: return KeyType::rsa2048;
      case 3072: return KeyType::rsa3072;
      case 4096: return KeyType::rsa4096;
      default: return std::nullopt;
    }
  }
  return std::nullopt;
}

std::string algorithm_of(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "EC")) {
    std::string curve = curve_of(key);
    const char* nist = EC_curve_nid2nist(OBJ_sn2nid(curve.c_str()));
    return "EC " + (nist != nullptr ? std::string(nist) : curve);
  }
  if (EVP_PKEY_is_a(key, "RSA")) return "RSA " + std::to_string(EVP_PKEY_get_bits(key));
  const char* name = EVP_PKEY_get0_type_name(key);
  return name != nullptr ? name : "unknown";
}

}  // namespace

std::string_view to_string(KeyType type) {
  switch (type) {
    case KeyType::ec_p256: return "ec-p256";
    case KeyType::ec_p384: return "ec-p384";
    case KeyType::rsa2048: return "rsa2048";
    case KeyType::rsa3072: return "rsa3072";
    case KeyType::rsa4096: return "rsa4096";
    case KeyType::ed25519: return "ed25519";
  }
  return "unknown";
}

const std::vector<KeyType>& all_key_types() {
  static const std::vector<KeyType> types = {KeyType::ec_p256, KeyType::ec_p384, KeyType::rsa2048,
                                             KeyType::rsa3072, KeyType::rsa4096, KeyType::ed25519};
  return types;
}

Result<KeyType> parse_key_type(std::string_view text) {
  std::string valid;
  for (KeyType t : all_key_types()) {
    if (to_string(t) == text) return t;
    valid += (valid.empty() ? "" : ", ") + std::string(to_string(t));
  }
  return make_error(ErrorCode::invalid_input, "unknown key type '" + std::string(text) + "' (valid: " + valid + ")");
}

Result<PrivateKey> PrivateKey::generate(KeyType type) {
  ossl::ErrorQueueGuard guard;
  EVP_PKEY* raw = nullptr;
  switch (type) {
    case KeyType::ec_p256: raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"); break;
    case KeyType::ec_p384: raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"); break;
    case KeyType::rsa2048: raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)); break;
    case KeyType::rsa3072: raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(3072)); break;
    case KeyType::rsa4096: raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(4096)); break;
    case KeyType::ed25519: raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"); break;
  }
  if (raw == nullptr) return ossl::error(ErrorCode::internal, "key generation failed for " + std::string(to_string(type)));
  return adopt(ossl::Pkey(raw));
}

PrivateKey PrivateKey::adopt(ossl::Pkey key) {
  PrivateKey out;
  out.key_ = share(key.release());  // the shared_ptr owns it now
  return out;
}

Result<PrivateKey> PrivateKey::from_pkcs8_der(ByteView der) {
  ossl::ErrorQueueGuard guard;
  const unsigned char* p = der.data();
  std::unique_ptr<PKCS8_PRIV_KEY_INFO, ossl::Deleter<PKCS8_PRIV_KEY_INFO_free>> info(
      d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(der.size())));
  if (!info) return ossl::error(ErrorCode::invalid_input, "private key: not a DER PKCS#8 PrivateKeyInfo");
  if (p != der.data() + der.size()) return make_error(ErrorCode::invalid_input, "private key: trailing bytes after the DER key");
  EVP_PKEY* raw = EVP_PKCS82PKEY(info.get());
  if (raw == nullptr) return ossl::error(ErrorCode::invalid_input, "private key: PKCS#8 PrivateKeyInfo with a key OpenSSL cannot read");
  PrivateKey key;
  key.key_ = share(raw);
  return key;
}

Result<PrivateKey> PrivateKey::from_any_der(ByteView der) {
  ossl::ErrorQueueGuard guard;
  const unsigned char* p = der.data();
  EVP_PKEY* raw = d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size()));
  if (raw == nullptr) return ossl::error(ErrorCode::invalid_input, "private key: not a DER PKCS#8 or traditional key");
  PrivateKey key;
  key.key_ = share(raw);
  if (p != der.data() + der.size()) {
    return make_error(ErrorCode::invalid_input, "private key: trailing bytes after the DER key");
  }
  return key;
}

Result<PrivateKey> PrivateKey::parse(ByteView data) {
  auto der = to_der(data, {"PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"}, "private key");
  if (!der.ok()) {
    if (detect_encoding(data) == Encoding::pem &&
        as_chars(data).find("ENCRYPTED PRIVATE KEY") != std::string_view::npos) {
      return make_error(ErrorCode::unsupported, "private key: encrypted PKCS#8 is not supported; give the key unencrypted");
    }
    return der.error();
  }
  return from_any_der(*der);
}

Bytes PrivateKey::pkcs8_der() const {
  ossl::ErrorQueueGuard guard;
  std::unique_ptr<PKCS8_PRIV_KEY_INFO, ossl::Deleter<PKCS8_PRIV_KEY_INFO_free>> info(EVP_PKEY2PKCS8(key_.get()));
  if (!info) return {};
  return ossl::i2d_bytes(i2d_PKCS8_PRIV_KEY_INFO, info.get());
}

std::string PrivateKey::pkcs8_pem() const { return pem_encode("PRIVATE KEY", pkcs8_der()); }

PublicKey PrivateKey::public_key() const { return PublicKey::borrow_shared(key_.get()); }

ossl::Pkey PrivateKey::legacy_copy() const {
  ossl::ErrorQueueGuard guard;
  if (EVP_PKEY_get_base_id(key_.get()) == EVP_PKEY_EC) return legacy_of(EVP_PKEY_get1_EC_KEY(key_.get()), EVP_PKEY_EC, EC_KEY_free);
  if (EVP_PKEY_get_base_id(key_.get()) == EVP_PKEY_RSA) return legacy_of(EVP_PKEY_get1_RSA(key_.get()), EVP_PKEY_RSA, RSA_free);
  return {};
}

std::string PrivateKey::algorithm() const { return algorithm_of(key_.get()); }

std::optional<KeyType> PrivateKey::type() const { return type_of(key_.get()); }

const EVP_MD* PrivateKey::signing_digest() const {
  switch (type().value_or(KeyType::ec_p256)) {
    case KeyType::ed25519: return nullptr;
    case KeyType::ec_p384: return EVP_sha384();
    default: return EVP_sha256();
  }
}

PublicKey PublicKey::borrow_shared(EVP_PKEY* key) {
  EVP_PKEY_up_ref(key);
  PublicKey pub;
  pub.key_ = share(key);
  pub.spki_der_ = spki_of(key);
  return pub;
}

PublicKey PublicKey::borrow_shared(EVP_PKEY* key, const X509_PUBKEY* spki) {
  PublicKey pub;
  if (key != nullptr) {  // null: OpenSSL could not decode it (an algorithm it does not know)
    EVP_PKEY_up_ref(key);
    pub.key_ = share(key);
  }
  pub.spki_der_ = ossl::i2d_bytes(i2d_X509_PUBKEY, spki);
  return pub;
}

Result<PublicKey> PublicKey::from_spki_der(ByteView der) {
  ossl::ErrorQueueGuard guard;
  const unsigned char* p = der.data();
  EVP_PKEY* raw = d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()));
  if (raw == nullptr) return ossl::error(ErrorCode::invalid_input, "public key: not a DER SubjectPublicKeyInfo");
  PublicKey pub;
  pub.key_ = share(raw);
  pub.spki_der_ = spki_of(raw);
  return pub;
}

std::optional<KeyType> PublicKey::type() const {
  if (!key_) return std::nullopt;
  return type_of(key_.get());
}

std::string PublicKey::algorithm() const {
  if (key_) return algorithm_of(key_.get());
  // The algorithm identifier of the SubjectPublicKeyInfo, which OpenSSL could not decode.
  const unsigned char* p = spki_der_.data();
  std::unique_ptr<X509_PUBKEY, ossl::Deleter<X509_PUBKEY_free>> spki(d2i_X509_PUBKEY(nullptr, &p, static_cast<long>(spki_der_.size())));
  ASN1_OBJECT* oid = nullptr;
  char dotted[128] = {};
  if (spki && X509_PUBKEY_get0_param(&oid, nullptr, nullptr, nullptr, spki.get()) == 1 && oid != nullptr)
    OBJ_obj2txt(dotted, sizeof dotted, oid, 1);
  ERR_clear_error();
  return std::string("unknown (") + (dotted[0] != '\0' ? dotted : "undecodable") + ")";
}

ossl::Pkey PublicKey::legacy_copy() const {
  ossl::ErrorQueueGuard guard;
  if (!key_) return {};
  // d2i_EC_PUBKEY and d2i_RSA_PUBKEY decode with the legacy methods, not OpenSSL 3.0's decoders.
  const unsigned char* p = spki_der_.data();
  const long length = static_cast<long>(spki_der_.size());
  if (EVP_PKEY_get_base_id(key_.get()) == EVP_PKEY_EC) return legacy_of(d2i_EC_PUBKEY(nullptr, &p, length), EVP_PKEY_EC, EC_KEY_free);
  if (EVP_PKEY_get_base_id(key_.get()) == EVP_PKEY_RSA) return legacy_of(d2i_RSA_PUBKEY(nullptr, &p, length), EVP_PKEY_RSA, RSA_free);
  return {};
}

std::string PublicKey::pem() const { return pem_encode("PUBLIC KEY", spki_der_); }

}  // namespace estlab
