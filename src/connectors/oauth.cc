#include "connectors/oauth.h"

#include <sodium.h>

#include <nlohmann/json.hpp>

#include "common/encoding.h"

namespace toani {
namespace {

using nlohmann::json;

struct Tokens {
  SecretBytes access;
  SecretBytes refresh;  // empty if the server did not rotate
};

StatusOr<Tokens> Exchange(const HttpJob& job, const CredentialSet& creds,
                          const SecretBytes& refresh_token) {
  const OauthSpec& o = *job.oauth;
  TOANI_ASSIGN_OR_RETURN(const SecretBytes* client_id, creds.Field("client_id"));
  const SecretBytes* client_secret = nullptr;
  if (auto s = creds.Field("client_secret"); s.ok()) client_secret = *s;

  WipedStrings wiped;
  std::string& body = wiped.Add("grant_type=refresh_token&refresh_token=" +
                                FormUrlEncode(refresh_token.UnsafeView()));
  if (!o.scope.empty()) body += "&scope=" + FormUrlEncode(o.scope);
  std::vector<std::string> headers = {"Content-Type: application/x-www-form-urlencoded",
                                      "Accept: application/json"};
  if (o.client_auth == "basic" && client_secret != nullptr) {
    // RFC 6749 §2.3.1: form-encode id and secret, then Basic.
    std::string& pair = wiped.Add(FormUrlEncode(client_id->UnsafeView()) + ":" +
                                  FormUrlEncode(client_secret->UnsafeView()));
    headers.push_back(wiped.Add("Authorization: Basic " + Base64Encode(AsBytes(pair))));
  } else {
    body += "&client_id=" + FormUrlEncode(client_id->UnsafeView());
    if (client_secret != nullptr) {
      body += "&client_secret=" + FormUrlEncode(client_secret->UnsafeView());
    }
  }
  Transport t = TransportOf(job);
  t.max_response_bytes = 64 << 10;
  StatusOr<HttpResponse> r = SendOnce(t, "POST", o.token_url, headers, body);
  for (std::string& h : headers) SecureWipe(h.data(), h.size());
  if (!r.ok()) return Status::Unavailable("token endpoint: " + r.status().message());
  std::string& raw = wiped.Add(std::move(r->body));
  if (r->status != 200) {
    // The error code is safe to show (RFC 6749 §5.2); the description may echo input.
    json e = json::parse(raw, nullptr, false);
    std::string code = e.is_object() && e.contains("error") && e["error"].is_string()
                           ? e["error"].get<std::string>()
                           : "unknown";
    return Status::PermissionDenied("token endpoint answered " + std::to_string(r->status) + " (" +
                                    code.substr(0, 64) + ")");
  }
  json j = json::parse(raw, nullptr, false);
  if (!j.is_object() || !j.contains("access_token") || !j["access_token"].is_string()) {
    return Status::Unavailable("token endpoint: no access_token in the response");
  }
  std::string& at = j["access_token"].get_ref<std::string&>();
  Tokens out{SecretBytes::Copy(std::string_view(at)), SecretBytes()};
  SecureWipe(at.data(), at.size());
  if (j.contains("refresh_token") && j["refresh_token"].is_string()) {
    std::string& rt = j["refresh_token"].get_ref<std::string&>();
    if (!rt.empty()) out.refresh = SecretBytes::Copy(std::string_view(rt));
    SecureWipe(rt.data(), rt.size());
  }
  if (out.access.empty() || out.access.size() > 8192) {
    return Status::Unavailable("token endpoint: access_token empty or too long");
  }
  return out;
}

// The credential JSON with refresh_token replaced, sealed to keyd's intake key.
StatusOr<std::string> Reseal(const HttpJob& job, const CredentialSet& creds,
                             const SecretBytes& refresh) {
  json doc = json::parse(creds.whole().UnsafeView(), nullptr, false);
  if (!doc.is_object()) return Status::Internal("oauth credential is not a JSON object");
  doc["refresh_token"] = std::string(refresh.UnsafeView());
  std::string plain = doc.dump();
  for (auto& [k, v] : doc.items()) {
    if (v.is_string())
      SecureWipe(v.get_ref<std::string&>().data(), v.get_ref<std::string&>().size());
  }
  Bytes sealed(plain.size() + crypto_box_SEALBYTES);
  const int rc = crypto_box_seal(sealed.data(), reinterpret_cast<const uint8_t*>(plain.data()),
                                 plain.size(), job.reseal_public_key.data());
  SecureWipe(plain.data(), plain.size());
  if (rc != 0) return Status::Internal("crypto_box_seal failed");
  return Base64UrlEncode(sealed);
}

}  // namespace

OauthOutcome PerformOauth(const HttpJob& job, CredentialSet& creds) {
  OauthOutcome out;
  StatusOr<const SecretBytes*> stored_refresh = creds.Field("refresh_token");
  if (!stored_refresh.ok()) {
    out.status = stored_refresh.status();
    return out;
  }
  SecretBytes refresh = SecretBytes::Copy((*stored_refresh)->UnsafeBytes());
  bool rotated = false;
  for (int attempt = 0; attempt < 2; ++attempt) {
    StatusOr<Tokens> tok = Exchange(job, creds, refresh);
    if (!tok.ok()) {
      out.status = tok.status();
      break;
    }
    ++out.exchanges;
    creds.AddDerived(tok->access.UnsafeView());
    if (!tok->refresh.empty()) {
      creds.AddDerived(tok->refresh.UnsafeView());
      rotated = !tok->refresh.ConstantTimeEquals(**stored_refresh);
      refresh = std::move(tok->refresh);
    }
    StatusOr<HttpResponse> resp = PerformHttp(job, creds, &tok->access);
    // The access token goes out of scope (wiped) here: never persisted or returned.
    if (!resp.ok()) {
      out.status = resp.status();
      break;
    }
    out.response = std::move(resp).value();
    if (out.response.status != 401) break;
    if (attempt == 0) SecureWipe(out.response.body.data(), out.response.body.size());
  }
  if (rotated) {
    if (job.reseal_public_key.empty()) {
      out.status = Status::FailedPrecondition(
          "the token endpoint rotated the refresh token but the job has no reseal_public_key");
      return out;
    }
    StatusOr<std::string> sealed = Reseal(job, creds, refresh);
    if (sealed.ok()) {
      out.resealed_credential = std::move(sealed).value();
    } else if (out.status.ok()) {
      out.status = sealed.status();
    }
  }
  return out;
}

}  // namespace toani
