#include "estlab/ca/store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <climits>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>

namespace estlab::ca {
namespace {

// The only owners of SQLite handles in estlab.
struct DbClose {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalize {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using DbPtr = std::unique_ptr<sqlite3, DbClose>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

// Statements prepared once per connection and reused (reset after each use): preparing one took
// 6% of the gateway's CPU when every request looked up a serial and recorded an issuance.
struct CachedStatement {
  StmtPtr stmt;
  bool in_use = false;  // a statement of the same SQL still alive gets a fresh one instead
};
using StatementCache = std::map<std::string, CachedStatement, std::less<>>;

// Version 1 is the first schema; a later build that changes it bumps this and migrates.
constexpr int kSchemaVersion = 1;

constexpr const char* kCreateSchema = R"sql(
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE counters (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
CREATE TABLE cas (
  id            INTEGER PRIMARY KEY,  -- first-insertion order, kept by put_ca's upsert
  label         TEXT NOT NULL UNIQUE,
  subject       TEXT NOT NULL,
  cert_der      BLOB NOT NULL,
  key_pkcs8_der BLOB NOT NULL,
  parent_label  TEXT NOT NULL,
  open          INTEGER NOT NULL,
  generation    INTEGER NOT NULL,
  role          TEXT NOT NULL,
  created_at    INTEGER NOT NULL
);
CREATE TABLE issued (
  id                INTEGER PRIMARY KEY,  -- insertion order breaks issued_at ties
  serial_hex        TEXT NOT NULL UNIQUE,
  ca_label          TEXT NOT NULL REFERENCES cas(label),
  subject           TEXT NOT NULL,
  profile           TEXT NOT NULL,
  cert_der          BLOB NOT NULL,
  not_before        INTEGER NOT NULL,
  not_after         INTEGER NOT NULL,
  issued_at         INTEGER NOT NULL,
  revoked_at        INTEGER,
  revocation_reason INTEGER
);
CREATE INDEX issued_by_subject ON issued (subject, issued_at, id);
CREATE INDEX issued_by_ca ON issued (ca_label, id);
CREATE TABLE crl_numbers (
  ca_label TEXT PRIMARY KEY REFERENCES cas(label),
  last     INTEGER NOT NULL
);
CREATE TABLE crls (
  id          INTEGER PRIMARY KEY,
  ca_label    TEXT NOT NULL REFERENCES cas(label),
  crl_number  INTEGER NOT NULL,
  der         BLOB NOT NULL,
  this_update INTEGER NOT NULL,
  next_update INTEGER NOT NULL,
  UNIQUE (ca_label, crl_number)
);
)sql";

constexpr const char* kIssuedColumns =
    "serial_hex, ca_label, subject, profile, cert_der, not_before, not_after, issued_at, "
    "revoked_at, revocation_reason";

ErrorCode code_for(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return ErrorCode::timeout;  // still locked after busy_timeout
    case SQLITE_NOTADB:
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH: return ErrorCode::invalid_input;
    case SQLITE_TOOBIG: return ErrorCode::limit_exceeded;
    case SQLITE_ERROR:
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
    case SQLITE_NOMEM:
    case SQLITE_INTERNAL: return ErrorCode::internal;
    default: return ErrorCode::io;  // IOERR, CANTOPEN, FULL, CORRUPT, READONLY, PERM...
  }
}

// Untrusted strings end up in messages; keep them short.
std::string shown(std::string_view s) {
  constexpr std::size_t kMax = 80;
  if (s.size() <= kMax) return "'" + std::string(s) + "'";
  return "'" + std::string(s.substr(0, kMax)) + "...'";
}

class Statement;

// One operation on the store: the connection plus the "CA store <path>: <operation>" prefix that
// every error message carries.
class Op {
 public:
  Op(sqlite3* db, std::string context, StatementCache* statements = nullptr)
      : db_(db), context_(std::move(context)), statements_(statements) {}

  sqlite3* db() const { return db_; }

  // The same operation about one thing, e.g. "...: put_ca: CA 'root'".
  Op about(const std::string& what) const { return Op(db_, context_ + ": " + what, statements_); }

  Error fail(ErrorCode code, const std::string& detail) const {
    return make_error(code, context_ + ": " + detail);
  }

  // sqlite3_errmsg belongs to the last call on this connection; callers hold the store mutex.
  Error sqlite_fail(int rc, std::string_view what) const {
    std::string detail(what);
    detail += ": ";
    detail += sqlite3_errmsg(db_);
    detail += " (";
    detail += sqlite3_errstr(rc);
    detail += ")";
    return fail(code_for(rc), detail);
  }

  Result<Statement> prepare(const char* sql) const;

  // Fixed SQL without values only (pragmas, schema, BEGIN/COMMIT); values are always bound.
  Result<void> exec(const char* sql) const {
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return sqlite_fail(rc, sql);
    return {};
  }

 private:
  sqlite3* db_;
  std::string context_;
  StatementCache* statements_;  // null: every statement is prepared for one use
};

class Statement {
 public:
  Statement(const Op& op, StmtPtr stmt) : op_(&op), owned_(std::move(stmt)), stmt_(owned_.get()) {}
  // A statement from the connection's cache: reset and given back when this is destroyed.
  Statement(const Op& op, CachedStatement& cached) : op_(&op), cached_(&cached), stmt_(cached.stmt.get()) { cached.in_use = true; }
  Statement(Statement&& other) noexcept
      : op_(other.op_), owned_(std::move(other.owned_)), cached_(std::exchange(other.cached_, nullptr)),
        stmt_(std::exchange(other.stmt_, nullptr)), bind_rc_(other.bind_rc_) {}
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() {
    if (cached_ == nullptr) return;
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    cached_->in_use = false;
  }

  Statement& bind(int index, std::string_view text) {
    remember(sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT,
                                 SQLITE_UTF8));
    return *this;
  }
  Statement& bind(int index, const std::string& text) { return bind(index, std::string_view(text)); }
  Statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
  Statement& bind(int index, const std::vector<std::uint8_t>& bytes) {
    // A null pointer would bind SQL NULL; an empty blob must stay an empty blob.
    static constexpr std::uint8_t kNothing = 0;
    remember(sqlite3_bind_blob64(stmt_, index, bytes.empty() ? &kNothing : bytes.data(),
                                 bytes.size(), SQLITE_TRANSIENT));
    return *this;
  }
  Statement& bind(int index, long long value) {
    remember(sqlite3_bind_int64(stmt_, index, value));
    return *this;
  }
  Statement& bind(int index, std::optional<long long> value) {
    remember(value ? sqlite3_bind_int64(stmt_, index, *value) : sqlite3_bind_null(stmt_, index));
    return *this;
  }

  // true: a row is available; false: done.
  Result<bool> step() {
    if (bind_rc_ != SQLITE_OK) return op_->sqlite_fail(bind_rc_, "binding a parameter");
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return op_->sqlite_fail(rc, sqlite3_sql(stmt_));
  }

  // For statements that return no rows.
  Result<void> run() {
    auto stepped = step();
    if (!stepped) return stepped.error();
    return {};
  }

  std::string text(int column) const {
    const auto* p = sqlite3_column_text(stmt_, column);
    const int n = sqlite3_column_bytes(stmt_, column);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string();
  }
  std::vector<std::uint8_t> blob(int column) const {
    const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, column));
    const int n = sqlite3_column_bytes(stmt_, column);
    return p ? std::vector<std::uint8_t>(p, p + n) : std::vector<std::uint8_t>();
  }
  long long integer(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::optional<long long> optional_integer(int column) const {
    if (sqlite3_column_type(stmt_, column) == SQLITE_NULL) return std::nullopt;
    return integer(column);
  }

 private:
  void remember(int rc) {
    if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }

  const Op* op_;
  StmtPtr owned_;
  CachedStatement* cached_ = nullptr;
  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;
};

Result<Statement> Op::prepare(const char* sql) const {
  if (statements_ != nullptr) {
    auto found = statements_->find(std::string_view(sql));
    if (found != statements_->end() && !found->second.in_use) return Statement(*this, found->second);
  }
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql, -1, statements_ != nullptr ? SQLITE_PREPARE_PERSISTENT : 0, &raw, nullptr);
  StmtPtr stmt(raw);  // owned from here on, even on failure
  if (rc != SQLITE_OK) return sqlite_fail(rc, std::string("preparing ") + sql);
  if (statements_ != nullptr && statements_->find(std::string_view(sql)) == statements_->end()) {
    auto& cached = (*statements_)[sql];
    cached.stmt = std::move(stmt);
    return Statement(*this, cached);
  }
  return Statement(*this, std::move(stmt));
}

// BEGIN IMMEDIATE takes the write lock up front, so the busy handler waits for another writer
// instead of failing later when a read transaction tries to become a write transaction.
class Transaction {
 public:
  explicit Transaction(const Op& op) : op_(op) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    if (active_ && sqlite3_get_autocommit(op_.db()) == 0) {
      sqlite3_exec(op_.db(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }

  Result<void> begin() {
    auto begun = op_.exec("BEGIN IMMEDIATE");
    active_ = begun.ok();
    return begun;
  }
  Result<void> commit() {
    auto committed = op_.exec("COMMIT");
    if (committed) active_ = false;
    return committed;
  }

 private:
  const Op& op_;
  bool active_ = false;
};

// Canonical form: lower-case hex of whole bytes, first byte not 00 (see IssuedCertificate).
std::optional<std::string> serial_problem(std::string_view serial) {
  if (serial.empty()) return std::string("empty serial");
  if (serial.size() > kMaxSerialHexLength) {
    return "serial " + shown(serial) + " is longer than " + std::to_string(kMaxSerialHexLength) +
           " hex digits";
  }
  const bool hex = std::all_of(serial.begin(), serial.end(),
                               [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  if (!hex) return "serial " + shown(serial) + " is not lower-case hex";
  if (serial.size() % 2 != 0) return "serial " + shown(serial) + " is not whole bytes (odd length)";
  if (serial.substr(0, 2) == "00") return "serial " + shown(serial) + " has a leading zero byte";
  return std::nullopt;
}

// RFC 5280 CRLReason: 0..10, 7 is not used.
bool is_crl_reason(int reason) { return reason >= 0 && reason <= 10 && reason != 7; }

StoredCa read_ca(const Statement& row) {
  StoredCa ca;
  ca.label = row.text(0);
  ca.subject = row.text(1);
  ca.cert_der = row.blob(2);
  ca.key_pkcs8_der = row.blob(3);
  ca.parent_label = row.text(4);
  ca.open = row.integer(5) != 0;
  ca.generation = static_cast<int>(row.integer(6));
  ca.role = row.text(7);
  ca.created_at = row.integer(8);
  return ca;
}

IssuedCertificate read_issued(const Statement& row) {
  IssuedCertificate cert;
  cert.serial_hex = row.text(0);
  cert.ca_label = row.text(1);
  cert.subject = row.text(2);
  cert.profile = row.text(3);
  cert.cert_der = row.blob(4);
  cert.not_before = row.integer(5);
  cert.not_after = row.integer(6);
  cert.issued_at = row.integer(7);
  cert.revoked_at = row.optional_integer(8);
  if (auto reason = row.optional_integer(9)) cert.revocation_reason = static_cast<int>(*reason);
  return cert;
}

StoredCrl read_crl(const Statement& row) {
  StoredCrl crl;
  crl.ca_label = row.text(0);
  crl.crl_number = row.integer(1);
  crl.der = row.blob(2);
  crl.this_update = row.integer(3);
  crl.next_update = row.integer(4);
  return crl;
}

Result<std::vector<IssuedCertificate>> collect_issued(Statement& stmt) {
  std::vector<IssuedCertificate> out;
  for (;;) {
    auto row = stmt.step();
    if (!row) return row.error();
    if (!*row) return out;
    out.push_back(read_issued(stmt));
  }
}

// Inside a transaction: does a CA with this label exist?
Result<bool> ca_exists(const Op& op, const std::string& label) {
  auto stmt = op.prepare("SELECT 1 FROM cas WHERE label = ?1");
  if (!stmt) return stmt.error();
  stmt->bind(1, label);
  return stmt->step();
}

Error no_such_ca(const Op& op, const std::string& label) {
  return op.fail(ErrorCode::not_found, "no CA labelled " + shown(label) + " in the store");
}

// A single text value from a one-row query (pragmas, meta).
Result<std::optional<std::string>> query_text(const Op& op, const char* sql, const char* param = nullptr) {
  auto stmt = op.prepare(sql);
  if (!stmt) return stmt.error();
  if (param) stmt->bind(1, param);
  auto row = stmt->step();
  if (!row) return row.error();
  if (!*row) return std::optional<std::string>();
  return std::optional<std::string>(stmt->text(0));
}

Result<void> create_or_check_schema(const Op& op) {
  Transaction tx(op);
  if (auto begun = tx.begin(); !begun) return begun.error();

  auto has_meta = query_text(op, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'meta'");
  if (!has_meta) return has_meta.error();
  if (*has_meta) {
    auto version = query_text(op, "SELECT value FROM meta WHERE key = ?1", "schema_version");
    if (!version) return version.error();
    if (!*version) return op.fail(ErrorCode::invalid_input, "not an estlab CA store (meta has no schema_version)");
    int number = 0;
    const std::string& text = **version;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (ec != std::errc() || end != text.data() + text.size()) {
      return op.fail(ErrorCode::invalid_input, "unreadable schema_version " + shown(text));
    }
    if (number != kSchemaVersion) {
      return op.fail(ErrorCode::invalid_input,
                     "schema version " + std::to_string(number) + " is not supported by this build (it knows version " +
                         std::to_string(kSchemaVersion) + (number > kSchemaVersion ? "; the file is newer)" : ")"));
    }
    return tx.commit();
  }

  // Refuse to add our tables to somebody else's database.
  auto other = query_text(op, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' LIMIT 1");
  if (!other) return other.error();
  if (*other) {
    return op.fail(ErrorCode::invalid_input,
                   "a SQLite database but not an estlab CA store (it has table " + shown(**other) + " and no meta)");
  }
  if (auto created = op.exec(kCreateSchema); !created) return created.error();
  auto meta = op.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', ?1)");
  if (!meta) return meta.error();
  if (auto r = meta->bind(1, std::to_string(kSchemaVersion)).run(); !r) return r.error();
  if (auto r = op.exec("INSERT INTO counters (name, value) VALUES ('serial', 0)"); !r) return r.error();
  return tx.commit();
}

}  // namespace

struct CaStore::Impl {
  std::filesystem::path path;
  std::string path_text;
  DbPtr db;
  StatementCache statements;  // after db: finalized before the connection closes
  std::mutex mutex;
  std::uint64_t ca_writes = 0;  // put_ca calls through this connection (cas_version)

  // record_issued's group commit: callers queue here; one leader at a time commits the queue.
  struct QueuedRecord {
    const IssuedCertificate* cert;
    std::optional<Result<void>> result;  // set by the leader, under queue_mutex
  };
  std::mutex queue_mutex;
  std::condition_variable queue_changed;
  std::vector<QueuedRecord*> queue;
  bool leader_busy = false;
  std::size_t pending = 0;  // record_issued calls not yet answered
  std::atomic<std::uint64_t> record_transactions{0}, records_committed{0};

  std::vector<Result<void>> commit_records(std::span<const IssuedCertificate* const> records);

  Op op(const char* operation) { return Op(db.get(), "CA store " + path_text + ": " + operation, &statements); }

  // One CaStore is shared by threads: every public call holds the mutex for its whole run, and
  // nothing thrown inside (bad_alloc, system_error) escapes the store.
  template <typename Body>
  auto guarded(const char* operation, Body&& body) -> decltype(body(std::declval<const Op&>())) {
    try {
      std::lock_guard lock(mutex);
      const Op current = op(operation);
      return body(current);
    } catch (const std::exception& e) {
      return make_error(ErrorCode::internal, "CA store " + path_text + ": " + operation + ": " + e.what());
    } catch (...) {
      return make_error(ErrorCode::internal, "CA store " + path_text + ": " + operation + ": unknown exception");
    }
  }
};

Result<std::unique_ptr<CaStore>> CaStore::open(const Options& options) {
  try {
    auto impl = std::make_unique<Impl>();
    impl->path = options.path;
    impl->path_text = options.path.string();
    const Op op(nullptr, "CA store " + impl->path_text + ": open");
    if (options.path.empty()) return op.fail(ErrorCode::invalid_input, "empty path");
    if (options.busy_timeout.count() < 0) return op.fail(ErrorCode::invalid_input, "negative busy_timeout");

    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(impl->path_text.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    impl->db.reset(raw);  // a failed open still allocates a handle that must be closed
    if (rc != SQLITE_OK) {
      return op.fail(ErrorCode::io, std::string("cannot open: ") + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
    }
    const Op conn(impl->db.get(), "CA store " + impl->path_text + ": open");
    sqlite3_extended_result_codes(conn.db(), 1);
    // Several processes may share the file: wait this long for another connection's lock.
    sqlite3_busy_timeout(conn.db(), static_cast<int>(std::min<long long>(options.busy_timeout.count(), INT_MAX)));

    // SQLite opens lazily: this first read of the file is where a non-database shows up.
    {
      sqlite3_stmt* raw_probe = nullptr;
      int probe_rc = sqlite3_prepare_v2(conn.db(), "SELECT count(*) FROM sqlite_master", -1, &raw_probe, nullptr);
      StmtPtr probe(raw_probe);
      if (probe_rc == SQLITE_OK) probe_rc = sqlite3_step(probe.get());
      if ((probe_rc & 0xff) == SQLITE_NOTADB) {
        return conn.fail(ErrorCode::invalid_input, "not a SQLite database (" + std::string(sqlite3_errmsg(conn.db())) + ")");
      }
      if (probe_rc != SQLITE_ROW) return conn.sqlite_fail(probe_rc, "reading the database header");
    }
    auto mode = query_text(conn, "PRAGMA journal_mode=WAL");
    if (!mode) return mode.error();
    if (!*mode || **mode != "wal") {
      return conn.fail(ErrorCode::io, "could not switch to WAL (journal_mode is " + shown(mode->value_or("")) + ")");
    }
    // In WAL mode, synchronous=NORMAL loses no committed transaction when the process crashes
    // (commits are in the WAL file before COMMIT returns); only a power loss or OS crash can drop
    // the last commits, and never corrupts the file. FULL also fsyncs the WAL on every commit.
    if (auto r = conn.exec(options.synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"); !r) {
      return r.error();
    }
    if (auto r = conn.exec("PRAGMA foreign_keys=ON"); !r) return r.error();
    if (auto r = create_or_check_schema(conn); !r) return r.error();
    return std::make_unique<CaStore>(Passkey{}, std::move(impl));
  } catch (const std::exception& e) {
    return make_error(ErrorCode::internal, "CA store " + options.path.string() + ": open: " + e.what());
  }
}

CaStore::CaStore(Passkey, std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CaStore::~CaStore() = default;

const std::filesystem::path& CaStore::path() const { return impl_->path; }

Result<void> CaStore::put_ca(const StoredCa& ca) {
  return impl_->guarded("put_ca", [&](const Op& base) -> Result<void> {
    if (ca.label.empty()) return base.fail(ErrorCode::invalid_input, "empty CA label");
    const Op op = base.about("CA " + shown(ca.label));
    auto stmt = op.prepare(
        "INSERT INTO cas (label, subject, cert_der, key_pkcs8_der, parent_label, open, generation, role, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
        "ON CONFLICT (label) DO UPDATE SET subject = excluded.subject, cert_der = excluded.cert_der, "
        "key_pkcs8_der = excluded.key_pkcs8_der, parent_label = excluded.parent_label, open = excluded.open, "
        "generation = excluded.generation, role = excluded.role, created_at = excluded.created_at");
    if (!stmt) return stmt.error();
    stmt->bind(1, ca.label)
        .bind(2, ca.subject)
        .bind(3, ca.cert_der)
        .bind(4, ca.key_pkcs8_der)
        .bind(5, ca.parent_label)
        .bind(6, static_cast<long long>(ca.open ? 1 : 0))
        .bind(7, static_cast<long long>(ca.generation))
        .bind(8, ca.role)
        .bind(9, ca.created_at);
    auto ran = stmt->run();
    ++impl_->ca_writes;
    return ran;
  });
}

Result<std::uint64_t> CaStore::cas_version() {
  return impl_->guarded("cas_version", [&](const Op& op) -> Result<std::uint64_t> {
    // data_version changes with every commit by another connection, never with this one's own:
    // those are counted in ca_writes.
    auto stmt = op.prepare("PRAGMA data_version");
    if (!stmt) return stmt.error();
    auto row = stmt->step();
    if (!row) return row.error();
    if (!*row) return op.fail(ErrorCode::internal, "PRAGMA data_version returned no row");
    return (static_cast<std::uint64_t>(stmt->integer(0)) << 32) + impl_->ca_writes;
  });
}

namespace {
constexpr const char* kSelectCa =
    "SELECT label, subject, cert_der, key_pkcs8_der, parent_label, open, generation, role, created_at FROM cas";
}

Result<std::optional<StoredCa>> CaStore::find_ca(const std::string& label) {
  return impl_->guarded("find_ca", [&](const Op& op) -> Result<std::optional<StoredCa>> {
    auto stmt = op.prepare((std::string(kSelectCa) + " WHERE label = ?1").c_str());
    if (!stmt) return stmt.error();
    stmt->bind(1, label);
    auto row = stmt->step();
    if (!row) return row.error();
    if (!*row) return std::optional<StoredCa>();
    return std::optional<StoredCa>(read_ca(*stmt));
  });
}

Result<std::vector<StoredCa>> CaStore::list_cas() {
  return impl_->guarded("list_cas", [&](const Op& op) -> Result<std::vector<StoredCa>> {
    auto stmt = op.prepare((std::string(kSelectCa) + " ORDER BY id").c_str());
    if (!stmt) return stmt.error();
    std::vector<StoredCa> out;
    for (;;) {
      auto row = stmt->step();
      if (!row) return row.error();
      if (!*row) return out;
      out.push_back(read_ca(*stmt));
    }
  });
}

Result<std::uint64_t> CaStore::reserve_serial_counters(std::uint64_t count) {
  if (count == 0 || count > (1u << 20)) return make_error(ErrorCode::invalid_input, "CA store: reserve 1 to 2^20 serial counters at a time");
  return impl_->guarded("reserve_serial_counters", [&](const Op& op) -> Result<std::uint64_t> {
    // Committed before the value is handed out, so a crash after this call can only waste a
    // value, never hand it out again.
    Transaction tx(op);
    if (auto r = tx.begin(); !r) return r.error();
    auto stmt = op.prepare("UPDATE counters SET value = value + ?1 WHERE name = 'serial' RETURNING value");
    if (!stmt) return stmt.error();
    stmt->bind(1, static_cast<long long>(count));
    auto row = stmt->step();
    if (!row) return row.error();
    if (!*row) return op.fail(ErrorCode::internal, "the serial counter row is missing");
    const long long value = stmt->integer(0);
    if (auto r = stmt->run(); !r) return r.error();  // finish the statement before COMMIT
    if (auto r = tx.commit(); !r) return r.error();
    return static_cast<std::uint64_t>(value);
  });
}

namespace {
// One record inside the caller's transaction: checks, then the INSERT.
Result<void> insert_issued(const Op& op, const IssuedCertificate& cert) {
  if (auto problem = serial_problem(cert.serial_hex)) return op.fail(ErrorCode::invalid_input, *problem);
  if (cert.revocation_reason && !is_crl_reason(*cert.revocation_reason)) {
    return op.fail(ErrorCode::invalid_input, "serial " + cert.serial_hex + ": revocation reason " +
                                                 std::to_string(*cert.revocation_reason) + " is not a CRLReason code");
  }
  if (cert.revocation_reason && !cert.revoked_at) {
    return op.fail(ErrorCode::invalid_input, "serial " + cert.serial_hex + ": revocation reason without revoked_at");
  }
  auto known_ca = ca_exists(op, cert.ca_label);
  if (!known_ca) return known_ca.error();
  if (!*known_ca) return no_such_ca(op, cert.ca_label);
  auto existing = query_text(op, "SELECT serial_hex FROM issued WHERE serial_hex = ?1", cert.serial_hex.c_str());
  if (!existing) return existing.error();
  if (*existing) return op.fail(ErrorCode::invalid_input, "serial " + cert.serial_hex + " already exists");

  auto stmt = op.prepare((std::string("INSERT INTO issued (") + kIssuedColumns +
                          ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
                             .c_str());
  if (!stmt) return stmt.error();
  std::optional<long long> reason;
  if (cert.revocation_reason) reason = *cert.revocation_reason;
  stmt->bind(1, cert.serial_hex)
      .bind(2, cert.ca_label)
      .bind(3, cert.subject)
      .bind(4, cert.profile)
      .bind(5, cert.cert_der)
      .bind(6, cert.not_before)
      .bind(7, cert.not_after)
      .bind(8, cert.issued_at)
      .bind(9, cert.revoked_at)
      .bind(10, reason);
  return stmt->run();
}
}  // namespace

std::vector<Result<void>> CaStore::Impl::commit_records(std::span<const IssuedCertificate* const> records) {
  std::vector<Result<void>> results(records.size());
  auto committed = guarded("record_issued", [&](const Op& op) -> Result<void> {
    Transaction tx(op);
    if (auto r = tx.begin(); !r) return r.error();
    // A savepoint per record, so a duplicate or malformed record fails alone and the rest still
    // commit; a record alone needs none (a failed INSERT changes nothing, the commit is empty).
    const bool savepoints = records.size() > 1;
    for (std::size_t i = 0; i < records.size(); ++i) {
      if (savepoints) {
        if (auto r = op.exec("SAVEPOINT one_record"); !r) return r.error();
      }
      results[i] = insert_issued(op, *records[i]);
      // An I/O or full-disk error can roll the whole transaction back under us: then nothing of
      // this batch is stored, and the records that looked fine must not say otherwise.
      if (sqlite3_get_autocommit(op.db()) != 0) return op.fail(ErrorCode::io, "the transaction was rolled back");
      if (!savepoints) continue;
      if (!results[i].ok()) {
        if (auto r = op.exec("ROLLBACK TO one_record"); !r) return r.error();
      }
      if (auto r = op.exec("RELEASE one_record"); !r) return r.error();
    }
    return tx.commit();
  });
  if (committed.ok()) {
    const auto stored = static_cast<std::uint64_t>(std::count_if(results.begin(), results.end(), [](const auto& r) { return r.ok(); }));
    if (stored > 0) record_transactions.fetch_add(1, std::memory_order_relaxed);
    records_committed.fetch_add(stored, std::memory_order_relaxed);
  } else {
    for (auto& result : results) {
      if (result.ok()) result = committed.error();
    }
  }
  return results;
}

std::vector<Result<void>> CaStore::record_issued_batch(std::span<const IssuedCertificate> certificates) {
  std::vector<const IssuedCertificate*> records;
  records.reserve(certificates.size());
  for (const auto& cert : certificates) records.push_back(&cert);
  return impl_->commit_records(records);
}

// Group commit: the first caller to find no commit under way becomes the leader, takes every record
// queued so far (its own among them) and commits them in one transaction, while records arriving
// meanwhile queue for the next leader. Nobody returns before its own record is committed.
Result<void> CaStore::record_issued(const IssuedCertificate& cert) {
  Impl::QueuedRecord mine{&cert, std::nullopt};
  std::unique_lock lock(impl_->queue_mutex);
  impl_->queue.push_back(&mine);
  ++impl_->pending;
  impl_->queue_changed.wait(lock, [&] { return mine.result.has_value() || !impl_->leader_busy; });
  if (mine.result) {
    --impl_->pending;
    return std::move(*mine.result);
  }

  impl_->leader_busy = true;
  std::vector<Impl::QueuedRecord*> batch;
  batch.swap(impl_->queue);
  lock.unlock();
  std::vector<const IssuedCertificate*> records;
  std::vector<Result<void>> results;
  try {
    records.reserve(batch.size());
    for (const auto* queued : batch) records.push_back(queued->cert);
    results = impl_->commit_records(records);
  } catch (const std::exception& e) {
    results.assign(batch.size(), make_error(ErrorCode::internal, "CA store " + impl_->path_text + ": record_issued: " + e.what()));
  }
  lock.lock();
  for (std::size_t i = 0; i < batch.size(); ++i) batch[i]->result.emplace(std::move(results[i]));
  impl_->leader_busy = false;
  --impl_->pending;
  lock.unlock();
  impl_->queue_changed.notify_all();
  return std::move(*mine.result);
}

CaStore::GroupCommitCounters CaStore::group_commit_counters() const {
  std::size_t pending = 0;
  {
    std::lock_guard lock(impl_->queue_mutex);
    pending = impl_->pending;
  }
  return {impl_->record_transactions.load(std::memory_order_relaxed),
          impl_->records_committed.load(std::memory_order_relaxed), pending};
}

namespace {
Result<std::optional<IssuedCertificate>> select_by_serial(const Op& op, const std::string& serial_hex) {
  auto stmt = op.prepare((std::string("SELECT ") + kIssuedColumns + " FROM issued WHERE serial_hex = ?1").c_str());
  if (!stmt) return stmt.error();
  stmt->bind(1, serial_hex);
  auto row = stmt->step();
  if (!row) return row.error();
  if (!*row) return std::optional<IssuedCertificate>();
  return std::optional<IssuedCertificate>(read_issued(*stmt));
}
}  // namespace

Result<std::optional<IssuedCertificate>> CaStore::find_by_serial(const std::string& serial_hex) {
  return impl_->guarded("find_by_serial", [&](const Op& op) -> Result<std::optional<IssuedCertificate>> {
    // A non-canonical serial ("0A1B") would silently miss; say why instead.
    if (auto problem = serial_problem(serial_hex)) return op.fail(ErrorCode::invalid_input, *problem);
    return select_by_serial(op, serial_hex);
  });
}

Result<std::optional<IssuedCertificate>> CaStore::last_issued_for_subject(const std::string& subject,
                                                                          const std::string& ca_label) {
  return impl_->guarded("last_issued_for_subject", [&](const Op& op) -> Result<std::optional<IssuedCertificate>> {
    auto stmt = op.prepare((std::string("SELECT ") + kIssuedColumns +
                            " FROM issued WHERE subject = ?1 AND (?2 = '' OR ca_label = ?2) "
                            "ORDER BY issued_at DESC, id DESC LIMIT 1")
                               .c_str());
    if (!stmt) return stmt.error();
    stmt->bind(1, subject).bind(2, ca_label);
    auto row = stmt->step();
    if (!row) return row.error();
    if (!*row) return std::optional<IssuedCertificate>();
    return std::optional<IssuedCertificate>(read_issued(*stmt));
  });
}

Result<std::vector<IssuedCertificate>> CaStore::list_issued(const std::string& ca_label) {
  return impl_->guarded("list_issued", [&](const Op& op) -> Result<std::vector<IssuedCertificate>> {
    auto stmt = op.prepare(
        (std::string("SELECT ") + kIssuedColumns + " FROM issued WHERE ?1 = '' OR ca_label = ?1 ORDER BY id").c_str());
    if (!stmt) return stmt.error();
    stmt->bind(1, ca_label);
    return collect_issued(*stmt);
  });
}

Result<IssuedCertificate> CaStore::revoke(const std::string& serial_hex, int reason, long long revoked_at) {
  return impl_->guarded("revoke", [&](const Op& op) -> Result<IssuedCertificate> {
    if (auto problem = serial_problem(serial_hex)) return op.fail(ErrorCode::invalid_input, *problem);
    if (!is_crl_reason(reason)) {
      return op.fail(ErrorCode::invalid_input,
                     "serial " + serial_hex + ": reason " + std::to_string(reason) + " is not a CRLReason code");
    }
    Transaction tx(op);
    if (auto r = tx.begin(); !r) return r.error();
    auto found = select_by_serial(op, serial_hex);
    if (!found) return found.error();
    if (!*found) return op.fail(ErrorCode::not_found, "serial " + serial_hex + " was not issued here");
    IssuedCertificate cert = std::move(**found);
    if (cert.revoked_at) {
      return op.fail(ErrorCode::policy_refused,
                     "serial " + serial_hex + " is already revoked (at " + std::to_string(*cert.revoked_at) + ")");
    }
    auto stmt = op.prepare("UPDATE issued SET revoked_at = ?2, revocation_reason = ?3 WHERE serial_hex = ?1");
    if (!stmt) return stmt.error();
    stmt->bind(1, serial_hex).bind(2, revoked_at).bind(3, static_cast<long long>(reason));
    if (auto r = stmt->run(); !r) return r.error();
    if (auto r = tx.commit(); !r) return r.error();
    cert.revoked_at = revoked_at;
    cert.revocation_reason = reason;
    return cert;
  });
}

Result<std::vector<IssuedCertificate>> CaStore::list_revoked(const std::string& ca_label) {
  return impl_->guarded("list_revoked", [&](const Op& op) -> Result<std::vector<IssuedCertificate>> {
    auto stmt = op.prepare((std::string("SELECT ") + kIssuedColumns +
                            " FROM issued WHERE revoked_at IS NOT NULL AND (?1 = '' OR ca_label = ?1) "
                            "ORDER BY revoked_at, id")
                               .c_str());
    if (!stmt) return stmt.error();
    stmt->bind(1, ca_label);
    return collect_issued(*stmt);
  });
}

Result<long long> CaStore::allocate_crl_number(const std::string& ca_label) {
  return impl_->guarded("allocate_crl_number", [&](const Op& op) -> Result<long long> {
    Transaction tx(op);
    if (auto r = tx.begin(); !r) return r.error();
    auto known_ca = ca_exists(op, ca_label);
    if (!known_ca) return known_ca.error();
    if (!*known_ca) return no_such_ca(op, ca_label);
    auto stmt = op.prepare(
        "INSERT INTO crl_numbers (ca_label, last) VALUES (?1, 1) "
        "ON CONFLICT (ca_label) DO UPDATE SET last = last + 1 RETURNING last");
    if (!stmt) return stmt.error();
    stmt->bind(1, ca_label);
    auto row = stmt->step();
    if (!row) return row.error();
    if (!*row) return op.fail(ErrorCode::internal, "CA " + shown(ca_label) + ": no CRL number returned");
    const long long number = stmt->integer(0);
    if (auto r = stmt->run(); !r) return r.error();
    if (auto r = tx.commit(); !r) return r.error();
    return number;
  });
}

Result<void> CaStore::put_crl(const StoredCrl& crl) {
  return impl_->guarded("put_crl", [&](const Op& op) -> Result<void> {
    Transaction tx(op);
    if (auto r = tx.begin(); !r) return r.error();
    auto known_ca = ca_exists(op, crl.ca_label);
    if (!known_ca) return known_ca.error();
    if (!*known_ca) return no_such_ca(op, crl.ca_label);
    auto dup = op.prepare("SELECT 1 FROM crls WHERE ca_label = ?1 AND crl_number = ?2");
    if (!dup) return dup.error();
    dup->bind(1, crl.ca_label).bind(2, crl.crl_number);
    auto exists = dup->step();
    if (!exists) return exists.error();
    if (*exists) {
      return op.fail(ErrorCode::invalid_input,
                     "CA " + shown(crl.ca_label) + ": CRL number " + std::to_string(crl.crl_number) + " already stored");
    }
    auto stmt = op.prepare(
        "INSERT INTO crls (ca_label, crl_number, der, this_update, next_update) VALUES (?1, ?2, ?3, ?4, ?5)");
    if (!stmt) return stmt.error();
    stmt->bind(1, crl.ca_label).bind(2, crl.crl_number).bind(3, crl.der).bind(4, crl.this_update).bind(5, crl.next_update);
    if (auto r = stmt->run(); !r) return r.error();
    return tx.commit();
  });
}

Result<std::optional<StoredCrl>> CaStore::latest_crl(const std::string& ca_label) {
  return impl_->guarded("latest_crl", [&](const Op& op) -> Result<std::optional<StoredCrl>> {
    auto stmt = op.prepare(
        "SELECT ca_label, crl_number, der, this_update, next_update FROM crls WHERE ca_label = ?1 "
        "ORDER BY crl_number DESC LIMIT 1");
    if (!stmt) return stmt.error();
    stmt->bind(1, ca_label);
    auto row = stmt->step();
    if (!row) return row.error();
    if (!*row) return std::optional<StoredCrl>();
    return std::optional<StoredCrl>(read_crl(*stmt));
  });
}

Result<std::string> CaStore::integrity_check() {
  return impl_->guarded("integrity_check", [&](const Op& op) -> Result<std::string> {
    auto stmt = op.prepare("PRAGMA integrity_check");
    if (!stmt) return stmt.error();
    std::string report;
    for (;;) {
      auto row = stmt->step();
      if (!row) return row.error();
      if (!*row) return report;
      if (!report.empty()) report += '\n';
      report += stmt->text(0);
    }
  });
}

Result<std::size_t> CaStore::count_issued() {
  return impl_->guarded("count_issued", [&](const Op& op) -> Result<std::size_t> {
    auto stmt = op.prepare("SELECT count(*) FROM issued");
    if (!stmt) return stmt.error();
    auto row = stmt->step();
    if (!row) return row.error();
    if (!*row) return op.fail(ErrorCode::internal, "count(*) returned no row");
    return static_cast<std::size_t>(stmt->integer(0));
  });
}

}  // namespace estlab::ca
