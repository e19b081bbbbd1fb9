// The PostgreSQL stores against a real PostgreSQL started by the test: migrations (once,
// idempotent, concurrent), credentials, policy versions, the replay table, the audit
// tables' append-only triggers (attacked with raw SQL), and the audit log's cluster
// hand-off: two nodes appending at once through one sequencer, a change of sequencer
// mid-run with no acknowledged entry lost and consistent checkpoints.
#include "store/pg_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <thread>

#include "audit/entry.h"
#include "audit/log.h"
#include "audit/merkle.h"
#include "audit/note.h"
#include "audit/test_util.h"
#include "cluster/postgres_server.h"
#include "security/redis_server.h"
#include "store/pg.h"
#include "store/redis_replay_store.h"

namespace toani {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

testing::PostgresServer* g_pg = nullptr;

class PgEnv : public ::testing::Environment {
 public:
  void SetUp() override {
    g_pg = new testing::PostgresServer();
    std::string err = g_pg->Start();
    ASSERT_EQ(err, "") << err;
  }
  void TearDown() override {
    delete g_pg;
    g_pg = nullptr;
  }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new PgEnv);

// Each test gets its own database so tests do not see each other's rows.
std::string FreshDb(const std::string& name) {
  auto c = store::PgConn::Connect(g_pg->url());
  TOANI_CHECK(c.ok());
  TOANI_CHECK((*c)->ExecScript("DROP DATABASE IF EXISTS " + name).ok());
  TOANI_CHECK((*c)->ExecScript("CREATE DATABASE " + name).ok());
  std::string url = g_pg->url();
  return url.substr(0, url.rfind('/') + 1) + name;
}

std::unique_ptr<store::PgDatabase> OpenDb(const std::string& url, const std::string& node = "n1") {
  auto db = store::PgDatabase::Open(url, node, SystemClock());
  EXPECT_TRUE(db.ok()) << db.status().message();
  return db.ok() ? std::move(*db) : nullptr;
}

TEST(PgStore, MigrationsRunOnceEvenWhenNodesStartTogether) {
  const std::string url = FreshDb("migrate");
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    ts.emplace_back([&] {
      auto db = store::PgDatabase::Open(url, "n", SystemClock());
      if (db.ok() && (*db)->schema_version() == 3) ++ok;  // 3: approvals, limits, executions
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 4);
  auto c = store::PgConn::Connect(url);
  ASSERT_TRUE(c.ok());
  auto r = (*c)->Exec("SELECT COUNT(*) FROM toani_schema_migrations");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Int(0, 0), 3);
  // A schema newer than the build is refused with a clear message.
  ASSERT_TRUE((*c)->ExecScript("INSERT INTO toani_schema_migrations(version) VALUES (99)").ok());
  auto newer = store::PgDatabase::Open(url, "n", SystemClock());
  ASSERT_FALSE(newer.ok());
  EXPECT_NE(newer.status().message().find("newer than this build"), std::string::npos);
}

TEST(PgStore, CredentialsAndPolicies) {
  auto db = OpenDb(FreshDb("creds"));
  ASSERT_TRUE(db);
  store::Store* s = db->store();
  store::CredentialRecord c{"t", "github", "GitHub", "api_key", 1, "blob'\"\\x", "fp", "now"};
  ASSERT_TRUE(s->AddCredential(c).ok());
  EXPECT_EQ(s->AddCredential(c).code(), StatusCode::kAlreadyExists);
  auto got = s->GetCredential("t", "github");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->blob, "blob'\"\\x");
  EXPECT_EQ(s->GetCredential("t", "nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s->GetCredential("other", "github").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*s->CountCredentials(), 1);
  EXPECT_EQ(s->ListCredentials("t")->size(), 1u);

  ASSERT_TRUE(s->PutPolicy({"t", "p", 1, "{\"v\":1}", "a"}).ok());
  ASSERT_TRUE(s->PutPolicy({"t", "p", 2, "{\"v\":2}", "b"}).ok());
  EXPECT_EQ(s->PutPolicy({"t", "p", 2, "{}", "c"}).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s->PutPolicy({"t", "p", 1, "{}", "c"}).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(s->PutPolicy({"t", "q", 5, "{\"q\":5}", "d", "[{\"keyid\":\"k\"}]", "admin"}).ok());
  auto hist = s->PolicyHistory("t", "p");  // issue 5: every version, oldest first
  ASSERT_TRUE(hist.ok());
  ASSERT_EQ(hist->size(), 2u);
  EXPECT_EQ((*hist)[0].version, 1);
  EXPECT_EQ((*hist)[1].document, "{\"v\":2}");
  EXPECT_EQ(s->PolicyHistory("t", "none").status().code(), StatusCode::kNotFound);
  auto q5 = s->GetPolicy("t", "q", 5);
  ASSERT_TRUE(q5.ok());
  EXPECT_EQ(q5->signatures, "[{\"keyid\":\"k\"}]");
  EXPECT_EQ(q5->applied_by, "admin");
  auto latest = s->LatestPolicies("t");
  ASSERT_TRUE(latest.ok());
  ASSERT_EQ(latest->size(), 2u);
  EXPECT_EQ((*latest)[0].version, 2);
  EXPECT_EQ((*latest)[1].policy_id, "q");
  EXPECT_EQ(s->GetPolicy("t", "p", 1)->document, "{\"v\":1}");

  // Concurrent writers of one policy: exactly one of each version wins.
  std::atomic<int> wins{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 8; ++i) {
    ts.emplace_back([&] {
      if (s->PutPolicy({"t", "race", 1, "{}", "x"}).ok()) ++wins;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(wins.load(), 1);
}

TEST(PgStore, ReplayTableConsumesOnce) {
  auto db = OpenDb(FreshDb("replay"));
  ASSERT_TRUE(db);
  const auto exp = SystemClock()() + std::chrono::minutes(5);
  std::atomic<int> ok{0}, dup{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 16; ++i) {
    ts.emplace_back([&] {
      Status st = db->replay()->ConsumeOnce("jti-1", exp);
      if (st.ok()) ++ok;
      if (st.code() == StatusCode::kAlreadyExists) ++dup;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(dup.load(), 15);
}

TEST(PgStore, ClusterValuesMustAgree) {
  auto db = OpenDb(FreshDb("clusterv"));
  ASSERT_TRUE(db);
  EXPECT_TRUE(db->ClaimClusterValue("audit_vkey", "A").ok());
  EXPECT_TRUE(db->ClaimClusterValue("audit_vkey", "A").ok());
  Status other = db->ClaimClusterValue("audit_vkey", "B");
  EXPECT_EQ(other.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(other.message().find("'A'"), std::string::npos);
}

TEST(PgStore, AuditTablesRefuseUpdateDeleteTruncate) {
  const std::string url = FreshDb("appendonly");
  auto db = OpenDb(url);
  ASSERT_TRUE(db);
  store::AuditRow row;
  row.index = 0;
  row.entry = "{}";
  ASSERT_TRUE(db->audit()->AppendBatch({row}, {{0, 0, std::string(8192, 'h')}}).ok());
  // Appending at a taken index or past a gap is refused.
  EXPECT_FALSE(db->audit()->AppendBatch({row}, {}).ok());
  row.index = 5;
  EXPECT_FALSE(db->audit()->AppendBatch({row}, {}).ok());
  EXPECT_EQ(*db->audit()->Size(), 1u);
  auto c = store::PgConn::Connect(url);
  ASSERT_TRUE(c.ok());
  for (const char* sql :
       {"UPDATE audit_log SET entry = '{\"x\":1}' WHERE idx = 0", "DELETE FROM audit_log",
        "TRUNCATE audit_log", "UPDATE audit_tiles SET hashes = '\\x00'", "DELETE FROM audit_tiles",
        "TRUNCATE audit_tiles"}) {
    auto r = (*c)->Exec(sql);
    ASSERT_FALSE(r.ok()) << sql;
    EXPECT_NE(r.status().message().find("append-only"), std::string::npos)
        << sql << ": " << r.status().message();
  }
  auto rows = db->audit()->ReadEntries(0, 10);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].entry, "{}");
  EXPECT_EQ(db->audit()->ReadTiles()->at(0).hashes, std::string(8192, 'h'));
}

// Issue 5's stores on PostgreSQL: two "nodes" (two databases handles) at once.
TEST(PgStore, ApprovalsDecideAtomicallyAcrossNodes) {
  const std::string url = FreshDb("approvals");
  auto a = OpenDb(url, "a");
  auto b = OpenDb(url, "b");
  ASSERT_TRUE(a && b);
  store::ApprovalRecord r;
  r.tenant = "t";
  r.id = "apr_1";
  r.agent = "agent";
  r.requester = "spiffe://t/agent/agent";
  r.user = "-";
  r.action = "bank.pay";
  r.params_hash = "sha256:x";
  r.params = "{}";
  r.policy_id = "p";
  r.policy_version = 1;
  r.risk_tier = "high";
  r.approvers_required = 2;
  r.created_at = "2026-11-22T00:00:00Z";
  r.expires_at = 4102444800;
  ASSERT_TRUE(a->approvals()->CreateApproval(r).ok());
  EXPECT_EQ(b->approvals()->CreateApproval(r).code(), StatusCode::kAlreadyExists);
  // Eight approvers race on two nodes: exactly the second approve completes it, once.
  std::atomic<int> finalized{0}, ok{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 8; ++i) {
    ts.emplace_back([&, i] {
      store::ApprovalStore* s = (i % 2 ? a : b)->approvals();
      store::ApprovalDecisionRecord d{"spiffe://t/user/u" + std::to_string(i), "approve",
                                      "2026-11-22T00:00:01Z", ""};
      auto res = s->Decide("t", "apr_1", d, 1000, [&](const store::ApprovalRecord&) {
        ++finalized;
        return StatusOr<std::string>(std::string("sha256:proof"));
      });
      if (res.ok()) ++ok;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 2);
  EXPECT_EQ(finalized.load(), 1);
  auto got = b->approvals()->GetApproval("t", "apr_1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, "approved");
  EXPECT_EQ(got->decisions.size(), 2u);
  EXPECT_EQ(got->proof, "sha256:proof");
  // Redeemed exactly once, whichever node asks.
  std::atomic<int> redeemed{0};
  ts.clear();
  for (int i = 0; i < 6; ++i) {
    ts.emplace_back([&, i] {
      if ((i % 2 ? a : b)->approvals()->Redeem("t", "apr_1").ok()) ++redeemed;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(redeemed.load(), 1);
  // Poll: slow_down when too soon; expiry is recorded.
  r.id = "apr_2";
  r.expires_at = 2000;
  r.status = "pending";
  ASSERT_TRUE(a->approvals()->CreateApproval(r).ok());
  auto p1 = a->approvals()->Poll("t", "apr_2", 1000);
  ASSERT_TRUE(p1.ok());
  EXPECT_FALSE(p1->slow_down);
  auto p2 = b->approvals()->Poll("t", "apr_2", 1001);
  ASSERT_TRUE(p2.ok());
  EXPECT_TRUE(p2->slow_down);
  EXPECT_EQ(p2->record.poll_interval, 10);
  auto late = b->approvals()->Decide(
      "t", "apr_2", {"spiffe://t/user/z", "approve", "", ""}, 3000,
      [](const store::ApprovalRecord&) { return StatusOr<std::string>(std::string("x")); });
  EXPECT_EQ(late.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(a->approvals()->GetApproval("t", "apr_2")->status, "expired");
  // Approvals are never deleted.
  auto c = store::PgConn::Connect(url);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE((*c)->Exec("DELETE FROM approvals").ok());
}

TEST(PgStore, PolicyKeysAreRevokedNeverDeleted) {
  const std::string url = FreshDb("policykeys");
  auto db = OpenDb(url);
  ASSERT_TRUE(db);
  store::PolicyKeyRecord k{"t", "k4.pid.x", "k4.public.y", "alice", "admin", "now", ""};
  ASSERT_TRUE(db->policy_keys()->AddPolicyKey(k).ok());
  EXPECT_EQ(db->policy_keys()->AddPolicyKey(k).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(db->policy_keys()->ListPolicyKeys("t")->size(), 1u);
  EXPECT_TRUE(db->policy_keys()->RevokePolicyKey("t", "k4.pid.x", "later").ok());
  EXPECT_EQ(db->policy_keys()->RevokePolicyKey("t", "k4.pid.x", "later").code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(db->policy_keys()->RevokePolicyKey("t", "nope", "later").code(), StatusCode::kNotFound);
  EXPECT_EQ(db->policy_keys()->GetPolicyKey("t", "k4.pid.x")->revoked_at, "later");
  auto c = store::PgConn::Connect(url);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE((*c)->Exec("DELETE FROM policy_keys").ok());
}

// A limit of 20 under 64 concurrent adds from two nodes admits exactly 20: PostgreSQL and
// Redis alike. Redis stopped: Unavailable (the policy engine then denies).
void ExpectExactLimit(store::LimitCounter* x, store::LimitCounter* y) {
  std::atomic<int> admitted{0}, errors{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 64; ++i) {
    ts.emplace_back([&, i] {
      auto r = (i % 2 ? x : y)->TryAdd("agent/bank.pay", 1000, 60, 1.0, 20.0);
      if (!r.ok()) ++errors;
      if (r.ok() && r->admitted) ++admitted;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(admitted.load(), 20);
  auto cur = x->Current("agent/bank.pay", 1000);
  ASSERT_TRUE(cur.ok());
  EXPECT_DOUBLE_EQ(*cur, 20.0);
  EXPECT_DOUBLE_EQ(*y->Current("agent/bank.pay", 1060), 0.0);  // next window
  auto budget = x->TryAdd("budget", 1000, 86400, 12.5, 20.0);
  ASSERT_TRUE(budget.ok());
  EXPECT_TRUE(budget->admitted);
  budget = y->TryAdd("budget", 1000, 86400, 12.5, 20.0);
  ASSERT_TRUE(budget.ok());
  EXPECT_FALSE(budget->admitted);
  EXPECT_DOUBLE_EQ(budget->total, 12.5);
}

TEST(PgStore, LimitCounterIsExactAcrossNodes) {
  const std::string url = FreshDb("limits");
  auto a = OpenDb(url, "a");
  auto b = OpenDb(url, "b");
  ASSERT_TRUE(a && b);
  ExpectExactLimit(a->limits(), b->limits());
}

TEST(RedisLimits, ExactAcrossNodesAndFailClosed) {
  testing::RedisServer redis;
  ASSERT_TRUE(redis.Start());
  auto o = store::ParseRedisUrl(redis.url());
  ASSERT_TRUE(o.ok());
  auto x = store::OpenRedisLimitCounter(*o);
  auto y = store::OpenRedisLimitCounter(*o);
  ASSERT_TRUE(x.ok() && y.ok()) << x.status().message();
  ExpectExactLimit(x->get(), y->get());
  redis.Stop();
  auto r = (*x)->TryAdd("agent/bank.pay", 2000, 60, 1.0, 20.0);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ((*y)->Current("agent/bank.pay", 2000).status().code(), StatusCode::kUnavailable);
}

// Issue 7's pending webhook executions on PostgreSQL: a callback may reach any node, and
// exactly one callback finishes an execution.
TEST(PgStore, PendingExecutionsFinishOnceFromAnyNode) {
  const std::string url = FreshDb("executions");
  auto a = OpenDb(url, "a");
  auto b = OpenDb(url, "b");
  ASSERT_TRUE(a && b);
  store::PendingExecution e;
  e.execution_id = "exe_1";
  e.tenant = "t";
  e.agent = "agent";
  e.action = "shop.order";
  e.policy_id = "p";
  e.policy_version = 3;
  e.params_hash = "sha256:x";
  e.jti = "jti_1";
  e.secret_credential_id = "cred_1";
  e.started_at = "2026-11-22T00:00:00Z";
  e.expires_at = 4102444800;
  e.status = "pending";
  ASSERT_TRUE(a->executions()->PutPending(e).ok());
  EXPECT_EQ(b->executions()->PutPending(e).code(), StatusCode::kAlreadyExists);
  auto got = b->executions()->GetExecution("exe_1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->policy_version, 3);
  EXPECT_EQ(got->secret_credential_id, "cred_1");
  EXPECT_EQ(b->executions()->GetExecution("exe_2").status().code(), StatusCode::kNotFound);
  // A webhook id is accepted once, whichever node sees it.
  const SysTime later = std::chrono::system_clock::now() + std::chrono::hours(1);
  EXPECT_TRUE(a->executions()->RememberWebhookId("exe_1", "msg_1", later).ok());
  EXPECT_EQ(b->executions()->RememberWebhookId("exe_1", "msg_1", later).code(),
            StatusCode::kAlreadyExists);
  // Racing callbacks on both nodes: exactly one finishes it.
  std::atomic<int> finished{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 8; ++i) {
    ts.emplace_back([&, i] {
      if ((i % 2 ? a : b)->executions()->FinishExecution("exe_1", "succeeded", "{}", "r").ok())
        ++finished;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(finished.load(), 1);
  EXPECT_EQ(a->executions()->GetExecution("exe_1")->status, "succeeded");
}

// Two nodes, one keyd root (dev key file copied, as operators copy keyd state), one log.
class PgClusterLog : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = FreshDb("cluster_" + std::to_string(::getpid()));
    keyd_a_ = std::make_unique<audit::testing::InProcessKeyd>(dir_.path() + "/a");
    fs::copy(dir_.path() + "/a", dir_.path() + "/b", fs::copy_options::recursive);
    keyd_b_ = std::make_unique<audit::testing::InProcessKeyd>(dir_.path() + "/b");
  }
  struct Node {
    std::unique_ptr<store::PgDatabase> db;
    std::unique_ptr<audit::AuditSigner> signer;
    std::unique_ptr<audit::AuditLog> log;
  };
  Node Start(keyd::KeyServiceClient* k, const std::string& name) {
    Node n;
    n.db = OpenDb(url_, name);
    auto s = audit::NewKeydAuditSigner(k);
    TOANI_CHECK(s.ok());
    n.signer = std::move(*s);
    audit::AuditLogOptions o;
    o.tee = {{"measurement", name}, {"simulated", true}};
    o.handoff = n.db->handoff();
    o.handoff_wait = std::chrono::seconds(60);
    auto l = audit::AuditLog::Open(n.db->audit(), n.signer.get(), o);
    EXPECT_TRUE(l.ok()) << l.status().message();
    if (l.ok()) n.log = std::move(*l);
    return n;
  }
  static bool WaitLeader(const Node& n) {
    for (int i = 0; i < 200 && !n.log->Sequencing(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return n.log->Sequencing();
  }
  audit::testing::TempDir dir_;
  std::string url_;
  std::unique_ptr<audit::testing::InProcessKeyd> keyd_a_, keyd_b_;
};

TEST_F(PgClusterLog, TwoNodesOneLogAndFailover) {
  Node a = Start(keyd_a_.get(), "a");
  ASSERT_TRUE(a.log);
  ASSERT_TRUE(WaitLeader(a));
  Node b = Start(keyd_b_.get(), "b");
  ASSERT_TRUE(b.log);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(b.log->Sequencing()) << "two sequencers at once";

  std::mutex mu;
  std::set<uint64_t> acked;
  std::map<std::string, uint64_t> acked_by_tag;
  auto work = [&](audit::AuditLog* log, const std::string& node, int n) {
    for (int i = 0; i < n; ++i) {
      const std::string tag = node + "-" + std::to_string(i);
      auto r = log->Append({{"type", "test"}, {"tenant", "t"}, {"tag", tag}});
      if (!r.ok()) continue;  // unacknowledged: allowed to be lost only if never acked
      std::lock_guard<std::mutex> l(mu);
      EXPECT_TRUE(acked.insert(r->index).second) << "index handed out twice: " << r->index;
      acked_by_tag[tag] = r->index;
    }
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back(work, a.log.get(), "a" + std::to_string(t), 40);
    ts.emplace_back(work, b.log.get(), "b" + std::to_string(t), 40);
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(acked.size(), 320u);
  auto cp1 = b.log->Checkpoint();
  ASSERT_TRUE(cp1.ok()) << cp1.status().message();
  const uint64_t size1 = b.log->size();

  // The sequencer goes away (its database session ends); b takes over, and appends from
  // b keep being acknowledged. Entries a queued but never saw sequenced are not lost.
  ASSERT_TRUE(a.log->Sequencing());
  ts.clear();
  std::atomic<bool> killed{false};
  for (int t = 0; t < 3; ++t) ts.emplace_back(work, b.log.get(), "c" + std::to_string(t), 40);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  a.log.reset();
  a.db.reset();
  killed = true;
  for (auto& t : ts) t.join();
  ASSERT_TRUE(WaitLeader(b));
  EXPECT_EQ(acked.size(), 440u);

  auto cp2 = b.log->Checkpoint();
  ASSERT_TRUE(cp2.ok());
  const uint64_t size2 = b.log->size();
  ASSERT_GE(size2, size1 + 120);
  // Checkpoints before and after the change of sequencer are consistent.
  auto proof = b.log->ConsistencyProof(size1, size2);
  ASSERT_TRUE(proof.ok());
  auto r1 = b.log->RootAt(size1);
  auto r2 = b.log->RootAt(size2);
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_TRUE(audit::VerifyConsistency(size1, size2, *proof, *r1, *r2).ok());

  // A fresh node opens the whole log: every acknowledged index holds its entry.
  Node c = Start(keyd_b_.get(), "c");
  ASSERT_TRUE(c.log);
  EXPECT_GE(c.log->size(), size2);
  auto entries = c.log->Entries(0, c.log->size());
  ASSERT_TRUE(entries.ok());
  for (const auto& [tag, idx] : acked_by_tag) {
    ASSERT_LT(idx, entries->size());
    auto j = json::parse((*entries)[idx]);
    EXPECT_EQ(j.value("tag", ""), tag) << idx;
  }
}

}  // namespace
}  // namespace toani
