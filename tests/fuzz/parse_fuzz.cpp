// libFuzzer target for every parser that reads untrusted bytes. The first byte picks the parser so
// one corpus exercises them all. Build: cmake -DESTLAB_FUZZ=ON with clang (see tests/fuzz/README.md).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "estlab/core/base64.hpp"
#include "estlab/core/certificate.hpp"
#include "estlab/core/certs_only.hpp"
#include "estlab/core/crl.hpp"
#include "estlab/core/csr.hpp"
#include "estlab/core/encoding.hpp"
#include "estlab/core/extensions.hpp"
#include "estlab/core/key.hpp"
#include "estlab/core/name.hpp"
#include "estlab/core/properties.hpp"

using namespace estlab;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  ByteView input(data + 1, size - 1);
  std::string_view text = as_chars(input);
  switch (selector % 10) {
    case 0: {
      auto csr = Csr::parse(input, Csr::SignatureCheck::skip);
      if (csr.ok()) {
        (void)csr->subject().to_string();
        (void)csr->subject_alt_names();
        (void)csr->challenge_password();
        (void)csr->requested_extensions();
        (void)csr->to_text();
      }
      break;
    }
    case 1: {
      auto cert = Certificate::parse(input);
      if (cert.ok()) {
        (void)cert->subject_alt_names();
        (void)cert->extended_key_usages();
        (void)cert->certificate_policies();
        (void)cert->public_key().algorithm();  // a key OpenSSL cannot decode is named, not dereferenced
        (void)cert->to_text();
      }
      break;
    }
    case 2: {
      auto bag = CertsOnly::parse(input);
      if (bag.ok()) (void)bag->to_text();
      break;
    }
    case 3: {
      auto crl = Crl::parse(input);
      if (crl.ok()) (void)crl->entries();
      break;
    }
    case 4: (void)base64_decode(text); break;
    case 5: (void)pem_decode_all(text); break;
    case 6: (void)DistinguishedName::parse(text); break;
    case 7: {
      auto props = Properties::parse(text, "fuzz.properties");
      if (props.ok()) (void)Properties::parse(props->to_string(), "round-trip");
      break;
    }
    case 8: (void)PrivateKey::parse(input); break;
    case 9: (void)SubjectAltName::parse(text); break;
  }
  return 0;
}
