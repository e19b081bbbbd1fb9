// toani-keyd: the key boundary (stands in for an SGX enclave). Links only libsodium
// and libcrypto. Reads framed requests on fd 3 (a socketpair end handed over by the
// server) and answers them; exits when the server closes the socket.
//
// Start-up order matters: harden the process, map secret memory (before any secret
// exists), check the peer, load state, measure the executable, then lock the process
// down with seccomp before reading the first request.
#include <fcntl.h>
#include <malloc.h>
#include <sodium.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/encoding.h"
#include "common/secret.h"
#include "keyd/key_service.h"
#include "keyd/protocol.h"
#include "keyd/seccomp.h"
#include "keyd/secure_memory.h"

namespace {

constexpr size_t kSecretArenaBytes = 2 << 20;  // within the default 8 MiB RLIMIT_MEMLOCK

// SHA-256 of our own binary, read in large chunks (a RelWithDebInfo binary is tens of
// MiB: reading it a byte at a time made every keyd start slow).
std::string MeasureSelf() {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  const int fd = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    std::vector<uint8_t> buf(1 << 16);
    for (;;) {
      const ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      crypto_hash_sha256_update(&st, buf.data(), static_cast<unsigned long long>(n));
    }
    ::close(fd);
  }
  uint8_t h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&st, h);
  return toani::HexEncode(std::span<const uint8_t>(h, sizeof h));
}

int Die(const char* event, const std::string& why) {
  std::fprintf(stderr,
               "{\"component\":\"keyd\",\"level\":\"error\",\"event\":\"%s\",\"error\":\"%s\"}\n",
               event, why.c_str());
  return 1;
}

// The socket must be a Unix stream socket whose peer runs as our own uid.
toani::Status CheckPeer(int fd) {
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
    return toani::Status::PermissionDenied("fd is not a stream socket");
  }
  struct ucred cred {};
  len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return toani::Status::PermissionDenied("SO_PEERCRED failed (not a Unix socket?)");
  }
  if (cred.uid != ::getuid()) return toani::Status::PermissionDenied("peer runs as another uid");
  return toani::Status::Ok();
}

int Usage() {
  std::fprintf(stderr, "usage: toani-keyd [--dev] --state-dir DIR [--fd N]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // No core dumps, no ptrace attach from same-uid processes.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  struct rlimit no_core {
    0, 0
  };
  ::setrlimit(RLIMIT_CORE, &no_core);
  std::signal(SIGPIPE, SIG_IGN);
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
  // Audit batches make frames of up to 1 MiB each way on every group commit: keep them in
  // the heap instead of a fresh mmap (and page faults) per frame.
  ::mallopt(M_MMAP_THRESHOLD, 4 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 16 << 20);
  if (auto st = toani::keyd::InstallSecretArena(kSecretArenaBytes); !st.ok()) {
    return Die("secret_memory_failed", st.message());
  }
  if (auto st = CheckPeer(fd); !st.ok()) return Die("peer_refused", st.message());
  opts.measurement = MeasureSelf();
  auto svc = toani::keyd::KeyService::Open(opts);
  if (!svc.ok()) return Die("start_failed", svc.status().message());
  if (auto st = toani::keyd::InstallKeydSeccompFilter(); !st.ok())
    return Die("seccomp_failed", st.message());
  // Frames are read through a buffer, and the replies to every frame that arrived
  // together go back in one write: under load the server's reader wakes once for them.
  toani::keyd::FrameReader reader(fd);
  std::vector<std::string> replies;
  size_t reply_bytes = 0;
  const auto flush = [&] {
    const bool ok = toani::keyd::WriteRawFrames(fd, replies).ok();
    for (std::string& r : replies) toani::SecureWipe(r.data(), r.size());
    replies.clear();
    reply_bytes = 0;
    return ok;
  };
  for (;;) {
    auto frame = reader.Next();
    if (!frame.ok()) {
      if (!flush()) return 0;
      if (frame.status().code() == toani::StatusCode::kUnavailable) return 0;  // server went away
      (void)toani::keyd::WriteFrame(fd, toani::keyd::ErrorReply(frame.status()));
      return 1;  // framing is broken: the stream cannot be resynchronised
    }
    if (toani::keyd::IsBinaryFrame(
            *frame)) {  // audit.sign_batch*, token.mint (formats.md §1.1–§1.3)
      // Signing a batch takes one Ed25519 signature per entry: the replies held so far
      // (token mints, typically) go out first rather than wait for it.
      const auto type = static_cast<unsigned char>((*frame)[0]);
      if ((type == 0x01 || type == 0x02) && !replies.empty() && !flush()) return 0;
      replies.push_back((*svc)->HandleBinary(*frame));
      toani::SecureWipe(frame->data(), frame->size());  // user names
    } else {
      auto req = toani::keyd::DecodeFrameBody(*frame);
      toani::SecureWipe(frame->data(), frame->size());
      // A whole frame that is just not JSON is answered, and reading goes on.
      replies.push_back(req.ok() ? (*svc)->Handle(*req).dump()
                                 : toani::keyd::ErrorReply(req.status()).dump());
    }
    if (replies.back().size() > toani::keyd::kMaxFrameBytes) {
      // Cannot be framed: refuse this request rather than break the stream for all.
      toani::SecureWipe(replies.back().data(), replies.back().size());
      replies.back() = toani::keyd::ErrorReply(
                           toani::Status::InvalidArgument(
                               "keyd: the reply would exceed the 1 MiB frame limit: send less "
                               "in one request"))
                           .dump();
    }
    reply_bytes += replies.back().size();
    // Reply now unless more frames are already here (and the replies held are small).
    if ((!reader.HasFrame() || reply_bytes >= (256u << 10)) && !flush()) return 0;
  }
}
