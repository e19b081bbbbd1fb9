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

namespace {

HttpResponse Checkpoint(const ApiDeps& d) {
  auto note = d.audit->Checkpoint();
  if (!note.ok()) return ProblemFromStatus(note.status());
  HttpResponse r = Text(200, *note, "text/plain; charset=utf-8");
  r.headers.push_back({"Cache-Control", "no-store"});
  return r;
}

HttpResponse TileRoute(const ApiDeps& d, const std::string& rest) {
  auto ref = audit::ParseTilePath(rest);
  if (!ref.ok()) return ProblemResponse(404, "Not found", ref.status().message());
  auto tile = d.audit->Tile(*ref);
  if (!tile.ok()) return ProblemResponse(404, "Not found", tile.status().message());
  HttpResponse r = Text(200, std::move(*tile), "application/octet-stream");
  r.headers.push_back({"Cache-Control", "public, max-age=31536000, immutable"});
  return r;
}

HttpResponse Proof(const ApiDeps& d, const HttpRequest& req) {
  audit::AuditLog& log = *d.audit;
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

HttpResponse Consistency(const ApiDeps& d, const HttpRequest& req) {
  audit::AuditLog& log = *d.audit;
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

}  // namespace

// The transparency log is one per deployment (its tiles and proofs cover every
// tenant's entries, which carry hashes and ids, never parameter values or secrets).
void RegisterAuditRoutes(RouteTable& t, const ApiDeps& deps) {
  const ApiDeps* d = &deps;
  auto add = [&](const char* path, const char* summary, const char* type, json query,
                 RouteHandler h) {
    t.Add({.method = "GET",
           .path = path,
           .roles = {Role::kAuditor},
           .tenancy = Tenancy::kGlobal,
           .summary = summary,
           .query = std::move(query),
           .success_type = type,
           .handler = std::move(h)});
  };
  add("/v1/audit/checkpoint", "The latest C2SP signed checkpoint", "text/plain", json::array(),
      [d](const RouteContext&) { return Checkpoint(*d); });
  add("/v1/audit/key", "The log's verifier key", "application/json", json::array(),
      [d](const RouteContext&) {
        return Text(200, json{{"vkey", audit::FormatVerifierKey(d->audit->key())}}.dump(),
                    "application/json");
      });
  add("/v1/audit/tile/{tile...}", "C2SP tlog-tiles hash tiles and entry bundles",
      "application/octet-stream", json::array(),
      [d](const RouteContext& c) { return TileRoute(*d, c.path_params.at("tile")); });
  add("/v1/audit/proof", "An entry and its inclusion proof", "application/json",
      json::array({{{"name", "index"}, {"required", true}, {"schema", {{"type", "integer"}}}}}),
      [d](const RouteContext& c) { return Proof(*d, c.req); });
  add("/v1/audit/consistency", "A consistency proof from an older tree size", "application/json",
      json::array({{{"name", "old"}, {"required", true}, {"schema", {{"type", "integer"}}}}}),
      [d](const RouteContext& c) { return Consistency(*d, c.req); });
  add("/v1/audit/export", "A proof bundle for toani audit verify", "text/plain",
      json::array({{{"name", "from"}, {"schema", {{"type", "integer"}}}},
                   {{"name", "to"}, {"schema", {{"type", "integer"}}}}}),
      [d](const RouteContext& c) { return Export(*d, *c.caller, c.req); });
}

}  // namespace toani::server
