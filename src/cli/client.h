// How CLI commands reach a server: the address from TOANI_ADDR or
// DATA/server.json, the dev certificates from DATA/pki.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/http_client.h"
#include "common/status.h"

namespace toani::cli {

enum class As { kAdmin, kAgent };

struct ApiReply {
  long status = 0;
  nlohmann::json body;  // parsed JSON (problem details on errors)
};

class ApiClient {
 public:
  // data_dir: where the dev PKI lives; address: "" = read DATA/server.json.
  static StatusOr<ApiClient> Connect(const std::string& data_dir, std::string address);
  StatusOr<ApiReply> Call(As as, const std::string& method, const std::string& path,
                          const nlohmann::json& body = nullptr) const;
  const std::string& address() const { return address_; }
  // The TLS material for calls as `as`: $TOANI_CACERT, $TOANI_CLIENT_CERT and
  // $TOANI_CLIENT_KEY when set, else the dev PKI in DATA/pki.
  ClientTls TlsFor(As as) const;

 private:
  std::string address_;
  std::string data_dir_;
};

// "title: detail" of a problem+json reply, for error messages.
std::string ProblemText(const ApiReply& r);

// Default data directory: $TOANI_DATA or ./toani-data.
std::string DefaultDataDir();

// Prints "error: <message>" to stderr and returns exit code 1.
int PrintError(const std::string& message);

// The whole file's bytes, or nullopt if it cannot be read.
std::optional<std::string> ReadWholeFile(const std::string& path);

}  // namespace toani::cli
