#include "store/redis_replay_store.h"

#include <hiredis.h>

#include <algorithm>
#include <mutex>

namespace toani::store {
namespace {

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

timeval ToTimeval(std::chrono::milliseconds ms) {
  return {static_cast<time_t>(ms.count() / 1000),
          static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

class RedisReplayStore final : public ReplayStore {
 public:
  RedisReplayStore(RedisReplayOptions options, Clock clock)
      : options_(std::move(options)), clock_(std::move(clock)) {}

  Status Ping() {
    std::lock_guard<std::mutex> lock(mu_);
    TOANI_RETURN_IF_ERROR(EnsureConnected());
    Reply r(static_cast<redisReply*>(redisCommand(ctx_.get(), "PING")));
    if (!r || r->type == REDIS_REPLY_ERROR) return Drop("PING failed");
    return Status::Ok();
  }

  Status ConsumeOnce(const std::string& jti, SysTime expires_at) override {
    // Kept at least a minute past exp (clock skew between nodes), and never 0 (PX 0
    // is an error).
    const auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(expires_at - clock_()) +
                     std::chrono::minutes(1);
    const long long px = std::max<long long>(ttl.count(), 60000);
    const std::string key = options_.key_prefix + jti;
    std::lock_guard<std::mutex> lock(mu_);
    TOANI_RETURN_IF_ERROR(EnsureConnected());
    Reply r(static_cast<redisReply*>(
        redisCommand(ctx_.get(), "SET %b 1 NX PX %lld", key.data(), key.size(), px)));
    if (!r) return Drop("SET failed");
    if (r->type == REDIS_REPLY_NIL) return Status::AlreadyExists("token already used");
    if (r->type == REDIS_REPLY_STATUS && std::string(r->str, r->len) == "OK") return Status::Ok();
    // An error reply (e.g. READONLY on a replica, OOM): the jti's state is unknown.
    const std::string why =
        r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "unexpected reply";
    return Status::Unavailable("redis replay store: " + why);
  }

 private:
  Status EnsureConnected() {
    if (ctx_) return Status::Ok();
    const timeval tv = ToTimeval(options_.timeout);
    Context c(redisConnectWithTimeout(options_.host.c_str(), options_.port, tv));
    if (!c || c->err != 0) {
      return Status::Unavailable("redis replay store: cannot connect to " + options_.host + ":" +
                                 std::to_string(options_.port) + ": " +
                                 (c ? c->errstr : "out of memory"));
    }
    if (redisSetTimeout(c.get(), tv) != REDIS_OK) {
      return Status::Unavailable("redis replay store: cannot set the command timeout");
    }
    ctx_ = std::move(c);
    return Status::Ok();
  }

  // After an I/O error the connection's state is unknown: drop it (reconnect next call).
  Status Drop(const std::string& what) {
    std::string why = ctx_ && ctx_->err != 0 ? ctx_->errstr : "no reply";
    ctx_.reset();
    return Status::Unavailable("redis replay store: " + what + ": " + why);
  }

  const RedisReplayOptions options_;
  const Clock clock_;
  std::mutex mu_;  // one connection, one command at a time (hiredis is not thread-safe)
  Context ctx_;
};

}  // namespace

StatusOr<RedisReplayOptions> ParseRedisUrl(const std::string& url) {
  constexpr std::string_view kScheme = "redis://";
  if (url.rfind(kScheme, 0) != 0)
    return Status::InvalidArgument("replay store URL must start with redis://");
  const std::string rest = url.substr(kScheme.size());
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || rest.find('/') != std::string::npos ||
      rest.find('@') != std::string::npos) {
    return Status::InvalidArgument("replay store URL must be redis://HOST:PORT");
  }
  RedisReplayOptions o;
  o.host = rest.substr(0, colon);
  const std::string port = rest.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) == 0 ||
      std::stoi(port) > 65535) {
    return Status::InvalidArgument("replay store URL: bad port '" + port + "'");
  }
  o.port = static_cast<uint16_t>(std::stoi(port));
  return o;
}

StatusOr<std::unique_ptr<ReplayStore>> OpenRedisReplayStore(const RedisReplayOptions& options,
                                                            Clock clock) {
  auto store = std::make_unique<RedisReplayStore>(options, std::move(clock));
  TOANI_RETURN_IF_ERROR(store->Ping());
  return std::unique_ptr<ReplayStore>(std::move(store));
}

}  // namespace toani::store
