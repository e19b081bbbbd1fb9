// The audit log against a real SQLite store and keyd's real signing code: group commit,
// the tamper matrix, rollback and fork detection, fail-closed appends, the outbox,
// witnesses, and offline verification of a 10,000-entry bundle.
#include "audit/log.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "audit/bundle.h"
#include "audit/entry.h"
#include "audit/outbox.h"
#include "audit/test_util.h"
#include "audit/witness.h"
#include "common/encoding.h"

namespace toani::audit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::FlakyStore;
using testing::InProcessKeyd;
using testing::TempDir;

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    keyd_ = std::make_unique<InProcessKeyd>(dir_.path() + "/keyd");
    auto s = NewKeydAuditSigner(keyd_.get());
    ASSERT_TRUE(s.ok()) << s.status().message();
    signer_ = std::move(*s);
  }
  std::string Db() const { return dir_.path() + "/toani.db"; }

  // Opens a fresh store + log on Db(); the previous ones are closed first.
  StatusOr<AuditLog*> Reopen(bool verify_sigs = true) {
    log_.reset();
    flaky_ = nullptr;
    store_.reset();
    TOANI_ASSIGN_OR_RETURN(auto st, store::OpenSqliteAuditStore(Db()));
    auto flaky = std::make_unique<FlakyStore>(std::move(st));
    flaky_ = flaky.get();
    store_ = std::move(flaky);
    AuditLogOptions o;
    o.tee = {{"measurement", std::string(64, 'a')}, {"simulated", true}};
    o.verify_signatures_on_open = verify_sigs;
    TOANI_ASSIGN_OR_RETURN(log_, AuditLog::Open(store_.get(), signer_.get(), o));
    return log_.get();
  }
  void Close() {
    log_.reset();
    store_.reset();
  }
  void AppendN(int n, const std::string& tag = "e") {
    for (int i = 0; i < n; ++i) {
      auto r = log_->Append(
          {{"type", "test.event"}, {"tenant", "dev"}, {"reason", tag + std::to_string(i)}});
      ASSERT_TRUE(r.ok()) << r.status().message();
    }
  }
  // Raw SQL as an attacker with write access to the file: the triggers go first (every
  // time: opening the store re-creates them).
  void Sql(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(Db().c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    const std::string all =
        "PRAGMA synchronous = OFF; BEGIN;"
        "DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete;"
        "DROP TRIGGER IF EXISTS audit_tiles_no_update; DROP TRIGGER IF EXISTS "
        "audit_tiles_no_delete;" +
        sql +
        ";CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, "
        "'x'); END;"
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, "
        "'x'); END;"
        "CREATE TRIGGER audit_tiles_no_update BEFORE UPDATE ON audit_tiles BEGIN SELECT "
        "RAISE(ABORT, 'x'); END;"
        "CREATE TRIGGER audit_tiles_no_delete BEFORE DELETE ON audit_tiles BEGIN SELECT "
        "RAISE(ABORT, 'x'); END;"
        "COMMIT;";
    int rc = sqlite3_exec(db, all.c_str(), nullptr, nullptr, &err);
    std::string m = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << m << " in " << sql;
  }
  std::string ReadEntry(uint64_t i) {
    auto rows = store_->ReadEntries(i, i + 1);
    return rows.ok() && rows->size() == 1 ? (*rows)[0].entry : "";
  }

  TempDir dir_;
  std::unique_ptr<InProcessKeyd> keyd_;
  std::unique_ptr<AuditSigner> signer_;
  std::unique_ptr<store::AuditStore> store_;
  FlakyStore* flaky_ = nullptr;
  std::unique_ptr<AuditLog> log_;
};

std::string HexOf(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string o;
  for (unsigned char c : s) {
    o.push_back(d[c >> 4]);
    o.push_back(d[c & 15]);
  }
  return o;
}

TEST_F(AuditLogTest, EntriesAreSignedChainedAndCarryNoRawUser) {
  ASSERT_TRUE(Reopen().ok());
  auto r = log_->Append(
      {{"type", "action.authorized"}, {"tenant", "dev"}, {"user", "alice"}, {"agent", "a1"}});
  ASSERT_TRUE(r.ok()) << r.status().message();
  AppendN(3);
  // keyd splices "sig" into the canonical body: members and strings that look like JSON
  // structure must not confuse it (VerifyEntry insists on exact RFC 8785 form).
  ASSERT_TRUE(log_->Append({{"type", "x"},
                            {"tenant", "dev"},
                            {"reason", "a\",}{[\\"},
                            {"receipt", {{"a", {1, {{"b", "},\""}}}}}},
                            {"a", "first"}})
                  .ok());
  ASSERT_TRUE(log_->Append({{"type", "x"}, {"tenant", "d\u00e9v"}, {"\u00e9", 1}}).ok());
  ASSERT_TRUE(VerifyEntry(ReadEntry(4), 4, log_->key()).ok());
  ASSERT_TRUE(VerifyEntry(ReadEntry(5), 5, log_->key()).ok());
  std::string e0 = ReadEntry(0);
  EXPECT_EQ(e0.find("alice"), std::string::npos);
  auto j = VerifyEntry(e0, 0, log_->key());
  ASSERT_TRUE(j.ok()) << j.status().message();
  EXPECT_EQ((*j)["prev"], std::string(64, '0'));
  EXPECT_EQ((*j)["user_ref"].get<std::string>().rfind("hmac-sha256:", 0), 0u);
  EXPECT_EQ((*j)["tee"]["simulated"], true);
  auto j1 = VerifyEntry(ReadEntry(1), 1, log_->key());
  ASSERT_TRUE(j1.ok());
  Hash l0 = LeafHash(AsBytes(e0));
  EXPECT_EQ((*j1)["prev"], HexEncode(std::span<const uint8_t>(l0.data(), 32)));
  // Reopening re-verifies everything.
  std::string root = log_->RootHex();
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(log_->size(), 6u);
  EXPECT_EQ(log_->RootHex(), root);
}

TEST_F(AuditLogTest, ConcurrentAppendsAreGroupCommittedWithUniqueIndices) {
  ASSERT_TRUE(Reopen().ok());
  std::vector<std::thread> ts;
  std::mutex mu;
  std::set<uint64_t> seen;
  for (int t = 0; t < 8; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        auto r = log_->Append(
            {{"type", "test"}, {"tenant", "dev"}, {"reason", std::to_string(t * 1000 + i)}});
        ASSERT_TRUE(r.ok());
        std::lock_guard<std::mutex> l(mu);
        EXPECT_TRUE(seen.insert(r->index).second);
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(seen.size(), 800u);
  EXPECT_EQ(*seen.rbegin(), 799u);
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(log_->size(), 800u);
}

// Signing runs ahead of the disk (docs/architecture.md): with a slow store and every
// third write failing, batches signed behind a failed one fail too, never a gap or a
// broken chain; every acknowledged entry is stored, and the log reopens intact.
TEST_F(AuditLogTest, FailedWritesWithBatchesInFlightLoseNothingAcknowledged) {
  ASSERT_TRUE(Reopen().ok());
  flaky_->write_delay_ms = 5;
  flaky_->fail_every = 3;
  std::vector<std::thread> ts;
  std::mutex mu;
  std::map<uint64_t, std::string> acked;  // index -> reason
  std::atomic<int> failed{0};
  for (int t = 0; t < 16; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        const std::string reason = std::to_string(t * 1000 + i);
        auto r = log_->Append({{"type", "test"}, {"tenant", "dev"}, {"reason", reason}});
        if (!r.ok()) {
          EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
          ++failed;
          continue;
        }
        std::lock_guard<std::mutex> l(mu);
        EXPECT_TRUE(acked.emplace(r->index, reason).second);
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_GT(failed.load(), 0);
  EXPECT_FALSE(acked.empty());
  flaky_->fail_every = 0;
  flaky_->write_delay_ms = 0;
  const uint64_t size = log_->size();
  EXPECT_EQ(size, acked.size());  // indices are dense: 0..size-1, each acknowledged once
  ASSERT_TRUE(log_->Append({{"type", "test"}, {"tenant", "dev"}}).ok());
  ASSERT_TRUE(Reopen().ok());  // chain, signatures, leaf hashes and tiles all check out
  EXPECT_EQ(log_->size(), size + 1);
  for (const auto& [index, reason] : acked) {
    auto e = nlohmann::json::parse(ReadEntry(index));
    EXPECT_EQ(e["reason"], reason) << index;
  }
}

TEST_F(AuditLogTest, TamperMatrixEveryByteOfEveryEntryIsDetectedAtStart) {
  ASSERT_TRUE(Reopen().ok());
  AppendN(3);
  std::vector<std::string> entries{ReadEntry(0), ReadEntry(1), ReadEntry(2)};
  Close();
  int checked = 0;
  for (uint64_t i = 0; i < entries.size(); ++i) {
    for (size_t b = 0; b < entries[i].size(); ++b) {
      std::string bad = entries[i];
      bad[b] = static_cast<char>(bad[b] ^ 0x20);
      Sql("UPDATE audit_log SET entry = CAST(X'" + HexOf(bad) +
          "' AS TEXT) WHERE idx = " + std::to_string(i));
      auto r = Reopen();
      EXPECT_FALSE(r.ok()) << "entry " << i << " byte " << b << " changed undetected";
      ++checked;
    }
    Sql("UPDATE audit_log SET entry = CAST(X'" + HexOf(entries[i]) +
        "' AS TEXT) WHERE idx = " + std::to_string(i));
    ASSERT_TRUE(Reopen().ok());
    Close();
  }
  // Recomputing the stored leaf hash too does not help: the chain and signature catch it.
  std::string bad = entries[1];
  bad[bad.find("e1")] = 'f';
  Sql("UPDATE audit_log SET entry = CAST(X'" + HexOf(bad) + "' AS TEXT), leaf_hash = X'" +
      HexOf(std::string(reinterpret_cast<const char*>(LeafHash(AsBytes(bad)).data()), 32)) +
      "' WHERE idx = 1");
  EXPECT_FALSE(Reopen().ok());
  EXPECT_GT(checked, 500);
}

TEST_F(AuditLogTest, TamperMatrixLeafHashesDeletionAndReordering) {
  ASSERT_TRUE(Reopen().ok());
  AppendN(5);
  std::string e1 = ReadEntry(1), e2 = ReadEntry(2);
  const Hash real = LeafHash(AsBytes(ReadEntry(3)));
  Close();
  const auto hash_hex = [](const Hash& h) {
    return HexOf(std::string(reinterpret_cast<const char*>(h.data()), h.size()));
  };
  for (int b = 0; b < 32; ++b) {
    // Flip every bit of byte b (setting it to a constant would leave it unchanged
    // whenever it already had that value).
    Hash bad = real;
    bad[b] ^= 0xFF;
    Sql("UPDATE audit_log SET leaf_hash = X'" + hash_hex(bad) + "' WHERE idx = 3");
    EXPECT_FALSE(Reopen().ok()) << "leaf hash byte " << b;
    Close();
    Sql("UPDATE audit_log SET leaf_hash = X'" + hash_hex(real) + "' WHERE idx = 3");
  }
  ASSERT_TRUE(Reopen().ok());
  Close();
  // Reordering: swap entries 1 and 2 (with their leaf hashes).
  Sql("UPDATE audit_log SET idx = 100 WHERE idx = 1; UPDATE audit_log SET idx = 1 WHERE idx = 2;"
      "UPDATE audit_log SET idx = 2 WHERE idx = 100;");
  EXPECT_FALSE(Reopen().ok());
  Close();
  Sql("UPDATE audit_log SET idx = 100 WHERE idx = 1; UPDATE audit_log SET idx = 1 WHERE idx = 2;"
      "UPDATE audit_log SET idx = 2 WHERE idx = 100;");
  ASSERT_TRUE(Reopen().ok());
  Close();
  // Deleting an entry in the middle.
  Sql("DELETE FROM audit_log WHERE idx = 2");
  auto r = Reopen();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("entry 2 is missing"), std::string::npos)
      << r.status().message();
}

TEST_F(AuditLogTest, TamperMatrixStoredTiles) {
  ASSERT_TRUE(Reopen().ok());
  AppendN(300);
  auto stored = store_->ReadTiles();
  ASSERT_TRUE(stored.ok() && stored->size() == 1);
  const std::string original = HexOf((*stored)[0].hashes);
  Close();
  // Every byte of the first hash of the stored level-0 tile, then every 61st byte.
  for (int b = 0; b < 8192; b += (b < 32 ? 1 : 61)) {
    const std::string at = std::to_string(b + 1);
    Sql("UPDATE audit_tiles SET hashes = substr(hashes,1," + std::to_string(b) +
        ") || (CASE WHEN substr(hashes," + at +
        ",1) = X'A5' THEN X'5A' ELSE X'A5' END) || substr(hashes," + std::to_string(b + 2) +
        ") WHERE level = 0 AND n = 0");
    auto r = Reopen(/*verify_sigs=*/false);
    EXPECT_FALSE(r.ok()) << "tile byte " << b;
    Close();
    Sql("UPDATE audit_tiles SET hashes = X'" + original + "' WHERE level = 0 AND n = 0");
  }
  auto ok = Reopen();
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  Close();
  // A missing tile, and an extra (forged) one, are refused too.
  Sql("CREATE TABLE keep AS SELECT * FROM audit_tiles; DELETE FROM audit_tiles");
  EXPECT_FALSE(Reopen(false).ok());
  Close();
  Sql("INSERT INTO audit_tiles SELECT * FROM keep; INSERT INTO audit_tiles(level, n, hashes) "
      "VALUES(0, 1, zeroblob(8192))");
  EXPECT_FALSE(Reopen(false).ok());
}

TEST_F(AuditLogTest, TriggersRefuseUpdateAndDeleteThroughSql) {
  ASSERT_TRUE(Reopen().ok());
  AppendN(300);
  Close();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(Db().c_str(), &db), SQLITE_OK);
  for (const char* sql :
       {"UPDATE audit_log SET entry = 'x' WHERE idx = 0", "DELETE FROM audit_log WHERE idx = 299",
        "UPDATE audit_tiles SET hashes = zeroblob(8192)", "DELETE FROM audit_tiles"}) {
    EXPECT_NE(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sql;
  }
  sqlite3_close(db);
  EXPECT_TRUE(Reopen().ok());
}

TEST_F(AuditLogTest, RestoredOlderDatabaseAndForkAreDetectedAgainstTheWitness) {
  const std::string wdir = dir_.path() + "/witness";
  ASSERT_TRUE(Reopen().ok());
  AppendN(5);
  Close();
  fs::copy_file(Db(), dir_.path() + "/old.db");  // closed: the WAL was checkpointed into the file
  ASSERT_TRUE(Reopen().ok());
  AppendN(5, "later");
  {
    std::vector<std::unique_ptr<WitnessSink>> sinks;
    sinks.push_back(NewDirectorySink(wdir));
    WitnessPublisher pub(log_.get(), std::move(sinks), std::chrono::hours(1));
    ASSERT_TRUE(pub.PublishNow().ok());
  }
  EXPECT_TRUE(CheckAgainstPublished(wdir, *log_).ok());
  EXPECT_TRUE(fs::exists(wdir + "/10.checkpoint"));
  Close();
  // Rollback: the older copy is restored.
  fs::remove(Db() + "-wal");
  fs::remove(Db() + "-shm");
  fs::copy_file(dir_.path() + "/old.db", Db(), fs::copy_options::overwrite_existing);
  ASSERT_TRUE(Reopen().ok());  // the old log is internally consistent...
  Status st = CheckAgainstPublished(wdir, *log_);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);  // ...but behind what was published
  EXPECT_NE(st.message().find("rolled back"), std::string::npos) << st.message();
  // Fork: the same five, then five different entries signed by the same key.
  AppendN(5, "forked");
  st = CheckAgainstPublished(wdir, *log_);
  EXPECT_NE(st.message().find("forked"), std::string::npos) << st.message();
  // A faulted log refuses appends (executions then fail closed).
  log_->SetFault(st.message());
  EXPECT_EQ(log_->Append({{"type", "x"}, {"tenant", "dev"}}).status().code(),
            StatusCode::kUnavailable);
  // A forged checkpoint file is refused, not trusted.
  std::ofstream(wdir + "/checkpoint") << "toani.local/audit/x\n1\nAAAA\n\n\xE2\x80\x94 x AAAA\n";
  EXPECT_FALSE(CheckAgainstPublished(wdir, *log_).ok());
}

TEST_F(AuditLogTest, InjectedStoreFailureFailsTheAppendAndLeavesTheLogIntact) {
  ASSERT_TRUE(Reopen().ok());
  AppendN(2);
  flaky_->fail_appends = true;
  auto r = log_->Append({{"type", "execution.started"}, {"tenant", "dev"}});
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(log_->size(), 2u);
  flaky_->fail_appends = false;
  auto r2 = log_->Append({{"type", "execution.started"}, {"tenant", "dev"}});
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->index, 2u);
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(log_->size(), 3u);
}

TEST_F(AuditLogTest, OutboxKeepsAFinishedEntryUntilTheLogTakesIt) {
  ASSERT_TRUE(Reopen().ok());
  flaky_->fail_appends = true;
  auto ob = Outbox::Open(dir_.path() + "/outbox", log_.get(), std::chrono::milliseconds(20));
  ASSERT_TRUE(ob.ok());
  ASSERT_TRUE(log_->Append({{"type", "execution.finished"}, {"tenant", "dev"}}).status().code() ==
              StatusCode::kUnavailable);
  ASSERT_TRUE(
      (*ob)->Put({{"type", "execution.finished"}, {"tenant", "dev"}, {"execution_id", "x1"}}).ok());
  EXPECT_EQ((*ob)->DrainOnce(), 1u);  // still failing: kept
  EXPECT_EQ((*ob)->Pending(), 1u);
  flaky_->fail_appends = false;
  for (int i = 0; i < 500 && (*ob)->Pending() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ((*ob)->Pending(), 0u);
  ASSERT_EQ(log_->size(), 1u);
  auto j = json::parse(ReadEntry(0));
  EXPECT_EQ(j["execution_id"], "x1");
  EXPECT_TRUE(j.contains("outbox_id"));
}

TEST_F(AuditLogTest, KeydRefusesToSignRollbacksAndNonEntries) {
  ASSERT_TRUE(Reopen().ok());
  AppendN(3);
  ASSERT_TRUE(log_->Checkpoint().ok());
  Checkpoint old{log_->key().name, 2, *log_->RootAt(2)};
  EXPECT_FALSE(signer_->SignCheckpoint(CheckpointText(old)).ok());
  Checkpoint other{"evil.example/log", 3, *log_->RootAt(3)};
  EXPECT_FALSE(signer_->SignCheckpoint(CheckpointText(other)).ok());
  EXPECT_FALSE(
      keyd_
          ->Call({{"op", "audit.sign_entries"},
                  {"prev", std::string(64, '0')},
                  {"entries",
                   {{{"v", 2}, {"index", 0}, {"time", "t"}, {"tenant", "d"}, {"sig", "x"}}}}})
          .ok());
  EXPECT_FALSE(keyd_
                   ->Call({{"op", "audit.sign_entries"},
                           {"prev", std::string(64, '0')},
                           {"entries", {"toani.local/audit/x\n1\nAAAA\n"}}})
                   .ok());
}

TEST_F(AuditLogTest, HttpWitnessSpeaksAddCheckpoint) {
  ASSERT_TRUE(Reopen().ok());
  AppendN(4);
  std::vector<std::string> bodies;
  uint64_t witness_size = 2;  // the witness already cosigned size 2 (unknown to us)
  auto post = [&](const std::string& url, const std::string& body) -> StatusOr<ClientResponse> {
    EXPECT_EQ(url, "https://w.example/add-checkpoint");
    bodies.push_back(body);
    ClientResponse r;
    uint64_t old = std::stoull(body.substr(4, body.find('\n') - 4));
    if (old != witness_size) {
      r.status = 409;
      r.content_type = "text/x.tlog.size";
      r.body = std::to_string(witness_size) + "\n";
      return r;
    }
    r.status = 200;
    r.body = "\xE2\x80\x94 w.example AAAA\n";
    return r;
  };
  std::vector<std::unique_ptr<WitnessSink>> sinks;
  sinks.push_back(NewHttpWitnessSink("https://w.example", {}, post));
  WitnessPublisher pub(log_.get(), std::move(sinks), std::chrono::hours(1));
  ASSERT_TRUE(pub.PublishNow().ok());
  ASSERT_GE(bodies.size(), 2u);
  const std::string& last = bodies.back();
  EXPECT_EQ(last.rfind("old 2\n", 0), 0u) << last;
  // The proof lines between "old" and the blank line verify from 2 to 4.
  auto proof = log_->ConsistencyProof(2, 4);
  ASSERT_TRUE(proof.ok());
  EXPECT_EQ(last, AddCheckpointBody(2, *proof, *log_->Checkpoint()));
  EXPECT_TRUE(VerifyConsistency(2, 4, *proof, *log_->RootAt(2), *log_->RootAt(4)).ok());
}

TEST_F(AuditLogTest, BundleTamperMatrixAndWrongKey) {
  ASSERT_TRUE(Reopen().ok());
  AppendN(3);
  auto bundle = ExportBundle(*log_, 0, std::nullopt,
                             {{"measurement", std::string(64, 'a')}, {"simulated", true}});
  ASSERT_TRUE(bundle.ok()) << bundle.status().message();
  VerifyReport ok = VerifyBundle(*bundle, log_->key());
  ASSERT_TRUE(ok.ok()) << (ok.failures.empty() ? "" : ok.failures[0]);
  // Every byte inside the CHECKPOINT, ENTRY and PROOF sections matters.
  const std::string& b = *bundle;
  size_t start = b.find("-----BEGIN CHECKPOINT-----\n");
  int flips = 0;
  for (size_t i = start; i < b.size(); ++i) {
    size_t ls = b.rfind('\n', i - 1) + 1;
    if (b.compare(ls, 5, "-----") == 0 || b[i] == '\n') continue;  // section markers, line ends
    std::string bad = b;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_FALSE(VerifyBundle(bad, log_->key()).ok()) << "byte " << i << " of the bundle";
    ++flips;
  }
  EXPECT_GT(flips, 1000);
  // Another key (same name, different key) is refused.
  VerifierKey other = log_->key();
  other.public_key[0] ^= 1;
  EXPECT_FALSE(VerifyBundle(*bundle, other).ok());
  // Dropping a middle entry's sections breaks nothing else, but reordering is caught.
  std::string swapped = b;
  size_t e1 = swapped.find("-----BEGIN ENTRY 1-----");
  size_t e2 = swapped.find("-----BEGIN ENTRY 2-----");
  std::string block1 = swapped.substr(e1, e2 - e1);
  swapped.erase(e1, e2 - e1);
  swapped += block1;
  EXPECT_FALSE(VerifyBundle(swapped, log_->key()).ok());
}

TEST_F(AuditLogTest, TenThousandEntryBundleVerifiesOfflineWithTheCli) {
  ASSERT_TRUE(Reopen().ok());
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 1250; ++i) {
        ASSERT_TRUE(log_->Append({{"type", "test"},
                                  {"tenant", "dev"},
                                  {"reason", std::to_string(t * 10000 + i)}})
                        .ok());
      }
    });
  }
  for (auto& t : ts) t.join();
  ASSERT_EQ(log_->size(), 10000u);
  auto bundle = ExportBundle(*log_, 0, std::nullopt,
                             {{"measurement", std::string(64, 'a')}, {"simulated", true}});
  ASSERT_TRUE(bundle.ok());
  const std::string file = dir_.path() + "/bundle.txt";
  std::ofstream(file, std::ios::binary) << *bundle;
  const std::string vkey = FormatVerifierKey(log_->key());
  Close();  // nothing of the log is running any more
  const std::string toani = std::string(TOANI_BUILD_DIR) + "/bin/toani";
  if (!fs::exists(toani)) GTEST_SKIP() << "toani binary not built";
  std::string cmd =
      toani + " audit verify " + file + " --key '" + vkey + "' > " + dir_.path() + "/out.txt 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream outf(dir_.path() + "/out.txt");
  std::string out((std::istreambuf_iterator<char>(outf)), std::istreambuf_iterator<char>());
  EXPECT_NE(out.find("10000 inclusion proofs"), std::string::npos) << out;
  EXPECT_NE(out.find("VERIFIED"), std::string::npos) << out;
  // One flipped byte in entry 5000 and the CLI exits non-zero.
  std::string bad = *bundle;
  size_t at = bad.find("-----BEGIN ENTRY 5000-----\n") + 40;
  bad[at] = static_cast<char>(bad[at] ^ 0x01);
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bad;
  EXPECT_NE(std::system(cmd.c_str()), 0);
}

}  // namespace
}  // namespace toani::audit
