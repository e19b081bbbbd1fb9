// The audit log through the real server (issue 4): kill -9 during a stream of appends
// loses no acknowledged entry and the log verifies after restart; restoring an older copy
// of the database is detected (not ready, appends refused) — from the witness directory,
// and from a C2SP tlog-witness over HTTPS alone (rollback and fork).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "audit/bundle.h"
#include "audit/merkle.h"
#include "audit/note.h"
#include "audit/tiles.h"
#include "common/encoding.h"
#include "common/jcs.h"
#include "crypto/hash.h"
#include "server_harness.h"
#include "tlog_witness.h"

namespace toani::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string ParamsHash(const json& params) {
  return "sha256:" + crypto::Sha256Hex(CanonicalizeJson(params));
}

// One denied authorization = one durable `action.denied` entry before the 404.
long Deny(const ServerHarness& h, const std::string& tag) {
  json body = {{"action", "nope.audit"}, {"params", {{"n", tag}}}};
  auto r = h.Call("agent", "POST", "/v1/authorize", body.dump());
  return r.ok() ? r->status : -1;
}

// Runs a shell command to its end: its wait status, and its output in `out`.
int RunToEnd(const std::string& cmd, std::string* out) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[512];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out->append(buf, n);
  return ::pclose(p);
}

StatusOr<std::string> Export(const ServerHarness& h, audit::VerifierKey* key) {
  auto k = h.CallJson("admin", "GET", "/v1/audit/key");
  if (!k.ok()) return k.status();
  TOANI_ASSIGN_OR_RETURN(*key, audit::ParseVerifierKey(k->value("vkey", "")));
  TOANI_ASSIGN_OR_RETURN(ClientResponse r, h.Call("admin", "GET", "/v1/audit/export", ""));
  if (r.status != 200)
    return Status::Unavailable("export: " + std::to_string(r.status) + " " + r.body);
  return r.body;
}

pid_t ServerPid(const ServerHarness& h) {
  auto j = json::parse(ReadFileOrEmpty(h.data_dir() + "/server.json"), nullptr, false);
  return j.is_object() ? j.value("pid", -1) : -1;
}

TEST(AuditServer, KillNineDuringAppendsLosesNoAcknowledgedEntry) {
  ServerHarness h;
  ASSERT_TRUE(h.Start().ok());
  std::mutex mu;
  std::set<std::string> acked;
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < 6; ++t) {
    ts.emplace_back([&, t] {
      for (int k = 0; !stop; ++k) {
        std::string tag = std::to_string(t) + "-" + std::to_string(k);
        if (Deny(h, tag) == 404) {
          std::lock_guard<std::mutex> l(mu);
          acked.insert(ParamsHash({{"n", tag}}));
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  pid_t pid = ServerPid(h);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  for (auto& t : ts) t.join();
  h.Stop();
  ASSERT_GT(acked.size(), 20u) << "too few appends acknowledged before the kill to mean anything";
  fs::remove(h.data_dir() + "/server.json");
  Status st = h.Start();  // start-up re-verifies every entry and tile
  ASSERT_TRUE(st.ok()) << st.message();
  auto ready = h.Call("admin", "GET", "/readyz", "");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 200) << ready->body;
  audit::VerifierKey key;
  auto bundle = Export(h, &key);
  ASSERT_TRUE(bundle.ok()) << bundle.status().message();
  audit::VerifyReport rep = audit::VerifyBundle(*bundle, key);
  ASSERT_TRUE(rep.ok()) << (rep.failures.empty() ? "" : rep.failures[0]);
  size_t found = 0;
  for (const std::string& hash : acked)
    found += bundle->find("\"params_hash\":\"" + hash + "\"") != std::string::npos;
  EXPECT_EQ(found, acked.size()) << "acknowledged entries lost by kill -9";
}

// One server per data directory: a second one would append to the same audit log with a
// chain of its own. It is refused with a clear message naming the running server, which
// is untouched; once that one stops, the directory is free again.
TEST(AuditServer, ASecondServerOnTheSameDataDirectoryIsRefused) {
  ServerHarness h;
  ASSERT_TRUE(h.Start().ok());
  // `timeout`: if the second server were not refused, it would run until killed.
  std::string out;
  const int st = RunToEnd("timeout 30 " + h.bin("toani") + " server --dev --data " + h.data_dir() +
                              " --listen 127.0.0.1:0 2>&1",
                          &out);
  ASSERT_TRUE(WIFEXITED(st)) << out;
  EXPECT_EQ(WEXITSTATUS(st), 1) << out;
  EXPECT_NE(out.find("another toani server is running with data directory"), std::string::npos)
      << out;
  EXPECT_NE(out.find("pid " + std::to_string(ServerPid(h))), std::string::npos) << out;
  auto ready = h.Call("admin", "GET", "/readyz", "");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 200) << ready->body;
  h.Stop();
  fs::remove(h.data_dir() + "/server.json");
  Status again = h.Start();  // the lock went with the first server
  EXPECT_TRUE(again.ok()) << again.message();
}

// Nor can two servers with data directories of their own share one SQLite store file
// (--store sqlite:PATH): the second is refused before it touches the file.
TEST(AuditServer, ASecondServerOnTheSameSqliteStoreIsRefused) {
  ServerHarness h;
  const std::string db = h.data_dir() + "-shared.db";
  h.extra_args = {"--store", "sqlite:" + db};
  ASSERT_TRUE(h.Start().ok());
  ASSERT_EQ(Deny(h, "first"), 404);  // the first server writes the shared file
  const std::string other = h.data_dir() + "-other";
  std::string out;
  const int st = RunToEnd("timeout 30 " + h.bin("toani") + " server --dev --data " + other +
                              " --store sqlite:" + db + " --listen 127.0.0.1:0 2>&1",
                          &out);
  ASSERT_TRUE(WIFEXITED(st)) << out;
  EXPECT_EQ(WEXITSTATUS(st), 1) << out;
  EXPECT_NE(out.find("another toani server is using the SQLite store " + db), std::string::npos)
      << out;
  EXPECT_EQ(Deny(h, "still"), 404);  // the first one is untouched
  auto ready = h.Call("admin", "GET", "/readyz", "");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 200) << ready->body;
  h.Stop();
  fs::remove_all(other);
  fs::remove(db);
  fs::remove(db + "-wal");
  fs::remove(db + "-shm");
}

TEST(AuditServer, RestoringAnOlderDatabaseIsDetected) {
  ServerHarness h;
  ASSERT_TRUE(h.Start().ok());
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Deny(h, "old" + std::to_string(i)), 404);
  h.Stop();
  const std::string db = h.data_dir() + "/toani.db";
  fs::copy_file(db, h.data_dir() + "/old.db");
  fs::remove(h.data_dir() + "/server.json");
  ASSERT_TRUE(h.Start().ok());
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Deny(h, "new" + std::to_string(i)), 404);
  // Wait until the witness directory holds the newest checkpoint.
  auto cp = h.Call("admin", "GET", "/v1/audit/checkpoint", "");
  ASSERT_TRUE(cp.ok() && cp->status == 200);
  for (int i = 0; i < 200 && ReadFileOrEmpty(h.data_dir() + "/witness/checkpoint") != cp->body;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(ReadFileOrEmpty(h.data_dir() + "/witness/checkpoint"), cp->body);
  h.Stop();
  fs::remove(db + "-wal");
  fs::remove(db + "-shm");
  fs::copy_file(h.data_dir() + "/old.db", db, fs::copy_options::overwrite_existing);
  fs::remove(h.data_dir() + "/server.json");
  ASSERT_TRUE(h.Start().ok());
  auto health = h.Call("admin", "GET", "/healthz", "");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);  // alive...
  auto ready = h.Call("admin", "GET", "/readyz", "");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 503);  // ...but not ready
  EXPECT_NE(ready->body.find("rolled back"), std::string::npos) << ready->body;
  EXPECT_EQ(Deny(h, "after"), 503);  // and nothing more is appended (fail closed)
}

uint64_t CheckpointSize(const ServerHarness& h) {
  auto cp = h.Call("admin", "GET", "/v1/audit/checkpoint", "");
  if (!cp.ok() || cp->status != 200) return UINT64_MAX;
  auto c = audit::ParseCheckpointText(cp->body.substr(0, cp->body.find("\n\n") + 1));
  return c.ok() ? c->size : UINT64_MAX;
}

// Restores `saved` over the database, and removes everything else the server keeps about
// what it published (the directory sink and the kept copies of witness answers): the
// attacker restored the whole data directory, so only the HTTP witness knows better.
void RestoreDatabase(const ServerHarness& h, const std::string& saved, const std::string& wdir) {
  const std::string db = h.data_dir() + "/toani.db";
  fs::remove(db + "-wal");
  fs::remove(db + "-shm");
  fs::copy_file(saved, db, fs::copy_options::overwrite_existing);
  fs::remove_all(wdir);
  fs::remove_all(h.data_dir() + "/audit/witnesses");
  fs::remove(h.data_dir() + "/server.json");
}

TEST(AuditServer, HttpWitnessDetectsRollbackAndFork) {
  ServerHarness h;
  const std::string wdir = h.data_dir() + "-witness-dir";
  h.extra_args = {"--witness-dir", wdir};
  ASSERT_TRUE(h.Start().ok());  // makes the dev PKI the witness serves with
  auto k = h.CallJson("admin", "GET", "/v1/audit/key");
  ASSERT_TRUE(k.ok());
  auto key = audit::ParseVerifierKey(k->value("vkey", ""));
  ASSERT_TRUE(key.ok());
  h.Stop();
  auto w =
      TlogWitness::Start(h.data_dir() + "/pki/server.pem", h.data_dir() + "/pki/server-key.pem");
  ASSERT_TRUE(w.ok()) << w.status().message();
  (*w)->Trust(*key);
  h.extra_args = {"--witness-dir", wdir, "--witness-url", (*w)->url()};
  const auto witnessed = [&](uint64_t size) {
    for (int i = 0; i < 400 && (*w)->Size(key->name) != size; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return (*w)->Size(key->name) == size;
  };

  fs::remove(h.data_dir() + "/server.json");
  ASSERT_TRUE(h.Start().ok());
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Deny(h, "a" + std::to_string(i)), 404);
  const uint64_t n0 = CheckpointSize(h);
  ASSERT_TRUE(witnessed(n0)) << "the witness never cosigned size " << n0;
  EXPECT_EQ(h.Call("admin", "GET", "/readyz", "")->status, 200);
  h.Stop();
  const std::string saved = h.data_dir() + "/../old.db";
  fs::copy_file(h.data_dir() + "/toani.db", saved);
  fs::remove(h.data_dir() + "/server.json");
  ASSERT_TRUE(h.Start().ok());
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Deny(h, "b" + std::to_string(i)), 404);
  const uint64_t n1 = CheckpointSize(h);
  ASSERT_GT(n1, n0);
  ASSERT_TRUE(witnessed(n1));
  h.Stop();

  // Rollback: the older database (and no local trace of what was published).
  RestoreDatabase(h, saved, wdir);
  ASSERT_TRUE(h.Start().ok());
  EXPECT_EQ(h.Call("admin", "GET", "/healthz", "")->status, 200);  // alive...
  auto ready = h.Call("admin", "GET", "/readyz", "");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 503) << ready->body;  // ...not ready
  EXPECT_NE(ready->body.find("rolled back"), std::string::npos) << ready->body;
  EXPECT_NE(ready->body.find("witness"), std::string::npos) << ready->body;
  EXPECT_EQ(Deny(h, "after-rollback"), 503);  // appends refused (fail closed)
  EXPECT_GT((*w)->conflicts.load(), 0);
  h.Stop();
  EXPECT_EQ((*w)->Size(key->name), n1);  // the witness did not go back

  // Fork: from the older database, a different history grows past what the witness saw
  // while the witness is unreachable (that alone is no evidence: the server runs).
  RestoreDatabase(h, saved, wdir);
  (*w)->down = true;
  ASSERT_TRUE(h.Start().ok());
  EXPECT_EQ(h.Call("admin", "GET", "/readyz", "")->status, 200);
  for (uint64_t i = 0; i < n1 - n0 + 2; ++i) ASSERT_EQ(Deny(h, "fork" + std::to_string(i)), 404);
  ASSERT_GT(CheckpointSize(h), n1);
  h.Stop();
  (*w)->down = false;
  fs::remove_all(wdir);
  fs::remove(h.data_dir() + "/server.json");
  ASSERT_TRUE(h.Start().ok());
  ready = h.Call("admin", "GET", "/readyz", "");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 503) << ready->body;
  EXPECT_NE(ready->body.find("forked"), std::string::npos) << ready->body;
  EXPECT_GT((*w)->refused_proofs.load(), 0);
  EXPECT_EQ(Deny(h, "after-fork"), 503);
  EXPECT_EQ((*w)->Size(key->name), n1);
}

int RunCli(const ServerHarness& h, const std::string& args, std::string* out) {
  const std::string file = h.data_dir() + "/cli.out";
  int rc = std::system(
      (h.bin("toani") + " --data " + h.data_dir() + " " + args + " > " + file + " 2>&1").c_str());
  *out = ReadFileOrEmpty(file);
  return rc;
}

TEST(AuditServer, TilesProofsAndTheAuditorCliAgree) {
  ServerHarness h;
  ASSERT_TRUE(h.Start().ok());
  for (int i = 0; i < 5; ++i) ASSERT_EQ(Deny(h, "t" + std::to_string(i)), 404);
  std::string out;
  ASSERT_EQ(RunCli(h, "audit key", &out), 0) << out;
  const std::string vkey = out.substr(0, out.find('\n'));
  auto key = audit::ParseVerifierKey(vkey);
  ASSERT_TRUE(key.ok()) << out;
  auto cp_resp = h.Call("admin", "GET", "/v1/audit/checkpoint", "");
  ASSERT_TRUE(cp_resp.ok() && cp_resp->status == 200);
  auto cp = audit::VerifyCheckpoint(cp_resp->body, *key);
  ASSERT_TRUE(cp.ok()) << cp.status().message();
  const std::string old_file = h.data_dir() + "/old.checkpoint";
  std::ofstream(old_file) << cp_resp->body;
  // The partial level-0 tile and entry bundle at this size agree with each other and the root.
  const std::string w = ".p/" + std::to_string(cp->size);
  auto tile = h.Call("admin", "GET", "/v1/audit/tile/0/000" + w, "");
  auto bundle = h.Call("admin", "GET", "/v1/audit/tile/entries/000" + w, "");
  ASSERT_TRUE(tile.ok() && tile->status == 200 && bundle.ok() && bundle->status == 200);
  EXPECT_EQ(tile->content_type, "application/octet-stream");
  auto entries = audit::DecodeEntryBundle(bundle->body);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), cp->size);
  audit::CompactRange range;
  for (size_t i = 0; i < entries->size(); ++i) {
    audit::Hash leaf = audit::LeafHash(AsBytes((*entries)[i]));
    EXPECT_EQ(tile->body.substr(32 * i, 32), std::string(leaf.begin(), leaf.end()));
    range.Append(leaf);
  }
  EXPECT_EQ(range.Root(), cp->root);
  EXPECT_EQ(h.Call("admin", "GET", "/v1/audit/tile/0/000.p/200", "")->status, 404);
  EXPECT_EQ(h.Call("admin", "GET", "/v1/audit/tile/0/0", "")->status, 404);
  // prove: the entry and a C2SP tlog-proof against a checkpoint.
  ASSERT_EQ(RunCli(h, "audit prove --index 2", &out), 0) << out;
  EXPECT_NE(out.find("c2sp.org/tlog-proof@v1\nindex 2\n"), std::string::npos) << out;
  // More entries, then: consistency with the old checkpoint; export; offline verify.
  for (int i = 0; i < 5; ++i) ASSERT_EQ(Deny(h, "u" + std::to_string(i)), 404);
  ASSERT_EQ(RunCli(h, "audit consistency " + old_file + " --key '" + vkey + "'", &out), 0) << out;
  EXPECT_NE(out.find("consistency proof"), std::string::npos) << out;
  const std::string bfile = h.data_dir() + "/audit.bundle";
  ASSERT_EQ(RunCli(h, "audit export --from 3 --out " + bfile, &out), 0) << out;
  h.Stop();  // verification needs no server
  ASSERT_EQ(RunCli(h, "audit verify " + bfile + " --key '" + vkey + "'", &out), 0) << out;
  EXPECT_NE(out.find("VERIFIED"), std::string::npos) << out;
  // A checkpoint of another log (a different key) is refused by consistency and verify.
  std::string other = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
  EXPECT_NE(RunCli(h, "audit verify " + bfile + " --key '" + other + "'", &out), 0) << out;
}

}  // namespace
}  // namespace toani::testing
