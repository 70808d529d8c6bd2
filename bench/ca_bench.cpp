// CA throughput against the bound that matters: how fast OpenSSL signs with the same CA key.
// Issuing = parse nothing, sign one certificate, commit one SQLite row; the ratio says what the
// CA's bookkeeping (serial allocation, X.509 building, durable commit) costs over the raw signature.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <CLI/CLI.hpp>

#include "estlab/ca/ca.hpp"
#include "estlab/core/csr.hpp"

using namespace estlab;
using BenchClock = std::chrono::steady_clock;

namespace {

// Runs `op` repeatedly for about `seconds`; returns operations per second.
double rate(double seconds, const std::function<bool()>& op) {
  auto start = BenchClock::now();
  long count = 0;
  while (std::chrono::duration<double>(BenchClock::now() - start).count() < seconds) {
    if (!op()) return -1;
    ++count;
  }
  return count / std::chrono::duration<double>(BenchClock::now() - start).count();
}

// The bound as `openssl speed` measures it: the digest and key are fetched and initialised once,
// and each signature runs on a copy of that prepared context. In OpenSSL 3 the fetch and init cost
// more than an ECDSA signature, so a bound that re-initialises per call reads several times lower.
double sign_rate_prepared(const PrivateKey& key, double seconds) {
  unsigned char tbs[600];
  for (std::size_t i = 0; i < sizeof tbs; ++i) tbs[i] = static_cast<unsigned char>(i);
  ossl::MdCtx prepared(EVP_MD_CTX_new());
  if (EVP_DigestSignInit(prepared.get(), nullptr, key.signing_digest(), nullptr, key.native()) != 1) return -1;
  return rate(seconds, [&] {
    ossl::MdCtx ctx(EVP_MD_CTX_new());  // EVP_MD_CTX_dup is OpenSSL 3.1; Debian 12 has 3.0
    unsigned char sig[1024];
    size_t len = sizeof sig;
    return EVP_MD_CTX_copy_ex(ctx.get(), prepared.get()) == 1 && EVP_DigestSign(ctx.get(), sig, &len, tbs, sizeof tbs) == 1;
  });
}

// What a signer that initialises per call reaches (the CA does this today).
double sign_rate_per_call_init(const PrivateKey& key, double seconds) {
  unsigned char tbs[600];
  for (std::size_t i = 0; i < sizeof tbs; ++i) tbs[i] = static_cast<unsigned char>(i);
  return rate(seconds, [&] {
    ossl::MdCtx ctx(EVP_MD_CTX_new());
    unsigned char sig[1024];
    size_t len = sizeof sig;
    return EVP_DigestSignInit(ctx.get(), nullptr, key.signing_digest(), nullptr, key.native()) == 1 &&
           EVP_DigestSign(ctx.get(), sig, &len, tbs, sizeof tbs) == 1;
  });
}

double verify_rate(const PrivateKey& key, double seconds) {
  unsigned char tbs[400] = {};
  unsigned char sig[1024];
  size_t len = sizeof sig;
  {
    ossl::MdCtx ctx(EVP_MD_CTX_new());
    EVP_DigestSignInit(ctx.get(), nullptr, key.signing_digest(), nullptr, key.native());
    EVP_DigestSign(ctx.get(), sig, &len, tbs, sizeof tbs);
  }
  return rate(seconds, [&] {
    ossl::MdCtx ctx(EVP_MD_CTX_new());
    return EVP_DigestVerifyInit(ctx.get(), nullptr, key.signing_digest(), nullptr, key.native()) == 1 &&
           EVP_DigestVerify(ctx.get(), sig, len, tbs, sizeof tbs) == 1;
  });
}

// A CA store with a root and an issuing CA of `type` (label "issuing"), or the reason it failed.
Result<std::unique_ptr<ca::SimulatedCa>> open_bench_ca(const std::filesystem::path& store, KeyType type, bool fsync_every_commit) {
  auto ca = ca::SimulatedCa::open({.store_path = store, .fsync_every_commit = fsync_every_commit});
  if (!ca.ok()) return ca.error();
  auto root = (*ca)->create_root("root", value_or_throw(DistinguishedName::parse("CN=bench root"), "bench"), type);
  if (!root.ok()) return root.error();
  auto issuing = (*ca)->create_subordinate("issuing", "root", value_or_throw(DistinguishedName::parse("CN=bench issuing"), "bench"), type);
  if (!issuing.ok()) return issuing.error();
  return ca;
}

// A device's P-256 key and its CSR, the request every issuance below signs.
struct BenchDevice {
  PrivateKey key = value_or_throw(PrivateKey::generate(KeyType::ec_p256), "bench");
  Csr csr = value_or_throw(CsrBuilder().subject(value_or_throw(DistinguishedName::parse("CN=device"), "bench")).sign(key), "bench");
};

// Issuances per second from `threads` threads sharing one CA, and how many records each SQLite
// commit carried (the store's group commit).
struct ConcurrentIssuance {
  double issues_per_second = -1;
  double records_per_commit = 0;
};
ConcurrentIssuance concurrent_issue_rate(ca::SimulatedCa& ca, const Csr& csr, int threads, double seconds) {
  const auto before = ca.store().group_commit_counters();
  std::atomic<long> issued{0};
  std::atomic<bool> failed{false};
  const auto start = BenchClock::now();
  const auto until = start + std::chrono::duration_cast<BenchClock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      while (BenchClock::now() < until && !failed) {
        if (ca.issue("issuing", csr, ca::CertificateProfile::device()).ok()) ++issued;
        else failed = true;
      }
    });
  }
  for (auto& worker : workers) worker.join();
  const double elapsed = std::chrono::duration<double>(BenchClock::now() - start).count();
  const auto after = ca.store().group_commit_counters();
  ConcurrentIssuance result;
  if (failed) return result;
  result.issues_per_second = static_cast<double>(issued) / elapsed;
  const auto commits = after.transactions - before.transactions;
  if (commits > 0) result.records_per_commit = static_cast<double>(after.records - before.records) / static_cast<double>(commits);
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 2.0;
  CLI::App app{"estlab CA benchmark: certificate issuance (sign + durable commit) against the signature rate of the\n"
               "same CA key, measured in the same run with a prepared context as `openssl speed` does"};
  app.add_option("--seconds", seconds, "Duration of each measurement")->capture_default_str()->check(CLI::Range(0.05, 60.0));
  app.footer("Exit codes: 0 measured, 1 the CA failed, 2 usage.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  auto dir = std::filesystem::temp_directory_path() / ("estlab-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::printf("%-10s %14s %14s %14s %8s %14s %14s %8s %14s %8s\n", "key", "sign/s", "sign-init/s", "issue/s", "ratio", "verify/s",
              "csr-parse/s", "ratio", "csr-build/s", "ratio");
  for (KeyType type : {KeyType::ec_p256, KeyType::ec_p384, KeyType::rsa2048, KeyType::ed25519}) {
    auto ca = open_bench_ca(dir / (std::string(to_string(type)) + ".db"), type, false);
    if (!ca.ok()) return std::fprintf(stderr, "CA setup failed: %s\n", ca.error().message.c_str()), 1;
    // The bound: the issuing CA's own key, as stored.
    auto stored = (*ca)->store().find_ca("issuing");
    auto ca_key = PrivateKey::from_pkcs8_der((**stored).key_pkcs8_der);
    const BenchDevice device;
    const PrivateKey& device_key = device.key;
    const Csr& csr = device.csr;

    double signs = sign_rate_prepared(*ca_key, seconds);
    double signs_init = sign_rate_per_call_init(*ca_key, seconds);
    double issues = rate(seconds, [&] { return (*ca)->issue("issuing", csr, ca::CertificateProfile::device()).ok(); });
    double verifies = verify_rate(device_key, seconds);
    double parses = rate(seconds, [&] { return Csr::from_der(csr.der()).ok(); });
    // What a device spends on its CSR, against the signature of its own (P-256) key.
    const DistinguishedName device_subject = csr.subject();
    double device_signs = sign_rate_prepared(device_key, seconds);
    double builds = rate(seconds, [&] { return CsrBuilder().subject(device_subject).sign(device_key).ok(); });
    std::printf("%-10s %14.0f %14.0f %14.0f %8.2f %14.0f %14.0f %8.2f %14.0f %8.2f\n", std::string(to_string(type)).c_str(), signs,
                signs_init, issues, issues / signs, verifies, parses, parses / verifies, builds, builds / device_signs);
  }

  std::printf("ratio = estlab rate / OpenSSL bound of the same key (1.0 = no overhead); sign/s is the bound (prepared\n"
              "context), sign-init/s what re-initialising per signature reaches; csr-parse/s against verify/s and\n"
              "csr-build/s against sign/s of the device's P-256 key (measured in each row)\n");

  // Group commit: with an fsync per commit (synchronous=FULL) the durable commit is the cost, and
  // threads issuing at once share it; with WAL's NORMAL (the lab's default) it barely shows.
  const int many = std::max(4, 4 * static_cast<int>(std::thread::hardware_concurrency()));
  std::printf("\nP-256 issuance from several threads (group commit of their records):\n");
  std::printf("%-28s %14s %14s %14s %14s %8s\n", "store", "1 thread/s", "rec/commit", std::to_string(many).append(" threads/s").c_str(),
              "rec/commit", "gain");
  for (bool fsync : {false, true}) {
    auto ca = open_bench_ca(dir / (fsync ? "group-full.db" : "group-normal.db"), KeyType::ec_p256, fsync);
    if (!ca.ok()) return std::fprintf(stderr, "CA setup failed: %s\n", ca.error().message.c_str()), 1;
    const BenchDevice device;
    const auto one = concurrent_issue_rate(**ca, device.csr, 1, seconds);
    const auto several = concurrent_issue_rate(**ca, device.csr, many, seconds);
    if (one.issues_per_second < 0 || several.issues_per_second < 0) return std::fprintf(stderr, "issuance failed\n"), 1;
    std::printf("%-28s %14.0f %14.2f %14.0f %14.2f %8.2f\n", fsync ? "fsync every commit (FULL)" : "WAL, synchronous=NORMAL",
                one.issues_per_second, one.records_per_commit, several.issues_per_second, several.records_per_commit,
                several.issues_per_second / one.issues_per_second);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
