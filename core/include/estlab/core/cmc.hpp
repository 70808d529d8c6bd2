// The part of CMC (RFC 5272, RFC 5273) that EST's /fullcmc uses (RFC 7030 4.3): the Full PKI
// Request (CMS SignedData over PKIData) and the Full PKI Response (SignedData over PKIResponse)
// with CMCStatusInfoV2 controls and the issued certificates in SignedData.certificates.
// PKCS#10 requests are decoded; CRMF and other request forms, TaggedContentInfo and OtherMsg are
// counted, not decoded. The CMS signature verdict is a field, not an error: the gateway decides.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "estlab/core/bytes.hpp"
#include "estlab/core/certificate.hpp"
#include "estlab/core/csr.hpp"
#include "estlab/core/key.hpp"

namespace estlab {

// CMCStatus (RFC 5272 6.1.1). Values the RFC does not name survive parsing as themselves.
enum class CmcStatusCode : int {
  success = 0,
  failed = 2,
  pending = 3,
  no_support = 4,
  confirm_required = 5,
  pop_required = 6,
  partial = 7,
};

// CMCFailInfo (RFC 5272 6.1.4).
enum class CmcFailInfo : int {
  bad_alg = 0,
  bad_message_check = 1,
  bad_request = 2,
  bad_time = 3,
  bad_cert_id = 4,
  unsupported_ext = 5,
  must_archive_keys = 6,
  bad_identity = 7,
  pop_required = 8,
  pop_failed = 9,
  no_key_reuse = 10,
  internal_ca_error = 11,
  try_later = 12,
  auth_data_fail = 13,
};

// The RFC's names ("success", "noSupport", "popFailed"); "unknown(9)" for other values.
std::string to_string(CmcStatusCode code);
std::string to_string(CmcFailInfo info);
// From the RFC's names; the error lists the valid ones.
Result<CmcStatusCode> parse_cmc_status(std::string_view name);
Result<CmcFailInfo> parse_cmc_fail_info(std::string_view name);

// TaggedAttribute: a control. Each value is one DER element.
struct CmcControl {
  std::uint32_t body_part_id = 0;
  std::string oid;  // dotted
  std::vector<Bytes> values_der;
};

// TaggedCertificationRequest (TaggedRequest choice tcr [0]).
struct CmcCertRequest {
  std::uint32_t body_part_id = 0;
  Bytes pkcs10_der;  // not checked here: Csr::from_der decides
};

// CMCStatusInfoV2 (RFC 5272 6.1.1); CMCStatusInfo (v1) is read into the same shape.
struct CmcStatus {
  CmcStatusCode status = CmcStatusCode::success;
  std::vector<std::uint32_t> body_parts;  // bodyList; a bodyPartPath counts as its last element
  std::string text;                       // statusString; "" when absent
  std::optional<CmcFailInfo> fail_info;   // otherInfo failInfo; extendedFailInfo is not kept
  // otherInfo pendInfo (RFC 5272 6.1.1: present when the status is pending): the token a
  // QueryPending control names, and when to ask again (GeneralizedTime text, "YYYYMMDDHHMMSSZ").
  struct PendInfo {
    Bytes token;
    std::string time;
  };
  std::optional<PendInfo> pend_info;
};

// Outcome of checking a SignedData's signerInfos (signature and message digest; the signer's
// certificate chain is the caller's business).
struct CmsSignatureCheck {
  bool verified = false;
  std::string detail;                        // what was checked or why it failed
  std::optional<Certificate> signer;         // the signer's certificate when the message carries it
  bool signed_with_request_key = false;      // signer found by a CSR's key, not a certificate (RFC 5272 3.2)
};

struct PkiData {
  std::vector<CmcControl> controls;
  std::vector<CmcCertRequest> requests;
  std::size_t crmf_requests = 0;     // crm [1]
  std::size_t other_requests = 0;    // orm [2]
  std::size_t unknown_requests = 0;  // a TaggedRequest choice RFC 5272 does not define
  std::size_t cms_sequence = 0;
  std::size_t other_msgs = 0;
  std::vector<Certificate> certificates;  // SignedData.certificates
  CmsSignatureCheck signature;
};

struct PkiResponse {
  std::vector<CmcStatus> statuses;   // every statusInfoV2 (and statusInfo) value, in order
  std::vector<CmcControl> controls;  // every control, status ones included, as received
  std::vector<Certificate> certificates;  // SignedData.certificates: issued ones and chains
  std::size_t cms_sequence = 0;
  std::size_t other_msgs = 0;
  CmsSignatureCheck signature;
};

// A Full PKI Request carrying `csr` as body part 1, after `extra_controls`. With a signer
// certificate the SignerInfo names it by issuer and serial and the certificate travels along.
// Without one (RFC 5272 3.2: a client that has no certificate yet) it is signed with
// `signer_key` and names the signer by subjectKeyIdentifier, SHA-1 of the public key (RFC 5280
// 4.2.1.2 method 1), and carries no certificate. signer_key is normally the CSR's key; another
// key makes a request whose signer matches no request key (a negative test).
Result<Bytes> make_full_pki_request(const Csr& csr, const PrivateKey& signer_key, const Certificate* signer_cert,
                                    std::vector<CmcControl> extra_controls = {});

// Decodes a Full PKI Request (a DER ContentInfo). Errors name what is wrong: not CMS, not
// SignedData, eContentType not id-cct-PKIData (named), no eContent, malformed PKIData. Body part
// IDs are not checked for uniqueness: that is the gateway's verdict to give.
Result<PkiData> parse_full_pki_request(ByteView der);

// A Full PKI Response: one statusInfoV2 control (body part 1) with `status`, the certificates in
// SignedData.certificates (`issued_and_chain` in order, then the signer's if not among them),
// signed by `signer_key` / `signer_cert`. bodyList must not be empty (SIZE (1..MAX)).
Result<Bytes> make_full_pki_response(const CmcStatus& status, const std::vector<Certificate>& issued_and_chain,
                                     const PrivateKey& signer_key, const Certificate& signer_cert);
Result<Bytes> make_full_pki_response(const std::vector<CmcStatus>& statuses,
                                     const std::vector<Certificate>& issued_and_chain, const PrivateKey& signer_key,
                                     const Certificate& signer_cert);

// Decodes a Full PKI Response; errors as for parse_full_pki_request (eContentType must be
// id-cct-PKIResponse). The signature is checked against the signer certificate in the message.
Result<PkiResponse> parse_full_pki_response(ByteView der);

// One line per status and certificate, for transcripts.
std::string to_text(const CmcStatus& status);
std::string to_text(const PkiResponse& response);

}  // namespace estlab
