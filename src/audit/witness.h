// Witnesses (docs/audit-format.md §8): checkpoints published to a directory and to
// C2SP tlog-witness add-checkpoint endpoints, and the start-up check that the log is
// still consistent with the last checkpoint it published.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "audit/log.h"
#include "common/http_client.h"
#include "common/status.h"

namespace toani::audit {

class WitnessSink {
 public:
  virtual ~WitnessSink() = default;
  virtual std::string name() const = 0;
  // Publishes `note` (a checkpoint of `log` at size `size`). Thread-compatible: one
  // publisher thread calls it.
  virtual Status Publish(const std::string& note, uint64_t size, AuditLog& log) = 0;
};

// Writes DIR/checkpoint (atomically replaced, fsync'd) and DIR/<size>.checkpoint.
std::unique_ptr<WitnessSink> NewDirectorySink(std::string dir);

// POSTs to <url>/add-checkpoint per C2SP tlog-witness. `post` performs the request
// (default: HttpsCall with `tls`); tests inject their own.
//
// The witness is also how the log learns it was rolled back or forked (docs/audit-format.md
// §8): the first submission after start sends the log's own size as the old size, and
// Publish returns FailedPrecondition ("rolled back" / "forked") when the witness answers
// that it cosigned a larger tree (409 with a larger size), a different tree of the same
// size (409 with our size), or refuses our consistency proof from its size (422). Other
// failures (unreachable, 404 unknown log, 403) are Unavailable. With `state_dir` set, the
// last checkpoint the witness accepted is kept in state_dir/checkpoint (and its reply, the
// cosignature lines, in state_dir/cosignature), for CheckAgainstPublished.
using WitnessPost =
    std::function<StatusOr<ClientResponse>(const std::string& url, const std::string& body)>;
std::unique_ptr<WitnessSink> NewHttpWitnessSink(std::string url, ClientTls tls,
                                                WitnessPost post = nullptr,
                                                std::string state_dir = "");
// The directory an HTTP witness's state is kept in under `base`: base/<16 hex of SHA-256(url)>.
std::string HttpWitnessStateDir(const std::string& base, const std::string& url);
// The add-checkpoint request body: "old N\n", b64 proof lines, "\n", the checkpoint.
std::string AddCheckpointBody(uint64_t old_size, const std::vector<Hash>& proof,
                              const std::string& note);

// Reads DIR/checkpoint (absent: Ok) and checks it against the log: signed by the log's
// key, size <= log size, and the log's root at that size equals its root. On a mismatch
// returns FailedPrecondition naming a rollback or a fork.
Status CheckAgainstPublished(const std::string& dir, const AuditLog& log);

// Publishes the current checkpoint to every sink whenever the log grew, at most once per
// `interval`, on its own thread. Stops (joins) on destruction.
class WitnessPublisher {
 public:
  WitnessPublisher(AuditLog* log, std::vector<std::unique_ptr<WitnessSink>> sinks,
                   std::chrono::milliseconds interval);
  ~WitnessPublisher();
  // Publishes now if the log grew since the last publication (also used at start and by
  // tests). A sink's FailedPrecondition (a witness proves the log rolled back or forked)
  // faults the log: /readyz 503, appends refused.
  Status PublishNow();

 private:
  void Run();
  AuditLog* log_;
  std::vector<std::unique_ptr<WitnessSink>> sinks_;
  std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  uint64_t published_size_ = UINT64_MAX;
  std::mutex publish_mu_;
  std::thread thread_;
};

}  // namespace toani::audit
