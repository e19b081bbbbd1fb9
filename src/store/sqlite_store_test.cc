#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include "store/store.h"

namespace toani::store {
namespace {

namespace fs = std::filesystem;

struct TempDb {
  fs::path dir;
  std::string path;
  TempDb() {
    char tmpl[] = "/tmp/toani-store-test-XXXXXX";
    dir = ::mkdtemp(tmpl);
    path = (dir / "toani.db").string();
  }
  ~TempDb() { fs::remove_all(dir); }
};

TEST(SqliteStore, CredentialsRoundTripAndDuplicatesRefused) {
  TempDb t;
  auto s = OpenSqliteStore(t.path);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  CredentialRecord r{"dev", "cred_1",  "bank",           "api_key",
                     1,     "c1.blob", "hmac-sha256:ab", "2026-01-01T00:00:00Z"};
  ASSERT_TRUE((*s)->AddCredential(r).ok());
  EXPECT_EQ((*s)->AddCredential(r).code(), StatusCode::kAlreadyExists);
  auto got = (*s)->GetCredential("dev", "cred_1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->blob, "c1.blob");
  EXPECT_EQ((*s)->GetCredential("other", "cred_1").status().code(), StatusCode::kNotFound);
}

TEST(SqliteStore, PolicyVersionsOnlyGoUp) {
  TempDb t;
  auto s = OpenSqliteStore(t.path);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->PutPolicy({"dev", "p", 2, "{}", "t"}).ok());
  EXPECT_EQ((*s)->PutPolicy({"dev", "p", 2, "{}", "t"}).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ((*s)->PutPolicy({"dev", "p", 1, "{}", "t"}).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE((*s)->PutPolicy({"dev", "p", 3, "{\"v\":3}", "t"}).ok());
  auto latest = (*s)->LatestPolicies("dev");
  ASSERT_TRUE(latest.ok());
  ASSERT_EQ(latest->size(), 1u);
  EXPECT_EQ((*latest)[0].version, 3);
  EXPECT_TRUE((*s)->GetPolicy("dev", "p", 2).ok());  // every version is kept
}

// The stamp the policy plane checks before it reads versions: it moves with every
// version stored, for any tenant (a refused one may move it too: that only costs a read).
TEST(SqliteStore, PoliciesStampMovesWithEveryVersionStored) {
  TempDb t;
  auto s = OpenSqliteStore(t.path);
  ASSERT_TRUE(s.ok());
  auto stamp = [&] {
    auto v = (*s)->PoliciesStamp();
    EXPECT_TRUE(v.ok() && v->has_value());
    return v.ok() && v->has_value() ? **v : -1;
  };
  const int64_t s0 = stamp();
  EXPECT_EQ(stamp(), s0);  // reading does not move it
  ASSERT_TRUE((*s)->PutPolicy({"dev", "p", 1, "{}", "t"}).ok());
  const int64_t s1 = stamp();
  EXPECT_NE(s1, s0);
  ASSERT_TRUE((*s)->PutPolicy({"acme", "q", 1, "{}", "t"}).ok());
  const int64_t s2 = stamp();
  EXPECT_NE(s2, s1);
  EXPECT_NE(s2, s0);
}

TEST(SqliteStore, AuditIsAppendOnlyEvenToRawSql) {
  TempDb t;
  {
    auto s = OpenSqliteStore(t.path);
    ASSERT_TRUE(s.ok());
    AuditRow row;
    row.index = 0;
    row.entry = "{\"v\":1}";
    ASSERT_TRUE((*s)->AppendAudit(row).ok());
    EXPECT_FALSE((*s)->AppendAudit(row).ok());  // same index twice
    EXPECT_EQ(*(*s)->AuditSize(), 1u);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(t.path.c_str(), &db), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "UPDATE audit_log SET entry='x'", nullptr, nullptr, nullptr),
            SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "DELETE FROM audit_log", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto s = OpenSqliteStore(t.path);
  auto rows = (*s)->ReadAudit(0, 10);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].entry, "{\"v\":1}");
}

TEST(SqliteReplayStore, ConsumesOnce) {
  TempDb t;
  auto now = std::chrono::system_clock::now();
  auto r = OpenSqliteReplayStore(t.path, [now] { return now; });
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)->ConsumeOnce("jti-1", now + std::chrono::minutes(5)).ok());
  EXPECT_EQ((*r)->ConsumeOnce("jti-1", now + std::chrono::minutes(5)).code(),
            StatusCode::kAlreadyExists);
  EXPECT_TRUE((*r)->ConsumeOnce("jti-2", now + std::chrono::minutes(5)).ok());
}

}  // namespace
}  // namespace toani::store
