// The bubblewrap command line. Every path that becomes visible in the sandbox is named
// here, with why. See docs/connector-protocol.md §6.
#include <sys/stat.h>

#include <algorithm>
#include <string>
#include <vector>

#include "sandbox/sandbox_runner.h"

namespace toani {
namespace {

bool IsUnder(std::string_view path, std::string_view dir) {
  return path == dir ||
         (path.size() > dir.size() && path.substr(0, dir.size()) == dir && path[dir.size()] == '/');
}

Status CheckSandboxPath(const std::string& p) {
  const auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("sandbox path '" + p + "': " + std::string(why));
  };
  if (p.size() < 2 || p.front() != '/') return bad("must be absolute and not /");
  if (p.back() == '/' || p.find("//") != p.npos) return bad("no empty components");
  if (p.find("/../") != p.npos || p.ends_with("/..") || p.find("/./") != p.npos ||
      p.ends_with("/.")) {
    return bad("no . or .. components");
  }
  if (std::any_of(p.begin(), p.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20; })) {
    return bad("no control characters");
  }
  for (std::string_view reserved :
       {"/proc", "/dev", "/usr", "/tmp", "/lib", "/lib64", "/bin", "/sbin", "/etc/ssl/certs"}) {
    if (IsUnder(p, reserved)) return bad("reserved location");
  }
  if (p == kSandboxConnectorPath || p == kSandboxEgressSocketPath) return bad("reserved location");
  return Status::Ok();
}

Status CheckHostPath(const std::string& p, std::string_view what) {
  struct stat st {};
  if (p.empty() || p.front() != '/') {
    return Status::InvalidArgument(std::string(what) + ": host path must be absolute");
  }
  if (::stat(p.c_str(), &st) != 0) {
    return Status::InvalidArgument(std::string(what) + ": host path '" + p + "' does not exist");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::vector<std::string>> BuildBwrapArgv(const BwrapOptions& options,
                                                  const SandboxSpec& spec) {
  TOANI_RETURN_IF_ERROR(CheckHostPath(spec.connector_path, "connector_path"));
  if (!spec.egress_socket_host_path.empty()) {
    TOANI_RETURN_IF_ERROR(CheckHostPath(spec.egress_socket_host_path, "egress_socket_host_path"));
  }
  for (const BindMount& b : spec.ro_binds) {
    TOANI_RETURN_IF_ERROR(CheckHostPath(b.host_path, "ro_binds"));
    TOANI_RETURN_IF_ERROR(CheckSandboxPath(b.sandbox_path));
  }
  if (spec.tmpfs_bytes == 0 || spec.wall_timeout.count() <= 0) {
    return Status::InvalidArgument("tmpfs_bytes and wall_timeout must be positive");
  }

  std::vector<std::string> a = {
      options.bwrap_path,
      // New user, pid, ipc, uts, net and cgroup namespaces (mount is implied). The net
      // namespace has only a down loopback: the egress socket is the only way out.
      "--unshare-all",
      // --unshare-all only *tries* the user namespace; insist on it (and
      // --disable-userns requires it).
      "--unshare-user",
      // No nested user namespaces: they would hand the connector a full capability set
      // (inside them) and a large kernel attack surface.
      "--disable-userns",
      // Outer bwrap dying (server gone, Kill()) takes the sandbox with it.
      "--die-with-parent",
      // setsid(): no controlling terminal, so no TIOCSTI injection into ours.
      "--new-session",
      "--cap-drop",
      "ALL",
      "--uid",
      "65534",
      "--gid",
      "65534",
      "--hostname",
      "toani-sandbox",
      "--clearenv",
      // Shared libraries and nothing else from the host's /usr.
      "--ro-bind",
      "/usr",
      "/usr",
  };
  // Merged-/usr symlinks (Debian 12): recreate them as symlinks; bind real directories.
  for (const char* top : {"/lib", "/lib64", "/bin", "/sbin"}) {
    struct stat st {};
    if (::lstat(top, &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char target[256] = {};
      const ssize_t n = ::readlink(top, target, sizeof target - 1);
      if (n <= 0) continue;
      a.insert(a.end(), {"--symlink", std::string(target, static_cast<size_t>(n)), top});
    } else if (S_ISDIR(st.st_mode)) {
      a.insert(a.end(), {"--ro-bind", top, top});
    }
  }
  a.insert(a.end(), {
                        // Public CA certificates for TLS verification.
                        "--ro-bind-try",
                        "/etc/ssl/certs",
                        "/etc/ssl/certs",
                        "--proc",
                        "/proc",  // the sandbox's own pid namespace only
                        "--dev",
                        "/dev",  // null, zero, random, urandom, tty...
                        "--size",
                        std::to_string(spec.tmpfs_bytes),
                        "--tmpfs",
                        "/tmp",
                        "--dir",
                        "/run/toani",
                        "--ro-bind",
                        spec.connector_path,
                        std::string(kSandboxConnectorPath),
                    });
  if (!spec.egress_socket_host_path.empty()) {
    // A read-only bind still allows connect(): the read-only flag applies to regular
    // files, directories and symlinks, not sockets.
    a.insert(a.end(),
             {"--ro-bind", spec.egress_socket_host_path, std::string(kSandboxEgressSocketPath)});
  }
  for (const BindMount& b : spec.ro_binds) {
    a.insert(a.end(), {"--ro-bind", b.host_path, b.sandbox_path});
  }
  a.insert(a.end(), {
                        // The tmpfs root (and /run/toani) becomes read-only: only /tmp is
                        // writable.
                        "--remount-ro",
                        "/",
                        "--chdir",
                        "/tmp",
                    });
  if (spec.seccomp != SeccompProfile::kNone) {
    // The allow-list (seccomp_policy.cc), loaded by bwrap right before it executes the
    // connector: nothing the connector runs is ever outside it.
    a.insert(a.end(), {"--seccomp", std::to_string(kSeccompFd)});
  }
  a.insert(a.end(), {
                        "--",
                        std::string(kSandboxConnectorPath),
                    });
  return a;
}

}  // namespace toani
