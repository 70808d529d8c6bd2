// The scenario language (conformance/README.md): a YAML file per scenario, loaded into these
// values. Loading checks everything it can (step kinds, keys, types, variable syntax) so a broken
// file fails at load time with "file:line: what is wrong", never halfway through a run.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "estlab/core/result.hpp"
#include "estlab/network/relay.hpp"

namespace estlab::conformance {

// What a CSR built by a step looks like. Strings may hold {{variables}}.
struct CsrTemplate {
  std::string subject;                       // "C=SE,O=x,CN=y"; "" = empty subject
  // A fresh subject named as the target's CA names subjects: the target's subject_template with
  // {{cn}} = this value. "" with cn_given = the template without its CN (no commonName at all).
  std::string cn;
  bool cn_given = false;
  std::vector<std::string> subject_alt_names;  // "DNS:x", "IP:1.2.3.4"
  std::string key = "new";                   // "new", or the name of a key made by an earlier step
  std::string key_type;                      // "" = the lab's key type
  std::string challenge_password;            // "", "tls-unique", "tls-exporter", "previous-tls-unique", or a literal
  std::string challenge_password_type = "printable";  // the DirectoryString choice: printable or utf8 (RFC 9148 uses UTF8String)
  std::string unstructured_name;
  std::string unstructured_address;
  std::vector<std::string> extended_key_usages;  // requested, dotted or short names
  bool corrupt_signature = false;
  std::string file;                          // a CSR file (PEM/DER/base64) instead of building one
  std::vector<std::pair<std::string, std::string>> attributes;  // oid -> DER hex (e.g. DecryptKeyIdentifier)
  // "asymmetric": ask for the server-generated key encrypted to this connection's certificate
  // (RFC 7030 4.4.1.2: SMIMECapabilities and an AsymmetricDecryptKeyIdentifier naming its key).
  std::string encrypted_key;
};

// RFC 5280 facts expected of one certificate: the issued one (`issued:`) or the TLS server's
// (`server_certificate:`), in the same words. Every field set is a check.
struct CertificateChecks {
  std::string validity;                       // "within-ca": notBefore/notAfter inside the issuing CA certificate's
  std::optional<bool> valid_now;              // the validity period contains the time of the check
  std::optional<int> version;                 // 3 = X.509 v3
  std::vector<std::string> key_usage;         // each bit present ("digitalSignature")
  std::vector<std::string> key_usage_absent;  // each bit absent ("keyCertSign")
  std::vector<std::string> key_usage_permits; // no keyUsage extension (any use), or one holding each of these
  std::optional<bool> basic_constraints_ca;   // basic_constraints: {ca: false} = not a CA (absent or cA FALSE)
  std::string crl_distribution_points;        // "present" | "absent"
  std::string authority_info_access;          // "present" | "absent"
  std::string signature_algorithm;            // "strong": no MD5/SHA-1 based signature (FB-34)
  std::vector<std::string> eku;               // each EKU present
  std::vector<std::string> eku_permits;       // no EKU extension (any purpose), or one holding each of these
  std::string name;                           // a subjectAltName dNSName/iPAddress matches (RFC 6125, no CN fallback)
  std::string chains_to;                      // server_certificate: a captured bag or "trust-anchors" (the target's)
  bool any() const {
    return !validity.empty() || valid_now || version || !key_usage.empty() || !key_usage_absent.empty() || !key_usage_permits.empty() || basic_constraints_ca ||
           !crl_distribution_points.empty() || !authority_info_access.empty() || !signature_algorithm.empty() || !eku.empty() ||
           !eku_permits.empty() || !name.empty() || !chains_to.empty();
  }
};

// Expectations on a response. Every field is optional; each one present is a check. A failed
// check counts at the level of its catalog row (MUST -> fail, SHOULD -> warn, MAY/record -> info)
// unless `level` says otherwise.
struct Expectation {
  std::vector<int> status;                 // any of these
  std::optional<char> status_class;        // '2', '4', '5': any status of that class
  // Statuses the row tolerates with a warning ("405 with Allow, or another 4xx (warn only)").
  std::vector<int> tolerated_status;
  std::optional<char> tolerated_class;
  // A refusal: an HTTP answer with one of `status` (default any 4xx), or a TLS alert during the
  // handshake, or a connection closed or reset before any answer, as rows such as 7030-3.3.2-b
  // and 7030-3.3-a allow. The report says which was seen.
  bool refused = false;
  // A refusal (TLS alert, reset) where an answer is expected counts as tolerated: a warning.
  bool refusal_tolerated = false;
  std::map<std::string, std::string> headers;  // name -> "present" | "absent" | exact value | "~substring"
  std::string media_type;                  // "certs-only", "pkcs7-mime", "csrattrs", "multipart", "cmc-response", "text", or a full type
  std::optional<int> certificate_count;    // certificates in the certs-only body
  std::optional<int> min_certificates;     // at least this many
  std::optional<bool> contains_root;       // the bag holds a self-signed certificate (7030-4.1.3-c)
  std::string issued_subject;              // the issued certificate's subject (canonical text)
  std::string issued_common_name;
  std::string issued_issuer;
  std::string issued_serial;               // lower-case hex, usually a captured {{variable}}
  std::vector<std::string> issued_san;     // exact set
  std::vector<std::string> issued_san_contains;
  std::vector<std::string> issued_eku;     // each must be present
  std::string issued_public_key;           // "csr" (equals the CSR's) or "not-csr" (serverkeygen)
  std::string issued_chains_to;            // a captured /cacerts bag: the issued certificate chains to a root in it
  CertificateChecks issued_profile;        // issued: the RFC 5280 vocabulary above (chains_to stays issued_chains_to)
  std::optional<CertificateChecks> server_certificate;  // the TLS server's leaf, with the chain it sent
  std::optional<bool> resumed;             // the TLS handshake of this connection was abbreviated (a resumed session)
  std::optional<bool> secure_renegotiation;  // the server sent RFC 5746 renegotiation_info
  std::optional<bool> renegotiation_requested;  // the server sent a HelloRequest on this connection
  std::optional<bool> server_key_matches;  // serverkeygen: the PKCS#8 key part matches the certificate
  // serverkeygen: the key part is EnvelopedData(SignedData(key package)) that opens with the
  // connection's key, in the algorithms the CSR listed (7030-4.4.2-c)
  bool server_key_encrypted = false;
  std::vector<std::string> csrattrs_contains;  // OIDs or names
  bool csrattrs_valid = false;             // a 200 body is base64 DER CsrAttrs (7030-4.5.2-b)
  bool csrattrs_lint = false;
  std::string csrattrs_key_type;           // a csrattrs answer asks for this key type ("ec-p384": id-ecPublicKey {secp384r1})              // a 200 body has RFC 9908's shape (csrattrs-3.2-a/b, 7030-4.5.2-f), each at its row's level
  std::string cmc_status;                  // "success", "failed", ...
  std::string cmc_fail_info;               // "popFailed", ...
  std::string body_contains;               // substring of the (raw) body
  std::optional<bool> connection_fails;    // connect steps: the handshake must fail (true) or complete (false)
  std::optional<bool> extended_master_secret;  // coaps connect steps: RFC 7627 was (not) negotiated
  bool error_text = false;                 // a 4xx/5xx body is readable text or a CMC response (FB-04, FB-18, FB-24)
  bool retry_after_valid = false;          // Retry-After present, delta-seconds or an HTTP-date (FB-18)
  bool certs_only_structure = false;       // a 2xx body is base64 of a ContentInfo/SignedData v1 certs-only (FB-08)
  std::optional<int> multipart_parts;      // a 2xx multipart body with a boundary parses into this many parts (FB-11)
  std::optional<bool> control_fails;       // control steps: the target refuses the action (a proxy that must not start)
  std::string message_contains;            // control steps: what the target said (case-insensitive substring)
  // coaps (RFC 9148) answers:
  std::optional<int> content_format;       // the response's Content-Format; -1 = none
  std::string max_age;                     // the Max-Age option: "present", "absent" or seconds
  std::vector<std::string> links_contain;  // discovery: link-format entries with these rt values, each with its ct
  std::optional<int> max_block_size;       // the answer came in Block2 blocks no larger than this (bytes)
  // coaps: the answer came as a separate response after an empty ACK (true) or piggybacked on the
  // ACK (false), RFC 7252 5.2.2; a server MAY do either (9148-4.7-a), so it is recorded (info).
  std::optional<bool> separate;
  // What the EST-coaps proxy forwarded for this step's request body (9148-5-*), matched by that body.
  struct Upstream {
    std::optional<int> requests;  // how many forwarded requests carried the body (0 = never forwarded)
    std::string method;
    std::string path;
    std::string content_type;     // compared as media types (parameters per RFC 9110)
    std::string client;           // the forwarded device identity's subject
    std::optional<int> status;    // the EST server's HTTP answer to it
    // The proxy's own connection to the EST server (9148-5-a/b):
    std::string scheme;           // "https": EST over TLS
    bool tls_client = false;      // true: a TLS client certificate was presented
    std::string tls_client_eku;   // an EKU that certificate is expected to carry (cmcRA, OID); recorded, not judged
  };
  std::optional<Upstream> upstream;
  std::string requirement;                 // the catalog row these checks judge; "" = the scenario's first
  std::string level;                       // "" (the row's), or "must", "should", "info" to override it
};

struct Step {
  enum class Kind { connect, send, raw, control, wait, note };
  Kind kind = Kind::send;
  int line = 0;

  // connect
  std::string as;           // identity role or captured identity; "" = no client certificate
  std::string tls = "any";  // "1.0".."1.3" or "any"
  bool plain_http = false;  // no TLS at all (RFC 7030 3.3 refusal tests)
  std::string ciphers;       // OpenSSL cipher list offered: TLS <= 1.2 ("eNULL:@SECLEVEL=0") over HTTPS, DTLS over coaps; "" = default
  std::string ciphersuites;  // TLS 1.3 suites offered ("TLS_AES_128_GCM_SHA256"); "" = default
  bool resume = false;       // offer the session of this scenario's previous connection
  std::string dtls = "any";  // coaps: "1.0", "1.2" or "any" (libcoap's default)
  std::string groups;        // coaps: the supported groups to offer ("P-256"); "" = the default
  // coaps: the previous connection is lost without close_notify (a device's reboot) and this one
  // comes from the same UDP port, to a server that still holds the old session (RFC 6347 4.2.8).
  bool rejoin = false;

  // send
  std::string operation;    // "cacerts", "simpleenroll", ...
  std::string label;        // CA label; "" = the target's default
  std::string method;       // "" = the operation's method
  std::string path;         // overrides operation/label: a raw request target
  std::optional<CsrTemplate> csr;
  bool full_cmc = false;    // wrap the CSR in a Full PKI Request
  // How the base64 body is laid out (RFC 8951 3.1): "wrap64-crlf" (default), "one-line",
  // "one-line-lf", "one-line-crlf", "wrap76-lf", "whitespace" (wrapped, with spaces and tabs), "pem".
  std::string base64_layout;
  std::optional<std::string> body;  // a raw body instead of a CSR
  std::string content_type; // "" = the operation's
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<std::pair<std::string, std::string>> basic_auth;  // user, password
  bool new_connection = false;  // reconnect (same identity and TLS version) before sending
  bool resend = false;          // send the previous send step's body again (a retry after 202)
  // coaps only:
  std::optional<int> accept;          // the Accept option
  std::optional<int> content_format;  // the request's Content-Format instead of the operation's
  std::optional<int> block_size;      // Block1/Block2 size in bytes: 16, 32, ..., 1024
  struct Block1 {
    int num = 0;
    bool more = true;
    int szx = 2;  // 0..7 (7 is reserved: a refusal test)
  };
  std::optional<Block1> block1;       // send the body as this one Block1 block (a broken transfer)
  std::optional<std::string> uri_host;  // the Uri-Host option (RFC 9148 4.4); nullopt = left out
  std::optional<int> size2;           // the Size2 option (RFC 7959 4; 0 asks for the total size)

  // raw: bytes written as they are on the current connection
  std::string raw_text;     // C-style escapes (\r \n \x01) are decoded at load time

  // control: revoke, publish-crl, approve, reject, restart
  std::string control;
  std::map<std::string, std::string> arguments;

  double wait_seconds = 0;
  std::string note;

  std::optional<Expectation> expect;
  std::map<std::string, std::string> capture;  // variable -> what: "issued.serial", "issued.identity", "header.Retry-After"...
  std::optional<double> timeout_seconds;       // per-step network deadline
};

struct Scenario {
  std::string id;
  std::string title;
  std::string description;
  std::filesystem::path file;
  int line = 1;
  std::vector<std::string> requirements;
  std::vector<std::string> field_bugs;   // FB-03 ...: the field bugs (field-bugs.md) this scenario catches
  std::map<std::string, std::string> parameters;  // for_each values of this variant ("key_type" -> "ec-p384")
  std::vector<std::string> profiles;     // rfc7030, protocol-gateway
  std::string transport = "https";
  // transports: [https, coaps]: the id the variants of each transport share ("" = one transport).
  // Their expectations are written in HTTP terms and read over coaps as RFC 9148 maps them.
  std::string transport_group;
  std::string spec;                      // JUnit suite: "RFC 7030", "protocol-gateway", ...
  std::string section;
  std::vector<std::string> needs_roles;  // identities the target must provide
  std::vector<std::string> needs_controls;  // revoke, publish-crl, approve, reject, restart
  std::vector<std::string> needs_features;  // serverkeygen, fullcmc, manual-approval, tls1.2, ...
  std::vector<std::string> needs_absent_features;  // runs only where the target lacks these (404/501 checks)
  std::vector<std::string> needs_credentials;  // preregistered, ... (target credentials)
  // est.properties values the gateway must run with (the embedded lab starts one so configured;
  // a target file's gateway cannot be reconfigured, so there the scenario skips).
  std::map<std::string, std::string> needs_config;
  // needs.network: the scenario's coaps datagrams pass the lab's impaired relay (loss, reordering,
  // an MTU clamp, split ClientHellos); network_seed_pinned when the scenario names its seed.
  std::optional<network::Impairment> needs_network;
  bool network_seed_pinned = false;
  std::vector<std::string> step_roles;     // roles connect steps use: steps as a role the target lacks are skipped
  std::vector<Step> steps;

  // Every requirement ID the scenario names: its `requirements`, then those its steps' expectations
  // name (`expect.requirement`), each once.
  std::vector<std::string> named_requirements() const;
};

// One scenario file: one scenario, or one per combination of its `for_each` parameters. Throws
// ConfigError "file:line: what" for anything wrong.
std::vector<Scenario> load_scenario_variants(const std::filesystem::path& file);
// The file's (first) scenario.
Scenario load_scenario_file(const std::filesystem::path& file);
// Every *.yaml under dir (recursively, sorted); ids must be unique across files.
std::vector<Scenario> load_scenarios(const std::filesystem::path& dir);

// "PG-ENR-3" -> ("protocol-gateway", "PG-ENR"); "7030-4.2.1-a" -> ("RFC 7030", "4.2");
// "9148-4.1-a" -> ("RFC 9148", "4.1").
std::pair<std::string, std::string> spec_and_section(const std::string& requirement);

}  // namespace estlab::conformance
