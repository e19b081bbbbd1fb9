// Executor: turns (token, params) into one connector run in a fresh sandbox.
// Order matters and is the security argument (docs/architecture.md §Execution):
// verify token → same agent → same params → consume jti → audit start (durable)
// → sandbox + egress proxy → keyd releases the credential sealed to the
// sandbox's key → run → audit finish → receipt.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "audit/log.h"
#include "audit/outbox.h"
#include "common/status.h"
#include "keyd/client.h"
#include "policy/policy.h"
#include "sandbox/egress_proxy.h"
#include "sandbox/sandbox_runner.h"
#include "server/identity.h"
#include "server/sandbox_pool.h"
#include "store/store.h"

namespace toani::server {

struct ExecutorConfig {
  std::string connector_path;  // host path of toani-connector
  std::string
      connector_ca_file;  // extra CA the connector trusts (dev: the dev CA); "" = system roots
  std::vector<ResolverOverride>
      resolver_overrides;  // off by default; --dev maps *.toani.test to 127.0.0.1
  std::string work_dir;    // where per-execution directories are made
  std::chrono::milliseconds timeout{15000};
  audit::Outbox* audit_outbox = nullptr;  // takes execution.finished when the log cannot
  // Asynchronous (webhook) executions; nullptr: the webhook connector is refused.
  store::ExecutionStore* executions = nullptr;
  // Base URL targets call back to (webhook connector): "<public_url>/v1/callbacks/<id>".
  std::string public_url;
  // Pre-started sandboxes (config key sandbox_pool_size); nullptr or size 0: every
  // execution starts its own.
  SandboxPool* sandbox_pool = nullptr;
};

class PhaseClock;  // executor.cc: per-phase timing of one execution

// The Standard Webhooks headers of a callback, as received.
struct WebhookHeadersIn {
  std::string id, timestamp, signature;
};

struct ExecutionOutcome {
  int http_status = 200;  // for the API response
  nlohmann::json body;    // the agent's response (result + receipt) or problem details
};

class Executor {
 public:
  Executor(ExecutorConfig cfg, store::Store* store, store::ReplayStore* replay,
           audit::AuditLog* audit, keyd::KeyServiceClient* keyd, SandboxRunner* runner,
           std::string measurement, Clock clock)
      : cfg_(std::move(cfg)),
        store_(store),
        replay_(replay),
        audit_(audit),
        keyd_(keyd),
        runner_(runner),
        measurement_(std::move(measurement)),
        clock_(std::move(clock)) {}

  // Errors are Status values the API maps to problem+json; the audit log records
  // each refusal with its reason.
  StatusOr<nlohmann::json> Execute(const Caller& caller, const std::string& token,
                                   const nlohmann::json& params);
  // How this executor prepares a sandbox (for the pool's refill thread).
  SandboxPrepConfig SandboxPrep() const;
  // Waits until every used sandbox is torn down (reaped, cgroup and files removed,
  // proxy stopped); false on timeout. For tests.
  bool WaitTeardowns(std::chrono::milliseconds timeout) const { return reaper_->WaitIdle(timeout); }
  // Set before requests are served (the pool needs SandboxPrep() to exist first).
  void SetSandboxPool(SandboxPool* pool) { cfg_.sandbox_pool = pool; }
  const SandboxPool* sandbox_pool() const { return cfg_.sandbox_pool; }
  // Set once the listening address is known (before requests are served).
  void SetPublicUrl(std::string url) { cfg_.public_url = std::move(url); }
  // An execution's state for the agent that started it (webhook executions: pending,
  // succeeded, failed, expired). NotFound for others' or unknown ids.
  StatusOr<nlohmann::json> GetExecution(const Caller& caller, const std::string& exec_id);
  // A Standard Webhooks callback for a pending execution: keyd verifies the signature
  // with the action's secret credential; a replayed webhook-id is AlreadyExists; a
  // bad/stale signature or unknown execution is Unauthenticated.
  Status HandleCallback(const std::string& exec_id, const WebhookHeadersIn& headers,
                        const std::string& body);

 private:
  struct RunResult {
    nlohmann::json result;  // connector's result message
  };
  StatusOr<RunResult> RunSandboxed(const std::string& tenant, const std::string& token,
                                   const store::CredentialRecord& cred,
                                   const nlohmann::json& job_base,
                                   const std::vector<EgressRule>& egress, bool browser,
                                   PhaseClock* phases, bool* took_pooled);
  std::string CallbackUrl(const std::string& exec_id) const;
  Status StoreRotatedCredential(const Caller& caller, const store::CredentialRecord& cred,
                                const std::string& sealed, const std::string& exec_id);
  StatusOr<nlohmann::json> StartPending(const Caller& caller, const nlohmann::json& ids,
                                        const std::string& exec_id,
                                        const policy::ActionSpec& action, const policy::Policy& pol,
                                        const nlohmann::json& claims, SysTime started,
                                        uint64_t start_index, const nlohmann::json& accepted);
  Status FinishWebhook(const store::PendingExecution& pe, const std::string& status,
                       const nlohmann::json& result);
  Status Refuse(const Caller& caller, const std::string& type, const nlohmann::json& extra,
                Status why);

  ExecutorConfig cfg_;
  store::Store* store_;
  store::ReplayStore* replay_;
  audit::AuditLog* audit_;
  keyd::KeyServiceClient* keyd_;
  SandboxRunner* runner_;
  std::string measurement_;
  Clock clock_;
  // Used sandboxes (already SIGKILLed) are reaped and removed here, after the answer.
  std::unique_ptr<SandboxReaper> reaper_ = std::make_unique<SandboxReaper>();
};

}  // namespace toani::server
