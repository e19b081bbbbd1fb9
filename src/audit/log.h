// AuditLog: the append-only, hash-chained, keyd-signed, Merkle-rooted event log
// (docs/audit-format.md). Every append is durable before Append returns OK; concurrent
// appends are group-committed (one keyd call, one fsync'd transaction per batch). A
// failed append is reported so the caller can refuse the step (fail closed).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "audit/merkle.h"
#include "audit/signer.h"
#include "audit/tiles.h"
#include "common/status.h"
#include "common/time.h"
#include "store/audit_store.h"

namespace toani::audit {

struct AppendResult {
  uint64_t index = 0;
  uint64_t tree_size = 0;
  std::string root_hex;
};

struct AuditLogOptions {
  Clock clock = SystemClock();
  // Added to every entry that has no "tee" ({"measurement", "simulated"}); default none.
  nlohmann::json tee;
  size_t max_batch = 512;  // entries per group commit (keyd accepts up to 1024)
  bool verify_signatures_on_open = true;
  // Cluster mode (docs/storage.md §2): Append hands entries to the sequencer through
  // this queue in the shared database, and this node sequences every queued entry while
  // it holds the sequencer lock. nullptr: a single node appending directly.
  store::AuditHandoff* handoff = nullptr;
  // Cluster mode: how long Append waits for its entry to be sequenced.
  std::chrono::milliseconds handoff_wait{30000};
};

// On a single node, appends are pipelined in two stages: the leader among waiting
// Append calls takes a batch, has keyd chain and sign it, and hands it to the log's
// writer thread, which stores it in one fsync'd transaction; meanwhile the leader signs
// the next batch. An Append returns only after its batch is durable. If a store write
// fails, that batch and every batch signed after it fail (their chain starts from
// entries that were never stored), and signing restarts from the last durable entry.
class AuditLog {
 public:
  // Re-reads the whole log and refuses (Internal, saying where) one that does not check
  // out: a gap, a non-canonical or wrongly signed entry, a wrong leaf hash, a broken
  // `prev` chain, or a stored tile that differs from the tile recomputed from the entries.
  static StatusOr<std::unique_ptr<AuditLog>> Open(store::AuditStore* store, AuditSigner* signer,
                                                  AuditLogOptions opts);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Adds v, index, time, tee, prev, sig (keyd replaces a "user" field by "user_ref") and
  // appends durably. Unavailable when the store or keyd fails, or the log is faulted.
  StatusOr<AppendResult> Append(nlohmann::json fields);

  uint64_t size() const;
  std::string RootHex() const;
  const VerifierKey& key() const { return signer_->key(); }

  // The signed checkpoint note for the current size (re-signed only when the size changed).
  StatusOr<std::string> Checkpoint();
  StatusOr<Hash> RootAt(uint64_t size) const;
  StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size) const;
  StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t size1, uint64_t size2) const;
  // C2SP tlog-tiles resources for the current tree: hash tiles and entry bundles.
  StatusOr<std::string> Tile(const TileRef& ref) const;
  StatusOr<std::vector<std::string>> Entries(uint64_t from, uint64_t to) const;

  // Marks the log unusable (e.g. rolled back or forked relative to a witness): every
  // later Append fails. Fault() says why; nullopt while healthy.
  void SetFault(std::string reason);
  std::optional<std::string> Fault() const;

  // Cluster mode: entries go through the shared hand-off (other nodes append too).
  bool Clustered() const { return opts_.handoff != nullptr; }
  // Cluster mode: true while this node holds the sequencer lock.
  bool Sequencing() const { return leading_.load(); }
  // Cluster mode: reads (and verifies) entries other nodes' sequencers appended.
  Status CatchUp();

 private:
  struct Pending;
  AuditLog(store::AuditStore* store, AuditSigner* signer, AuditLogOptions opts)
      : store_(store), signer_(signer), opts_(std::move(opts)) {}
  // `handoff_ids` (cluster sequencer): the queued entries the batch sequences.
  struct SignedBatch {  // signed, in index order, waiting to be stored
    std::vector<Pending*> pending;
    uint64_t base = 0;
    uint64_t epoch = 0;
    std::vector<store::AuditRow> rows;
    std::vector<Hash> leaves;
  };
  // Signs a batch (no lock held); returns nullopt after failing its entries.
  std::optional<SignedBatch> SignBatch(std::vector<Pending*> batch, uint64_t base, Hash prev,
                                       uint64_t epoch);
  // Stores a signed batch (no lock held) and completes its entries; on failure also
  // voids every batch signed after it.
  void StoreBatch(SignedBatch& b, const std::vector<int64_t>* handoff_ids);
  void WriterLoop();
  void FailLocked(const std::vector<Pending*>& batch, const std::string& why);
  // Sign then store, synchronously (the cluster sequencer).
  void CommitBatch(std::vector<Pending*> batch, uint64_t base, Hash prev,
                   const std::vector<int64_t>* handoff_ids = nullptr);
  // Reads entries [size(), to) from the store, checks them as Open does and adds them to
  // the tree. Caller holds advance_mu_ (or is Open).
  Status Extend(uint64_t to);
  StatusOr<AppendResult> AppendClustered(nlohmann::json fields);
  void SequencerLoop();
  void FollowerLoop();

  store::AuditStore* store_;
  AuditSigner* signer_;
  AuditLogOptions opts_;
  mutable std::mutex mu_;
  std::deque<Pending*> queue_;
  bool leader_active_ = false;
  std::condition_variable leader_cv_;  // wakes the leader: new entries or a stored batch
  // Single node (docs/audit-format.md §6, pipelining): batches sent to keyd, in index
  // order, waiting for the writer thread to take keyd's answer and store them. The first
  // after an idle moment is chained explicitly from the stored log (last_leaf_); each
  // later one is sent at once as audit.sign_batch_next, so keyd is never idle between
  // batches. The writer checks every answer still chains from the stored log.
  struct InFlight {
    std::vector<Pending*> pending;
    uint64_t base = 0;
    uint64_t epoch = 0;
    std::unique_ptr<AuditSigner::PendingBatch> call;
  };
  std::deque<InFlight> in_flight_;
  size_t unfinished_ = 0;      // batches sent and not yet stored or failed (incl. the writer's)
  uint64_t sign_next_ = 0;     // the next index to send, while unfinished_ > 0
  uint64_t submit_epoch_ = 0;  // epoch_ when the last batch was sent
  uint64_t epoch_ = 0;         // bumped when a batch fails; batches sent before it are void
  static constexpr size_t kMaxInFlight = 3;  // batches sent and not yet stored or failed
  // Takes a batch from queue_ (under mu_) and sends it to keyd; returns with mu_ held.
  void SendBatchLocked(std::unique_lock<std::mutex>& lk);
  std::condition_variable writer_cv_;
  std::thread writer_;
  CompactRange range_;
  TreeHashes hashes_;
  Hash last_leaf_{};
  std::optional<std::string> fault_;
  // Cluster mode.
  std::mutex advance_mu_;                 // one writer of the tree at a time: sequencer or follower
  std::condition_variable sequenced_cv_;  // with mu_
  std::map<int64_t, uint64_t> sequenced_;  // recent hand-off id → index (under mu_)
  std::atomic<bool> leading_{false};
  std::atomic<bool> stop_{false};
  std::thread sequencer_, follower_;
  std::mutex checkpoint_mu_;  // serialises signing so sizes reach keyd in order
  uint64_t checkpoint_size_ = UINT64_MAX;
  std::string checkpoint_;
};

// An export bundle (docs/audit-format.md §7) of entries [from, to) (to: default the
// checkpoint size) with C2SP tlog-proofs against the log's current signed checkpoint.
StatusOr<std::string> ExportBundle(AuditLog& log, uint64_t from, std::optional<uint64_t> to,
                                   const nlohmann::json& attestation, uint64_t max_entries = 50000);

}  // namespace toani::audit
