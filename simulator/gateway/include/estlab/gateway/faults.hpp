// Faults make the reference gateway wrong in one named way, so the conformance suite can prove it
// catches each mistake ("testing the tester"). A fault never changes anything but its one point.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace estlab::gateway {

enum class Fault {
  wrong_media_type,            // certs-only answers as application/octet-stream
  no_base64,                   // bodies sent as raw DER
  skip_eku_check,              // client certificates without clientAuth accepted (PG-ENR-2)
  accept_revoked,              // revoked client certificates accepted (PG-ENR-3, 7030-3.3.2-b)
  ignore_subject_mismatch,     // CSR subject need not match the client certificate (PG-ENR-1, 7030-4.2.2-a)
  accept_bad_csr_signature,    // a CSR whose signature does not verify is issued (7030-4.2.1-b)
  drop_retry_after,            // 202 without Retry-After (7030-4.2.3-d)
  accept_challenge_password,   // challengePassword accepted under protocol-gateway (PG-PWD-1)
  ignore_tls_unique,           // any challengePassword value passes the linking check (7030-3.5-b)
  extra_certs_in_enroll,       // the enroll answer carries the chain, not only the new certificate (7030-4.2.3-a)
  cacerts_without_rollover,    // /cacerts omits the rollover certificates (7030-4.1.3)
  allow_tls1_1,                // TLS 1.0 and 1.1 negotiated (RFC 8996)
  unknown_label_served,        // an unknown CA label is served by the default CA (7030-3.2.2-g)
  no_auth_challenge,           // 401 without WWW-Authenticate (7030-3.2.3-a)
  accept_unknown_ca,           // client certificates from CAs outside the trust store accepted (7030-3.3.2-b)
  ignore_renewal_rule,         // re-enroll with a superseded certificate accepted (PG-ENR-4)
  no_san_copy,                 // SAN not copied from CN/unstructuredName (PG-SAN-1)
  errors_as_200,               // refusals answered 200 with a text body (7030-4.2.3-b)
  serverkeygen_key_mismatch,   // the returned private key does not belong to the certificate (7030-4.4.2-b)
  stall_response,              // enroll requests are never answered (a client's timeout must fire)
  issued_cert_sha1,            // issued certificates are signed with SHA-1 (FB-34, 7030-4.2.3-a)
  // Field bugs (shared/spec/field-bugs.md), one fault each:
  strict_base64_lines,         // FB-03: request bodies must be wrapped base64 without blanks (8951-3.1-a)
  pem_body_500,                // FB-04: a PEM-armored request body gets an empty 500 (8951-3-a)
  no_smime_type,               // FB-05: enroll answers lack smime-type=certs-only (7030-4.2.3-a)
  enroll_bare_signeddata,      // FB-08: enroll answers are a bare SignedData (version 4), no ContentInfo (7030-4.1.3-b)
  multipart_without_boundary,  // FB-11: serverkeygen's multipart/mixed has no boundary parameter (7030-4.4.2-a)
  pending_as_503,              // FB-18: a pending request is answered 503, not 202 (7030-4.2.3-d)
  retry_creates_new_request,   // FB-19: each retry of a pending CSR is a new request (7030-4.2.3-f)
  unknown_op_501,              // FB-21: an unknown operation is answered 501, not 404 (7030-3.2.2-g)
  reenroll_keeps_old_key,      // FB-24: re-enroll certifies the current certificate's key, not the CSR's (7030-4.2.3-a)
  trust_forwarded_identity,    // FB-28: any client's forwarded-certificate header is believed (7030-4.2.2-c)
  ra_relinking_refused,        // an RA's CSR carrying its client's linking value is refused (7030-3.7-b)
  basic_password_reusable,     // a single-use Basic password obtains a second certificate (7030-6-b)
  serverkeygen_plain_key,      // a request for an encrypted key gets the plain PKCS#8 key (7030-4.4.2-c)
  required_key_not_listed,     // the CA's required key type is enforced but /csrattrs does not list it (7030-4.5.2-d)
  approval_bypass,             // serverkeygen and fullcmc issue without waiting for manual approval (PG-IDM-1)
  idm_down_rejects,            // an unreachable IDM is taken as a rejection (403): the device gives up, the request is lost (PG-IDM-2)
};

struct FaultInfo {
  Fault fault;
  std::string_view name;         // the --fault spelling, e.g. "skip-eku-check"
  std::string_view description;
  std::string_view requirement;  // the requirement ID a suite must use to catch it
};

const std::vector<FaultInfo>& all_faults();
const FaultInfo& info(Fault fault);
std::optional<Fault> parse_fault(std::string_view name);
std::string_view to_string(Fault fault);

}  // namespace estlab::gateway
