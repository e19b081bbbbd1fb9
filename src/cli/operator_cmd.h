// `toani operator {status,init,unseal,rekey}` and `toani tenant rotate-key`, and the
// attestation check every command runs before it seals anything to keyd.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "cli/client.h"
#include "common/encoding.h"
#include "common/status.h"

namespace toani::cli {

struct OperatorArgs {
  CLI::App* status = nullptr;
  CLI::App* init = nullptr;
  CLI::App* unseal = nullptr;
  CLI::App* rekey = nullptr;
  CLI::App* rotate = nullptr;
  int shares = 5, threshold = 3;
  std::string share;  // unseal: one share on the command line (default: read stdin)
  bool reset = false;
  bool allow_simulated = false;
  bool refuse_simulated = false;
};

// Adds the subcommands to `app` (the `--allow-simulated` flag goes on `credential_add` too).
void AddOperatorCommands(CLI::App& app, CLI::App* credential_add, OperatorArgs* args);

// Runs the chosen operator/tenant subcommand; returns its exit code, or -1 if none ran.
int RunOperatorCommands(const OperatorArgs& args, const ApiClient& client,
                        const std::string& data_dir);

// Fetches keyd's attestation evidence for a fresh nonce, verifies it, and returns
// keyd's intake public key (raw 32 bytes). Simulated evidence is refused unless
// allowed: by --allow-simulated, or by default when DATA/server.json says "dev": true
// (--refuse-simulated overrides that).
StatusOr<Bytes> VerifiedIntakeKey(const ApiClient& client, const OperatorArgs& args,
                                  const std::string& data_dir);

}  // namespace toani::cli
