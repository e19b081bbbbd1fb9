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
#include "sandbox/egress_proxy.h"
#include "sandbox/sandbox_runner.h"
#include "server/identity.h"
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

 private:
  struct RunResult {
    nlohmann::json result;  // connector's result message
  };
  StatusOr<RunResult> RunSandboxed(const std::string& tenant, const std::string& token,
                                   const store::CredentialRecord& cred,
                                   const nlohmann::json& job_base,
                                   const std::vector<EgressRule>& egress);
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
};

}  // namespace toani::server
