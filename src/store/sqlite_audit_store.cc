#include <sqlite3.h>

#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "store/audit_store.h"

namespace toani::store {
namespace {

// Same audit_log table as sqlite_store.cc; audit_tiles holds full tlog tiles.
constexpr const char* kSchema = R"sql(
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE IF NOT EXISTS audit_log (
  idx INTEGER PRIMARY KEY, entry TEXT NOT NULL, leaf_hash BLOB NOT NULL);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TABLE IF NOT EXISTS audit_tiles (
  level INTEGER NOT NULL, n INTEGER NOT NULL, hashes BLOB NOT NULL, PRIMARY KEY (level, n));
CREATE TRIGGER IF NOT EXISTS audit_tiles_no_update BEFORE UPDATE ON audit_tiles
  BEGIN SELECT RAISE(ABORT, 'audit_tiles is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_tiles_no_delete BEFORE DELETE ON audit_tiles
  BEGIN SELECT RAISE(ABORT, 'audit_tiles is append-only'); END;
)sql";

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK) s_ = nullptr;
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Status Ready() const {
    return s_ ? Status::Ok() : Status::Unavailable(std::string("sqlite: ") + sqlite3_errmsg(db_));
  }
  sqlite3_stmt* get() { return s_; }
  std::string Error() const { return sqlite3_errmsg(db_); }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

class SqliteAuditStore final : public AuditStore {
 public:
  ~SqliteAuditStore() override {
    for (auto& [sql, s] : prepared_) sqlite3_finalize(s);
    if (db_ != nullptr) sqlite3_close_v2(db_);
  }

  Status Open(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
      return Status::Unavailable("sqlite: cannot open " + path);
    }
    sqlite3_busy_timeout(db_, 10000);
    return Exec(kSchema);
  }

  Status AppendBatch(const std::vector<AuditRow>& rows,
                     const std::vector<AuditTileRow>& tiles) override {
    std::lock_guard<std::mutex> l(mu_);
    TOANI_RETURN_IF_ERROR(Run("BEGIN IMMEDIATE"));
    Status st = AppendLocked(rows, tiles);
    if (!st.ok()) {
      (void)Run("ROLLBACK");
      return st;
    }
    // synchronous=FULL in WAL mode: the WAL is fsync'd at COMMIT, before this returns.
    st = Run("COMMIT");
    if (!st.ok()) (void)Run("ROLLBACK");
    return st;
  }

  StatusOr<std::vector<AuditRow>> ReadEntries(uint64_t from, uint64_t to) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(db_,
           "SELECT idx, entry, leaf_hash FROM audit_log WHERE idx >= ? AND idx < ? ORDER BY idx");
    TOANI_RETURN_IF_ERROR(s.Ready());
    sqlite3_bind_int64(s.get(), 1, static_cast<int64_t>(from));
    sqlite3_bind_int64(s.get(), 2, static_cast<int64_t>(to));
    std::vector<AuditRow> out;
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      AuditRow r;
      r.index = static_cast<uint64_t>(sqlite3_column_int64(s.get(), 0));
      const unsigned char* t = sqlite3_column_text(s.get(), 1);
      r.entry.assign(reinterpret_cast<const char*>(t),
                     static_cast<size_t>(sqlite3_column_bytes(s.get(), 1)));
      // A wrong-size hash is kept as all-zero so the reader reports the mismatch.
      if (sqlite3_column_bytes(s.get(), 2) == 32)
        std::memcpy(r.leaf_hash.data(), sqlite3_column_blob(s.get(), 2), 32);
      out.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE) return Status::Unavailable("sqlite: " + s.Error());
    return out;
  }

  StatusOr<uint64_t> Size() override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(db_, "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_log");
    TOANI_RETURN_IF_ERROR(s.Ready());
    if (sqlite3_step(s.get()) != SQLITE_ROW) return Status::Unavailable("sqlite: " + s.Error());
    return static_cast<uint64_t>(sqlite3_column_int64(s.get(), 0));
  }

  StatusOr<std::vector<AuditTileRow>> ReadTiles() override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(db_, "SELECT level, n, hashes FROM audit_tiles ORDER BY level, n");
    TOANI_RETURN_IF_ERROR(s.Ready());
    std::vector<AuditTileRow> out;
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      AuditTileRow t;
      t.level = sqlite3_column_int(s.get(), 0);
      t.n = static_cast<uint64_t>(sqlite3_column_int64(s.get(), 1));
      const void* p = sqlite3_column_blob(s.get(), 2);
      t.hashes.assign(static_cast<const char*>(p),
                      static_cast<size_t>(sqlite3_column_bytes(s.get(), 2)));
      out.push_back(std::move(t));
    }
    if (rc != SQLITE_DONE) return Status::Unavailable("sqlite: " + s.Error());
    return out;
  }

 private:
  // The statements of the append path, prepared once (every group commit runs them;
  // preparing each time was a visible share of the writer's CPU). Under mu_; the
  // statement comes back reset, its bindings cleared.
  StatusOr<sqlite3_stmt*> Prepared(const char* sql) {
    auto it = prepared_.find(std::string_view(sql));
    if (it != prepared_.end()) {
      sqlite3_reset(it->second);
      sqlite3_clear_bindings(it->second);
      return it->second;
    }
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
      return Status::Unavailable(std::string("sqlite: ") + sqlite3_errmsg(db_));
    }
    prepared_.emplace(sql, s);
    return s;
  }

  // Runs a statement without results (BEGIN, COMMIT, ROLLBACK).
  Status Run(const char* sql) {
    TOANI_ASSIGN_OR_RETURN(sqlite3_stmt * s, Prepared(sql));
    const int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
      return Status::Unavailable(std::string("sqlite: ") + sqlite3_errmsg(db_));
    return Status::Ok();
  }

  Status Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      return Status::Unavailable("sqlite: " + m);
    }
    return Status::Ok();
  }

  Status AppendLocked(const std::vector<AuditRow>& rows, const std::vector<AuditTileRow>& tiles) {
    TOANI_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                           Prepared("INSERT INTO audit_log(idx, entry, leaf_hash) VALUES(?,?,?)"));
    for (const auto& r : rows) {
      sqlite3_reset(s);
      sqlite3_bind_int64(s, 1, static_cast<int64_t>(r.index));
      sqlite3_bind_text(s, 2, r.entry.data(), static_cast<int>(r.entry.size()), SQLITE_STATIC);
      sqlite3_bind_blob(s, 3, r.leaf_hash.data(), 32, SQLITE_STATIC);
      if (sqlite3_step(s) != SQLITE_DONE) {
        Status failed =
            Status::Unavailable(std::string("audit: append failed: ") + sqlite3_errmsg(db_));
        sqlite3_reset(s);
        return failed;
      }
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);  // the rows' buffers are about to go
    TOANI_ASSIGN_OR_RETURN(sqlite3_stmt * t,
                           Prepared("INSERT INTO audit_tiles(level, n, hashes) VALUES(?,?,?)"));
    for (const auto& tile : tiles) {
      sqlite3_reset(t);
      sqlite3_bind_int(t, 1, tile.level);
      sqlite3_bind_int64(t, 2, static_cast<int64_t>(tile.n));
      sqlite3_bind_blob(t, 3, tile.hashes.data(), static_cast<int>(tile.hashes.size()),
                        SQLITE_STATIC);
      if (sqlite3_step(t) != SQLITE_DONE) {
        Status failed =
            Status::Unavailable(std::string("audit: tile append failed: ") + sqlite3_errmsg(db_));
        sqlite3_reset(t);
        return failed;
      }
    }
    sqlite3_reset(t);
    sqlite3_clear_bindings(t);
    return Status::Ok();
  }

  std::mutex mu_;
  sqlite3* db_ = nullptr;
  std::map<std::string, sqlite3_stmt*, std::less<>> prepared_;  // Prepared(), under mu_
};

}  // namespace

StatusOr<std::unique_ptr<AuditStore>> OpenSqliteAuditStore(const std::string& path) {
  auto s = std::make_unique<SqliteAuditStore>();
  TOANI_RETURN_IF_ERROR(s->Open(path));
  return std::unique_ptr<AuditStore>(std::move(s));
}

}  // namespace toani::store
