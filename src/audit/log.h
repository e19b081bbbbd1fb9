// AuditLog: the append-only, hash-chained, Merkle-rooted event log
// (docs/formats.md §5). Every append is durable before Append returns OK;
// a failed append is reported so the caller can refuse the step (fail closed).
#pragma once

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "audit/merkle.h"
#include "common/status.h"
#include "common/time.h"
#include "store/store.h"

namespace toani::audit {

struct AppendResult {
  uint64_t index = 0;
  uint64_t tree_size = 0;
  std::string root_hex;
};

class AuditLog {
 public:
  // Rebuilds the running tree from the stored entries and checks the chain:
  // every stored leaf hash must match its entry and every `prev` its
  // predecessor, or Open fails (a tampered log is not extended).
  static StatusOr<std::unique_ptr<AuditLog>> Open(store::Store* store, Clock clock);

  // Adds v, index, time and prev to `fields`, canonicalises, stores. Thread-safe.
  StatusOr<AppendResult> Append(nlohmann::json fields);

  uint64_t size() const;
  std::string RootHex() const;

 private:
  AuditLog(store::Store* store, Clock clock) : store_(store), clock_(std::move(clock)) {}
  store::Store* store_;
  Clock clock_;
  mutable std::mutex mu_;
  CompactRange tree_;
  Hash last_leaf_{};
};

}  // namespace toani::audit
