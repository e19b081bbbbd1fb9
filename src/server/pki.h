// Development PKI: a per-tenant CA plus server, admin and agent certificates, built
// with OpenSSL 3 (EC P-256 keys, SHA-256 signatures, X.509 v3 extensions). Meant for
// `toani server --dev` and tests; production deployments bring their own CA.
//
// Identities follow DESIGN.md §10: client certificates carry one SPIFFE-style URI SAN,
// spiffe://<tenant>/user/<name> or spiffe://<tenant>/agent/<name>.
//
// All functions are thread-compatible (no shared state) but EnsureDevPki must not run
// concurrently on the same directory from two processes.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace toani {

// Absolute or caller-relative paths (dir joined with fixed file names) of the dev PKI.
struct DevPkiPaths {
  std::string dir;
  std::string ca_cert, ca_key;          // ca.pem, ca-key.pem
  std::string server_cert, server_key;  // server.pem, server-key.pem
  std::string admin_cert, admin_key;    // admin.pem, admin-key.pem
  std::string agent_cert, agent_key;    // agent.pem, agent-key.pem
};

// Creates `pki_dir` (mode 0700, parents as needed) and whatever of the PKI is missing:
//   CA      CN "toani dev CA <tenant>", basicConstraints CA:TRUE (critical),
//           keyUsage keyCertSign,cRLSign (critical), valid 10 years.
//   server  CN localhost, SAN DNS:localhost IP:127.0.0.1 IP:::1, EKU serverAuth.
//   admin   CN admin, OU operator, credential-admin, policy-admin, approver, auditor,
//           SAN URI:spiffe://<tenant>/user/admin, EKU clientAuth.
//   agent   CN demo-agent, SAN URI:spiffe://<tenant>/agent/demo-agent, EKU clientAuth.
// Leaves are valid 1 year; every serial is 128 random bits. Keys are PKCS#8 PEM, mode
// 0600; certificates PEM, mode 0644. Files are written atomically (temp + rename).
//
// Idempotent: an existing CA is never replaced. A leaf is re-issued only when its cert
// or key is missing, it does not verify under the CA, or it has expired.
// Errors: InvalidArgument for a tenant that is not a SPIFFE trust-domain name
// ([a-z0-9._-]+); FailedPrecondition when only one of ca.pem / ca-key.pem exists or
// they do not match; Internal for file-system or OpenSSL failures.
StatusOr<DevPkiPaths> EnsureDevPki(const std::string& pki_dir, const std::string& tenant);

// Issues a leaf certificate signed by the CA at the given paths, for a fresh P-256 key.
// EKU is serverAuth when `server_auth`, else clientAuth. `dns_sans` must be host names
// (letters, digits, '-', '.', optional leading "*."), `ip_sans` IPv4/IPv6 literals.
// Returns {cert_pem, key_pem}; the key PEM is secret and the caller owns its handling.
// Errors: InvalidArgument for a bad name or SAN, Internal for unreadable CA files.
StatusOr<std::pair<std::string, std::string>> IssueLeafPem(const std::string& ca_cert_path,
                                                           const std::string& ca_key_path,
                                                           const std::string& common_name,
                                                           const std::vector<std::string>& dns_sans,
                                                           const std::vector<std::string>& ip_sans,
                                                           bool server_auth);

// Issues a client certificate whose only SAN is `uri_san` (e.g.
// spiffe://acme/agent/billing-bot), EKU clientAuth, valid 1 year. Returns
// {cert_pem, key_pem}. Errors as IssueLeafPem; InvalidArgument unless `uri_san`
// starts with "spiffe://". `roles` become subject OU entries (lowercase letters and '-').
StatusOr<std::pair<std::string, std::string>> IssueClientCertPem(const std::string& ca_cert_path,
                                                                 const std::string& ca_key_path,
                                                                 const std::string& common_name,
                                                                 const std::string& uri_san,
                                                                 const std::vector<std::string>& roles = {});

// `toani pki init`: a tenant CA in `dir` (ca.pem, ca-key.pem; created 0700/0600), CN
// "toani CA <tenant>", with a critical name constraint permitting only URI names of the
// tenant's trust domain, so it cannot vouch for spiffe://<other tenant>/... (the dev CA
// made by EnsureDevPki carries the same constraint). AlreadyExists when dir/ca.pem
// exists; InvalidArgument for a bad tenant name.
Status InitTenantCa(const std::string& dir, const std::string& tenant);

// The serial of the PEM certificate at `cert_path`, lowercase hex without leading zeros.
StatusOr<std::string> CertSerialHex(const std::string& cert_path);

// `toani pki revoke`: adds `serial_hex` to the CRL at `crl_path` (created when absent)
// and re-signs it with the CA (X.509 v2 CRL, SHA-256, nextUpdate in 7 days; the server
// ignores nextUpdate and re-reads the file whenever it changes). Idempotent.
Status RevokeSerial(const std::string& ca_cert_path, const std::string& ca_key_path,
                    const std::string& crl_path, const std::string& serial_hex);

// The revocation lists of the trusted CAs, as the server checks them on every handshake
// and every request. Each source is {ca.pem, crl.pem}; a missing CRL revokes nothing; a
// CRL that does not parse or whose signature does not verify under its CA revokes every
// certificate of that CA (fail closed) until it is fixed. Thread-safe; a file is re-read
// when its mtime or size changes, so `toani pki revoke` takes effect at once.
class RevocationList {
 public:
  explicit RevocationList(std::vector<std::pair<std::string, std::string>> sources);
  ~RevocationList();
  // `issuer_sha256`: hex SHA-256 of the issuing CA's DER; `serial_hex` as CertSerialHex.
  bool IsRevoked(const std::string& issuer_sha256, const std::string& serial_hex);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace toani
