#include "estlab/core/pkcs12.hpp"

#include <openssl/pkcs12.h>

namespace estlab {

using Pkcs12Ptr = std::unique_ptr<PKCS12, ossl::Deleter<PKCS12_free>>;

Result<Bytes> make_pkcs12(const PrivateKey& key, const Certificate& certificate, const std::vector<Certificate>& chain,
                          const std::string& password, const std::string& friendly_name) {
  ossl::ErrorQueueGuard guard;
  ossl::X509Stack cas(sk_X509_new_null());
  for (const auto& c : chain) {
    X509_up_ref(c.native());
    sk_X509_push(cas.get(), c.native());  // the stack owns this reference
  }
  // Default (AES-256-CBC, PBKDF2) algorithms: what OpenSSL 3 and current Java keystores read.
  Pkcs12Ptr p12(PKCS12_create(password.c_str(), friendly_name.c_str(), key.native(), certificate.native(), cas.get(), 0, 0,
                              0, 0, 0));
  if (!p12) return ossl::error(ErrorCode::internal, "PKCS#12: cannot build the token");
  Bytes der = ossl::i2d_bytes(i2d_PKCS12, p12.get());
  if (der.empty()) return ossl::error(ErrorCode::internal, "PKCS#12: DER encoding failed");
  return der;
}

Result<Pkcs12Token> parse_pkcs12(ByteView der, const std::string& password) {
  ossl::ErrorQueueGuard guard;
  const unsigned char* p = der.data();
  Pkcs12Ptr p12(d2i_PKCS12(nullptr, &p, static_cast<long>(der.size())));
  if (!p12) return ossl::error(ErrorCode::invalid_input, "PKCS#12: not a DER PKCS#12 file");
  if (PKCS12_verify_mac(p12.get(), password.c_str(), -1) != 1) {
    ERR_clear_error();
    return make_error(ErrorCode::verify_failed, "PKCS#12: wrong password (MAC does not verify)");
  }
  EVP_PKEY* raw_key = nullptr;
  X509* raw_cert = nullptr;
  STACK_OF(X509)* raw_cas = nullptr;
  if (PKCS12_parse(p12.get(), password.c_str(), &raw_key, &raw_cert, &raw_cas) != 1) {
    return ossl::error(ErrorCode::invalid_input, "PKCS#12: cannot decrypt the contents");
  }
  ossl::Pkey key(raw_key);
  ossl::X509Ptr cert(raw_cert);
  ossl::X509Stack cas(raw_cas);
  if (!key || !cert) return make_error(ErrorCode::invalid_input, "PKCS#12: the token has no key or no certificate");
  Pkcs12Token token{PrivateKey::adopt(std::move(key)), Certificate::borrow_shared(cert.get()), {}};
  for (int i = 0; cas && i < sk_X509_num(cas.get()); ++i) token.chain.push_back(Certificate::borrow_shared(sk_X509_value(cas.get(), i)));
  return token;
}

}  // namespace estlab
