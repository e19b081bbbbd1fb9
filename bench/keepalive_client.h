// A minimal mTLS HTTP/1.1 client that keeps one connection to the server open and sends
// its requests over it one after another, as an agent SDK does. For the benchmarks only:
// TLS 1.3, the server is verified against the dev CA, the client presents its own
// certificate; responses must carry Content-Length (the toani server's always do).
// Reconnects once when the server closed the kept-alive connection.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace toani::bench {

struct KeepAliveResponse {
  int status = 0;  // 0: transport failure
  std::string body;
};

// A TLS 1.3 client context that verifies the server against the dev CA and presents
// `who`'s certificate. `pki`: the server's dev PKI directory (ca.pem, <who>.pem,
// <who>-key.pem).
inline SSL_CTX* NewBenchClientContext(const std::string& pki, const std::string& who) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_load_verify_locations(ctx, (pki + "/ca.pem").c_str(), nullptr);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_use_certificate_chain_file(ctx, (pki + "/" + who + ".pem").c_str());
  SSL_CTX_use_PrivateKey_file(ctx, (pki + "/" + who + "-key.pem").c_str(), SSL_FILETYPE_PEM);
  return ctx;
}

class KeepAliveClient {
 public:
  KeepAliveClient(int port, const std::string& pki, const std::string& who)
      : port_(port), ctx_(NewBenchClientContext(pki, who)) {}
  ~KeepAliveClient() {
    Close();
    SSL_CTX_free(ctx_);
  }
  KeepAliveClient(const KeepAliveClient&) = delete;
  KeepAliveClient& operator=(const KeepAliveClient&) = delete;

  // Opens the connection now (so that the first timed request does not pay for it).
  bool Connect() {
    Close();
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return false;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port_));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      Close();
      return false;
    }
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    if (SSL_connect(ssl_) != 1) {
      Close();
      return false;
    }
    return true;
  }

  // One raw request (request line, headers and body) on the connection as it is, with no
  // reconnect: a load generator counts a dropped connection as a failure.
  KeepAliveResponse Send(const std::string& raw) { return Once(raw); }

  KeepAliveResponse Post(const std::string& path, const std::string& json_body) {
    const std::string raw = "POST " + path +
                            " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                            "Content-Length: " +
                            std::to_string(json_body.size()) + "\r\n\r\n" + json_body;
    KeepAliveResponse r = Once(raw);
    if (r.status == 0 && Connect()) r = Once(raw);  // the server closed an idle connection
    return r;
  }

 private:
  void Close() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    ssl_ = nullptr;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  KeepAliveResponse Once(const std::string& raw) {
    KeepAliveResponse out;
    if (ssl_ == nullptr && !Connect()) return out;
    if (SSL_write(ssl_, raw.data(), static_cast<int>(raw.size())) <= 0) {
      Close();
      return out;
    }
    std::string buf;
    char tmp[16384];
    for (;;) {
      const int n = SSL_read(ssl_, tmp, sizeof tmp);
      if (n <= 0) {
        Close();
        return out;
      }
      buf.append(tmp, static_cast<size_t>(n));
      const size_t head = buf.find("\r\n\r\n");
      if (head == std::string::npos) continue;
      std::string lower = buf.substr(0, head);
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const size_t cl = lower.find("\r\ncontent-length:");
      if (cl == std::string::npos || buf.size() < 12) {
        Close();
        return out;
      }
      const size_t len = std::strtoul(lower.c_str() + cl + 17, nullptr, 10);
      if (buf.size() < head + 4 + len) continue;
      out.status = std::atoi(buf.c_str() + 9);
      out.body = buf.substr(head + 4, len);
      if (lower.find("\r\nconnection: close") != std::string::npos) Close();
      return out;
    }
  }

  int port_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
};

}  // namespace toani::bench
