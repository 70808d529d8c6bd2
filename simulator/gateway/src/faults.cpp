#include "estlab/gateway/faults.hpp"

#include <stdexcept>

namespace estlab::gateway {

const std::vector<FaultInfo>& all_faults() {
  static const std::vector<FaultInfo> faults = {
      {Fault::wrong_media_type, "wrong-media-type", "certs-only answers carry Content-Type application/octet-stream", "7030-3.2.4-a"},
      {Fault::no_base64, "no-base64", "response bodies are raw DER instead of base64", "8951-3-a"},
      {Fault::skip_eku_check, "skip-eku-check", "client certificates without the clientAuth EKU are accepted", "PG-ENR-2"},
      {Fault::accept_revoked, "accept-revoked", "revoked client certificates are accepted", "PG-ENR-3"},
      {Fault::ignore_subject_mismatch, "ignore-subject-mismatch", "the CSR subject need not match the client certificate", "PG-ENR-1"},
      {Fault::accept_bad_csr_signature, "accept-bad-csr-signature", "a CSR whose signature does not verify is issued", "7030-4.2.1-b"},
      {Fault::drop_retry_after, "drop-retry-after", "202 Accepted is sent without Retry-After", "7030-4.2.3-d"},
      {Fault::accept_challenge_password, "accept-challenge-password", "CSRs with a challengePassword are accepted under protocol-gateway", "PG-PWD-1"},
      {Fault::ignore_tls_unique, "ignore-tls-unique", "any challengePassword value passes the tls-unique check", "7030-3.5-b"},
      {Fault::extra_certs_in_enroll, "extra-certs-in-enroll", "enroll answers carry the CA chain besides the new certificate", "7030-4.2.3-a"},
      {Fault::cacerts_without_rollover, "cacerts-without-rollover", "/cacerts omits the root rollover certificates", "7030-4.1.3-e"},
      {Fault::allow_tls1_1, "allow-tls1.1", "TLS 1.0 and 1.1 are negotiated", "8996-1.1-a"},
      {Fault::unknown_label_served, "unknown-label-served", "an unknown CA label is served by the default CA instead of 404", "7030-3.2.2-g"},
      {Fault::no_auth_challenge, "no-auth-challenge", "401 is sent without a WWW-Authenticate challenge", "7030-3.2.3-a"},
      {Fault::accept_unknown_ca, "accept-unknown-ca", "client certificates from CAs outside the trust store are accepted", "7030-3.3.2-b"},
      {Fault::ignore_renewal_rule, "ignore-renewal-rule", "re-enrollment with a superseded certificate is accepted while PG-ENR-4 is on", "PG-ENR-4"},
      {Fault::no_san_copy, "no-san-copy", "dNSName is not copied from unstructuredName/commonName", "PG-SAN-1"},
      {Fault::errors_as_200, "errors-as-200", "refusals are answered 200 with a text body", "7030-4.2.3-b"},
      {Fault::serverkeygen_key_mismatch, "serverkeygen-key-mismatch", "/serverkeygen returns a private key that does not match the certificate", "7030-4.4.2-b"},
      {Fault::stall_response, "stall-response", "enroll requests are read but never answered (until the connection times out)", "7030-4.2-a"},
      {Fault::issued_cert_sha1, "issued-cert-sha1", "issued certificates are signed with SHA-1 (FB-34)", "7030-4.2.3-a"},
      {Fault::strict_base64_lines, "strict-base64-lines", "request bodies must be base64 wrapped at 64 or 76 characters, without spaces or tabs (FB-03)", "8951-3.1-a"},
      {Fault::pem_body_500, "pem-body-500", "a PEM-armored request body is answered 500 with an empty body (FB-04)", "8951-3-a"},
      {Fault::no_smime_type, "no-smime-type", "enroll answers carry application/pkcs7-mime without smime-type=certs-only (FB-05)", "7030-4.2.3-a"},
      {Fault::enroll_bare_signeddata, "enroll-bare-signeddata", "enroll answers are a bare SignedData of version 4 without the ContentInfo (FB-08)", "7030-4.1.3-b"},
      {Fault::multipart_without_boundary, "multipart-without-boundary", "/serverkeygen answers multipart/mixed without a boundary parameter (FB-11)", "7030-4.4.2-a"},
      {Fault::pending_as_503, "pending-as-503", "a request waiting for approval is answered 503 instead of 202 (FB-18)", "7030-4.2.3-d"},
      {Fault::retry_creates_new_request, "retry-creates-new-request", "each retry of a pending CSR opens a new approval request; approving the first never ends the polling (FB-19)", "7030-4.2.3-f"},
      {Fault::unknown_op_501, "unknown-op-501", "an unknown operation is answered 501 instead of 404 (FB-21)", "7030-3.2.2-g"},
      {Fault::reenroll_keeps_old_key, "reenroll-keeps-old-key", "/simplereenroll certifies the current certificate's key, not the key of the posted CSR (FB-24)", "7030-4.2.3-a"},
      {Fault::ra_relinking_refused, "ra-relinking-refused", "an RA (id-kp-cmcRA from the EST CA) whose CSR carries its client's linking value is refused", "7030-3.7-b"},
      {Fault::basic_password_reusable, "basic-password-reusable", "a single-use HTTP Basic password obtains a second certificate", "7030-6-b"},
      {Fault::serverkeygen_plain_key, "serverkeygen-plain-key", "/serverkeygen answers a request for an encrypted key with the plain PKCS#8 key", "7030-4.4.2-c"},
      {Fault::required_key_not_listed, "required-key-not-listed", "the key type the CA requires (estlab.ca.required-key-type) is enforced but /csrattrs does not list it", "7030-4.5.2-d"},
      {Fault::trust_forwarded_identity, "trust-forwarded-identity-header", "a forwarded client-certificate header is believed from any client, not only the officer proxy (FB-28)", "7030-4.2.2-c"},
      {Fault::approval_bypass, "approval-bypass", "with manual approval, /serverkeygen and /fullcmc issue at once (only /simpleenroll waits)", "PG-IDM-1"},
      {Fault::idm_down_rejects, "idm-down-rejects", "an unreachable identity manager is answered as a rejection (403), not 503 + Retry-After", "PG-IDM-2"},
  };
  return faults;
}

const FaultInfo& info(Fault fault) {
  for (const auto& entry : all_faults())
    if (entry.fault == fault) return entry;
  throw std::logic_error("fault without an entry in all_faults()");
}

std::optional<Fault> parse_fault(std::string_view name) {
  for (const auto& entry : all_faults())
    if (entry.name == name) return entry.fault;
  return std::nullopt;
}

std::string_view to_string(Fault fault) { return info(fault).name; }

}  // namespace estlab::gateway
