// keyd's seccomp filter, installed after start-up (DESIGN.md §2): no new sockets, no
// exec, no ptrace, no new processes or threads, no kernel-attack-surface syscalls.
// Hand-written classic BPF installed with prctl(2), because keyd may link only
// libsodium and libcrypto (so no libseccomp). It is a deny-list: glibc, libsodium
// and OpenSSL use a wide, version-dependent set of ordinary syscalls (getrandom,
// futex, mmap, ...) that an allow-list would have to chase; what keyd must never do
// is short and is denied explicitly, with every other architecture (and the x32 ABI)
// killed outright.
#pragma once

#include "common/status.h"

namespace toani::keyd {

// Sets no_new_privs and installs the filter on the calling thread (keyd has one).
// Denied syscalls fail with EPERM. Irreversible.
Status InstallKeydSeccompFilter();

}  // namespace toani::keyd
