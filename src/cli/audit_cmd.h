// `toani audit export|verify|prove|consistency|key` (docs/audit-format.md §7).
// verify runs offline: it never contacts a server.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace toani::cli {

struct AuditCommands {
  CLI::App *export_cmd = nullptr, *verify = nullptr, *prove = nullptr, *consistency = nullptr,
           *key = nullptr;
  uint64_t from = 0, to = 0, index = 0;
  std::string out, file, vkey;
};

// Adds the subcommands to `audit`; the returned struct holds their flag values.
std::unique_ptr<AuditCommands> AddAuditCommands(CLI::App* audit);
// The exit code when one of these subcommands was chosen, nullopt otherwise.
std::optional<int> RunAuditCommand(const AuditCommands& c, const std::string& data_dir);

}  // namespace toani::cli
