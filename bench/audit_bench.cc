// Audit log benchmarks, each beside its baseline in the same run (docs/performance.md):
//  - durable appends/s through AuditLog (keyd signing + group commit + fsync'd SQLite
//    transaction), beside raw SQLite inserts with the same durability (WAL,
//    synchronous=FULL, every acknowledged row committed), one row per transaction and
//    the best case of 512 rows per transaction;
//  - inclusion-proof time and size at 1,000,000 entries (proof built from tlog tiles).
// The target, through a real toani-keyd process as the server runs it, with the
// raw SQLite baselines from the same run:
//   build/release/bin/audit_bench --benchmark_filter=KeydProcess
#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>

#include "audit/log.h"
#include "audit/test_util.h"
#include "audit/tiles.h"
#include "common/encoding.h"
#include "keyd/client.h"
#include "proc_cpu.h"
#include "store/audit_store.h"

namespace toani::audit {
namespace {

using testing::InProcessKeyd;
using testing::TempDir;

double CpuMicros(pid_t pid) { return toani::bench::ProcessCpuMs(pid) * 1000.0; }

// One log shared by the threads of a benchmark run.
struct Shared {
  TempDir dir;
  std::unique_ptr<keyd::KeyServiceClient> keyd;
  std::unique_ptr<AuditSigner> signer;
  std::unique_ptr<store::AuditStore> store;
  std::unique_ptr<AuditLog> log;
};
std::unique_ptr<Shared> g_shared;

// kRealKeyd: signing in a real toani-keyd process over its socket, as the server runs
// it (keyd signs batch n+1 on one core while the log's writer fsyncs batch n);
// otherwise keyd's code runs in the appending thread.
template <bool kRealKeyd>
void BM_AuditLogDurableAppend(benchmark::State& state) {
  if (state.thread_index() == 0) {
    g_shared = std::make_unique<Shared>();
    if (kRealKeyd) {
      auto p = keyd::KeydProcess::Spawn(std::string(TOANI_BIN_DIR) + "/toani-keyd",
                                        g_shared->dir.path() + "/keyd", true);
      if (!p.ok()) {
        state.SkipWithError("toani-keyd did not start");
        return;
      }
      g_shared->keyd = std::move(*p);
    } else {
      g_shared->keyd = std::make_unique<InProcessKeyd>(g_shared->dir.path() + "/keyd");
    }
    g_shared->signer = NewKeydAuditSigner(g_shared->keyd.get()).value();
    g_shared->store = store::OpenSqliteAuditStore(g_shared->dir.path() + "/a.db").value();
    AuditLogOptions o;
    o.tee = {{"measurement", std::string(64, 'a')}, {"simulated", true}};
    g_shared->log = AuditLog::Open(g_shared->store.get(), g_shared->signer.get(), o).value();
  }
  // Google Benchmark starts the timed loop of all threads together, after setup.
  const nlohmann::json fields = {{"type", "action.authorized"},
                                 {"tenant", "dev"},
                                 {"actor", "spiffe://dev/agent/bench"},
                                 {"action", "bank.get_balance"},
                                 {"params_hash", "sha256:" + std::string(64, 'f')},
                                 {"policy_id", "bank"},
                                 {"policy_version", 3},
                                 {"jti", "AAAAAAAAAAAAAAAAAAAAAA"}};
  // CPU per append of keyd and of this process (the server's side: canonical JSON, group
  // commit, SQLite): what caps the rate when both share 2 cores.
  pid_t keyd_pid = -1;
  double keyd_cpu0 = 0, self_cpu0 = 0;
  uint64_t size0 = 0;
  if (state.thread_index() == 0) {
    if (auto* p = dynamic_cast<keyd::KeydProcess*>(g_shared->keyd.get())) keyd_pid = p->pid();
    keyd_cpu0 = keyd_pid > 0 ? CpuMicros(keyd_pid) : 0;
    self_cpu0 = CpuMicros(::getpid());
    size0 = g_shared->log->size();
  }
  for (auto _ : state) {
    auto r = g_shared->log->Append(fields);
    if (!r.ok()) state.SkipWithError(r.status().message().c_str());
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    state.counters["log_size"] = static_cast<double>(g_shared->log->size());
    const double n = static_cast<double>(std::max<uint64_t>(g_shared->log->size() - size0, 1));
    state.counters["self_cpu_us"] = (CpuMicros(::getpid()) - self_cpu0) / n;
    if (keyd_pid > 0) state.counters["keyd_cpu_us"] = (CpuMicros(keyd_pid) - keyd_cpu0) / n;
  }
}
BENCHMARK_TEMPLATE(BM_AuditLogDurableAppend, true)
    ->Name("BM_AuditLogDurableAppend_KeydProcess")
    ->Threads(1)
    ->Threads(64)
    ->Threads(256)
    ->UseRealTime()
    ->MinTime(3);
BENCHMARK_TEMPLATE(BM_AuditLogDurableAppend, false)
    ->Name("BM_AuditLogDurableAppend_InProcessKeyd")
    ->Threads(1)
    ->Threads(16)
    ->Threads(64)
    ->Threads(256)
    ->UseRealTime()
    ->MinTime(3);

// Where an append's CPU goes: keyd chaining and signing a batch of 64, in-process and
// through a real toani-keyd process (the binary audit.sign_batch frame, docs/formats.md
// §1.1: the difference is the socket round trip and framing).
template <bool kRealKeyd>
void BM_KeydSignBatchOf64(benchmark::State& state) {
  TempDir dir;
  std::unique_ptr<keyd::KeyServiceClient> keyd;
  if (kRealKeyd) {
    auto p = keyd::KeydProcess::Spawn(std::string(TOANI_BIN_DIR) + "/toani-keyd",
                                      dir.path() + "/keyd", true);
    if (!p.ok()) {
      state.SkipWithError("toani-keyd did not start");
      return;
    }
    keyd = std::move(*p);
  } else {
    keyd = std::make_unique<InProcessKeyd>(dir.path() + "/keyd");
  }
  auto signer = NewKeydAuditSigner(keyd.get()).value();
  std::vector<nlohmann::json> batch;
  for (uint64_t i = 0; i < 64; ++i) {
    batch.push_back({{"v", 2},
                     {"index", i},
                     {"time", "2026-11-22T00:00:00Z"},
                     {"tenant", "dev"},
                     {"type", "action.authorized"},
                     {"actor", "spiffe://dev/agent/bench"},
                     {"action", "bank.get_balance"},
                     {"params_hash", "sha256:" + std::string(64, 'f')},
                     {"policy_id", "bank"},
                     {"policy_version", 3},
                     {"jti", "AAAAAAAAAAAAAAAAAAAAAA"},
                     {"tee", {{"measurement", std::string(64, 'a')}, {"simulated", true}}}});
  }
  for (auto _ : state) {
    auto r = signer->SignEntries(Hash{}, batch);
    if (!r.ok()) state.SkipWithError("sign");
  }
  state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK_TEMPLATE(BM_KeydSignBatchOf64, false)
    ->Name("BM_KeydSignBatchOf64_InProcess")
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_KeydSignBatchOf64, true)
    ->Name("BM_KeydSignBatchOf64_KeydProcess")
    ->UseRealTime();

// The baseline: the same row shape straight into SQLite, WAL + synchronous=FULL.
struct Raw {
  TempDir dir;
  sqlite3* db = nullptr;
  std::mutex mu;
  int64_t next = 0;
  ~Raw() { sqlite3_close(db); }
};
std::unique_ptr<Raw> g_raw;

void RawSetup() {
  g_raw = std::make_unique<Raw>();
  sqlite3_open((g_raw->dir.path() + "/raw.db").c_str(), &g_raw->db);
  sqlite3_exec(
      g_raw->db,
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
      "CREATE TABLE t(idx INTEGER PRIMARY KEY, entry TEXT NOT NULL, leaf_hash BLOB NOT NULL);",
      nullptr, nullptr, nullptr);
}

void RawInsert(benchmark::State& state, int rows_per_txn) {
  if (state.thread_index() == 0) RawSetup();
  const std::string entry(420, 'x');  // about the size of a signed v2 entry
  const std::string hash(32, 'h');
  for (auto _ : state) {
    std::lock_guard<std::mutex> l(g_raw->mu);
    sqlite3_exec(g_raw->db, "BEGIN", nullptr, nullptr, nullptr);
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(g_raw->db, "INSERT INTO t VALUES(?,?,?)", -1, &s, nullptr);
    for (int i = 0; i < rows_per_txn; ++i) {
      sqlite3_reset(s);
      sqlite3_bind_int64(s, 1, g_raw->next++);
      sqlite3_bind_text(s, 2, entry.data(), static_cast<int>(entry.size()), SQLITE_STATIC);
      sqlite3_bind_blob(s, 3, hash.data(), 32, SQLITE_STATIC);
      sqlite3_step(s);
    }
    sqlite3_finalize(s);
    if (sqlite3_exec(g_raw->db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
      state.SkipWithError("commit");
  }
  state.SetItemsProcessed(state.iterations() * rows_per_txn);
}
void BM_SqliteRawInsert_OneRowPerCommit(benchmark::State& state) { RawInsert(state, 1); }
void BM_SqliteRawInsert_512RowsPerCommit(benchmark::State& state) { RawInsert(state, 512); }
BENCHMARK(BM_SqliteRawInsert_OneRowPerCommit)->Threads(1)->Threads(16)->UseRealTime()->MinTime(3);
BENCHMARK(BM_SqliteRawInsert_512RowsPerCommit)->Threads(1)->UseRealTime()->MinTime(3);
// The same baselines under names that `--benchmark_filter=KeydProcess` selects, so the
// server's arrangement is always printed beside raw SQLite from the same run.
BENCHMARK(BM_SqliteRawInsert_OneRowPerCommit)
    ->Name("BM_KeydProcessBaseline_SqliteRawInsert_OneRowPerCommit")
    ->Threads(1)
    ->UseRealTime()
    ->MinTime(3);
BENCHMARK(BM_SqliteRawInsert_512RowsPerCommit)
    ->Name("BM_KeydProcessBaseline_SqliteRawInsert_512RowsPerCommit")
    ->Threads(1)
    ->UseRealTime()
    ->MinTime(3);

// Inclusion proofs at 1,000,000 entries, built from the tile hashes the log keeps.
const TreeHashes& Million() {
  static const TreeHashes* t = [] {
    auto* h = new TreeHashes();
    for (uint64_t i = 0; i < 1000000; ++i) {
      std::string e = "entry " + std::to_string(i);
      h->Append(LeafHash(AsBytes(e)));
    }
    return h;
  }();
  return *t;
}

void BM_InclusionProofAt1M(benchmark::State& state) {
  const TreeHashes& t = Million();
  std::mt19937_64 rng(42);
  size_t bytes = 0;
  for (auto _ : state) {
    uint64_t i = rng() % 1000000;
    auto p = t.InclusionProof(i, 1000000);
    benchmark::DoNotOptimize(p);
    bytes = p->size() * 32;
  }
  state.counters["proof_bytes"] = static_cast<double>(bytes);
  state.counters["proof_hashes"] = static_cast<double>(bytes / 32);
}
BENCHMARK(BM_InclusionProofAt1M)->Unit(benchmark::kMicrosecond);

void BM_VerifyInclusionAt1M(benchmark::State& state) {
  const TreeHashes& t = Million();
  const Hash root = *t.RootAt(1000000);
  const uint64_t i = 777777;
  std::string e = "entry " + std::to_string(i);
  const Hash leaf = LeafHash(AsBytes(e));
  auto p = *t.InclusionProof(i, 1000000);
  for (auto _ : state) {
    Status s = VerifyInclusion(i, 1000000, leaf, p, root);
    if (!s.ok()) state.SkipWithError("proof does not verify");
  }
}
BENCHMARK(BM_VerifyInclusionAt1M)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace toani::audit

BENCHMARK_MAIN();
