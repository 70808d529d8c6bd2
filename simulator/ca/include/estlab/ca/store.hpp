// CaStore: the durable state of the simulated CA (CA keys and certificates, issued certificates,
// revocations, CRLs, counters) in one SQLite file in WAL mode. It stores opaque DER bytes and
// strings; the CA layer above it does all the crypto.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "estlab/core/result.hpp"

namespace estlab::ca {

// One CA key and certificate.
struct StoredCa {
  std::string label;         // unique, e.g. "root", "issuing", "twin-a", "rollover"
  std::string subject;       // canonical DN string
  std::vector<std::uint8_t> cert_der;
  std::vector<std::uint8_t> key_pkcs8_der;
  std::string parent_label;  // empty for a self-signed root
  bool open = true;          // open for enrollment (the CoAP proxy trusts every open CA)
  int generation = 0;        // rollover generation: 0 original, 1 after first rollover...
  std::string role;          // "root", "issuing", "rollover-link", free text
  long long created_at = 0;  // unix seconds

  friend bool operator==(const StoredCa&, const StoredCa&) = default;
};

struct IssuedCertificate {
  // Lower-case hex of the serial's magnitude in whole bytes ("0a1b"): even length, first byte
  // not 00. Globally unique across all CAs in the store.
  std::string serial_hex;
  std::string ca_label;      // must name a CA already in the store
  std::string subject;       // canonical DN string of the issued certificate
  std::string profile;       // certificate profile name used
  std::vector<std::uint8_t> cert_der;
  long long not_before = 0, not_after = 0, issued_at = 0;  // unix seconds
  std::optional<long long> revoked_at;
  std::optional<int> revocation_reason;  // RFC 5280 CRLReason code

  friend bool operator==(const IssuedCertificate&, const IssuedCertificate&) = default;
};

struct StoredCrl {
  std::string ca_label;
  long long crl_number = 0;
  std::vector<std::uint8_t> der;
  long long this_update = 0, next_update = 0;

  friend bool operator==(const StoredCrl&, const StoredCrl&) = default;
};

// Longest serial_hex accepted: 32 bytes, well above RFC 5280's 20 octets, so the lab can still
// store deliberately oversized serials while garbage is refused.
inline constexpr std::size_t kMaxSerialHexLength = 64;

// Every method is safe to call from several threads (one connection behind a mutex), and several
// processes may share one file (SQLite locking, waits bounded by busy_timeout). Nothing throws:
// failures come back as an Error whose message starts with "CA store <path>: <operation>: ".
class CaStore {
  struct Passkey {};  // lets open() use make_unique while nobody else can construct
  struct Impl;        // the SQLite handle lives in store.cpp only

 public:
  struct Options {
    std::filesystem::path path;
    std::chrono::milliseconds busy_timeout{5000};  // longest wait for another connection's lock
    bool synchronous_full = false;  // fsync every commit (survives power loss, not only crashes)
  };

  // Creates the file and schema if needed, switches to WAL and checks the schema version.
  // A file that is not a SQLite database, is some other SQLite database, or has a schema version
  // this build does not know gives invalid_input naming the path; an unopenable path gives io.
  static Result<std::unique_ptr<CaStore>> open(const Options& options);

  CaStore(Passkey, std::unique_ptr<Impl> impl);
  ~CaStore();
  CaStore(const CaStore&) = delete;
  CaStore& operator=(const CaStore&) = delete;

  const std::filesystem::path& path() const;

  // Inserts, or replaces every field of the CA with the same label (keeping its creation order).
  Result<void> put_ca(const StoredCa& ca);
  Result<std::optional<StoredCa>> find_ca(const std::string& label);
  Result<std::vector<StoredCa>> list_cas();  // in the order labels were first stored
  // Differs from an earlier value whenever the CAs may have changed since: a put_ca through this
  // store, or a commit by any other connection (another process). Reads no table.
  Result<std::uint64_t> cas_version();

  // Increments a persisted counter in its own committed transaction and returns the new value
  // (the first is 1). Never returns a value twice, even across crashes and processes.
  Result<std::uint64_t> allocate_serial_counter() { return reserve_serial_counters(1); }
  // The same for `count` values at once: returns the last; the caller owns last-count+1 .. last.
  Result<std::uint64_t> reserve_serial_counters(std::uint64_t count);

  // Durable when it returns. invalid_input on a duplicate or malformed serial, not_found for an
  // unknown CA. Group commit: the records of callers on several threads at once share one
  // transaction (one WAL commit, one fsync under synchronous_full), each still failing alone.
  Result<void> record_issued(const IssuedCertificate& certificate);
  // The records in one transaction, a result for each in order: a bad or duplicate record fails
  // alone (a savepoint each); a failed commit fails every record.
  std::vector<Result<void>> record_issued_batch(std::span<const IssuedCertificate> certificates);
  struct GroupCommitCounters {
    std::uint64_t transactions = 0;  // committed transactions of issued records
    std::uint64_t records = 0;       // records in them
    std::size_t pending = 0;         // record_issued calls waiting for their commit now
  };
  GroupCommitCounters group_commit_counters() const;
  Result<std::optional<IssuedCertificate>> find_by_serial(const std::string& serial_hex);
  // Newest by issued_at, ties broken by insertion order; empty ca_label means any CA.
  Result<std::optional<IssuedCertificate>> last_issued_for_subject(const std::string& subject,
                                                                   const std::string& ca_label = "");
  // In insertion order; empty ca_label means any CA.
  Result<std::vector<IssuedCertificate>> list_issued(const std::string& ca_label = "");
  // Returns the record as revoked. not_found for an unknown serial, policy_refused if already
  // revoked (the first revocation is kept), invalid_input for a reason that is not a CRLReason
  // code (0..10 except 7, which RFC 5280 leaves unused).
  Result<IssuedCertificate> revoke(const std::string& serial_hex, int reason, long long revoked_at);
  // Ordered by revocation time, then insertion order; empty ca_label means any CA.
  Result<std::vector<IssuedCertificate>> list_revoked(const std::string& ca_label);

  // Next CRL number for the CA (the first is 1); monotonic per CA, persisted, not_found for an
  // unknown CA.
  Result<long long> allocate_crl_number(const std::string& ca_label);
  // invalid_input if a CRL with this number is already stored for the CA.
  Result<void> put_crl(const StoredCrl& crl);
  Result<std::optional<StoredCrl>> latest_crl(const std::string& ca_label);  // highest crl_number

  Result<std::string> integrity_check();  // PRAGMA integrity_check text, "ok" when healthy
  Result<std::size_t> count_issued();

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace estlab::ca
