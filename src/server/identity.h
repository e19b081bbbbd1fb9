// Caller identities from verified client certificates (DESIGN.md §1, §10).
//
// The caller is the certificate's SPIFFE URI SAN, spiffe://<tenant>/agent/<name> or
// spiffe://<tenant>/user/<name>. Roles: an agent certificate holds exactly the agent
// role; a user certificate holds the human roles named by its subject OU entries
// (operator, credential-admin, policy-admin, approver, auditor), which the tenant CA
// vouches for by signing (`toani pki issue --role`). A user certificate without a known
// role holds none: deny by default. docs/api.md "Identities" is the reference.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/https_server.h"

namespace toani::server {

enum class Role { kOperator, kCredentialAdmin, kPolicyAdmin, kApprover, kAuditor, kAgent };

// "operator", "credential-admin", ... (DESIGN.md §1); nullopt for an unknown name.
const char* RoleName(Role r);
std::optional<Role> RoleFromName(const std::string& name);
const std::vector<Role>& AllRoles();

struct Caller {
  std::string tenant;
  std::string kind;  // "agent" or "user"
  std::string name;
  std::string spiffe_id;
  std::set<Role> roles;
  bool Has(Role r) const { return roles.count(r) > 0; }
};

// Unauthenticated for a missing or malformed SPIFFE id. Roles are left empty.
StatusOr<Caller> CallerFromSpiffeId(const std::string& uri_san);

// The caller of a verified peer: its SPIFFE id and roles (see above). Unauthenticated
// when the peer is not verified, the id is malformed, or a user certificate names
// the agent role or an unknown role (a CA that signs nonsense is not trusted to mean it).
StatusOr<Caller> CallerFromPeer(const PeerIdentity& peer);

}  // namespace toani::server
