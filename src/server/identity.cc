#include "server/identity.h"

namespace toani::server {

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
  if (c.kind == "agent") {
    c.roles = {Role::kAgent};
  } else if (c.kind == "user") {
    c.roles = {Role::kOperator, Role::kCredentialAdmin, Role::kPolicyAdmin, Role::kApprover,
               Role::kAuditor};
  } else {
    return Status::Unauthenticated("SPIFFE id kind must be agent or user");
  }
  return c;
}

}  // namespace toani::server
