// Announces new approval requests to a configured webhook, signed per the Standard
// Webhooks scheme (docs/api.md "Approval webhook"). Delivery is asynchronous and
// retried; it never blocks or fails an authorize call.
#pragma once

#include <nlohmann/json.hpp>

namespace toani::server {

class ApprovalAnnouncer {
 public:
  virtual ~ApprovalAnnouncer() = default;
  // `event` is the payload ({"type":"approval.requested","timestamp",…,"data":{…}}).
  // Thread-safe; returns at once.
  virtual void Announce(const nlohmann::json& event) = 0;
};

}  // namespace toani::server
