#include "estlab/idm/store.hpp"

#include <sqlite3.h>

#include <mutex>

namespace estlab::idm {
namespace {

struct DbClose {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalize {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using DbPtr = std::unique_ptr<sqlite3, DbClose>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS requests (
  id             TEXT PRIMARY KEY,
  operation      TEXT NOT NULL,
  csr_sha256     TEXT NOT NULL,
  client         TEXT NOT NULL,
  client_subject TEXT NOT NULL,
  subject        TEXT NOT NULL,
  csr_der        BLOB NOT NULL,
  first_seen     INTEGER NOT NULL,
  last_seen      INTEGER NOT NULL,
  polls          INTEGER NOT NULL,
  state          TEXT NOT NULL,
  reason         TEXT NOT NULL,
  decided_by     TEXT NOT NULL,
  decided_at     INTEGER,
  issued_der     BLOB
);
CREATE TABLE IF NOT EXISTS history (
  seq        INTEGER PRIMARY KEY,
  request_id TEXT NOT NULL,
  action     TEXT NOT NULL,
  by         TEXT NOT NULL,
  reason     TEXT NOT NULL,
  at         INTEGER NOT NULL
);
)sql";

constexpr const char* kColumns =
    "id, operation, csr_sha256, client, client_subject, subject, csr_der, first_seen, last_seen, polls, state, reason, decided_by, "
    "decided_at, issued_der";

}  // namespace

struct IdmStore::Impl {
  std::filesystem::path path;
  std::shared_ptr<Clock> clock;
  DbPtr db;
  std::mutex mutex;

  Error fail(const std::string& what) const {
    return make_error(ErrorCode::io, "IDM store " + path.string() + ": " + what + ": " + sqlite3_errmsg(db.get()));
  }

  Result<void> exec(const char* sql) {
    if (sqlite3_exec(db.get(), sql, nullptr, nullptr, nullptr) != SQLITE_OK) return fail(sql);
    return {};
  }

  // A prepared statement with its values bound in order (text, blobs, integers, NULL).
  struct Stmt {
    Impl& impl;
    StmtPtr stmt;
    int next = 1;
    int bind_rc = SQLITE_OK;
    void keep(int rc) {
      if (bind_rc == SQLITE_OK) bind_rc = rc;
    }
    Stmt& text(const std::string& value) {
      keep(sqlite3_bind_text64(stmt.get(), next++, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
      return *this;
    }
    Stmt& blob(const Bytes& value) {
      static constexpr std::uint8_t kNothing = 0;  // a null pointer would bind NULL
      keep(sqlite3_bind_blob64(stmt.get(), next++, value.empty() ? &kNothing : value.data(), value.size(), SQLITE_TRANSIENT));
      return *this;
    }
    Stmt& integer(long long value) {
      keep(sqlite3_bind_int64(stmt.get(), next++, value));
      return *this;
    }
    Stmt& null() {
      keep(sqlite3_bind_null(stmt.get(), next++));
      return *this;
    }
    Result<bool> step() {
      if (bind_rc != SQLITE_OK) return impl.fail("binding a value");
      const int rc = sqlite3_step(stmt.get());
      if (rc == SQLITE_ROW) return true;
      if (rc == SQLITE_DONE) return false;
      return impl.fail(sqlite3_sql(stmt.get()));
    }
    std::string column_text(int i) const {
      auto p = sqlite3_column_text(stmt.get(), i);
      return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(stmt.get(), i))) : "";
    }
    Bytes column_blob(int i) const {
      auto p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt.get(), i));
      return p ? Bytes(p, p + sqlite3_column_bytes(stmt.get(), i)) : Bytes{};
    }
    bool column_null(int i) const { return sqlite3_column_type(stmt.get(), i) == SQLITE_NULL; }
    long long column_int(int i) const { return sqlite3_column_int64(stmt.get(), i); }
  };

  Result<Stmt> prepare(const std::string& sql) {
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v2(db.get(), sql.c_str(), -1, &raw, nullptr);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK) return fail("preparing " + sql);
    return Stmt{*this, std::move(stmt)};
  }

  // One transaction; rolled back unless body succeeds.
  template <typename T, typename F>
  Result<T> transaction(F body) {
    std::lock_guard lock(mutex);
    if (auto begun = exec("BEGIN IMMEDIATE"); !begun.ok()) return begun.error();
    Result<T> result = body();
    // A failed ROLLBACK is not reported: the body's or the commit's error is the one to report, and
    // SQLite rolls back an open transaction when the connection closes anyway.
    if (!result.ok()) {
      (void)exec("ROLLBACK");
      return result;
    }
    if (auto committed = exec("COMMIT"); !committed.ok()) {
      (void)exec("ROLLBACK");
      return committed.error();
    }
    return result;
  }

  Result<StoredRequest> read_row(const Stmt& s) {
    StoredRequest r;
    r.request.id = s.column_text(0);
    r.request.operation = s.column_text(1);
    r.request.csr_sha256 = s.column_text(2);
    r.request.client = s.column_text(3);
    r.request.client_subject = s.column_text(4);
    r.request.subject = s.column_text(5);
    r.request.csr_der = s.column_blob(6);
    r.request.first_seen = from_unix(s.column_int(7));
    r.last_seen = from_unix(s.column_int(8));
    r.polls = static_cast<int>(s.column_int(9));
    auto state = gateway::parse_approval_state(s.column_text(10));
    if (!state) return make_error(ErrorCode::invalid_input, "IDM store: request " + r.request.id + " has state '" + s.column_text(10) + "'");
    r.status.state = *state;
    r.status.reason = s.column_text(11);
    r.status.decided_by = s.column_text(12);
    if (!s.column_null(13)) r.decided_at = from_unix(s.column_int(13));
    if (!s.column_null(14)) {
      auto cert = Certificate::from_der(s.column_blob(14));
      if (!cert.ok()) return cert.error().within("IDM store: request " + r.request.id + " issued certificate");
      r.status.issued = std::move(cert).value();
    }
    return r;
  }

  Result<std::optional<StoredRequest>> find_locked(const std::string& id) {
    auto s = prepare(std::string("SELECT ") + kColumns + " FROM requests WHERE id = ?");
    if (!s.ok()) return s.error();
    s->text(id);
    auto row = s->step();
    if (!row.ok()) return row.error();
    if (!*row) return std::optional<StoredRequest>();
    auto r = read_row(*s);
    if (!r.ok()) return r.error();
    return std::optional<StoredRequest>(std::move(r).value());
  }

  Result<void> add_history(const std::string& id, const std::string& action, const std::string& by, const std::string& reason) {
    auto s = prepare("INSERT INTO history (request_id, action, by, reason, at) VALUES (?, ?, ?, ?, ?)");
    if (!s.ok()) return s.error();
    s->text(id).text(action).text(by).text(reason).integer(to_unix(clock->now()));
    auto done = s->step();
    if (!done.ok()) return done.error();
    return {};
  }

  Result<void> set_decision(const std::string& id, gateway::ApprovalState state, const std::string& by, const std::string& reason) {
    auto s = prepare("UPDATE requests SET state = ?, decided_by = ?, reason = ?, decided_at = ? WHERE id = ?");
    if (!s.ok()) return s.error();
    s->text(gateway::to_string(state)).text(by).text(reason).integer(to_unix(clock->now())).text(id);
    if (auto done = s->step(); !done.ok()) return done.error();
    return add_history(id, gateway::to_string(state), by, reason);
  }
};

IdmStore::IdmStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
IdmStore::~IdmStore() = default;

Result<std::unique_ptr<IdmStore>> IdmStore::open(const std::filesystem::path& path, std::shared_ptr<Clock> clock) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->clock = clock ? std::move(clock) : system_clock();
  if (path.empty()) return make_error(ErrorCode::invalid_input, "IDM store: empty path");
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.string().c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  impl->db.reset(raw);  // a failed open still allocates a handle
  if (rc != SQLITE_OK)
    return make_error(ErrorCode::io, "IDM store " + path.string() + ": cannot open: " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  sqlite3_busy_timeout(impl->db.get(), 5000);  // the CLI may read while the service writes
  // WAL: a commit is in the log before COMMIT returns, so a killed process loses nothing committed.
  if (auto r = impl->exec("PRAGMA journal_mode=WAL"); !r.ok()) return r.error();
  if (auto r = impl->exec("PRAGMA synchronous=NORMAL"); !r.ok()) return r.error();
  if (auto r = impl->exec(kSchema); !r.ok()) return r.error();
  return std::unique_ptr<IdmStore>(new IdmStore(std::move(impl)));
}

Result<gateway::ApprovalStatus> IdmStore::check(const gateway::ApprovalRequest& request, const gateway::OperatorPolicy& policy) {
  if (request.id.empty()) return make_error(ErrorCode::invalid_input, "IDM store: a request needs an id");
  Impl& d = *impl_;
  return d.transaction<gateway::ApprovalStatus>([&]() -> Result<gateway::ApprovalStatus> {
    const long long now = to_unix(d.clock->now());
    auto existing = d.find_locked(request.id);
    if (!existing.ok()) return existing.error();
    if (!*existing) {
      auto s = d.prepare(std::string("INSERT INTO requests (") + kColumns +
                         ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 'pending', '', '', NULL, NULL)");
      if (!s.ok()) return s.error();
      s->text(request.id).text(request.operation).text(request.csr_sha256).text(request.client).text(request.client_subject);
      s->text(request.subject).blob(request.csr_der).integer(now).integer(now);
      if (auto done = s->step(); !done.ok()) return done.error();
    } else {
      auto s = d.prepare("UPDATE requests SET polls = polls + 1, last_seen = ? WHERE id = ?");
      if (!s.ok()) return s.error();
      s->integer(now).text(request.id);
      if (auto done = s->step(); !done.ok()) return done.error();
    }
    auto row = d.find_locked(request.id);
    if (!row.ok()) return row.error();
    StoredRequest r = std::move(**row);
    if (r.status.state == gateway::ApprovalState::pending) {
      using Kind = gateway::OperatorPolicy::Kind;
      if (policy.kind == Kind::approve_after_polls && r.polls > policy.polls) {
        const std::string by = "policy approve-after=" + std::to_string(policy.polls);
        if (auto done = d.set_decision(r.request.id, gateway::ApprovalState::approved, by, ""); !done.ok()) return done.error();
        r.status.state = gateway::ApprovalState::approved;
        r.status.decided_by = by;
      } else if (policy.kind == Kind::reject_all) {
        if (auto done = d.set_decision(r.request.id, gateway::ApprovalState::rejected, "policy reject", policy.reason); !done.ok())
          return done.error();
        r.status.state = gateway::ApprovalState::rejected;
        r.status.reason = policy.reason;
        r.status.decided_by = "policy reject";
      }
    }
    return r.status;
  });
}

Result<void> IdmStore::record_issued(const std::string& id, const Certificate& certificate) {
  Impl& d = *impl_;
  return d.transaction<void>([&]() -> Result<void> {
    auto s = d.prepare("UPDATE requests SET issued_der = ? WHERE id = ? AND state = 'approved' AND issued_der IS NULL");
    if (!s.ok()) return s.error();
    s->blob(certificate.der()).text(id);
    if (auto done = s->step(); !done.ok()) return done.error();
    if (sqlite3_changes(d.db.get()) != 1)
      return make_error(ErrorCode::policy_refused, "IDM store: request " + id + " is not an approved request without a certificate");
    return d.add_history(id, "issued", "gateway", "serial " + certificate.serial_hex());
  });
}

Result<std::optional<Certificate>> IdmStore::issued_for(const std::string& id) {
  auto found = find(id);
  if (!found.ok()) return found.error();
  if (!*found) return std::optional<Certificate>();
  return (*found)->status.issued;
}

Result<std::optional<StoredRequest>> IdmStore::find(const std::string& id) {
  std::lock_guard lock(impl_->mutex);
  return impl_->find_locked(id);
}

Result<std::vector<StoredRequest>> IdmStore::list(std::optional<gateway::ApprovalState> state) {
  std::lock_guard lock(impl_->mutex);
  auto s = impl_->prepare(std::string("SELECT ") + kColumns + " FROM requests" + (state ? " WHERE state = ?" : "") +
                          " ORDER BY last_seen DESC, id");
  if (!s.ok()) return s.error();
  if (state) s->text(gateway::to_string(*state));
  std::vector<StoredRequest> out;
  for (;;) {
    auto row = s->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    auto r = impl_->read_row(*s);
    if (!r.ok()) return r.error();
    out.push_back(std::move(r).value());
  }
  return out;
}

Result<StoredRequest> IdmStore::decide(const std::string& id, gateway::ApprovalState decision, const std::string& by,
                                       const std::string& reason) {
  if (decision == gateway::ApprovalState::pending)
    return make_error(ErrorCode::invalid_input, "a decision is approved or rejected, not pending");
  if (decision == gateway::ApprovalState::rejected && reason.empty())
    return make_error(ErrorCode::invalid_input, "a rejection needs a reason (the device is told it)");
  Impl& d = *impl_;
  return d.transaction<StoredRequest>([&]() -> Result<StoredRequest> {
    auto found = d.find_locked(id);
    if (!found.ok()) return found.error();
    if (!*found) return make_error(ErrorCode::not_found, "no request with id '" + id + "'");
    if ((*found)->status.state != gateway::ApprovalState::pending)
      return make_error(ErrorCode::policy_refused, "request " + id + " was " + gateway::to_string((*found)->status.state) +
                                                       " already by " + (*found)->status.decided_by + "; a decision is final");
    if (auto done = d.set_decision(id, decision, by, reason); !done.ok()) return done.error();
    auto after = d.find_locked(id);
    if (!after.ok()) return after.error();
    return std::move(**after);
  });
}

Result<std::vector<HistoryEntry>> IdmStore::history(std::size_t limit) {
  std::lock_guard lock(impl_->mutex);
  auto s = impl_->prepare(
      "SELECT h.request_id, COALESCE(r.subject, ''), h.action, h.by, h.reason, h.at FROM history h LEFT JOIN requests r ON "
      "r.id = h.request_id ORDER BY h.seq DESC LIMIT ?");
  if (!s.ok()) return s.error();
  s->integer(static_cast<long long>(limit));
  std::vector<HistoryEntry> out;
  for (;;) {
    auto row = s->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    out.push_back({s->column_text(0), s->column_text(1), s->column_text(2), s->column_text(3), s->column_text(4), from_unix(s->column_int(5))});
  }
  return out;
}

Result<gateway::ApprovalStatus> StoreApprovalGate::check(const gateway::ApprovalRequest& request) {
  gateway::OperatorPolicy policy;
  {
    std::lock_guard lock(mutex_);
    policy = policy_;
  }
  return store_->check(request, policy);
}

Result<void> StoreApprovalGate::record_issued(const std::string& id, const Certificate& certificate) {
  return store_->record_issued(id, certificate);
}

Result<std::optional<Certificate>> StoreApprovalGate::issued_for(const std::string& id) { return store_->issued_for(id); }

void StoreApprovalGate::set_policy(gateway::OperatorPolicy policy) {
  std::lock_guard lock(mutex_);
  policy_ = std::move(policy);
}

}  // namespace estlab::idm
