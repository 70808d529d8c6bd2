#include "estlab/ca/ca.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <random>

#include "estlab/core/oids.hpp"

namespace estlab::ca {
namespace {

constexpr const char* kRoleRoot = "root";
constexpr const char* kRoleIssuing = "issuing";
constexpr const char* kRoleRetired = "retired";
constexpr const char* kRoleRolloverLink = "rollover-link";

std::string retired_label(const std::string& label, int generation) { return label + "@" + std::to_string(generation); }
std::string link_label(const std::string& label, int generation, const char* which) {
  return label + "@" + std::to_string(generation) + "-" + which;
}

Result<void> add_extension(X509* cert, Result<ossl::X509Extension> ext) {
  if (!ext.ok()) return ext.error();
  if (X509_add_ext(cert, ext->get(), -1) != 1) return ossl::error(ErrorCode::internal, "cannot add an extension");
  return {};
}

Result<void> add_conf_extension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  ossl::X509Extension ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (!ext) return ossl::error(ErrorCode::internal, std::string("cannot build ") + OBJ_nid2sn(nid));
  if (X509_add_ext(cert, ext.get(), -1) != 1) return ossl::error(ErrorCode::internal, "cannot add an extension");
  return {};
}

ossl::Asn1Time asn1_time(TimePoint t) {
  return ossl::Asn1Time(ASN1_TIME_set(nullptr, std::chrono::system_clock::to_time_t(t)));
}

std::string store_error_context(const std::string& what) { return "simulated CA: " + what; }

// OpenSSL 3.0's X509_set_pubkey runs a provider-made key through its encoder and decoder (2.1M
// instructions, three quarters of an issuance; bench/ca_bench.cpp); a legacy copy decoded from the
// same SubjectPublicKeyInfo takes the direct path and stays the certificate's key.
Result<void> set_subject_key(X509* cert, const PublicKey& key) {
  ossl::Pkey legacy = key.legacy_copy();
  if (X509_set_pubkey(cert, legacy ? legacy.get() : key.native()) != 1) {
    return ossl::error(ErrorCode::internal, "simulated CA: setting the subject public key failed");
  }
  return {};
}

}  // namespace

RandomBytes openssl_random() {
  return [](std::span<std::uint8_t> out) {
    if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
      // RAND_bytes only fails without entropy; a zero prefix still leaves serials unique by counter.
      std::fill(out.begin(), out.end(), 0);
    }
  };
}

RandomBytes seeded_random(std::uint64_t seed) {
  auto engine = std::make_shared<std::mt19937_64>(seed);
  auto mutex = std::make_shared<std::mutex>();
  return [engine, mutex](std::span<std::uint8_t> out) {
    std::lock_guard lock(*mutex);
    for (auto& b : out) b = static_cast<std::uint8_t>((*engine)() & 0xff);
  };
}

SimulatedCa::SimulatedCa(Passkey, Options options, std::unique_ptr<CaStore> store)
    : options_(std::move(options)), store_(std::move(store)) {}

Result<std::unique_ptr<SimulatedCa>> SimulatedCa::open(Options options) {
  if (!options.clock) options.clock = system_clock();
  if (!options.random) options.random = openssl_random();
  auto store = CaStore::open(CaStore::Options{.path = options.store_path, .synchronous_full = options.fsync_every_commit});
  if (!store.ok()) return store.error();
  return std::make_unique<SimulatedCa>(Passkey{}, std::move(options), std::move(store).value());
}

Result<SimulatedCa::LoadedCa> SimulatedCa::load(const std::string& label) {
  if (auto it = cache_.find(label); it != cache_.end()) return it->second;
  auto stored = store_->find_ca(label);
  if (!stored.ok()) return stored.error();
  if (!stored->has_value()) return make_error(ErrorCode::not_found, "simulated CA: no CA labelled '" + label + "'");
  LoadedCa loaded{**stored, Certificate{}, std::nullopt, nullptr};
  auto cert = Certificate::from_der(loaded.stored.cert_der);
  if (!cert.ok()) return cert.error().within("simulated CA: CA '" + label + "' certificate in the store");
  loaded.certificate = std::move(cert).value();
  if (!loaded.stored.key_pkcs8_der.empty()) {
    auto key = PrivateKey::from_pkcs8_der(loaded.stored.key_pkcs8_der);
    if (!key.ok()) return key.error().within("simulated CA: CA '" + label + "' key in the store");
    loaded.key = std::move(key).value();
    ossl::MdCtx prepared(EVP_MD_CTX_new());
    if (prepared && EVP_DigestSignInit(prepared.get(), nullptr, loaded.key->signing_digest(), nullptr, loaded.key->native()) == 1)
      loaded.prepared = std::shared_ptr<const EVP_MD_CTX>(prepared.release(), EVP_MD_CTX_free);
    ERR_clear_error();  // without a prepared context the certificate is signed the slow way
  }
  cache_[label] = loaded;
  return loaded;
}

// 16 bytes: 8 random (top bit clear so the INTEGER is positive, next bit set so the length is
// fixed) then a persisted 64-bit counter, so serials are unpredictable yet unique by construction.
Result<std::string> SimulatedCa::next_serial() {
  if (serial_next_ == serial_end_) {
    auto last = store_->reserve_serial_counters(kSerialBlock);
    if (!last.ok()) return last.error();
    serial_next_ = *last - kSerialBlock + 1;
    serial_end_ = *last + 1;
  }
  const std::uint64_t counter = serial_next_++;
  Bytes serial(16);
  options_.random(std::span<std::uint8_t>(serial.data(), 8));
  serial[0] = static_cast<std::uint8_t>((serial[0] & 0x7f) | 0x40);
  for (int i = 0; i < 8; ++i) serial[8 + i] = static_cast<std::uint8_t>(counter >> (56 - 8 * i));
  return to_hex(serial);
}

Result<Certificate> SimulatedCa::sign_certificate(const LoadedCa* issuer, const PrivateKey& signing_key,
                                                  const DistinguishedName& subject, const PublicKey& key,
                                                  const std::vector<SubjectAltName>& sans,
                                                  const CertificateProfile& profile, TimePoint not_before,
                                                  TimePoint not_after, const std::string& serial_hex, const EVP_MD* digest) {
  ossl::ErrorQueueGuard guard;
  ossl::X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  auto serial = serial_from_hex(serial_hex);
  if (!serial.ok()) return serial.error();
  X509_set_serialNumber(cert.get(), serial->get());
  auto subject_name = subject.to_native();
  X509_set_subject_name(cert.get(), subject_name.get());
  if (issuer != nullptr) {
    X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer->certificate.native()));
  } else {
    X509_set_issuer_name(cert.get(), subject_name.get());
  }
  auto nb = asn1_time(not_before);
  auto na = asn1_time(not_after);
  X509_set1_notBefore(cert.get(), nb.get());
  X509_set1_notAfter(cert.get(), na.get());
  if (auto set = set_subject_key(cert.get(), key); !set.ok()) return set.error();

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer->certificate.native() : cert.get(), cert.get(), nullptr, nullptr, 0);

  if (auto r = add_extension(cert.get(), ext::basic_constraints(profile.ca, profile.path_length)); !r.ok()) return r.error();
  std::uint32_t ku = profile.key_usage.value_or(0);
  if (!profile.key_usage) {
    ku = key_usage::digital_signature;
    if (EVP_PKEY_is_a(key.native(), "RSA")) ku |= key_usage::key_encipherment;
  }
  if (auto r = add_extension(cert.get(), ext::key_usage(ku)); !r.ok()) return r.error();
  if (!profile.extended_key_usages.empty()) {
    if (auto r = add_extension(cert.get(), ext::extended_key_usage(profile.extended_key_usages)); !r.ok()) return r.error();
  }
  if (!sans.empty()) {
    if (auto r = add_extension(cert.get(), ext::subject_alt_name(sans)); !r.ok()) return r.error();
  }
  if (!profile.policies.empty()) {
    if (auto r = add_extension(cert.get(), ext::certificate_policies(profile.policies)); !r.ok()) return r.error();
  }
  if (auto r = add_conf_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash"); !r.ok()) return r.error();
  if (issuer != nullptr || profile.ca) {
    if (auto r = add_conf_extension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"); !r.ok()) {
      return r.error();
    }
  }

  // The issuer's prepared context when it signs with its own key and default digest (a copy: one
  // context is never used by two threads), else a context made for this one signature.
  ossl::MdCtx copy;
  if (digest == nullptr && issuer != nullptr && issuer->prepared && issuer->key && issuer->key->native() == signing_key.native()) {
    copy.reset(EVP_MD_CTX_new());
    if (copy && EVP_MD_CTX_copy_ex(copy.get(), issuer->prepared.get()) != 1) copy.reset();
  }
  const int signed_length = copy ? X509_sign_ctx(cert.get(), copy.get())
                                 : X509_sign(cert.get(), signing_key.native(), digest != nullptr ? digest : signing_key.signing_digest());
  if (signed_length <= 0) {
    return ossl::error(ErrorCode::internal, "simulated CA: signing the certificate failed");
  }
  return Certificate::borrow_shared(cert.get());
}

Result<Certificate> SimulatedCa::create_ca(const std::string& label, const std::string& parent_label,
                                           const DistinguishedName& subject, KeyType key_type, Seconds validity,
                                           std::optional<int> path_length) {
  std::lock_guard lock(mutex_);
  if (label.empty() || label.find('@') != std::string::npos || label.find('/') != std::string::npos) {
    return make_error(ErrorCode::invalid_input, "simulated CA: label '" + label + "' is empty or contains '@' or '/'");
  }
  auto existing = store_->find_ca(label);
  if (!existing.ok()) return existing.error();
  if (existing->has_value()) return make_error(ErrorCode::invalid_input, "simulated CA: a CA labelled '" + label + "' exists already");

  std::optional<LoadedCa> parent;
  if (!parent_label.empty()) {
    auto p = load(parent_label);
    if (!p.ok()) return p.error();
    if (!p->key) return make_error(ErrorCode::invalid_input, "simulated CA: '" + parent_label + "' has no key to sign with");
    parent = std::move(p).value();
  }
  auto key = PrivateKey::generate(key_type);
  if (!key.ok()) return key.error();
  auto serial = next_serial();
  if (!serial.ok()) return serial.error();

  CertificateProfile profile = CertificateProfile::sub_ca(path_length);
  profile.name = parent ? "sub-ca" : "root-ca";
  if (!parent) profile.path_length = std::nullopt;
  TimePoint now = options_.clock->now();
  // A subordinate never outlives its parent, as issue() clamps leaves.
  TimePoint not_after = now + validity;
  if (parent) not_after = std::min(not_after, parent->certificate.not_after());
  auto cert = sign_certificate(parent ? &*parent : nullptr, parent ? *parent->key : *key, subject, key->public_key(), {},
                               profile, now - profile.backdate, not_after, *serial);
  if (!cert.ok()) return cert.error();

  StoredCa stored;
  stored.label = label;
  stored.subject = subject.to_string();
  stored.cert_der = cert->der();
  stored.key_pkcs8_der = key->pkcs8_der();
  stored.parent_label = parent_label;
  stored.open = true;
  stored.role = parent ? kRoleIssuing : kRoleRoot;
  stored.created_at = to_unix(now);
  if (auto r = store_->put_ca(stored); !r.ok()) return r.error();
  if (parent) {
    IssuedCertificate record{*serial, parent_label, stored.subject, profile.name, cert->der(),
                             to_unix(cert->not_before()), to_unix(cert->not_after()), to_unix(now), std::nullopt, std::nullopt};
    if (auto r = store_->record_issued(record); !r.ok()) return r.error();
  }
  return cert;
}

Result<Certificate> SimulatedCa::create_root(const std::string& label, const DistinguishedName& subject, KeyType key_type,
                                             Seconds validity) {
  return create_ca(label, "", subject, key_type, validity, std::nullopt);
}

Result<Certificate> SimulatedCa::create_subordinate(const std::string& label, const std::string& parent_label,
                                                    const DistinguishedName& subject, KeyType key_type, Seconds validity,
                                                    std::optional<int> path_length) {
  if (parent_label.empty()) return make_error(ErrorCode::invalid_input, "simulated CA: a subordinate CA needs a parent");
  return create_ca(label, parent_label, subject, key_type, validity, path_length);
}

Result<Rollover> SimulatedCa::rollover(const std::string& label, KeyType key_type, Seconds validity) {
  std::lock_guard lock(mutex_);
  auto old = load(label);
  if (!old.ok()) return old.error();
  if (!old->stored.parent_label.empty() || !old->key) {
    return make_error(ErrorCode::invalid_input, "simulated CA: rollover is for roots; '" + label + "' is not one");
  }
  const int old_generation = old->stored.generation;
  auto new_key = PrivateKey::generate(key_type);
  if (!new_key.ok()) return new_key.error();
  TimePoint now = options_.clock->now();
  const DistinguishedName subject = old->certificate.subject();
  CertificateProfile profile = CertificateProfile::sub_ca(std::nullopt);
  profile.name = "root-ca";

  auto serial = next_serial();
  if (!serial.ok()) return serial.error();
  auto new_with_new = sign_certificate(nullptr, *new_key, subject, new_key->public_key(), {}, profile,
                                       now - profile.backdate, now + validity, *serial);
  if (!new_with_new.ok()) return new_with_new.error();
  LoadedCa new_ca{StoredCa{}, *new_with_new, *new_key, nullptr};

  // RFC 4210 4.4: OldWithNew keeps the old certificate's validity; NewWithOld runs from now to
  // the old certificate's end.
  serial = next_serial();
  if (!serial.ok()) return serial.error();
  auto old_with_new = sign_certificate(&new_ca, *new_key, subject, old->certificate.public_key(), {}, profile,
                                       old->certificate.not_before(), old->certificate.not_after(), *serial);
  if (!old_with_new.ok()) return old_with_new.error();
  serial = next_serial();
  if (!serial.ok()) return serial.error();
  auto new_with_old = sign_certificate(&*old, *old->key, subject, new_key->public_key(), {}, profile,
                                       now - profile.backdate, old->certificate.not_after(), *serial);
  if (!new_with_old.ok()) return new_with_old.error();

  // Keep the old CA under a retired label, and move its subordinates there: their certificates
  // were signed by the old key.
  StoredCa retired = old->stored;
  retired.label = retired_label(label, old_generation);
  retired.open = false;
  retired.role = kRoleRetired;
  if (auto r = store_->put_ca(retired); !r.ok()) return r.error();
  auto all = store_->list_cas();
  if (!all.ok()) return all.error();
  for (auto ca : *all) {
    if (ca.parent_label == label && ca.role != kRoleRolloverLink) {
      ca.parent_label = retired.label;
      if (auto r = store_->put_ca(ca); !r.ok()) return r.error();
    }
  }
  auto put_link = [&](const Certificate& cert, const char* which) {
    StoredCa link;
    link.label = link_label(label, old_generation, which);
    link.subject = subject.to_string();
    link.cert_der = cert.der();
    link.parent_label = label;
    link.open = false;
    link.generation = old_generation + 1;
    link.role = kRoleRolloverLink;
    link.created_at = to_unix(now);
    return store_->put_ca(link);
  };
  if (auto r = put_link(*old_with_new, "old-with-new"); !r.ok()) return r.error();
  if (auto r = put_link(*new_with_old, "new-with-old"); !r.ok()) return r.error();

  StoredCa current = old->stored;
  current.cert_der = new_with_new->der();
  current.key_pkcs8_der = new_key->pkcs8_der();
  current.generation = old_generation + 1;
  current.created_at = to_unix(now);
  if (auto r = store_->put_ca(current); !r.ok()) return r.error();
  cache_.clear();
  return Rollover{old->certificate, *old_with_new, *new_with_old, *new_with_new};
}

Result<void> SimulatedCa::set_open(const std::string& label, bool open) {
  std::lock_guard lock(mutex_);
  auto ca = load(label);
  if (!ca.ok()) return ca.error();
  StoredCa stored = ca->stored;
  stored.open = open;
  if (auto r = store_->put_ca(stored); !r.ok()) return r.error();
  cache_.erase(label);
  return {};
}

Result<CaInfo> SimulatedCa::find(const std::string& label) {
  std::lock_guard lock(mutex_);
  auto ca = load(label);
  if (!ca.ok()) return ca.error();
  return CaInfo{ca->stored.label, ca->certificate, ca->stored.parent_label, ca->stored.open, ca->stored.generation,
                ca->stored.role};
}

Result<Certificate> SimulatedCa::parse_cached(const Bytes& der) {
  constexpr std::size_t kParsedCacheLimit = 4096;
  std::lock_guard lock(parsed_mutex_);
  const std::string key(der.begin(), der.end());
  if (auto it = parsed_.find(key); it != parsed_.end()) return it->second;
  auto cert = Certificate::from_der(der);
  if (!cert.ok()) return cert;
  if (parsed_.size() >= kParsedCacheLimit) parsed_.clear();
  parsed_.emplace(key, *cert);
  return cert;
}

Result<std::vector<CaInfo>> SimulatedCa::list() {
  // Read before the list: a change in between makes the next call read the list again.
  auto version = store_->cas_version();
  if (!version.ok()) return version.error();
  {
    std::lock_guard lock(list_mutex_);
    if (listed_version_ == *version) return listed_;
  }
  auto all = store_->list_cas();
  if (!all.ok()) return all.error();
  std::vector<CaInfo> out;
  for (const auto& stored : *all) {
    auto cert = parse_cached(stored.cert_der);
    if (!cert.ok()) return cert.error().within("simulated CA: CA '" + stored.label + "'");
    out.push_back(CaInfo{stored.label, *cert, stored.parent_label, stored.open, stored.generation, stored.role});
  }
  std::lock_guard lock(list_mutex_);
  listed_version_ = *version;
  listed_ = out;
  return out;
}

Result<std::vector<Certificate>> SimulatedCa::open_ca_certificates() {
  auto all = list();
  if (!all.ok()) return all.error();
  std::vector<Certificate> out;
  for (const auto& ca : *all) {
    if (ca.open && ca.role != kRoleRolloverLink && ca.role != kRoleRetired) out.push_back(ca.certificate);
  }
  return out;
}

Result<std::vector<Certificate>> SimulatedCa::chain(const std::string& label) {
  std::lock_guard lock(mutex_);
  std::vector<Certificate> out;
  std::string current = label;
  for (int depth = 0; !current.empty(); ++depth) {
    if (depth > 16) return make_error(ErrorCode::internal, "simulated CA: chain of '" + label + "' loops or is too deep");
    auto ca = load(current);
    if (!ca.ok()) return ca.error();
    out.push_back(ca->certificate);
    current = ca->stored.parent_label;
  }
  return out;
}

Result<std::vector<Certificate>> SimulatedCa::ca_certificates(const std::string& label) {
  auto certs = chain(label);
  if (!certs.ok()) return certs.error();
  std::lock_guard lock(mutex_);
  // The root at the end of the chain may be a retired generation ("root@0") when this CA was
  // created before a rollover; the rollover set belongs to the root's lineage either way.
  std::string root_label = label;
  for (int depth = 0; depth < 16; ++depth) {
    auto ca = load(root_label);
    if (!ca.ok()) return ca.error();
    if (ca->stored.parent_label.empty()) break;
    root_label = ca->stored.parent_label;
  }
  const std::string base = root_label.substr(0, root_label.find('@'));
  auto current = load(base);
  if (!current.ok() || current->stored.generation == 0) return certs;
  const int previous = current->stored.generation - 1;
  auto add = [&](const Certificate& cert) {
    if (std::find(certs->begin(), certs->end(), cert) == certs->end()) certs->push_back(cert);
  };
  add(current->certificate);
  for (const std::string& extra : {retired_label(base, previous), link_label(base, previous, "old-with-new"),
                                   link_label(base, previous, "new-with-old")}) {
    auto link = load(extra);
    if (link.ok()) add(link->certificate);
  }
  return certs;
}

Result<Certificate> SimulatedCa::issue(const std::string& ca_label, const Csr& csr, const CertificateProfile& profile,
                                       const IssueOverrides& overrides) {
  return issue_for_key(ca_label, csr.subject(), csr.public_key(), csr.subject_alt_names(), profile, overrides,
                       csr.requested_extended_key_usages());
}

Result<Certificate> SimulatedCa::issue_for_key(const std::string& ca_label, const DistinguishedName& subject,
                                               const PublicKey& key, const std::vector<SubjectAltName>& sans,
                                               const CertificateProfile& profile, const IssueOverrides& overrides,
                                               const std::vector<std::string>& requested_ekus) {
  // The CA and a serial under the lock; the signature, the costly part, and the record outside it,
  // so issuances sign in parallel and their records share commits (the store's group commit).
  std::unique_lock lock(mutex_);
  auto ca = load(ca_label);
  if (!ca.ok()) return ca.error();
  if (!ca->key) return make_error(ErrorCode::invalid_input, "simulated CA: '" + ca_label + "' cannot issue (no key)");
  if (!ca->stored.open) return make_error(ErrorCode::policy_refused, "simulated CA: CA '" + ca_label + "' is closed");

  const DistinguishedName& final_subject = overrides.subject ? *overrides.subject : subject;
  std::vector<SubjectAltName> final_sans;
  if (overrides.subject_alt_names) final_sans = *overrides.subject_alt_names;
  else if (profile.copy_requested_san) final_sans = sans;
  if (final_subject.empty() && final_sans.empty()) {
    return make_error(ErrorCode::invalid_input, "simulated CA: refusing a certificate with an empty subject and no SAN");
  }
  CertificateProfile effective = profile;
  if (profile.copy_requested_eku && !requested_ekus.empty()) effective.extended_key_usages = requested_ekus;

  TimePoint now = options_.clock->now();
  TimePoint not_before = overrides.not_before.value_or(now - profile.backdate);
  TimePoint not_after = overrides.not_after.value_or(now + profile.validity);
  // A certificate never outlives its CA (RFC 5280 path validation would reject it later anyway).
  not_after = std::min(not_after, ca->certificate.not_after());
  if (not_after <= not_before) {
    return make_error(ErrorCode::invalid_input, "simulated CA: validity ends before it begins (" + format_time(not_before) +
                                                    " .. " + format_time(not_after) + ")");
  }
  auto serial = next_serial();
  if (!serial.ok()) return serial.error();
  const EVP_MD* digest = nullptr;
  if (!overrides.signature_digest.empty()) {
    digest = EVP_get_digestbyname(overrides.signature_digest.c_str());
    if (digest == nullptr) return make_error(ErrorCode::invalid_input, "simulated CA: unknown digest '" + overrides.signature_digest + "'");
  }
  lock.unlock();
  auto cert = sign_certificate(&*ca, *ca->key, final_subject, key, final_sans, effective, not_before, not_after, *serial, digest);
  if (!cert.ok()) return cert.error();
  IssuedCertificate record{*serial,         ca_label, final_subject.to_string(), profile.name, cert->der(),
                           to_unix(not_before), to_unix(not_after), to_unix(now), std::nullopt, std::nullopt};
  if (auto r = store_->record_issued(record); !r.ok()) return r.error();
  return cert;
}

Result<IssuedInfo> SimulatedCa::to_info(const IssuedCertificate& record) {
  auto cert = parse_cached(record.cert_der);
  if (!cert.ok()) return cert.error().within("simulated CA: issued certificate " + record.serial_hex);
  IssuedInfo info{*cert, record.ca_label, record.profile, from_unix(record.issued_at), std::nullopt, std::nullopt};
  if (record.revoked_at) info.revoked_at = from_unix(*record.revoked_at);
  if (record.revocation_reason) info.reason = static_cast<RevocationReason>(*record.revocation_reason);
  return info;
}

namespace {
// Users paste serials as openssl prints them ("0A:1B" or "0A1B"); the store keeps lower-case hex.
std::string normalise_serial(const std::string& serial_hex) {
  std::string serial = serial_hex;
  std::transform(serial.begin(), serial.end(), serial.begin(), [](unsigned char c) { return std::tolower(c); });
  serial.erase(std::remove(serial.begin(), serial.end(), ':'), serial.end());
  return serial;
}
}  // namespace

Result<IssuedInfo> SimulatedCa::revoke(const std::string& serial_hex, RevocationReason reason, std::optional<TimePoint> when) {
  const std::string serial = normalise_serial(serial_hex);
  auto record = store_->revoke(serial, static_cast<int>(reason), to_unix(when.value_or(options_.clock->now())));
  if (!record.ok()) return record.error();
  return to_info(*record);
}

Result<std::optional<IssuedInfo>> SimulatedCa::find_issued(const std::string& serial_hex) {
  auto record = store_->find_by_serial(normalise_serial(serial_hex));
  if (!record.ok()) return record.error();
  if (!record->has_value()) return std::optional<IssuedInfo>{};
  auto info = to_info(**record);
  if (!info.ok()) return info.error();
  return std::optional<IssuedInfo>(std::move(info).value());
}

Result<std::optional<IssuedInfo>> SimulatedCa::last_issued_for_subject(const DistinguishedName& subject,
                                                                       const std::string& ca_label) {
  auto record = store_->last_issued_for_subject(subject.to_string(), ca_label);
  if (!record.ok()) return record.error();
  if (!record->has_value()) return std::optional<IssuedInfo>{};
  auto info = to_info(**record);
  if (!info.ok()) return info.error();
  return std::optional<IssuedInfo>(std::move(info).value());
}

Result<std::vector<IssuedInfo>> SimulatedCa::list_issued(const std::string& ca_label) {
  auto records = store_->list_issued(ca_label);
  if (!records.ok()) return records.error();
  std::vector<IssuedInfo> out;
  for (const auto& r : *records) {
    auto info = to_info(r);
    if (!info.ok()) return info.error();
    out.push_back(std::move(info).value());
  }
  return out;
}

Result<Crl> SimulatedCa::publish_crl(const std::string& ca_label) {
  std::lock_guard lock(mutex_);
  auto ca = load(ca_label);
  if (!ca.ok()) return ca.error();
  if (!ca->key) return make_error(ErrorCode::invalid_input, "simulated CA: '" + ca_label + "' cannot sign a CRL (no key)");
  // Revoked certificates this CA key signed: after a rollover the old key's certificates stay
  // filed under the base label, and twins share a subject, so the signature decides, not the label.
  auto all_revoked = store_->list_revoked("");
  if (!all_revoked.ok()) return all_revoked.error();
  std::vector<IssuedCertificate> revoked;
  const PublicKey ca_public_key = ca->certificate.public_key();
  const DistinguishedName ca_subject = ca->certificate.subject();
  for (const auto& record : *all_revoked) {
    auto cert = Certificate::from_der(record.cert_der);
    if (cert.ok() && cert->issuer() == ca_subject && cert->signed_by(ca_public_key)) revoked.push_back(record);
  }
  auto number = store_->allocate_crl_number(ca_label);
  if (!number.ok()) return number.error();

  ossl::ErrorQueueGuard guard;
  ossl::X509Crl crl(X509_CRL_new());
  X509_CRL_set_version(crl.get(), 1);
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca->certificate.native()));
  TimePoint now = options_.clock->now();
  auto this_update = asn1_time(now);
  auto next_update = asn1_time(now + options_.crl_validity);
  X509_CRL_set1_lastUpdate(crl.get(), this_update.get());
  X509_CRL_set1_nextUpdate(crl.get(), next_update.get());
  for (const auto& record : revoked) {
    ossl::X509Revoked entry(X509_REVOKED_new());
    auto serial = serial_from_hex(record.serial_hex);
    if (!serial.ok()) return serial.error();
    X509_REVOKED_set_serialNumber(entry.get(), serial->get());
    auto when = asn1_time(from_unix(record.revoked_at.value_or(to_unix(now))));
    X509_REVOKED_set_revocationDate(entry.get(), when.get());
    if (record.revocation_reason && *record.revocation_reason != 0) {
      std::unique_ptr<ASN1_ENUMERATED, ossl::Deleter<ASN1_ENUMERATED_free>> reason(ASN1_ENUMERATED_new());
      ASN1_ENUMERATED_set(reason.get(), *record.revocation_reason);
      X509_REVOKED_add1_ext_i2d(entry.get(), NID_crl_reason, reason.get(), 0, 0);
    }
    X509_CRL_add0_revoked(crl.get(), entry.release());  // the CRL owns it now
  }
  X509_CRL_sort(crl.get());
  ossl::Asn1Integer crl_number(ASN1_INTEGER_new());
  ASN1_INTEGER_set_int64(crl_number.get(), *number);
  X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, crl_number.get(), 0, 0);
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca->certificate.native(), nullptr, nullptr, crl.get(), 0);
  ossl::X509Extension aki(X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (aki) X509_CRL_add_ext(crl.get(), aki.get(), -1);
  if (X509_CRL_sign(crl.get(), ca->key->native(), ca->key->signing_digest()) <= 0) {
    return ossl::error(ErrorCode::internal, "simulated CA: signing the CRL failed");
  }
  Crl out = Crl::borrow_shared(crl.get());
  StoredCrl stored{ca_label, *number, out.der(), to_unix(now), to_unix(now + options_.crl_validity)};
  if (auto r = store_->put_crl(stored); !r.ok()) return r.error();
  return out;
}

Result<std::optional<Crl>> SimulatedCa::latest_crl(const std::string& ca_label) {
  auto stored = store_->latest_crl(ca_label);
  if (!stored.ok()) return stored.error();
  if (!stored->has_value()) return std::optional<Crl>{};
  auto crl = Crl::from_der((*stored)->der);
  if (!crl.ok()) return crl.error().within(store_error_context("stored CRL of '" + ca_label + "'"));
  return std::optional<Crl>(std::move(crl).value());
}

}  // namespace estlab::ca
