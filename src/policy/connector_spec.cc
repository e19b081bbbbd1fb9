#include "policy/connector_spec.h"

#include <cctype>

namespace toani::policy {
namespace {

using nlohmann::json;

Status Bad(const std::string& where, const std::string& what) {
  return Status::InvalidArgument(where + ": " + what);
}

StatusOr<std::string> Str(const json& o, const char* key, const std::string& where, bool required,
                          size_t max = 4096) {
  if (!o.contains(key)) {
    if (required) return Bad(where + "." + key, "required");
    return std::string();
  }
  if (!o[key].is_string()) return Bad(where + "." + key, "must be a string");
  std::string s = o[key];
  if (s.size() > max) return Bad(where + "." + key, "too long");
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return Bad(where + "." + key, "control character");
  }
  return s;
}

bool IsFieldName(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (unsigned char c : s) {
    if (!std::isalnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

// scheme "https", host (lower case) and port of a literal URL; "" host on error.
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
HostPort HttpsHostPort(const std::string& url) {
  if (url.rfind("https://", 0) != 0) return {};
  std::string rest = url.substr(8);
  size_t end = rest.find_first_of("/?#");
  std::string authority = rest.substr(0, end);
  if (authority.empty() || authority.find('@') != std::string::npos ||
      authority.find('[') != std::string::npos || authority.find("{{") != std::string::npos) {
    return {};
  }
  HostPort hp{authority, 443};
  if (size_t c = authority.rfind(':'); c != std::string::npos) {
    hp.host = authority.substr(0, c);
    std::string p = authority.substr(c + 1);
    if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos)
      return {};
    int port = std::stoi(p);
    if (port < 1 || port > 65535) return {};
    hp.port = static_cast<uint16_t>(port);
  }
  for (char& ch : hp.host) {
    if (std::isupper(static_cast<unsigned char>(ch))) return {};
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '.') return {};
  }
  return hp;
}

Status CheckPointer(const std::string& p, const std::string& where) {
  if (p.empty() || p[0] != '/' || p.size() > 512) return Bad(where, "JSON pointers like \"/a/b\"");
  try {
    (void)json::json_pointer(p);
  } catch (const json::exception&) {
    return Bad(where, "not a valid JSON pointer: " + p);
  }
  return Status::Ok();
}

StatusOr<std::string> Fill(const std::string& text, const json& params) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    if (open == std::string::npos) {
      out.append(text, pos);
      break;
    }
    size_t close = text.find("}}", open + 2);
    if (close == std::string::npos) return Status::InvalidArgument("template: unclosed '{{'");
    std::string name = text.substr(open + 2, close - open - 2);
    if (!params.contains(name)) {
      return Status::InvalidArgument("template refers to missing parameter '" + name + "'");
    }
    const json& v = params[name];
    out.append(text, pos, open - pos);
    if (v.is_string()) {
      out += v.get<std::string>();
    } else if (v.is_number() || v.is_boolean()) {
      out += v.dump();
    } else {
      return Status::InvalidArgument("parameter '" + name +
                                     "' must be a string, number or boolean");
    }
    pos = close + 2;
  }
  return out;
}

Status CheckPlaceholders(const std::string& text, const std::string& where) {
  size_t pos = 0;
  while ((pos = text.find("{{", pos)) != std::string::npos) {
    size_t close = text.find("}}", pos + 2);
    if (close == std::string::npos) return Bad(where, "unclosed '{{'");
    std::string name = text.substr(pos + 2, close - pos - 2);
    if (name.empty()) return Bad(where, "empty placeholder");
    for (unsigned char c : name) {
      if (!std::isalnum(c) && c != '_') return Bad(where, "bad placeholder name '" + name + "'");
    }
    pos = close + 2;
  }
  return Status::Ok();
}

Status ParseInject(const json& a, const std::string& where, ConnectorSpec& s) {
  if (!a.contains("inject")) {
    if (s.kind == "form" || s.kind == "browser") s.inject.kind = "none";
    return Status::Ok();
  }
  const json& inj = a["inject"];
  const std::string w = where + ".inject";
  if (!inj.is_object()) return Bad(w, "must be an object");
  TOANI_ASSIGN_OR_RETURN(std::string kind, Str(inj, "kind", w, false, 16));
  s.inject.kind = kind.empty() ? "header" : kind;
  TOANI_ASSIGN_OR_RETURN(s.inject.field, Str(inj, "field", w, false, 64));
  if (!s.inject.field.empty() && !IsFieldName(s.inject.field)) return Bad(w + ".field", "bad name");
  if (s.inject.kind == "header") {
    TOANI_ASSIGN_OR_RETURN(s.inject.name, Str(inj, "name", w, true, 256));
    TOANI_ASSIGN_OR_RETURN(s.inject.prefix, Str(inj, "prefix", w, false, 256));
    for (unsigned char c : s.inject.name) {
      if (!std::isalnum(c) && std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) ==
                                  std::string_view::npos) {
        return Bad(w + ".name", "not an HTTP header name");
      }
    }
    if (s.inject.name.empty()) return Bad(w + ".name", "required");
  } else if (s.inject.kind == "query") {
    TOANI_ASSIGN_OR_RETURN(s.inject.name, Str(inj, "name", w, true, 128));
    if (!IsFieldName(s.inject.name)) return Bad(w + ".name", "query names are [A-Za-z0-9_-]{1,64}");
  } else if (s.inject.kind == "basic") {
    TOANI_ASSIGN_OR_RETURN(s.inject.username, Str(inj, "username", w, false, 256));
    TOANI_ASSIGN_OR_RETURN(s.inject.username_field, Str(inj, "username_field", w, false, 64));
    if (s.inject.username.find(':') != std::string::npos) return Bad(w + ".username", "no ':'");
    if (!s.inject.username_field.empty() && !IsFieldName(s.inject.username_field)) {
      return Bad(w + ".username_field", "bad name");
    }
    s.inject.name.clear();
  } else if (s.inject.kind == "none") {
    s.inject.name.clear();
  } else {
    return Bad(w + ".kind", "header, query, basic or none");
  }
  return Status::Ok();
}

Status ParseResponse(const json& a, const std::string& where, ResponseRules& r) {
  if (!a.contains("response")) return Status::Ok();
  const json& o = a["response"];
  const std::string w = where + ".response";
  if (!o.is_object()) return Bad(w, "must be an object");
  if (o.contains("max_bytes")) {
    if (!o["max_bytes"].is_number_integer()) return Bad(w + ".max_bytes", "an integer");
    int64_t m = o["max_bytes"];
    if (m < 1 || m > (16 << 20)) return Bad(w + ".max_bytes", "must be 1..16 MiB");
    r.max_bytes = static_cast<size_t>(m);
  }
  for (const char* key : {"keep_fields", "redact_fields", "headers"}) {
    if (!o.contains(key)) continue;
    if (!o[key].is_array() || o[key].size() > 256) return Bad(w + "." + key, "an array");
    for (const json& e : o[key]) {
      if (!e.is_string()) return Bad(w + "." + key, "strings only");
      std::string v = e;
      if (std::string(key) == "headers") {
        for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (v.empty() || v.size() > 256) return Bad(w + ".headers", "header names");
        r.headers.push_back(v);
      } else {
        TOANI_RETURN_IF_ERROR(CheckPointer(v, w + "." + key));
        (std::string(key) == "keep_fields" ? r.keep_fields : r.redact_fields).push_back(v);
      }
    }
  }
  if (o.contains("screenshots")) {
    if (!o["screenshots"].is_boolean()) return Bad(w + ".screenshots", "a boolean");
    r.screenshots = o["screenshots"];
  }
  return Status::Ok();
}

}  // namespace

bool EgressCovers(const json& egress, const std::string& host, uint16_t port) {
  if (!egress.is_array()) return false;
  for (const json& e : egress) {
    if (!e.is_object() || !e.contains("host") || !e["host"].is_string()) continue;
    const int64_t p = e.value("port", int64_t{443});
    if (p != port) continue;
    const std::string h = e["host"];
    if (h.rfind("*.", 0) == 0) {
      const std::string suffix = h.substr(1);
      if (host.size() > suffix.size() && host.ends_with(suffix)) return true;
    } else if (h == host) {
      return true;
    }
  }
  return false;
}

Status ParseConnectorSpec(const json& a, const std::string& where, ConnectorSpec& s) {
  s.kind = a.value("connector", "");
  if (s.kind != "http" && s.kind != "oauth" && s.kind != "form" && s.kind != "browser" &&
      s.kind != "webhook") {
    return Bad(where + ".connector", "http, oauth, form, browser or webhook");
  }
  TOANI_RETURN_IF_ERROR(ParseInject(a, where, s));
  TOANI_RETURN_IF_ERROR(ParseResponse(a, where, s.response));
  const json egress = a.value("egress", json::array());
  if (a.contains("redirects")) {
    const json& r = a["redirects"];
    if (!r.is_object() || !r.contains("max") || !r["max"].is_number_unsigned() ||
        r["max"].get<uint64_t>() > 10) {
      return Bad(where + ".redirects", "{\"max\": 0..10}");
    }
    s.max_redirects = r["max"];
  }
  if (s.kind == "form") {
    const json f = a.value("form", json());
    const std::string w = where + ".form";
    if (!f.is_object()) return Bad(w, "required for the form connector");
    TOANI_ASSIGN_OR_RETURN(s.form_encoding, Str(f, "encoding", w, false, 16));
    if (s.form_encoding.empty()) s.form_encoding = "urlencoded";
    if (s.form_encoding != "urlencoded" && s.form_encoding != "multipart") {
      return Bad(w + ".encoding", "urlencoded or multipart");
    }
    if (!f.contains("fields") || !f["fields"].is_object() || f["fields"].empty() ||
        f["fields"].size() > 64) {
      return Bad(w + ".fields", "an object of 1..64 fields");
    }
    for (auto it = f["fields"].begin(); it != f["fields"].end(); ++it) {
      FormFieldSpec ff;
      ff.name = it.key();
      if (ff.name.empty() || ff.name.size() > 256 || ff.name.find('"') != std::string::npos) {
        return Bad(w + ".fields", "bad field name");
      }
      if (it->is_string()) {
        ff.value = *it;
        TOANI_RETURN_IF_ERROR(CheckPlaceholders(ff.value, w + ".fields." + ff.name));
      } else if (it->is_object() && it->contains("credential_field") &&
                 (*it)["credential_field"].is_string() &&
                 IsFieldName((*it)["credential_field"].get<std::string>())) {
        ff.credential_field = (*it)["credential_field"];
      } else {
        return Bad(w + ".fields." + ff.name,
                   "a string (may hold {{param}}) or {\"credential_field\": name}");
      }
      s.form_fields.push_back(std::move(ff));
    }
  }
  if (s.kind == "oauth") {
    const json o = a.value("oauth", json());
    const std::string w = where + ".oauth";
    if (!o.is_object()) return Bad(w, "required for the oauth connector");
    TOANI_ASSIGN_OR_RETURN(s.oauth_token_url, Str(o, "token_url", w, true, 2048));
    HostPort hp = HttpsHostPort(s.oauth_token_url);
    if (hp.host.empty()) return Bad(w + ".token_url", "a literal https URL");
    if (!EgressCovers(egress, hp.host, hp.port)) {
      return Bad(w + ".token_url", "its host and port must be in the egress allow-list");
    }
    TOANI_ASSIGN_OR_RETURN(s.oauth_client_auth, Str(o, "client_auth", w, false, 16));
    if (s.oauth_client_auth.empty()) s.oauth_client_auth = "basic";
    if (s.oauth_client_auth != "basic" && s.oauth_client_auth != "body") {
      return Bad(w + ".client_auth", "basic or body");
    }
    TOANI_ASSIGN_OR_RETURN(s.oauth_scope, Str(o, "scope", w, false, 1024));
    if (!a.contains("inject"))
      s.inject = InjectSpec{"header", "Authorization", "Bearer ", "", "", ""};
    if (s.inject.kind != "header") return Bad(where + ".inject", "oauth injects a header");
  }
  if (s.kind == "browser") {
    const json b = a.value("browser", json());
    const std::string w = where + ".browser";
    if (!b.is_object() || !b.contains("steps") || !b["steps"].is_array() || b["steps"].empty() ||
        b["steps"].size() > 64) {
      return Bad(w + ".steps", "1..64 steps required");
    }
    if (b.contains("step_timeout_ms")) {
      if (!b["step_timeout_ms"].is_number_unsigned() || b["step_timeout_ms"] < 1 ||
          b["step_timeout_ms"] > 120000) {
        return Bad(w + ".step_timeout_ms", "1..120000");
      }
      s.step_timeout_ms = b["step_timeout_ms"];
    }
    size_t i = 0;
    for (const json& st : b["steps"]) {
      const std::string sw = w + ".steps[" + std::to_string(i++) + "]";
      if (!st.is_object()) return Bad(sw, "an object");
      BrowserStepSpec step;
      // One key names the op: {"goto": url}, {"fill": selector, ...}, ...
      static const char* kOps[] = {"goto",    "fill",       "click",          "wait_for",
                                   "extract", "screenshot", "wait_navigation"};
      for (const char* op : kOps) {
        if (st.contains(op)) {
          if (!step.op.empty()) return Bad(sw, "exactly one of goto, fill, click, …");
          step.op = op;
        }
      }
      if (step.op.empty()) {
        return Bad(sw, "one of goto, fill, click, wait_for, wait_navigation, extract, screenshot");
      }
      const json& arg = st[step.op];
      if (step.op == "goto") {
        if (!arg.is_string()) return Bad(sw + ".goto", "a literal https URL");
        step.url = arg;
        HostPort hp = HttpsHostPort(step.url);
        if (hp.host.empty()) return Bad(sw + ".goto", "a literal https URL (no placeholders)");
        if (!EgressCovers(egress, hp.host, hp.port)) {
          return Bad(sw + ".goto", "its host and port must be in the egress allow-list");
        }
      } else if (step.op == "wait_navigation") {
        // value ignored
      } else if (step.op == "screenshot") {
        if (!arg.is_string()) return Bad(sw + ".screenshot", "a name");
        step.name = arg;
      } else {
        if (!arg.is_string() || arg.get<std::string>().empty() ||
            arg.get<std::string>().size() > 1024) {
          return Bad(sw + "." + step.op, "a CSS selector");
        }
        step.selector = arg;
      }
      if (step.op == "fill") {
        TOANI_ASSIGN_OR_RETURN(step.credential_field, Str(st, "credential_field", sw, false, 64));
        TOANI_ASSIGN_OR_RETURN(step.value, Str(st, "value", sw, false, 4096));
        if (step.credential_field.empty() == !st.contains("value")) {
          return Bad(sw, "fill takes exactly one of credential_field or value (\"{{param}}\")");
        }
        if (!step.credential_field.empty() && !IsFieldName(step.credential_field)) {
          return Bad(sw + ".credential_field", "bad name");
        }
        TOANI_RETURN_IF_ERROR(CheckPlaceholders(step.value, sw + ".value"));
      }
      if (step.op == "extract") {
        TOANI_ASSIGN_OR_RETURN(step.name, Str(st, "as", sw, true, 64));
        if (!IsFieldName(step.name)) return Bad(sw + ".as", "a name [A-Za-z0-9_-]");
      }
      s.steps.push_back(std::move(step));
    }
  }
  if (s.kind == "webhook") {
    const json wh = a.value("webhook", json());
    const std::string w = where + ".webhook";
    if (!wh.is_object()) return Bad(w, "required for the webhook connector");
    TOANI_ASSIGN_OR_RETURN(s.webhook_secret_credential, Str(wh, "secret_credential", w, true, 128));
    if (wh.contains("timeout_seconds")) {
      if (!wh["timeout_seconds"].is_number_integer() || wh["timeout_seconds"] < 10 ||
          wh["timeout_seconds"] > 7 * 86400) {
        return Bad(w + ".timeout_seconds", "10 .. 604800");
      }
      s.webhook_timeout_seconds = wh["timeout_seconds"];
    }
  }
  return Status::Ok();
}

StatusOr<json> ConnectorJobFields(const ConnectorSpec& s, const json& params, const json& egress) {
  json job = json::object();
  job["connector"] = s.kind == "webhook" ? "http" : s.kind;
  json inject = {{"kind", s.inject.kind}};
  if (!s.inject.name.empty()) inject["name"] = s.inject.name;
  if (!s.inject.prefix.empty()) inject["prefix"] = s.inject.prefix;
  if (!s.inject.field.empty()) inject["field"] = s.inject.field;
  if (!s.inject.username.empty()) inject["username"] = s.inject.username;
  if (!s.inject.username_field.empty()) inject["username_field"] = s.inject.username_field;
  job["inject"] = inject;
  json allow = json::array();
  for (const json& e : egress)
    allow.push_back({{"host", e["host"]}, {"port", e.value("port", 443)}});
  job["redirects"] = {{"max", s.max_redirects}, {"allow", allow}};
  if (s.kind == "form") {
    json fields = json::array();
    for (const FormFieldSpec& f : s.form_fields) {
      if (!f.credential_field.empty()) {
        fields.push_back({{"name", f.name}, {"credential_field", f.credential_field}});
      } else {
        TOANI_ASSIGN_OR_RETURN(std::string v, Fill(f.value, params));
        fields.push_back({{"name", f.name}, {"value", v}});
      }
    }
    job["form"] = {{"encoding", s.form_encoding}, {"fields", fields}};
  }
  if (s.kind == "oauth") {
    job["oauth"] = {{"token_url", s.oauth_token_url}, {"client_auth", s.oauth_client_auth}};
    if (!s.oauth_scope.empty()) job["oauth"]["scope"] = s.oauth_scope;
  }
  if (s.kind == "browser") {
    json steps = json::array();
    for (const BrowserStepSpec& st : s.steps) {
      json j = {{"op", st.op}};
      if (!st.url.empty()) j["url"] = st.url;
      if (!st.selector.empty()) j["selector"] = st.selector;
      if (!st.name.empty()) j["name"] = st.name;
      if (!st.credential_field.empty()) j["credential_field"] = st.credential_field;
      if (st.op == "fill" && st.credential_field.empty()) {
        TOANI_ASSIGN_OR_RETURN(std::string v, Fill(st.value, params));
        j["value"] = v;
      }
      steps.push_back(std::move(j));
    }
    job["browser"] = {{"steps", steps},
                      {"screenshots", s.response.screenshots},
                      {"step_timeout_ms", s.step_timeout_ms}};
  }
  return job;
}

StatusOr<std::string> ApplyResponseRules(const ResponseRules& rules, const std::string& body) {
  if (rules.keep_fields.empty() && rules.redact_fields.empty()) return body;
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return Status::FailedPrecondition(
        "the response is not JSON, but the policy keeps or redacts JSON fields");
  }
  try {
    if (!rules.keep_fields.empty()) {
      json kept = doc.is_array() ? json::array() : json::object();
      for (const std::string& p : rules.keep_fields) {
        json::json_pointer ptr(p);
        if (doc.contains(ptr)) kept[ptr] = doc[ptr];
      }
      doc = std::move(kept);
    }
    for (const std::string& p : rules.redact_fields) {
      json::json_pointer ptr(p);
      if (doc.contains(ptr)) doc[ptr] = "[REDACTED]";
    }
  } catch (const json::exception& e) {
    return Status::FailedPrecondition(std::string("response rules: ") + e.what());
  }
  return doc.dump();
}

}  // namespace toani::policy
