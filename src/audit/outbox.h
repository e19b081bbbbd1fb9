// Outbox: audit entries that must never be lost (execution.finished) when the log cannot
// take them right now. Put() makes the entry durable in a directory; a background thread
// appends it to the log with retry and removes the file once the append is durable.
// Files left by a previous run are drained at Open. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "audit/log.h"
#include "common/status.h"

namespace toani::audit {

class Outbox {
 public:
  static StatusOr<std::unique_ptr<Outbox>> Open(
      std::string dir, AuditLog* log, std::chrono::milliseconds retry = std::chrono::seconds(1));
  ~Outbox();
  // Durably stores `fields` (adding "outbox_id") for a later append. Unavailable if the
  // file cannot be written and fsync'd.
  Status Put(nlohmann::json fields);
  size_t Pending() const;
  // Tries to append every stored entry once; returns how many remain.
  size_t DrainOnce();

 private:
  Outbox(std::string dir, AuditLog* log, std::chrono::milliseconds retry)
      : dir_(std::move(dir)), log_(log), retry_(retry) {}
  void Run();
  std::string dir_;
  AuditLog* log_;
  std::chrono::milliseconds retry_;
  mutable std::mutex mu_;
  std::mutex drain_mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace toani::audit
