// One hiredis connection with the replay store's and the limit counter's shared rules
// (DESIGN.md §9): connect lazily with a timeout that also bounds every command, and after
// any I/O error drop the connection (its state is unknown) so the next call reconnects.
// Not thread-safe: the owner serialises commands with its own mutex. Internal to src/store.
#pragma once

#include <hiredis.h>

#include <memory>
#include <string>

#include "common/status.h"
#include "store/redis_replay_store.h"

namespace toani::store {

class RedisConn {
 public:
  // `who` names the owner in every error ("redis replay store", "redis limit counter").
  RedisConn(RedisReplayOptions options, std::string who)
      : options_(std::move(options)), who_(std::move(who)) {}

  const RedisReplayOptions& options() const { return options_; }

  // Connected, or Unavailable saying why.
  Status Ensure() {
    if (ctx_) return Status::Ok();
    const timeval tv{static_cast<time_t>(options_.timeout.count() / 1000),
                     static_cast<suseconds_t>((options_.timeout.count() % 1000) * 1000)};
    Context c(redisConnectWithTimeout(options_.host.c_str(), options_.port, tv));
    if (!c || c->err != 0) {
      return Status::Unavailable(who_ + ": cannot connect to " + options_.host + ":" +
                                 std::to_string(options_.port) + ": " +
                                 (c ? c->errstr : "out of memory"));
    }
    if (redisSetTimeout(c.get(), tv) != REDIS_OK)
      return Status::Unavailable(who_ + ": cannot set the command timeout");
    ctx_ = std::move(c);
    return Status::Ok();
  }

  redisContext* get() { return ctx_.get(); }

  // After an I/O error: drops the connection and returns Unavailable naming `what`.
  Status Drop(const std::string& what) {
    std::string why = ctx_ && ctx_->err != 0 ? ctx_->errstr : "no reply";
    ctx_.reset();
    return Status::Unavailable(who_ + ": " + what + ": " + why);
  }

  // PING: Ok, or Unavailable (connection dropped).
  Status Ping() {
    TOANI_RETURN_IF_ERROR(Ensure());
    Reply r(static_cast<redisReply*>(redisCommand(ctx_.get(), "PING")));
    if (!r || r->type == REDIS_REPLY_ERROR) return Drop("PING failed");
    return Status::Ok();
  }

  struct ReplyDeleter {
    void operator()(redisReply* r) const { freeReplyObject(r); }
  };
  using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

 private:
  struct ContextDeleter {
    void operator()(redisContext* c) const { redisFree(c); }
  };
  using Context = std::unique_ptr<redisContext, ContextDeleter>;

  const RedisReplayOptions options_;
  const std::string who_;
  Context ctx_;
};

}  // namespace toani::store
