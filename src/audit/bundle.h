// Audit export bundles (docs/audit-format.md §7): C2SP tlog-proofs plus the entries, the
// checkpoint, the attestation evidence and a plain-text verification guide, in one text
// file — and the offline verifier behind `toani audit verify`. Pure and thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "audit/merkle.h"
#include "audit/note.h"
#include "common/status.h"

namespace toani::audit {

struct BundleEntry {
  uint64_t index = 0;
  std::string entry;        // the stored bytes
  std::vector<Hash> proof;  // inclusion proof against the checkpoint
};

struct BundleParts {
  std::string vkey;
  nlohmann::json attestation;  // keyd status: measurement, simulated
  std::string checkpoint;      // signed note
  std::vector<BundleEntry> entries;
};

// "c2sp.org/tlog-proof@v1\nindex I\n<b64 proof lines>\n\n<checkpoint>".
std::string FormatTlogProof(uint64_t index, const std::vector<Hash>& proof,
                            std::string_view checkpoint);
struct TlogProof {
  uint64_t index = 0;
  std::vector<Hash> proof;
  std::string checkpoint;
};
StatusOr<TlogProof> ParseTlogProof(std::string_view text);

std::string BuildBundle(const BundleParts& parts);

struct VerifyReport {
  std::vector<std::string> checked;   // one line per check that passed
  std::vector<std::string> failures;  // one line per check that failed
  bool ok() const { return failures.empty() && !checked.empty(); }
};
// Checks everything in the bundle against `key` (which the auditor pinned); never
// trusts the bundle's own copy of the key.
VerifyReport VerifyBundle(std::string_view bundle, const VerifierKey& key);

}  // namespace toani::audit
