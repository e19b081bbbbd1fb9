// AuditStore: where the audit log keeps its entries and full tiles
// (docs/audit-format.md §5). Append-only: there is no update or delete method, and the
// SQLite implementation has triggers that refuse UPDATE and DELETE. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace toani::store {

struct AuditTileRow {
  int level = 0;
  uint64_t n = 0;
  std::string hashes;  // 256 × 32 bytes
};

class AuditStore {
 public:
  virtual ~AuditStore() = default;
  // Appends rows (consecutive, rows[0].index == Size()) and tiles in ONE transaction that
  // is durable (fsync'd) when this returns OK. On error nothing was appended.
  virtual Status AppendBatch(const std::vector<AuditRow>& rows,
                             const std::vector<AuditTileRow>& tiles) = 0;
  virtual StatusOr<std::vector<AuditRow>> ReadEntries(uint64_t from,
                                                      uint64_t to) = 0;  // [from, to)
  // 1 + the highest stored index (0 when empty). Gaps are found by the reader.
  virtual StatusOr<uint64_t> Size() = 0;
  virtual StatusOr<std::vector<AuditTileRow>> ReadTiles() = 0;
};

// Cluster hand-off (docs/storage.md §2): every node queues its entries in the shared
// database; the one node holding the sequencer lock appends them to the log. Thread-safe.
struct HandedEntry {
  int64_t id = 0;
  std::string fields;  // a JSON object (the entry before v/index/time/prev/sig)
};

class AuditHandoff {
 public:
  virtual ~AuditHandoff() = default;
  // Durably queues `fields` (committed when this returns OK); returns its hand-off id.
  virtual StatusOr<int64_t> Enqueue(const std::string& fields) = 0;
  // A counter that moves whenever an entry is queued or sequenced anywhere (database
  // notifications); WaitForChange blocks until it differs from `seen` or `wait` passes.
  virtual uint64_t WaitForChange(uint64_t seen, std::chrono::milliseconds wait) = 0;
  // True when this node holds the sequencer lock (taking it if it is free). The lock lives
  // in one database session: when that session ends (node killed, network lost) it is free.
  virtual StatusOr<bool> TryLead() = 0;
  // The oldest queued entries, at most `max` (lock holder only).
  virtual StatusOr<std::vector<HandedEntry>> Queued(size_t max) = 0;
  // Appends `rows` (their handoff_id set) and `tiles` and removes their queue entries, in
  // one transaction on the lock's session; nothing happens if the lock was lost.
  virtual Status AppendSequenced(const std::vector<AuditRow>& rows,
                                 const std::vector<AuditTileRow>& tiles) = 0;
};

// Opens (creating the tables if absent) the audit tables of the SQLite database at
// `path` (WAL, synchronous=FULL). May share the file with OpenSqliteStore.
StatusOr<std::unique_ptr<AuditStore>> OpenSqliteAuditStore(const std::string& path);

}  // namespace toani::store
