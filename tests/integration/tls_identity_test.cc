// Who may connect, through a real `toani server --dev`: TLS 1.2 and older, no client
// certificate, a certificate from another CA, a certificate from another tenant's CA
// claiming this tenant, and a revoked certificate are all refused; `toani pki revoke`
// applies at once, also on a keep-alive connection opened before it. Tenants do not
// see each other's data.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <csignal>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "server/pki.h"
#include "server_harness.h"

namespace toani::testing {
namespace {

using nlohmann::json;

int Shell(const std::string& cmd, std::string* out = nullptr) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  std::string s;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) s.append(buf, n);
  int st = ::pclose(p);
  if (out != nullptr) *out = s;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// A raw TLS client (OpenSSL) so the test controls the protocol version and keeps one
// connection open across requests.
class RawTls {
 public:
  RawTls(const std::string& address, const std::string& ca, const std::string& cert,
         const std::string& key, int max_version = TLS1_3_VERSION) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx_, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(ctx_, max_version);
    SSL_CTX_set_security_level(ctx_,
                               0);  // let the client offer old versions: the server must refuse
    SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    if (!cert.empty()) {
      SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str());
      SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM);
    }
    int port = std::stoi(address.substr(address.rfind(':') + 1));
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return;
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    handshake_ok_ = SSL_connect(ssl_) == 1;
    ERR_clear_error();
  }
  ~RawTls() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  bool handshake_ok() const { return handshake_ok_; }
  // One keep-alive GET; "" when the server closed or refused the connection.
  std::string Get(const std::string& path) {
    if (!handshake_ok_) return "";
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
    if (SSL_write(ssl_, req.data(), static_cast<int>(req.size())) <= 0) return "";
    std::string resp;
    char buf[8192];
    for (;;) {
      int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) break;
      resp.append(buf, static_cast<size_t>(n));
      size_t head = resp.find("\r\n\r\n");
      if (head == std::string::npos) continue;
      size_t cl = resp.find("Content-Length: ");
      if (cl == std::string::npos) cl = resp.find("content-length: ");
      if (cl == std::string::npos) break;
      size_t len = std::stoul(resp.substr(cl + 16));
      if (resp.size() >= head + 4 + len) break;
    }
    ERR_clear_error();
    return resp;
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool handshake_ok_ = false;
};

int StatusOf(const std::string& resp) {
  if (resp.rfind("HTTP/1.1 ", 0) != 0) return 0;
  return std::stoi(resp.substr(9, 3));
}

class TlsIdentityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Writing to a connection the server closed (refused or revoked) must fail, not kill us.
    ::signal(SIGPIPE, SIG_IGN);
    server_ = new ServerHarness();
    toani_ = server_->bin("toani");
    data_ = server_->data_dir();
    // A second tenant, made before the server starts so it is trusted.
    std::string out;
    ASSERT_EQ(Shell(toani_ + " --data " + data_ + " pki init --tenant acme", &out), 0) << out;
    ASSERT_TRUE(server_->Start().ok()) << ReadFileOrEmpty(server_->log_path());
    pki_ = data_ + "/pki";
    auto issue = [&](const std::string& args) {
      std::string o;
      ASSERT_EQ(Shell(toani_ + " --data " + data_ + " --format json pki issue " + args, &o), 0)
          << o;
    };
    issue("--tenant acme --name acme-admin --role credential-admin --role auditor --out " + pki_ +
          "/acme-admin");
    issue("--tenant acme --name acme-agent --kind agent --out " + pki_ + "/acme-agent");
    issue("--name victim --role operator --out " + pki_ + "/victim");
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static ServerHarness* server_;
  static std::string toani_, data_, pki_;
};
ServerHarness* TlsIdentityTest::server_ = nullptr;
std::string TlsIdentityTest::toani_, TlsIdentityTest::data_, TlsIdentityTest::pki_;

TEST_F(TlsIdentityTest, Tls13WithTheDevCertificateWorks) {
  RawTls c(server_->address(), pki_ + "/ca.pem", pki_ + "/admin.pem", pki_ + "/admin-key.pem");
  ASSERT_TRUE(c.handshake_ok());
  EXPECT_EQ(StatusOf(c.Get("/v1/sys/status")), 200);
}

TEST_F(TlsIdentityTest, Tls12AndOlderAreRefused) {
  for (int v : {TLS1_2_VERSION, TLS1_1_VERSION, TLS1_VERSION}) {
    RawTls c(server_->address(), pki_ + "/ca.pem", pki_ + "/admin.pem", pki_ + "/admin-key.pem", v);
    EXPECT_FALSE(c.handshake_ok()) << "version " << std::hex << v;
    EXPECT_EQ(c.Get("/healthz"), "");
  }
}

TEST_F(TlsIdentityTest, NoClientCertificateIsRefused) {
  RawTls c(server_->address(), pki_ + "/ca.pem", "", "");
  // TLS 1.3: the server checks the client's (empty) Certificate after the client has
  // finished; either the handshake or the first read fails, and no request is answered.
  EXPECT_EQ(StatusOf(c.Get("/healthz")), 0);
  auto r = server_->Call("nonexistent", "GET", "/healthz", "");
  EXPECT_FALSE(r.ok());
}

TEST_F(TlsIdentityTest, CertificateFromAnotherCaIsRefused) {
  const std::string other = server_->data_dir() + "/../other-ca";
  ASSERT_TRUE(InitTenantCa(other, "dev").ok());
  // Same SPIFFE id and roles as the dev admin, but an untrusted issuer.
  auto pair = IssueClientCertPem(other + "/ca.pem", other + "/ca-key.pem", "admin",
                                 "spiffe://dev/user/admin", {"operator", "auditor"});
  ASSERT_TRUE(pair.ok());
  std::ofstream(pki_ + "/forged.pem") << pair->first;
  std::ofstream(pki_ + "/forged-key.pem") << pair->second;
  RawTls c(server_->address(), pki_ + "/ca.pem", pki_ + "/forged.pem", pki_ + "/forged-key.pem");
  EXPECT_EQ(StatusOf(c.Get("/v1/sys/status")), 0);
  EXPECT_FALSE(server_->Call("forged", "GET", "/v1/sys/status", "").ok());
}

TEST_F(TlsIdentityTest, AnotherTenantsCaCannotVouchForThisTenant) {
  // acme's CA is trusted, but its name constraint permits only spiffe://acme/...
  auto pair = IssueClientCertPem(pki_ + "/tenants/acme/ca.pem", pki_ + "/tenants/acme/ca-key.pem",
                                 "admin", "spiffe://dev/user/admin", {"operator", "auditor"});
  ASSERT_TRUE(pair.ok());
  std::ofstream(pki_ + "/cross.pem") << pair->first;
  std::ofstream(pki_ + "/cross-key.pem") << pair->second;
  EXPECT_FALSE(server_->Call("cross", "GET", "/v1/sys/status", "").ok());
  // The same CA's own identities are fine.
  auto ok = server_->Call("acme-admin", "GET", "/v1/sys/status", "");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->status, 200);
}

TEST_F(TlsIdentityTest, RevocationAppliesAtOnceEvenOnAnOpenConnection) {
  RawTls before(server_->address(), pki_ + "/ca.pem", pki_ + "/victim.pem",
                pki_ + "/victim-key.pem");
  ASSERT_TRUE(before.handshake_ok());
  ASSERT_EQ(StatusOf(before.Get("/v1/sys/status")), 200);
  std::string out;
  ASSERT_EQ(Shell(toani_ + " --data " + data_ + " pki revoke --cert " + pki_ + "/victim.pem", &out),
            0)
      << out;
  // The connection opened before the revocation: every further request is refused.
  std::string resp = before.Get("/v1/sys/status");
  EXPECT_EQ(StatusOf(resp), 401) << resp;
  // New connections do not get a single answer.
  RawTls after(server_->address(), pki_ + "/ca.pem", pki_ + "/victim.pem",
               pki_ + "/victim-key.pem");
  EXPECT_EQ(StatusOf(after.Get("/v1/sys/status")), 0);
  EXPECT_FALSE(server_->Call("victim", "GET", "/v1/sys/status", "").ok());
  // Others are unaffected.
  auto admin = server_->Call("admin", "GET", "/v1/sys/status", "");
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ(admin->status, 200);
  // Revoking twice is harmless; a bad serial is a usage error (exit 2).
  EXPECT_EQ(Shell(toani_ + " --data " + data_ + " pki revoke --cert " + pki_ + "/victim.pem"), 0);
  EXPECT_EQ(Shell(toani_ + " --data " + data_ + " pki revoke --serial zz"), 2);
}

TEST_F(TlsIdentityTest, TenantsDoNotSeeEachOthersData) {
  // dev's credential-admin adds a credential (sealed to keyd by the CLI).
  const std::string secret = data_ + "/../secret.txt";
  std::ofstream(secret) << "sk_live_cross_tenant_probe";
  std::string out;
  ASSERT_EQ(Shell("TOANI_ADDR=" + server_->address() + " " + toani_ + " --data " + data_ +
                      " credential add --name dev-cred --secret-file " + secret,
                  &out),
            0)
      << out;
  long code = 0;
  auto dev = server_->CallJson("admin", "GET", "/v1/credentials", nullptr, &code);
  ASSERT_TRUE(dev.ok());
  ASSERT_EQ(code, 200);
  ASSERT_EQ((*dev)["credentials"].size(), 1u);
  const std::string dev_cred = (*dev)["credentials"][0]["id"];
  // acme's credential-admin sees none of it.
  auto acme = server_->CallJson("acme-admin", "GET", "/v1/credentials", nullptr, &code);
  ASSERT_TRUE(acme.ok());
  EXPECT_EQ(code, 200);
  EXPECT_TRUE((*acme)["credentials"].empty()) << acme->dump();
  // acme's auditor sees none of dev's audit entries (credential.added is there).
  auto entries = server_->CallJson("acme-admin", "GET", "/v1/audit/entries", nullptr, &code);
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(code, 200);
  for (const auto& e : (*entries)["entries"]) EXPECT_EQ(e.value("tenant", ""), "acme") << e.dump();
  auto dev_entries = server_->CallJson("admin", "GET", "/v1/audit/entries", nullptr, &code);
  ASSERT_TRUE(dev_entries.ok());
  EXPECT_FALSE((*dev_entries)["entries"].empty());
  // acme cannot reference dev's credential in a policy of its own, and acme's agent
  // cannot run dev's actions.
  auto apply = server_->CallJson("acme-admin", "POST", "/v1/policies",
                                 {{"policy_id", "steal"}, {"version", 1}}, &code);
  EXPECT_EQ(code, 403);  // acme-admin is not a policy admin
  auto authz =
      server_->CallJson("acme-agent", "POST", "/v1/authorize",
                        {{"action", "bank.get_balance"}, {"params", json::object()}}, &code);
  EXPECT_TRUE(code == 404 || code == 403) << code;
  EXPECT_EQ(server_
                ->CallJson("acme-agent", "POST", "/v1/executions",
                           {{"token", "v4.public.forged"}, {"params", json::object()}}, &code)
                .ok(),
            true);
  EXPECT_NE(code, 200);
  EXPECT_EQ(dev_cred.rfind("cred_", 0), 0u);
}

}  // namespace
}  // namespace toani::testing
