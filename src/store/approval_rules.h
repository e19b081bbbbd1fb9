// What every ApprovalStore (SQLite, PostgreSQL) shares so they cannot drift apart: the
// stored columns, the decisions column's JSON, and the one rule for recording a human
// decision on a pending approval. Internal to src/store.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace toani::store {

// The approvals table's columns, in the order the stores bind and read them.
inline constexpr const char* kApprovalCols =
    "tenant,id,agent,requester,user_name,action,params_hash,params,policy_id,policy_version,"
    "risk_tier,approvers_required,status,created_at,expires_at,poll_interval,last_polled_at,"
    "proof,decided_at,decisions";

// The decisions column: a JSON array of {approver, decision, decided_at, comment}.
inline nlohmann::json DecisionsJson(const std::vector<ApprovalDecisionRecord>& ds) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& d : ds) {
    a.push_back({{"approver", d.approver},
                 {"decision", d.decision},
                 {"decided_at", d.decided_at},
                 {"comment", d.comment}});
  }
  return a;
}
inline std::vector<ApprovalDecisionRecord> ParseDecisions(const std::string& text) {
  std::vector<ApprovalDecisionRecord> out;
  nlohmann::json ds = nlohmann::json::parse(text, nullptr, false);
  if (!ds.is_array()) return out;
  for (const auto& d : ds) {
    out.push_back({d.value("approver", ""), d.value("decision", ""), d.value("decided_at", ""),
                   d.value("comment", "")});
  }
  return out;
}

// Adds `d` to a pending, unexpired `r`: AlreadyExists if that approver already decided;
// a deny makes it "denied", enough approves make it "approved" (decided_at set); else it
// stays "pending". The caller checked status and expiry, and persists the result.
inline Status ApplyApprovalDecision(ApprovalRecord* r, const ApprovalDecisionRecord& d,
                                    const std::string& id) {
  for (const auto& prev : r->decisions) {
    if (prev.approver == d.approver)
      return Status::AlreadyExists("you already decided on approval " + id);
  }
  r->decisions.push_back(d);
  int64_t approves = 0;
  for (const auto& x : r->decisions) approves += x.decision == "approve";
  if (d.decision == "deny") {
    r->status = "denied";
  } else if (approves >= r->approvers_required) {
    r->status = "approved";
  }
  if (r->status != "pending") r->decided_at = d.decided_at;
  return Status::Ok();
}

}  // namespace toani::store
