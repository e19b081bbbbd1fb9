#include "audit/log.h"

#include "audit/entry.h"
#include "common/encoding.h"

namespace toani::audit {
namespace {

std::string Hex(const Hash& h) { return HexEncode(std::span<const uint8_t>(h.data(), h.size())); }
std::string At(uint64_t i) { return "audit: entry " + std::to_string(i) + ": "; }

}  // namespace

struct AuditLog::Pending {
  nlohmann::json fields;
  StatusOr<AppendResult> result = Status::Internal("not committed");
  bool done = false;
  std::condition_variable cv;  // each waiter has its own: no thundering herd per batch
};

StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(store::AuditStore* store, AuditSigner* signer,
                                                   AuditLogOptions opts) {
  std::unique_ptr<AuditLog> log(new AuditLog(store, signer, std::move(opts)));
  TOANI_ASSIGN_OR_RETURN(uint64_t size, store->Size());
  const uint64_t kBatch = 4096;
  for (uint64_t from = 0; from < size; from += kBatch) {
    TOANI_ASSIGN_OR_RETURN(auto rows, store->ReadEntries(from, std::min(size, from + kBatch)));
    for (const auto& row : rows) {
      const uint64_t i = log->range_.size();
      if (row.index != i)
        return Status::Internal("audit: entry " + std::to_string(i) + " is missing");
      Hash leaf = LeafHash(AsBytes(row.entry));
      if (leaf != row.leaf_hash)
        return Status::Internal(At(i) + "does not match its stored leaf hash");
      nlohmann::json j;
      if (log->opts_.verify_signatures_on_open) {
        auto v = VerifyEntry(row.entry, i, signer->key());
        if (!v.ok()) return Status::Internal(At(i) + v.status().message());
        j = std::move(*v);
      } else {
        j = nlohmann::json::parse(row.entry, nullptr, false);
      }
      if (!j.is_object() || j.value("index", UINT64_MAX) != i)
        return Status::Internal(At(i) + "wrong index field");
      if (j.value("prev", "") != Hex(log->last_leaf_))
        return Status::Internal(At(i) + "hash chain broken");
      log->range_.Append(leaf);
      log->hashes_.Append(leaf);
      log->last_leaf_ = leaf;
    }
    if (rows.size() != std::min(size, from + kBatch) - from) {
      return Status::Internal("audit: entry " + std::to_string(log->range_.size()) + " is missing");
    }
  }
  // Every full tile the entries imply must be stored, byte for byte, and nothing else.
  TOANI_ASSIGN_OR_RETURN(auto tiles, store->ReadTiles());
  size_t expected = 0;
  for (uint64_t per = kTileWidth; per <= size; per *= kTileWidth) expected += size / per;
  if (tiles.size() != expected) {
    return Status::Internal("audit: " + std::to_string(tiles.size()) +
                            " stored tiles, the entries imply " + std::to_string(expected));
  }
  for (const auto& t : tiles) {
    auto want = log->hashes_.Tile(t.level, t.n, kTileWidth, size);
    if (!want.ok() || *want != t.hashes) {
      return Status::Internal("audit: stored " + TilePath(t.level, t.n, kTileWidth) +
                              " does not match the entries");
    }
  }
  return log;
}

StatusOr<AppendResult> AuditLog::Append(nlohmann::json fields) {
  if (!fields.is_object()) return Status::InvalidArgument("audit: fields must be an object");
  Pending p;
  p.fields = std::move(fields);
  std::unique_lock<std::mutex> lk(mu_);
  if (fault_) return Status::Unavailable("audit log refuses appends: " + *fault_);
  queue_.push_back(&p);
  // Wait until our entry is committed, or until there is no leader and we are first in
  // line (a leader hands over to the front of the queue when it leaves).
  p.cv.wait(lk, [&] { return p.done || (!leader_active_ && queue_.front() == &p); });
  if (p.done) return std::move(p.result);
  leader_active_ = true;
  while (!p.done) {
    std::vector<Pending*> batch;
    while (!queue_.empty() && batch.size() < opts_.max_batch) {
      batch.push_back(queue_.front());
      queue_.pop_front();
    }
    const uint64_t base = range_.size();
    const Hash prev = last_leaf_;
    lk.unlock();
    CommitBatch(batch, base, prev);
    lk.lock();
    for (Pending* q : batch) {
      if (q != &p) q->cv.notify_one();
    }
  }
  leader_active_ = false;
  if (!queue_.empty()) queue_.front()->cv.notify_one();
  return std::move(p.result);
}

// Runs without mu_ held; only the leader calls it, so the tree cannot move underneath.
void AuditLog::CommitBatch(std::vector<Pending*> batch, uint64_t base, Hash prev) {
  const std::string time = FormatRfc3339(opts_.clock());
  std::vector<nlohmann::json> unsigned_entries;
  unsigned_entries.reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    nlohmann::json e = std::move(batch[i]->fields);
    e["v"] = kEntryVersion;
    e["index"] = base + i;
    e["time"] = time;
    if (!e.contains("tee") && !opts_.tee.is_null()) e["tee"] = opts_.tee;
    e.erase("prev");
    e.erase("sig");
    e.erase("user_ref");
    unsigned_entries.push_back(std::move(e));
  }
  auto fail = [&](const Status& st) {
    std::lock_guard<std::mutex> l(mu_);
    for (Pending* p : batch) {
      p->result = Status::Unavailable("audit log is not durable: " + st.message());
      p->done = true;
    }
  };
  auto signed_entries = signer_->SignEntries(prev, unsigned_entries);
  if (!signed_entries.ok()) return fail(signed_entries.status());
  std::vector<store::AuditRow> rows(batch.size());
  std::vector<Hash> leaves;
  for (size_t i = 0; i < batch.size(); ++i) {
    rows[i].index = base + i;
    rows[i].entry = std::move((*signed_entries)[i]);
    rows[i].leaf_hash = LeafHash(AsBytes(rows[i].entry));
    leaves.push_back(rows[i].leaf_hash);
  }
  // The hashes go in first so the full tiles this batch completes can be stored with it;
  // readers never look past range_.size(), and a failed commit truncates them again.
  std::vector<store::AuditTileRow> tiles;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const Hash& h : leaves) hashes_.Append(h);
    for (size_t i = 0; i < leaves.size(); ++i) {
      for (auto [level, n] : hashes_.TilesCompletedBy(base + i)) {
        auto t = hashes_.Tile(level, n, kTileWidth, base + i + 1);
        TOANI_CHECK(t.ok());
        tiles.push_back({level, n, std::move(*t)});
      }
    }
  }
  Status st = store_->AppendBatch(rows, tiles);
  std::lock_guard<std::mutex> l(mu_);
  if (!st.ok()) {
    hashes_.Truncate(base);
    for (Pending* p : batch) {
      p->result = Status::Unavailable("audit log is not durable: " + st.message());
      p->done = true;
    }
    return;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    range_.Append(leaves[i]);
    batch[i]->result = AppendResult{base + i, range_.size(), ""};
    batch[i]->done = true;
  }
  last_leaf_ = leaves.back();
  const std::string root = Hex(range_.Root());
  for (Pending* p : batch) p->result->root_hex = root;
}

uint64_t AuditLog::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return range_.size();
}

std::string AuditLog::RootHex() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Hex(range_.Root());
}

StatusOr<std::string> AuditLog::Checkpoint() {
  std::lock_guard<std::mutex> cl(checkpoint_mu_);
  audit::Checkpoint c;
  {
    std::lock_guard<std::mutex> l(mu_);
    c.size = range_.size();
    c.root = range_.Root();
  }
  if (c.size == checkpoint_size_) return checkpoint_;
  c.origin = key().name;
  TOANI_ASSIGN_OR_RETURN(std::string note, signer_->SignCheckpoint(CheckpointText(c)));
  checkpoint_size_ = c.size;
  checkpoint_ = note;
  return note;
}

StatusOr<Hash> AuditLog::RootAt(uint64_t s) const {
  std::lock_guard<std::mutex> l(mu_);
  if (s > range_.size()) return Status::InvalidArgument("tree size beyond the log");
  return hashes_.RootAt(s);
}

StatusOr<std::vector<Hash>> AuditLog::InclusionProof(uint64_t index, uint64_t s) const {
  std::lock_guard<std::mutex> l(mu_);
  if (s > range_.size()) return Status::InvalidArgument("tree size beyond the log");
  return hashes_.InclusionProof(index, s);
}

StatusOr<std::vector<Hash>> AuditLog::ConsistencyProof(uint64_t size1, uint64_t size2) const {
  std::lock_guard<std::mutex> l(mu_);
  if (size2 > range_.size()) return Status::InvalidArgument("tree size beyond the log");
  return hashes_.ConsistencyProof(size1, size2);
}

StatusOr<std::string> AuditLog::Tile(const TileRef& ref) const {
  uint64_t s;
  {
    std::lock_guard<std::mutex> l(mu_);
    s = range_.size();
    if (ref.level >= 0) return hashes_.Tile(ref.level, ref.n, ref.width, s);
  }
  const uint64_t from = ref.n * kTileWidth;
  if (from + ref.width > s) return Status::NotFound("no such entry bundle");
  TOANI_ASSIGN_OR_RETURN(auto entries, Entries(from, from + ref.width));
  return EncodeEntryBundle(entries);
}

StatusOr<std::vector<std::string>> AuditLog::Entries(uint64_t from, uint64_t to) const {
  TOANI_ASSIGN_OR_RETURN(auto rows, store_->ReadEntries(from, to));
  std::vector<std::string> out;
  out.reserve(rows.size());
  for (auto& r : rows) out.push_back(std::move(r.entry));
  return out;
}

void AuditLog::SetFault(std::string reason) {
  std::lock_guard<std::mutex> l(mu_);
  fault_ = std::move(reason);
}

std::optional<std::string> AuditLog::Fault() const {
  std::lock_guard<std::mutex> l(mu_);
  return fault_;
}

}  // namespace toani::audit
