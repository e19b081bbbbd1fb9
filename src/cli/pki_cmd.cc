#include "cli/pki_cmd.h"

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/exit_codes.h"
#include "common/secret.h"
#include "server/pki.h"

namespace toani::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The directory holding the tenant's ca.pem / ca-key.pem / crl.pem.
std::string CaDir(const std::string& data, const std::string& tenant) {
  std::string t = data + "/pki/tenants/" + tenant;
  if (fs::exists(t + "/ca.pem")) return t;
  // The dev CA made by `toani server --dev` is the "dev" tenant's.
  if (tenant == "dev" && fs::exists(data + "/pki/ca.pem")) return data + "/pki";
  return t;
}

int Report(bool json_output, const json& j, const std::string& text) {
  if (json_output) {
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s\n", text.c_str());
  }
  return kExitOk;
}

int Error(const Status& st) {
  std::fprintf(stderr, "error: %s\n", st.message().c_str());
  return st.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitError;
}

Status WriteSecretFile(const std::string& path, const std::string& data, mode_t mode) {
  std::string tmp = path + ".tmp";
  fs::remove(tmp);
  {
    std::ofstream f(tmp, std::ios::trunc);
    if (!f) return Status::Unavailable("cannot write " + tmp);
  }
  ::chmod(tmp.c_str(), mode);
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << data;
    if (!f) return Status::Unavailable("cannot write " + tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Status::Unavailable("cannot rename " + tmp + ": " + ec.message());
  return Status::Ok();
}

}  // namespace

void AddPkiCommands(CLI::App& app, PkiArgs* a) {
  auto* pki = app.add_subcommand("pki", "tenant PKI: CA, client certificates, revocation");
  pki->require_subcommand(1);
  a->init = pki->add_subcommand("init", "make a tenant CA in DATA/pki/tenants/<tenant>");
  a->init->add_option("--tenant", a->tenant, "tenant (SPIFFE trust domain)")->required();
  a->issue = pki->add_subcommand("issue", "issue a client certificate for an agent or a user");
  a->issue->add_option("--tenant", a->tenant, "tenant (default dev)");
  a->issue->add_option("--name", a->name, "agent or user name")->required();
  a->issue->add_option("--kind", a->kind, "agent | user")->check(CLI::IsMember({"agent", "user"}));
  a->issue->add_option("--role", a->roles,
                       "user role (repeatable): operator, credential-admin, policy-admin, "
                       "approver, auditor");
  a->issue->add_option("--out", a->out, "write OUT.pem and OUT-key.pem (0600)")->required();
  a->revoke = pki->add_subcommand("revoke", "revoke a client certificate (effective at once)");
  a->revoke->add_option("--tenant", a->tenant, "tenant (default dev)");
  auto* serial = a->revoke->add_option("--serial", a->serial, "serial number (hex)");
  auto* cert = a->revoke->add_option("--cert", a->cert, "the certificate file");
  serial->excludes(cert);
}

int RunPkiCommand(const PkiArgs& a, const std::string& data, bool json_output) {
  if (a.init != nullptr && *a.init) {
    const std::string dir = data + "/pki/tenants/" + a.tenant;
    Status st = InitTenantCa(dir, a.tenant);
    if (!st.ok()) return Error(st);
    return Report(
        json_output, {{"tenant", a.tenant}, {"ca", dir + "/ca.pem"}},
        "tenant CA for " + a.tenant + ": " + dir + "/ca.pem (restart the server to trust it)");
  }
  if (a.issue != nullptr && *a.issue) {
    const std::string dir = CaDir(data, a.tenant);
    if (a.kind == "agent" && !a.roles.empty())
      return Error(Status::InvalidArgument("an agent certificate holds the agent role only"));
    const std::string uri = "spiffe://" + a.tenant + "/" + a.kind + "/" + a.name;
    auto pair = IssueClientCertPem(dir + "/ca.pem", dir + "/ca-key.pem", a.name, uri, a.roles);
    if (!pair.ok()) return Error(pair.status());
    Status st = WriteSecretFile(a.out + "-key.pem", pair->second, 0600);
    SecureWipe(pair->second.data(), pair->second.size());
    if (!st.ok()) return Error(st);
    st = WriteSecretFile(a.out + ".pem", pair->first, 0644);
    if (!st.ok()) return Error(st);
    auto serial = CertSerialHex(a.out + ".pem");
    if (!serial.ok()) return Error(serial.status());
    return Report(json_output,
                  {{"spiffe_id", uri},
                   {"roles", a.kind == "agent" ? json::array({"agent"}) : json(a.roles)},
                   {"serial", *serial},
                   {"cert", a.out + ".pem"},
                   {"key", a.out + "-key.pem"}},
                  uri + " serial " + *serial + " -> " + a.out + ".pem, " + a.out + "-key.pem");
  }
  if (a.revoke != nullptr && *a.revoke) {
    std::string serial = a.serial;
    if (!a.cert.empty()) {
      auto s = CertSerialHex(a.cert);
      if (!s.ok()) return Error(s.status());
      serial = *s;
    }
    if (serial.empty()) return Error(Status::InvalidArgument("give --serial or --cert"));
    const std::string dir = CaDir(data, a.tenant);
    Status st = RevokeSerial(dir + "/ca.pem", dir + "/ca-key.pem", dir + "/crl.pem", serial);
    if (!st.ok()) return Error(st);
    return Report(json_output,
                  {{"tenant", a.tenant}, {"revoked", serial}, {"crl", dir + "/crl.pem"}},
                  "revoked " + serial + " (" + dir + "/crl.pem)");
  }
  return -1;
}

}  // namespace toani::cli
