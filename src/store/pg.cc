#include "store/pg.h"

#include <libpq-fe.h>

#include <cstdlib>
#include <cstring>

namespace toani::store {
namespace {

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

PgResult& PgResult::operator=(PgResult&& o) noexcept {
  if (this != &o) {
    if (r_) PQclear(r_);
    r_ = o.r_;
    o.r_ = nullptr;
  }
  return *this;
}

PgResult::~PgResult() {
  if (r_) PQclear(r_);
}

int PgResult::rows() const { return r_ ? PQntuples(r_) : 0; }
bool PgResult::IsNull(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
std::string PgResult::Text(int row, int col) const {
  return std::string(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
}
int64_t PgResult::Int(int row, int col) const {
  return std::strtoll(PQgetvalue(r_, row, col), nullptr, 10);
}
std::string PgResult::Bytes(int row, int col) const {
  const char* v = PQgetvalue(r_, row, col);
  const size_t n = static_cast<size_t>(PQgetlength(r_, row, col));
  if (n < 2 || v[0] != '\\' || v[1] != 'x') return "";  // bytea_output is hex (set at connect)
  std::string out;
  out.reserve((n - 2) / 2);
  for (size_t i = 2; i + 1 < n; i += 2) {
    int hi = HexVal(v[i]), lo = HexVal(v[i + 1]);
    if (hi < 0 || lo < 0) return "";
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

StatusOr<std::unique_ptr<PgConn>> PgConn::Connect(const std::string& url) {
  PGconn* c = PQconnectdb(url.c_str());
  if (c == nullptr) return Status::Unavailable("postgres: out of memory");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string m = Trim(PQerrorMessage(c));
    PQfinish(c);
    return Status::Unavailable("postgres: cannot connect: " + m);
  }
  std::unique_ptr<PgConn> conn(new PgConn(c));
  // Durable commits (the default, stated), hex bytea, UTC, and quiet notices.
  TOANI_RETURN_IF_ERROR(conn->ExecScript(
      "SET synchronous_commit = on; SET bytea_output = 'hex'; SET TIME ZONE 'UTC'; "
      "SET client_min_messages = warning;"));
  return conn;
}

PgConn::~PgConn() { PQfinish(c_); }

bool PgConn::Broken() const { return PQstatus(c_) != CONNECTION_OK; }
int PgConn::Socket() const { return PQsocket(c_); }

StatusOr<PgResult> PgConn::Exec(const std::string& sql, const std::vector<PgParam>& params) {
  std::vector<const char*> values(params.size());
  std::vector<int> lengths(params.size()), formats(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    values[i] = params[i].null ? nullptr : params[i].value.data();
    lengths[i] = static_cast<int>(params[i].value.size());
    formats[i] = params[i].binary ? 1 : 0;
  }
  PGresult* raw = PQexecParams(c_, sql.c_str(), static_cast<int>(params.size()), nullptr,
                               values.data(), lengths.data(), formats.data(), 0);
  PgResult r(raw);
  const ExecStatusType st = PQresultStatus(raw);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
  const char* state = raw ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = Trim(raw ? PQresultErrorMessage(raw) : PQerrorMessage(c_));
  if (msg.empty()) msg = Trim(PQerrorMessage(c_));
  if (state != nullptr && std::strcmp(state, "23505") == 0)
    return Status::AlreadyExists("postgres: " + msg);
  return Status::Unavailable("postgres: " + msg);
}

Status PgConn::ExecScript(const std::string& sql) {
  PGresult* r = PQexec(c_, sql.c_str());
  const ExecStatusType st = PQresultStatus(r);
  Status out = Status::Ok();
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    out = Status::Unavailable("postgres: " + Trim(PQresultErrorMessage(r)));
  }
  PQclear(r);
  return out;
}

StatusOr<std::vector<std::string>> PgConn::ConsumeNotifications() {
  if (PQconsumeInput(c_) == 0) return Status::Unavailable("postgres: " + Trim(PQerrorMessage(c_)));
  std::vector<std::string> out;
  while (PGnotify* n = PQnotifies(c_)) {
    out.emplace_back(n->relname);
    PQfreemem(n);
  }
  return out;
}

StatusOr<PgPool::Lease> PgPool::Acquire() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return !idle_.empty() || open_ < size_; });
  if (!idle_.empty()) {
    std::unique_ptr<PgConn> c = std::move(idle_.back());
    idle_.pop_back();
    if (!c->Broken()) return Lease(this, std::move(c));
    --open_;  // reconnect below
  }
  ++open_;
  l.unlock();
  auto c = PgConn::Connect(url_);
  if (!c.ok()) {
    std::lock_guard<std::mutex> g(mu_);
    --open_;
    cv_.notify_one();
    return c.status();
  }
  return Lease(this, std::move(*c));
}

void PgPool::Release(std::unique_ptr<PgConn> c) {
  std::lock_guard<std::mutex> l(mu_);
  if (c->Broken()) {
    --open_;
  } else {
    idle_.push_back(std::move(c));
  }
  cv_.notify_one();
}

}  // namespace toani::store
