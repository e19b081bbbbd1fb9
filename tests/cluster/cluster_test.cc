// Scale-out acceptance (issue 9): a real PostgreSQL and a real Redis 7 started by the test,
// three `toani server` nodes (each with its own keyd, unsealed with the same Shamir
// shares), a concurrent mixed workload through all of them — credentials added on one
// node used on another, policies applied on a third, tokens minted on one node executed
// on another, approvals asked on one node, granted on a second and redeemed on a third,
// a rate limit counted across all nodes, replays tried on every node — and the sequencing
// node killed with SIGKILL
// mid-run. Then: no token ran twice, every acknowledged execution is in the log, the log
// exported by a survivor passes `toani audit verify`, and the workload finished on the
// surviving nodes. Finally Redis is stopped: executions on every node fail closed.
#include <gtest/gtest.h>

#include <atomic>
#include <ctime>
#include <functional>
#include <map>
#include <mutex>
#include <set>

#include "cluster/cluster_harness.h"

namespace toani::testing {
namespace {

using nlohmann::json;

struct Acked {
  std::string execution_id, jti_token;
  uint64_t start_index = 0;
  json finish_index;
};

TEST(Cluster, ThreeNodesMixedWorkloadSurvivesTheSequencerBeingKilled) {
  Cluster c({"--resolver-override", "*.toani.test=127.0.0.1"});
  ASSERT_EQ(c.StartBackends(), "");
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c.AddNode(), "") << "node " << i + 1;
  auto& nodes = c.nodes();
  ClusterNode& n1 = *nodes[0];
  ClusterNode& n2 = *nodes[1];
  ClusterNode& n3 = *nodes[2];

  // A node whose keyd holds other keys is refused by the cluster (fresh keyd state).
  {
    ClusterNode bad;
    bad.data = c.root() + "/bad";
    std::string out;
    cfs::create_directories(bad.data);
    std::error_code ec;
    cfs::copy(n1.data + "/pki", bad.data + "/pki", cfs::copy_options::recursive, ec);
    // Dev mode makes its own L0: the cluster check must refuse it at start.
    int rc = RunShell(ToaniBin("toani") + " server --dev --data " + bad.data +
                          " --listen 127.0.0.1:0 --store " + c.pg_url() + " --replay-store " +
                          c.redis_url() + " --node bad",
                      "", &out);
    EXPECT_NE(rc, 0) << out;
    EXPECT_NE(out.find("another root key"), std::string::npos) << out;
  }

  const std::string secret = "sk_cluster_" + std::to_string(::getpid());
  auto bank = StartBank(n1.data + "/pki", c.root(), secret);
  ASSERT_TRUE(bank);
  const uint16_t port = bank->server->port();

  // Credential added through node 1; policy applied through node 3.
  auto cred1 = AddCredential(n1, "bank-key-1", secret);
  ASSERT_TRUE(cred1.ok()) << cred1.status().message();
  auto ap = ApplySignedPolicy(n1, n3, Policy("bank1", 1, *cred1, port));
  ASSERT_TRUE(ap.ok() && ap->status == 201) << (ap.ok() ? ap->body : ap.status().message());

  std::mutex mu;
  std::vector<Acked> acked;
  std::map<std::string, int> successes_per_token;
  std::atomic<int> replays_refused{0}, transport_errors{0}, authorize_ok{0};
  std::atomic<bool> killed{false};
  std::atomic<int> done_after_kill{0};

  auto alive = [&](size_t i) -> ClusterNode* {
    ClusterNode* n = nodes[i % nodes.size()].get();
    return n->Alive() ? n : nullptr;
  };
  // One worker: authorize on node a, execute on node b (another), replay on node c.
  auto worker = [&](int w, int rounds, const std::string& policy) {
    for (int r = 0; r < rounds; ++r) {
      const json params = {{"account", std::to_string(w * 1000 + r)}};
      std::string token;
      for (size_t k = 0; k < 6 && token.empty(); ++k) {
        ClusterNode* a = alive(w + r + k);
        if (a == nullptr) continue;
        auto au = a->Call("agent", "POST", "/v1/authorize",
                          {{"action", policy + ".balance"}, {"params", params}});
        if (!au.ok() || au->status >= 500) {
          ++transport_errors;
          continue;
        }
        ASSERT_EQ(au->status, 200) << au->body;
        token = json::parse(au->body).value("token", "");
        ++authorize_ok;
      }
      ASSERT_FALSE(token.empty()) << "no node would authorize";
      bool executed = false;
      for (size_t k = 1; k < 7 && !executed; ++k) {
        ClusterNode* b = alive(w + r + k);
        if (b == nullptr) continue;
        auto ex =
            b->Call("agent", "POST", "/v1/executions", {{"token", token}, {"params", params}});
        if (!ex.ok() || ex->status >= 500) {
          ++transport_errors;
          // The node may have died after consuming the token: it can never run again.
          if (ex.ok() || killed) break;
          continue;
        }
        if (ex->status == 409) break;  // consumed by a node that died mid-request
        ASSERT_EQ(ex->status, 200) << ex->body;
        json body = json::parse(ex->body);
        ASSERT_TRUE(body.contains("result")) << ex->body;
        EXPECT_EQ(body["result"].value("status", 0), 200) << ex->body;
        // The agent never sees the credential.
        EXPECT_EQ(ex->body.find(secret), std::string::npos);
        std::lock_guard<std::mutex> l(mu);
        acked.push_back({body.value("execution_id", ""), token,
                         body["receipt"].value("audit_index", uint64_t{0}),
                         body["receipt"]["finish_audit_index"]});
        ++successes_per_token[token];
        executed = true;
        if (killed) ++done_after_kill;
      }
      // The same token again, on yet another node: refused (single use across nodes).
      if (executed) {
        ClusterNode* z = alive(w + r + 2);
        if (z != nullptr) {
          auto again =
              z->Call("agent", "POST", "/v1/executions", {{"token", token}, {"params", params}});
          if (again.ok() && again->status < 500) {
            EXPECT_EQ(again->status, 409) << again->body;
            if (again->status == 409) ++replays_refused;
            if (again->status == 200) {
              std::lock_guard<std::mutex> l(mu);
              ++successes_per_token[token];
            }
          }
        }
      }
    }
  };

  // Approvals and limits are shared (PostgreSQL, Redis): bank3.balance needs one human
  // approver; bank3.limited allows 5 authorizations per day for the whole cluster.
  {
    json doc = Policy("bank3", 1, *cred1, port);
    json limited = doc["actions"]["bank3.balance"];
    doc["actions"]["bank3.balance"]["approval"] = {{"approvers", 1}, {"ttl_seconds", 900}};
    limited["rate_limits"] = {{{"per", "action"}, {"max", 5}, {"window_seconds", 86400}}};
    doc["actions"]["bank3.limited"] = limited;
    ap = ApplySignedPolicy(n2, n2, doc);
    ASSERT_TRUE(ap.ok() && ap->status == 201) << (ap.ok() ? ap->body : ap.status().message());
  }
  // 12 authorizations at once, 4 per node: exactly 5 are admitted cluster-wide (a burst that
  // straddles midnight UTC would see two windows: then it is tried again once).
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int64_t day = std::time(nullptr) / 86400;
    std::atomic<int> admitted{0}, limited{0};
    std::vector<std::thread> burst;
    for (int i = 0; i < 12; ++i) {
      burst.emplace_back([&, i] {
        auto r = nodes[i % 3]->Call(
            "agent", "POST", "/v1/authorize",
            {{"action", "bank3.limited"}, {"params", {{"account", std::to_string(900 + i)}}}});
        if (r.ok() && r->status == 200) ++admitted;
        if (r.ok() && r->status == 403 && r->body.find("rate") != std::string::npos) ++limited;
      });
    }
    for (auto& t : burst) t.join();
    if (std::time(nullptr) / 86400 != day && attempt == 0) continue;
    EXPECT_EQ(admitted.load(), 5);
    EXPECT_EQ(limited.load(), 7);
    break;
  }

  // One approval flow: authorize on node a (202), approve as a human on node a+1, redeem
  // the token on node a+2, execute on node a. Retried on survivors when a node dies.
  std::atomic<int> approvals_redeemed{0};
  auto on_alive = [&](size_t start, const std::function<bool(ClusterNode&)>& step) {
    for (size_t k = 0; k < 6; ++k) {
      ClusterNode* n = alive(start + k);
      if (n != nullptr && step(*n)) return true;
    }
    return false;
  };
  auto approval_worker = [&](int w, int rounds) {
    for (int r = 0; r < rounds; ++r) {
      const json params = {{"account", std::to_string(50000 + w * 100 + r)}};
      const size_t a = static_cast<size_t>(w + r);
      std::string approval_id;
      ASSERT_TRUE(on_alive(a, [&](ClusterNode& n) {
        auto au = n.Call("agent", "POST", "/v1/authorize",
                         {{"action", "bank3.balance"}, {"params", params}});
        if (!au.ok() || au->status >= 500) return false;
        EXPECT_EQ(au->status, 202) << au->body;
        approval_id = json::parse(au->body).value("approval_id", "");
        return true;
      })) << "no node would ask for approval";
      ASSERT_FALSE(approval_id.empty());
      const bool approved = on_alive(a + 1, [&](ClusterNode& n) {
        auto ok = n.Call("admin", "POST", "/v1/approvals/" + approval_id + "/approve",
                         {{"comment", "cluster test"}});
        if (!ok.ok() || ok->status >= 500) return false;
        if (ok->status == 409) {  // a node died after recording it: it must show approved
          auto g = n.Call("admin", "GET", "/v1/approvals/" + approval_id);
          EXPECT_TRUE(g.ok() && g->status == 200 &&
                      json::parse(g->body).value("status", "") == "approved")
              << (g.ok() ? g->body : "");
          return true;
        }
        EXPECT_EQ(ok->status, 200) << ok->body;
        return true;
      });
      ASSERT_TRUE(approved);
      std::string token;
      on_alive(a + 2, [&](ClusterNode& n) {
        for (int poll = 0; poll < 20; ++poll) {
          auto t = n.Call("agent", "POST", "/v1/approvals/" + approval_id + "/token");
          if (!t.ok() || t->status >= 500) return false;
          const json b = json::parse(t->body);
          if (t->status == 200) {
            token = b.value("token", "");
            EXPECT_EQ(b["hitl"].value("confirmed", false), true) << t->body;
            return true;
          }
          const std::string err = b.value("error", "");
          if (err == "invalid_grant") return true;  // issued to a node that then died
          EXPECT_TRUE(err == "slow_down" || err == "authorization_pending") << t->body;
          std::this_thread::sleep_for(std::chrono::seconds(b.value("interval", 1)));
        }
        return true;
      });
      if (token.empty()) continue;
      on_alive(a, [&](ClusterNode& n) {
        auto ex = n.Call("agent", "POST", "/v1/executions", {{"token", token}, {"params", params}});
        if (!ex.ok() || ex->status >= 500) return ex.ok() || killed ? true : false;
        if (ex->status == 409) return true;
        EXPECT_EQ(ex->status, 200) << ex->body;
        if (ex->status != 200) return true;
        json body = json::parse(ex->body);
        std::lock_guard<std::mutex> l(mu);
        acked.push_back({body.value("execution_id", ""), token,
                         body["receipt"].value("audit_index", uint64_t{0}),
                         body["receipt"]["finish_audit_index"]});
        ++successes_per_token[token];
        ++approvals_redeemed;
        if (killed) ++done_after_kill;
        return true;
      });
    }
  };

  // Phase 1: credential 2 added on node 2 while workers run; its policy applied on node 1.
  std::vector<std::thread> ts;
  for (int w = 0; w < 6; ++w) ts.emplace_back(worker, w, 4, "bank1");
  for (int w = 0; w < 3; ++w) ts.emplace_back(approval_worker, w, 3);
  auto cred2 = AddCredential(n2, "bank-key-2", secret);
  ASSERT_TRUE(cred2.ok()) << cred2.status().message();
  ap = ApplySignedPolicy(n1, n1, Policy("bank2", 1, *cred2, port));
  ASSERT_TRUE(ap.ok() && ap->status == 201) << (ap.ok() ? ap->body : ap.status().message());
  for (int w = 6; w < 9; ++w) ts.emplace_back(worker, w, 4, "bank2");
  // Two executions of one token at the same moment on two nodes: exactly one runs.
  {
    const json params = {{"account", "777"}};
    auto au = n2.Call("agent", "POST", "/v1/authorize",
                      {{"action", "bank1.balance"}, {"params", params}});
    ASSERT_TRUE(au.ok() && au->status == 200);
    const std::string token = json::parse(au->body)["token"];
    std::atomic<int> ok{0}, conflict{0};
    std::thread x([&] {
      auto r = n1.Call("agent", "POST", "/v1/executions", {{"token", token}, {"params", params}});
      if (r.ok() && r->status == 200) ++ok;
      if (r.ok() && r->status == 409) ++conflict;
    });
    std::thread y([&] {
      auto r = n3.Call("agent", "POST", "/v1/executions", {{"token", token}, {"params", params}});
      if (r.ok() && r->status == 200) ++ok;
      if (r.ok() && r->status == 409) ++conflict;
    });
    x.join();
    y.join();
    EXPECT_EQ(ok.load(), 1);
    EXPECT_EQ(conflict.load(), 1);
  }

  // Phase 2: kill -9 the sequencing node while the workers are still running.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ClusterNode* seq = c.Sequencer();
  ASSERT_NE(seq, nullptr) << "no node says it sequences the audit log";
  const std::string seq_name = seq->name;
  c.Kill(*seq);
  killed = true;
  // More work arrives after the kill and lands on the survivors.
  for (int w = 9; w < 12; ++w) ts.emplace_back(worker, w, 3, w % 2 ? "bank1" : "bank2");
  ts.emplace_back(approval_worker, 3, 3);
  for (auto& t : ts) t.join();
  EXPECT_GE(approvals_redeemed.load(), 6) << "approval flows across nodes did not complete";
  EXPECT_GT(done_after_kill.load(), 0) << "nothing finished after the sequencer was killed";

  // A survivor took over sequencing.
  ClusterNode* next = nullptr;
  for (int i = 0; i < 200 && next == nullptr; ++i) {
    next = c.Sequencer();
    if (next == nullptr) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_NE(next, nullptr);
  EXPECT_NE(next->name, seq_name);

  // No token ran twice.
  for (const auto& [tok, n] : successes_per_token) EXPECT_EQ(n, 1) << tok.substr(0, 40);
  EXPECT_GT(replays_refused.load(), 0);
  ASSERT_GE(acked.size(), 30u);

  // One log: exported by a survivor (complete: the hand-off queue is drained), verified
  // offline against the cluster's verifier key.
  ClusterNode* survivor = next;
  std::string out;
  ASSERT_EQ(RunShell(survivor->Cli("audit key"), "", &out), 0) << out;
  const std::string vkey = out.substr(0, out.find('\n'));
  std::vector<json> list;
  {
    auto root = survivor->Call("admin", "GET", "/v1/audit/root");
    ASSERT_TRUE(root.ok() && root->status == 200);
    const uint64_t size = json::parse(root->body).value("size", uint64_t{0});
    for (uint64_t from = 0; from < size;) {
      auto e = survivor->Call(
          "admin", "GET",
          "/v1/audit/entries?from=" + std::to_string(from) + "&to=" + std::to_string(size));
      ASSERT_TRUE(e.ok() && e->status == 200) << (e.ok() ? e->body : e.status().message());
      json page = json::parse(e->body);
      ASSERT_GT(page["entries"].size(), 0u);
      for (auto& x : page["entries"]) list.push_back(x);
      from = page.value("to", size);
    }
    ASSERT_EQ(list.size(), size);
  }
  const std::string bundle = c.root() + "/audit.bundle";
  ASSERT_EQ(RunShell(survivor->Cli("audit export --out " + bundle), "", &out), 0) << out;
  ASSERT_EQ(
      RunShell(ToaniBin("toani") + " audit verify " + bundle + " --key '" + vkey + "'", "", &out),
      0)
      << out;
  EXPECT_NE(out.find("VERIFIED"), std::string::npos) << out;

  // Every acknowledged execution is in the log: its start at the receipt's index, and its
  // finish; no jti started twice.
  std::map<std::string, json> started, finished;
  std::map<std::string, int> starts_per_jti;
  std::map<std::string, int> approvals_logged;
  for (const json& e : list) {
    const std::string type = e.value("type", "");
    if (type == "execution.started") {
      started[e.value("execution_id", "")] = e;
      ++starts_per_jti[e.value("jti", "")];
    }
    if (type == "execution.finished") finished[e.value("execution_id", "")] = e;
    if (type == "approval.requested") ++approvals_logged["requested"];
    if (type == "approval.approved") ++approvals_logged["approved"];
  }
  // Every approval asked and granted across the nodes is in the one log.
  EXPECT_GE(approvals_logged["requested"], approvals_redeemed.load());
  EXPECT_GE(approvals_logged["approved"], approvals_redeemed.load());
  for (const auto& [jti, n] : starts_per_jti) EXPECT_EQ(n, 1) << "jti started twice: " << jti;
  for (const Acked& a : acked) {
    ASSERT_TRUE(started.count(a.execution_id)) << a.execution_id;
    EXPECT_EQ(started[a.execution_id].value("index", uint64_t{0}), a.start_index);
    EXPECT_TRUE(finished.count(a.execution_id)) << "finish missing: " << a.execution_id;
  }
  std::printf(
      "cluster: %zu executions acknowledged (%d after killing %s), %d replays refused, "
      "%d transport errors, %d approvals redeemed, log size %zu, new sequencer %s\n",
      acked.size(), done_after_kill.load(), seq_name.c_str(), replays_refused.load(),
      transport_errors.load(), approvals_redeemed.load(), list.size(), next->name.c_str());

  // Redis gone: executions fail closed on every node (503, nothing reaches the target).
  c.StopRedis();
  const int hits = bank->authorized.load();
  for (auto& np : nodes) {
    if (!np->Alive()) continue;
    const json params = {{"account", "4242"}};
    auto au = np->Call("agent", "POST", "/v1/authorize",
                       {{"action", "bank1.balance"}, {"params", params}});
    ASSERT_TRUE(au.ok() && au->status == 200) << (au.ok() ? au->body : "");
    auto ex = np->Call("agent", "POST", "/v1/executions",
                       {{"token", json::parse(au->body)["token"]}, {"params", params}});
    ASSERT_TRUE(ex.ok());
    EXPECT_EQ(ex->status, 503) << ex->body;
    EXPECT_NE(ex->body.find("replay store unavailable"), std::string::npos) << ex->body;
    // Rate limits counted in Redis cannot be checked: denied, saying why.
    auto lim = np->Call("agent", "POST", "/v1/authorize",
                        {{"action", "bank3.limited"}, {"params", {{"account", "1"}}}});
    ASSERT_TRUE(lim.ok());
    EXPECT_EQ(lim->status, 403) << lim->body;
    EXPECT_NE(lim->body.find("limits_unavailable"), std::string::npos) << lim->body;
  }
  EXPECT_EQ(bank->authorized.load(), hits);
  bank->server->Stop();
}

}  // namespace
}  // namespace toani::testing
