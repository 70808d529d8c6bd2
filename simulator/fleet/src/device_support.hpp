// What a simulated device does in both fleet modes (real time and the virtual year): its CSR, and
// finding its certificate in an enrollment answer.
#pragma once

#include <optional>
#include <string>

#include "estlab/core/bytes.hpp"
#include "estlab/core/certificate.hpp"
#include "estlab/core/certs_only.hpp"
#include "estlab/core/csr.hpp"
#include "estlab/core/key.hpp"
#include "estlab/core/name.hpp"
#include "estlab/core/result.hpp"

namespace estlab::fleet::detail {

inline std::string fill_subject(const std::string& subject_template, const std::string& cn) {
  std::string out = subject_template;
  if (auto at = out.find("{{cn}}"); at != std::string::npos) out.replace(at, 6, cn);
  return out;
}

struct DeviceCsr {
  PrivateKey key;
  Bytes der;
};

// A fresh key and a CSR for it; the error says which step failed.
inline Result<DeviceCsr> make_device_csr(const DistinguishedName& subject, KeyType key_type) {
  auto key = PrivateKey::generate(key_type);
  if (!key.ok()) return key.error().within("cannot make the device key");
  auto csr = CsrBuilder().subject(subject).sign(*key);
  if (!csr.ok()) return csr.error().within("cannot sign the CSR");
  return DeviceCsr{std::move(key).value(), csr->der()};
}

// The certificate for `key` in a certs-only answer (DER or an EST body), if there is one.
inline std::optional<Certificate> issued_for(ByteView body, const PrivateKey& key) {
  auto bag = CertsOnly::parse(body);
  if (!bag.ok()) return std::nullopt;
  const auto public_key = key.public_key();
  for (const auto& cert : bag->certificates())
    if (cert.public_key() == public_key) return cert;
  return std::nullopt;
}

}  // namespace estlab::fleet::detail
