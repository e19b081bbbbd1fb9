#include "audit/log.h"

#include "common/encoding.h"
#include "common/jcs.h"

namespace toani::audit {
namespace {
std::string Hex(const Hash& h) { return HexEncode(std::span<const uint8_t>(h.data(), h.size())); }
}  // namespace

StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(store::Store* store, Clock clock) {
  std::unique_ptr<AuditLog> log(new AuditLog(store, std::move(clock)));
  TOANI_ASSIGN_OR_RETURN(uint64_t size, store->AuditSize());
  const uint64_t kBatch = 4096;
  for (uint64_t from = 0; from < size; from += kBatch) {
    TOANI_ASSIGN_OR_RETURN(auto rows, store->ReadAudit(from, std::min(size, from + kBatch)));
    for (const auto& row : rows) {
      if (row.index != log->tree_.size()) return Status::Internal("audit: gap in the log at " + std::to_string(row.index));
      Hash leaf = LeafHash(AsBytes(row.entry));
      if (leaf != row.leaf_hash) return Status::Internal("audit: entry " + std::to_string(row.index) + " does not match its leaf hash");
      auto j = nlohmann::json::parse(row.entry, nullptr, false);
      if (j.is_discarded() || j.value("prev", "") != Hex(log->last_leaf_)) {
        return Status::Internal("audit: hash chain broken at entry " + std::to_string(row.index));
      }
      log->tree_.Append(leaf);
      log->last_leaf_ = leaf;
    }
  }
  return log;
}

StatusOr<AppendResult> AuditLog::Append(nlohmann::json fields) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t index = tree_.size();
  fields["v"] = 1;
  fields["index"] = index;
  fields["time"] = FormatRfc3339(clock_());
  fields["prev"] = Hex(last_leaf_);
  TOANI_ASSIGN_OR_RETURN(std::string entry, TryCanonicalizeJson(fields));
  store::AuditRow row;
  row.index = index;
  row.entry = entry;
  row.leaf_hash = LeafHash(AsBytes(entry));
  Status st = store_->AppendAudit(row);
  if (!st.ok()) return Status::Unavailable("audit log is not durable: " + st.message());
  tree_.Append(row.leaf_hash);
  last_leaf_ = row.leaf_hash;
  return AppendResult{index, tree_.size(), Hex(tree_.Root())};
}

uint64_t AuditLog::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tree_.size();
}

std::string AuditLog::RootHex() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Hex(tree_.Root());
}

}  // namespace toani::audit
