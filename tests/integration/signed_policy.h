// Applies a policy the way a policy admin does: signed by a policy-admin key that the
// operator registered first (one key per harness, made on first use).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "policy/signing.h"
#include "server_harness.h"

namespace toani::testing {

class PolicySigner {
 public:
  explicit PolicySigner(const ServerHarness& server) : server_(server) {}
  // POST /v1/policies with `doc` signed; registers the key on first use.
  StatusOr<nlohmann::json> Apply(const nlohmann::json& doc, long* status) {
    if (!registered_) {
      long st = 0;
      auto r = server_.CallJson("admin", "POST", "/v1/policy-keys",
                                {{"public_key", key_.public_key}, {"name", "test admin"}}, &st);
      if (!r.ok()) return r.status();
      if (st != 201) return Status::Internal("policy key registration: " + r->dump());
      registered_ = true;
    }
    TOANI_ASSIGN_OR_RETURN(nlohmann::json env, policy::SignPolicy(doc, key_.secret));
    return server_.CallJson("admin", "POST", "/v1/policies", env, status);
  }
  const policy::PolicyKeyPair& key() const { return key_; }

 private:
  const ServerHarness& server_;
  policy::PolicyKeyPair key_ = policy::GeneratePolicyKey();
  bool registered_ = false;
};

}  // namespace toani::testing
