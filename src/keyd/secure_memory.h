// Secret memory for toani-keyd. One arena, mapped at start-up, backs every
// SecretBytes the process allocates (L0, unwrapped L1 keys, derived L2/L3 keys,
// credential plaintext, Shamir shares):
//  - preferred: memfd_secret(2) — pages removed from the kernel's direct map, so not
//    even root can read them through /proc/PID/mem or ptrace, never swapped;
//  - fallback (kernel without secretmem): anonymous memory, mlock'd, MADV_DONTDUMP,
//    MADV_WIPEONFORK. Readable by root via /proc/PID/mem; status reports which.
// Allocation is first-fit over 64-byte blocks under a mutex; freed blocks are wiped.
// When the arena is full, SecretBytes falls back to sodium_malloc.
#pragma once

#include <cstddef>
#include <string>

#include "common/status.h"

namespace toani::keyd {

// Maps the arena (bytes, rounded up to pages) and routes SecretBytes to it.
// Call once, before any SecretBytes exists and before the seccomp filter.
Status InstallSecretArena(size_t bytes);

// "memfd_secret", "mlock" or "none" (not installed).
std::string SecretArenaKind();

// Whether an address lies inside the arena (for tests).
bool InSecretArena(const void* p);

}  // namespace toani::keyd
