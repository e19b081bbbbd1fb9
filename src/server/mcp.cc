// MCP at /mcp: Streamable HTTP transport, protocol 2025-11-25 (docs/mcp.md).
//
// Stateless: no Mcp-Session-Id; each POST carries one JSON-RPC message and gets one
// application/json answer (or 202 for a notification or response). GET (the optional
// server-to-client SSE stream) is not offered, so the route table answers it 405, as
// the transport allows. A tool call goes through the same route table as the REST API
// (POST /v1/authorize, then POST /v1/executions), so it gets the same RBAC, rate limit,
// audit and metrics.
#include "server/mcp.h"

#include <algorithm>

#include "common/log.h"
#include "policy/policy.h"
#include "server/metrics.h"

namespace toani::server {
namespace {

using nlohmann::json;

constexpr const char* kProtocolVersion = "2025-11-25";

HttpResponse Rpc(int http_status, const json& msg) {
  HttpResponse r;
  r.status = http_status;
  r.body = msg.dump();
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

HttpResponse RpcError(int http_status, const json& id, int code, const std::string& message) {
  return Rpc(http_status,
             {{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}});
}

HttpResponse RpcResult(const json& id, const json& result) {
  return Rpc(200, {{"jsonrpc", "2.0"}, {"id", id}, {"result", result}});
}

bool ValidToolName(const std::string& n) {
  return !n.empty() && n.size() <= 128 && std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

json ToolResult(bool is_error, const std::string& text, const json& structured) {
  json r = {{"content", json::array({{{"type", "text"}, {"text", text}}})}, {"isError", is_error}};
  if (structured.is_object()) r["structuredContent"] = structured;
  return r;
}

}  // namespace

StatusOr<std::vector<McpTool>> AllowedTools(store::Store* store, const Caller& agent) {
  auto recs = store->LatestPolicies(agent.tenant);
  if (!recs.ok()) return recs.status();
  std::map<std::string, McpTool> tools;
  for (const auto& r : *recs) {
    if (r.signatures.empty()) continue;  // unsigned (pre-issue-5) versions allow nothing
    auto p = policy::ParsePolicy(json::parse(r.document, nullptr, false));
    if (!p.ok()) continue;  // validated when applied
    for (const auto& [name, a] : p->actions) {
      if (!a.agent_selector.Matches(agent.name)) continue;  // names, "prefix-*", "*"
      if (!ValidToolName(name)) continue;
      McpTool t;
      t.name = name;
      t.description = "toani action '" + name + "' (policy " + p->policy_id + " v" +
                      std::to_string(p->version) + ", risk " + a.risk_tier +
                      "): runs in a sandbox with a credential you never see; the result is "
                      "scrubbed. May answer that a human approval is pending.";
      t.input_schema = a.params.is_object() ? a.params : json{{"type", "object"}};
      if (!t.input_schema.contains("type")) t.input_schema["type"] = "object";
      tools[name] = std::move(t);
    }
  }
  std::vector<McpTool> out;
  for (auto& [_, t] : tools) out.push_back(std::move(t));
  return out;
}

HttpResponse McpEndpoint::Handle(const RouteContext& ctx) const {
  const HttpRequest& req = ctx.req;
  // DNS-rebinding defence: a browser page may only talk to us from an allowed origin.
  const std::string origin = req.Header("origin");
  if (!origin.empty() && std::find(allowed_origins_.begin(), allowed_origins_.end(), origin) ==
                             allowed_origins_.end()) {
    return RpcError(403, nullptr, -32600, "Origin '" + origin.substr(0, 200) + "' is not allowed");
  }
  const std::string accept = req.Header("accept");
  if (!accept.empty() && accept.find("application/json") == std::string::npos &&
      accept.find("*/*") == std::string::npos) {
    return RpcError(406, nullptr, -32600, "Accept must include application/json");
  }
  const std::string version = req.Header("mcp-protocol-version");
  if (!version.empty() && version != kProtocolVersion && version != "2025-06-18" &&
      version != "2025-03-26") {
    return RpcError(400, nullptr, -32600,
                    "unsupported MCP-Protocol-Version '" + version.substr(0, 40) +
                        "' (this server speaks " + kProtocolVersion + ")");
  }
  if (req.Header("content-type").rfind("application/json", 0) != 0)
    return RpcError(415, nullptr, -32700, "send Content-Type: application/json");
  json msg = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (msg.is_discarded()) return RpcError(400, nullptr, -32700, "parse error: not JSON");
  if (!msg.is_object() || msg.value("jsonrpc", "") != "2.0")
    return RpcError(400, nullptr, -32600, "one JSON-RPC 2.0 message object per request");
  if (!msg.contains("method")) return Rpc(202, nullptr);  // a response to us: nothing to do
  if (!msg.contains("id")) return Rpc(202, nullptr);      // a notification
  const json id = msg["id"];
  if (!id.is_string() && !id.is_number_integer())
    return RpcError(400, nullptr, -32600, "id must be a string or an integer");
  if (!msg["method"].is_string()) return RpcError(400, id, -32600, "method must be a string");
  const std::string method = msg["method"];
  const json params = msg.value("params", json::object());
  Metrics::Global().Inc("toani_mcp_requests_total", {{"method", method.substr(0, 40)}});

  if (method == "initialize") {
    return RpcResult(id, {{"protocolVersion", kProtocolVersion},
                          {"capabilities", {{"tools", {{"listChanged", false}}}}},
                          {"serverInfo", {{"name", "toani"}, {"version", "0.1.0"}}},
                          {"instructions",
                           "Each tool is an action your policies allow. Calling one authorizes "
                           "and executes it; some actions wait for a human approval first."}});
  }
  if (method == "ping") return RpcResult(id, json::object());
  const Caller& agent = *ctx.caller;
  if (method == "tools/list") {
    auto tools = AllowedTools(deps_->store, agent);
    if (!tools.ok()) return RpcError(200, id, -32603, tools.status().message());
    json list = json::array();
    for (const auto& t : *tools)
      list.push_back(
          {{"name", t.name}, {"description", t.description}, {"inputSchema", t.input_schema}});
    return RpcResult(id, {{"tools", list}});
  }
  if (method == "tools/call") {
    if (!params.is_object() || !params.contains("name") || !params["name"].is_string())
      return RpcError(200, id, -32602, "params.name (the tool) is required");
    const std::string name = params["name"];
    json args = params.value("arguments", json::object());
    if (!args.is_object()) return RpcError(200, id, -32602, "params.arguments must be an object");
    auto tools = AllowedTools(deps_->store, agent);
    if (!tools.ok()) return RpcError(200, id, -32603, tools.status().message());
    bool known =
        std::any_of(tools->begin(), tools->end(), [&](const McpTool& t) { return t.name == name; });
    if (!known) return RpcError(200, id, -32602, "Unknown tool: " + name.substr(0, 128));
    return RpcResult(id, CallTool(req, name, args));
  }
  return RpcError(200, id, -32601, "Method not found: " + method.substr(0, 64));
}

json McpEndpoint::CallTool(const HttpRequest& outer, const std::string& name,
                           const json& args) const {
  auto internal = [&](const std::string& path, const json& body) {
    HttpRequest r;
    r.method = "POST";
    r.target = path;
    r.path = path;
    r.headers = {{"Content-Type", "application/json"}};
    r.body = body.dump();
    r.peer = outer.peer;  // the same verified agent
    HttpResponse resp = table_->Dispatch(r, /*mtls=*/true);
    json j = json::parse(resp.body, nullptr, false);
    return std::make_pair(resp.status, j.is_discarded() ? json::object() : j);
  };
  auto [astatus, auth] = internal("/v1/authorize", {{"action", name}, {"params", args}});
  if (astatus == 202) {
    const std::string aid = auth.value("approval_id", "");
    json pending = {{"status", "approval_pending"},
                    {"approval_id", aid},
                    {"poll",
                     {{"method", "POST"},
                      {"path", "/v1/approvals/" + aid + "/token"},
                      {"interval_seconds", auth.value("interval", 5)}}},
                    {"expires_at", auth.value("expires_at", "")}};
    return ToolResult(false,
                      "A human approval is required before '" + name +
                          "' runs. Approval id: " + aid + ". Poll POST /v1/approvals/" + aid +
                          "/token (every " + std::to_string(auth.value("interval", 5)) +
                          " s) until it answers with a token, then POST /v1/executions with "
                          "that token and the same arguments; or call this tool again later.",
                      pending);
  }
  if (astatus != 200) {
    return ToolResult(
        true, "denied: " + auth.value("detail", auth.value("title", std::string("error"))), auth);
  }
  auto [estatus, exec] =
      internal("/v1/executions", {{"token", auth.value("token", "")}, {"params", args}});
  if (estatus != 200 || exec.contains("error")) {
    return ToolResult(true, "execution failed: " + exec.dump(), exec);
  }
  return ToolResult(false, exec.contains("result") ? exec["result"].dump() : exec.dump(), exec);
}

void RegisterMcpRoutes(RouteTable& t, const ApiDeps& deps,
                       std::vector<std::string> allowed_origins) {
  auto ep = std::make_shared<McpEndpoint>(&deps, &t, std::move(allowed_origins));
  Metrics::Global().Describe("toani_mcp_requests_total", "counter",
                             "MCP JSON-RPC requests by method");
  t.Add({.method = "POST",
         .path = "/mcp",
         .roles = {Role::kAgent},
         .summary = "MCP (Streamable HTTP, protocol 2025-11-25): JSON-RPC initialize, ping, "
                    "tools/list, tools/call",
         .request_schema = {{"type", "object"}, {"required", {"jsonrpc"}}},
         .handler = [ep](const RouteContext& c) { return ep->Handle(c); }});
}

}  // namespace toani::server
