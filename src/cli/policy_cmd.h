// `toani policy keygen|sign|apply|get|history|diff|simulate|register-key|keys|revoke-key`
// and `toani approval list|show|approve|deny` (docs/policy.md). keygen and sign work
// offline; the private key never leaves the admin's file.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/status.h"

namespace toani::cli {

struct PolicyCommands {
  CLI::App *keygen = nullptr, *sign = nullptr, *apply = nullptr, *get = nullptr,
           *history = nullptr, *diff = nullptr, *simulate = nullptr, *register_key = nullptr,
           *keys = nullptr, *revoke_key = nullptr;
  CLI::App *approvals_list = nullptr, *approval_show = nullptr, *approve = nullptr,
           *deny = nullptr;
  std::string file, out, key_file, name, public_key, policy_id, key_id;
  int64_t version = 0, from = 0, to = 0;
  bool do_register = false;
  std::string agent, action, params = "{}", user, at, candidate, status = "pending", approval_id,
                               comment;
};

// Adds the subcommands to `policy` and a new `approval` command to `app`.
std::unique_ptr<PolicyCommands> AddPolicyCommands(CLI::App& app, CLI::App* policy);
// The exit code when one of these subcommands was chosen, nullopt otherwise.
std::optional<int> RunPolicyCommand(const PolicyCommands& c, const std::string& data_dir);

// Reads a policy document or signed envelope: JSON, or YAML for *.yaml / *.yml.
StatusOr<nlohmann::json> ReadPolicyFile(const std::string& path);

}  // namespace toani::cli
