#include "estlab/ca/store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace estlab::ca {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class CaStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device random;
    dir_ = fs::temp_directory_path() /
           ("estlab-store-test-" + std::to_string(::getpid()) + "-" + std::to_string(random()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  fs::path db_path() const { return dir_ / "lab.db"; }

  std::unique_ptr<CaStore> open_store() {
    auto store = CaStore::open({.path = db_path()});
    EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
    return store.ok() ? std::move(store).value() : nullptr;
  }

  fs::path dir_;
};

StoredCa make_ca(const std::string& label, long long created_at = 1'700'000'000) {
  StoredCa ca;
  ca.label = label;
  ca.subject = "CN=" + label + ",O=estlab";
  ca.cert_der = {0x30, 0x82, 0x01, 0x00, 0x00, 0xff, static_cast<std::uint8_t>(label.size())};
  ca.key_pkcs8_der = {0x30, 0x81, 0x87, 0x02, 0x01, 0x00};
  ca.parent_label = label == "root" ? "" : "root";
  ca.open = label != "closed";
  ca.generation = 2;
  ca.role = label == "root" ? "root" : "issuing";
  ca.created_at = created_at;
  return ca;
}

IssuedCertificate make_cert(const std::string& serial, const std::string& ca_label, const std::string& subject,
                            long long issued_at) {
  IssuedCertificate cert;
  cert.serial_hex = serial;
  cert.ca_label = ca_label;
  cert.subject = subject;
  cert.profile = "device";
  cert.cert_der = {0x30, 0x82, 0x02, 0x10, 0x00, 0x01, 0x02, 0xfe};
  cert.not_before = issued_at - 60;
  cert.not_after = issued_at + 86400;
  cert.issued_at = issued_at;
  return cert;
}

TEST_F(CaStoreTest, OpenCreatesWalDatabaseWithSchema) {
  auto store = open_store();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->path(), db_path());
  ASSERT_TRUE(store->integrity_check().ok());
  EXPECT_EQ(*store->integrity_check(), "ok");
  auto count = store->count_issued();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 0u);

  // WAL is a property of the file, visible to any other connection.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db_path().c_str(), &raw, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close_v2)> db(raw, &sqlite3_close_v2);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db.get(), "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> guard(stmt, &sqlite3_finalize);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
}

TEST_F(CaStoreTest, CaRoundTripAndReplaceKeepsCreationOrder) {
  auto store = open_store();
  ASSERT_TRUE(store);
  const StoredCa root = make_ca("root", 1'700'000'300);  // created_at is data, not the order
  const StoredCa issuing = make_ca("issuing", 1'700'000'100);
  StoredCa closed = make_ca("closed", 1'700'000'200);
  closed.cert_der.clear();  // an empty blob stays an empty blob, not NULL
  ASSERT_TRUE(store->put_ca(root).ok());
  ASSERT_TRUE(store->put_ca(issuing).ok());
  ASSERT_TRUE(store->put_ca(closed).ok());

  auto found = store->find_ca("closed");
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ(**found, closed);
  EXPECT_FALSE((*found)->open);
  EXPECT_TRUE((*store->find_ca("root"))->parent_label.empty());

  auto missing = store->find_ca("twin-a");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  // Replace by label: every field changes, position in the list does not.
  StoredCa rolled = make_ca("root", 1'800'000'000);
  rolled.generation = 3;
  rolled.open = false;
  rolled.subject = "CN=root G3";
  rolled.cert_der = {0x01, 0x02};
  ASSERT_TRUE(store->put_ca(rolled).ok());
  auto all = store->list_cas();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0], rolled);
  EXPECT_EQ((*all)[1].label, "issuing");
  EXPECT_EQ((*all)[2].label, "closed");

  auto empty_label = store->put_ca(make_ca(""));
  ASSERT_FALSE(empty_label.ok());
  EXPECT_EQ(empty_label.error().code, ErrorCode::invalid_input);
}

TEST_F(CaStoreTest, IssuedRoundTrip) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put_ca(make_ca("root")).ok());
  ASSERT_TRUE(store->put_ca(make_ca("issuing")).ok());
  const IssuedCertificate plain = make_cert("0a1b", "issuing", "CN=device-1", 1000);
  IssuedCertificate revoked = make_cert("7fee01", "root", "CN=device-2", 2000);
  revoked.revoked_at = 2500;
  revoked.revocation_reason = 1;  // keyCompromise
  ASSERT_TRUE(store->record_issued(plain).ok());
  auto recorded = store->record_issued(revoked);
  ASSERT_TRUE(recorded.ok()) << recorded.error().message;

  auto found = store->find_by_serial("0a1b");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ(**found, plain);
  EXPECT_FALSE((*found)->revoked_at.has_value());
  EXPECT_FALSE((*found)->revocation_reason.has_value());
  EXPECT_EQ(**store->find_by_serial("7fee01"), revoked);

  auto missing = store->find_by_serial("0a1c");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  auto by_issuing = store->list_issued("issuing");
  ASSERT_TRUE(by_issuing.ok());
  ASSERT_EQ(by_issuing->size(), 1u);
  EXPECT_EQ((*by_issuing)[0], plain);
  auto everything = store->list_issued();
  ASSERT_TRUE(everything.ok());
  ASSERT_EQ(everything->size(), 2u);
  EXPECT_EQ((*everything)[0], plain);  // insertion order
  EXPECT_EQ((*everything)[1], revoked);
  EXPECT_EQ(*store->count_issued(), 2u);
}

TEST_F(CaStoreTest, MalformedSerialsAreRefusedEverywhere) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put_ca(make_ca("root")).ok());
  for (const std::string& bad : std::vector<std::string>{"", "0A1B", "a1b", "000a1b", "00", "xyz1", std::string(66, 'a')}) {
    auto recorded = store->record_issued(make_cert(bad, "root", "CN=x", 1));
    ASSERT_FALSE(recorded.ok()) << "accepted serial '" << bad << "'";
    EXPECT_EQ(recorded.error().code, ErrorCode::invalid_input);
    auto found = store->find_by_serial(bad);
    ASSERT_FALSE(found.ok());
    EXPECT_EQ(found.error().code, ErrorCode::invalid_input);
  }
  EXPECT_EQ(*store->count_issued(), 0u);
  EXPECT_TRUE(store->record_issued(make_cert("80", "root", "CN=x", 1)).ok());
}

TEST_F(CaStoreTest, ReopenFindsEverything) {
  IssuedCertificate revoked = make_cert("0102", "issuing", "CN=device-2", 2000);
  {
    auto store = open_store();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->put_ca(make_ca("root")).ok());
    ASSERT_TRUE(store->put_ca(make_ca("issuing")).ok());
    ASSERT_TRUE(store->record_issued(make_cert("0101", "issuing", "CN=device-1", 1000)).ok());
    ASSERT_TRUE(store->record_issued(revoked).ok());
    ASSERT_TRUE(store->revoke("0102", 4, 3000).ok());
    ASSERT_EQ(*store->allocate_crl_number("issuing"), 1);
    ASSERT_TRUE(store->put_crl({"issuing", 1, {0x30, 0x03, 0x01}, 3000, 3600}).ok());
  }
  auto store = open_store();
  ASSERT_TRUE(store);
  auto cas = store->list_cas();
  ASSERT_TRUE(cas.ok());
  ASSERT_EQ(cas->size(), 2u);
  EXPECT_EQ((*cas)[0], make_ca("root"));
  EXPECT_EQ((*cas)[1], make_ca("issuing"));
  EXPECT_EQ(**store->find_by_serial("0101"), make_cert("0101", "issuing", "CN=device-1", 1000));
  revoked.revoked_at = 3000;
  revoked.revocation_reason = 4;
  EXPECT_EQ(**store->find_by_serial("0102"), revoked);
  auto crl = store->latest_crl("issuing");
  ASSERT_TRUE(crl.ok());
  ASSERT_TRUE(crl->has_value());
  EXPECT_EQ(**crl, (StoredCrl{"issuing", 1, {0x30, 0x03, 0x01}, 3000, 3600}));
  EXPECT_EQ(*store->integrity_check(), "ok");
}

TEST_F(CaStoreTest, DuplicateSerialRejectedAndOriginalKept) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put_ca(make_ca("root")).ok());
  ASSERT_TRUE(store->put_ca(make_ca("twin-a")).ok());
  const IssuedCertificate first = make_cert("0a1b", "root", "CN=first", 100);
  ASSERT_TRUE(store->record_issued(first).ok());
  // Serials are unique across the whole store, not per CA.
  auto duplicate = store->record_issued(make_cert("0a1b", "twin-a", "CN=second", 200));
  ASSERT_FALSE(duplicate.ok());
  EXPECT_EQ(duplicate.error().code, ErrorCode::invalid_input);
  EXPECT_NE(duplicate.error().message.find("CA store " + db_path().string()), std::string::npos)
      << duplicate.error().message;
  EXPECT_NE(duplicate.error().message.find("record_issued"), std::string::npos);
  EXPECT_NE(duplicate.error().message.find("0a1b already exists"), std::string::npos);
  EXPECT_EQ(**store->find_by_serial("0a1b"), first);
  EXPECT_EQ(*store->count_issued(), 1u);
}

TEST_F(CaStoreTest, UnknownCaIsNotFound) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto recorded = store->record_issued(make_cert("01", "ghost", "CN=x", 1));
  ASSERT_FALSE(recorded.ok());
  EXPECT_EQ(recorded.error().code, ErrorCode::not_found);
  EXPECT_NE(recorded.error().message.find("ghost"), std::string::npos);
  auto number = store->allocate_crl_number("ghost");
  ASSERT_FALSE(number.ok());
  EXPECT_EQ(number.error().code, ErrorCode::not_found);
  auto crl = store->put_crl({"ghost", 1, {0x30}, 0, 1});
  ASSERT_FALSE(crl.ok());
  EXPECT_EQ(crl.error().code, ErrorCode::not_found);
  EXPECT_EQ(*store->count_issued(), 0u);
}

TEST_F(CaStoreTest, RevokeUnknownTwiceAndBadReason) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put_ca(make_ca("root")).ok());
  ASSERT_TRUE(store->put_ca(make_ca("issuing")).ok());
  ASSERT_TRUE(store->record_issued(make_cert("01", "issuing", "CN=a", 10)).ok());
  ASSERT_TRUE(store->record_issued(make_cert("02", "issuing", "CN=b", 11)).ok());
  ASSERT_TRUE(store->record_issued(make_cert("03", "root", "CN=c", 12)).ok());

  auto unknown = store->revoke("ff", 0, 100);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::not_found);
  EXPECT_NE(unknown.error().message.find("ff"), std::string::npos);

  auto bad_reason = store->revoke("01", 7, 100);
  ASSERT_FALSE(bad_reason.ok());
  EXPECT_EQ(bad_reason.error().code, ErrorCode::invalid_input);
  EXPECT_FALSE((*store->find_by_serial("01"))->revoked_at.has_value());

  auto revoked = store->revoke("02", 1, 200);
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;
  EXPECT_EQ(revoked->serial_hex, "02");
  EXPECT_EQ(revoked->revoked_at, 200);
  EXPECT_EQ(revoked->revocation_reason, 1);
  ASSERT_TRUE(store->revoke("01", 5, 150).ok());
  ASSERT_TRUE(store->revoke("03", 0, 50).ok());

  auto again = store->revoke("02", 4, 300);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::policy_refused);
  const auto kept = **store->find_by_serial("02");
  EXPECT_EQ(kept.revoked_at, 200);  // the first revocation stands
  EXPECT_EQ(kept.revocation_reason, 1);

  auto revoked_by_issuing = store->list_revoked("issuing");
  ASSERT_TRUE(revoked_by_issuing.ok());
  ASSERT_EQ(revoked_by_issuing->size(), 2u);
  EXPECT_EQ((*revoked_by_issuing)[0].serial_hex, "01");  // by revocation time
  EXPECT_EQ((*revoked_by_issuing)[1].serial_hex, "02");
  EXPECT_EQ(store->list_revoked("root")->size(), 1u);
  EXPECT_EQ(store->list_revoked("")->size(), 3u);
}

TEST_F(CaStoreTest, LastIssuedForSubjectPicksNewest) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put_ca(make_ca("root")).ok());
  ASSERT_TRUE(store->put_ca(make_ca("issuing")).ok());
  // Inserted newest first: insertion order alone would pick the wrong one.
  ASSERT_TRUE(store->record_issued(make_cert("10", "issuing", "CN=dev", 5000)).ok());
  ASSERT_TRUE(store->record_issued(make_cert("11", "issuing", "CN=dev", 4000)).ok());
  ASSERT_TRUE(store->record_issued(make_cert("12", "issuing", "CN=other", 9000)).ok());
  auto newest = store->last_issued_for_subject("CN=dev");
  ASSERT_TRUE(newest.ok());
  ASSERT_TRUE(newest->has_value());
  EXPECT_EQ((*newest)->serial_hex, "10");

  // Two in the same second: the later insertion wins.
  ASSERT_TRUE(store->record_issued(make_cert("13", "issuing", "CN=dev", 6000)).ok());
  ASSERT_TRUE(store->record_issued(make_cert("14", "issuing", "CN=dev", 6000)).ok());
  EXPECT_EQ((*store->last_issued_for_subject("CN=dev"))->serial_hex, "14");

  // Filter by CA.
  ASSERT_TRUE(store->record_issued(make_cert("15", "root", "CN=dev", 7000)).ok());
  EXPECT_EQ((*store->last_issued_for_subject("CN=dev"))->serial_hex, "15");
  EXPECT_EQ((*store->last_issued_for_subject("CN=dev", "issuing"))->serial_hex, "14");
  EXPECT_EQ((*store->last_issued_for_subject("CN=dev", "root"))->serial_hex, "15");

  auto nobody = store->last_issued_for_subject("CN=nobody");
  ASSERT_TRUE(nobody.ok());
  EXPECT_FALSE(nobody->has_value());
  EXPECT_FALSE(store->last_issued_for_subject("CN=other", "root")->has_value());
}

TEST_F(CaStoreTest, CrlNumbersMonotonicPerCaAndPersistent) {
  {
    auto store = open_store();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->put_ca(make_ca("root")).ok());
    ASSERT_TRUE(store->put_ca(make_ca("issuing")).ok());
    EXPECT_EQ(*store->allocate_crl_number("root"), 1);
    EXPECT_EQ(*store->allocate_crl_number("root"), 2);
    EXPECT_EQ(*store->allocate_crl_number("issuing"), 1);  // independent of root's
    EXPECT_EQ(*store->allocate_crl_number("root"), 3);
    EXPECT_FALSE(store->latest_crl("root")->has_value());
    ASSERT_TRUE(store->put_crl({"root", 2, {0x02}, 20, 30}).ok());
    ASSERT_TRUE(store->put_crl({"root", 3, {0x03}, 30, 40}).ok());
    ASSERT_TRUE(store->put_crl({"root", 1, {0x01}, 10, 20}).ok());  // stored late, still not latest
    ASSERT_TRUE(store->put_crl({"issuing", 1, {0x11}, 10, 20}).ok());
    auto duplicate = store->put_crl({"root", 3, {0x33}, 30, 40});
    ASSERT_FALSE(duplicate.ok());
    EXPECT_EQ(duplicate.error().code, ErrorCode::invalid_input);
  }
  auto store = open_store();
  ASSERT_TRUE(store);
  EXPECT_EQ(*store->allocate_crl_number("root"), 4);
  EXPECT_EQ(*store->allocate_crl_number("issuing"), 2);
  EXPECT_EQ(**store->latest_crl("root"), (StoredCrl{"root", 3, {0x03}, 30, 40}));
  EXPECT_EQ(**store->latest_crl("issuing"), (StoredCrl{"issuing", 1, {0x11}, 10, 20}));
}

TEST_F(CaStoreTest, SerialCounterNeverRepeatsAcrossReopen) {
  std::set<std::uint64_t> seen;
  std::uint64_t last = 0;
  for (int round = 0; round < 3; ++round) {
    auto store = open_store();
    ASSERT_TRUE(store);
    for (int i = 0; i < 5; ++i) {
      auto counter = store->allocate_serial_counter();
      ASSERT_TRUE(counter.ok()) << counter.error().message;
      EXPECT_GT(*counter, last);
      EXPECT_TRUE(seen.insert(*counter).second) << "counter " << *counter << " handed out twice";
      last = *counter;
    }
  }
  EXPECT_EQ(last, 15u);
}

TEST_F(CaStoreTest, NotADatabaseFileGivesClearError) {
  const std::string garbage = "this is a PEM file, not SQLite\n-----BEGIN CERTIFICATE-----\nMIIB\n";
  {
    std::ofstream out(db_path(), std::ios::binary);
    for (int i = 0; i < 50; ++i) out << garbage;  // longer than a SQLite header
  }
  const auto size_before = fs::file_size(db_path());
  auto store = CaStore::open({.path = db_path()});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, ErrorCode::invalid_input);
  EXPECT_NE(store.error().message.find(db_path().string()), std::string::npos) << store.error().message;
  EXPECT_NE(store.error().message.find("not a SQLite database"), std::string::npos) << store.error().message;
  EXPECT_EQ(fs::file_size(db_path()), size_before);  // left untouched
}

TEST_F(CaStoreTest, ForeignSqliteDatabaseIsRefused) {
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(db_path().c_str(), &raw), SQLITE_OK);
    std::unique_ptr<sqlite3, decltype(&sqlite3_close_v2)> db(raw, &sqlite3_close_v2);
    ASSERT_EQ(sqlite3_exec(db.get(), "CREATE TABLE users (name TEXT)", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  auto store = CaStore::open({.path = db_path()});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, ErrorCode::invalid_input);
  EXPECT_NE(store.error().message.find(db_path().string()), std::string::npos);
  EXPECT_NE(store.error().message.find("not an estlab CA store"), std::string::npos) << store.error().message;
}

TEST_F(CaStoreTest, NewerSchemaVersionIsRefused) {
  { ASSERT_TRUE(open_store()); }
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(db_path().c_str(), &raw), SQLITE_OK);
    std::unique_ptr<sqlite3, decltype(&sqlite3_close_v2)> db(raw, &sqlite3_close_v2);
    ASSERT_EQ(sqlite3_exec(db.get(), "UPDATE meta SET value = '99' WHERE key = 'schema_version'", nullptr, nullptr,
                           nullptr),
              SQLITE_OK);
  }
  auto store = CaStore::open({.path = db_path()});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, ErrorCode::invalid_input);
  EXPECT_NE(store.error().message.find(db_path().string()), std::string::npos);
  EXPECT_NE(store.error().message.find("schema version 99"), std::string::npos) << store.error().message;
}

TEST_F(CaStoreTest, UnopenablePathIsIoError) {
  auto store = CaStore::open({.path = dir_ / "no-such-dir" / "lab.db"});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, ErrorCode::io);
  EXPECT_NE(store.error().message.find("no-such-dir"), std::string::npos) << store.error().message;
}

TEST_F(CaStoreTest, TwoConnectionsSeeEachOthersCommits) {
  auto first = open_store();
  auto second = open_store();
  ASSERT_TRUE(first && second);
  ASSERT_TRUE(first->put_ca(make_ca("root")).ok());
  ASSERT_TRUE(second->find_ca("root")->has_value());
  ASSERT_TRUE(second->record_issued(make_cert("0abc", "root", "CN=x", 1)).ok());
  EXPECT_EQ(**first->find_by_serial("0abc"), make_cert("0abc", "root", "CN=x", 1));
  // The counter is shared through the file, not cached per connection.
  EXPECT_EQ(*first->allocate_serial_counter(), 1u);
  EXPECT_EQ(*second->allocate_serial_counter(), 2u);
  EXPECT_EQ(*first->allocate_serial_counter(), 3u);
  ASSERT_TRUE(first->revoke("0abc", 3, 9).ok());
  auto again = second->revoke("0abc", 3, 10);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::policy_refused);
}

TEST_F(CaStoreTest, ConcurrentWritersAllocateDistinctCounters) {
  // Four threads on two connections: contention both inside one CaStore (its mutex) and between
  // connections (SQLite locks and busy_timeout).
  auto a = open_store();
  auto b = open_store();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->put_ca(make_ca("root")).ok());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 150;
  std::vector<std::vector<std::uint64_t>> got(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      CaStore& store = t % 2 == 0 ? *a : *b;
      for (int i = 0; i < kPerThread; ++i) {
        auto counter = store.allocate_serial_counter();
        if (!counter) {
          ++failures;
          continue;
        }
        got[t].push_back(*counter);
        char serial[32];
        std::snprintf(serial, sizeof serial, "7e%016llx", static_cast<unsigned long long>(*counter));
        if (!store.record_issued(make_cert(serial, "root", "CN=t" + std::to_string(t), 1))) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  std::set<std::uint64_t> all;
  for (const auto& values : got) {
    EXPECT_TRUE(std::is_sorted(values.begin(), values.end()));  // each thread sees them increase
    all.insert(values.begin(), values.end());
  }
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(*all.rbegin(), static_cast<std::uint64_t>(kThreads * kPerThread));  // no gaps, no repeats
  EXPECT_EQ(*a->count_issued(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(*b->integrity_check(), "ok");
}

TEST_F(CaStoreTest, ABatchIsOneTransactionWhereABadRecordFailsAlone) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put_ca(make_ca("root")).ok());
  ASSERT_TRUE(store->record_issued(make_cert("0a", "root", "CN=earlier", 1)).ok());
  const auto before = store->group_commit_counters();
  IssuedCertificate bad_reason = make_cert("05", "root", "CN=e", 5);
  bad_reason.revoked_at = 6;
  bad_reason.revocation_reason = 7;  // unused in RFC 5280
  const std::vector<IssuedCertificate> batch = {
      make_cert("01", "root", "CN=a", 2),  make_cert("0a", "root", "CN=dup", 3), make_cert("02", "ghost", "CN=b", 4),
      make_cert("03", "root", "CN=c", 5),  make_cert("0x", "root", "CN=d", 6),   bad_reason,
      make_cert("03", "root", "CN=c2", 7),  // a duplicate within the batch itself
      make_cert("04", "root", "CN=f", 8)};
  const auto results = store->record_issued_batch(batch);
  ASSERT_EQ(results.size(), batch.size());
  EXPECT_TRUE(results[0].ok());
  ASSERT_FALSE(results[1].ok());
  EXPECT_NE(results[1].error().message.find("0a already exists"), std::string::npos) << results[1].error().message;
  ASSERT_FALSE(results[2].ok());
  EXPECT_EQ(results[2].error().code, ErrorCode::not_found);
  EXPECT_TRUE(results[3].ok());
  ASSERT_FALSE(results[4].ok());
  EXPECT_EQ(results[4].error().code, ErrorCode::invalid_input);
  ASSERT_FALSE(results[5].ok());
  EXPECT_NE(results[5].error().message.find("CRLReason"), std::string::npos) << results[5].error().message;
  ASSERT_FALSE(results[6].ok());
  EXPECT_NE(results[6].error().message.find("03 already exists"), std::string::npos) << results[6].error().message;
  EXPECT_TRUE(results[7].ok());

  // Exactly the good records are stored, the earlier one untouched, all in one more transaction.
  auto issued = store->list_issued();
  ASSERT_TRUE(issued.ok()) << issued.error().message;
  std::vector<std::string> serials;
  for (const auto& record : *issued) serials.push_back(record.serial_hex);
  EXPECT_EQ(serials, (std::vector<std::string>{"0a", "01", "03", "04"}));
  EXPECT_EQ((*store->find_by_serial("0a"))->subject, "CN=earlier");
  EXPECT_EQ((*store->find_by_serial("03"))->subject, "CN=c");
  const auto after = store->group_commit_counters();
  EXPECT_EQ(after.transactions - before.transactions, 1u);
  EXPECT_EQ(after.records - before.records, 3u);
  EXPECT_EQ(after.pending, 0u);
  EXPECT_EQ(*store->integrity_check(), "ok");

  // A batch with nothing good in it commits nothing.
  const auto none = store->record_issued_batch(std::vector<IssuedCertificate>{make_cert("01", "root", "CN=again", 9)});
  ASSERT_EQ(none.size(), 1u);
  EXPECT_FALSE(none[0].ok());
  EXPECT_EQ(store->group_commit_counters().transactions, after.transactions);
}

// Group commit, made deterministic: another connection holds the write lock, so the first caller's
// commit waits in BEGIN IMMEDIATE while every other caller queues behind it. When the lock goes,
// all records land in at most two transactions, and each caller gets its own answer.
TEST_F(CaStoreTest, ConcurrentRecordsShareTransactionsAndEachGetsItsOwnAnswer) {
  auto opened = CaStore::open({.path = db_path(), .busy_timeout = std::chrono::milliseconds(60'000)});
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto store = std::move(opened).value();
  ASSERT_TRUE(store->put_ca(make_ca("root")).ok());
  ASSERT_TRUE(store->record_issued(make_cert("0f", "root", "CN=taken", 1)).ok());
  const auto before = store->group_commit_counters();

  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db_path().c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close_v2)> blocker(raw, &sqlite3_close_v2);
  ASSERT_EQ(sqlite3_exec(blocker.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);

  constexpr int kCallers = 8;  // caller 5 records a serial that is already taken
  std::vector<std::optional<Result<void>>> answers(kCallers);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] {
      const std::string serial = i == 5 ? "0f" : "1" + std::to_string(i);
      answers[i].emplace(store->record_issued(make_cert(serial, "root", "CN=caller" + std::to_string(i), 10 + i)));
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (store->group_commit_counters().pending < kCallers && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(store->group_commit_counters().pending, static_cast<std::size_t>(kCallers));
  EXPECT_EQ(store->group_commit_counters().transactions, before.transactions);  // nothing committed yet
  ASSERT_EQ(sqlite3_exec(blocker.get(), "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  for (auto& caller : callers) caller.join();

  for (int i = 0; i < kCallers; ++i) {
    ASSERT_TRUE(answers[i].has_value());
    if (i == 5) {
      ASSERT_FALSE(answers[i]->ok());
      EXPECT_NE(answers[i]->error().message.find("0f already exists"), std::string::npos) << answers[i]->error().message;
    } else {
      EXPECT_TRUE(answers[i]->ok()) << "caller " << i << ": " << answers[i]->error().message;
      auto stored = store->find_by_serial("1" + std::to_string(i));
      ASSERT_TRUE(stored.ok() && stored->has_value()) << "caller " << i;
      EXPECT_EQ((*stored)->subject, "CN=caller" + std::to_string(i));
    }
  }
  const auto after = store->group_commit_counters();
  EXPECT_EQ(after.records - before.records, static_cast<std::uint64_t>(kCallers - 1));
  EXPECT_GE(after.transactions - before.transactions, 1u);
  EXPECT_LE(after.transactions - before.transactions, 2u);  // the first caller's, then everyone else's
  EXPECT_EQ(after.pending, 0u);
  EXPECT_EQ(*store->count_issued(), static_cast<std::size_t>(kCallers));
  EXPECT_EQ((*store->find_by_serial("0f"))->subject, "CN=taken");
}

}  // namespace
}  // namespace estlab::ca
