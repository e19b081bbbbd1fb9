#include "server/executor.h"

#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/encoding.h"
#include "common/log.h"
#include "crypto/hash.h"
#include "policy/policy.h"
#include "policy/template.h"

namespace toani::server {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string NewExecutionId() {
  uint8_t b[12];
  randombytes_buf(b, sizeof b);
  return "exe_" + HexEncode(std::span<const uint8_t>(b, sizeof b));
}

// A per-execution directory the sandbox user can traverse (it holds the egress
// socket and a copy of the CA file); removed when the execution ends.
class ExecDir {
 public:
  explicit ExecDir(const std::string& base) {
    std::string tmpl = base + "/exec-XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) {
      path_ = tmpl;
      ::chmod(path_.c_str(), 0711);
    }
  }
  ~ExecDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

Status Executor::Refuse(const Caller& caller, const std::string& type, const json& extra,
                        Status why) {
  json e = {{"type", type},
            {"tenant", caller.tenant},
            {"actor", caller.spiffe_id},
            {"reason", why.message()},
            {"tee", {{"measurement", measurement_}, {"simulated", true}}}};
  for (auto it = extra.begin(); it != extra.end(); ++it) e[it.key()] = it.value();
  auto a = audit_->Append(e);
  if (!a.ok()) {
    Log(LogLevel::kError, "executor", "audit_failed",
        {{"type", type}, {"error", a.status().message()}});
  }
  return why;
}

StatusOr<json> Executor::Execute(const Caller& caller, const std::string& token,
                                 const json& params) {
  // 1. The token must verify (keyd checks tag, key id, tenant, expiry).
  auto verified =
      keyd_->Call({{"op", "token.verify"}, {"tenant", caller.tenant}, {"token", token}});
  if (!verified.ok()) {
    if (verified.status().code() == StatusCode::kUnavailable) return verified.status();
    return Refuse(caller, "execution.refused", json::object(), verified.status());
  }
  const json claims = (*verified)["claims"];
  const std::string jti = claims.value("jti", "");
  json ids = {{"jti", jti},
              {"action", claims.value("action", "")},
              {"params_hash", claims.value("params_hash", "")},
              {"policy_id", claims.value("policy_id", "")},
              {"policy_version", claims.value("policy_version", 0)},
              {"agent", caller.name}};
  // 2. Only the agent it was minted for may use it.
  std::string sub = claims.value("sub", "");
  // The human behind the token ("tenant:agent:user"): keyd logs it as a daily user_ref.
  if (size_t c = sub.rfind(':'); c != std::string::npos && sub.substr(c + 1) != "-") {
    ids["user"] = sub.substr(c + 1);
  }
  if (sub.rfind(caller.tenant + ":" + caller.name + ":", 0) != 0) {
    return Refuse(caller, "execution.refused", ids,
                  Status::PermissionDenied("token was minted for another agent"));
  }
  // 3. Exactly the parameters it was minted for.
  if (!params.is_object()) return Status::InvalidArgument("params: must be a JSON object");
  if (policy::ParamsHash(params) != claims.value("params_hash", "")) {
    return Refuse(
        caller, "execution.refused", ids,
        Status::PermissionDenied("parameters differ from those the token was minted for"));
  }
  // The policy version the token names (kept forever, so this cannot vanish).
  TOANI_ASSIGN_OR_RETURN(store::PolicyRecord prec,
                         store_->GetPolicy(caller.tenant, claims.value("policy_id", ""),
                                           claims.value("policy_version", 0)));
  auto doc = json::parse(prec.document, nullptr, false);
  TOANI_ASSIGN_OR_RETURN(policy::Policy pol, policy::ParsePolicy(doc));
  auto ait = pol.actions.find(claims.value("action", ""));
  if (ait == pol.actions.end())
    return Status::Internal("token names an action its policy does not hold");
  const policy::ActionSpec& action = ait->second;
  TOANI_ASSIGN_OR_RETURN(policy::RenderedRequest req,
                         policy::RenderRequest(action.request, params));
  TOANI_ASSIGN_OR_RETURN(store::CredentialRecord cred,
                         store_->GetCredential(caller.tenant, action.credential_id));
  // 4. Single use: consumed before anything runs.
  auto exp = ParseRfc3339(claims.value("exp", ""));
  if (!exp.ok()) return Status::Internal("verified token has no exp");
  Status consumed = replay_->ConsumeOnce(jti, *exp);
  if (consumed.code() == StatusCode::kAlreadyExists) {
    return Refuse(caller, "replay.refused", ids,
                  Status::AlreadyExists("token has already been used"));
  }
  if (!consumed.ok())
    return Status::Unavailable("replay store unavailable; refusing to execute: " +
                               consumed.message());
  // 5. The start is durable before the connector runs.
  const std::string exec_id = NewExecutionId();
  SysTime started = clock_();
  json start = ids;
  start.update({{"type", "execution.started"},
                {"tenant", caller.tenant},
                {"actor", caller.spiffe_id},
                {"execution_id", exec_id},
                {"credential_id", cred.id},
                {"tee", {{"measurement", measurement_}, {"simulated", true}}}});
  auto start_entry = audit_->Append(start);
  if (!start_entry.ok()) return Status::Unavailable("audit log unavailable; execution refused");
  // 6. Run.
  json job = {
      {"type", "job"},
      {"connector", "http"},
      {"request",
       {{"method", req.method}, {"url", req.url}, {"headers", req.headers}, {"body", req.body}}},
      {"inject",
       {{"kind", "header"}, {"name", action.inject.name}, {"prefix", action.inject.prefix}}},
      {"limits",
       {{"max_response_bytes", action.max_response_bytes}, {"timeout_ms", cfg_.timeout.count()}}}};
  std::vector<EgressRule> egress;
  for (const auto& e : action.egress) egress.push_back({e.host, e.port});
  auto run = RunSandboxed(caller.tenant, token, cred, job, egress);
  // 7. Finish: always audited, success or not.
  json result = run.ok() ? run->result : json{{"ok", false}, {"error", run.status().message()}};
  bool ok = result.value("ok", false);
  std::string body = result.value("body", "");
  json receipt = {{"execution_id", exec_id},
                  {"action", action.name},
                  {"params_hash", claims["params_hash"]},
                  {"policy_id", pol.policy_id},
                  {"policy_version", pol.version},
                  {"started_at", FormatRfc3339(started)},
                  {"finished_at", FormatRfc3339(clock_())},
                  {"status", ok ? "succeeded" : "failed"},
                  {"result_hash", "sha256:" + crypto::Sha256Hex(body)},
                  {"audit_index", start_entry->index},
                  {"tee", {{"measurement", measurement_}, {"simulated", true}}}};
  json fin = ids;
  fin.update({{"type", "execution.finished"},
              {"tenant", caller.tenant},
              {"actor", caller.spiffe_id},
              {"execution_id", exec_id},
              {"receipt", receipt},
              {"tee", receipt["tee"]}});
  auto fin_entry = audit_->Append(fin);
  if (!fin_entry.ok()) {
    // Never lost: the outbox keeps it durably and appends it when the log is back.
    if (cfg_.audit_outbox == nullptr || !cfg_.audit_outbox->Put(fin).ok()) {
      Log(LogLevel::kError, "executor", "audit_finish_failed", {{"execution_id", exec_id}});
      return Status::Unavailable("execution ran but its completion could not be audited");
    }
  }
  receipt["finish_audit_index"] = fin_entry.ok() ? json(fin_entry->index) : json("pending");
  json out = {{"execution_id", exec_id}, {"receipt", receipt}};
  if (ok) {
    out["result"] = {{"status", result.value("status", 0)},
                     {"content_type", result.value("content_type", "")},
                     {"body", ScrubCredentialShapes(body)}};
  } else {
    out["error"] = result.value("error", "connector failed");
  }
  Log(LogLevel::kInfo, "executor", "execution_finished",
      {{"execution_id", exec_id},
       {"action", action.name},
       {"ok", ok},
       {"audit_index", receipt["finish_audit_index"]}});
  return out;
}

StatusOr<Executor::RunResult> Executor::RunSandboxed(const std::string& tenant,
                                                     const std::string& token,
                                                     const store::CredentialRecord& cred,
                                                     const json& job_base,
                                                     const std::vector<EgressRule>& egress) {
  ExecDir dir(cfg_.work_dir);
  if (dir.path().empty())
    return Status::Unavailable("cannot create execution directory under " + cfg_.work_dir);
  std::string sock = dir.path() + "/egress.sock";
  TOANI_ASSIGN_OR_RETURN(auto proxy, EgressProxy::Start(sock, egress, cfg_.resolver_overrides));
  SandboxSpec spec;
  spec.connector_path = cfg_.connector_path;
  spec.egress_socket_host_path = sock;
  spec.wall_timeout = cfg_.timeout + std::chrono::seconds(5);
  json job = job_base;
  job["proxy_socket"] = std::string(kSandboxEgressSocketPath);
  if (!cfg_.connector_ca_file.empty()) {
    // The sandbox user cannot read the data directory: hand it a copy.
    std::string ca_copy = dir.path() + "/ca.pem";
    std::error_code ec;
    fs::copy_file(cfg_.connector_ca_file, ca_copy, ec);
    if (ec) return Status::Unavailable("cannot stage the connector CA file");
    ::chmod(ca_copy.c_str(), 0644);
    spec.ro_binds.push_back({ca_copy, "/run/toani/ca.pem"});
    job["ca_file"] = "/run/toani/ca.pem";
  }
  TOANI_ASSIGN_OR_RETURN(auto proc, runner_->Start(spec));
  auto hello_line = proc->ReadLine(std::chrono::seconds(10));
  if (!hello_line.ok()) {
    Log(LogLevel::kError, "executor", "connector_start_failed", {{"stderr", proc->Stderr()}});
    return Status::Unavailable("connector did not start: " + hello_line.status().message());
  }
  auto hello = json::parse(*hello_line, nullptr, false);
  if (hello.is_discarded() || hello.value("type", "") != "hello" || !hello.contains("public_key")) {
    return Status::Internal("connector sent a malformed hello");
  }
  // keyd releases the credential sealed to the sandbox's ephemeral key; the
  // server only ever sees ciphertext.
  TOANI_ASSIGN_OR_RETURN(json released,
                         keyd_->Call({{"op", "credential.release"},
                                      {"tenant", tenant},
                                      {"token", token},
                                      {"credential_id", cred.id},
                                      {"version", cred.version},
                                      {"blob", cred.blob},
                                      {"recipient_public_key", hello["public_key"]}}));
  job["sealed_credential"] = released["sealed"];
  TOANI_RETURN_IF_ERROR(proc->WriteLine(job.dump()));
  auto result_line = proc->ReadLine(cfg_.timeout + std::chrono::seconds(2));
  // Let the connector exit on its own (its exit code is then meaningful), bounded by
  // the wall deadline; then kill whatever is left of the sandbox.
  if (!result_line.ok()) (void)proc->Kill();
  (void)proc->Wait();
  (void)proc->Kill();
  proxy->Stop();
  if (!result_line.ok()) {
    Log(LogLevel::kError, "executor", "connector_failed", {{"stderr", proc->Stderr()}});
    return Status::Unavailable("connector gave no result: " + result_line.status().message());
  }
  auto result = json::parse(*result_line, nullptr, false);
  if (result.is_discarded() || result.value("type", "") != "result") {
    return Status::Internal("connector sent a malformed result");
  }
  return RunResult{result};
}

}  // namespace toani::server
