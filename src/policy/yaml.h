// YAML input for policy documents (the CLI's `policy sign|apply|simulate|diff`): a YAML
// file is converted to the JSON document it stands for, which is then canonicalised
// and signed exactly like a JSON file (docs/policy.md "YAML input").
//
// Mapping (YAML 1.2 core schema, one document):
//   mapping -> object (keys: scalars, taken as their text); sequence -> array;
//   quoted scalar or block scalar -> string; plain scalar -> null (~, null, empty),
//   boolean (true/false), integer (decimal, 0x hex, 0o octal), number (decimal with
//   fraction/exponent), otherwise string. Anchors and aliases are expanded.
// Refused with InvalidArgument naming the line: syntax errors, several documents, any
// tag (!!binary, !!str, !custom …), duplicate keys, merge keys (<<), non-scalar keys,
// .inf/.nan, integers beyond int64. Thread-safe, pure.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "common/status.h"

namespace toani::policy {

StatusOr<nlohmann::json> YamlToJson(std::string_view yaml_text);

// True for a path ending in .yaml or .yml (case-insensitive).
bool IsYamlPath(std::string_view path);

}  // namespace toani::policy
