// A small libpq wrapper for the PostgreSQL stores (issue 9): one connection, results as
// RAII objects, parameters always bound (never spliced into SQL), and a fixed-size pool.
// SQLSTATE classes map to Status codes: 23505 (unique violation) is AlreadyExists, a lost
// or refused connection is Unavailable, anything else Unavailable with the server's
// message. Thread-safety: a PgConn is used by one thread at a time; PgPool is thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"

struct pg_conn;
struct pg_result;

namespace toani::store {

struct PgParam {
  std::string value;
  bool binary = false;  // bytea bound as raw bytes
  bool null = false;
  static PgParam Text(std::string v) { return {std::move(v), false, false}; }
  static PgParam Int(int64_t v) { return {std::to_string(v), false, false}; }
  static PgParam Bytes(std::string v) { return {std::move(v), true, false}; }
  static PgParam Null() { return {"", false, true}; }
};

class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(pg_result* r) : r_(r) {}
  PgResult(PgResult&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  PgResult& operator=(PgResult&& o) noexcept;
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  ~PgResult();

  int rows() const;
  bool IsNull(int row, int col) const;
  std::string Text(int row, int col) const;
  int64_t Int(int row, int col) const;
  // A bytea column in text (hex, "\x…") output format, decoded.
  std::string Bytes(int row, int col) const;

 private:
  pg_result* r_ = nullptr;
};

class PgConn {
 public:
  // Connects (libpq conninfo or a postgres:// URL). Unavailable if it cannot.
  static StatusOr<std::unique_ptr<PgConn>> Connect(const std::string& url);
  ~PgConn();
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  StatusOr<PgResult> Exec(const std::string& sql, const std::vector<PgParam>& params = {});
  // Simple-protocol execution of one or more statements without parameters.
  Status ExecScript(const std::string& sql);
  bool Broken() const;
  int Socket() const;
  // Reads pending input and returns the channel names of notifications received.
  StatusOr<std::vector<std::string>> ConsumeNotifications();

 private:
  explicit PgConn(pg_conn* c) : c_(c) {}
  pg_conn* c_;
};

class PgPool {
 public:
  PgPool(std::string url, size_t size) : url_(std::move(url)), size_(size) {}
  class Lease {
   public:
    Lease(PgPool* pool, std::unique_ptr<PgConn> c) : pool_(pool), c_(std::move(c)) {}
    Lease(Lease&&) = default;
    ~Lease() {
      if (c_) pool_->Release(std::move(c_));
    }
    PgConn* operator->() { return c_.get(); }
    PgConn& operator*() { return *c_; }

   private:
    PgPool* pool_;
    std::unique_ptr<PgConn> c_;
  };
  // A healthy connection (reconnecting a broken one); Unavailable if none can be made.
  StatusOr<Lease> Acquire();
  const std::string& url() const { return url_; }

 private:
  void Release(std::unique_ptr<PgConn> c);
  std::string url_;
  size_t size_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<PgConn>> idle_;
  size_t open_ = 0;
};

// Runs `fn` inside BEGIN … COMMIT on `c`; ROLLBACK if fn or COMMIT fails.
template <typename Fn>
Status PgTransaction(PgConn& c, Fn&& fn) {
  auto b = c.Exec("BEGIN");
  if (!b.ok()) return b.status();
  Status st = fn();
  if (!st.ok()) {
    (void)c.Exec("ROLLBACK");
    return st;
  }
  auto cm = c.Exec("COMMIT");
  if (!cm.ok()) {
    (void)c.Exec("ROLLBACK");
    return cm.status();
  }
  return Status::Ok();
}

}  // namespace toani::store
