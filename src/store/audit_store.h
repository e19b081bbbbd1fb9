// AuditStore: where the audit log keeps its entries and full tiles
// (docs/audit-format.md §5). Append-only: there is no update or delete method, and the
// SQLite implementation has triggers that refuse UPDATE and DELETE. Thread-safe.
#pragma once

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

// Opens (creating the tables if absent) the audit tables of the SQLite database at
// `path` (WAL, synchronous=FULL). May share the file with OpenSqliteStore.
StatusOr<std::unique_ptr<AuditStore>> OpenSqliteAuditStore(const std::string& path);

}  // namespace toani::store
