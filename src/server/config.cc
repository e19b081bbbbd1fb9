#include "server/config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace toani::server {
namespace {

using nlohmann::json;

Status Bad(const std::string& key, const std::string& why) {
  return Status::InvalidArgument("config key '" + key + "': " + why);
}

Status GetString(const json& j, const std::string& key, std::string* out) {
  if (!j.is_string()) return Bad(key, "must be a string");
  *out = j.get<std::string>();
  return Status::Ok();
}

Status GetStrings(const json& j, const std::string& key, std::vector<std::string>* out) {
  if (!j.is_array()) return Bad(key, "must be an array of strings");
  out->clear();
  for (const auto& v : j) {
    if (!v.is_string()) return Bad(key, "must be an array of strings");
    out->push_back(v.get<std::string>());
  }
  return Status::Ok();
}

template <typename T>
Status GetNumber(const json& j, const std::string& key, double lo, double hi, T* out) {
  if (!j.is_number()) return Bad(key, "must be a number");
  double v = j.get<double>();
  if (v < lo || v > hi) return Bad(key, "must be in " + json(lo).dump() + ".." + json(hi).dump());
  *out = static_cast<T>(v);
  return Status::Ok();
}

}  // namespace

Status ParseListen(const std::string& listen, std::string* host, uint16_t* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size())
    return Status::InvalidArgument("listen address must be HOST:PORT, got '" + listen + "'");
  std::string h = listen.substr(0, colon);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  std::string p = listen.substr(colon + 1);
  if (p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(p) > 65535)
    return Status::InvalidArgument("listen port must be 0..65535, got '" + p + "'");
  *host = h == "localhost" ? "127.0.0.1" : h;
  *port = static_cast<uint16_t>(std::stoi(p));
  return Status::Ok();
}

Status ApplyConfigText(const std::string& text, ServerOptions* o) {
  json doc = json::parse(text, nullptr, false, /*ignore_comments=*/true);
  if (doc.is_discarded()) return Status::InvalidArgument("config file is not valid JSON");
  if (!doc.is_object()) return Status::InvalidArgument("config file must be a JSON object");
  for (const auto& [key, v] : doc.items()) {
    Status st = Status::Ok();
    if (key == "listen") {
      std::string s;
      st = GetString(v, key, &s);
      if (st.ok()) st = ParseListen(s, &o->listen_host, &o->port);
    } else if (key == "public_listen") {
      st = GetString(v, key, &o->public_listen);
      std::string h;
      uint16_t p = 0;
      if (st.ok() && !o->public_listen.empty()) st = ParseListen(o->public_listen, &h, &p);
    } else if (key == "data_dir") {
      st = GetString(v, key, &o->data_dir);
    } else if (key == "dev") {
      if (!v.is_boolean())
        st = Bad(key, "must be true or false");
      else
        o->dev = v.get<bool>();
    } else if (key == "store") {
      st = GetString(v, key, &o->store);
      if (st.ok() && !o->store.empty() && o->store != "sqlite" &&
          o->store.rfind("sqlite:", 0) != 0 && o->store.rfind("postgres://", 0) != 0 &&
          o->store.rfind("postgresql://", 0) != 0)
        st = Bad(key, "must be sqlite, sqlite:PATH or postgres://...");
    } else if (key == "replay_store") {
      st = GetString(v, key, &o->replay_store);
      if (st.ok() && !o->replay_store.empty() && o->replay_store != "embedded" &&
          o->replay_store != "postgres" && o->replay_store.rfind("redis://", 0) != 0)
        st = Bad(key, "must be embedded, postgres or redis://HOST:PORT");
    } else if (key == "node") {
      st = GetString(v, key, &o->node_name);
    } else if (key == "tls_cert") {
      st = GetString(v, key, &o->tls_cert);
    } else if (key == "tls_key") {
      st = GetString(v, key, &o->tls_key);
    } else if (key == "client_ca") {
      st = GetString(v, key, &o->client_ca);
    } else if (key == "crl") {
      st = GetString(v, key, &o->crl);
    } else if (key == "witness_dirs") {
      st = GetStrings(v, key, &o->witness_dirs);
    } else if (key == "witness_urls") {
      st = GetStrings(v, key, &o->witness_urls);
    } else if (key == "resolver_overrides") {
      st = GetStrings(v, key, &o->resolver_overrides);
    } else if (key == "max_body_bytes") {
      st = GetNumber(v, key, 1024, 64.0 * 1024 * 1024, &o->max_body_bytes);
    } else if (key == "max_header_bytes") {
      st = GetNumber(v, key, 1024, 1024.0 * 1024, &o->max_header_bytes);
    } else if (key == "request_timeout_seconds") {
      st = GetNumber(v, key, 1, 3600, &o->request_timeout_seconds);
    } else if (key == "rate_limit_rps") {
      st = GetNumber(v, key, 0, 1e9, &o->rate_limit_rps);
    } else if (key == "rate_limit_burst") {
      st = GetNumber(v, key, 1, 1e9, &o->rate_limit_burst);
    } else if (key == "threads") {
      st = GetNumber(v, key, 1, 256, &o->threads);
    } else if (key == "max_connections") {
      st = GetNumber(v, key, 1, 1e6, &o->max_connections);
    } else if (key == "mcp_allowed_origins") {
      st = GetStrings(v, key, &o->mcp_allowed_origins);
    } else if (key == "log_level") {
      st = GetString(v, key, &o->log_level);
      if (st.ok() && o->log_level != "debug" && o->log_level != "info" && o->log_level != "warn" &&
          o->log_level != "error")
        st = Bad(key, "must be debug, info, warn or error");
    } else if (key == "approval_webhook_url") {
      st = GetString(v, key, &o->approval_webhook_url);
      if (st.ok() && !o->approval_webhook_url.empty() &&
          (o->approval_webhook_url.rfind("https://", 0) != 0 ||
           o->approval_webhook_url.size() <= 8))
        st = Bad(key, "must be an https:// URL (or \"\" for none)");
    } else if (key == "approval_webhook_secret_credential") {
      st = GetString(v, key, &o->approval_webhook_secret_credential);
      if (st.ok() && o->approval_webhook_secret_credential.rfind("whsec_", 0) == 0)
        st = Bad(key, "takes the id of a credential holding the secret, never the secret itself");
    } else if (key == "approval_webhook_ca") {
      st = GetString(v, key, &o->approval_webhook_ca);
    } else if (key == "approval_webhook_timeout_seconds") {
      st = GetNumber(v, key, 1, 60, &o->approval_webhook_timeout_seconds);
    } else {
      st = Bad(key, "unknown key (docs/configuration.md lists every key)");
    }
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

Status ApplyConfigFile(const std::string& path, ServerOptions* opts) {
  std::ifstream f(path);
  if (!f) return Status::Unavailable("cannot read config file " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  Status st = ApplyConfigText(ss.str(), opts);
  if (!st.ok()) return Status::InvalidArgument(path + ": " + st.message());
  return st;
}

std::string ConfigJson(const ServerOptions& o) {
  std::string host =
      o.listen_host.find(':') != std::string::npos ? "[" + o.listen_host + "]" : o.listen_host;
  json j = {{"listen", host + ":" + std::to_string(o.port)},
            {"public_listen", o.public_listen},
            {"data_dir", o.data_dir},
            {"dev", o.dev},
            {"store", o.store.empty() ? "sqlite" : o.store},
            {"replay_store", o.replay_store.empty() ? "embedded" : o.replay_store},
            {"node", o.node_name},
            {"tls_cert", o.tls_cert},
            {"tls_key", o.tls_key},
            {"client_ca", o.client_ca},
            {"crl", o.crl},
            {"witness_dirs", o.witness_dirs},
            {"witness_urls", o.witness_urls},
            {"resolver_overrides", o.resolver_overrides},
            {"max_body_bytes", o.max_body_bytes},
            {"max_header_bytes", o.max_header_bytes},
            {"request_timeout_seconds", o.request_timeout_seconds},
            {"rate_limit_rps", o.rate_limit_rps},
            {"rate_limit_burst", o.rate_limit_burst},
            {"threads", o.threads},
            {"max_connections", o.max_connections},
            {"mcp_allowed_origins", o.mcp_allowed_origins},
            {"log_level", o.log_level},
            {"approval_webhook_url", o.approval_webhook_url},
            {"approval_webhook_secret_credential", o.approval_webhook_secret_credential},
            {"approval_webhook_ca", o.approval_webhook_ca},
            {"approval_webhook_timeout_seconds", o.approval_webhook_timeout_seconds}};
  return j.dump(2);
}

std::string DefaultConfigJson() {
  ServerOptions o;
  o.data_dir = "./toani-data";
  return ConfigJson(o);
}

}  // namespace toani::server
