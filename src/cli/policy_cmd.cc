#include "cli/policy_cmd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/client.h"
#include "common/secret.h"
#include "policy/signing.h"
#include "policy/yaml.h"

namespace toani::cli {
namespace {

using nlohmann::json;

// Writes a new file with mode `mode`; refuses to overwrite.
Status WriteNew(const std::string& path, std::string_view content, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Status::FailedPrecondition("cannot create " + path + " (does it exist?)");
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n <= 0) {
      ::close(fd);
      return Status::Unavailable("cannot write " + path);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) return Status::Unavailable("cannot write " + path);
  return Status::Ok();
}

StatusOr<SecretBytes> ReadSecretKey(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument("cannot read key file " + path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.pop_back();
  SecretBytes s = SecretBytes::Copy(text);
  SecureWipe(text.data(), text.size());
  return s;
}

StatusOr<ApiClient> Client(const std::string& data) {
  const char* addr = std::getenv("TOANI_ADDR");
  return ApiClient::Connect(data, addr != nullptr ? addr : "");
}

int Print(const StatusOr<ApiReply>& r, long want) {
  if (!r.ok()) return PrintError(r.status().message());
  if (r->status != want) return PrintError(ProblemText(*r));
  std::printf("%s\n", r->body.dump(2).c_str());
  return 0;
}

int Call(const std::string& data, const std::string& method, const std::string& path,
         const json& body, long want) {
  auto c = Client(data);
  if (!c.ok()) return PrintError(c.status().message());
  return Print(c->Call(As::kAdmin, method, path, body), want);
}

// A JSON Patch (RFC 6902) between two documents, one change per line.
void PrintDiff(const json& from, const json& to) {
  json patch = json::diff(from, to);
  if (patch.empty()) {
    std::printf("no differences\n");
    return;
  }
  for (const auto& op : patch) {
    std::string o = op.value("op", "");
    std::string path = op.value("path", "");
    if (o == "remove") {
      std::printf("- %s: %s\n", path.c_str(), from.at(json::json_pointer(path)).dump().c_str());
    } else if (o == "add") {
      std::printf("+ %s: %s\n", path.c_str(), op["value"].dump().c_str());
    } else {
      std::printf("~ %s: %s -> %s\n", path.c_str(),
                  from.at(json::json_pointer(path)).dump().c_str(), op["value"].dump().c_str());
    }
  }
}

StatusOr<json> FetchVersion(const std::string& data, const std::string& id, int64_t version) {
  TOANI_ASSIGN_OR_RETURN(ApiClient c, Client(data));
  std::string path = "/v1/policies/" + id + (version > 0 ? "?version=" + std::to_string(version) : "");
  TOANI_ASSIGN_OR_RETURN(ApiReply r, c.Call(As::kAdmin, "GET", path));
  if (r.status != 200) return Status::Unavailable(ProblemText(r));
  return r.body["signed"]["policy"];
}

int Keygen(const PolicyCommands& c, const std::string& data) {
  policy::PolicyKeyPair k = policy::GeneratePolicyKey();
  std::string secret(k.secret.UnsafeView());
  secret += "\n";
  Status st = WriteNew(c.out, secret, 0600);
  SecureWipe(secret.data(), secret.size());
  if (!st.ok()) return PrintError(st.message());
  st = WriteNew(c.out + ".pub", k.public_key + "\n", 0644);
  if (!st.ok()) return PrintError(st.message());
  std::printf("%s\n", json{{"key_id", k.key_id}, {"public_key", k.public_key},
                           {"secret_key_file", c.out}, {"public_key_file", c.out + ".pub"}}
                          .dump(2)
                          .c_str());
  if (!c.do_register) return 0;
  return Call(data, "POST", "/v1/policy-keys", {{"public_key", k.public_key}, {"name", c.name}}, 201);
}

StatusOr<json> SignFile(const std::string& file, const std::string& key_file) {
  TOANI_ASSIGN_OR_RETURN(json doc, ReadPolicyFile(file));
  TOANI_ASSIGN_OR_RETURN(SecretBytes key, ReadSecretKey(key_file));
  return policy::SignPolicy(doc, key);
}

}  // namespace

StatusOr<json> ReadPolicyFile(const std::string& path) {
  auto text = ReadWholeFile(path);
  if (!text) return Status::InvalidArgument("cannot read " + path);
  if (policy::IsYamlPath(path)) {
    auto y = policy::YamlToJson(*text);
    if (!y.ok()) return Status::InvalidArgument(path + ": " + y.status().message());
    return y;
  }
  auto j = json::parse(*text, nullptr, false);
  if (j.is_discarded()) return Status::InvalidArgument(path + " is not valid JSON");
  return j;
}

std::unique_ptr<PolicyCommands> AddPolicyCommands(CLI::App& app, CLI::App* pol) {
  auto c = std::make_unique<PolicyCommands>();
  c->keygen = pol->add_subcommand("keygen", "make a policy-admin Ed25519 key (PASERK files)");
  c->keygen->add_option("--out", c->out, "secret key file to create (0600); FILE.pub gets the public key")
      ->required();
  c->keygen->add_flag("--register", c->do_register, "register the public key with the server (operator)");
  c->keygen->add_option("--name", c->name, "who holds the key (with --register)");
  c->sign = pol->add_subcommand("sign", "sign a policy (or add a signature to a signed one)");
  c->sign->add_option("file", c->file, "policy JSON, or a signed policy")->required();
  c->sign->add_option("--key", c->key_file, "secret key file (toani policy keygen)")->required();
  c->sign->add_option("--out", c->out, "write the signed policy here (default: stdout)");
  c->apply = pol->add_subcommand("apply", "apply a signed policy (signs it first with --key)");
  c->apply->add_option("file", c->file, "signed policy, or a policy with --key")->required();
  c->apply->add_option("--key", c->key_file, "sign with this key before applying");
  c->get = pol->add_subcommand("get", "show a policy version and its signatures");
  c->get->add_option("policy_id", c->policy_id)->required();
  c->get->add_option("--version", c->version, "a version (default: the newest)");
  c->history = pol->add_subcommand("history", "list every version of a policy");
  c->history->add_option("policy_id", c->policy_id)->required();
  c->diff = pol->add_subcommand(
      "diff", "changes between two stored versions, or from the current version to a file");
  c->diff->add_option("policy_id_or_file", c->policy_id)->required();
  c->diff->add_option("--from", c->from, "older version (default: the newest stored)");
  c->diff->add_option("--to", c->to, "newer version");
  c->simulate = pol->add_subcommand("simulate", "explain a decision without side effects");
  c->simulate->add_option("--agent", c->agent)->required();
  c->simulate->add_option("--action", c->action)->required();
  c->simulate->add_option("--params", c->params, "parameters (JSON object)");
  c->simulate->add_option("--user", c->user, "the human the agent acts for");
  c->simulate->add_option("--at", c->at, "evaluate at this RFC 3339 time");
  c->simulate->add_option("--policy", c->candidate, "evaluate a candidate policy file instead of its current version");
  c->register_key = pol->add_subcommand("register-key", "register a policy-admin public key (operator)");
  c->register_key->add_option("public_key", c->public_key, "k4.public.… or a .pub file")->required();
  c->register_key->add_option("--name", c->name, "who holds the key");
  c->keys = pol->add_subcommand("keys", "list registered policy-admin keys");
  c->revoke_key = pol->add_subcommand("revoke-key", "revoke a policy-admin key (operator)");
  c->revoke_key->add_option("key_id", c->key_id, "k4.pid.…")->required();

  auto* ap = app.add_subcommand("approval", "human approval of agent requests");
  ap->require_subcommand(1);
  c->approvals_list = ap->add_subcommand("list", "list approval requests");
  c->approvals_list->add_option("--status", c->status, "pending (default), approved, denied, expired, redeemed, all");
  c->approval_show = ap->add_subcommand("show", "show one approval request");
  c->approval_show->add_option("id", c->approval_id)->required();
  c->approve = ap->add_subcommand("approve", "approve a request (as this identity)");
  c->approve->add_option("id", c->approval_id)->required();
  c->approve->add_option("--comment", c->comment);
  c->deny = ap->add_subcommand("deny", "deny a request");
  c->deny->add_option("id", c->approval_id)->required();
  c->deny->add_option("--comment", c->comment);
  return c;
}

std::optional<int> RunPolicyCommand(const PolicyCommands& c, const std::string& data) {
  if (*c.keygen) return Keygen(c, data);
  if (*c.sign) {
    auto env = SignFile(c.file, c.key_file);
    if (!env.ok()) return PrintError(env.status().message());
    if (c.out.empty()) {
      std::printf("%s\n", env->dump(2).c_str());
      return 0;
    }
    Status st = WriteNew(c.out, env->dump(2) + "\n", 0644);
    return st.ok() ? 0 : PrintError(st.message());
  }
  if (*c.apply) {
    StatusOr<json> body = c.key_file.empty() ? ReadPolicyFile(c.file) : SignFile(c.file, c.key_file);
    if (!body.ok()) return PrintError(body.status().message());
    return Call(data, "POST", "/v1/policies", *body, 201);
  }
  if (*c.get) {
    std::string path = "/v1/policies/" + c.policy_id + (c.version > 0 ? "?version=" + std::to_string(c.version) : "");
    return Call(data, "GET", path, nullptr, 200);
  }
  if (*c.history) return Call(data, "GET", "/v1/policies/" + c.policy_id + "/history", nullptr, 200);
  if (*c.diff) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(c.policy_id, ec)) {
      auto cand = ReadPolicyFile(c.policy_id);
      if (!cand.ok()) return PrintError(cand.status().message());
      json doc = cand->contains("signatures") && cand->contains("policy") ? (*cand)["policy"] : *cand;
      auto cur = FetchVersion(data, doc.value("policy_id", ""), c.from);
      if (!cur.ok()) return PrintError(cur.status().message());
      PrintDiff(*cur, doc);
      return 0;
    }
    if (c.to <= 0) return PrintError("--to VERSION is required to compare two stored versions");
    auto a = FetchVersion(data, c.policy_id, c.from);
    auto b = FetchVersion(data, c.policy_id, c.to);
    if (!a.ok()) return PrintError(a.status().message());
    if (!b.ok()) return PrintError(b.status().message());
    PrintDiff(*a, *b);
    return 0;
  }
  if (*c.simulate) {
    json params = json::parse(c.params, nullptr, false);
    if (params.is_discarded()) return PrintError("--params is not valid JSON");
    json body = {{"agent", c.agent}, {"action", c.action}, {"params", params}};
    if (!c.user.empty()) body["user"] = c.user;
    if (!c.at.empty()) body["at"] = c.at;
    if (!c.candidate.empty()) {
      auto cand = ReadPolicyFile(c.candidate);
      if (!cand.ok()) return PrintError(cand.status().message());
      body["policy"] = *cand;
    }
    return Call(data, "POST", "/v1/policies/simulate", body, 200);
  }
  if (*c.register_key) {
    std::string pk = c.public_key;
    std::error_code ec;
    if (std::filesystem::is_regular_file(pk, ec)) {
      auto t = ReadWholeFile(pk);
      if (!t) return PrintError("cannot read " + pk);
      pk = t->substr(0, t->find_first_of("\r\n"));
    }
    return Call(data, "POST", "/v1/policy-keys", {{"public_key", pk}, {"name", c.name}}, 201);
  }
  if (*c.keys) return Call(data, "GET", "/v1/policy-keys", nullptr, 200);
  if (*c.revoke_key) return Call(data, "POST", "/v1/policy-keys/" + c.key_id + "/revoke", json::object(), 200);
  if (*c.approvals_list) return Call(data, "GET", "/v1/approvals?status=" + c.status, nullptr, 200);
  if (*c.approval_show) return Call(data, "GET", "/v1/approvals/" + c.approval_id, nullptr, 200);
  if (*c.approve || *c.deny) {
    json body = json::object();
    if (!c.comment.empty()) body["comment"] = c.comment;
    return Call(data, "POST", "/v1/approvals/" + c.approval_id + (*c.approve ? "/approve" : "/deny"), body, 200);
  }
  return std::nullopt;
}

}  // namespace toani::cli
