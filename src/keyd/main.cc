// toani-keyd: the key boundary (stands in for an SGX enclave). Links only
// libsodium and libcrypto. Reads framed requests on fd 3 (a socketpair end handed
// over by the server) and answers them; exits when the server closes the socket.
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "common/encoding.h"
#include "crypto/hash.h"
#include "keyd/key_service.h"
#include "keyd/protocol.h"

namespace {

std::string MeasureSelf() {
  std::ifstream f("/proc/self/exe", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto h = toani::crypto::Sha256(toani::AsBytes(bytes));
  return toani::HexEncode(std::span<const uint8_t>(h.data(), h.size()));
}

void Harden() {
  // No core dumps, no ptrace attach from same-uid processes.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  struct rlimit no_core {0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  std::signal(SIGPIPE, SIG_IGN);
  // TODO(issue 3): memfd_secret for key memory, seccomp filter after start-up.
}

int Usage() {
  std::fprintf(stderr, "usage: toani-keyd --dev --state-dir DIR [--fd N]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Harden();
  toani::keyd::KeydOptions opts;
  int fd = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--dev") {
      opts.dev = true;
    } else if (a == "--state-dir" && i + 1 < argc) {
      opts.state_dir = argv[++i];
    } else if (a == "--fd" && i + 1 < argc) {
      fd = std::atoi(argv[++i]);
    } else {
      return Usage();
    }
  }
  opts.measurement = MeasureSelf();
  auto svc = toani::keyd::KeyService::Open(opts);
  if (!svc.ok()) {
    std::fprintf(stderr, "{\"component\":\"keyd\",\"level\":\"error\",\"event\":\"start_failed\",\"error\":\"%s\"}\n",
                 svc.status().ToString().c_str());
    return 1;
  }
  for (;;) {
    auto req = toani::keyd::ReadFrame(fd);
    if (!req.ok()) {
      if (req.status().code() == toani::StatusCode::kUnavailable) return 0;  // server went away
      (void)toani::keyd::WriteFrame(fd, toani::keyd::ErrorReply(req.status()));
      return 1;  // framing is broken: the stream cannot be resynchronised
    }
    if (!toani::keyd::WriteFrame(fd, (*svc)->Handle(*req)).ok()) return 0;
  }
}
