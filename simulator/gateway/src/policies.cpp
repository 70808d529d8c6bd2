#include "policies.hpp"

#include <openssl/objects.h>
#include <openssl/x509.h>

#include "estlab/core/der.hpp"
#include "estlab/core/oids.hpp"
#include "estlab/core/server_key.hpp"

namespace estlab::gateway {

bool is_ra_of_est_ca(const Certificate& leaf, const std::vector<Certificate>& ca_certificates) {
  if (!leaf.has_extended_key_usage(oid::cmc_ra)) return false;
  for (const auto& ca : ca_certificates)
    if (ca.subject() == leaf.issuer() && leaf.signed_by(ca.public_key())) return true;
  return false;
}

bool SpentPasswords::spent(const std::string& user, const std::string& password) const {
  std::lock_guard lock(mutex_);
  return spent_.count(user + '\0' + password) != 0;
}

void SpentPasswords::spend(const std::string& user, const std::string& password) {
  std::lock_guard lock(mutex_);
  spent_.insert(user + '\0' + password);
}

std::string required_key_problem(const Csr& csr, KeyType required) {
  const auto type = csr.public_key().type();
  if (type != required)
    return "the CA requires a " + std::string(to_string(required)) + " key (see /csrattrs); the CSR's key is " +
           csr.public_key().algorithm();
  // The signature scheme key_type_csrattrs_spec lists with the key: SHA-384 for P-384, SHA-256 else.
  int digest = NID_undef, algorithm = NID_undef;
  if (!OBJ_find_sigid_algs(X509_REQ_get_signature_nid(csr.native()), &digest, &algorithm)) return "the CSR's signature algorithm is unknown";
  const int wanted = required == KeyType::ed25519 ? NID_undef : required == KeyType::ec_p384 ? NID_sha384 : NID_sha256;
  if (digest != wanted)
    return std::string("the CA requires signatures with ") + (wanted == NID_undef ? "Ed25519" : OBJ_nid2sn(wanted)) +
           " (see /csrattrs); the CSR is signed with " + (digest == NID_undef ? "no separate digest" : OBJ_nid2sn(digest));
  return "";
}

namespace {

// DecryptKeyIdentifier and AsymmetricDecryptKeyIdentifier are OCTET STRINGs.
Result<Bytes> octet_string(const Bytes& der, const std::string& what) {
  auto element = der::read_single(der, der::kOctetString, what);
  if (!element.ok()) return element.error();
  if (element->content.empty()) return make_error(ErrorCode::invalid_input, what + " is empty");
  return Bytes(element->content.begin(), element->content.end());
}

}  // namespace

Result<KeyDelivery> read_key_delivery(const Csr& csr) {
  KeyDelivery delivery;
  const auto symmetric = csr.attribute_value_der(oid::decrypt_key_identifier);
  const auto asymmetric = csr.attribute_value_der(oid::asymmetric_decrypt_key_identifier);
  if (!symmetric && !asymmetric) return delivery;
  if (symmetric && asymmetric)
    return make_error(ErrorCode::invalid_input, "the CSR names both a DecryptKeyIdentifier and an AsymmetricDecryptKeyIdentifier");
  auto id = symmetric ? octet_string(*symmetric, "DecryptKeyIdentifier") : octet_string(*asymmetric, "AsymmetricDecryptKeyIdentifier");
  if (!id.ok()) return id.error();
  delivery.kind = symmetric ? KeyDelivery::Kind::symmetric : KeyDelivery::Kind::asymmetric;
  delivery.key_identifier = std::move(id).value();
  if (auto capabilities = csr.attribute_value_der(oid::smime_capabilities)) {
    auto parsed = parse_smime_capabilities(*capabilities);
    if (!parsed.ok()) return parsed.error().within("SMIMECapabilities");
    delivery.capabilities = std::move(parsed).value();
    delivery.has_capabilities = true;
  }
  return delivery;
}

}  // namespace estlab::gateway
