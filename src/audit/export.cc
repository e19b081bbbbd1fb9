// ExportBundle (declared in log.h): entries, C2SP tlog-proofs and the checkpoint in one file.
#include "audit/bundle.h"
#include "audit/log.h"

namespace toani::audit {

StatusOr<std::string> ExportBundle(AuditLog& log, uint64_t from, std::optional<uint64_t> to,
                                   const nlohmann::json& attestation, uint64_t max_entries) {
  TOANI_ASSIGN_OR_RETURN(std::string note, log.Checkpoint());
  auto cp = VerifyCheckpoint(note, log.key());
  if (!cp.ok()) return Status::Internal("audit: own checkpoint does not verify");
  const uint64_t end = to.value_or(cp->size);
  if (from >= end || end > cp->size) {
    return Status::InvalidArgument("need 0 <= from < to <= " + std::to_string(cp->size));
  }
  if (end - from > max_entries) {
    return Status::InvalidArgument("at most " + std::to_string(max_entries) +
                                   " entries per bundle");
  }
  TOANI_ASSIGN_OR_RETURN(auto entries, log.Entries(from, end));
  if (entries.size() != end - from) return Status::Unavailable("audit: could not read every entry");
  BundleParts parts;
  parts.vkey = FormatVerifierKey(log.key());
  parts.attestation = attestation;
  parts.checkpoint = note;
  parts.entries.reserve(entries.size());
  for (uint64_t i = from; i < end; ++i) {
    TOANI_ASSIGN_OR_RETURN(auto proof, log.InclusionProof(i, cp->size));
    parts.entries.push_back({i, std::move(entries[i - from]), std::move(proof)});
  }
  return BuildBundle(parts);
}

}  // namespace toani::audit
