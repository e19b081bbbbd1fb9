// C2SP signed notes (c2sp.org/signed-note) with Ed25519 signatures, and the
// checkpoints (c2sp.org/tlog-checkpoint) carried in them. docs/audit-format.md §1, §4.
// Parsing treats its input as untrusted: every error is InvalidArgument (malformed) or
// PermissionDenied (no valid signature by the pinned key). Pure and thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "audit/merkle.h"
#include "common/status.h"

namespace toani::audit {

// An Ed25519 verifier key: "<name>+<hex key id>+<b64(0x01 || public key)>".
struct VerifierKey {
  std::string name;
  uint32_t key_id = 0;
  std::array<uint8_t, 32> public_key{};
};

// key ID = SHA-256(name || 0x0A || 0x01 || public key)[:4], big-endian.
uint32_t Ed25519KeyId(std::string_view name, const std::array<uint8_t, 32>& public_key);
// Refuses a wrong type byte, a wrong-length key, or a key id that does not match.
StatusOr<VerifierKey> ParseVerifierKey(std::string_view vkey);
std::string FormatVerifierKey(const VerifierKey& k);

// Splits a signed note into its text (ending in LF) and its signature lines, verifies
// every signature by `key` (name and id match) and returns the text. PermissionDenied if
// no signature by `key` verifies, or one by `key` fails; unknown signatures are ignored.
StatusOr<std::string> VerifyNote(std::string_view note, const VerifierKey& key);

struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  Hash root{};
};

// "<origin>\n<size>\n<b64 root>\n" — the note text of a checkpoint.
std::string CheckpointText(const Checkpoint& c);
// Parses the note text of a checkpoint (extension lines are accepted and ignored).
StatusOr<Checkpoint> ParseCheckpointText(std::string_view text);
// VerifyNote + ParseCheckpointText + origin == key name.
StatusOr<Checkpoint> VerifyCheckpoint(std::string_view note, const VerifierKey& key);

}  // namespace toani::audit
