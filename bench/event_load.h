// An event-driven load generator for the mTLS benchmarks: one thread drives every
// keep-alive connection through epoll and non-blocking OpenSSL, as wrk or h2load do.
// Each connection sends its next request as soon as the previous answer is in (a closed
// loop), so the number of connections is the number of requests in flight.
//
// Why not a thread per connection: the load generator shares the machine's two cores
// with the server and keyd, and 16 client threads each sleeping and waking once per
// request cost CPU and context switches that the server then does not get.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "keepalive_client.h"

namespace toani::bench {

struct EventLoadResult {
  std::vector<double> latencies_ms;  // one per request answered with the wanted status
  size_t failed = 0;                 // other statuses, and connections lost or refused
  double seconds = 0;                // wall time of the timed part
};

class EventLoad {
 public:
  // `pki`: the server's dev PKI directory (ca.pem, <who>.pem, <who>-key.pem).
  EventLoad(int port, const std::string& pki, const std::string& who)
      : port_(port), ctx_(NewBenchClientContext(pki, who)) {}
  ~EventLoad() { SSL_CTX_free(ctx_); }
  EventLoad(const EventLoad&) = delete;
  EventLoad& operator=(const EventLoad&) = delete;

  // Opens `conns` connections (TLS handshakes done before the clock starts), then sends
  // `raw` (one whole HTTP/1.1 request) over each in a closed loop for `seconds`.
  EventLoadResult Run(int conns, int seconds, const std::string& raw, int want_status) {
    EventLoadResult out;
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    std::vector<std::unique_ptr<Conn>> cs;
    for (int i = 0; i < conns; ++i) {
      auto c = std::make_unique<Conn>();
      if (!Open(c.get())) {
        ++out.failed;
        continue;
      }
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.ptr = c.get();
      ::epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
      cs.push_back(std::move(c));
    }
    const auto start = Clock::now();
    const auto stop = start + std::chrono::seconds(seconds);
    size_t open = 0;
    for (auto& c : cs) open += Send(c.get(), raw, &out);
    epoll_event events[64];
    while (open > 0) {
      const int n = ::epoll_wait(ep, events, 64, 100);
      const bool stopping = Clock::now() >= stop;
      for (int i = 0; i < n; ++i) {
        Conn* c = static_cast<Conn*>(events[i].data.ptr);
        if (!c->busy) continue;
        const int status = Receive(c);
        if (status < 0) continue;  // not all here yet
        c->busy = false;
        if (status == 0) {  // connection lost
          ++out.failed;
          --open;
          continue;
        }
        if (status == want_status) {
          out.latencies_ms.push_back(
              std::chrono::duration<double, std::milli>(Clock::now() - c->sent).count());
        } else {
          ++out.failed;
        }
        if (stopping || !Send(c, raw, &out)) --open;
      }
      if (stopping && n == 0) break;  // answers that never come are not waited for
    }
    out.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    for (auto& c : cs) Close(c.get());
    ::close(ep);
    return out;
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Conn {
    int fd = -1;
    SSL* ssl = nullptr;
    std::string in;
    Clock::time_point sent;
    bool busy = false;  // a request is out and its answer not yet complete
  };

  bool Open(Conn* c) {
    c->fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return false;
    int one = 1;
    ::setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port_));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(c->fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return false;
    c->ssl = SSL_new(ctx_);
    SSL_set_fd(c->ssl, c->fd);
    if (SSL_connect(c->ssl) != 1) return false;  // blocking handshake, before timing
    ::fcntl(c->fd, F_SETFL, ::fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    return true;
  }

  static void Close(Conn* c) {
    if (c->ssl != nullptr) SSL_free(c->ssl);
    if (c->fd >= 0) ::close(c->fd);
    c->ssl = nullptr;
    c->fd = -1;
  }

  // Writes the whole request (a small one fits the socket buffer at once); false when
  // the connection is lost.
  static bool Send(Conn* c, const std::string& raw, EventLoadResult* out) {
    c->sent = Clock::now();
    size_t done = 0;
    while (done < raw.size()) {
      size_t n = 0;
      if (SSL_write_ex(c->ssl, raw.data() + done, raw.size() - done, &n) == 1) {
        done += n;
        continue;
      }
      const int err = SSL_get_error(c->ssl, 0);
      if (err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ) {
        ++out->failed;
        ERR_clear_error();
        return false;
      }
    }
    c->busy = true;
    return true;
  }

  // Reads what has arrived: the answer's status once it is complete, -1 while it is
  // not, 0 when the connection is lost. Answers must carry Content-Length.
  static int Receive(Conn* c) {
    char buf[16384];
    for (;;) {
      size_t n = 0;
      if (SSL_read_ex(c->ssl, buf, sizeof buf, &n) == 1) {
        c->in.append(buf, n);
        continue;
      }
      const int err = SSL_get_error(c->ssl, 0);
      if (err == SSL_ERROR_WANT_READ) break;
      ERR_clear_error();
      return 0;
    }
    const size_t head = c->in.find("\r\n\r\n");
    if (head == std::string::npos) return -1;
    size_t length = std::string::npos;
    for (size_t p = c->in.find("\r\n"); p < head; p = c->in.find("\r\n", p + 2)) {
      static constexpr char kName[] = "content-length:";
      bool match = p + 2 + sizeof kName - 1 <= head;
      for (size_t k = 0; k + 1 < sizeof kName && match; ++k) {
        const char ch = c->in[p + 2 + k];
        match = (ch >= 'A' && ch <= 'Z' ? ch + 32 : ch) == kName[k];
      }
      if (match) length = std::strtoul(c->in.c_str() + p + 2 + sizeof kName - 1, nullptr, 10);
    }
    if (length == std::string::npos || c->in.size() < 12) return 0;
    if (c->in.size() < head + 4 + length) return -1;
    const int status = std::atoi(c->in.c_str() + 9);
    c->in.erase(0, head + 4 + length);
    return status > 0 ? status : 0;
  }

  int port_;
  SSL_CTX* ctx_ = nullptr;
};

}  // namespace toani::bench
