#include "estlab/conformance/vocabulary.hpp"

#include <algorithm>

namespace estlab::conformance {

const std::vector<VocabularyEntry>& known_roles() {
  static const std::vector<VocabularyEntry> roles = {
      {"device-factory", "a valid device (factory, IDevID-like) certificate with clientAuth, accepted for enrollment"},
      {"device-expired", "a device certificate that has expired"},
      {"device-revoked", "a device certificate revoked at the CA (and on its CRL)"},
      {"device-no-clientauth", "a device certificate whose EKU lacks clientAuth (serverAuth only)"},
      {"device-no-eku", "a device certificate without any extended key usage"},
      {"device-unknown-ca", "a device certificate from a CA the gateway does not trust"},
      {"device-superseded", "an older, still valid certificate of a subject that has a newer one"},
      {"device-current", "the last certificate issued for device-superseded's subject"},
      {"device-twin-a", "a device certificate from the first of two CAs that share one subject"},
      {"device-twin-b", "a device certificate from the second of two CAs that share one subject"},
      {"device-rollover", "a device certificate issued by a CA after its root key rollover"},
      {"ra-officer", "an RA/officer certificate allowed to enroll other subjects (PG-AUTH-3; any authorized RA under rfc7030)"},
      {"ra-cmc-only", "an RA certificate with only id-kp-cmcRA and no officer role (PG-RA-1)"},
      {"gateway-tls", "the gateway's own TLS server identity (lab only)"},
      {"dtls-server", "the CoAP proxy's DTLS server identity (lab only)"},
      {"dtls-server-no-serverauth", "a DTLS server identity without serverAuth (lab only)"},
  };
  return roles;
}

const std::vector<VocabularyEntry>& known_features() {
  static const std::vector<VocabularyEntry> features = {
      {"serverkeygen", "/serverkeygen is offered"},
      {"fullcmc", "/fullcmc is offered"},
      {"csrattrs", "/csrattrs is offered"},
      {"basic-auth", "HTTP Basic authentication is on (give credentials.preregistered)"},
      {"labels", "CA labels are served (give ca_labels.other)"},
      {"rollover", "a CA in root key rollover is served under a label (give ca_labels.rollover)"},
      {"tls1.2", "TLS 1.2 is offered"},
      {"tls1.3", "TLS 1.3 is offered"},
      {"manual-approval", "enrollments wait for an operator (202 + Retry-After; give approve/reject controls)"},
      {"coaps", "EST-coaps (RFC 9148) is served on coaps_port"},
  };
  return features;
}

const std::vector<VocabularyEntry>& known_controls() {
  static const std::vector<VocabularyEntry> controls = {
      {"revoke", "revoke a certificate at the CA: {serial} (lower-case hex) {reason}"},
      {"publish-crl", "publish a fresh CRL: {ca}"},
      {"approve", "approve a pending enrollment: {request} (SHA-256 hex of the CSR DER)"},
      {"reject", "reject a pending enrollment: {request}"},
      {"restart", "restart the gateway; the suite then waits until it answers /cacerts"},
  };
  return controls;
}

const std::vector<VocabularyEntry>& known_credentials() {
  static const std::vector<VocabularyEntry> credentials = {
      {"preregistered", "HTTP Basic user and password of a device preregistered by an administrator, and the subject it must request"},
  };
  return credentials;
}

const std::vector<VocabularyEntry>& known_ca_labels() {
  static const std::vector<VocabularyEntry> labels = {
      {"other", "the label of a CA other than the default one"},
      {"rollover", "the label of a CA whose root key is in rollover (4 certificates in /cacerts)"},
  };
  return labels;
}

bool is_known(const std::vector<VocabularyEntry>& vocabulary, std::string_view name) {
  return std::any_of(vocabulary.begin(), vocabulary.end(), [&](const VocabularyEntry& e) { return e.name == name; });
}

namespace {
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}
}  // namespace

std::string closest_name(const std::string& wrong, const std::vector<VocabularyEntry>& vocabulary) {
  std::string best;
  std::size_t best_distance = std::max<std::size_t>(3, wrong.size() / 3) + 1;
  for (const auto& entry : vocabulary) {
    const auto d = edit_distance(wrong, entry.name);
    if (d < best_distance) {
      best_distance = d;
      best = std::string(entry.name);
    }
  }
  return best;
}

std::string unknown_name_message(const std::string& kind, const std::string& wrong, const std::vector<VocabularyEntry>& vocabulary) {
  const auto close = closest_name(wrong, vocabulary);
  if (!close.empty()) return "unknown " + kind + " '" + wrong + "' (did you mean '" + close + "'?)";
  std::string list;
  for (const auto& e : vocabulary) list += (list.empty() ? "" : ", ") + std::string(e.name);
  return "unknown " + kind + " '" + wrong + "' (known: " + list + ")";
}

}  // namespace estlab::conformance
