// The policy plane's routes (issue 5; docs/api.md "Policy plane", docs/policy.md):
// policy-admin keys, signed and versioned policies, simulate, authorize with its
// decisions (allow / deny / approval required), and human approval with CIBA-style
// polling. One object serves them all; Handle is thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "audit/log.h"
#include "common/time.h"
#include "keyd/client.h"
#include "keyd/token_frame.h"
#include "policy/decide.h"
#include "policy/policy.h"
#include "server/approval_webhook.h"
#include "server/https_server.h"
#include "server/identity.h"
#include "server/routes.h"
#include "store/store.h"

namespace toani::server {

struct PolicyPlaneDeps {
  store::Store* store = nullptr;
  store::PolicyKeyStore* keys = nullptr;
  store::ApprovalStore* approvals = nullptr;
  store::LimitCounter* limits = nullptr;
  audit::AuditLog* audit = nullptr;
  keyd::KeyServiceClient* keyd = nullptr;
  ApprovalAnnouncer* announcer = nullptr;  // null: no webhook configured
  nlohmann::json keyd_status;              // measurement for "tee"
  Clock clock = SystemClock();
};

class PolicyPlane {
 public:
  explicit PolicyPlane(PolicyPlaneDeps deps)
      : d_(std::move(deps)),
        tee_({{"measurement", d_.keyd_status.value("measurement", "")},
              {"simulated", d_.keyd_status.value("simulated", true)}}) {}

  // Registers this plane's routes with their roles (docs/api.md "Policy plane"); the
  // table then authenticates, authorizes and parses bodies before calling in.
  void Register(RouteTable& table);

  // The response for the routes this plane owns, nullopt for any other path (used
  // by the table's handlers and by tests). Each handler checks its roles again.
  // `body` is the parsed JSON body of a POST (an object) or {} otherwise.
  std::optional<HttpResponse> Handle(const Caller& c, const HttpRequest& req,
                                     const nlohmann::json& body);

  // The tenant's current policies, parsed (cached by (policy_id, version)).
  StatusOr<std::shared_ptr<const std::vector<policy::Policy>>> CurrentPolicies(
      const std::string& tenant);

  // The approval record an approval's HITL proof hashes (docs/formats.md §10).
  static nlohmann::json ApprovalRecordJson(const store::ApprovalRecord& r);
  static std::string ApprovalProof(const store::ApprovalRecord& r);

 private:
  // policy_routes.cc
  HttpResponse AddKey(const Caller& c, const nlohmann::json& body);
  HttpResponse ListKeys(const Caller& c);
  HttpResponse RevokeKey(const Caller& c, const std::string& key_id);
  HttpResponse ApplyPolicy(const Caller& c, const nlohmann::json& body);
  HttpResponse ListPolicies(const Caller& c);
  HttpResponse GetPolicy(const Caller& c, const std::string& id, const HttpRequest& req);
  HttpResponse PolicyHistory(const Caller& c, const std::string& id);
  HttpResponse Simulate(const Caller& c, const nlohmann::json& body);
  // approval_routes.cc
  HttpResponse Authorize(const Caller& c, const nlohmann::json& body);
  HttpResponse ListApprovals(const Caller& c, const HttpRequest& req);
  HttpResponse GetApproval(const Caller& c, const std::string& id);
  HttpResponse DecideApproval(const Caller& c, const std::string& id, const std::string& verb,
                              const nlohmann::json& body);
  HttpResponse PollToken(const Caller& c, const std::string& id);

  policy::DecisionEnv Env(const std::string& tenant, bool dry_run);
  const nlohmann::json& Tee() const { return tee_; }
  StatusOr<keyd::MintedToken> MintToken(const Caller& c, const policy::Policy& p,
                                        const policy::ActionSpec& a, const std::string& params_hash,
                                        const std::string& user, const nlohmann::json& hitl);

  PolicyPlaneDeps d_;
  // Sensitivity of stored credentials by (tenant, credential id): fixed once added.
  static constexpr size_t kMaxRememberedSensitivities = 100000;
  std::mutex sensitivity_mu_;
  std::map<std::pair<std::string, std::string>, policy::Sensitivity> sensitivity_;
  const nlohmann::json tee_;  // the "tee" member of audit entries (keyd's measurement)
  std::mutex cache_mu_;
  struct CacheEntry {
    std::vector<std::pair<std::string, int64_t>> versions;
    std::optional<int64_t> stamp;  // the store's PoliciesStamp when `versions` was current
    std::shared_ptr<const std::vector<policy::Policy>> policies;
  };
  std::map<std::string, CacheEntry> cache_;  // by tenant
};

}  // namespace toani::server
