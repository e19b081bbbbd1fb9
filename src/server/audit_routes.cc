// /readyz and the audit routes of issue 4 (docs/audit-format.md §4, §7).
#include <charconv>

#include "audit/bundle.h"
#include "common/encoding.h"
#include "server/api.h"
#include "server/audit_plane.h"

namespace toani::server {
namespace {

using nlohmann::json;
constexpr uint64_t kMaxExport = 50000;  // keeps a bundle under the client's 64 MiB

HttpResponse Text(int status, std::string body, std::string type) {
  HttpResponse r;
  r.status = status;
  r.content_type = std::move(type);
  r.body = std::move(body);
  return r;
}

StatusOr<uint64_t> QueryNum(const HttpRequest& req, const char* name,
                            std::optional<uint64_t> dflt) {
  auto it = req.query.find(name);
  if (it == req.query.end()) {
    if (dflt) return *dflt;
    return Status::InvalidArgument(std::string("query '") + name + "' is required");
  }
  uint64_t v = 0;
  const std::string& s = it->second;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) {
    return Status::InvalidArgument(std::string("query '") + name +
                                   "' must be a non-negative integer");
  }
  return v;
}

std::vector<std::string> B64(const std::vector<audit::Hash>& hs) {
  std::vector<std::string> out;
  for (const auto& h : hs)
    out.push_back(Base64Encode(std::span<const uint8_t>(h.data(), h.size())));
  return out;
}

HttpResponse Export(const ApiDeps& d, const Caller& c, const HttpRequest& req) {
  auto from = QueryNum(req, "from", 0);
  if (!from.ok()) return ProblemFromStatus(from.status());
  std::optional<uint64_t> to;
  if (req.query.count("to") != 0) {
    auto t = QueryNum(req, "to", std::nullopt);
    if (!t.ok()) return ProblemFromStatus(t.status());
    to = *t;
  }
  // The export is itself audited, before the checkpoint is taken, so it is in the bundle's tree.
  auto ev = d.audit->Append(
      {{"type", "audit.exported"},
       {"tenant", c.tenant},
       {"actor", c.spiffe_id},
       {"reason", "from " + std::to_string(*from) + (to ? " to " + std::to_string(*to) : "")}});
  if (!ev.ok()) return ProblemFromStatus(ev.status());
  json attestation = {
      {"measurement", d.keyd_status.value("measurement", "")},
      {"simulated", d.keyd_status.value("simulated", true)},
      {"backend", "simulated"},
      {"note",
       "measurement = SHA-256 of the toani-keyd executable; no hardware TEE vouches for it"}};
  auto bundle = audit::ExportBundle(*d.audit, *from, to, attestation, kMaxExport);
  if (!bundle.ok()) return ProblemFromStatus(bundle.status());
  return Text(200, std::move(*bundle), "text/plain; charset=utf-8");
}

}  // namespace

std::optional<HttpResponse> HandleAuditRoute(const ApiDeps& d, const HttpRequest& req) {
  if (req.path == "/readyz" && req.method == "GET") {
    if (auto fault = d.audit->Fault())
      return ProblemResponse(503, "Not ready", "audit log: " + *fault);
    return Text(200, json{{"status", "ready"}, {"audit_size", d.audit->size()}}.dump(),
                "application/json");
  }
  const std::string& p = req.path;
  static const std::string kPrefix = "/v1/audit/";
  if (p.rfind(kPrefix, 0) != 0 || p == "/v1/audit/root" || p == "/v1/audit/entries")
    return std::nullopt;
  auto caller = CallerFromSpiffeId(req.peer.uri_san);
  if (!req.peer.authenticated || !caller.ok()) {
    return ProblemFromStatus(caller.ok()
                                 ? Status::Unauthenticated("a client certificate is required")
                                 : caller.status());
  }
  if (!caller->Has(Role::kAuditor))
    return ProblemFromStatus(Status::PermissionDenied("auditor role required"));
  if (req.method != "GET")
    return ProblemResponse(405, "Method not allowed", req.method + " is not supported on " + p);
  audit::AuditLog& log = *d.audit;
  const std::string rest = p.substr(kPrefix.size());
  if (rest == "checkpoint") {
    auto note = log.Checkpoint();
    if (!note.ok()) return ProblemFromStatus(note.status());
    HttpResponse r = Text(200, *note, "text/plain; charset=utf-8");
    r.headers.push_back({"Cache-Control", "no-store"});
    return r;
  }
  if (rest == "key")
    return Text(200, json{{"vkey", audit::FormatVerifierKey(log.key())}}.dump(),
                "application/json");
  if (rest.rfind("tile/", 0) == 0) {
    auto ref = audit::ParseTilePath(rest.substr(5));
    if (!ref.ok()) return ProblemResponse(404, "Not found", ref.status().message());
    auto tile = log.Tile(*ref);
    if (!tile.ok()) return ProblemResponse(404, "Not found", tile.status().message());
    HttpResponse r = Text(200, std::move(*tile), "application/octet-stream");
    r.headers.push_back({"Cache-Control", "public, max-age=31536000, immutable"});
    return r;
  }
  if (rest == "proof") {
    auto index = QueryNum(req, "index", std::nullopt);
    if (!index.ok()) return ProblemFromStatus(index.status());
    auto note = log.Checkpoint();
    if (!note.ok()) return ProblemFromStatus(note.status());
    auto cp = audit::VerifyCheckpoint(*note, log.key());
    if (!cp.ok()) return ProblemFromStatus(Status::Internal("own checkpoint does not verify"));
    if (*index >= cp->size)
      return ProblemFromStatus(Status::NotFound("no entry " + std::to_string(*index)));
    auto proof = log.InclusionProof(*index, cp->size);
    auto entries = log.Entries(*index, *index + 1);
    if (!proof.ok() || !entries.ok() || entries->size() != 1)
      return ProblemFromStatus(Status::Unavailable("cannot read the log"));
    return Text(200,
                json{{"index", *index},
                     {"entry", (*entries)[0]},
                     {"tlog_proof", audit::FormatTlogProof(*index, *proof, *note)}}
                    .dump(),
                "application/json");
  }
  if (rest == "consistency") {
    auto old = QueryNum(req, "old", std::nullopt);
    if (!old.ok()) return ProblemFromStatus(old.status());
    auto note = log.Checkpoint();
    if (!note.ok()) return ProblemFromStatus(note.status());
    auto cp = audit::VerifyCheckpoint(*note, log.key());
    if (!cp.ok()) return ProblemFromStatus(Status::Internal("own checkpoint does not verify"));
    if (*old == 0 || *old > cp->size) {
      return ProblemFromStatus(
          Status::InvalidArgument("old size must be in 1.." + std::to_string(cp->size)));
    }
    auto proof = log.ConsistencyProof(*old, cp->size);
    if (!proof.ok()) return ProblemFromStatus(proof.status());
    return Text(200, json{{"old", *old}, {"checkpoint", *note}, {"proof", B64(*proof)}}.dump(),
                "application/json");
  }
  if (rest == "export") return Export(d, *caller, req);
  return ProblemResponse(404, "Not found", "no route " + p);
}

}  // namespace toani::server
