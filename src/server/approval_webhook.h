// Announces new approval requests to a configured webhook, signed per the Standard
// Webhooks scheme (docs/api.md "Approval webhook", payload in docs/formats.md §11).
//
// Queue() puts the announcement in a durable outbox (SQLite, the server's database)
// before the approval is stored, Kick() wakes delivery after; both return at once: it never waits
// on the network and never fails the agent's request. A worker thread delivers each queued
// announcement to the ONE configured URL (no redirects; nothing in the payload chooses where it
// goes), signed by keyd with a whsec_ secret stored as a sealed credential (the server never holds
// the secret). Failures (network, TLS, non-2xx) are retried with exponential backoff for as long as
// the approval is pending; rows left at shutdown are delivered after a restart. An
// announcement whose approval was decided or expired in the meantime is dropped.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/status.h"
#include "common/time.h"
#include "keyd/client.h"
#include "store/store.h"

namespace toani::server {

class ApprovalAnnouncer {
 public:
  virtual ~ApprovalAnnouncer() = default;
  // Durably queues the announcement of a new approval request. Called BEFORE the
  // approval is stored, so a crash in between cannot lose it (an announcement whose
  // approval never appears is dropped when it would have expired). Thread-safe; returns
  // at once (a failure to queue is logged, the approval itself stands).
  virtual void Queue(const store::ApprovalRecord& approval) = 0;
  // Wakes delivery; called once the approval is stored.
  virtual void Kick() = 0;
};

// The announcement body for `r` (docs/formats.md §11). Never holds parameter values.
nlohmann::json ApprovalAnnouncement(const store::ApprovalRecord& r);

struct ApprovalWebhookConfig {
  std::string url;                // https:// only
  std::string secret_credential;  // id of a credential holding "whsec_…" (sealed to keyd)
  std::string ca_file;            // PEM trust anchors for the receiver; "" = system store
  std::chrono::milliseconds timeout{10000};
  std::chrono::milliseconds initial_backoff{1000};  // doubled per failed attempt…
  std::chrono::milliseconds max_backoff{300000};    // …up to this
};

// Refuses an unusable configuration (InvalidArgument naming the key).
Status ValidateApprovalWebhookConfig(const ApprovalWebhookConfig& cfg);

class ApprovalWebhook final : public ApprovalAnnouncer {
 public:
  struct Deps {
    store::WebhookOutbox* outbox = nullptr;
    store::ApprovalStore* approvals = nullptr;
    store::Store* credentials = nullptr;
    keyd::KeyServiceClient* keyd = nullptr;
    Clock clock = SystemClock();
  };
  // Starts the delivery thread (which picks up rows left by an earlier run).
  static StatusOr<std::unique_ptr<ApprovalWebhook>> Start(ApprovalWebhookConfig cfg, Deps deps);
  ~ApprovalWebhook() override;  // stops the thread; queued rows stay for the next run

  void Queue(const store::ApprovalRecord& approval) override;
  void Kick() override;

  struct Stats {
    uint64_t delivered = 0, failed_attempts = 0, dropped = 0;
  };
  Stats stats() const;

 private:
  ApprovalWebhook(ApprovalWebhookConfig cfg, Deps deps);
  void Run();
  void Deliver(const store::WebhookOutboxRow& row);

  const ApprovalWebhookConfig cfg_;
  const Deps d_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool kicked_ = false;
  std::atomic<uint64_t> delivered_{0}, failed_{0}, dropped_{0};
  std::thread worker_;
};

}  // namespace toani::server
