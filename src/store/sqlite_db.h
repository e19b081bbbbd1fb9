// A small SQLite connection and statement wrapper shared by the SQLite stores
// (sqlite_store.cc, sqlite_policy_store.cc). Internal to src/store.
#pragma once

#include <sqlite3.h>

#include <mutex>
#include <string>

#include "common/status.h"

namespace toani::store::sqlite {

class Db {
 public:
  Db() = default;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db() {
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

 private:
  sqlite3* db_ = nullptr;
};

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK) s_ = nullptr;
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(s_); }
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
  sqlite3* db_;
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
  Stmt q(db->get(),
         ("SELECT COUNT(*) FROM pragma_table_info('" + table + "') WHERE name=?").c_str());
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
