// The Redis 7 replay store (DESIGN.md §4, §9): a token's jti is consumed with one
// `SET toani:jti:<jti> 1 NX PX <ms until exp>`, atomic across every server node that
// shares the Redis. Fail closed: any doubt (connection refused, timeout, error reply)
// is Unavailable, and the executor then refuses to run.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "common/time.h"
#include "store/store.h"

namespace toani::store {

struct RedisReplayOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  // Connect and per-command timeout. Default 1 s.
  std::chrono::milliseconds timeout{1000};
  // Keys are key_prefix + jti. Default "toani:jti:".
  std::string key_prefix = "toani:jti:";
};

// Parses "redis://HOST:PORT" (HOST a name or IPv4 literal; PORT required).
StatusOr<RedisReplayOptions> ParseRedisUrl(const std::string& url);

// Connects and PINGs once: Unavailable if Redis cannot be reached now (so a server
// says so at start-up). Later failures reconnect on the next call. Thread-safe.
StatusOr<std::unique_ptr<ReplayStore>> OpenRedisReplayStore(const RedisReplayOptions& options,
                                                            Clock clock);

// The Redis 7 LimitCounter: rate limits and budgets counted once across every node that
// shares the Redis (one Lua script per TryAdd, atomic). Same options and fail-closed
// behaviour as the replay store (the key prefix is "toani:limit:"; `key_prefix` is not used).
StatusOr<std::unique_ptr<LimitCounter>> OpenRedisLimitCounter(const RedisReplayOptions& options);

}  // namespace toani::store
