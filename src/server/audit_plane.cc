#include "server/audit_plane.h"

#include <sys/stat.h>

#include "common/log.h"

namespace toani::server {

StatusOr<std::unique_ptr<AuditPlane>> OpenAuditPlane(const AuditPlaneOptions& opts,
                                                     keyd::KeyServiceClient* keyd,
                                                     const nlohmann::json& keyd_status) {
  auto p = std::make_unique<AuditPlane>();
  store::AuditStore* audit_store = opts.shared_store;
  if (audit_store == nullptr) {
    TOANI_ASSIGN_OR_RETURN(p->store, store::OpenSqliteAuditStore(opts.db_path));
    audit_store = p->store.get();
  }
  TOANI_ASSIGN_OR_RETURN(p->signer, audit::NewKeydAuditSigner(keyd));
  audit::AuditLogOptions lo;
  lo.tee = {{"measurement", keyd_status.value("measurement", "")},
            {"simulated", keyd_status.value("simulated", true)}};
  lo.handoff = opts.handoff;
  TOANI_ASSIGN_OR_RETURN(p->log, audit::AuditLog::Open(audit_store, p->signer.get(), lo));
  std::vector<std::string> published = opts.witness_dirs;
  if (!opts.witness_state_dir.empty()) {
    ::mkdir(opts.witness_state_dir.c_str(), 0700);
    for (const auto& url : opts.witness_urls)
      published.push_back(audit::HttpWitnessStateDir(opts.witness_state_dir, url));
  }
  for (const auto& dir : published) {
    if (p->log->Fault()) break;
    Status st = audit::CheckAgainstPublished(dir, *p->log);
    if (!st.ok()) {
      Log(LogLevel::kError, "audit", "witness_check_failed",
          {{"dir", dir}, {"error", st.message()}});
      p->log->SetFault(st.message());
    }
  }
  TOANI_ASSIGN_OR_RETURN(p->outbox, audit::Outbox::Open(opts.outbox_dir, p->log.get()));
  std::vector<std::unique_ptr<audit::WitnessSink>> sinks;
  for (const auto& dir : opts.witness_dirs) sinks.push_back(audit::NewDirectorySink(dir));
  for (const auto& url : opts.witness_urls) {
    sinks.push_back(audit::NewHttpWitnessSink(
        url, opts.witness_tls, nullptr,
        opts.witness_state_dir.empty() ? ""
                                       : audit::HttpWitnessStateDir(opts.witness_state_dir, url)));
  }
  p->publisher = std::make_unique<audit::WitnessPublisher>(p->log.get(), std::move(sinks),
                                                           opts.publish_interval);
  // Ask the witnesses now, not a publish interval later: readiness must be right from the
  // first request. An unreachable witness is not evidence of anything (logged; retried).
  if (!p->log->Fault() && !opts.witness_urls.empty()) (void)p->publisher->PublishNow();
  Log(LogLevel::kInfo, "audit", "opened",
      {{"size", p->log->size()},
       {"vkey", p->log->key().name},
       {"healthy", !p->log->Fault().has_value()}});
  return p;
}

}  // namespace toani::server
