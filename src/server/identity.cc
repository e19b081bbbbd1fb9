#include "server/identity.h"

namespace toani::server {

const char* RoleName(Role r) {
  switch (r) {
    case Role::kOperator:
      return "operator";
    case Role::kCredentialAdmin:
      return "credential-admin";
    case Role::kPolicyAdmin:
      return "policy-admin";
    case Role::kApprover:
      return "approver";
    case Role::kAuditor:
      return "auditor";
    case Role::kAgent:
      return "agent";
  }
  return "?";
}

const std::vector<Role>& AllRoles() {
  static const std::vector<Role> kAll = {Role::kOperator,    Role::kCredentialAdmin,
                                         Role::kPolicyAdmin, Role::kApprover,
                                         Role::kAuditor,     Role::kAgent};
  return kAll;
}

std::optional<Role> RoleFromName(const std::string& name) {
  for (Role r : AllRoles()) {
    if (name == RoleName(r)) return r;
  }
  return std::nullopt;
}

StatusOr<Caller> CallerFromSpiffeId(const std::string& uri) {
  const std::string prefix = "spiffe://";
  if (uri.rfind(prefix, 0) != 0)
    return Status::Unauthenticated("client certificate has no spiffe:// URI SAN");
  std::string rest = uri.substr(prefix.size());
  size_t a = rest.find('/');
  size_t b = a == std::string::npos ? a : rest.find('/', a + 1);
  if (a == std::string::npos || b == std::string::npos ||
      rest.find('/', b + 1) != std::string::npos) {
    return Status::Unauthenticated("SPIFFE id must be spiffe://<tenant>/<agent|user>/<name>");
  }
  Caller c;
  c.tenant = rest.substr(0, a);
  c.kind = rest.substr(a + 1, b - a - 1);
  c.name = rest.substr(b + 1);
  c.spiffe_id = uri;
  if (c.tenant.empty() || c.name.empty())
    return Status::Unauthenticated("SPIFFE id has an empty tenant or name");
  if (c.kind != "agent" && c.kind != "user")
    return Status::Unauthenticated("SPIFFE id kind must be agent or user");
  return c;
}

StatusOr<Caller> CallerFromPeer(const PeerIdentity& peer) {
  if (!peer.authenticated) return Status::Unauthenticated("a client certificate is required");
  TOANI_ASSIGN_OR_RETURN(Caller c, CallerFromSpiffeId(peer.uri_san));
  if (c.kind == "agent") {
    c.roles = {Role::kAgent};
    return c;
  }
  for (const std::string& name : peer.roles) {
    auto r = RoleFromName(name);
    if (!r || *r == Role::kAgent) {
      return Status::Unauthenticated("user certificate names an unknown role '" +
                                     name.substr(0, 64) + "'");
    }
    c.roles.insert(*r);
  }
  return c;
}

}  // namespace toani::server
