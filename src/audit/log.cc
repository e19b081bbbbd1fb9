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
  log->sign_next_ = log->range_.size();
  log->sign_prev_ = log->last_leaf_;
  log->writer_ = std::thread(&AuditLog::WriterLoop, log.get());
  return log;
}

AuditLog::~AuditLog() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  writer_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void AuditLog::FailLocked(const std::vector<Pending*>& batch, const std::string& why) {
  for (Pending* p : batch) {
    p->result = Status::Unavailable("audit log is not durable: " + why);
    p->done = true;
    p->cv.notify_one();
  }
}

StatusOr<AppendResult> AuditLog::Append(nlohmann::json fields) {
  if (!fields.is_object()) return Status::InvalidArgument("audit: fields must be an object");
  Pending p;
  p.fields = std::move(fields);
  std::unique_lock<std::mutex> lk(mu_);
  if (fault_) return Status::Unavailable("audit log refuses appends: " + *fault_);
  queue_.push_back(&p);
  if (leader_active_) leader_cv_.notify_one();
  // Wait until our entry is committed, or until there is no leader and we are first in
  // line (a leader hands over to the front of the queue when it leaves).
  p.cv.wait(lk, [&] { return p.done || (!leader_active_ && queue_.front() == &p); });
  if (p.done) return std::move(p.result);
  leader_active_ = true;
  // Lead until our own entry is durable: sign waiting entries in batches and hand them to
  // the writer, keeping at most kMaxInFlight signed batches waiting for it.
  while (!p.done) {
    if (queue_.empty() || to_store_.size() >= kMaxInFlight) {
      leader_cv_.wait(lk);
      continue;
    }
    std::vector<Pending*> batch;
    while (!queue_.empty() && batch.size() < opts_.max_batch) {
      batch.push_back(queue_.front());
      queue_.pop_front();
    }
    const uint64_t base = sign_next_, epoch = epoch_;
    const Hash prev = sign_prev_;
    sign_next_ += batch.size();
    lk.unlock();
    std::optional<SignedBatch> signed_batch = SignBatch(std::move(batch), base, prev, epoch);
    lk.lock();
    if (!signed_batch) {
      if (epoch == epoch_) sign_next_ = base;  // nothing was signed after it
      continue;
    }
    if (signed_batch->epoch != epoch_) {
      FailLocked(signed_batch->pending, "an earlier batch could not be stored");
      continue;
    }
    sign_prev_ = signed_batch->leaves.back();
    to_store_.push_back(std::move(*signed_batch));
    writer_cv_.notify_one();
  }
  leader_active_ = false;
  if (!queue_.empty()) queue_.front()->cv.notify_one();
  return std::move(p.result);
}

// Runs without mu_ held; only the leader calls it, so batches are signed in order.
std::optional<AuditLog::SignedBatch> AuditLog::SignBatch(std::vector<Pending*> batch, uint64_t base,
                                                         Hash prev, uint64_t epoch) {
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
  auto signed_entries = signer_->SignEntries(prev, unsigned_entries);
  if (!signed_entries.ok()) {
    std::lock_guard<std::mutex> l(mu_);
    FailLocked(batch, signed_entries.status().message());
    return std::nullopt;
  }
  SignedBatch b;
  b.base = base;
  b.epoch = epoch;
  b.rows.resize(batch.size());
  b.leaves.reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    b.rows[i].index = base + i;
    b.rows[i].entry = std::move((*signed_entries)[i]);
    b.rows[i].leaf_hash = LeafHash(AsBytes(b.rows[i].entry));
    b.leaves.push_back(b.rows[i].leaf_hash);
  }
  b.pending = std::move(batch);
  return b;
}

void AuditLog::WriterLoop() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    writer_cv_.wait(lk, [&] { return stop_ || !to_store_.empty(); });
    if (to_store_.empty()) return;  // stopping, and everything handed over is stored
    SignedBatch b = std::move(to_store_.front());
    to_store_.pop_front();
    leader_cv_.notify_one();  // a slot is free
    if (b.epoch != epoch_) {
      FailLocked(b.pending, "an earlier batch could not be stored");
      continue;
    }
    lk.unlock();
    StoreBatch(b);
    lk.lock();
    leader_cv_.notify_one();  // the leader's own entry may be among them
  }
}

// The writer thread; batches arrive in index order.
void AuditLog::StoreBatch(SignedBatch& b) {
  // The hashes go in first so the full tiles this batch completes can be stored with it;
  // readers never look past range_.size(), and a failed commit truncates them again.
  std::vector<store::AuditTileRow> tiles;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const Hash& h : b.leaves) hashes_.Append(h);
    for (size_t i = 0; i < b.leaves.size(); ++i) {
      for (auto [level, n] : hashes_.TilesCompletedBy(b.base + i)) {
        auto t = hashes_.Tile(level, n, kTileWidth, b.base + i + 1);
        TOANI_CHECK(t.ok());
        tiles.push_back({level, n, std::move(*t)});
      }
    }
  }
  Status st = store_->AppendBatch(b.rows, tiles);
  std::lock_guard<std::mutex> l(mu_);
  if (!st.ok()) {
    hashes_.Truncate(b.base);
    FailLocked(b.pending, st.message());
    // Every batch signed after this one chains from entries that were never stored.
    for (SignedBatch& later : to_store_) {
      FailLocked(later.pending, "an earlier batch could not be stored");
    }
    to_store_.clear();
    ++epoch_;
    sign_next_ = range_.size();
    sign_prev_ = last_leaf_;
    return;
  }
  for (size_t i = 0; i < b.leaves.size(); ++i) {
    range_.Append(b.leaves[i]);
    b.pending[i]->result = AppendResult{b.base + i, range_.size(), ""};
  }
  last_leaf_ = b.leaves.back();
  const std::string root = Hex(range_.Root());
  for (Pending* p : b.pending) {
    p->result->root_hex = root;
    p->done = true;
    p->cv.notify_one();
  }
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
