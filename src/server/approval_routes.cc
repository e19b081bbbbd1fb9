// Authorize (allow / deny / approval required) and human approval with CIBA-style
// polling (docs/api.md "Human approval", docs/formats.md §10).
#include <sodium.h>

#include "common/encoding.h"
#include "common/jcs.h"
#include "common/log.h"
#include "crypto/hash.h"
#include "server/api.h"
#include "server/metrics.h"
#include "server/policy_plane.h"

namespace toani::server {
namespace {

using nlohmann::json;

HttpResponse Problem(const Status& s) { return ProblemFromStatus(s); }

// CIBA / RFC 8628 token-endpoint errors, as problem+json with an "error" member.
HttpResponse CibaError(const std::string& error, const std::string& detail, int64_t interval = 0) {
  HttpResponse r = ProblemResponse(400, "Bad request", detail);
  json b = json::parse(r.body, nullptr, false);
  if (b.is_object()) {
    b["error"] = error;
    if (interval > 0) b["interval"] = interval;
    r.body = b.dump();
  }
  return r;
}

std::string NewApprovalId() {
  uint8_t b[12];
  randombytes_buf(b, sizeof b);
  return "apr_" + HexEncode(std::span<const uint8_t>(b, sizeof b));
}

bool ValidUserName(const std::string& u) {
  if (u.empty() || u.size() > 128) return false;
  for (unsigned char ch : u) {
    if (!std::isalnum(ch) && ch != '_' && ch != '-' && ch != '.' && ch != '@') return false;
  }
  return true;
}

json ApprovalJson(const store::ApprovalRecord& r) {
  json decisions = json::array();
  for (const auto& d : r.decisions) {
    decisions.push_back({{"approver", d.approver},
                         {"decision", d.decision},
                         {"decided_at", d.decided_at},
                         {"comment", d.comment}});
  }
  return {{"id", r.id},
          {"status", r.status},
          {"agent", r.agent},
          {"requester", r.requester},
          {"user", r.user},
          {"action", r.action},
          {"params", json::parse(r.params, nullptr, false)},
          {"params_hash", r.params_hash},
          {"policy", {{"id", r.policy_id}, {"version", r.policy_version}}},
          {"risk_tier", r.risk_tier},
          {"approvers_required", r.approvers_required},
          {"created_at", r.created_at},
          {"expires_at", FormatRfc3339(SysTime(std::chrono::seconds(r.expires_at)))},
          {"decisions", decisions},
          {"proof", r.proof.empty() ? json(nullptr) : json(r.proof)}};
}

}  // namespace

json PolicyPlane::ApprovalRecordJson(const store::ApprovalRecord& r) {
  json approvers = json::array();
  for (const auto& d : r.decisions) {
    approvers.push_back(
        {{"approver", d.approver}, {"decision", d.decision}, {"decided_at", d.decided_at}});
  }
  return {{"type", "toani.approval.v1"},
          {"approval_id", r.id},
          {"tenant", r.tenant},
          {"agent", r.agent},
          {"action", r.action},
          {"params_hash", r.params_hash},
          {"policy_id", r.policy_id},
          {"policy_version", r.policy_version},
          {"approvers_required", r.approvers_required},
          {"outcome", r.status},
          {"requested_at", r.created_at},
          {"decided_at", r.decided_at},
          {"approvers", approvers}};
}

std::string PolicyPlane::ApprovalProof(const store::ApprovalRecord& r) {
  return "sha256:" + crypto::Sha256Hex(CanonicalizeJson(ApprovalRecordJson(r)));
}

StatusOr<keyd::MintedToken> PolicyPlane::MintToken(const Caller& c, const policy::Policy& p,
                                                   const policy::ActionSpec& a,
                                                   const std::string& params_hash,
                                                   const std::string& user, const json& hitl) {
  // The binary token.mint frame (docs/formats.md §1.3): on every allowed authorize.
  keyd::MintRequest r;
  r.tenant = c.tenant;
  r.agent = c.name;
  r.user = user.empty() ? "-" : user;
  r.ttl_seconds = a.token_ttl_seconds;
  r.policy_id = p.policy_id;
  r.policy_version = p.version;
  r.action = a.name;
  r.params_hash = params_hash;
  r.risk_tier = a.risk_tier;
  r.hitl = hitl;
  r.cred = {a.credential_id};
  TOANI_ASSIGN_OR_RETURN(std::string frame, keyd::EncodeMintRequest(r));
  TOANI_ASSIGN_OR_RETURN(std::string reply, d_.keyd->CallBinary(frame));
  return keyd::DecodeMintReply(reply);
}

HttpResponse PolicyPlane::Authorize(const Caller& c, const json& body) {
  if (!c.Has(Role::kAgent))
    return Problem(Status::PermissionDenied("only agents authorize actions"));
  if (!body.contains("action") || !body["action"].is_string() ||
      body["action"].get<std::string>().empty() || body["action"].get<std::string>().size() > 128) {
    return Problem(Status::InvalidArgument("field 'action' must be a non-empty string"));
  }
  const std::string action = body["action"];
  if (!body.contains("params")) return Problem(Status::InvalidArgument("missing field 'params'"));
  const json& params = body["params"];
  if (!params.is_object())
    return Problem(Status::InvalidArgument("field 'params' must be a JSON object"));
  std::string user;
  if (body.contains("user")) {
    if (!body["user"].is_string() || !ValidUserName(body["user"]))
      return Problem(Status::InvalidArgument("field 'user' must be a user name"));
    user = body["user"];
  }
  std::string proof;
  if (body.contains("identity_proof")) {
    if (!body["identity_proof"].is_string() ||
        body["identity_proof"].get<std::string>().size() > 8192)
      return Problem(
          Status::InvalidArgument("field 'identity_proof' must be a PASETO v4.public token"));
    proof = body["identity_proof"];
  }
  // toani_decisions_total{decision}: one count per well-formed authorize request, by what
  // the agent was told: allow, approval_required, deny, or error (no decision could be
  // made or made durable: the policy store, keyd or the audit log failed).
  struct CountDecision {
    const char* decision = "error";
    ~CountDecision() { Metrics::Global().Inc("toani_decisions_total", {{"decision", decision}}); }
  } counted;
  auto policies = CurrentPolicies(c.tenant);
  if (!policies.ok()) return Problem(policies.status());
  const SysTime now = d_.clock();
  policy::DecisionRequest dreq{c.tenant, c.name, action, &params, now, user, proof};
  policy::FullDecision d = policy::Decide(**policies, dreq, Env(c.tenant, /*dry_run=*/false));
  const std::string params_hash = policy::ParamsHash(params);
  auto deny = [&](const std::string& reason, const std::string& rule) -> HttpResponse {
    // Denials are audited (an agent probing for actions is worth seeing) but change
    // nothing else.
    auto a = d_.audit->Append({{"type", "action.denied"},
                               {"tenant", c.tenant},
                               {"actor", c.spiffe_id},
                               {"action", action},
                               {"params_hash", params_hash},
                               {"rule", rule},
                               {"reason", reason},
                               {"tee", Tee()}});
    if (!a.ok()) return Problem(a.status());
    counted.decision = "deny";
    if (!d.known_action)
      return Problem(Status::NotFound("unknown action '" + action + "': no policy defines it"));
    HttpResponse r = Problem(Status::PermissionDenied(reason));
    json b = json::parse(r.body, nullptr, false);
    b["decision"] = "deny";
    b["rule"] = rule;
    r.body = b.dump();
    return r;
  };
  if (d.outcome == policy::Outcome::kDeny) return deny(d.reason, d.rule);
  const policy::Policy& pol = *d.policy;
  const policy::ActionSpec& a = *d.action;
  if (d.outcome == policy::Outcome::kApprovalRequired) {
    const int64_t now_s = UnixSeconds(now);
    // An identical request an approver denied recently is denied again without asking.
    auto prior = d_.approvals->RecentDenial(c.tenant, c.name, action, params_hash,
                                            now_s - a.approval.deny_cooldown_seconds);
    if (prior.ok()) {
      return deny("an approver denied an identical request (" + prior->id + ") at " +
                      prior->decided_at + "; it is denied again without asking",
                  "recently_denied");
    }
    if (prior.status().code() != StatusCode::kNotFound) return Problem(prior.status());
    store::ApprovalRecord rec;
    rec.tenant = c.tenant;
    rec.id = NewApprovalId();
    rec.agent = c.name;
    rec.requester = c.spiffe_id;
    rec.user = d.user.empty() ? "-" : d.user;
    rec.action = action;
    rec.params_hash = params_hash;
    rec.params = CanonicalizeJson(params);
    rec.policy_id = pol.policy_id;
    rec.policy_version = pol.version;
    rec.risk_tier = a.risk_tier;
    rec.approvers_required = d.approvers_required;
    rec.created_at = FormatRfc3339(now);
    rec.expires_at = now_s + a.approval.ttl_seconds;
    // Queued for the approval webhook first (a crash between the two cannot lose the
    // announcement), delivered once stored; never blocks or fails this call.
    if (d_.announcer != nullptr) d_.announcer->Queue(rec);
    if (Status st = d_.approvals->CreateApproval(rec); !st.ok()) return Problem(st);
    if (d_.announcer != nullptr) d_.announcer->Kick();
    auto e = d_.audit->Append({{"type", "approval.requested"},
                               {"tenant", c.tenant},
                               {"actor", c.spiffe_id},
                               {"approval_id", rec.id},
                               {"action", action},
                               {"params_hash", params_hash},
                               {"policy_id", pol.policy_id},
                               {"policy_version", pol.version},
                               {"approvers_required", rec.approvers_required},
                               {"reason", d.reason},
                               {"tee", Tee()}});
    if (!e.ok()) return Problem(e.status());
    counted.decision = "approval_required";
    const std::string expires = FormatRfc3339(SysTime(std::chrono::seconds(rec.expires_at)));
    return JsonResponse(202, {{"decision", "approval_required"},
                              {"reason", d.reason},
                              {"approval_id", rec.id},
                              {"approvers_required", rec.approvers_required},
                              {"interval", rec.poll_interval},
                              {"expires_at", expires},
                              {"params_hash", params_hash},
                              {"policy", {{"id", pol.policy_id}, {"version", pol.version}}}});
  }
  auto minted = MintToken(c, pol, a, params_hash, d.user, keyd::NoApprovalHitl());
  if (!minted.ok()) return Problem(minted.status());
  // The token is handed out only once its authorization is durable in the log.
  auto entry = d_.audit->Append({{"type", "action.authorized"},
                                 {"tenant", c.tenant},
                                 {"actor", c.spiffe_id},
                                 {"action", a.name},
                                 {"params_hash", params_hash},
                                 {"policy_id", pol.policy_id},
                                 {"policy_version", pol.version},
                                 {"jti", minted->jti},
                                 {"reason", d.reason},
                                 {"tee", Tee()}});
  if (!entry.ok()) return Problem(entry.status());
  counted.decision = "allow";
  // Written directly rather than through a json tree: this answer is on every allowed
  // authorize, and the tree's serialiser escapes the long token byte by byte.
  HttpResponse r = JsonResponse(200, json::object());
  r.body = R"({"decision":"allow","expires_at":)";
  Status st = AppendJsonString(minted->exp, &r.body);
  r.body += R"(,"params_hash":)";
  if (st.ok()) st = AppendJsonString(params_hash, &r.body);
  r.body += R"(,"policy":{"id":)";
  if (st.ok()) st = AppendJsonString(pol.policy_id, &r.body);
  r.body += R"(,"version":)" + std::to_string(pol.version) + R"(},"reason":)";
  if (st.ok()) st = AppendJsonString(d.reason, &r.body);
  r.body += R"(,"token":)";
  if (st.ok()) st = AppendJsonString(minted->token, &r.body);
  r.body += "}";
  if (!st.ok()) return Problem(Status::Internal("the authorization could not be encoded"));
  return r;
}

HttpResponse PolicyPlane::ListApprovals(const Caller& c, const HttpRequest& req) {
  if (!c.Has(Role::kApprover) && !c.Has(Role::kAuditor))
    return Problem(Status::PermissionDenied("approver or auditor role required"));
  std::string status = "pending";
  if (auto it = req.query.find("status"); it != req.query.end())
    status = it->second == "all" ? "" : it->second;
  static const char* kStatuses[] = {"", "pending", "approved", "denied", "expired", "redeemed"};
  bool ok = false;
  for (const char* s : kStatuses) ok = ok || status == s;
  if (!ok)
    return Problem(Status::InvalidArgument(
        "status must be pending, approved, denied, expired, redeemed or all"));
  auto list = d_.approvals->ListApprovals(c.tenant, status, 200);
  if (!list.ok()) return Problem(list.status());
  const int64_t now = UnixSeconds(d_.clock());
  json out = json::array();
  for (const auto& r : *list) {
    if (status == "pending" && r.expires_at <= now) continue;  // expired, not yet marked
    out.push_back(ApprovalJson(r));
  }
  return JsonResponse(200, {{"approvals", out}});
}

HttpResponse PolicyPlane::GetApproval(const Caller& c, const std::string& id) {
  auto r = d_.approvals->GetApproval(c.tenant, id);
  if (!r.ok()) return Problem(r.status());
  // Approvers and auditors see every request; an agent only its own.
  if (!c.Has(Role::kApprover) && !c.Has(Role::kAuditor) && r->requester != c.spiffe_id)
    return Problem(Status::NotFound("approval " + id + " not found"));
  return JsonResponse(200, ApprovalJson(*r));
}

HttpResponse PolicyPlane::DecideApproval(const Caller& c, const std::string& id,
                                         const std::string& verb, const json& body) {
  if (!c.Has(Role::kApprover)) return Problem(Status::PermissionDenied("approver role required"));
  std::string comment;
  if (body.contains("comment")) {
    if (!body["comment"].is_string() || body["comment"].get<std::string>().size() > 1024)
      return Problem(Status::InvalidArgument("comment: a string of at most 1024 bytes"));
    comment = body["comment"];
  }
  auto cur = d_.approvals->GetApproval(c.tenant, id);
  if (!cur.ok()) return Problem(cur.status());
  // No self-approval: neither the requesting identity nor the human it acts for.
  if (cur->requester == c.spiffe_id || (c.kind == "user" && cur->user == c.name)) {
    auto a = d_.audit->Append({{"type", "approval.refused"},
                               {"tenant", c.tenant},
                               {"actor", c.spiffe_id},
                               {"approval_id", id},
                               {"reason", "self-approval"},
                               {"tee", Tee()}});
    if (!a.ok()) return Problem(a.status());
    return Problem(Status::PermissionDenied("an approver may not decide on their own request"));
  }
  const SysTime now = d_.clock();
  store::ApprovalDecisionRecord dec{c.spiffe_id, verb, FormatRfc3339(now), comment};
  auto r = d_.approvals->Decide(
      c.tenant, id, dec, UnixSeconds(now),
      [](const store::ApprovalRecord& rec) -> StatusOr<std::string> { return ApprovalProof(rec); });
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kAlreadyExists) {
      return Problem(Status::FailedPrecondition("you already decided on approval " + id +
                                                ": approvers must be distinct"));
    }
    return Problem(r.status());
  }
  json entry = {{"type", "approval." + std::string(verb == "approve" ? "approved" : "denied")},
                {"tenant", c.tenant},
                {"actor", c.spiffe_id},
                {"approval_id", id},
                {"params_hash", r->params_hash},
                {"status", r->status},
                {"tee", Tee()}};
  if (r->status != "pending") {
    entry["approval_record"] = ApprovalRecordJson(*r);
    entry["hitl_proof"] = r->proof;
  }
  auto a = d_.audit->Append(entry);
  if (!a.ok()) return Problem(a.status());
  return JsonResponse(200, ApprovalJson(*r));
}

HttpResponse PolicyPlane::PollToken(const Caller& c, const std::string& id) {
  if (!c.Has(Role::kAgent)) return Problem(Status::PermissionDenied("only agents poll for tokens"));
  auto cur = d_.approvals->GetApproval(c.tenant, id);
  if (!cur.ok()) return Problem(cur.status());
  if (cur->requester != c.spiffe_id)
    return Problem(Status::NotFound("approval " + id + " not found"));
  auto polled = d_.approvals->Poll(c.tenant, id, UnixSeconds(d_.clock()));
  if (!polled.ok()) return Problem(polled.status());
  const store::ApprovalRecord& r = polled->record;
  if (r.status == "expired")
    return CibaError("expired_token", "approval " + id + " expired before approvers decided");
  if (r.status == "denied") return CibaError("access_denied", "an approver denied approval " + id);
  if (r.status == "redeemed")
    return CibaError("invalid_grant", "a token was already issued for approval " + id);
  if (polled->slow_down)
    return CibaError("slow_down",
                     "polling too fast: wait " + std::to_string(r.poll_interval) + " s",
                     r.poll_interval);
  if (r.status == "pending")
    return CibaError("authorization_pending", "approvers have not decided yet", r.poll_interval);
  if (r.status != "approved")
    return Problem(Status::Internal("approval in unknown state " + r.status));
  // The approval binds the policy version: a newer version means approvers did not
  // see what now applies, so the request must be made again.
  auto policies = CurrentPolicies(c.tenant);
  if (!policies.ok()) return Problem(policies.status());
  const policy::Policy* pol = nullptr;
  for (const auto& p : **policies) {
    if (p.policy_id == r.policy_id) pol = &p;
  }
  if (pol == nullptr || pol->version != r.policy_version) {
    return CibaError("access_denied", "policy " + r.policy_id + " changed since approval " + id +
                                          " (approved under v" + std::to_string(r.policy_version) +
                                          "): ask again");
  }
  auto ait = pol->actions.find(r.action);
  if (ait == pol->actions.end())
    return CibaError("access_denied", "the action is gone from the policy");
  // The stored proof must be the hash of the record rebuilt from the stored fields.
  if (ApprovalProof(r) != r.proof)
    return Problem(Status::Internal("approval record does not match its proof"));
  // Exactly one token per approval.
  if (Status st = d_.approvals->Redeem(c.tenant, id); !st.ok()) {
    if (st.code() == StatusCode::kFailedPrecondition)
      return CibaError("invalid_grant", "a token was already issued for approval " + id);
    return Problem(st);
  }
  json approvers = json::array();
  for (const auto& dd : r.decisions) {
    if (dd.decision == "approve") approvers.push_back(dd.approver);
  }
  json hitl = {{"confirmed", true}, {"approvers", approvers}, {"proof", r.proof}};
  auto minted = MintToken(c, *pol, ait->second, r.params_hash, r.user == "-" ? "" : r.user, hitl);
  if (!minted.ok()) return Problem(minted.status());
  auto entry = d_.audit->Append(
      {{"type", "action.authorized"},
       {"tenant", c.tenant},
       {"actor", c.spiffe_id},
       {"action", r.action},
       {"params_hash", r.params_hash},
       {"policy_id", r.policy_id},
       {"policy_version", r.policy_version},
       {"jti", minted->jti},
       {"approval_id", id},
       {"hitl_proof", r.proof},
       {"approval_record", ApprovalRecordJson(r)},
       {"reason", "approved by " + std::to_string(approvers.size()) + " distinct approver(s)"},
       {"tee", Tee()}});
  if (!entry.ok()) return Problem(entry.status());
  return JsonResponse(200, {{"decision", "allow"},
                            {"token", minted->token},
                            {"expires_at", minted->exp},
                            {"params_hash", r.params_hash},
                            {"hitl", hitl},
                            {"policy", {{"id", r.policy_id}, {"version", r.policy_version}}}});
}

}  // namespace toani::server
