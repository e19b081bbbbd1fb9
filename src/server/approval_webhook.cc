#include "server/approval_webhook.h"

#include <algorithm>

#include "common/http_client.h"
#include "common/log.h"

namespace toani::server {

using nlohmann::json;

namespace {
int64_t UnixMillis(SysTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
}  // namespace

json ApprovalAnnouncement(const store::ApprovalRecord& r) {
  // Deliberately no "params": parameter values (amounts, account numbers, free text)
  // stay on the server; approvers read them through the authenticated API.
  return {{"type", "approval.requested"},
          {"timestamp", r.created_at},
          {"data",
           {{"approval_id", r.id},
            {"tenant", r.tenant},
            {"agent", r.agent},
            {"requester", r.requester},
            {"user", r.user == "-" || r.user.empty() ? json(nullptr) : json(r.user)},
            {"action", r.action},
            {"params_hash", r.params_hash},
            {"policy", {{"id", r.policy_id}, {"version", r.policy_version}}},
            {"risk_tier", r.risk_tier},
            {"approvers_required", r.approvers_required},
            {"created_at", r.created_at},
            {"expires_at", FormatRfc3339(SysTime(std::chrono::seconds(r.expires_at)))},
            {"review",
             {{"api", "/v1/approvals/" + r.id},
              {"cli", "toani approval show " + r.id},
              {"approve", "toani approval approve " + r.id},
              {"deny", "toani approval deny " + r.id}}}}}};
}

Status ValidateApprovalWebhookConfig(const ApprovalWebhookConfig& cfg) {
  if (!cfg.url.starts_with("https://") || cfg.url.size() <= 8 ||
      cfg.url.find_first_of(" \t\r\n") != std::string::npos) {
    return Status::InvalidArgument("approval_webhook_url must be an https:// URL");
  }
  if (cfg.secret_credential.empty()) {
    return Status::InvalidArgument(
        "approval_webhook_secret_credential is required with approval_webhook_url: the id of a "
        "credential holding the whsec_ signing secret (toani credential add)");
  }
  if (cfg.timeout.count() <= 0)
    return Status::InvalidArgument("approval_webhook_timeout_seconds must be > 0");
  return Status::Ok();
}

ApprovalWebhook::ApprovalWebhook(ApprovalWebhookConfig cfg, Deps deps)
    : cfg_(std::move(cfg)), d_(std::move(deps)) {}

StatusOr<std::unique_ptr<ApprovalWebhook>> ApprovalWebhook::Start(ApprovalWebhookConfig cfg,
                                                                  Deps deps) {
  TOANI_RETURN_IF_ERROR(ValidateApprovalWebhookConfig(cfg));
  if (deps.outbox == nullptr || deps.approvals == nullptr || deps.credentials == nullptr ||
      deps.keyd == nullptr) {
    return Status::InvalidArgument("approval webhook: missing dependency");
  }
  std::unique_ptr<ApprovalWebhook> w(new ApprovalWebhook(std::move(cfg), std::move(deps)));
  w->worker_ = std::thread([p = w.get()] { p->Run(); });
  return w;
}

ApprovalWebhook::~ApprovalWebhook() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

ApprovalWebhook::Stats ApprovalWebhook::stats() const {
  return {delivered_.load(), failed_.load(), dropped_.load()};
}

void ApprovalWebhook::Queue(const store::ApprovalRecord& r) {
  store::WebhookOutboxRow row;
  row.tenant = r.tenant;
  row.approval_id = r.id;
  row.msg_id = "msg_" + r.id;
  row.body = ApprovalAnnouncement(r).dump();
  row.next_attempt_at = UnixMillis(d_.clock());
  row.expires_at = r.expires_at;
  if (Status st = d_.outbox->Put(row); !st.ok()) {
    // The approval stands (approvers see it in GET /v1/approvals); only the push is lost.
    Log(LogLevel::kError, "approval_webhook", "queue_failed",
        {{"approval_id", r.id}, {"error", st.message()}});
  }
}

void ApprovalWebhook::Kick() {
  {
    std::lock_guard<std::mutex> l(mu_);
    kicked_ = true;
  }
  cv_.notify_all();
}

void ApprovalWebhook::Run() {
  while (true) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stop_) return;
      kicked_ = false;
    }
    auto due = d_.outbox->Due(UnixMillis(d_.clock()), 32);
    if (!due.ok()) {
      Log(LogLevel::kError, "approval_webhook", "outbox_unavailable",
          {{"error", due.status().message()}});
    } else {
      for (const auto& row : *due) {
        {
          std::lock_guard<std::mutex> l(mu_);
          if (stop_) return;
        }
        Deliver(row);
      }
    }
    // Sleep until the next row is due (at most 1 s, so a clock that jumps is noticed),
    // or until Kick() or the destructor wakes us.
    auto wait = std::chrono::milliseconds(1000);
    auto next = d_.outbox->NextDue();
    if (next.ok()) {
      const int64_t in = *next - UnixMillis(d_.clock());
      if (in <= 0 && due.ok() && due->size() == 32) {
        wait = std::chrono::milliseconds(0);  // more due rows than one batch
      } else if (in > 0) {
        wait = std::min(wait, std::chrono::milliseconds(in));
      } else {
        wait = std::chrono::milliseconds(100);  // a row could not be rescheduled
      }
    }
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, wait, [this] { return stop_ || kicked_; });
  }
}

void ApprovalWebhook::Deliver(const store::WebhookOutboxRow& row) {
  const int64_t now_ms = UnixMillis(d_.clock());
  const int64_t now = now_ms / 1000;
  // Announce only what approvers can still act on.
  auto a = d_.approvals->GetApproval(row.tenant, row.approval_id);
  if (!a.ok() && a.status().code() != StatusCode::kNotFound) {
    (void)d_.outbox->Reschedule(row.tenant, row.approval_id, row.attempts, now_ms + 1000,
                                a.status().message());
    return;
  }
  if (!a.ok() && row.expires_at > now) {
    // Queued just before its approval is stored (or the server stopped in between and
    // the approval never was): look again later; dropped at expiry.
    const int64_t attempts = row.attempts + 1;
    (void)d_.outbox->Reschedule(
        row.tenant, row.approval_id, attempts,
        now_ms + std::min<int64_t>(1000LL << std::min<int64_t>(attempts - 1, 8),
                                   cfg_.max_backoff.count()),
        "approval not stored (yet)");
    return;
  }
  if (!a.ok() || a->status != "pending" || a->expires_at <= now || row.expires_at <= now) {
    (void)d_.outbox->Remove(row.tenant, row.approval_id);
    ++dropped_;
    Log(LogLevel::kInfo, "approval_webhook", "dropped",
        {{"approval_id", row.approval_id},
         {"attempts", row.attempts},
         {"why", a.ok()
                     ? "approval is " + (a->expires_at <= now ? std::string("expired") : a->status)
                     : "approval not found"}});
    return;
  }
  auto attempt = [&]() -> Status {
    auto cred = d_.credentials->GetCredential(row.tenant, cfg_.secret_credential);
    if (!cred.ok()) {
      return Status::FailedPrecondition("signing secret credential " + cfg_.secret_credential +
                                        ": " + cred.status().message());
    }
    TOANI_ASSIGN_OR_RETURN(json sig, d_.keyd->Call({{"op", "webhook.sign_approval"},
                                                    {"tenant", row.tenant},
                                                    {"credential_id", cred->id},
                                                    {"version", cred->version},
                                                    {"blob", cred->blob},
                                                    {"webhook_id", row.msg_id},
                                                    {"body", row.body}}));
    ClientTls tls;
    tls.ca_file = cfg_.ca_file;
    TOANI_ASSIGN_OR_RETURN(
        ClientResponse resp,
        HttpsCall("POST", cfg_.url, row.body, "application/json", tls, cfg_.timeout,
                  {{"webhook-id", sig.value("webhook_id", "")},
                   {"webhook-timestamp", sig.value("webhook_timestamp", "")},
                   {"webhook-signature", sig.value("webhook_signature", "")}}));
    if (resp.status < 200 || resp.status > 299) {
      return Status::Unavailable("receiver answered HTTP " + std::to_string(resp.status));
    }
    return Status::Ok();
  };
  Status st = attempt();
  if (st.ok()) {
    (void)d_.outbox->Remove(row.tenant, row.approval_id);
    ++delivered_;
    Log(LogLevel::kInfo, "approval_webhook", "delivered",
        {{"approval_id", row.approval_id}, {"attempts", row.attempts + 1}});
    return;
  }
  ++failed_;
  const int64_t attempts = row.attempts + 1;
  // 1 s, 2 s, 4 s, … (configurable), capped.
  int64_t backoff_ms = cfg_.initial_backoff.count();
  for (int64_t i = 1; i < attempts && backoff_ms < cfg_.max_backoff.count(); ++i) backoff_ms *= 2;
  backoff_ms = std::max<int64_t>(1, std::min<int64_t>(backoff_ms, cfg_.max_backoff.count()));
  (void)d_.outbox->Reschedule(row.tenant, row.approval_id, attempts, now_ms + backoff_ms,
                              st.message());
  Log(LogLevel::kWarn, "approval_webhook", "attempt_failed",
      {{"approval_id", row.approval_id},
       {"attempts", attempts},
       {"retry_in_ms", backoff_ms},
       {"error", st.message()}});
}

}  // namespace toani::server
