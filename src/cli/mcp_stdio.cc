#include "cli/mcp_stdio.h"

#include <cstdio>
#include <iostream>
#include <string>

#include "cli/exit_codes.h"
#include "common/http_client.h"

namespace toani::cli {
namespace {

using nlohmann::json;

void Emit(const json& msg) {
  std::fputs((msg.dump() + "\n").c_str(), stdout);
  std::fflush(stdout);
}

void EmitError(const json& id, int code, const std::string& message) {
  Emit({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}});
}

}  // namespace

int RunMcpStdio(const ApiClient& client) {
  const ClientTls tls = client.TlsFor(As::kAgent);
  const std::string url = client.address() + "/mcp";
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty() || line == "\r") continue;
    json msg = json::parse(line, nullptr, false);
    if (msg.is_discarded()) {
      EmitError(nullptr, -32700, "parse error: not JSON");
      continue;
    }
    const bool wants_answer = msg.is_object() && msg.contains("id") && msg.contains("method");
    auto r = HttpsCall("POST", url, line, "application/json", tls, std::chrono::seconds(120));
    if (!r.ok()) {
      std::fprintf(stderr, "toani mcp-stdio: %s\n", r.status().message().c_str());
      if (wants_answer)
        EmitError(msg["id"], -32603, "toani server unreachable: " + r.status().message());
      continue;
    }
    if (r->status == 202 || r->body.empty()) continue;  // notification or response accepted
    json answer = json::parse(r->body, nullptr, false);
    if (answer.is_object() && answer.contains("jsonrpc")) {
      if (wants_answer && answer["id"].is_null()) answer["id"] = msg["id"];
      Emit(answer);
    } else if (wants_answer) {
      // Not JSON-RPC (e.g. a problem+json 401/403/429 from the route table).
      std::string detail = answer.is_object() ? answer.value("detail", r->body) : r->body;
      EmitError(msg["id"], -32603, "HTTP " + std::to_string(r->status) + ": " + detail);
    }
  }
  return kExitOk;
}

}  // namespace toani::cli
