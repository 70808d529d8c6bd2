// Private and public keys as immutable, cheaply copyable values (the EVP_PKEY is shared, never mutated).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "estlab/core/bytes.hpp"
#include "estlab/core/ossl.hpp"

namespace estlab {

enum class KeyType { ec_p256, ec_p384, rsa2048, rsa3072, rsa4096, ed25519 };

std::string_view to_string(KeyType type);
// "ec-p256", "ec-p384", "rsa2048", "rsa3072", "rsa4096", "ed25519"; the error lists the valid ones.
Result<KeyType> parse_key_type(std::string_view text);
const std::vector<KeyType>& all_key_types();

class PublicKey {
 public:
  static Result<PublicKey> from_spki_der(ByteView der);
  static PublicKey borrow_shared(EVP_PKEY* key);  // takes a new reference
  // The key of a certificate or CSR with the SubjectPublicKeyInfo it was decoded from: its DER is
  // copied from `spki`, not re-encoded from the key (OpenSSL 3.0's encoder costs ~0.7M
  // instructions per key, a fifth of an issuance).
  // A null `key` (OpenSSL could not decode it: an algorithm it does not know) gives a PublicKey
  // with only its SPKI: native() is null, type() nullopt, algorithm() "unknown (OID)".
  static PublicKey borrow_shared(EVP_PKEY* key, const X509_PUBKEY* spki);

  const Bytes& spki_der() const { return spki_der_; }
  std::string algorithm() const;  // "EC P-256", "RSA 2048", "ED25519"
  std::optional<KeyType> type() const;
  std::string pem() const;
  EVP_PKEY* native() const { return key_.get(); }

  // A copy of this key of OpenSSL's legacy kind (EC and RSA), which X509_set_pubkey and
  // X509_REQ_set_pubkey encode directly: OpenSSL 3.0 runs a provider-made key through its encoder
  // and decoder instead (~2.1M instructions, about ten ECDSA signatures). Empty for other keys.
  ossl::Pkey legacy_copy() const;

  // Same key: the SubjectPublicKeyInfo encodings are equal.
  bool operator==(const PublicKey& other) const { return spki_der_ == other.spki_der_; }

 private:
  std::shared_ptr<EVP_PKEY> key_;
  Bytes spki_der_;
};

class PrivateKey {
 public:
  static Result<PrivateKey> generate(KeyType type);
  // PKCS#8 PrivateKeyInfo / OneAsymmetricKey only (RFC 5958), as RFC 7030 4.4.2 puts on the wire:
  // a PKCS#1 or SEC1 key is refused, so a server sending one is caught.
  static Result<PrivateKey> from_pkcs8_der(ByteView der);
  // PKCS#8 or the traditional DER forms (PKCS#1 RSA, SEC1 EC), for key files people hand us.
  static Result<PrivateKey> from_any_der(ByteView der);
  static PrivateKey adopt(ossl::Pkey key);  // takes ownership of a key OpenSSL handed us
  // DER or PEM; PKCS#8 ("PRIVATE KEY") or the traditional forms ("EC PRIVATE KEY", "RSA PRIVATE KEY").
  static Result<PrivateKey> parse(ByteView data);

  Bytes pkcs8_der() const;
  std::string pkcs8_pem() const;
  PublicKey public_key() const;
  std::string algorithm() const;
  std::optional<KeyType> type() const;
  // Digest to sign with: SHA-384 for P-384, none for Ed25519 (it hashes internally), else SHA-256.
  const EVP_MD* signing_digest() const;
  // As PublicKey::legacy_copy(), with the private half (OpenSSL exports both).
  ossl::Pkey legacy_copy() const;
  EVP_PKEY* native() const { return key_.get(); }

 private:
  std::shared_ptr<EVP_PKEY> key_;
};

}  // namespace estlab
