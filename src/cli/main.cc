// The `toani` command: server and client in one binary (like `vault`). Each
// subcommand parses its flags and calls a library; no logic lives here.
#include <sodium.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/audit_cmd.h"
#include "cli/exit_codes.h"
#include "cli/mcp_stdio.h"
#include "cli/pki_cmd.h"
#include "cli/client.h"
#include "cli/demo.h"
#include "cli/operator_cmd.h"
#include "cli/policy_cmd.h"
#include "common/encoding.h"
#include "common/secret.h"
#include "server/config.h"
#include "server/server.h"

namespace {

using nlohmann::json;
using toani::cli::ApiClient;
using toani::cli::As;

std::string SelfPath() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "toani" : p.string();
}

std::string g_format = "text";  // --format text|json (every read)

std::string Scalar(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// Text form for people: "key: value" lines; a list of objects, one line per item.
void PrintText(const json& body) {
  if (!body.is_object()) {
    std::printf("%s\n", body.dump(2).c_str());
    return;
  }
  for (const auto& [k, v] : body.items()) {
    if (v.is_array() && !v.empty() && v[0].is_object()) {
      std::printf("%s:\n", k.c_str());
      for (const auto& item : v) {
        std::string line;
        for (const auto& [ik, iv] : item.items()) line += (line.empty() ? "" : "  ") + ik + "=" + Scalar(iv);
        std::printf("  %s\n", line.c_str());
      }
    } else {
      std::printf("%s: %s\n", k.c_str(), Scalar(v).c_str());
    }
  }
}

int PrintReply(const toani::StatusOr<toani::cli::ApiReply>& r, long want) {
  using namespace toani::cli;
  if (!r.ok()) {
    std::fprintf(stderr, "error: %s\n", r.status().message().c_str());
    return r.status().code() == toani::StatusCode::kInvalidArgument ? kExitUsage : kExitUnreachable;
  }
  if (r->status != want) {
    if (g_format == "json") std::printf("%s\n", r->body.dump().c_str());
    std::fprintf(stderr, "error: %s\n", toani::cli::ProblemText(*r).c_str());
    return ExitForHttpStatus(r->status);
  }
  if (g_format == "json") {
    std::printf("%s\n", r->body.dump().c_str());
  } else {
    PrintText(r->body);
  }
  return kExitOk;
}

toani::StatusOr<ApiClient> Connect(const std::string& data) {
  const char* addr = std::getenv("TOANI_ADDR");
  return ApiClient::Connect(data, addr != nullptr ? addr : "");
}

toani::StatusOr<json> ParseJsonArg(const std::string& text, const char* what) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded())
    return toani::Status::InvalidArgument(std::string(what) + " is not valid JSON");
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) return 1;
  CLI::App app{"toani Control: agents act with credentials they never see"};
  app.require_subcommand(1);
  std::string data = toani::cli::DefaultDataDir();
  app.add_option("--data", data, "data directory (default: $TOANI_DATA or ./toani-data)");
  app.add_option("--format", g_format, "output of reads: text (default) or json")
      ->check(CLI::IsMember({"text", "json"}));
  app.footer(
      "Environment: TOANI_ADDR (https://HOST:PORT), TOANI_CLIENT_CERT, TOANI_CLIENT_KEY, "
      "TOANI_CACERT (default: the dev PKI in DATA/pki), TOANI_DATA, TOANI_CONFIG.\n"
      "Exit codes: 0 ok, 1 error answer or local failure, 2 usage, 3 server unreachable or "
      "TLS failure, 4 unauthenticated/forbidden (401/403), 5 approval pending (202).");

  // toani server
  auto* server = app.add_subcommand("server", "run the server (HTTPS, mTLS) with its keyd");
  bool dev = false;
  std::string listen = "127.0.0.1:8443";
  server->add_flag("--dev", dev,
                   "development mode: dev root key file (auto-unseal), dev CA, loopback only. "
                   "Without it keyd starts sealed: toani operator init / unseal");
  auto* server_data = server->add_option("--data", data, "data directory");
  auto* server_listen = server->add_option("--listen", listen, "HOST:PORT (port 0 picks a free one)");
  std::string config_file;
  server->add_option("--config", config_file,
                     "JSON config file (docs/configuration.md; default $TOANI_CONFIG); flags "
                     "given on the command line win over it");
  bool print_config = false;
  server->add_flag("--print-config", print_config,
                   "print the effective configuration (defaults < file < flags) and exit");
  std::vector<std::string> witness_dirs, witness_urls;  // docs/audit-format.md §8
  server->add_option(
      "--witness-dir", witness_dirs,
      "publish audit checkpoints to this directory (repeatable; default DATA/witness)");
  server->add_option("--witness-url", witness_urls,
                     "C2SP tlog-witness submission prefix, https (repeatable)");
  std::string replay_store;
  server->add_option("--replay-store", replay_store,
                     "embedded (default; with a postgres --store: postgres) or redis://HOST:PORT "
                     "(Redis 7, fail closed)");
  std::string store_url, node_name;
  server->add_option("--store", store_url,
                     "sqlite (default: DATA/toani.db), sqlite:PATH, or postgres://… shared by every node "
                     "(password from PGPASSWORD or ~/.pgpass, not the URL)");
  server->add_option("--node", node_name, "this node's name in the cluster (default hostname-pid)");
  std::vector<std::string> resolver_overrides;
  server->add_option("--resolver-override", resolver_overrides,
                     "PATTERN=IP: egress names matching PATTERN go to IP without the "
                     "global-address check (local test targets only; logged; off by default)");
  std::string connector_ca, public_url, public_listen;
  server->add_option("--public-listen", public_listen,
                     "HOST:PORT of a second listener without client certificates that serves "
                     "only public routes (health, signed webhook callbacks)");
  server->add_option("--connector-ca", connector_ca,
                     "PEM bundle of extra CAs the connectors trust for targets");
  server->add_option("--public-url", public_url,
                     "base URL targets call back to (/v1/callbacks/...); default: the listen address");

  // toani demo
  auto* demo = app.add_subcommand("demo", "run the end-to-end demo");
  std::string secret_file;
  demo->add_option("--data", data, "data directory");
  demo->add_option("--secret-file", secret_file, "use this file's content as the demo credential");

  // toani credential add
  auto* cred = app.add_subcommand("credential", "manage credentials");
  cred->require_subcommand(1);
  auto* cred_add = cred->add_subcommand("add", "seal a credential to keyd and store it");
  std::string name, type = "api_key", from_file;
  cred_add->add_option("--name", name, "display name")->required();
  cred_add->add_option("--type", type, "api_key | oauth_refresh | password");
  std::string sensitivity;
  cred_add->add_option("--sensitivity", sensitivity,
                       "standard (default) | privileged | personal | kyc_gated");
  cred_add->add_option("--secret-file", from_file,
                       "read the secret from this file (default: stdin)");
  auto* cred_list = cred->add_subcommand("list", "list credentials (never their values)");

  // toani policy keygen|sign|apply|get|history|diff|simulate|…, toani approval …
  auto* pol = app.add_subcommand("policy", "manage signed policies");
  pol->require_subcommand(1);
  auto policy_cmds = toani::cli::AddPolicyCommands(app, pol);

  // agent side
  auto* authorize = app.add_subcommand("authorize", "ask for an Action Token (as the dev agent)");
  std::string action, params_text = "{}";
  authorize->add_option("action", action, "action name")->required();
  authorize->add_option("--params", params_text, "parameters as a JSON object");
  auto* execute = app.add_subcommand("execute", "execute with an Action Token (as the dev agent)");
  std::string token;
  execute->add_option("--token", token, "the Action Token")->required();
  execute->add_option("--params", params_text, "the same parameters as authorized (JSON)");

  // audit
  auto* audit = app.add_subcommand("audit", "audit log");
  audit->require_subcommand(1);
  auto* audit_root = audit->add_subcommand("root", "print the log size and Merkle root");
  auto* audit_list = audit->add_subcommand("entries", "print audit entries");
  auto audit_cmds = toani::cli::AddAuditCommands(audit);  // export, verify, prove, ...
  toani::cli::OperatorArgs op_args;  // operator init/unseal/rekey/status, tenant rotate-key
  toani::cli::AddOperatorCommands(app, cred_add, &op_args);

  auto* mcp_stdio = app.add_subcommand(
      "mcp-stdio", "bridge a local MCP client (stdio) to the server's /mcp over mTLS, as the agent "
                   "of TOANI_CLIENT_CERT/KEY (default: the dev agent)");
  toani::cli::PkiArgs pki_args;
  toani::cli::AddPkiCommands(app, &pki_args);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);
    return toani::cli::kExitUsage;
  }
  if (int rc = toani::cli::RunPkiCommand(pki_args, data, g_format == "json"); rc >= 0) return rc;
  if (auto rc = toani::cli::RunAuditCommand(*audit_cmds, data)) return *rc;
  if (auto rc = toani::cli::RunPolicyCommand(*policy_cmds, data)) return *rc;

  if (*server) {
    toani::server::ServerOptions o;
    o.data_dir = data;  // $TOANI_DATA or ./toani-data unless the file or --data says otherwise
    if (config_file.empty() && std::getenv("TOANI_CONFIG") != nullptr)
      config_file = std::getenv("TOANI_CONFIG");
    if (!config_file.empty()) {
      auto st = toani::server::ApplyConfigFile(config_file, &o);
      if (!st.ok()) {
        std::fprintf(stderr, "error: %s\n", st.message().c_str());
        return 2;
      }
    }
    if (server_data->count() > 0 || app.get_option("--data")->count() > 0) o.data_dir = data;
    if (dev) o.dev = true;
    if (!witness_dirs.empty()) o.witness_dirs = witness_dirs;
    if (!witness_urls.empty()) o.witness_urls = witness_urls;
    if (!replay_store.empty()) o.replay_store = replay_store;
    if (!store_url.empty()) o.store = store_url;
    if (!node_name.empty()) o.node_name = node_name;
    if (!resolver_overrides.empty()) o.resolver_overrides = resolver_overrides;
    if (!connector_ca.empty()) o.connector_ca = connector_ca;
    if (!public_url.empty()) o.public_url = public_url;
    if (!public_listen.empty()) o.public_listen = public_listen;
    if (server_listen->count() > 0 || config_file.empty()) {
      auto st = toani::server::ParseListen(listen, &o.listen_host, &o.port);
      if (!st.ok()) {
        std::fprintf(stderr, "error: --listen: %s\n", st.message().c_str());
        return 2;
      }
    }
    if (print_config) {
      std::printf("%s\n", toani::server::ConfigJson(o).c_str());
      return 0;
    }
    o.bin_dir = std::filesystem::path(SelfPath()).parent_path().string();
    return toani::server::RunServer(o);
  }
  if (*demo) {
    toani::cli::DemoOptions o;
    o.data_dir = std::filesystem::absolute(data).string();
    const char* addr = std::getenv("TOANI_ADDR");
    o.address = addr != nullptr ? addr : "";
    o.secret_file = secret_file;
    o.self_path = SelfPath();
    return toani::cli::RunDemo(o);
  }
  auto client = Connect(data);
  if (!client.ok()) {
    std::fprintf(stderr, "error: %s\n", client.status().message().c_str());
    return toani::cli::kExitUnreachable;
  }
  if (*mcp_stdio) return toani::cli::RunMcpStdio(*client);
  if (int rc = toani::cli::RunOperatorCommands(op_args, *client, data); rc >= 0) return rc;
  if (*cred_add) {
    std::string secret;
    if (!from_file.empty()) {
      std::ifstream f(from_file, std::ios::binary);
      if (!f) {
        std::fprintf(stderr, "error: cannot read %s\n", from_file.c_str());
        return 1;
      }
      secret.assign((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    } else {
      if (isatty(0)) std::fprintf(stderr, "secret (end with Ctrl-D): ");
      secret.assign((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    }
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
    auto plain = toani::SecretBytes::Copy(secret);
    toani::SecureWipe(secret.data(), secret.size());
    if (plain.empty()) {
      std::fprintf(stderr, "error: the secret is empty\n");
      return 1;
    }
    // Seal only to a key whose attestation evidence verifies (fresh nonce).
    auto pk = toani::cli::VerifiedIntakeKey(*client, op_args, data);
    if (!pk.ok()) {
      std::fprintf(stderr, "error: %s\n", pk.status().message().c_str());
      return 1;
    }
    toani::Bytes sealed(plain.size() + crypto_box_SEALBYTES);
    crypto_box_seal(sealed.data(), plain.UnsafeBytes().data(), plain.size(), pk->data());
    json cred_body = {{"name", name}, {"type", type}, {"sealed", toani::Base64UrlEncode(sealed)}};
    if (!sensitivity.empty()) cred_body["sensitivity"] = sensitivity;
    return PrintReply(client->Call(As::kAdmin, "POST", "/v1/credentials", cred_body), 201);
  }
  if (*cred_list) return PrintReply(client->Call(As::kAdmin, "GET", "/v1/credentials"), 200);
  auto params = ParseJsonArg(params_text, "--params");
  if (!params.ok()) {
    std::fprintf(stderr, "error: %s\n", params.status().message().c_str());
    return 2;
  }
  if (*authorize) {
    return PrintReply(client->Call(As::kAgent, "POST", "/v1/authorize",
                                   {{"action", action}, {"params", *params}}),
                      200);
  }
  if (*execute) {
    return PrintReply(
        client->Call(As::kAgent, "POST", "/v1/executions", {{"token", token}, {"params", *params}}),
        200);
  }
  if (*audit_root) return PrintReply(client->Call(As::kAdmin, "GET", "/v1/audit/root"), 200);
  if (*audit_list) return PrintReply(client->Call(As::kAdmin, "GET", "/v1/audit/entries"), 200);
  return 2;
}
