// A dev-mode KeyService in a private temporary directory, shared by one fuzz process.
#pragma once

#include <stdlib.h>

#include <string>

#include "keyd/key_service.h"
#include "keyd/secure_memory.h"

namespace toani::fuzz {

inline keyd::KeyService& Service() {
  static keyd::KeyService* svc = [] {
    // As in toani-keyd: every secret lives in the arena.
    if (!keyd::InstallSecretArena(2 << 20).ok()) abort();
    char tmpl[] = "/tmp/toani-fuzz-XXXXXX";
    keyd::KeydOptions o;
    o.state_dir = ::mkdtemp(tmpl);
    o.dev = true;
    o.measurement = std::string(64, 'f');
    auto s = keyd::KeyService::Open(o);
    if (!s.ok()) abort();
    return std::move(s).value().release();
  }();
  return *svc;
}

}  // namespace toani::fuzz
