// `toani mcp-stdio`: bridges a local MCP client speaking the stdio transport
// (newline-delimited JSON-RPC on stdin/stdout) to the server's /mcp endpoint over
// mTLS, with the agent identity from TOANI_CLIENT_CERT/KEY (or the dev agent cert).
#pragma once

#include "cli/client.h"

namespace toani::cli {

// Runs until stdin closes; returns the exit code. Nothing but JSON-RPC goes to stdout;
// diagnostics go to stderr.
int RunMcpStdio(const ApiClient& client);

}  // namespace toani::cli
