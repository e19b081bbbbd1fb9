// The audit log through the real server (issue 4): kill -9 during a stream of appends
// loses no acknowledged entry and the log verifies after restart; restoring an older copy
// of the database is detected (not ready, appends refused).
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "audit/bundle.h"
#include "audit/note.h"
#include "common/jcs.h"
#include "crypto/hash.h"
#include "server_harness.h"

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

}  // namespace
}  // namespace toani::testing
