// Caller identities from verified client certificates (DESIGN.md §10):
// spiffe://<tenant>/agent/<name> or spiffe://<tenant>/user/<name>.
// Walking skeleton: every user holds every human role; issue 8 reads roles from
// the certificate and enforces the role × route matrix.
#pragma once

#include <set>
#include <string>

#include "common/status.h"

namespace toani::server {

enum class Role { kOperator, kCredentialAdmin, kPolicyAdmin, kApprover, kAuditor, kAgent };

struct Caller {
  std::string tenant;
  std::string kind;  // "agent" or "user"
  std::string name;
  std::string spiffe_id;
  std::set<Role> roles;
  bool Has(Role r) const { return roles.count(r) > 0; }
};

// Unauthenticated for a missing or malformed SPIFFE id.
StatusOr<Caller> CallerFromSpiffeId(const std::string& uri_san);

}  // namespace toani::server
