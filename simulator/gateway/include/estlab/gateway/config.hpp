// The reference gateway's configuration: est.properties in the product's key syntax (PG-CFG-1)
// plus keys prefixed "estlab." for what the product keeps elsewhere (its admin database,
// Tomcat) or what the lab adds (limits, faults). Every value has a default; a bad value stops
// startup with an error naming file, line and key.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "estlab/core/key.hpp"
#include "estlab/core/properties.hpp"
#include "estlab/core/tls.hpp"
#include "estlab/gateway/faults.hpp"

namespace estlab::gateway {

enum class Profile { rfc7030, protocol_gateway };
const char* to_string(Profile profile);
std::optional<Profile> parse_profile(std::string_view text);

// What a CSR's challengePassword means (RFC 7030 3.5 vs PG-PWD-1).
enum class ChallengePasswordPolicy { check_linking, deny };
// TLS 1.3 has no tls-unique (RFC 9266): which value a challengePassword must carry there.
enum class Tls13Linking { exporter, deny };
// PG-ENR-4's switch reads inverted in the product documents; which reading applies.
enum class RenewalRulePolarity { documented, inverted };
// PG-ENR-3: whether revocation is seen at once (the CA's database) or only once on a CRL.
enum class RevocationSource { ca_database, published_crl, none };
// RFC 8951 section 4: what /csrattrs answers when no attributes are configured.
enum class CsrAttrsWhenEmpty { no_content, not_found, empty_sequence };
enum class ApprovalMode { automatic, manual };

// A device an administrator registered in advance (PG-AUTH-2, PG-PRE-1).
struct PreregisteredDevice {
  std::string common_name;
  std::string user;      // HTTP Basic user; may be empty (RFC 7030 3.2.3)
  // HTTP Basic password; "" = no Basic credentials registered for the device
  std::string password;
  std::string factory_certificate_fingerprint;  // SHA-256, "ab:cd:..."; "" = none registered
};

// A handler.<n>.* block of est.properties (PG-IDM-2): the product's simpleenroll handler that asks
// the identity manager. The gateway reaches `request_url` over mutual TLS with the PKCS#12 `token`.
struct IdmHandler {
  int number = 0;
  std::string filter;           // handler.<n>.filter (recorded; the lab has one filter)
  std::string format;           // handler.<n>.format
  std::string token_procedure;  // handler.<n>.tokenprocedure
  std::string auth_type;        // handler.<n>.authtype
  std::string request_url;      // handler.<n>.idm.requestUrl, "https://host:port/path"
  std::filesystem::path token;  // handler.<n>.idm.tls.token
  std::string token_password;   // handler.<n>.idm.tls.password
};

struct Limits {
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = 64 * 1024;
  std::size_t max_connections = 512;
  std::size_t max_requests_per_connection = 1000;
};

struct Timeouts {
  std::chrono::milliseconds handshake{10'000};
  std::chrono::milliseconds read{30'000};   // a whole request, once its first byte is expected
  std::chrono::milliseconds write{30'000};
  std::chrono::milliseconds shutdown{2'000};
};

struct GatewayConfig {
  Profile profile = Profile::rfc7030;

  // Listening and TLS.
  std::string listen_host = "127.0.0.1";
  std::uint16_t port = 8443;  // 0 = an ephemeral port
  std::filesystem::path tls_certificate;  // chain file, leaf first
  std::filesystem::path tls_key;
  std::filesystem::path trust_anchors;  // client certificates must chain to these
  TlsVersion min_tls = TlsVersion::tls1_2;
  TlsVersion max_tls = TlsVersion::tls1_3;
  std::filesystem::path keylog_file;  // "" = SSLKEYLOGFILE if set

  // The CA behind the gateway.
  std::filesystem::path ca_store;
  std::string default_ca = "issuing";
  std::vector<std::string> ca_labels;  // served as /.well-known/est/<label>/...; empty = every open CA
  bool labels_enabled = true;  // false: only the unlabelled paths; /.well-known/est/<label>/... is 404
  bool cacerts_include_rollover = true;
  std::string certificate_profile = "device";

  // Authentication and authorization.
  std::string realm = "EST Realm";
  std::vector<PreregisteredDevice> preregistered;
  std::string officer_policy = "2.999.7030.1.1";
  RevocationSource revocation = RevocationSource::ca_database;
  ChallengePasswordPolicy challenge_password = ChallengePasswordPolicy::check_linking;
  Tls13Linking tls13_linking = Tls13Linking::exporter;
  bool linking_required = false;  // RFC 7030 3.5 MAY: refuse CSRs without linking
  // RFC 7030 3.7: a client certificate from the EST CA carrying id-kp-cmcRA is an RA, whose CSRs
  // may carry the linking value of its client's session rather than of its own.
  bool ra_relinking = true;
  // RFC 7030 6 (RECOMMENDED): an HTTP Basic password obtains one certificate, then no more.
  bool basic_single_use = false;

  // Product rules (est.properties keys).
  bool allow_renewal_with_old_certificates = false;  // the raw value of the product key
  RenewalRulePolarity renewal_rule_polarity = RenewalRulePolarity::documented;
  bool use_authentication_cert = false;  // enroll.use-authentication-cert
  bool mandatory_password = false;       // enroll.mandatorypassword
  bool check_subject_values = true;      // enroll.check-subject-values

  // Operations.
  std::string csrattrs;  // attribute spec (see core/csrattrs.hpp); "" = none configured
  // RFC 7030 4.5.2: a CA that takes only this key type (and its signature scheme); /csrattrs lists
  // them and CSRs with another key are refused. nullopt = any key.
  std::optional<KeyType> required_key_type;
  CsrAttrsWhenEmpty csrattrs_when_empty = CsrAttrsWhenEmpty::no_content;
  bool serverkeygen_enabled = false;  // RFC 7030 4.4: off unless configured
  bool fullcmc_enabled = true;        // RFC 7030 4.3 (optional for a server): 501 when off
  KeyType serverkeygen_key_type = KeyType::ec_p256;
  ApprovalMode approval = ApprovalMode::automatic;
  std::chrono::seconds retry_after{30};
  std::vector<IdmHandler> idm_handlers;  // handler.<n>.*, by number

  Limits limits;
  Timeouts timeouts;
  // estlab.answer-delay: every answer waits this long before it goes out, as from a slow gateway or
  // CA (clients' timeouts, a CoAP proxy's empty ACK and separate response); 0 = none.
  std::chrono::milliseconds answer_delay{0};
  std::set<Fault> faults;
  std::filesystem::path transcript_dir;  // "" = no transcript
  bool transcript_secrets = false;       // transcripts show Authorization values (passwords) unredacted

  // Messages about unknown keys and other doubts; startup prints them.
  std::vector<std::string> warnings;

  // PG-ENR-4 under the configured reading of allowRenewalWithOldCertificates.
  bool renewal_requires_last_issued() const;
  // The product's rules apply (profile protocol-gateway).
  bool product_rules() const { return profile == Profile::protocol_gateway; }

  // Defaults for a profile (challengePassword denied under protocol-gateway, PG-PWD-1).
  static GatewayConfig defaults(Profile profile);
  // Reads est.properties. Relative paths are taken from the file's directory, or from
  // estlab.base-dir (relative to the file) when set. The profile is
  // the file's estlab.profile unless `profile_override` is given. Throws ConfigError naming
  // file:line and key for a bad value.
  static GatewayConfig from_properties(const Properties& properties, const std::filesystem::path& base_dir,
                                       std::optional<Profile> profile_override = std::nullopt);
  static GatewayConfig load(const std::filesystem::path& est_properties,
                            std::optional<Profile> profile_override = std::nullopt);
  // The keys from_properties understands (patterns with <n>), for unknown-key warnings and docs.
  static const std::vector<std::string>& known_keys();
};

}  // namespace estlab::gateway
