// The audit log against a real SQLite store and keyd's real signing code: group commit,
// the tamper matrix, rollback and fork detection, fail-closed appends, the outbox,
// witnesses, and offline verification of a 10,000-entry bundle.
#include "audit/log.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "audit/bundle.h"
#include "audit/entry.h"
#include "audit/outbox.h"
#include "audit/sign_frame.h"
#include "audit/test_util.h"
#include "audit/witness.h"
#include "common/encoding.h"
#include "common/jcs.h"

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

  // Store writes fail now and then while batches are in flight: every failed append says
  // so, every acknowledged one is in the log at its index, indices stay dense, and the
  // log verifies when reopened.
  void FailedWritesLoseNothingAcknowledged() {
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

  TempDir dir_;
  std::unique_ptr<keyd::KeyServiceClient> keyd_;
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
std::string HexHash(const Hash& h) {
  return HexEncode(std::span<const uint8_t>(h.data(), h.size()));
}

// The same log signing through a real toani-keyd process, as the server runs it: batches
// are pipelined (audit.sign_batch_next queued behind the batch keyd is signing).
class AuditLogRealKeydTest : public AuditLogTest {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    auto p = keyd::KeydProcess::Spawn(std::string(TOANI_BUILD_DIR) + "/bin/toani-keyd",
                                      dir_.path() + "/keyd", true);
    ASSERT_TRUE(p.ok()) << p.status().message();
    keyd_ = std::move(*p);
    auto s = NewKeydAuditSigner(keyd_.get());
    ASSERT_TRUE(s.ok()) << s.status().message();
    signer_ = std::move(*s);
  }
};

TEST_F(AuditLogRealKeydTest, PipelinedBatchesAfterAFailedWriteAreVoidedAndNothingAckedIsLost) {
  FailedWritesLoseNothingAcknowledged();
}

TEST_F(AuditLogRealKeydTest, ManyWritersThroughKeydGetDenseChainedIndices) {
  ASSERT_TRUE(Reopen().ok());
  flaky_->write_delay_ms = 2;  // keeps several batches between keyd and the writer
  std::vector<std::thread> ts;
  std::mutex mu;
  std::set<uint64_t> seen;
  for (int t = 0; t < 32; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        auto r = log_->Append({{"type", "test"},
                               {"tenant", "dev"},
                               {"user", "u" + std::to_string(t)},
                               {"reason", std::to_string(t * 100 + i)}});
        ASSERT_TRUE(r.ok()) << r.status().message();
        std::lock_guard<std::mutex> l(mu);
        EXPECT_TRUE(seen.insert(r->index).second);
      }
    });
  }
  for (auto& t : ts) t.join();
  ASSERT_EQ(seen.size(), 800u);
  EXPECT_EQ(*seen.rbegin(), 799u);
  flaky_->write_delay_ms = 0;
  ASSERT_TRUE(Reopen().ok());
  // Each entry's prev is the leaf hash of the one before it.
  for (uint64_t i = 1; i < 800; ++i) {
    auto e = nlohmann::json::parse(ReadEntry(i));
    const std::string before = ReadEntry(i - 1);
    EXPECT_EQ(e["prev"], HexHash(LeafHash(AsBytes(before)))) << i;
    EXPECT_FALSE(e.contains("user")) << i;
  }
}

// Batches near keyd's 1 MiB frame limit, both ways, many at once, behind a slow disk:
// frames far larger than the socket holds block their writer until the other side reads,
// so the log must always have a thread reading keyd's answers while another sends (a
// design where one thread did both once hung here). Fails, rather than hangs, after 120 s.
TEST_F(AuditLogRealKeydTest, LargeBatchesBothWaysBehindASlowDiskNeverStall) {
  ASSERT_TRUE(Reopen().ok());
  flaky_->write_delay_ms = 20;
  const std::string big(12 << 10, 'x');
  std::atomic<int> failed{0};
  auto run = std::async(std::launch::async, [&] {
    std::vector<std::thread> ts;
    for (int t = 0; t < 96; ++t) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < 6; ++i) {
          auto r = log_->Append(
              {{"type", "test"}, {"tenant", "dev"}, {"reason", std::to_string(t * 100 + i) + big}});
          if (!r.ok() && failed++ == 0) ADD_FAILURE() << r.status().message();
        }
      });
    }
    for (auto& t : ts) t.join();
  });
  if (run.wait_for(std::chrono::seconds(120)) != std::future_status::ready) {
    ADD_FAILURE() << "appends stalled: " << log_->size() << " of 576 stored after 120 s";
    std::_Exit(1);  // the appending threads cannot be joined
  }
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(log_->size(), 576u);
  flaky_->write_delay_ms = 0;
  ASSERT_TRUE(Reopen().ok());  // every signature and the chain
}

// Counts the binary frames (audit batches) sent to keyd.
class CountingKeyd : public keyd::KeyServiceClient {
 public:
  explicit CountingKeyd(keyd::KeyServiceClient* k) : k_(k) {}
  StatusOr<nlohmann::json> Call(const nlohmann::json& r) override { return k_->Call(r); }
  StatusOr<std::string> CallBinary(std::string_view f) override {
    ++batches;
    return k_->CallBinary(f);
  }
  std::unique_ptr<PendingCall> SubmitBinary(std::string_view f) override {
    ++batches;
    return k_->SubmitBinary(f);
  }
  std::atomic<int> batches{0};

 private:
  keyd::KeyServiceClient* k_;
};

// Batches keyd signed while the writer was storing the previous ones are stored together,
// in one transaction: fewer store writes (fsyncs) than batches, nothing lost, the chain
// intact across the batches of one write.
TEST_F(AuditLogRealKeydTest, BatchesWaitingForTheWriterShareOneTransaction) {
  CountingKeyd counting(keyd_.get());
  auto s = NewKeydAuditSigner(&counting);
  ASSERT_TRUE(s.ok()) << s.status().message();
  signer_ = std::move(*s);
  ASSERT_TRUE(Reopen().ok());
  flaky_->write_delay_ms = 10;  // a slow disk: batches queue up behind a write
  flaky_->writes = 0;
  counting.batches = 0;
  std::vector<std::thread> ts;
  std::atomic<int> failed{0};
  for (int t = 0; t < 24; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        auto r = log_->Append(
            {{"type", "test"}, {"tenant", "dev"}, {"reason", std::to_string(t * 100 + i)}});
        if (!r.ok()) ++failed;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(log_->size(), 240u);
  EXPECT_LT(flaky_->writes.load(), counting.batches.load())
      << "every batch was stored in a transaction of its own";
  flaky_->write_delay_ms = 0;
  ASSERT_TRUE(Reopen().ok());  // verifies every signature and the chain
  for (uint64_t i = 1; i < 240; ++i) {
    auto e = nlohmann::json::parse(ReadEntry(i));
    EXPECT_EQ(e["prev"], HexHash(LeafHash(AsBytes(ReadEntry(i - 1))))) << i;
  }
}

// audit.sign_batch_next (docs/formats.md §1.2): keyd continues only its own chain, from
// the last batch it signed whole, at the next index.
TEST_F(AuditLogTest, KeydContinuesOnlyItsOwnChainAtTheNextIndex) {
  const auto body = [](uint64_t i) {
    return R"({"index":)" + std::to_string(i) + R"(,"tenant":"d","time":"t","v":2})";
  };
  const auto next = [&](uint64_t i) {
    return keyd_->CallBinary(EncodeSignBatchRequest(std::nullopt, {SignItem{body(i), {}}}));
  };
  const auto prev_of = [](const std::string& reply) {
    auto e = DecodeSignBatchReply(reply, 1);
    EXPECT_TRUE(e.ok());
    return e.ok() ? nlohmann::json::parse((*e)[0])["prev"].get<std::string>() : "";
  };
  const auto leaf_of = [](const std::string& reply) {
    auto e = DecodeSignBatchReply(reply, 1);
    return e.ok() ? HexHash(LeafHash(AsBytes((*e)[0]))) : "";
  };
  // Nothing signed yet: nothing to continue.
  // (The in-process client reports every keyd error as Unavailable; the message says which.)
  const auto refused = [](const StatusOr<std::string>& r) {
    return !r.ok() && r.status().message().find("audit.sign_batch_next") != std::string::npos;
  };
  EXPECT_TRUE(refused(next(0)));
  Hash start{};
  start[0] = 7;
  auto first = keyd_->CallBinary(EncodeSignBatchRequest(start, {SignItem{body(5), {}}}));
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(prev_of(*first), HexHash(start));
  // Not the next index: refused, and the chain stays where it was.
  EXPECT_TRUE(refused(next(5)));
  EXPECT_TRUE(refused(next(7)));
  auto second = next(6);
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(prev_of(*second), leaf_of(*first));
  // A batch refused for a bad entry does not move the chain either.
  std::vector<SignItem> bad = {{body(7), {}},
                               {R"({"index":8,"sig":"x","tenant":"d","time":"t","v":2})", {}}};
  EXPECT_FALSE(keyd_->CallBinary(EncodeSignBatchRequest(std::nullopt, bad)).ok());
  auto third = next(7);
  ASSERT_TRUE(third.ok()) << third.status().message();
  EXPECT_EQ(prev_of(*third), leaf_of(*second));
  // An explicit prev restarts the chain; next continues from there.
  auto restart = keyd_->CallBinary(EncodeSignBatchRequest(Hash{}, {SignItem{body(0), {}}}));
  ASSERT_TRUE(restart.ok());
  EXPECT_TRUE(refused(next(8)));
  auto fourth = next(1);
  ASSERT_TRUE(fourth.ok()) << fourth.status().message();
  EXPECT_EQ(prev_of(*fourth), leaf_of(*restart));
  // A truncated next frame is refused.
  const std::string f = EncodeSignBatchRequest(std::nullopt, {SignItem{body(2), {}}});
  EXPECT_FALSE(keyd_->CallBinary(f.substr(0, f.size() - 1)).ok());
}

// A signer that, once, sends a batch chained from the wrong place (as a confused or
// hostile keyd answer would look): the writer must refuse to store it.
class MisChainingSigner final : public AuditSigner {
 public:
  explicit MisChainingSigner(AuditSigner* real) : real_(real) {}
  const VerifierKey& key() const override { return real_->key(); }
  StatusOr<std::vector<std::string>> SignEntries(const Hash& prev,
                                                 const std::vector<nlohmann::json>& e) override {
    return real_->SignEntries(prev, e);
  }
  StatusOr<std::vector<std::string>> SignItems(const Hash& prev,
                                               std::vector<SignItem> items) override {
    return real_->SignItems(prev, std::move(items));
  }
  std::unique_ptr<PendingBatch> SubmitItems(const std::optional<Hash>& prev,
                                            std::vector<SignItem> items) override {
    if (mischain_next.exchange(false)) {
      Hash wrong{};
      wrong.fill(0x55);
      return real_->SubmitItems(wrong, std::move(items));
    }
    return real_->SubmitItems(prev, std::move(items));
  }
  StatusOr<std::string> SignCheckpoint(const std::string& text) override {
    return real_->SignCheckpoint(text);
  }
  std::atomic<bool> mischain_next{false};

 private:
  AuditSigner* real_;
};

TEST_F(AuditLogTest, WriterRefusesABatchThatDoesNotChainFromTheStoredLog) {
  auto mis = std::make_unique<MisChainingSigner>(signer_.get());
  MisChainingSigner* m = mis.get();
  std::unique_ptr<AuditSigner> real = std::move(signer_);
  signer_ = std::move(mis);
  ASSERT_TRUE(Reopen().ok());
  AppendN(3);
  m->mischain_next = true;
  auto r = log_->Append({{"type", "test"}, {"tenant", "dev"}, {"reason", "mischained"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("does not chain"), std::string::npos) << r.status().message();
  EXPECT_EQ(log_->size(), 3u);
  AppendN(2, "after");
  EXPECT_EQ(log_->size(), 5u);
  ASSERT_TRUE(Reopen().ok());  // the stored chain verifies: nothing mis-chained got in
  EXPECT_EQ(log_->size(), 5u);
  log_.reset();
  signer_ = std::move(real);  // before `m`'s target goes
}

TEST_F(AuditLogTest, FailedWritesWithBatchesInFlightLoseNothingAcknowledged) {
  FailedWritesLoseNothingAcknowledged();
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
  // The binary audit.sign_batch frame: keyd signs only canonical v2 entry bodies whose
  // prev it sets itself.
  const auto sign = [&](const std::string& body) {
    return keyd_->CallBinary(EncodeSignBatchRequest(Hash{}, {SignItem{body, std::nullopt}}));
  };
  EXPECT_TRUE(sign(R"({"index":0,"tenant":"d","time":"t","v":2})").ok());
  for (const std::string bad : {
           R"({"index":0,"sig":"x","tenant":"d","time":"t","v":2})",    // carries sig
           R"({"index":0,"prev":"00","tenant":"d","time":"t","v":2})",  // carries prev
           R"({"index":0,"tenant":"d","time":"t","user_ref":"u","v":2})",
           R"({"index":0,"tenant":"d","time":"t","user":"bob","v":2})",
           R"({"index":0,"tenant":"d","time":"t","v":3})",        // not v2
           R"({"index":-1,"tenant":"d","time":"t","v":2})",       // bad index
           R"({"index":0,"tenant":1,"time":"t","v":2})",          // tenant not a string
           R"({"tenant":"d","index":0,"time":"t","v":2})",        // not canonical
           R"({"index":0, "tenant":"d","time":"t","v":2})",       // not canonical
           R"({"index":0,"tenant":"d","time":"t","v":2,"v":2})",  // duplicate
           R"({"index":0,"tenant":"\u0064","time":"t","v":2})",   // escape not canonical
           "toani.local/audit/x\n1\nAAAA\n",                      // a checkpoint note
           R"([{"index":0,"tenant":"d","time":"t","v":2}])",
       }) {
    EXPECT_FALSE(sign(bad).ok()) << bad;
  }
  // Non-consecutive indices in one batch; trailing bytes; a malformed frame.
  std::vector<SignItem> two = {{R"({"index":0,"tenant":"d","time":"t","v":2})", std::nullopt},
                               {R"({"index":2,"tenant":"d","time":"t","v":2})", std::nullopt}};
  EXPECT_FALSE(keyd_->CallBinary(EncodeSignBatchRequest(Hash{}, two)).ok());
  std::string frame = EncodeSignBatchRequest(Hash{}, {two[0]});
  EXPECT_FALSE(keyd_->CallBinary(frame + "x").ok());
  EXPECT_FALSE(keyd_->CallBinary(frame.substr(0, frame.size() - 1)).ok());
}

// keyd's one-pass canonical check agrees with the full RFC 8785 implementation, and
// inserting members keeps an entry canonical.
TEST(SignFrame, ScanAgreesWithCanonicalization) {
  for (const std::string s : {
           R"({"a":1,"b":[true,false,null,-5,{"x":"y"}],"c":"\u001f\n\"\\"})",
           R"({"a":1.5,"é":"ü","𝄞":2})",  // decided by the slow path
           R"({"a":1,"b":2})",
           R"({})",
           R"({"k":[]})",
           R"({"n":1.2345678901234568e+22})",
       }) {
    auto members = ScanCanonicalObject(s);
    ASSERT_TRUE(members.ok()) << s;
    auto extra = InsertMembers(s, *members, {{"prev", R"("prev":"00")"}});
    auto canon = CanonicalizeJsonText(extra);
    ASSERT_TRUE(canon.ok()) << extra;
    EXPECT_EQ(*canon, extra);
  }
  for (const std::string s :
       {R"({"b":1,"a":2})", R"({"a":01})", R"({"a":-0})", R"({"a":1.50})", R"({"a":"\u0041"})",
        R"({"a":"\/"})", R"({"a":1 })", R"({"a":1}x)", R"({"a":1,"a":1})", R"([1])", R"("s")",
        R"({"a":"\u001F"})", R"({"a":1e3})", R"({"n":123456789012345678})", "{\"a\":\"\x01\"}"}) {
    EXPECT_FALSE(ScanCanonicalObject(s).ok()) << s;
  }
}

// What a tlog-witness answers decides: a larger size (409) is a rollback, a conflict at
// the size we sent (409) or a refused proof (422) is a fork — all fault the log; an
// outage proves nothing. The real HTTPS peer: AuditServer.HttpWitnessDetectsRollbackAndFork.
TEST_F(AuditLogTest, HttpWitnessAnswersFaultTheLogOnlyOnEvidence) {
  struct Case {
    int status;
    std::string body;   // "" = echo the old size we sent
    const char* fault;  // nullptr: no fault
  };
  for (const Case& c : std::vector<Case>{{409, "10\n", "rolled back"},
                                         {409, "", "forked"},
                                         {422, "bad proof\n", "forked"},
                                         {503, "down\n", nullptr},
                                         {404, "unknown log\n", nullptr}}) {
    ASSERT_TRUE(Reopen().ok());
    if (log_->size() == 0) AppendN(4);
    auto post = [&](const std::string&, const std::string& body) -> StatusOr<ClientResponse> {
      ClientResponse r;
      r.status = c.status;
      r.content_type = c.status == 409 ? "text/x.tlog.size" : "text/plain";
      r.body = c.body.empty() ? body.substr(4, body.find('\n') - 4) + "\n" : c.body;
      return r;
    };
    std::vector<std::unique_ptr<WitnessSink>> sinks;
    sinks.push_back(NewHttpWitnessSink("https://w.example", {}, post));
    WitnessPublisher pub(log_.get(), std::move(sinks), std::chrono::hours(1));
    EXPECT_FALSE(pub.PublishNow().ok());
    if (c.fault == nullptr) {
      EXPECT_FALSE(log_->Fault().has_value()) << c.status;
      EXPECT_TRUE(log_->Append({{"type", "x"}, {"tenant", "dev"}}).ok());
    } else {
      ASSERT_TRUE(log_->Fault().has_value()) << c.status;
      EXPECT_NE(log_->Fault()->find(c.fault), std::string::npos) << *log_->Fault();
      EXPECT_EQ(log_->Append({{"type", "x"}, {"tenant", "dev"}}).status().code(),
                StatusCode::kUnavailable);
    }
  }
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
