#include "policy/template.h"

#include <cctype>
#include <functional>

namespace toani::policy {
namespace {

using nlohmann::json;

bool IsUnreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

// A parameter value as text. Objects and arrays are not allowed in text positions.
StatusOr<std::string> ParamText(const json& params, const std::string& name) {
  if (!params.is_object() || !params.contains(name)) {
    return Status::InvalidArgument("template refers to missing parameter '" + name + "'");
  }
  const json& v = params[name];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number() || v.is_boolean()) return v.dump();
  return Status::InvalidArgument("parameter '" + name +
                                 "' must be a string, number or boolean here");
}

// Replaces each {{name}} in `text` by encode(value). Literal text is kept as is.
StatusOr<std::string> Substitute(std::string_view text, const json* params,
                                 const std::function<StatusOr<std::string>(std::string)>& encode) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    if (open == std::string_view::npos) {
      out.append(text.substr(pos));
      break;
    }
    size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) return Status::InvalidArgument("template: unclosed '{{'");
    std::string name(text.substr(open + 2, close - open - 2));
    if (name.empty()) return Status::InvalidArgument("template: empty placeholder");
    for (unsigned char c : name) {
      if (!std::isalnum(c) && c != '_')
        return Status::InvalidArgument("template: bad placeholder name '" + name + "'");
    }
    out.append(text.substr(pos, open - pos));
    if (params != nullptr) {
      TOANI_ASSIGN_OR_RETURN(std::string value, ParamText(*params, name));
      TOANI_ASSIGN_OR_RETURN(std::string enc, encode(std::move(value)));
      out += enc;
    }
    pos = close + 2;
  }
  return out;
}

StatusOr<std::string> EncodeSegment(std::string v) {
  std::string e = PercentEncode(v);
  // "." and ".." are unreserved but would move the path: encode them too.
  if (e == "." || e == "..") {
    std::string dots;
    for (size_t i = 0; i < e.size(); ++i) dots += "%2E";
    return dots;
  }
  return e;
}

StatusOr<std::string> EncodeQueryValue(std::string v) { return PercentEncode(v); }

StatusOr<std::string> CheckHeaderValue(std::string v) {
  for (unsigned char c : v) {
    if (c < 0x20 || c == 0x7f)
      return Status::InvalidArgument(
          "parameter contains a control character (CR/LF/NUL) in a header");
  }
  return v;
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!std::isalnum(c) &&
        std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// Renders (params != nullptr) or only checks (params == nullptr) a template.
StatusOr<RenderedRequest> Render(const json& t, const json* params) {
  if (!t.is_object()) return Status::InvalidArgument("request: must be an object");
  RenderedRequest r;
  r.method = t.value("method", "GET");
  static const char* kMethods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
  bool method_ok = false;
  for (const char* m : kMethods) method_ok = method_ok || r.method == m;
  if (!method_ok)
    return Status::InvalidArgument("request.method must be GET, POST, PUT, PATCH or DELETE");
  if (!t.contains("url") || !t["url"].is_string())
    return Status::InvalidArgument("request.url is required");
  std::string url = t["url"];
  if (url.rfind("https://", 0) != 0)
    return Status::InvalidArgument("request.url must start with https://");
  size_t auth_end = url.find('/', 8);
  std::string authority =
      url.substr(8, auth_end == std::string::npos ? std::string::npos : auth_end - 8);
  std::string path = auth_end == std::string::npos ? "/" : url.substr(auth_end);
  // The authority is literal: no placeholders, no userinfo, no odd characters.
  size_t colon = authority.rfind(':');
  r.host = authority.substr(0, colon);
  if (colon != std::string::npos) {
    std::string port = authority.substr(colon + 1);
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) < 1 ||
        std::stoi(port) > 65535) {
      return Status::InvalidArgument("request.url has a bad port");
    }
    r.port = static_cast<uint16_t>(std::stoi(port));
  }
  if (r.host.empty()) return Status::InvalidArgument("request.url has no host");
  for (unsigned char c : r.host) {
    if (!std::isalnum(c) && c != '-' && c != '.') {
      return Status::InvalidArgument(
          "request.url host must be a literal DNS name (no placeholders, userinfo or IPv6)");
    }
    if (std::isupper(c)) return Status::InvalidArgument("request.url host must be lower case");
  }
  if (path.find_first_of("?#") != std::string::npos) {
    return Status::InvalidArgument(
        "request.url must not hold a query or fragment: use request.query");
  }
  std::string rendered_path;
  size_t start = 1;
  if (path[0] != '/') return Status::InvalidArgument("request.url path must start with '/'");
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string seg =
        path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (seg == "." || seg == "..")
      return Status::InvalidArgument("request.url path must not contain '.' or '..'");
    TOANI_ASSIGN_OR_RETURN(std::string s, Substitute(seg, params, EncodeSegment));
    rendered_path += "/" + s;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  r.url = "https://" + authority + rendered_path;
  if (t.contains("query")) {
    if (!t["query"].is_object()) return Status::InvalidArgument("request.query must be an object");
    std::string q;
    for (auto it = t["query"].begin(); it != t["query"].end(); ++it) {
      if (!it.value().is_string())
        return Status::InvalidArgument("request.query values must be strings");
      TOANI_ASSIGN_OR_RETURN(std::string v,
                             Substitute(it.value().get<std::string>(), params, EncodeQueryValue));
      if (params == nullptr) continue;
      q += (q.empty() ? "?" : "&") + PercentEncode(it.key()) + "=" + v;
    }
    r.url += q;
  }
  if (t.contains("headers")) {
    if (!t["headers"].is_object())
      return Status::InvalidArgument("request.headers must be an object");
    for (auto it = t["headers"].begin(); it != t["headers"].end(); ++it) {
      if (!IsToken(it.key()))
        return Status::InvalidArgument("request.headers: bad header name '" + it.key() + "'");
      if (!it.value().is_string())
        return Status::InvalidArgument("request.headers values must be strings");
      TOANI_ASSIGN_OR_RETURN(std::string v,
                             Substitute(it.value().get<std::string>(), params, CheckHeaderValue));
      TOANI_ASSIGN_OR_RETURN(v, CheckHeaderValue(v));
      r.headers.emplace_back(it.key(), v);
    }
  }
  if (t.contains("form")) {
    // application/x-www-form-urlencoded: every name and value percent-encoded, so a
    // value cannot add a field ('&', '=') or change the encoding ('+', '%').
    if (t.contains("body")) return Status::InvalidArgument("request: use either body or form");
    if (!t["form"].is_object()) return Status::InvalidArgument("request.form must be an object");
    std::string form;
    for (auto it = t["form"].begin(); it != t["form"].end(); ++it) {
      if (!it.value().is_string())
        return Status::InvalidArgument("request.form values must be strings");
      TOANI_ASSIGN_OR_RETURN(std::string v,
                             Substitute(it.value().get<std::string>(), params, EncodeQueryValue));
      if (params == nullptr) continue;
      form += (form.empty() ? "" : "&") + PercentEncode(it.key()) + "=" + v;
    }
    r.body = form;
    r.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  }
  if (t.contains("body")) {
    // JSON body: a string that is exactly "{{name}}" becomes the typed value;
    // other strings get text substitution. Serialising the result cannot break
    // the JSON, whatever the values hold.
    std::function<StatusOr<json>(const json&)> walk = [&](const json& node) -> StatusOr<json> {
      if (node.is_string()) {
        const std::string& s = node.get_ref<const std::string&>();
        if (s.size() > 4 && s.rfind("{{", 0) == 0 && s.find("{{", 2) == std::string::npos &&
            s.compare(s.size() - 2, 2, "}}") == 0) {
          std::string name = s.substr(2, s.size() - 4);
          if (params == nullptr) return node;
          if (!params->contains(name))
            return Status::InvalidArgument("template refers to missing parameter '" + name + "'");
          return (*params)[name];
        }
        TOANI_ASSIGN_OR_RETURN(
            std::string v,
            Substitute(s, params, [](std::string x) -> StatusOr<std::string> { return x; }));
        return json(v);
      }
      if (node.is_structured()) {
        json out = node.is_array() ? json::array() : json::object();
        for (auto it = node.begin(); it != node.end(); ++it) {
          TOANI_ASSIGN_OR_RETURN(json v, walk(it.value()));
          if (node.is_array())
            out.push_back(std::move(v));
          else
            out[it.key()] = std::move(v);
        }
        return out;
      }
      return node;
    };
    TOANI_ASSIGN_OR_RETURN(json body, walk(t["body"]));
    r.body = body.dump();
    r.headers.emplace_back("Content-Type", "application/json");
  }
  return r;
}

}  // namespace

std::string PercentEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (IsUnreserved(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Status ValidateTemplate(const nlohmann::json& tmpl) { return Render(tmpl, nullptr).status(); }

StatusOr<RenderedRequest> RenderRequest(const nlohmann::json& tmpl, const nlohmann::json& params) {
  return Render(tmpl, &params);
}

}  // namespace toani::policy
