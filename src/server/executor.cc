#include "server/executor.h"

#include <sodium.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/encoding.h"
#include "common/log.h"
#include "common/standard_webhooks.h"
#include "crypto/hash.h"
#include "policy/policy.h"
#include "policy/template.h"
#include "server/metrics.h"

namespace toani::server {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string NewExecutionId() {
  uint8_t b[12];
  randombytes_buf(b, sizeof b);
  return "exe_" + HexEncode(std::span<const uint8_t>(b, sizeof b));
}

// The connector's own timing (durations in µs) for the log: only short lower-case names
// with integer values are kept, so a subverted connector cannot smuggle text into it.
json ConnectorTiming(const json& result) {
  json out = json::object();
  if (!result.is_object() || !result.contains("timing_us") || !result["timing_us"].is_object()) {
    return out;
  }
  for (const auto& [k, v] : result["timing_us"].items()) {
    if (out.size() >= 16 || k.empty() || k.size() > 16 || !v.is_number_integer()) continue;
    if (!std::all_of(k.begin(), k.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; }))
      continue;
    out[k] = v.get<int64_t>();
  }
  return out;
}

}  // namespace

// Where the time of one execution goes (docs/performance.md): each Mark() closes the
// phase that ran since the previous one. Logged with execution_finished and observed
// as toani_execution_phase_seconds{phase}.
class PhaseClock {
 public:
  void Mark(const char* phase) {
    const auto now = std::chrono::steady_clock::now();
    phases_.emplace_back(phase, now - last_);
    last_ = now;
  }
  json ToJson() const {
    json j = json::object();
    for (const auto& [name, d] : phases_) {
      j[name] = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    }
    return j;
  }
  void Publish() const {
    for (const auto& [name, d] : phases_) {
      Metrics::Global().Observe("toani_execution_phase_seconds", {{"phase", name}},
                                std::chrono::duration<double>(d).count());
    }
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
  std::vector<std::pair<const char*, std::chrono::steady_clock::duration>> phases_;
};

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
  PhaseClock phases;
  // 1. The token must verify (keyd checks tag, key id, tenant, expiry).
  auto verified =
      keyd_->Call({{"op", "token.verify"}, {"tenant", caller.tenant}, {"token", token}});
  if (!verified.ok()) {
    if (verified.status().code() == StatusCode::kUnavailable) return verified.status();
    return Refuse(caller, "execution.refused", json::object(), verified.status());
  }
  phases.Mark("token_verify");
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
  const policy::ConnectorSpec& spec = action.connector_spec;
  phases.Mark("policy_load");
  if (spec.kind == "webhook" && cfg_.executions == nullptr) {
    return Status::Unavailable("webhook executions are not configured on this server");
  }
  const std::string exec_id = NewExecutionId();
  json egress_json = json::array();
  for (const auto& e : action.egress) egress_json.push_back({{"host", e.host}, {"port", e.port}});
  // The connector's job: request template rendered with the parameters as data, the
  // connector settings of the signed policy, limits.
  json job = {
      {"type", "job"},
      {"limits",
       {{"max_response_bytes", action.max_response_bytes}, {"timeout_ms", cfg_.timeout.count()}}}};
  TOANI_ASSIGN_OR_RETURN(json fields, policy::ConnectorJobFields(spec, params, egress_json));
  job.update(fields);
  if (spec.kind != "browser") {
    json render_params = params;
    if (spec.kind == "webhook") {
      // Where the target calls back; the agent cannot choose it (overwritten here).
      render_params["toani_callback_url"] = CallbackUrl(exec_id);
    }
    TOANI_ASSIGN_OR_RETURN(policy::RenderedRequest req,
                           policy::RenderRequest(action.request, render_params));
    auto headers = req.headers;
    if (spec.kind == "webhook") headers.emplace_back("Webhook-Callback", CallbackUrl(exec_id));
    job["request"] = {
        {"method", req.method}, {"url", req.url}, {"headers", headers}, {"body", req.body}};
  }
  if (spec.kind == "oauth") {
    // A rotated refresh token comes back sealed to keyd's current intake key.
    TOANI_ASSIGN_OR_RETURN(json st, keyd_->Call({{"op", "status"}}));
    job["reseal_public_key"] = st.value("intake_public_key", "");
  }
  TOANI_ASSIGN_OR_RETURN(store::CredentialRecord cred,
                         store_->GetCredential(caller.tenant, action.credential_id));
  phases.Mark("job_build");
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
  phases.Mark("replay_consume");
  // 5. The start is durable before the connector runs.
  SysTime started = clock_();
  json start = ids;
  start.update({{"type", "execution.started"},
                {"tenant", caller.tenant},
                {"actor", caller.spiffe_id},
                {"execution_id", exec_id},
                {"connector", spec.kind},
                {"credential_id", cred.id},
                {"tee", {{"measurement", measurement_}, {"simulated", true}}}});
  auto start_entry = audit_->Append(start);
  if (!start_entry.ok()) return Status::Unavailable("audit log unavailable; execution refused");
  phases.Mark("audit_start");
  // 6. Run.
  std::vector<EgressRule> egress;
  for (const auto& e : action.egress) egress.push_back({e.host, e.port});
  // A pooled sandbox is replaced once this execution has answered (below, on every path),
  // so that the replacement's start does not compete with this execution for the CPU.
  struct RefillAfterAnswer {
    SandboxPool* pool;
    bool took = false;
    ~RefillAfterAnswer() {
      if (took && pool != nullptr) pool->Release();
    }
  } refill{cfg_.sandbox_pool};
  auto run = RunSandboxed(caller.tenant, token, cred, job, egress, spec.kind == "browser", &phases,
                          &refill.took);
  json result = run.ok() ? run->result : json{{"ok", false}, {"error", run.status().message()}};
  // A rotated OAuth refresh token goes back to keyd (the server sees ciphertext only),
  // even when the rest of the run failed: the old one may be dead at the server.
  if (result.contains("resealed_credential") && result["resealed_credential"].is_string()) {
    Status rs = StoreRotatedCredential(caller, cred, result["resealed_credential"], exec_id);
    if (!rs.ok()) {
      Log(LogLevel::kError, "executor", "credential_rotation_failed",
          {{"execution_id", exec_id}, {"credential_id", cred.id}, {"error", rs.message()}});
      result = {
          {"ok", false},
          {"error", "the refresh token was rotated but could not be stored: " + rs.message()}};
    }
  }
  bool ok = result.value("ok", false);
  // What the agent gets: scrubbed in the sandbox against the credential; here once more
  // for credential shapes; then the policy's response rules.
  json agent_result;
  if (ok) {
    auto body =
        policy::ApplyResponseRules(spec.response, ScrubCredentialShapes(result.value("body", "")));
    if (!body.ok()) {
      ok = false;
      result = {{"ok", false}, {"error", body.status().message()}};
    } else {
      agent_result = {{"status", result.value("status", 0)},
                      {"content_type", ScrubCredentialShapes(result.value("content_type", ""))},
                      {"body", *body}};
      json headers = json::array();
      for (const json& h : result.value("headers", json::array())) {
        if (!h.is_array() || h.size() != 2 || !h[0].is_string() || !h[1].is_string()) continue;
        std::string name = h[0];
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        for (const std::string& allowed : spec.response.headers) {
          if (allowed == name)
            headers.push_back({name, ScrubCredentialShapes(h[1].get<std::string>())});
        }
      }
      if (!headers.empty()) agent_result["headers"] = headers;
      if (result.contains("redirects")) agent_result["redirects"] = result["redirects"];
      if (result.contains("extracted") && result["extracted"].is_object()) {
        json ex = json::object();
        for (auto& [k, v] : result["extracted"].items()) {
          if (v.is_string()) ex[k] = ScrubCredentialShapes(v.get<std::string>());
        }
        agent_result["extracted"] = ex;
      }
      // Screenshots only where the policy allows them (the connector takes none
      // otherwise; this is the second lock).
      if (spec.response.screenshots && result.contains("screenshots")) {
        agent_result["screenshots"] = result["screenshots"];
      }
    }
  }
  const std::string result_text = ok ? agent_result.dump() : "";
  phases.Mark("scrub_and_rules");
  // Webhook: the request was accepted; the execution stays pending until the signed
  // callback (or expiry). The audit entry says so; the finish is audited later.
  const long http_status = result.value("status", 0L);
  if (ok && spec.kind == "webhook" && http_status >= 200 && http_status < 300) {
    return StartPending(caller, ids, exec_id, action, pol, claims, started, start_entry->index,
                        agent_result);
  }
  if (ok && spec.kind == "webhook") {
    ok = false;
    result = {
        {"ok", false},
        {"error", "the target did not accept the job (HTTP " + std::to_string(http_status) + ")"}};
  }
  // 7. Finish: always audited, success or not.
  json receipt = {{"execution_id", exec_id},
                  {"action", action.name},
                  {"params_hash", claims["params_hash"]},
                  {"policy_id", pol.policy_id},
                  {"policy_version", pol.version},
                  {"started_at", FormatRfc3339(started)},
                  {"finished_at", FormatRfc3339(clock_())},
                  {"status", ok ? "succeeded" : "failed"},
                  {"result_hash", "sha256:" + crypto::Sha256Hex(result_text)},
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
  phases.Mark("audit_finish");
  phases.Publish();
  json out = {{"execution_id", exec_id}, {"receipt", receipt}};
  if (ok) {
    out["result"] = agent_result;
  } else {
    out["error"] = ScrubCredentialShapes(result.value("error", "connector failed"));
  }
  Log(LogLevel::kInfo, "executor", "execution_finished",
      {{"execution_id", exec_id},
       {"action", action.name},
       {"ok", ok},
       {"audit_index", receipt["finish_audit_index"]},
       {"timing_us", phases.ToJson()},
       {"connector_timing_us", ConnectorTiming(result)}});
  return out;
}

std::string Executor::CallbackUrl(const std::string& exec_id) const {
  return cfg_.public_url + "/v1/callbacks/" + exec_id;
}

Status Executor::StoreRotatedCredential(const Caller& caller, const store::CredentialRecord& cred,
                                        const std::string& sealed, const std::string& exec_id) {
  // keyd opens the ciphertext (sealed to its intake key by the sandbox) and seals it as
  // the next version; the server stores the blob with a compare-and-swap on the version.
  const int64_t next = cred.version + 1;
  TOANI_ASSIGN_OR_RETURN(json imported, keyd_->Call({{"op", "credential.import"},
                                                     {"tenant", caller.tenant},
                                                     {"credential_id", cred.id},
                                                     {"version", next},
                                                     {"sealed", sealed}}));
  store::CredentialRecord rec = cred;
  rec.version = next;
  rec.blob = imported.value("blob", "");
  rec.fingerprint = imported.value("fingerprint", "");
  TOANI_RETURN_IF_ERROR(store_->ReplaceCredentialVersion(rec, cred.version));
  auto a = audit_->Append({{"type", "credential.rotated"},
                           {"tenant", caller.tenant},
                           {"actor", caller.spiffe_id},
                           {"credential_id", cred.id},
                           {"version", next},
                           {"reason", "oauth refresh token rotated by the token endpoint"},
                           {"execution_id", exec_id},
                           {"tee", {{"measurement", measurement_}, {"simulated", true}}}});
  if (!a.ok()) return Status::Unavailable("credential rotated but not audited");
  return Status::Ok();
}

StatusOr<json> Executor::StartPending(const Caller& caller, const json& ids,
                                      const std::string& exec_id, const policy::ActionSpec& action,
                                      const policy::Policy& pol, const json& claims,
                                      SysTime started, uint64_t start_index, const json& accepted) {
  store::PendingExecution pe;
  pe.execution_id = exec_id;
  pe.tenant = caller.tenant;
  pe.agent = caller.name;
  pe.action = action.name;
  pe.policy_id = pol.policy_id;
  pe.policy_version = pol.version;
  pe.params_hash = claims.value("params_hash", "");
  pe.jti = claims.value("jti", "");
  pe.secret_credential_id = action.connector_spec.webhook_secret_credential;
  pe.started_at = FormatRfc3339(started);
  pe.expires_at = UnixSeconds(started) + action.connector_spec.webhook_timeout_seconds;
  json receipt = {{"execution_id", exec_id},
                  {"action", action.name},
                  {"params_hash", pe.params_hash},
                  {"policy_id", pol.policy_id},
                  {"policy_version", pol.version},
                  {"started_at", pe.started_at},
                  {"status", "pending"},
                  {"audit_index", start_index},
                  {"tee", {{"measurement", measurement_}, {"simulated", true}}}};
  pe.receipt = receipt.dump();
  pe.result = json{{"accepted", accepted}}.dump();
  TOANI_RETURN_IF_ERROR(cfg_.executions->PutPending(pe));
  json e = ids;
  e.update({{"type", "execution.pending"},
            {"tenant", caller.tenant},
            {"actor", caller.spiffe_id},
            {"execution_id", exec_id},
            {"expires_at", pe.expires_at},
            {"tee", receipt["tee"]}});
  auto a = audit_->Append(e);
  if (!a.ok()) {
    if (cfg_.audit_outbox == nullptr || !cfg_.audit_outbox->Put(e).ok()) {
      return Status::Unavailable("execution started but could not be audited");
    }
  }
  Log(LogLevel::kInfo, "executor", "execution_pending",
      {{"execution_id", exec_id}, {"action", action.name}});
  return json{{"execution_id", exec_id},
              {"status", "pending"},
              {"poll", "/v1/executions/" + exec_id},
              {"accepted", accepted},
              {"receipt", receipt}};
}

StatusOr<json> Executor::GetExecution(const Caller& caller, const std::string& exec_id) {
  if (cfg_.executions == nullptr) return Status::NotFound("no such execution");
  TOANI_ASSIGN_OR_RETURN(store::PendingExecution pe, cfg_.executions->GetExecution(exec_id));
  // Only the agent that started it (same tenant) may read it; others see nothing.
  if (pe.tenant != caller.tenant || pe.agent != caller.name) {
    return Status::NotFound("execution " + exec_id + " not found");
  }
  if (pe.status == "pending" && clock_() > std::chrono::system_clock::from_time_t(pe.expires_at)) {
    TOANI_RETURN_IF_ERROR(
        FinishWebhook(pe, "expired", json{{"error", "no callback before expiry"}}));
    TOANI_ASSIGN_OR_RETURN(pe, cfg_.executions->GetExecution(exec_id));
  }
  json out = {{"execution_id", pe.execution_id},
              {"status", pe.status},
              {"receipt", json::parse(pe.receipt, nullptr, false)}};
  json r = json::parse(pe.result, nullptr, false);
  if (pe.status == "pending") {
    out["accepted"] = r.value("accepted", json());
  } else if (pe.status == "succeeded") {
    out["result"] = r;
  } else {
    out["error"] = r.value("error", "failed");
  }
  return out;
}

Status Executor::FinishWebhook(const store::PendingExecution& pe, const std::string& status,
                               const json& result) {
  json receipt = json::parse(pe.receipt, nullptr, false);
  receipt["status"] = status;
  receipt["finished_at"] = FormatRfc3339(clock_());
  receipt["result_hash"] =
      "sha256:" + crypto::Sha256Hex(status == "succeeded" ? result.dump() : "");
  json fin = {{"type", "execution.finished"},
              {"tenant", pe.tenant},
              {"actor", "callback"},
              {"agent", pe.agent},
              {"jti", pe.jti},
              {"action", pe.action},
              {"params_hash", pe.params_hash},
              {"policy_id", pe.policy_id},
              {"policy_version", pe.policy_version},
              {"execution_id", pe.execution_id},
              {"receipt", receipt},
              {"tee", receipt.value("tee", json::object())}};
  auto a = audit_->Append(fin);
  if (!a.ok()) {
    if (cfg_.audit_outbox == nullptr || !cfg_.audit_outbox->Put(fin).ok()) {
      return Status::Unavailable("the callback could not be audited; try again");
    }
  }
  receipt["finish_audit_index"] = a.ok() ? json(a->index) : json("pending");
  return cfg_.executions->FinishExecution(pe.execution_id, status, result.dump(), receipt.dump());
}

Status Executor::HandleCallback(const std::string& exec_id, const WebhookHeadersIn& h,
                                const std::string& body) {
  if (cfg_.executions == nullptr) return Status::NotFound("no such execution");
  auto pe = cfg_.executions->GetExecution(exec_id);
  // One answer for unknown ids and bad signatures alike: nothing to probe.
  if (!pe.ok()) return Status::Unauthenticated("callback refused");
  auto secret = store_->GetCredential(pe->tenant, pe->secret_credential_id);
  if (!secret.ok()) return Status::Unavailable("callback secret unavailable");
  // keyd holds the whsec_ secret and checks the Standard Webhooks signature and the
  // timestamp; the server never sees the secret.
  auto v = keyd_->Call({{"op", "webhook.verify"},
                        {"tenant", pe->tenant},
                        {"credential_id", secret->id},
                        {"version", secret->version},
                        {"blob", secret->blob},
                        {"webhook_id", h.id},
                        {"webhook_timestamp", h.timestamp},
                        {"webhook_signature", h.signature},
                        {"body", body},
                        {"now", UnixSeconds(clock_())}});
  if (!v.ok()) {
    auto a = audit_->Append({{"type", "callback.refused"},
                             {"tenant", pe->tenant},
                             {"execution_id", exec_id},
                             {"reason", v.status().message()},
                             {"tee", {{"measurement", measurement_}, {"simulated", true}}}});
    (void)a;
    if (v.status().code() == StatusCode::kUnavailable) return v.status();
    return Status::Unauthenticated(v.status().message());
  }
  // Replayed message ids are refused even with a valid signature.
  Status fresh = cfg_.executions->RememberWebhookId(
      exec_id, h.id, clock_() + std::chrono::seconds(kWebhookDefaultToleranceSeconds * 2));
  if (fresh.code() == StatusCode::kAlreadyExists) {
    auto a = audit_->Append({{"type", "callback.refused"},
                             {"tenant", pe->tenant},
                             {"execution_id", exec_id},
                             {"reason", "replayed webhook-id"},
                             {"tee", {{"measurement", measurement_}, {"simulated", true}}}});
    (void)a;
    return Status::AlreadyExists("webhook-id already used (replay)");
  }
  TOANI_RETURN_IF_ERROR(fresh);
  if (pe->status != "pending") return Status::FailedPrecondition("execution is not pending");
  if (clock_() > std::chrono::system_clock::from_time_t(pe->expires_at)) {
    TOANI_RETURN_IF_ERROR(FinishWebhook(*pe, "expired", json{{"error", "callback after expiry"}}));
    return Status::FailedPrecondition("execution has expired");
  }
  // The callback body is the result; scrubbed for credential shapes like any result.
  std::string scrubbed = ScrubCredentialShapes(body);
  json parsed = json::parse(scrubbed, nullptr, false);
  std::string status = "succeeded";
  if (!parsed.is_discarded() && parsed.is_object() && parsed.value("status", "") == "failed") {
    status = "failed";
  }
  json result = status == "succeeded"
                    ? json{{"body", parsed.is_discarded() ? json(scrubbed) : parsed}}
                    : json{{"error", parsed.value("error", "the target reported a failure")}};
  return FinishWebhook(*pe, status, result);
}

SandboxPrepConfig Executor::SandboxPrep() const {
  SandboxPrepConfig p;
  p.connector_path = cfg_.connector_path;
  p.connector_ca_file = cfg_.connector_ca_file;
  p.resolver_overrides = cfg_.resolver_overrides;
  p.work_dir = cfg_.work_dir;
  p.wall_timeout = cfg_.timeout + std::chrono::seconds(5);
  p.runner = runner_;
  return p;
}

StatusOr<Executor::RunResult> Executor::RunSandboxed(
    const std::string& tenant, const std::string& token, const store::CredentialRecord& cred,
    const json& job_base, const std::vector<EgressRule>& egress, bool browser, PhaseClock* phases,
    bool* took_pooled) {
  // A pre-started sandbox when one is ready (never for the browser, whose sandbox
  // differs), else one started now through the same preparation. Either way it is
  // new, used for this execution only, and killed before this function returns.
  std::unique_ptr<PreparedSandbox> ps;
  if (!browser && cfg_.sandbox_pool != nullptr) ps = cfg_.sandbox_pool->Take();
  const bool pooled = ps != nullptr;
  *took_pooled = pooled;
  const SandboxPrepConfig prep = SandboxPrep();
  if (!ps) {
    TOANI_ASSIGN_OR_RETURN(ps, PrepareSandbox(prep, browser));
  }
  phases->Mark(pooled ? "sandbox_take" : "sandbox_start");
  // Bound now, once: this sandbox reaches exactly the hosts of this action.
  TOANI_RETURN_IF_ERROR(ps->proxy->Bind(egress));
  // The whole wall budget counts from now, not from when the sandbox was made.
  SandboxSpec limits;
  limits.wall_timeout = prep.wall_timeout;
  if (browser) ApplyBrowserSandbox(limits);
  ps->process->RestartDeadline(limits.wall_timeout);
  SandboxProcess* proc = ps->process.get();
  json job = job_base;
  job["proxy_socket"] = std::string(kSandboxEgressSocketPath);
  if (!ps->ca_file.empty()) job["ca_file"] = ps->ca_file;
  // keyd releases the credential sealed to the sandbox's ephemeral key; the
  // server only ever sees ciphertext.
  TOANI_ASSIGN_OR_RETURN(json released, keyd_->Call({{"op", "credential.release"},
                                                     {"tenant", tenant},
                                                     {"token", token},
                                                     {"credential_id", cred.id},
                                                     {"version", cred.version},
                                                     {"blob", cred.blob},
                                                     {"recipient_public_key", ps->public_key}}));
  phases->Mark("keyd_release");
  job["sealed_credential"] = released["sealed"];
  TOANI_RETURN_IF_ERROR(proc->WriteLine(job.dump()));
  auto result_line = proc->ReadLine(cfg_.timeout + std::chrono::seconds(2));
  phases->Mark("connector_run");
  if (!result_line.ok()) {
    // No result: let it finish dying and keep its stderr for the operator.
    (void)proc->Kill();
    (void)proc->Wait();
    Log(LogLevel::kError, "executor", "connector_failed", {{"stderr", proc->Stderr()}});
    reaper_->Dispose(std::move(ps));
    return Status::Unavailable("connector gave no result: " + result_line.status().message());
  }
  // The result is in: the sandbox dies now, every process in it (SIGKILL to bwrap's
  // process group and each member of its cgroup), before anything is answered, so the
  // credential does not outlive the execution. Reaping, emptying and removing the
  // cgroup, stopping the egress proxy and removing the directory happen after the
  // answer, on the reaper's thread (docs/connector-protocol.md §6.6).
  proc->SignalKill();
  reaper_->Dispose(std::move(ps));
  phases->Mark("sandbox_kill");
  auto result = json::parse(*result_line, nullptr, false);
  if (result.is_discarded() || result.value("type", "") != "result") {
    return Status::Internal("connector sent a malformed result");
  }
  return RunResult{result};
}

}  // namespace toani::server
