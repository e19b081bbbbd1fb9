#include "server/pki.h"
#include "server/openssl_error.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <optional>
#include <string_view>

#include "common/secret.h"

namespace toani {
namespace {

constexpr long kLeafDays = 365;
constexpr long kCaDays = 3650;
constexpr long kBackdateSeconds = 300;  // tolerate small clock skew between hosts

struct BioFree {
  void operator()(BIO* b) const { BIO_free_all(b); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct ExtFree {
  void operator()(X509_EXTENSION* e) const { X509_EXTENSION_free(e); }
};
struct GenNamesFree {
  void operator()(GENERAL_NAMES* g) const { GENERAL_NAMES_free(g); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

std::string ErrnoMessage(std::string_view what, const std::string& path) {
  return std::string(what) + " " + path + ": " + std::strerror(errno);
}

// Writes `data` to `path` with `mode` via a temp file + fsync + rename, so a reader
// never sees a half-written key and a crash never leaves a truncated one.
Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode) {
  std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return Status::Internal(ErrnoMessage("create", tmp));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status st = Status::Internal(ErrnoMessage("write", tmp));
      ::close(fd);
      ::unlink(tmp.c_str());
      return st;
    }
    off += static_cast<size_t>(n);
  }
  // The umask may have narrowed the mode; make it exactly what was asked for.
  if (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0) {
    Status st = Status::Internal(ErrnoMessage("fchmod/fsync", tmp));
    ::close(fd);
    ::unlink(tmp.c_str());
    return st;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status st = Status::Internal(ErrnoMessage("rename", tmp));
    ::unlink(tmp.c_str());
    return st;
  }
  return Status::Ok();
}

bool FileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

StatusOr<X509Ptr> ReadCert(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return Status::Internal(OpenSslError("open " + path));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return Status::Internal(OpenSslError("parse certificate " + path));
  return cert;
}

StatusOr<PkeyPtr> ReadKey(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return Status::Internal(OpenSslError("open " + path));
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return Status::Internal(OpenSslError("parse private key " + path));
  return key;
}

StatusOr<std::string> CertToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return Status::Internal(OpenSslError("encode certificate"));
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

StatusOr<std::string> KeyToPem(EVP_PKEY* key) {
  // A secmem BIO wipes its buffer on free, so the only plaintext copy left is ours.
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Status::Internal(OpenSslError("encode private key"));
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

StatusOr<PkeyPtr> NewP256Key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return Status::Internal(OpenSslError("generate P-256 key"));
  return key;
}

Status SetRandomSerial(X509* cert) {
  // 128 random bits with the top bit clear: positive, and at most 16 content octets
  // (RFC 5280 allows up to 20).
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof(raw)) != 1) return Status::Internal(OpenSslError("RAND_bytes"));
  raw[0] &= 0x7f;
  raw[0] |= 0x40;  // keep the full width so serials are never short
  std::unique_ptr<BIGNUM, BnFree> bn(BN_bin2bn(raw, sizeof(raw), nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    return Status::Internal(OpenSslError("set serial"));
  }
  return Status::Ok();
}

Status AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  std::unique_ptr<X509_EXTENSION, ExtFree> ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return Status::Internal(OpenSslError(std::string("add extension ") + OBJ_nid2sn(nid)));
  }
  return Status::Ok();
}

bool IsHostName(std::string_view s) {
  if (s.starts_with("*.")) s.remove_prefix(2);
  if (s.empty() || s.size() > 253 || s.front() == '.' || s.back() == '.') return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.';
    if (!ok) return false;
  }
  return s.find("..") == std::string_view::npos;
}

bool IsTrustDomain(std::string_view s) {
  if (s.empty() || s.size() > 255) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

Status PushIa5Name(GENERAL_NAMES* names, int type, const std::string& value) {
  GENERAL_NAME* gn = GENERAL_NAME_new();
  ASN1_IA5STRING* str = ASN1_IA5STRING_new();
  if (gn == nullptr || str == nullptr ||
      ASN1_STRING_set(str, value.data(), static_cast<int>(value.size())) != 1) {
    GENERAL_NAME_free(gn);
    ASN1_IA5STRING_free(str);
    return Status::Internal(OpenSslError("build SAN"));
  }
  GENERAL_NAME_set0_value(gn, type, str);
  if (sk_GENERAL_NAME_push(names, gn) == 0) {
    GENERAL_NAME_free(gn);
    return Status::Internal(OpenSslError("build SAN"));
  }
  return Status::Ok();
}

struct LeafSpec {
  std::string common_name;
  std::vector<std::string> dns_sans, ip_sans, uri_sans;
  bool server_auth = false;
  std::vector<std::string> roles;  // subject OU entries (docs/api.md "Identities")
};

Status ValidateLeafSpec(const LeafSpec& spec) {
  if (spec.common_name.empty() || spec.common_name.size() > 64) {
    return Status::InvalidArgument("common name must be 1..64 characters");
  }
  for (const auto& d : spec.dns_sans) {
    if (!IsHostName(d)) return Status::InvalidArgument("not a host name: " + d);
  }
  for (const auto& u : spec.uri_sans) {
    if (!u.starts_with("spiffe://") || u.size() > 2048) {
      return Status::InvalidArgument("URI SAN must be a spiffe:// URI");
    }
    for (char c : u) {
      if (c <= 0x20 || c >= 0x7f) return Status::InvalidArgument("URI SAN has a bad character");
    }
  }
  for (const auto& r : spec.roles) {
    if (r.empty() || r.size() > 64 || r.find_first_not_of("abcdefghijklmnopqrstuvwxyz-") != std::string::npos)
      return Status::InvalidArgument("role names are lowercase letters and '-': " + r.substr(0, 64));
  }
  if (spec.dns_sans.empty() && spec.ip_sans.empty() && spec.uri_sans.empty()) {
    return Status::InvalidArgument("a leaf certificate needs at least one SAN");
  }
  return Status::Ok();
}

Status AddSans(X509* cert, const LeafSpec& spec) {
  std::unique_ptr<GENERAL_NAMES, GenNamesFree> names(sk_GENERAL_NAME_new_null());
  if (!names) return Status::Internal(OpenSslError("build SAN"));
  for (const auto& d : spec.dns_sans) TOANI_RETURN_IF_ERROR(PushIa5Name(names.get(), GEN_DNS, d));
  for (const auto& ip : spec.ip_sans) {
    ASN1_OCTET_STRING* raw = a2i_IPADDRESS(ip.c_str());
    if (raw == nullptr) {
      ERR_clear_error();
      return Status::InvalidArgument("not an IP address: " + ip);
    }
    GENERAL_NAME* gn = GENERAL_NAME_new();
    if (gn == nullptr) {
      ASN1_OCTET_STRING_free(raw);
      return Status::Internal(OpenSslError("build SAN"));
    }
    GENERAL_NAME_set0_value(gn, GEN_IPADD, raw);
    if (sk_GENERAL_NAME_push(names.get(), gn) == 0) {
      GENERAL_NAME_free(gn);
      return Status::Internal(OpenSslError("build SAN"));
    }
  }
  for (const auto& u : spec.uri_sans) TOANI_RETURN_IF_ERROR(PushIa5Name(names.get(), GEN_URI, u));
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return Status::Internal(OpenSslError("add subjectAltName"));
  }
  return Status::Ok();
}

// Fills version, serial, subject CN, validity and public key.
Status InitCert(X509* cert, const std::string& cn, EVP_PKEY* subject_key, long days) {
  if (X509_set_version(cert, X509_VERSION_3) != 1) return Status::Internal(OpenSslError("version"));
  TOANI_RETURN_IF_ERROR(SetRandomSerial(cert));
  X509_NAME* name = X509_get_subject_name(cert);
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.data()),
                                 static_cast<int>(cn.size()), -1, 0) != 1) {
    return Status::Internal(OpenSslError("set subject"));
  }
  if (X509_gmtime_adj(X509_getm_notBefore(cert), -kBackdateSeconds) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert), static_cast<int>(days), 0, nullptr) == nullptr ||
      X509_set_pubkey(cert, subject_key) != 1) {
    return Status::Internal(OpenSslError("set validity/public key"));
  }
  return Status::Ok();
}

StatusOr<std::pair<X509Ptr, PkeyPtr>> MakeCa(const std::string& cn,
                                             const std::string& tenant = "") {
  TOANI_ASSIGN_OR_RETURN(PkeyPtr key, NewP256Key());
  X509Ptr cert(X509_new());
  if (!cert) return Status::Internal(OpenSslError("X509_new"));
  TOANI_RETURN_IF_ERROR(InitCert(cert.get(), cn, key.get(), kCaDays));
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) != 1) {
    return Status::Internal(OpenSslError("set issuer"));
  }
  TOANI_RETURN_IF_ERROR(AddExt(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE"));
  TOANI_RETURN_IF_ERROR(
      AddExt(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  TOANI_RETURN_IF_ERROR(AddExt(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  TOANI_RETURN_IF_ERROR(
      AddExt(cert.get(), cert.get(), NID_authority_key_identifier, "keyid:always"));
  if (!tenant.empty()) {
    // The CA can only vouch for its own tenant's identities: certificate verification
    // itself refuses spiffe://<other tenant>/... under it (RFC 5280 URI constraint on
    // the host part). DNS and IP names stay unconstrained for the server certificate.
    const std::string nc = "critical,permitted;URI:" + tenant;
    TOANI_RETURN_IF_ERROR(AddExt(cert.get(), cert.get(), NID_name_constraints, nc.c_str()));
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) {
    return Status::Internal(OpenSslError("sign CA"));
  }
  return std::make_pair(std::move(cert), std::move(key));
}

StatusOr<std::pair<X509Ptr, PkeyPtr>> MakeLeaf(X509* ca_cert, EVP_PKEY* ca_key,
                                               const LeafSpec& spec) {
  TOANI_RETURN_IF_ERROR(ValidateLeafSpec(spec));
  TOANI_ASSIGN_OR_RETURN(PkeyPtr key, NewP256Key());
  X509Ptr cert(X509_new());
  if (!cert) return Status::Internal(OpenSslError("X509_new"));
  TOANI_RETURN_IF_ERROR(InitCert(cert.get(), spec.common_name, key.get(), kLeafDays));
  for (const auto& role : spec.roles) {
    if (X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "OU", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(role.data()),
                                   static_cast<int>(role.size()), -1, 0) != 1)
      return Status::Internal(OpenSslError("set subject OU"));
  }
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert)) != 1) {
    return Status::Internal(OpenSslError("set issuer"));
  }
  TOANI_RETURN_IF_ERROR(AddExt(cert.get(), ca_cert, NID_basic_constraints, "critical,CA:FALSE"));
  TOANI_RETURN_IF_ERROR(AddExt(cert.get(), ca_cert, NID_key_usage, "critical,digitalSignature"));
  TOANI_RETURN_IF_ERROR(AddExt(cert.get(), ca_cert, NID_ext_key_usage,
                               spec.server_auth ? "serverAuth" : "clientAuth"));
  TOANI_RETURN_IF_ERROR(AddExt(cert.get(), ca_cert, NID_subject_key_identifier, "hash"));
  TOANI_RETURN_IF_ERROR(AddExt(cert.get(), ca_cert, NID_authority_key_identifier, "keyid:always"));
  TOANI_RETURN_IF_ERROR(AddSans(cert.get(), spec));
  if (X509_sign(cert.get(), ca_key, EVP_sha256()) <= 0) {
    return Status::Internal(OpenSslError("sign leaf"));
  }
  return std::make_pair(std::move(cert), std::move(key));
}

// Writes key then cert, so a crash in between leaves a key without a cert, which the
// next EnsureDevPki treats as "missing" and re-issues.
Status WritePair(X509* cert, EVP_PKEY* key, const std::string& cert_path,
                 const std::string& key_path) {
  TOANI_ASSIGN_OR_RETURN(std::string key_pem, KeyToPem(key));
  Status st = WriteFileAtomic(key_path, key_pem, 0600);
  SecureWipe(key_pem.data(), key_pem.size());
  TOANI_RETURN_IF_ERROR(st);
  TOANI_ASSIGN_OR_RETURN(std::string cert_pem, CertToPem(cert));
  return WriteFileAtomic(cert_path, cert_pem, 0644);
}

// True when the leaf at the paths exists, parses, verifies under the CA and is unexpired.
bool LeafUsable(const std::string& cert_path, const std::string& key_path, EVP_PKEY* ca_pub,
                size_t want_roles) {
  if (!FileExists(cert_path) || !FileExists(key_path)) return false;
  auto cert = ReadCert(cert_path);
  auto key = ReadKey(key_path);
  bool ok = cert.ok() && key.ok() && X509_verify(cert->get(), ca_pub) == 1 &&
            X509_NAME_entry_count(X509_get_subject_name(cert->get())) ==
                static_cast<int>(1 + want_roles) &&
            X509_check_private_key(cert->get(), key->get()) == 1 &&
            X509_cmp_current_time(X509_get0_notAfter(cert->get())) > 0;
  ERR_clear_error();
  return ok;
}

Status EnsureDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::path p(dir);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  if (ec) return Status::Internal("create " + p.parent_path().string() + ": " + ec.message());
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::Internal(ErrnoMessage("mkdir", dir));
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::Internal("not a directory: " + dir);
  }
  // The directory holds private keys: keep it owner-only even if it pre-existed.
  if ((st.st_mode & 0777) != 0700 && ::chmod(dir.c_str(), 0700) != 0) {
    return Status::Internal(ErrnoMessage("chmod", dir));
  }
  return Status::Ok();
}

StatusOr<std::pair<std::string, std::string>> IssueFromFiles(const std::string& ca_cert_path,
                                                             const std::string& ca_key_path,
                                                             const LeafSpec& spec) {
  TOANI_RETURN_IF_ERROR(ValidateLeafSpec(spec));
  TOANI_ASSIGN_OR_RETURN(X509Ptr ca_cert, ReadCert(ca_cert_path));
  TOANI_ASSIGN_OR_RETURN(PkeyPtr ca_key, ReadKey(ca_key_path));
  TOANI_ASSIGN_OR_RETURN(auto leaf, MakeLeaf(ca_cert.get(), ca_key.get(), spec));
  TOANI_ASSIGN_OR_RETURN(std::string cert_pem, CertToPem(leaf.first.get()));
  TOANI_ASSIGN_OR_RETURN(std::string key_pem, KeyToPem(leaf.second.get()));
  return std::make_pair(std::move(cert_pem), std::move(key_pem));
}

}  // namespace

StatusOr<DevPkiPaths> EnsureDevPki(const std::string& pki_dir, const std::string& tenant) {
  if (!IsTrustDomain(tenant)) {
    return Status::InvalidArgument("tenant must match [a-z0-9._-]{1,255}");
  }
  if (pki_dir.empty()) return Status::InvalidArgument("empty PKI directory");
  TOANI_RETURN_IF_ERROR(EnsureDir(pki_dir));

  DevPkiPaths p;
  p.dir = pki_dir;
  auto in_dir = [&](const char* name) { return (std::filesystem::path(pki_dir) / name).string(); };
  p.ca_cert = in_dir("ca.pem");
  p.ca_key = in_dir("ca-key.pem");
  p.server_cert = in_dir("server.pem");
  p.server_key = in_dir("server-key.pem");
  p.admin_cert = in_dir("admin.pem");
  p.admin_key = in_dir("admin-key.pem");
  p.agent_cert = in_dir("agent.pem");
  p.agent_key = in_dir("agent-key.pem");

  X509Ptr ca_cert;
  PkeyPtr ca_key;
  bool have_cert = FileExists(p.ca_cert), have_key = FileExists(p.ca_key);
  if (have_cert != have_key) {
    return Status::FailedPrecondition("incomplete CA in " + pki_dir +
                                      ": ca.pem and ca-key.pem must both exist or neither");
  }
  if (have_cert) {
    TOANI_ASSIGN_OR_RETURN(ca_cert, ReadCert(p.ca_cert));
    TOANI_ASSIGN_OR_RETURN(ca_key, ReadKey(p.ca_key));
    if (X509_check_private_key(ca_cert.get(), ca_key.get()) != 1) {
      ERR_clear_error();
      return Status::FailedPrecondition("ca.pem and ca-key.pem do not match in " + pki_dir);
    }
  } else {
    TOANI_ASSIGN_OR_RETURN(auto ca, MakeCa("toani dev CA " + tenant, tenant));
    // Key first: a crash before the cert is written leaves a state we refuse above
    // rather than silently replacing a CA.
    TOANI_RETURN_IF_ERROR(WritePair(ca.first.get(), ca.second.get(), p.ca_cert, p.ca_key));
    ca_cert = std::move(ca.first);
    ca_key = std::move(ca.second);
  }
  EVP_PKEY* ca_pub = X509_get0_pubkey(ca_cert.get());
  if (ca_pub == nullptr) return Status::Internal(OpenSslError("CA public key"));

  struct Want {
    const std::string& cert;
    const std::string& key;
    LeafSpec spec;
  };
  const std::string trust = "spiffe://" + tenant;
  Want wants[] = {
      {p.server_cert, p.server_key, {"localhost", {"localhost"}, {"127.0.0.1", "::1"}, {}, true, {}}},
      {p.admin_cert,
       p.admin_key,
       {"admin",
        {},
        {},
        {trust + "/user/admin"},
        false,
        {"operator", "credential-admin", "policy-admin", "approver", "auditor"}}},
      {p.agent_cert, p.agent_key, {"demo-agent", {}, {}, {trust + "/agent/demo-agent"}, false, {}}},
  };
  for (const Want& w : wants) {
    if (LeafUsable(w.cert, w.key, ca_pub, w.spec.roles.size())) continue;
    TOANI_ASSIGN_OR_RETURN(auto leaf, MakeLeaf(ca_cert.get(), ca_key.get(), w.spec));
    TOANI_RETURN_IF_ERROR(WritePair(leaf.first.get(), leaf.second.get(), w.cert, w.key));
  }
  return p;
}

StatusOr<std::pair<std::string, std::string>> IssueLeafPem(const std::string& ca_cert_path,
                                                           const std::string& ca_key_path,
                                                           const std::string& common_name,
                                                           const std::vector<std::string>& dns_sans,
                                                           const std::vector<std::string>& ip_sans,
                                                           bool server_auth) {
  LeafSpec spec{common_name, dns_sans, ip_sans, {}, server_auth, {}};
  return IssueFromFiles(ca_cert_path, ca_key_path, spec);
}

StatusOr<std::pair<std::string, std::string>> IssueClientCertPem(const std::string& ca_cert_path,
                                                                 const std::string& ca_key_path,
                                                                 const std::string& common_name,
                                                                 const std::string& uri_san,
                                                                 const std::vector<std::string>& roles) {
  LeafSpec spec{common_name, {}, {}, {uri_san}, false, roles};
  return IssueFromFiles(ca_cert_path, ca_key_path, spec);
}

}  // namespace toani

namespace toani {
namespace {

struct CrlFree {
  void operator()(X509_CRL* c) const { X509_CRL_free(c); }
};
using CrlPtr = std::unique_ptr<X509_CRL, CrlFree>;

std::string SerialHex(const ASN1_INTEGER* serial) {
  std::string out;
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(serial, nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      out = hex;
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

StatusOr<CrlPtr> ReadCrl(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return Status::Internal(OpenSslError("open " + path));
  CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  if (!crl) return Status::Internal(OpenSslError("parse CRL " + path));
  return crl;
}

std::string CertSha256Hex(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) != 1) return "";
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

}  // namespace

Status InitTenantCa(const std::string& dir, const std::string& tenant) {
  if (!IsTrustDomain(tenant)) return Status::InvalidArgument("tenant must match [a-z0-9._-]{1,255}");
  TOANI_RETURN_IF_ERROR(EnsureDir(dir));
  const std::string cert = dir + "/ca.pem", key = dir + "/ca-key.pem";
  if (FileExists(cert) || FileExists(key))
    return Status::AlreadyExists("a CA already exists in " + dir + " (never replaced)");
  TOANI_ASSIGN_OR_RETURN(auto ca, MakeCa("toani CA " + tenant, tenant));
  return WritePair(ca.first.get(), ca.second.get(), cert, key);
}

StatusOr<std::string> CertSerialHex(const std::string& cert_path) {
  TOANI_ASSIGN_OR_RETURN(X509Ptr cert, ReadCert(cert_path));
  return SerialHex(X509_get0_serialNumber(cert.get()));
}

Status RevokeSerial(const std::string& ca_cert_path, const std::string& ca_key_path,
                    const std::string& crl_path, const std::string& serial_hex) {
  if (serial_hex.empty() || serial_hex.size() > 40 ||
      serial_hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
    return Status::InvalidArgument("serial must be 1..40 hex digits");
  TOANI_ASSIGN_OR_RETURN(X509Ptr ca, ReadCert(ca_cert_path));
  TOANI_ASSIGN_OR_RETURN(PkeyPtr ca_key, ReadKey(ca_key_path));
  BIGNUM* bn_raw = nullptr;
  if (BN_hex2bn(&bn_raw, serial_hex.c_str()) == 0) return Status::InvalidArgument("bad serial");
  std::unique_ptr<BIGNUM, BnFree> bn(bn_raw);
  CrlPtr crl;
  if (FileExists(crl_path)) {
    TOANI_ASSIGN_OR_RETURN(crl, ReadCrl(crl_path));
    if (X509_CRL_verify(crl.get(), X509_get0_pubkey(ca.get())) != 1)
      return Status::FailedPrecondition(crl_path + " is not signed by " + ca_cert_path);
  } else {
    crl.reset(X509_CRL_new());
    if (!crl || X509_CRL_set_version(crl.get(), 1) != 1 ||
        X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca.get())) != 1)
      return Status::Internal(OpenSslError("new CRL"));
  }
  std::string norm = serial_hex;
  for (char& c : norm) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (norm.size() > 1 && norm[0] == '0') norm.erase(0, 1);
  const STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
  for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
    if (SerialHex(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i))) == norm)
      return Status::Ok();  // already revoked
  }
  X509_REVOKED* entry = X509_REVOKED_new();
  ASN1_INTEGER* serial = BN_to_ASN1_INTEGER(bn.get(), nullptr);
  ASN1_TIME* now = ASN1_TIME_set(nullptr, ::time(nullptr));
  bool ok = entry != nullptr && serial != nullptr && now != nullptr &&
            X509_REVOKED_set_serialNumber(entry, serial) == 1 &&
            X509_REVOKED_set_revocationDate(entry, now) == 1 &&
            X509_CRL_add0_revoked(crl.get(), entry) == 1;
  ASN1_INTEGER_free(serial);
  if (!ok) {
    X509_REVOKED_free(entry);
    ASN1_TIME_free(now);
    return Status::Internal(OpenSslError("add CRL entry"));
  }
  ASN1_TIME* next = ASN1_TIME_adj(nullptr, ::time(nullptr), 7, 0);
  ok = X509_CRL_set1_lastUpdate(crl.get(), now) == 1 &&
       X509_CRL_set1_nextUpdate(crl.get(), next) == 1 && X509_CRL_sort(crl.get()) == 1 &&
       X509_CRL_sign(crl.get(), ca_key.get(), EVP_sha256()) > 0;
  ASN1_TIME_free(now);
  ASN1_TIME_free(next);
  if (!ok) return Status::Internal(OpenSslError("sign CRL"));
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_CRL(bio.get(), crl.get()) != 1)
    return Status::Internal(OpenSslError("encode CRL"));
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return WriteFileAtomic(crl_path, std::string_view(data, static_cast<size_t>(len)), 0644);
}

struct RevocationList::Impl {
  struct Source {
    std::string ca_path, crl_path;
    std::string issuer_sha256;
    struct timespec mtime {};
    off_t size = -1;
    bool broken = false;  // fail closed: every cert of this CA counts as revoked
    std::set<std::string> serials;
  };
  std::mutex mu;
  std::vector<Source> sources;

  void Refresh(Source& s) {
    struct stat st {};
    if (::stat(s.crl_path.c_str(), &st) != 0) {
      s.serials.clear();
      s.broken = false;
      s.size = -1;
      return;
    }
    if (st.st_mtim.tv_sec == s.mtime.tv_sec && st.st_mtim.tv_nsec == s.mtime.tv_nsec &&
        st.st_size == s.size)
      return;
    s.mtime = st.st_mtim;
    s.size = st.st_size;
    s.serials.clear();
    s.broken = true;
    auto ca = ReadCert(s.ca_path);
    auto crl = ReadCrl(s.crl_path);
    if (ca.ok() && crl.ok() && X509_CRL_verify(crl->get(), X509_get0_pubkey(ca->get())) == 1) {
      const STACK_OF(X509_REVOKED)* rev = X509_CRL_get_REVOKED(crl->get());
      for (int i = 0; i < sk_X509_REVOKED_num(rev); ++i)
        s.serials.insert(SerialHex(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(rev, i))));
      s.broken = false;
    }
    ERR_clear_error();
  }
};

RevocationList::RevocationList(std::vector<std::pair<std::string, std::string>> sources)
    : impl_(std::make_unique<Impl>()) {
  for (auto& [ca, crl] : sources) {
    Impl::Source s;
    s.ca_path = ca;
    s.crl_path = crl;
    if (auto cert = ReadCert(ca); cert.ok()) s.issuer_sha256 = CertSha256Hex(cert->get());
    ERR_clear_error();
    impl_->sources.push_back(std::move(s));
  }
}

RevocationList::~RevocationList() = default;

bool RevocationList::IsRevoked(const std::string& issuer_sha256, const std::string& serial_hex) {
  std::lock_guard<std::mutex> l(impl_->mu);
  for (auto& s : impl_->sources) {
    if (s.issuer_sha256 != issuer_sha256) continue;
    impl_->Refresh(s);
    if (s.broken || s.serials.count(serial_hex) > 0) return true;
  }
  return false;
}

}  // namespace toani
