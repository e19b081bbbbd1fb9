// Parameter schemas: the JSON Schema subset of docs/policy.md, compiled once when a
// policy is parsed (RE2 patterns included) so a decision never parses or compiles.
// Unknown keywords are refused at compile time: a misspelt "maximun" must not
// silently mean "no limit". Thread-safe after Compile (immutable).
#pragma once

#include <re2/re2.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace toani::policy {

class Schema {
 public:
  // `where` prefixes every error ("actions.x.params"). InvalidArgument on an unknown
  // keyword, a wrong keyword type, or a pattern that is not valid RE2.
  static StatusOr<std::shared_ptr<const Schema>> Compile(const nlohmann::json& s,
                                                         const std::string& where);
  // OK, or InvalidArgument naming the first violation ("params.amount: is above maximum 100").
  Status Validate(const nlohmann::json& v, const std::string& path) const;
  // true when `v` satisfies the schema (no message built: for deny/approval conditions).
  bool Matches(const nlohmann::json& v) const { return Check(v, nullptr, ""); }

 private:
  bool Check(const nlohmann::json& v, std::string* err, const std::string& path) const;
  std::optional<std::string> type_;
  std::vector<nlohmann::json> enum_;
  bool has_enum_ = false;
  std::optional<nlohmann::json> const_;
  std::optional<double> minimum_, maximum_, exclusive_minimum_, exclusive_maximum_;
  std::optional<size_t> min_length_, max_length_, min_items_, max_items_;
  std::unique_ptr<RE2> pattern_;
  std::string pattern_text_;
  std::vector<std::string> required_;
  std::map<std::string, std::shared_ptr<const Schema>, std::less<>> properties_;
  bool additional_properties_ = true;
  std::shared_ptr<const Schema> items_;
};

// Number of Unicode code points in valid UTF-8 (JSON Schema lengths count code points).
size_t Utf8Length(const std::string& s);

}  // namespace toani::policy
