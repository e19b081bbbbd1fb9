// The MCP endpoint (DESIGN.md §10, docs/mcp.md): agents see exactly the actions their
// policies allow as tools; a tool call authorizes and executes through the REST routes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "server/api.h"
#include "server/routes.h"

namespace toani::server {

struct McpTool {
  std::string name;  // the action name
  std::string description;
  nlohmann::json input_schema;  // the action's parameter schema
};

// The actions of the agent's tenant's current policies that name the agent, sorted.
StatusOr<std::vector<McpTool>> AllowedTools(store::Store* store, const Caller& agent);

class McpEndpoint {
 public:
  McpEndpoint(const ApiDeps* deps, const RouteTable* table, std::vector<std::string> origins)
      : deps_(deps), table_(table), allowed_origins_(std::move(origins)) {}
  HttpResponse Handle(const RouteContext& ctx) const;  // thread-safe

 private:
  nlohmann::json CallTool(const HttpRequest& outer, const std::string& name,
                          const nlohmann::json& args) const;
  const ApiDeps* deps_;
  const RouteTable* table_;
  std::vector<std::string> allowed_origins_;
};

// POST /mcp (agents). `allowed_origins`: Origin values accepted (none = only requests
// without an Origin header, i.e. not from a browser page).
void RegisterMcpRoutes(RouteTable& t, const ApiDeps& deps,
                       std::vector<std::string> allowed_origins);

}  // namespace toani::server
