#include "policy/schema.h"

#include <cmath>

namespace toani::policy {
namespace {

using nlohmann::json;

bool TypeMatches(const std::string& type, const json& v) {
  if (type == "string") return v.is_string();
  if (type == "integer")
    return v.is_number_integer() ||
           (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "null") return v.is_null();
  return false;
}

std::string Num(double d) {
  json j = d;
  if (std::floor(d) == d && std::fabs(d) < 1e15) j = static_cast<int64_t>(d);
  return j.dump();
}

}  // namespace

size_t Utf8Length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

StatusOr<std::shared_ptr<const Schema>> Schema::Compile(const json& s, const std::string& where) {
  if (!s.is_object()) return Status::InvalidArgument(where + ": a schema must be an object");
  auto out = std::make_shared<Schema>();
  auto bad = [&](const std::string& k, const std::string& what) {
    return Status::InvalidArgument(where + "." + k + ": " + what);
  };
  for (auto it = s.begin(); it != s.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    if (k == "type") {
      static const char* kTypes[] = {"string", "integer", "number", "boolean",
                                     "object", "array",   "null"};
      bool ok = false;
      for (const char* t : kTypes) ok = ok || (v.is_string() && v == t);
      if (!ok) return bad(k, "must be one of string, integer, number, boolean, object, array, null");
      out->type_ = v.get<std::string>();
    } else if (k == "enum") {
      if (!v.is_array() || v.empty()) return bad(k, "must be a non-empty array");
      out->has_enum_ = true;
      for (const auto& e : v) out->enum_.push_back(e);
    } else if (k == "const") {
      out->const_ = v;
    } else if (k == "minimum" || k == "maximum" || k == "exclusiveMinimum" ||
               k == "exclusiveMaximum") {
      if (!v.is_number()) return bad(k, "must be a number");
      double d = v.get<double>();
      (k == "minimum"            ? out->minimum_
       : k == "maximum"          ? out->maximum_
       : k == "exclusiveMinimum" ? out->exclusive_minimum_
                                 : out->exclusive_maximum_) = d;
    } else if (k == "minLength" || k == "maxLength" || k == "minItems" || k == "maxItems") {
      if (!v.is_number_integer() || v.get<int64_t>() < 0)
        return bad(k, "must be a non-negative integer");
      size_t n = v.get<size_t>();
      (k == "minLength"   ? out->min_length_
       : k == "maxLength" ? out->max_length_
       : k == "minItems"  ? out->min_items_
                          : out->max_items_) = n;
    } else if (k == "pattern") {
      if (!v.is_string()) return bad(k, "must be a string");
      out->pattern_text_ = v.get<std::string>();
      RE2::Options o;
      o.set_log_errors(false);
      out->pattern_ = std::make_unique<RE2>(out->pattern_text_, o);
      if (!out->pattern_->ok()) return bad(k, "is not valid RE2: " + out->pattern_->error());
    } else if (k == "required") {
      if (!v.is_array()) return bad(k, "must be an array of names");
      for (const auto& r : v) {
        if (!r.is_string()) return bad(k, "must be an array of names");
        out->required_.push_back(r.get<std::string>());
      }
    } else if (k == "properties") {
      if (!v.is_object()) return bad(k, "must be an object");
      for (auto p = v.begin(); p != v.end(); ++p) {
        TOANI_ASSIGN_OR_RETURN(auto sub, Compile(p.value(), where + ".properties." + p.key()));
        out->properties_.emplace(p.key(), std::move(sub));
      }
    } else if (k == "additionalProperties") {
      if (!v.is_boolean()) return bad(k, "must be a boolean (schemas are not supported here)");
      out->additional_properties_ = v.get<bool>();
    } else if (k == "items") {
      TOANI_ASSIGN_OR_RETURN(out->items_, Compile(v, where + ".items"));
    } else if (k == "description" || k == "title" || k == "$comment" || k == "examples" ||
               k == "default") {
      // annotations: no effect on decisions
    } else {
      return bad(k, "is not a supported keyword (docs/policy.md lists them)");
    }
  }
  return std::shared_ptr<const Schema>(std::move(out));
}

Status Schema::Validate(const json& v, const std::string& path) const {
  std::string err;
  if (Check(v, &err, path)) return Status::Ok();
  return Status::InvalidArgument(err);
}

bool Schema::Check(const json& v, std::string* err, const std::string& path) const {
  auto fail = [&](const std::string& what) {
    if (err != nullptr) *err = path + ": " + what;
    return false;
  };
  if (type_ && !TypeMatches(*type_, v)) return fail("must be of type " + *type_);
  if (has_enum_) {
    bool found = false;
    for (const auto& e : enum_) found = found || e == v;
    if (!found) return fail("is not one of the allowed values");
  }
  if (const_ && *const_ != v) return fail("must equal the constant " + const_->dump());
  if (v.is_number()) {
    const double d = v.get<double>();
    if (minimum_ && d < *minimum_) return fail("is below minimum " + Num(*minimum_));
    if (maximum_ && d > *maximum_) return fail("is above maximum " + Num(*maximum_));
    if (exclusive_minimum_ && d <= *exclusive_minimum_)
      return fail("must be greater than exclusiveMinimum " + Num(*exclusive_minimum_));
    if (exclusive_maximum_ && d >= *exclusive_maximum_)
      return fail("must be less than exclusiveMaximum " + Num(*exclusive_maximum_));
  }
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (min_length_ || max_length_) {
      const size_t n = Utf8Length(s);
      if (min_length_ && n < *min_length_)
        return fail("is too short (minLength " + std::to_string(*min_length_) + ")");
      if (max_length_ && n > *max_length_)
        return fail("is too long (maxLength " + std::to_string(*max_length_) + ")");
    }
    if (pattern_ && !RE2::PartialMatch(s, *pattern_))
      return fail("does not match the pattern " + pattern_text_);
  }
  if (v.is_object()) {
    for (const auto& r : required_) {
      if (!v.contains(r)) return fail("'" + r + "' is required");
    }
    for (auto it = v.begin(); it != v.end(); ++it) {
      auto p = properties_.find(it.key());
      if (p != properties_.end()) {
        if (!p->second->Check(it.value(), err, err ? path + "." + it.key() : path)) return false;
      } else if (!additional_properties_) {
        return fail("'" + it.key() + "' is not an allowed parameter");
      }
    }
  }
  if (v.is_array()) {
    if (max_items_ && v.size() > *max_items_)
      return fail("has too many items (maxItems " + std::to_string(*max_items_) + ")");
    if (min_items_ && v.size() < *min_items_)
      return fail("has too few items (minItems " + std::to_string(*min_items_) + ")");
    if (items_) {
      for (size_t i = 0; i < v.size(); ++i) {
        if (!items_->Check(v[i], err, err ? path + "[" + std::to_string(i) + "]" : path))
          return false;
      }
    }
  }
  return true;
}

}  // namespace toani::policy
