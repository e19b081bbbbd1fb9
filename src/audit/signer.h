// AuditSigner: the log's view of keyd's audit key (docs/audit-format.md §1, §6). The
// implementation over a KeyServiceClient is the only one; tests run a real KeyService
// in-process behind that same client interface. Thread-safe.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "audit/merkle.h"
#include "audit/note.h"
#include "audit/sign_frame.h"
#include "common/status.h"
#include "keyd/client.h"

namespace toani::audit {

class AuditSigner {
 public:
  virtual ~AuditSigner() = default;
  virtual const VerifierKey& key() const = 0;
  std::string vkey() const { return FormatVerifierKey(key()); }
  // Chains and signs `entries` (unsigned v2 objects, consecutive indices) after `prev`;
  // returns the stored entry bytes. Unavailable if keyd cannot be reached.
  virtual StatusOr<std::vector<std::string>> SignEntries(
      const Hash& prev, const std::vector<nlohmann::json>& entries) = 0;
  // The same for entries already in canonical form (SignItem: docs/formats.md §1.1).
  virtual StatusOr<std::vector<std::string>> SignItems(const Hash& prev,
                                                       std::vector<SignItem> items) = 0;
  // One batch sent to keyd and not yet answered; Await returns the stored entry bytes.
  class PendingBatch {
   public:
    virtual ~PendingBatch() = default;
    virtual StatusOr<std::vector<std::string>> Await() = 0;
  };
  // Sends `items` (one frame: at most kSignBatchMaxItems, under 1 MiB) without waiting:
  // chained after `prev` (audit.sign_batch), or, without `prev`, after the last entry keyd
  // signed (audit.sign_batch_next, docs/formats.md §1.2) — e.g. a batch still in flight.
  virtual std::unique_ptr<PendingBatch> SubmitItems(const std::optional<Hash>& prev,
                                                    std::vector<SignItem> items) = 0;
  // Returns the complete signed note for checkpoint text `text`.
  virtual StatusOr<std::string> SignCheckpoint(const std::string& text) = 0;
};

// Fetches the key with audit.public_key and checks it is a well-formed verifier key.
StatusOr<std::unique_ptr<AuditSigner>> NewKeydAuditSigner(keyd::KeyServiceClient* keyd);

}  // namespace toani::audit
