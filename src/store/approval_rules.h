// The one rule for recording a human decision on a pending approval, shared by every
// ApprovalStore (SQLite, PostgreSQL) so they cannot drift apart. Internal to src/store.
#pragma once

#include <string>

#include "common/status.h"
#include "store/store.h"

namespace toani::store {

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
