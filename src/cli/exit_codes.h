// Exit codes of every `toani` command (docs/cli.md).
#pragma once

namespace toani::cli {

inline constexpr int kExitOk = 0;           // done
inline constexpr int kExitError = 1;        // the server answered with an error, or a local failure
inline constexpr int kExitUsage = 2;        // bad flags, arguments or input
inline constexpr int kExitUnreachable = 3;  // no server address, connection or TLS failure
inline constexpr int kExitDenied = 4;   // 401 or 403: identity missing, revoked or lacking the role
inline constexpr int kExitPending = 5;  // 202: waiting for a human approval

// The exit code for an HTTP status the command did not expect.
inline int ExitForHttpStatus(long status) {
  if (status == 401 || status == 403) return kExitDenied;
  if (status == 202) return kExitPending;
  return kExitError;
}

}  // namespace toani::cli
