#include "policies.hpp"

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
  }
  return delivery;
}

}  // namespace estlab::gateway
