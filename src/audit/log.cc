#include "audit/log.h"

#include "audit/entry.h"
#include "audit/sign_frame.h"
#include "common/encoding.h"
#include "common/jcs.h"
#include "common/log.h"

namespace toani::audit {
namespace {

std::string Hex(const Hash& h) { return HexEncode(std::span<const uint8_t>(h.data(), h.size())); }
std::string At(uint64_t i) { return "audit: entry " + std::to_string(i) + ": "; }

}  // namespace

struct AuditLog::Pending {
  nlohmann::json fields;
  // Single node: the entry already canonicalised by its own Append call (off the signing
  // path) without v, index and time, which the leader inserts.
  bool prepared = false;
  SignItem item;
  std::vector<TopMember> members;
  StatusOr<AppendResult> result = Status::Internal("not committed");
  bool done = false;
  std::condition_variable cv;  // each waiter has its own: no thundering herd per batch
};

StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(store::AuditStore* store, AuditSigner* signer,
                                                   AuditLogOptions opts) {
  std::unique_ptr<AuditLog> log(new AuditLog(store, signer, std::move(opts)));
  TOANI_ASSIGN_OR_RETURN(uint64_t size, store->Size());
  TOANI_RETURN_IF_ERROR(log->Extend(size));
  // Every full tile the entries imply must be stored, byte for byte, and nothing else.
  // In cluster mode other nodes may have appended since `size` was read: tiles past it
  // are checked when the follower reaches them (they were committed with their entries).
  TOANI_ASSIGN_OR_RETURN(auto tiles, store->ReadTiles());
  if (log->opts_.handoff != nullptr) {
    std::erase_if(tiles, [&](const store::AuditTileRow& t) {
      uint64_t span = kTileWidth;
      for (int l = 0; l < t.level; ++l) span *= kTileWidth;
      return (t.n + 1) * span > size;
    });
  }
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
  if (log->opts_.handoff != nullptr) {
    AuditLog* l = log.get();
    l->follower_ = std::thread([l] { l->FollowerLoop(); });
    l->sequencer_ = std::thread([l] { l->SequencerLoop(); });
  } else {
    log->sign_next_ = log->range_.size();
    log->writer_ = std::thread([l = log.get()] { l->WriterLoop(); });
  }
  return log;
}

AuditLog::~AuditLog() {
  stop_ = true;
  {
    std::lock_guard<std::mutex> l(mu_);
    sequenced_cv_.notify_all();
    writer_cv_.notify_all();
  }
  if (writer_.joinable()) writer_.join();
  if (sequencer_.joinable()) sequencer_.join();
  if (follower_.joinable()) follower_.join();
}

Status AuditLog::Extend(uint64_t to) {
  const uint64_t kBatch = 4096;
  uint64_t have = range_.size();
  Hash last = last_leaf_;
  for (uint64_t from = have; from < to; from += kBatch) {
    const uint64_t end = std::min(to, from + kBatch);
    TOANI_ASSIGN_OR_RETURN(auto rows, store_->ReadEntries(from, end));
    std::vector<Hash> leaves;
    leaves.reserve(rows.size());
    for (const auto& row : rows) {
      const uint64_t i = have;
      if (row.index != i)
        return Status::Internal("audit: entry " + std::to_string(i) + " is missing");
      Hash leaf = LeafHash(AsBytes(row.entry));
      if (leaf != row.leaf_hash)
        return Status::Internal(At(i) + "does not match its stored leaf hash");
      nlohmann::json j;
      if (opts_.verify_signatures_on_open) {
        auto v = VerifyEntry(row.entry, i, signer_->key());
        if (!v.ok()) return Status::Internal(At(i) + v.status().message());
        j = std::move(*v);
      } else {
        j = nlohmann::json::parse(row.entry, nullptr, false);
      }
      if (!j.is_object() || j.value("index", UINT64_MAX) != i)
        return Status::Internal(At(i) + "wrong index field");
      if (j.value("prev", "") != Hex(last)) return Status::Internal(At(i) + "hash chain broken");
      leaves.push_back(leaf);
      last = leaf;
      ++have;
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      for (const Hash& h : leaves) {
        range_.Append(h);
        hashes_.Append(h);
      }
      if (!leaves.empty()) last_leaf_ = leaves.back();
      for (const auto& row : rows) {
        if (row.handoff_id != 0) sequenced_[row.handoff_id] = row.index;
      }
      while (sequenced_.size() > 200000) sequenced_.erase(sequenced_.begin());
      if (!rows.empty()) sequenced_cv_.notify_all();
    }
    if (rows.size() != end - from) {
      return Status::Internal("audit: entry " + std::to_string(have) + " is missing");
    }
  }
  return Status::Ok();
}

Status AuditLog::CatchUp() {
  std::lock_guard<std::mutex> adv(advance_mu_);
  TOANI_ASSIGN_OR_RETURN(uint64_t size, store_->Size());
  if (size <= this->size()) return Status::Ok();
  Status st = Extend(size);
  if (!st.ok()) {
    // Another node appended something that does not check out: stop appending here.
    if (st.code() == StatusCode::kInternal) SetFault(st.message());
    return st;
  }
  return Status::Ok();
}

void AuditLog::FollowerLoop() {
  uint64_t seen = 0;
  while (!stop_) {
    seen = opts_.handoff->WaitForChange(seen, std::chrono::milliseconds(250));
    if (stop_) break;
    Status st = CatchUp();
    if (!st.ok()) {
      Log(LogLevel::kWarn, "audit", "catch_up_failed", {{"error", st.message()}});
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }
}

void AuditLog::SequencerLoop() {
  uint64_t seen = 0;
  while (!stop_) {
    auto lead = opts_.handoff->TryLead();
    const bool now = lead.ok() && *lead;
    if (now != leading_.exchange(now)) {
      Log(now ? LogLevel::kInfo : LogLevel::kWarn, "audit", now ? "sequencing" : "not_sequencing",
          {{"error", lead.ok() ? "" : lead.status().message()}});
    }
    if (!now) {
      seen = opts_.handoff->WaitForChange(seen, std::chrono::milliseconds(300));
      continue;
    }
    if (Fault()) {  // a faulted log appends nothing, here or through the hand-off
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      continue;
    }
    seen = opts_.handoff->WaitForChange(UINT64_MAX, std::chrono::milliseconds(0));
    std::unique_lock<std::mutex> adv(advance_mu_);
    auto size = store_->Size();
    Status st = size.ok() ? (*size > this->size() ? Extend(*size) : Status::Ok()) : size.status();
    StatusOr<std::vector<store::HandedEntry>> queued =
        st.ok() ? opts_.handoff->Queued(opts_.max_batch)
                : StatusOr<std::vector<store::HandedEntry>>(st);
    if (!queued.ok()) {
      adv.unlock();
      if (queued.status().code() == StatusCode::kInternal) SetFault(queued.status().message());
      Log(LogLevel::kWarn, "audit", "sequencer_failed", {{"error", queued.status().message()}});
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    if (queued->empty()) {
      adv.unlock();
      seen = opts_.handoff->WaitForChange(seen, std::chrono::milliseconds(200));
      continue;
    }
    std::vector<Pending> pending(queued->size());
    std::vector<Pending*> batch;
    std::vector<int64_t> ids;
    for (size_t i = 0; i < queued->size(); ++i) {
      auto j = nlohmann::json::parse((*queued)[i].fields, nullptr, false);
      // Our own nodes queue what keyd signs; anything else is still logged (marked), never
      // dropped and never allowed to stall the queue.
      if (!j.is_object() || !j.contains("tenant") || !j["tenant"].is_string() ||
          (j.contains("user") && !j["user"].is_string())) {
        j = {{"type", "audit.handoff_unreadable"},
             {"tenant", "-"},
             {"handoff_id", (*queued)[i].id},
             {"fields_sha256", Hex(LeafHash(AsBytes((*queued)[i].fields)))}};
      }
      pending[i].fields = std::move(j);
      batch.push_back(&pending[i]);
      ids.push_back((*queued)[i].id);
    }
    uint64_t base;
    Hash prev;
    {
      std::lock_guard<std::mutex> l(mu_);
      base = range_.size();
      prev = last_leaf_;
    }
    CommitBatch(batch, base, prev, &ids);
    adv.unlock();
    if (!pending[0].result.ok()) {
      Log(LogLevel::kWarn, "audit", "sequencer_commit_failed",
          {{"error", pending[0].result.status().message()}});
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  leading_ = false;
}

StatusOr<AppendResult> AuditLog::AppendClustered(nlohmann::json fields) {
  if (auto f = Fault()) return Status::Unavailable("audit log refuses appends: " + *f);
  // This node's TEE ran the step; the sequencing node only orders and signs.
  if (!fields.contains("tee") && !opts_.tee.is_null()) fields["tee"] = opts_.tee;
  auto id = opts_.handoff->Enqueue(fields.dump());
  if (!id.ok()) return Status::Unavailable("audit log is not durable: " + id.status().message());
  const auto deadline = std::chrono::steady_clock::now() + opts_.handoff_wait;
  std::unique_lock<std::mutex> l(mu_);
  sequenced_cv_.wait_until(l, deadline, [&] { return stop_ || sequenced_.count(*id) > 0; });
  auto it = sequenced_.find(*id);
  if (it == sequenced_.end()) {
    return Status::Unavailable("audit: entry queued (hand-off " + std::to_string(*id) +
                               ") but not sequenced in time; it is appended when a sequencer runs");
  }
  AppendResult r{it->second, range_.size(), Hex(range_.Root())};
  sequenced_.erase(it);
  return r;
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
  // keyd refuses a whole batch over one bad entry: refuse it here, before it joins one.
  if (fields.contains("user") &&
      (!fields["user"].is_string() ||
       fields["user"].get_ref<const std::string&>().size() > kSignBatchMaxUser)) {
    return Status::InvalidArgument("audit: user must be a string of at most 1024 bytes");
  }
  if (opts_.handoff != nullptr) return AppendClustered(std::move(fields));
  if (!fields.contains("tenant") || !fields["tenant"].is_string())
    return Status::InvalidArgument("audit: tenant must be a string");
  Pending p;
  {
    nlohmann::json& e = fields;
    if (!e.contains("tee") && !opts_.tee.is_null()) e["tee"] = opts_.tee;
    for (const char* k : {"v", "index", "time", "prev", "sig", "user_ref"}) e.erase(k);
    if (auto u = e.find("user"); u != e.end()) {
      p.item.user = u->get<std::string>();
      e.erase(u);
    }
    auto body = TryCanonicalizeJson(e);
    if (!body.ok()) return Status::InvalidArgument("audit: " + body.status().message());
    auto members = ScanCanonicalObject(*body);
    if (!members.ok()) return Status::InvalidArgument("audit: " + members.status().message());
    p.item.body = std::move(*body);
    // An entry that cannot travel to keyd and back in one frame, even alone, can never be
    // stored (the same budget as SendBatchLocked's).
    if (35 + SignItemEncodedSize(p.item) + 96 + kSignReplyGrowthPerEntry > kSignFrameBudget)
      return Status::InvalidArgument("audit: entry too large to be signed");
    p.members = std::move(*members);
    p.prepared = true;
  }
  std::unique_lock<std::mutex> lk(mu_);
  if (fault_) return Status::Unavailable("audit log refuses appends: " + *fault_);
  queue_.push_back(&p);
  // Wake the leader only when it can send now: it waits for an entry only when the
  // queue is empty, and otherwise for a free slot (the writer wakes it for that).
  if (leader_active_ && queue_.size() == 1 && unfinished_ < kMaxInFlight &&
      (unfinished_ == 0 || submit_epoch_ == epoch_)) {
    leader_cv_.notify_one();
  }
  // Wait until our entry is committed, or until there is no leader and we are first in
  // line (a leader hands over to the front of the queue when it leaves).
  p.cv.wait(lk, [&] { return p.done || (!leader_active_ && queue_.front() == &p); });
  if (p.done) return std::move(p.result);
  leader_active_ = true;
  // Lead until our own entry is durable: send waiting entries to keyd in batches, keeping
  // up to kMaxInFlight batches between keyd and disk (the writer thread takes all that
  // keyd has been sent and stores them in one transaction).
  while (!p.done) {
    // After a failure, batches still in flight chain from entries that will never be
    // stored: wait until they are gone, then chain explicitly from the stored log.
    const bool can_chain = unfinished_ == 0 || submit_epoch_ == epoch_;
    if (queue_.empty() || unfinished_ >= kMaxInFlight || !can_chain) {
      leader_cv_.wait(lk);
      continue;
    }
    SendBatchLocked(lk);
  }
  leader_active_ = false;
  if (!queue_.empty()) queue_.front()->cv.notify_one();
  return std::move(p.result);
}

void AuditLog::SendBatchLocked(std::unique_lock<std::mutex>& lk) {
  std::vector<Pending*> batch;
  size_t bytes = 35;
  while (!queue_.empty() && batch.size() < opts_.max_batch) {
    const Pending* q = queue_.front();
    // + index, time and v members inserted below, + what keyd adds in its reply (which
    // must fit one frame too)
    const size_t size = SignItemEncodedSize(q->item) + 96 + kSignReplyGrowthPerEntry;
    if (!batch.empty() && bytes + size > kSignFrameBudget) break;
    bytes += size;
    batch.push_back(queue_.front());
    queue_.pop_front();
  }
  std::optional<Hash> prev;
  uint64_t base = sign_next_;
  if (unfinished_ == 0) {  // nothing in flight: chain from the stored log
    base = range_.size();
    prev = last_leaf_;
  }
  sign_next_ = base + batch.size();
  submit_epoch_ = epoch_;
  const uint64_t epoch = epoch_;
  ++unfinished_;
  lk.unlock();
  const std::string time = FormatRfc3339(opts_.clock());
  const std::string time_member = "\"time\":" + nlohmann::json(time).dump();
  const std::string v_member = "\"v\":" + std::to_string(kEntryVersion);
  std::vector<SignItem> items;
  items.reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    Pending* q = batch[i];
    SignItem item;
    item.user = std::move(q->item.user);
    item.body = InsertMembers(q->item.body, q->members,
                              {{"index", "\"index\":" + std::to_string(base + i)},
                               {"time", time_member},
                               {"v", v_member}});
    items.push_back(std::move(item));
  }
  // Only this (leader) thread sends, so batches reach keyd in index order.
  auto call = signer_->SubmitItems(prev, std::move(items));
  lk.lock();
  in_flight_.push_back({std::move(batch), base, epoch, std::move(call)});
  writer_cv_.notify_one();
}

namespace {
// Why a signed batch from keyd cannot be stored after `last_leaf` at `size`, or "".
std::string ChainBreak(const std::vector<std::string>& entries, uint64_t size,
                       const Hash& last_leaf) {
  if (entries.empty()) return "keyd returned no entries";
  auto members = ScanCanonicalObject(entries.front());
  if (!members.ok()) return "keyd returned a non-canonical entry";
  std::string index, prev;
  for (const TopMember& m : *members) {
    const std::string_view v =
        std::string_view(entries.front()).substr(m.value_begin, m.end - m.value_begin);
    if (m.name == "index") index = v;
    if (m.name == "prev") prev = v;
  }
  if (index != std::to_string(size)) return "keyd's batch does not start at the log's size";
  if (prev != "\"" + Hex(last_leaf) + "\"")
    return "keyd's batch does not chain from the last stored entry";
  return "";
}
}  // namespace

void AuditLog::WriterLoop() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    writer_cv_.wait(lk, [&] { return stop_ || !in_flight_.empty(); });
    if (in_flight_.empty()) return;  // stopping, and everything handed over is stored
    // Group commit across batches: every batch already sent to keyd is taken, checked to
    // chain on from the one before it (the first from the stored log), and all of them
    // are stored in one transaction, one fsync. keyd answers them in order while the
    // previous group is being written, so waiting for them costs little.
    SignedBatch group;
    size_t taken = 0;
    uint64_t next = range_.size();
    Hash last = last_leaf_;
    while (!in_flight_.empty() && (taken == 0 || in_flight_.front().epoch == epoch_)) {
      InFlight f = std::move(in_flight_.front());
      in_flight_.pop_front();
      ++taken;
      lk.unlock();
      StatusOr<std::vector<std::string>> entries = f.call->Await();
      f.call.reset();
      std::vector<Hash> leaves;
      if (entries.ok()) {
        leaves.reserve(entries->size());
        for (const std::string& e : *entries) leaves.push_back(LeafHash(AsBytes(e)));
      }
      lk.lock();
      std::string why;
      if (!entries.ok()) {
        why = entries.status().message();
      } else if (f.epoch != epoch_) {
        why = "an earlier batch could not be signed or stored";
      } else if (entries->size() != f.pending.size()) {
        why = "keyd returned a batch of the wrong size";
      } else {
        why = ChainBreak(*entries, next, last);
      }
      if (!why.empty()) {
        FailLocked(f.pending, why);
        // Every batch sent after this one chains from it: void them. The batches
        // already in the group chain from the stored log and are still stored.
        if (f.epoch == epoch_) ++epoch_;
        break;
      }
      if (group.rows.empty()) group.base = f.base, group.epoch = f.epoch;
      for (size_t i = 0; i < f.pending.size(); ++i) {
        store::AuditRow row;
        row.index = f.base + i;
        row.entry = std::move((*entries)[i]);
        row.leaf_hash = leaves[i];
        group.rows.push_back(std::move(row));
        group.leaves.push_back(leaves[i]);
        group.pending.push_back(f.pending[i]);
      }
      next = f.base + f.pending.size();
      last = leaves.back();
    }
    if (!group.rows.empty()) {
      lk.unlock();
      StoreBatch(group, nullptr);
      lk.lock();
    }
    unfinished_ -= taken;
    if (unfinished_ == 0) sign_next_ = range_.size();
    leader_cv_.notify_one();  // slots are free; the leader's own entry may be among them
  }
}

void AuditLog::CommitBatch(std::vector<Pending*> batch, uint64_t base, Hash prev,
                           const std::vector<int64_t>* handoff_ids) {
  uint64_t epoch;
  {
    std::lock_guard<std::mutex> l(mu_);
    epoch = epoch_;
  }
  std::optional<SignedBatch> b = SignBatch(std::move(batch), base, prev, epoch);
  if (b) StoreBatch(*b, handoff_ids);
}

// Runs without mu_ held; batches are signed one at a time, in index order.
std::optional<AuditLog::SignedBatch> AuditLog::SignBatch(std::vector<Pending*> batch, uint64_t base,
                                                         Hash prev, uint64_t epoch) {
  // The cluster sequencer's batches (single-node batches go through SendBatchLocked).
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
  StatusOr<std::vector<std::string>> signed_entries = signer_->SignEntries(prev, unsigned_entries);
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

// Batches arrive in index order (the writer thread, or the cluster sequencer).
void AuditLog::StoreBatch(SignedBatch& b, const std::vector<int64_t>* handoff_ids) {
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
  Status st;
  if (handoff_ids != nullptr) {
    for (size_t i = 0; i < b.rows.size(); ++i) b.rows[i].handoff_id = (*handoff_ids)[i];
    st = opts_.handoff->AppendSequenced(b.rows, tiles);
  } else {
    st = store_->AppendBatch(b.rows, tiles);
  }
  std::lock_guard<std::mutex> l(mu_);
  if (!st.ok()) {
    hashes_.Truncate(b.base);
    FailLocked(b.pending, st.message());
    // Every batch sent after this one chains from entries that were never stored: the
    // writer fails them as it takes them (their epoch is over).
    ++epoch_;
    return;
  }
  for (size_t i = 0; i < b.leaves.size(); ++i) {
    range_.Append(b.leaves[i]);
    b.pending[i]->result = AppendResult{b.base + i, range_.size(), ""};
  }
  last_leaf_ = b.leaves.back();
  if (handoff_ids != nullptr) {
    for (size_t i = 0; i < b.rows.size(); ++i) sequenced_[b.rows[i].handoff_id] = b.rows[i].index;
    sequenced_cv_.notify_all();
  }
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
