// The Redis 7 LimitCounter (issue 5's interface): rate limits and budgets counted once for
// every node that shares the Redis. One Lua script per TryAdd makes check-and-add atomic;
// the key expires a day after its window ends. Fail closed: any error, timeout or lost
// connection is Unavailable, and the policy engine then denies.
#include <hiredis.h>

#include <cstdio>
#include <mutex>

#include "store/redis_conn.h"
#include "store/redis_replay_store.h"

namespace toani::store {
namespace {

using Reply = RedisConn::Reply;

// KEYS[1] counter; ARGV: amount, limit, ttl ms. Returns {admitted 0|1, total as string}.
constexpr const char* kTryAdd = R"lua(
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if cur + amount > tonumber(ARGV[2]) then return {0, tostring(cur)} end
local total = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, total}
)lua";

class RedisLimitCounter final : public LimitCounter {
 public:
  explicit RedisLimitCounter(RedisReplayOptions o) : conn_(std::move(o), "redis limit counter") {}

  Status Ping() {
    std::lock_guard<std::mutex> l(mu_);
    return conn_.Ping();
  }

  StatusOr<LimitResult> TryAdd(const std::string& key, int64_t window_start, int64_t window_seconds,
                               double amount, double limit) override {
    const std::string k = Key(key, window_start);
    const std::string a = Num(amount), lim = Num(limit);
    const std::string ttl = std::to_string((window_seconds + 86400) * 1000);
    std::lock_guard<std::mutex> l(mu_);
    TOANI_RETURN_IF_ERROR(conn_.Ensure());
    Reply r(static_cast<redisReply*>(redisCommand(conn_.get(), "EVAL %s 1 %b %b %b %b", kTryAdd,
                                                  k.data(), k.size(), a.data(), a.size(),
                                                  lim.data(), lim.size(), ttl.data(), ttl.size())));
    if (!r) return conn_.Drop("EVAL failed");
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER) {
      return Status::Unavailable("redis limit counter: " + (r->type == REDIS_REPLY_ERROR
                                                                ? std::string(r->str, r->len)
                                                                : "unexpected reply"));
    }
    LimitResult out;
    out.admitted = r->element[0]->integer == 1;
    const redisReply* t = r->element[1];
    out.total = t->type == REDIS_REPLY_STRING ? std::stod(std::string(t->str, t->len)) : 0.0;
    return out;
  }

  StatusOr<double> Current(const std::string& key, int64_t window_start) override {
    const std::string k = Key(key, window_start);
    std::lock_guard<std::mutex> l(mu_);
    TOANI_RETURN_IF_ERROR(conn_.Ensure());
    Reply r(static_cast<redisReply*>(redisCommand(conn_.get(), "GET %b", k.data(), k.size())));
    if (!r) return conn_.Drop("GET failed");
    if (r->type == REDIS_REPLY_NIL) return 0.0;
    if (r->type != REDIS_REPLY_STRING) return Status::Unavailable("redis limit counter: bad reply");
    return std::stod(std::string(r->str, r->len));
  }

 private:
  static std::string Key(const std::string& key, int64_t window_start) {
    return "toani:limit:" + std::to_string(window_start) + ":" + key;
  }
  static std::string Num(double v) {
    char b[64];
    std::snprintf(b, sizeof b, "%.17g", v);
    return b;
  }
  RedisConn conn_;
  std::mutex mu_;  // one command at a time on the connection
};

}  // namespace

StatusOr<std::unique_ptr<LimitCounter>> OpenRedisLimitCounter(const RedisReplayOptions& options) {
  auto c = std::make_unique<RedisLimitCounter>(options);
  TOANI_RETURN_IF_ERROR(c->Ping());
  return std::unique_ptr<LimitCounter>(std::move(c));
}

}  // namespace toani::store
