// A small HTTPS/1.1 server: TLS 1.3 only, mutual TLS, keep-alive, bounded bodies.
// Built on Boost.Beast/Asio + OpenSSL; none of that leaks into this header.
//
// Every connection is served by a pool of `threads` worker threads running one
// io_context; the handler is called synchronously on a worker, so it may run
// concurrently on up to `threads` threads and must be thread-safe. A handler that blocks
// occupies a worker for that long.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace toani {

struct PeerIdentity {
  bool authenticated = false;  // a client certificate was presented and verified
  std::string uri_san;         // first URI SAN of the verified cert, e.g. spiffe://dev/agent/x
  std::string cert_sha256;     // lowercase hex SHA-256 of the client cert's DER
  std::string serial_hex;      // the client cert's serial, lowercase hex (for revocation)
  std::vector<std::string> roles;  // subject OU values of the verified cert, in order
  std::string issuer_sha256;       // lowercase hex SHA-256 of the issuing CA cert's DER
};

struct TlsServerConfig {
  std::string cert_file;  // PEM chain, leaf first
  std::string key_file;   // PEM private key
  // PEM CA bundle client certificates must chain to. Only these CAs are trusted: the
  // system trust store is never consulted. May be empty when require_client_cert=false.
  std::string client_ca_file;
  // true: a handshake without a client certificate that verifies fails.
  // false: a certificate is requested (if client_ca_file is set) but optional;
  //        peer.authenticated tells the handler whether one was presented and verified.
  bool require_client_cert = true;
  // Optional revocation check of a verified client certificate, called after every
  // handshake (true: the connection is closed) and before every request (true: 401).
  // Must be thread-safe.
  std::function<bool(const PeerIdentity&)> revoked{};
};


struct HttpRequest {
  std::string method;  // as sent, e.g. "GET"
  std::string target;  // path?query as sent
  // Path part of the target, NOT percent-decoded: decoding would let "%2F" forge a
  // path separator, so routes match on the raw form.
  std::string path;
  // Query parameters, percent-decoded ('+' decodes to a space). A duplicated name or
  // a malformed escape makes the request a 400 before the handler sees it.
  std::map<std::string, std::string> query;
  std::vector<std::pair<std::string, std::string>> headers;  // in arrival order
  std::string body;
  PeerIdentity peer;

  // Value of the first header named `name` (ASCII case-insensitive), "" if absent.
  std::string Header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Extra headers. Server, Content-Length and Connection are set by the server; a
  // header whose name or value contains CR, LF or NUL is dropped.
  std::vector<std::pair<std::string, std::string>> headers;
};

// Called once per request. Exceptions are caught and become a 500 problem response
// (their message is not sent to the client).
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpsServerOptions {
  std::string listen_host = "127.0.0.1";  // IPv4 or IPv6 literal
  uint16_t port = 0;                      // 0 = pick a free port; see HttpsServer::port()
  size_t max_body_bytes = 1 << 20;        // larger bodies get 413 without the handler
  size_t max_header_bytes = 16 * 1024;    // larger request heads get 431
  size_t threads = 4;                     // worker threads (>= 1)
  // Three deadlines of this length: the TLS handshake; an idle keep-alive connection
  // sending the first byte of its next request; and one whole request, counted from its
  // first byte until the last byte of its body is read (headers, any 100-continue and
  // the body together), so a client that trickles bytes (slow loris) is cut off when it
  // passes however steadily it sends. Writing the answer has its own deadline of the
  // same length.
  std::chrono::milliseconds read_timeout{std::chrono::seconds(30)};
  size_t max_connections = 1024;  // further connections are closed on accept
};

class HttpsServer {
 public:
  // Loads the TLS material, binds, listens and starts the worker threads.
  // Errors: InvalidArgument for a bad option or host literal, Internal for unusable
  // cert/key/CA files, Unavailable when the address cannot be bound.
  static StatusOr<std::unique_ptr<HttpsServer>> Start(const TlsServerConfig& tls,
                                                      const HttpsServerOptions& options,
                                                      HttpHandler handler);

  // The bound port (useful with options.port = 0). Thread-safe.
  uint16_t port() const;

  // Closes the listener and every connection (idle or not), waits for handlers that
  // are running to return and joins all workers. Idempotent. Must not be called from
  // inside the handler.
  void Stop();

  ~HttpsServer();  // calls Stop()
  HttpsServer(const HttpsServer&) = delete;
  HttpsServer& operator=(const HttpsServer&) = delete;

  struct Impl;

 private:
  explicit HttpsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// An RFC 9457 application/problem+json response: {type:"about:blank",title,status,detail}.
HttpResponse ProblemResponse(int status, std::string_view title, std::string_view detail);

}  // namespace toani
