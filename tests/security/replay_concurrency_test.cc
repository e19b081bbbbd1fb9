// Single use under concurrency, against the real replay stores: 100 threads race to
// execute one token; the work behind ConsumeOnce runs exactly once, with the embedded
// SQLite store and with a real redis-server started (and stopped) by the test. With
// Redis stopped, every attempt fails closed (Unavailable) and nothing runs.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <filesystem>
#include <thread>
#include <vector>

#include "security/redis_server.h"
#include "store/redis_replay_store.h"
#include "store/store.h"

namespace toani {
namespace {

constexpr int kConcurrent = 100;

struct Race {
  int ran = 0, replays = 0, unavailable = 0, other = 0;
};

// kConcurrent threads, released together, each consuming `jti` and "running" on OK.
Race RunRace(store::ReplayStore& store, const std::string& jti) {
  std::atomic<int> ran{0}, replays{0}, unavailable{0}, other{0};
  std::barrier start(kConcurrent);
  std::vector<std::thread> threads;
  const SysTime exp = std::chrono::system_clock::now() + std::chrono::minutes(15);
  for (int i = 0; i < kConcurrent; ++i) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      const Status st = store.ConsumeOnce(jti, exp);
      if (st.ok()) {
        ++ran;  // the execution would start here
      } else if (st.code() == StatusCode::kAlreadyExists) {
        ++replays;
      } else if (st.code() == StatusCode::kUnavailable) {
        ++unavailable;
      } else {
        ++other;
      }
    });
  }
  for (auto& t : threads) t.join();
  return {ran.load(), replays.load(), unavailable.load(), other.load()};
}

TEST(ReplayConcurrencyTest, EmbeddedStoreRunsExactlyOnce) {
  char tmpl[] = "/tmp/toani-replay-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  struct Cleanup {
    std::string p;
    ~Cleanup() { std::filesystem::remove_all(p); }
  } cleanup{tmpl};
  auto store = store::OpenSqliteReplayStore(std::string(tmpl) + "/toani.db", SystemClock());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (const char* jti : {"jti-a", "jti-b"}) {
    Race r = RunRace(**store, jti);
    EXPECT_EQ(r.ran, 1) << jti;
    EXPECT_EQ(r.replays, kConcurrent - 1) << jti;
    EXPECT_EQ(r.unavailable + r.other, 0);
  }
}

TEST(ReplayConcurrencyTest, RedisRunsExactlyOnceAndFailsClosedWhenStopped) {
  testing::RedisServer redis;
  ASSERT_TRUE(redis.Start()) << "redis-server (Debian package redis-server) did not start";
  auto opts = store::ParseRedisUrl(redis.url());
  ASSERT_TRUE(opts.ok()) << opts.status().ToString();
  opts->timeout = std::chrono::milliseconds(500);
  auto store = store::OpenRedisReplayStore(*opts, SystemClock());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (const char* jti : {"jti-a", "jti-b"}) {
    Race r = RunRace(**store, jti);
    EXPECT_EQ(r.ran, 1) << jti;
    EXPECT_EQ(r.replays, kConcurrent - 1) << jti;
    EXPECT_EQ(r.unavailable + r.other, 0);
  }
  // A second store (another server node) sharing the Redis sees the same consumption.
  auto node2 = store::OpenRedisReplayStore(*opts, SystemClock());
  ASSERT_TRUE(node2.ok());
  EXPECT_EQ((*node2)->ConsumeOnce("jti-a", SystemClock()()).code(), StatusCode::kAlreadyExists);

  redis.Stop();
  Race r = RunRace(**store, "jti-fresh");
  EXPECT_EQ(r.ran, 0) << "an execution ran without a working replay store";
  EXPECT_EQ(r.unavailable, kConcurrent);
  // And a node starting while Redis is down refuses to start.
  EXPECT_EQ(store::OpenRedisReplayStore(*opts, SystemClock()).status().code(),
            StatusCode::kUnavailable);
}

TEST(ReplayConcurrencyTest, RedisUrlParsing) {
  EXPECT_TRUE(store::ParseRedisUrl("redis://127.0.0.1:6379").ok());
  EXPECT_EQ(store::ParseRedisUrl("redis://cache.internal:6380")->port, 6380);
  for (const char* bad : {"http://x:1", "redis://x", "redis://:1", "redis://x:0", "redis://x:70000",
                          "redis://u:p@x:1", "redis://x:1/0"}) {
    EXPECT_FALSE(store::ParseRedisUrl(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace toani
