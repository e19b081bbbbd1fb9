// The per-execution egress proxy: a SOCKS5 (RFC 1928) server on a Unix socket that is
// bound into one sandbox. It is the sandbox's only way out, and it enforces the
// action's allow-list and the SSRF guard (docs/connector-protocol.md §7).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace toani {

struct EgressRule {
  std::string host;     // exact name, or "*.suffix" (any name ending in ".suffix")
  uint16_t port = 443;  // the only port this rule allows; default 443 (HTTPS)
};

// Test/dev only, off unless configured: names matching host_pattern (same syntax as
// EgressRule::host) connect to `address` (an IPv4 or IPv6 literal) and skip the
// global-address check. Never use it to weaken the check in production.
struct ResolverOverride {
  std::string host_pattern;
  std::string address;
};

// Answers a name lookup with IP literals ("192.0.2.1", "2001:db8::1"). The default
// resolver uses getaddrinfo; tests inject one that answers differently on each call to
// model DNS rebinding. Unavailable/NotFound: resolution failed. Must be thread-safe.
using EgressResolver = std::function<StatusOr<std::vector<std::string>>(const std::string& host)>;

struct EgressProxyOptions {
  size_t max_connections = 16;                         // concurrent relays; more are dropped
  std::chrono::milliseconds handshake_timeout{10000};  // SOCKS greeting + request
  std::chrono::milliseconds connect_timeout{10000};    // per upstream address
  std::chrono::milliseconds idle_timeout{60000};       // relay with no traffic either way
  size_t max_log_entries = 1000;                       // oldest dropped first
  // Name resolution; empty = getaddrinfo. Called exactly once per connection, and the
  // proxy connects only to the addresses that call returned and it checked.
  EgressResolver resolver;
  // Require the client's first bytes to be a TLS ClientHello whose SNI equals the
  // CONNECT host (case-insensitive); otherwise close without forwarding a byte. Default
  // true. Turn off only in tests of the SOCKS layer itself.
  bool require_tls_sni = true;
};

// True if `host` (already lower case) matches `pattern`: equal ignoring ASCII case, or
// pattern "*.suffix" and host ends with ".suffix" with at least one more label.
bool MatchesHostPattern(std::string_view pattern, std::string_view host);

class EgressProxy {
 public:
  // Listens on `unix_socket_path` (must not exist; its directory must; the socket gets
  // mode 0666 so the sandbox uid can connect) and serves until Stop(). InvalidArgument
  // for bad rules or overrides, Internal for socket errors. `options` defaults above.
  static StatusOr<std::unique_ptr<EgressProxy>> Start(std::string unix_socket_path,
                                                      std::vector<EgressRule> allow,
                                                      std::vector<ResolverOverride> overrides,
                                                      EgressProxyOptions options = {});
  // As Start(), but with no allow-list yet: the socket file exists (so it can be bound
  // into a sandbox made ahead of time, see docs/connector-protocol.md §6.5) and does not
  // listen, so every connect() to it is refused until Bind().
  static StatusOr<std::unique_ptr<EgressProxy>> StartUnbound(
      std::string unix_socket_path, std::vector<ResolverOverride> overrides,
      EgressProxyOptions options = {});
  // Fixes the allow-list of the one execution this proxy serves and starts accepting.
  // Once per proxy: a second call is FailedPrecondition (a proxy never changes hands).
  // InvalidArgument for bad rules (the proxy then stays closed).
  Status Bind(std::vector<EgressRule> allow);
  bool bound() const;
  // Stops accepting, closes every relay, joins all threads and removes the socket file.
  // Idempotent. A relay blocked in name resolution finishes it first.
  void Stop();
  ~EgressProxy();
  EgressProxy(const EgressProxy&) = delete;
  EgressProxy& operator=(const EgressProxy&) = delete;

  // Decisions so far, one line each ("allow ..."/"deny ..."/"close ..."). A decision is
  // logged before the client sees its reply. Thread-safe.
  std::vector<std::string> Log() const;
  const std::string& socket_path() const;

  struct Impl;

 private:
  explicit EgressProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace toani
