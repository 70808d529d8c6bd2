// PKCS#12 tokens: the product configures its TLS identities as .p12 files (tlsToken, idm.tls.token).
#pragma once

#include <string>
#include <vector>

#include "estlab/core/certificate.hpp"
#include "estlab/core/key.hpp"

namespace estlab {

struct Pkcs12Token {
  PrivateKey key;
  Certificate certificate;
  std::vector<Certificate> chain;  // CA certificates, if the token carries them
};

Result<Bytes> make_pkcs12(const PrivateKey& key, const Certificate& certificate, const std::vector<Certificate>& chain,
                          const std::string& password, const std::string& friendly_name);
// Errors say whether the password is wrong or the file is not PKCS#12.
Result<Pkcs12Token> parse_pkcs12(ByteView der, const std::string& password);

}  // namespace estlab
