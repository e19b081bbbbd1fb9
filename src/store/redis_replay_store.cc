#include "store/redis_replay_store.h"

#include <hiredis.h>

#include <algorithm>
#include <mutex>

#include "store/redis_conn.h"

namespace toani::store {
namespace {

using Reply = RedisConn::Reply;

class RedisReplayStore final : public ReplayStore {
 public:
  RedisReplayStore(RedisReplayOptions options, Clock clock)
      : conn_(std::move(options), "redis replay store"), clock_(std::move(clock)) {}

  Status Ping() {
    std::lock_guard<std::mutex> lock(mu_);
    return conn_.Ping();
  }

  Status ConsumeOnce(const std::string& jti, SysTime expires_at) override {
    // Kept at least a minute past exp (clock skew between nodes), and never 0 (PX 0
    // is an error).
    const auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(expires_at - clock_()) +
                     std::chrono::minutes(1);
    const long long px = std::max<long long>(ttl.count(), 60000);
    const std::string key = conn_.options().key_prefix + jti;
    std::lock_guard<std::mutex> lock(mu_);
    TOANI_RETURN_IF_ERROR(conn_.Ensure());
    Reply r(static_cast<redisReply*>(
        redisCommand(conn_.get(), "SET %b 1 NX PX %lld", key.data(), key.size(), px)));
    if (!r) return conn_.Drop("SET failed");
    if (r->type == REDIS_REPLY_NIL) return Status::AlreadyExists("token already used");
    if (r->type == REDIS_REPLY_STATUS && std::string(r->str, r->len) == "OK") return Status::Ok();
    // An error reply (e.g. READONLY on a replica, OOM): the jti's state is unknown.
    const std::string why =
        r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "unexpected reply";
    return Status::Unavailable("redis replay store: " + why);
  }

 private:
  RedisConn conn_;
  const Clock clock_;
  std::mutex mu_;  // one connection, one command at a time (hiredis is not thread-safe)
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
