// `toani pki init|issue|revoke`: the tenant PKI (docs/api.md "Identities and roles").
// Works on the files under DATA/pki; needs no running server. A tenant's CA lives in
// DATA/pki/tenants/<tenant>/ (the dev tenant's in DATA/pki/ when made by --dev).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace toani::cli {

struct PkiArgs {
  CLI::App* init = nullptr;
  CLI::App* issue = nullptr;
  CLI::App* revoke = nullptr;
  std::string tenant = "dev";
  std::string name, kind = "user", out, serial, cert;
  std::vector<std::string> roles;
};

void AddPkiCommands(CLI::App& app, PkiArgs* args);

// Runs the chosen pki subcommand; returns its exit code, or -1 if none ran.
// `json_output`: print one JSON object instead of text.
int RunPkiCommand(const PkiArgs& args, const std::string& data_dir, bool json_output);

}  // namespace toani::cli
