#include "cli/client.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace toani::cli {

using nlohmann::json;

int PrintError(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return 1;
}

std::optional<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string DefaultDataDir() {
  const char* d = std::getenv("TOANI_DATA");
  return (d != nullptr && *d != '\0') ? d : "toani-data";
}

StatusOr<ApiClient> ApiClient::Connect(const std::string& data_dir, std::string address) {
  if (address.empty()) {
    std::ifstream f(data_dir + "/server.json");
    if (!f) {
      return Status::Unavailable(
          "no server address: set TOANI_ADDR or start `toani server --dev --data " + data_dir +
          "` (it writes " + data_dir + "/server.json)");
    }
    auto j = json::parse(f, nullptr, false);
    if (j.is_discarded() || !j.contains("address"))
      return Status::Unavailable(data_dir + "/server.json is malformed");
    address = j["address"];
  }
  while (!address.empty() && address.back() == '/') address.pop_back();
  if (address.rfind("https://", 0) != 0)
    return Status::InvalidArgument("server address must be https://HOST:PORT");
  const char* env_ca = std::getenv("TOANI_CACERT");
  std::ifstream ca(env_ca != nullptr && *env_ca != '\0' ? std::string(env_ca)
                                                        : data_dir + "/pki/ca.pem");
  if (!ca)
    return Status::FailedPrecondition("no dev certificates under " + data_dir +
                                      "/pki (is --data right?)");
  ApiClient c;
  c.address_ = address;
  c.data_dir_ = data_dir;
  return c;
}

StatusOr<ApiReply> ApiClient::Call(As as, const std::string& method, const std::string& path,
                                   const json& body) const {
  ClientTls tls = TlsFor(as);
  std::string payload = body.is_null() ? "" : body.dump();
  TOANI_ASSIGN_OR_RETURN(
      ClientResponse r,
      HttpsCall(method, address_ + path, payload, body.is_null() ? "" : "application/json", tls));
  ApiReply out;
  out.status = r.status;
  out.body = json::parse(r.body, nullptr, false);
  if (out.body.is_discarded()) out.body = json{{"raw", r.body}};
  return out;
}

ClientTls ApiClient::TlsFor(As as) const {
  // TOANI_CLIENT_CERT/KEY name the caller's own identity; without them the dev
  // certificates in DATA/pki stand in (admin for admin commands, agent for agent ones).
  auto env = [](const char* n) {
    const char* v = std::getenv(n);
    return v != nullptr ? std::string(v) : std::string();
  };
  const std::string who = as == As::kAdmin ? "admin" : "agent";
  ClientTls tls{data_dir_ + "/pki/ca.pem", data_dir_ + "/pki/" + who + ".pem",
                data_dir_ + "/pki/" + who + "-key.pem"};
  if (!env("TOANI_CACERT").empty()) tls.ca_file = env("TOANI_CACERT");
  if (!env("TOANI_CLIENT_CERT").empty()) {
    tls.cert_file = env("TOANI_CLIENT_CERT");
    tls.key_file = env("TOANI_CLIENT_KEY");
  }
  return tls;
}

std::string ProblemText(const ApiReply& r) {
  std::string s = "HTTP " + std::to_string(r.status);
  if (r.body.is_object() && r.body.contains("title")) s += " " + r.body.value("title", "");
  if (r.body.is_object() && r.body.contains("detail")) s += ": " + r.body.value("detail", "");
  return s;
}

}  // namespace toani::cli
