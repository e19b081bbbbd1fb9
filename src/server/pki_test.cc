#include "server/pki.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace toani {
namespace {

namespace fs = std::filesystem;

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "toani-pki-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

mode_t Mode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

X509Ptr ParsePem(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

X509Ptr Load(const std::string& path) { return ParsePem(ReadAll(path)); }

// All SANs of one type, as strings (IPs in dotted/colon text form).
std::vector<std::string> Sans(X509* cert, int type) {
  std::vector<std::string> out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    if (gn->type != type) continue;
    if (type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = gn->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {0};
      int family = ASN1_STRING_length(ip) == 4 ? AF_INET : AF_INET6;
      ::inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof(text));
      out.emplace_back(text);
    } else {
      const ASN1_STRING* s = gn->d.ia5;
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                       static_cast<size_t>(ASN1_STRING_length(s)));
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

// Verifies `leaf` against `ca` with the given purpose (X509_PURPOSE_SSL_SERVER/CLIENT).
bool Verifies(X509* ca, X509* leaf, int purpose) {
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), &X509_STORE_free);
  X509_STORE_add_cert(store.get(), ca);
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(),
                                                                      &X509_STORE_CTX_free);
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), purpose);
  return X509_verify_cert(ctx.get()) == 1;
}

long DaysValid(X509* cert) {
  int days = 0, secs = 0;
  EXPECT_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert), X509_get0_notAfter(cert)), 1);
  return days;
}

TEST(EnsureDevPki, CreatesFilesWithModes) {
  TempDir tmp;
  std::string dir = tmp.path() + "/nested/pki";
  auto paths = EnsureDevPki(dir, "dev");
  ASSERT_TRUE(paths.ok()) << paths.status().ToString();
  EXPECT_EQ(Mode(dir), 0700u);
  for (const std::string* key :
       {&paths->ca_key, &paths->server_key, &paths->admin_key, &paths->agent_key}) {
    EXPECT_EQ(Mode(*key), 0600u) << *key;
    EXPECT_NE(ReadAll(*key).find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
  }
  for (const std::string* cert :
       {&paths->ca_cert, &paths->server_cert, &paths->admin_cert, &paths->agent_cert}) {
    EXPECT_EQ(Mode(*cert), 0644u) << *cert;
    EXPECT_NE(Load(*cert), nullptr) << *cert;
  }
  for (const auto& entry : fs::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().extension(), ".pem") << "stray file " << entry.path();
  }
}

TEST(EnsureDevPki, SecondCallKeepsEverything) {
  TempDir tmp;
  auto first = EnsureDevPki(tmp.path(), "dev");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  std::string ca = ReadAll(first->ca_cert), ca_key = ReadAll(first->ca_key);
  std::string admin = ReadAll(first->admin_cert), server = ReadAll(first->server_cert);
  auto second = EnsureDevPki(tmp.path(), "dev");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(ReadAll(second->ca_cert), ca);
  EXPECT_EQ(ReadAll(second->ca_key), ca_key);
  EXPECT_EQ(ReadAll(second->admin_cert), admin);
  EXPECT_EQ(ReadAll(second->server_cert), server);
}

TEST(EnsureDevPki, ReissuesMissingLeafUnderSameCa) {
  TempDir tmp;
  auto first = EnsureDevPki(tmp.path(), "dev");
  ASSERT_TRUE(first.ok());
  std::string ca = ReadAll(first->ca_cert);
  std::string agent = ReadAll(first->agent_cert);
  fs::remove(first->agent_key);
  auto second = EnsureDevPki(tmp.path(), "dev");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(ReadAll(second->ca_cert), ca);
  EXPECT_NE(ReadAll(second->agent_cert), agent);
  X509Ptr ca_cert = Load(second->ca_cert), leaf = Load(second->agent_cert);
  EXPECT_TRUE(Verifies(ca_cert.get(), leaf.get(), X509_PURPOSE_SSL_CLIENT));
}

TEST(EnsureDevPki, RefusesHalfACa) {
  TempDir tmp;
  auto first = EnsureDevPki(tmp.path(), "dev");
  ASSERT_TRUE(first.ok());
  fs::remove(first->ca_key);
  auto second = EnsureDevPki(tmp.path(), "dev");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
}

TEST(EnsureDevPki, RejectsBadTenant) {
  TempDir tmp;
  for (const char* bad : {"", "Dev", "a/b", "a b", "x\n"}) {
    auto r = EnsureDevPki(tmp.path() + "/p", bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(EnsureDevPki, CertificateContents) {
  TempDir tmp;
  auto paths = EnsureDevPki(tmp.path(), "acme.example");
  ASSERT_TRUE(paths.ok()) << paths.status().ToString();
  X509Ptr ca = Load(paths->ca_cert), server = Load(paths->server_cert),
          admin = Load(paths->admin_cert), agent = Load(paths->agent_cert);
  ASSERT_TRUE(ca && server && admin && agent);

  // CA: self-signed, CA:TRUE critical, keyCertSign+cRLSign, 10 years, right CN.
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  int crit = -1;
  auto* bc = static_cast<BASIC_CONSTRAINTS*>(
      X509_get_ext_d2i(ca.get(), NID_basic_constraints, &crit, nullptr));
  ASSERT_NE(bc, nullptr);
  EXPECT_TRUE(bc->ca);
  EXPECT_EQ(crit, 1);
  BASIC_CONSTRAINTS_free(bc);
  EXPECT_EQ(X509_get_key_usage(ca.get()), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  char cn[128] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(ca.get()), NID_commonName, cn, sizeof(cn));
  EXPECT_STREQ(cn, "toani dev CA acme.example");
  EXPECT_GE(DaysValid(ca.get()), 3650);
  EXPECT_LE(DaysValid(ca.get()), 3651);

  // Serials: 128-bit, distinct.
  const ASN1_INTEGER* s1 = X509_get0_serialNumber(admin.get());
  const ASN1_INTEGER* s2 = X509_get0_serialNumber(agent.get());
  EXPECT_EQ(ASN1_STRING_length(s1), 16);
  EXPECT_NE(ASN1_INTEGER_cmp(s1, s2), 0);

  // Server: DNS localhost + both loopbacks, serverAuth only.
  EXPECT_EQ(Sans(server.get(), GEN_DNS), std::vector<std::string>{"localhost"});
  EXPECT_EQ(Sans(server.get(), GEN_IPADD), (std::vector<std::string>{"127.0.0.1", "::1"}));
  EXPECT_EQ(X509_get_extended_key_usage(server.get()), static_cast<uint32_t>(XKU_SSL_SERVER));
  EXPECT_TRUE(Verifies(ca.get(), server.get(), X509_PURPOSE_SSL_SERVER));
  EXPECT_FALSE(Verifies(ca.get(), server.get(), X509_PURPOSE_SSL_CLIENT));
  EXPECT_GE(DaysValid(server.get()), 365);
  EXPECT_LE(DaysValid(server.get()), 366);

  // Clients: exactly one URI SAN each, clientAuth only.
  EXPECT_EQ(Sans(admin.get(), GEN_URI),
            std::vector<std::string>{"spiffe://acme.example/user/admin"});
  EXPECT_EQ(Sans(agent.get(), GEN_URI),
            std::vector<std::string>{"spiffe://acme.example/agent/demo-agent"});
  for (X509* c : {admin.get(), agent.get()}) {
    EXPECT_EQ(X509_get_extended_key_usage(c), static_cast<uint32_t>(XKU_SSL_CLIENT));
    EXPECT_TRUE(Verifies(ca.get(), c, X509_PURPOSE_SSL_CLIENT));
    EXPECT_FALSE(Verifies(ca.get(), c, X509_PURPOSE_SSL_SERVER));
    EXPECT_EQ(X509_check_ca(c), 0);
  }
}

TEST(IssueLeafPem, ServerCertForMockTarget) {
  TempDir tmp;
  auto paths = EnsureDevPki(tmp.path(), "dev");
  ASSERT_TRUE(paths.ok());
  auto leaf = IssueLeafPem(paths->ca_cert, paths->ca_key, "mock.toani.test", {"mock.toani.test"},
                           {"127.0.0.1"}, true);
  ASSERT_TRUE(leaf.ok()) << leaf.status().ToString();
  EXPECT_NE(leaf->second.find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
  X509Ptr cert = ParsePem(leaf->first), ca = Load(paths->ca_cert);
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(Sans(cert.get(), GEN_DNS), std::vector<std::string>{"mock.toani.test"});
  EXPECT_EQ(X509_check_host(cert.get(), "mock.toani.test", 0, 0, nullptr), 1);
  EXPECT_TRUE(Verifies(ca.get(), cert.get(), X509_PURPOSE_SSL_SERVER));
}

TEST(IssueLeafPem, RejectsBadSans) {
  TempDir tmp;
  auto paths = EnsureDevPki(tmp.path(), "dev");
  ASSERT_TRUE(paths.ok());
  auto bad_dns = IssueLeafPem(paths->ca_cert, paths->ca_key, "x", {"evil,IP:1.2.3.4"}, {}, true);
  EXPECT_EQ(bad_dns.status().code(), StatusCode::kInvalidArgument);
  auto bad_ip = IssueLeafPem(paths->ca_cert, paths->ca_key, "x", {}, {"999.1.1.1"}, true);
  EXPECT_EQ(bad_ip.status().code(), StatusCode::kInvalidArgument);
  auto no_san = IssueLeafPem(paths->ca_cert, paths->ca_key, "x", {}, {}, true);
  EXPECT_EQ(no_san.status().code(), StatusCode::kInvalidArgument);
}

TEST(IssueClientCertPem, CarriesUriSan) {
  TempDir tmp;
  auto paths = EnsureDevPki(tmp.path(), "dev");
  ASSERT_TRUE(paths.ok());
  auto leaf =
      IssueClientCertPem(paths->ca_cert, paths->ca_key, "bot", "spiffe://dev/agent/billing-bot");
  ASSERT_TRUE(leaf.ok()) << leaf.status().ToString();
  X509Ptr cert = ParsePem(leaf->first);
  EXPECT_EQ(Sans(cert.get(), GEN_URI), std::vector<std::string>{"spiffe://dev/agent/billing-bot"});
  EXPECT_FALSE(IssueClientCertPem(paths->ca_cert, paths->ca_key, "bot", "https://x").ok());
}

}  // namespace
}  // namespace toani
