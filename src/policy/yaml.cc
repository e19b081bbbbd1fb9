#include "policy/yaml.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <set>
#include <string>

namespace toani::policy {
namespace {

using nlohmann::json;

Status Bad(const YAML::Node& n, const std::string& why) {
  const YAML::Mark m = n.Mark();
  std::string where = m.is_null() ? ""
                                  : "line " + std::to_string(m.line + 1) + ", column " +
                                        std::to_string(m.column + 1) + ": ";
  return Status::InvalidArgument("YAML policy: " + where + why);
}

// "?" = a plain scalar (or untagged collection), "!" = a quoted/block scalar; anything
// else came from an explicit tag in the file.
bool Untagged(const YAML::Node& n) { return n.Tag().empty() || n.Tag() == "?" || n.Tag() == "!"; }

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool AllOf(std::string_view s, const char* set) {
  return !s.empty() && s.find_first_not_of(set) == std::string_view::npos;
}

// YAML 1.2 core schema resolution of a plain scalar.
StatusOr<json> PlainScalar(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return json(nullptr);
  if (s == "true" || s == "True" || s == "TRUE") return json(true);
  if (s == "false" || s == "False" || s == "FALSE") return json(false);
  const std::string l = Lower(s);
  if (l == ".inf" || l == "+.inf" || l == "-.inf" || l == ".nan")
    return Bad(n, "'" + s + "' (infinity or NaN) has no JSON form");
  std::string_view v = s;
  auto integer = [&](std::string_view digits, int base, bool neg) -> StatusOr<json> {
    int64_t out = 0;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out, base);
    if (ec == std::errc::result_out_of_range) return Bad(n, "integer '" + s + "' is out of range");
    if (ec != std::errc() || p != digits.data() + digits.size()) return json(s);
    return json(neg ? -out : out);
  };
  if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'o')) {
    std::string_view d = v.substr(2);
    if (v[1] == 'x' && AllOf(d, "0123456789abcdefABCDEF")) return integer(d, 16, false);
    if (v[1] == 'o' && AllOf(d, "01234567")) return integer(d, 8, false);
    return json(s);
  }
  bool neg = false;
  std::string_view body = v;
  if (!body.empty() && (body[0] == '-' || body[0] == '+')) {
    neg = body[0] == '-';
    body.remove_prefix(1);
  }
  if (AllOf(body, "0123456789")) return integer(body, 10, neg);
  // [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
  size_t i = 0;
  size_t int_digits = 0, frac_digits = 0;
  while (i < body.size() && std::isdigit(static_cast<unsigned char>(body[i]))) ++i, ++int_digits;
  if (i < body.size() && body[i] == '.') {
    ++i;
    while (i < body.size() && std::isdigit(static_cast<unsigned char>(body[i]))) ++i, ++frac_digits;
  }
  if (int_digits + frac_digits == 0) return json(s);
  if (i < body.size() && (body[i] == 'e' || body[i] == 'E')) {
    ++i;
    if (i < body.size() && (body[i] == '+' || body[i] == '-')) ++i;
    size_t e = 0;
    while (i < body.size() && std::isdigit(static_cast<unsigned char>(body[i]))) ++i, ++e;
    if (e == 0) return json(s);
  }
  if (i != body.size()) return json(s);
  double d = 0;
  auto [p, ec] = std::from_chars(v.data() + (v[0] == '+' ? 1 : 0), v.data() + v.size(), d);
  if (ec != std::errc() || p != v.data() + v.size() || !std::isfinite(d))
    return Bad(n, "number '" + s + "' is out of range");
  return json(d);
}

StatusOr<json> Convert(const YAML::Node& n, int depth) {
  if (depth > 64) return Bad(n, "nested more than 64 levels");
  if (!Untagged(n))
    return Bad(n, "tags are not supported (found '" + n.Tag() + "'): write plain JSON values");
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return json(nullptr);
    case YAML::NodeType::Scalar:
      if (n.Tag() == "!") return json(n.Scalar());  // quoted or block scalar: a string
      return PlainScalar(n);
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : n) {
        TOANI_ASSIGN_OR_RETURN(json v, Convert(item, depth + 1));
        out.push_back(std::move(v));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      std::set<std::string> seen;
      for (const auto& kv : n) {
        const YAML::Node& k = kv.first;
        if (!k.IsScalar()) return Bad(k, "mapping keys must be scalars");
        if (!Untagged(k)) return Bad(k, "tags are not supported (found '" + k.Tag() + "')");
        const std::string& key = k.Scalar();
        if (key == "<<" && k.Tag() == "?") return Bad(k, "merge keys (<<) are not supported");
        if (!seen.insert(key).second) return Bad(k, "duplicate key '" + key + "'");
        TOANI_ASSIGN_OR_RETURN(json v, Convert(kv.second, depth + 1));
        out[key] = std::move(v);
      }
      return out;
    }
    case YAML::NodeType::Undefined:
      break;
  }
  return Bad(n, "undefined node");
}

}  // namespace

StatusOr<json> YamlToJson(std::string_view yaml_text) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    std::string where = e.mark.is_null() ? ""
                                         : "line " + std::to_string(e.mark.line + 1) + ", column " +
                                               std::to_string(e.mark.column + 1) + ": ";
    return Status::InvalidArgument("YAML policy: " + where + e.msg);
  }
  if (docs.empty()) return Status::InvalidArgument("YAML policy: the file holds no document");
  if (docs.size() > 1)
    return Status::InvalidArgument("YAML policy: the file holds " + std::to_string(docs.size()) +
                                   " documents; one policy per file");
  try {
    TOANI_ASSIGN_OR_RETURN(json j, Convert(docs[0], 0));
    if (!j.is_object())
      return Status::InvalidArgument("YAML policy: the document must be a mapping");
    return j;
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string("YAML policy: ") + e.msg);
  }
}

bool IsYamlPath(std::string_view path) {
  std::string l = Lower(std::string(path));
  return l.ends_with(".yaml") || l.ends_with(".yml");
}

}  // namespace toani::policy
