// A small SQLite connection and statement wrapper shared by the SQLite stores
// (sqlite_store.cc, sqlite_policy_store.cc). Internal to src/store.
#pragma once

#include <sqlite3.h>

#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace toani::store::sqlite {

class Db {
 public:
  Db() = default;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db() {
    for (auto& [sql, free] : cache_) {
      for (sqlite3_stmt* s : free) sqlite3_finalize(s);
    }
    if (db_ != nullptr) sqlite3_close_v2(db_);
  }
  // Opens (creating) `path` in WAL mode with synchronous=FULL and runs `schema`.
  Status Open(const std::string& path, const char* schema) {
    if (sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
      return Status::Unavailable("sqlite: cannot open " + path + ": " +
                                 (db_ ? sqlite3_errmsg(db_) : "?"));
    }
    sqlite3_busy_timeout(db_, 10000);
    TOANI_RETURN_IF_ERROR(Exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"));
    return Exec(schema);
  }
  Status Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "?";
      sqlite3_free(err);
      return Status::Unavailable("sqlite: " + m);
    }
    return Status::Ok();
  }
  sqlite3* get() { return db_; }
  std::mutex mu;  // one statement sequence at a time on this connection

  // Prepared statements are kept for reuse, by SQL text: parsing and planning a
  // statement costs more than running most of ours (docs/performance.md). A statement
  // is held by one Stmt at a time; it is reset and its bindings cleared when handed back.
  sqlite3_stmt* TakeStatement(const char* sql) {
    {
      std::lock_guard<std::mutex> l(cache_mu_);
      auto it = cache_.find(sql);
      if (it != cache_.end() && !it->second.empty()) {
        sqlite3_stmt* s = it->second.back();
        it->second.pop_back();
        return s;
      }
    }
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
      sqlite3_finalize(s);
      return nullptr;
    }
    return s;
  }
  void ReturnStatement(const char* sql, sqlite3_stmt* s) {
    if (s == nullptr) return;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    {
      std::lock_guard<std::mutex> l(cache_mu_);
      if (cache_.size() < kMaxCachedSql) {
        auto& free = cache_[sql];
        if (free.size() < kMaxPerSql) {
          free.push_back(s);
          return;
        }
      }
    }
    sqlite3_finalize(s);
  }

 private:
  static constexpr size_t kMaxCachedSql = 256;
  static constexpr size_t kMaxPerSql = 4;
  sqlite3* db_ = nullptr;
  std::mutex cache_mu_;
  std::unordered_map<std::string, std::vector<sqlite3_stmt*>> cache_;
};

// One statement on a Db, taken from its cache of prepared statements and handed back
// (reset) when this goes out of scope.
class Stmt {
 public:
  Stmt(Db* db, const char* sql)
      : owner_(db), db_(db->get()), sql_(sql), s_(db->TakeStatement(sql)) {}
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { owner_->ReturnStatement(sql_.c_str(), s_); }
  Status Ready() const {
    return s_ ? Status::Ok()
              : Status::Internal(std::string("sqlite: prepare failed: ") + sqlite3_errmsg(db_));
  }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& Bind(int i, double v) {
    sqlite3_bind_double(s_, i, v);
    return *this;
  }
  Stmt& BindBlob(int i, const void* p, size_t n) {
    sqlite3_bind_blob(s_, i, p, static_cast<int>(n), SQLITE_TRANSIENT);
    return *this;
  }
  int Step() { return sqlite3_step(s_); }
  std::string Text(int i) {
    const unsigned char* t = sqlite3_column_text(s_, i);
    return t ? std::string(reinterpret_cast<const char*>(t),
                           static_cast<size_t>(sqlite3_column_bytes(s_, i)))
             : "";
  }
  int64_t Int(int i) { return sqlite3_column_int64(s_, i); }
  double Double(int i) { return sqlite3_column_double(s_, i); }
  const void* Blob(int i, size_t* n) {
    *n = static_cast<size_t>(sqlite3_column_bytes(s_, i));
    return sqlite3_column_blob(s_, i);
  }
  std::string Error() const { return sqlite3_errmsg(db_); }

 private:
  Db* owner_;
  sqlite3* db_;
  std::string sql_;
  sqlite3_stmt* s_ = nullptr;
};

// BEGIN IMMEDIATE … COMMIT, rolled back unless Commit() was called.
class Tx {
 public:
  explicit Tx(Db* db) : db_(db) { st_ = db_->Exec("BEGIN IMMEDIATE"); }
  ~Tx() {
    if (st_.ok() && !done_) (void)db_->Exec("ROLLBACK");
  }
  const Status& status() const { return st_; }
  Status Commit() {
    done_ = true;
    return db_->Exec("COMMIT");
  }

 private:
  Db* db_;
  Status st_;
  bool done_ = false;
};

// Adds a column to an existing table when an older database lacks it.
inline Status AddColumnIfMissing(Db* db, const std::string& table, const std::string& column,
                                 const std::string& decl) {
  Stmt q(db, ("SELECT COUNT(*) FROM pragma_table_info('" + table + "') WHERE name=?").c_str());
  TOANI_RETURN_IF_ERROR(q.Ready());
  q.Bind(1, column);
  if (q.Step() != SQLITE_ROW) return Status::Unavailable("sqlite: " + q.Error());
  if (q.Int(0) > 0) return Status::Ok();
  Status st = db->Exec(("ALTER TABLE " + table + " ADD COLUMN " + column + " " + decl).c_str());
  // Another connection may have added it in between.
  if (!st.ok() && st.message().find("duplicate column") != std::string::npos) return Status::Ok();
  return st;
}

}  // namespace toani::store::sqlite
