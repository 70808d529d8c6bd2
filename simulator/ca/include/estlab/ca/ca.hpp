// The simulated CA: several CAs at once (roots, issuing CAs, twins with one subject, rolled-over
// CAs), issuance under profiles, revocation, CRLs, "last issued for subject". State lives in a
// CaStore (SQLite); clock and randomness are injected so scenarios can move time and replay seeds.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "estlab/ca/profile.hpp"
#include "estlab/ca/store.hpp"
#include "estlab/core/certificate.hpp"
#include "estlab/core/clock.hpp"
#include "estlab/core/crl.hpp"
#include "estlab/core/csr.hpp"
#include "estlab/core/key.hpp"
#include "estlab/core/name.hpp"

namespace estlab::ca {

using RandomBytes = std::function<void(std::span<std::uint8_t>)>;
RandomBytes openssl_random();
RandomBytes seeded_random(std::uint64_t seed);  // reproducible, for replays; never for real keys

struct CaInfo {
  std::string label;
  Certificate certificate;
  std::string parent_label;  // empty for a root
  bool open = true;
  int generation = 0;
  std::string role;
};

// The certificates of RFC 7030 4.1.3 after a root key rollover.
struct Rollover {
  Certificate old_with_old;
  Certificate old_with_new;  // old public key, signed by the new key
  Certificate new_with_old;  // new public key, signed by the old key
  Certificate new_with_new;
};

struct IssueOverrides {
  std::optional<DistinguishedName> subject;
  std::optional<std::vector<SubjectAltName>> subject_alt_names;
  std::optional<TimePoint> not_before;
  std::optional<TimePoint> not_after;
  // "" = the CA key's own digest; a named one ("SHA1") only to make a broken CA (FB-34).
  std::string signature_digest;
};

struct IssuedInfo {
  Certificate certificate;
  std::string ca_label;
  std::string profile;
  TimePoint issued_at;
  std::optional<TimePoint> revoked_at;
  std::optional<RevocationReason> reason;
};

class SimulatedCa {
 public:
  struct Options {
    std::filesystem::path store_path;
    std::shared_ptr<Clock> clock = system_clock();
    RandomBytes random = openssl_random();
    Seconds crl_validity{7 * 24 * 3600};
    bool fsync_every_commit = false;  // the store's synchronous=FULL: survives power loss, not only crashes
  };
  static Result<std::unique_ptr<SimulatedCa>> open(Options options);

  // CA hierarchy. Labels are unique; creating an existing label is an error.
  Result<Certificate> create_root(const std::string& label, const DistinguishedName& subject, KeyType key_type,
                                  Seconds validity = Seconds(10LL * 365 * 24 * 3600));
  Result<Certificate> create_subordinate(const std::string& label, const std::string& parent_label,
                                         const DistinguishedName& subject, KeyType key_type,
                                         Seconds validity = Seconds(5LL * 365 * 24 * 3600),
                                         std::optional<int> path_length = 0);
  // Replaces a root's key: `label` then signs with the new key; the old CA stays as
  // "<label>@<generation>" (closed), and cacerts(label) carries all four certificates.
  Result<Rollover> rollover(const std::string& label, KeyType key_type, Seconds validity = Seconds(10LL * 365 * 24 * 3600));
  Result<void> set_open(const std::string& label, bool open);

  Result<CaInfo> find(const std::string& label);
  Result<std::vector<CaInfo>> list();                     // every CA the store holds
  Result<std::vector<Certificate>> open_ca_certificates();  // the CoAP proxy's truststore (PG-COAP-4)
  // /cacerts: the CA's certificate, its chain to the root, and rollover certificates if any.
  Result<std::vector<Certificate>> ca_certificates(const std::string& label);
  Result<std::vector<Certificate>> chain(const std::string& label);  // CA cert first, root last

  // Issuance. The caller decided the CSR is acceptable (policy belongs to the gateway).
  Result<Certificate> issue(const std::string& ca_label, const Csr& csr, const CertificateProfile& profile,
                            const IssueOverrides& overrides = {});
  Result<Certificate> issue_for_key(const std::string& ca_label, const DistinguishedName& subject,
                                    const PublicKey& key, const std::vector<SubjectAltName>& sans,
                                    const CertificateProfile& profile, const IssueOverrides& overrides = {},
                                    const std::vector<std::string>& requested_ekus = {});

  Result<IssuedInfo> revoke(const std::string& serial_hex, RevocationReason reason,
                            std::optional<TimePoint> when = std::nullopt);
  Result<std::optional<IssuedInfo>> find_issued(const std::string& serial_hex);
  Result<std::optional<IssuedInfo>> last_issued_for_subject(const DistinguishedName& subject,
                                                            const std::string& ca_label = "");
  Result<std::vector<IssuedInfo>> list_issued(const std::string& ca_label = "");
  Result<Crl> publish_crl(const std::string& ca_label);
  Result<std::optional<Crl>> latest_crl(const std::string& ca_label);

  Clock& clock() { return *options_.clock; }
  CaStore& store() { return *store_; }

 private:
  struct LoadedCa {
    StoredCa stored;
    Certificate certificate;
    std::optional<PrivateKey> key;  // absent for rollover-link entries
    // A signing context initialised once for `key` and its default digest; each certificate signs
    // with a copy. In OpenSSL 3 the fetch and init are most of a signature's cost (issue 12).
    std::shared_ptr<const EVP_MD_CTX> prepared;
  };
  struct Passkey {};  // lets open() use make_unique while nobody else can construct

 public:
  SimulatedCa(Passkey, Options options, std::unique_ptr<CaStore> store);

 private:
  Result<LoadedCa> load(const std::string& label);
  Result<std::string> next_serial();
  Result<Certificate> sign_certificate(const LoadedCa* issuer, const PrivateKey& signing_key,
                                       const DistinguishedName& subject, const PublicKey& key,
                                       const std::vector<SubjectAltName>& sans, const CertificateProfile& profile,
                                       TimePoint not_before, TimePoint not_after, const std::string& serial_hex,
                                       const EVP_MD* digest = nullptr);  // nullptr = the key's own
  Result<Certificate> create_ca(const std::string& label, const std::string& parent_label,
                                const DistinguishedName& subject, KeyType key_type, Seconds validity,
                                std::optional<int> path_length);
  Result<IssuedInfo> to_info(const IssuedCertificate& record);
  // Parsing a certificate costs ~0.2 ms on OpenSSL 3 (provider decoders); the gateway reads the CA
  // list and a client's issuance record on every request. Keyed by DER, so it is never stale.
  Result<Certificate> parse_cached(const Bytes& der);

  Options options_;
  std::unique_ptr<CaStore> store_;
  std::mutex mutex_;  // guards cache_, the serial block and the store's read-modify-writes; never held while signing
  std::map<std::string, LoadedCa> cache_;
  // Serial counters reserved from the store in blocks (one commit per kSerialBlock issuances, not
  // one each); a crash wastes the rest of a block, never repeats a value, across processes too.
  static constexpr std::uint64_t kSerialBlock = 64;
  std::uint64_t serial_next_ = 0;
  std::uint64_t serial_end_ = 0;  // one past the last reserved
  // The CA list as of the store's cas_version: the gateway reads it on every request (client
  // chains, RA checks), and it changes only when a CA is added, rolled over or closed.
  std::mutex list_mutex_;
  std::optional<std::uint64_t> listed_version_;
  std::vector<CaInfo> listed_;
  std::mutex parsed_mutex_;
  std::map<std::string, Certificate> parsed_;  // DER as the key (GCC 12 warns falsely on vector keys); bounded: cleared when it grows past kParsedCacheLimit
};

}  // namespace estlab::ca
