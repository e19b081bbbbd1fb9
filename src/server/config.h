// The server's configuration file (docs/configuration.md is the reference: every key
// with its default). Format: one JSON object; unknown keys are refused so a typo never
// silently falls back to a default. Precedence: built-in defaults < the file named by
// --config or $TOANI_CONFIG < command-line flags.
#pragma once

#include <string>

#include "common/status.h"
#include "server/server.h"

namespace toani::server {

// Overlays the keys present in the JSON file at `path` onto `opts`.
// Errors: Unavailable when the file cannot be read; InvalidArgument (naming the key)
// for bad JSON, an unknown key or a value of the wrong type or range.
Status ApplyConfigFile(const std::string& path, ServerOptions* opts);

// As ApplyConfigFile, from the file's text.
Status ApplyConfigText(const std::string& text, ServerOptions* opts);

// "HOST:PORT" or "[v6]:PORT" into host and port. InvalidArgument otherwise.
Status ParseListen(const std::string& listen, std::string* host, uint16_t* port);

// The defaults as a config document (what `toani server --print-config` shows for an
// empty file); the configuration test checks docs/configuration.md against its keys.
std::string DefaultConfigJson();

// The effective configuration as a config document.
std::string ConfigJson(const ServerOptions& opts);

}  // namespace toani::server
