// Building the requests a scenario sends: CSRs from templates (named keys kept across steps,
// linking values from the connection), fresh subjects in the target's naming, and base64 bodies
// in every layout RFC 8951 3.1 lets a sender choose.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "estlab/conformance/scenario.hpp"
#include "estlab/core/csr.hpp"
#include "estlab/core/key.hpp"
#include "estlab/core/tls.hpp"

namespace estlab::conformance {

// "clientAuth", "serverAuth", "cmcRA" as dotted OIDs; anything else is taken as an OID already.
std::string eku_oid(const std::string& name);
// challenge_password values taken from the connection: tls-unique, tls-exporter, and other-finished
// (the TLS <= 1.2 Finished message tls-unique does not name, a wrong linking value).
bool is_channel_value(const std::string& challenge_password);

// The target's subject_template with {{cn}} = cn; an empty cn drops the CN attribute (a CSR
// without commonName, PG-SAN-2).
std::string fresh_subject(const std::string& subject_template, const std::string& cn);

// base64 of der laid out as `layout` says (Step::base64_layout); "" = wrap64-crlf.
std::string layout_base64(ByteView der, const std::string& layout);

struct MadeCsr {
  Csr csr;
  std::optional<PrivateKey> key;  // none for a CSR read from a file
};

class CsrMaker {
 public:
  CsrMaker(KeyType default_key_type, std::filesystem::path scenario_dir)
      : default_key_type_(default_key_type), scenario_dir_(std::move(scenario_dir)) {}

  // `t` has its {{variables}} resolved, and its subject made from csr.cn already. `tls` is the
  // connection the CSR goes on (for tls-unique / tls-exporter linking); nullptr when none.
  // ErrorCode::unsupported when the connection cannot give the linking value asked for.
  Result<MadeCsr> make(const CsrTemplate& t, const TlsConnectionInfo* tls);

 private:
  Result<PrivateKey> key_for(const CsrTemplate& t);

  KeyType default_key_type_;
  std::filesystem::path scenario_dir_;
  std::map<std::string, PrivateKey> keys_;
  std::optional<Bytes> current_unique_, previous_unique_;  // tls-unique of the last two connections CSRs went on
};

}  // namespace estlab::conformance
