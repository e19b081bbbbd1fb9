#include "connectors/browser.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/encoding.h"

namespace toani {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// ---- the loopback SOCKS relay: Chromium's --proxy-server takes host:port, the egress
// proxy is a Unix socket; bytes are relayed unchanged (the proxy speaks SOCKS5 itself).
class Relay {
 public:
  ~Relay() {
    stop_ = true;
    if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }
  Status Start(const std::string& unix_path) {
    unix_path_ = unix_path;
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) return Status::Unavailable("relay: socket failed");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 64) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      return Status::Unavailable(std::string("relay: cannot listen on loopback: ") +
                                 std::strerror(errno));
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Loop(); });
    return Status::Ok();
  }
  uint16_t port() const { return port_; }

 private:
  void Loop() {
    std::vector<std::thread> pumps;
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      pumps.emplace_back([this, c] { Pump(c); });
    }
    for (auto& t : pumps) t.join();
  }
  void Pump(int client) {
    const int up = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un u{};
    u.sun_family = AF_UNIX;
    std::snprintf(u.sun_path, sizeof u.sun_path, "%s", unix_path_.c_str());
    if (up < 0 || ::connect(up, reinterpret_cast<sockaddr*>(&u), sizeof u) != 0) {
      if (up >= 0) ::close(up);
      ::close(client);
      return;
    }
    char buf[16384];
    pollfd fds[2] = {{client, POLLIN, 0}, {up, POLLIN, 0}};
    while (!stop_) {
      if (::poll(fds, 2, 200) < 0) break;
      bool done = false;
      for (int i = 0; i < 2 && !done; ++i) {
        if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
        if (n <= 0) {
          done = true;
          break;
        }
        const int to = fds[1 - i].fd;
        for (ssize_t off = 0; off < n;) {
          const ssize_t w = ::write(to, buf + off, static_cast<size_t>(n - off));
          if (w <= 0) {
            done = true;
            break;
          }
          off += w;
        }
      }
      if (done) break;
    }
    ::close(client);
    ::close(up);
  }

  std::string unix_path_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// base64(SHA-256(SubjectPublicKeyInfo)) of every certificate in a PEM bundle: a
// private CA file given to the job is honoured by pinning these keys
// (--ignore-certificate-errors-spki-list), since Chromium does not read a CA file.
std::string SpkiPins(const std::string& pem_file) {
  std::string out;
  FILE* f = std::fopen(pem_file.c_str(), "r");
  if (f == nullptr) return out;
  while (X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr)) {
    unsigned char* der = nullptr;
    const int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    if (len > 0) {
      unsigned char md[32];
      unsigned int md_len = 0;
      EVP_Digest(der, static_cast<size_t>(len), md, &md_len, EVP_sha256(), nullptr);
      if (!out.empty()) out += ',';
      out += Base64Encode(std::span<const uint8_t>(md, md_len));
      OPENSSL_free(der);
    }
    X509_free(cert);
  }
  std::fclose(f);
  return out;
}

// ---- DevTools protocol over --remote-debugging-pipe: fd 3 carries commands to the
// browser, fd 4 its answers and events; each message is JSON followed by a NUL byte.
class Cdp {
 public:
  Cdp(int to_browser, int from_browser) : out_(to_browser), in_(from_browser) {}
  ~Cdp() {
    ::close(out_);
    ::close(in_);
  }

  StatusOr<json> Call(const std::string& method, json params, Clock::time_point deadline,
                      const std::string& session = "") {
    const int id = ++next_id_;
    json msg = {{"id", id}, {"method", method}, {"params", std::move(params)}};
    if (!session.empty()) msg["sessionId"] = session;
    std::string line = msg.dump();
    line.push_back('\0');
    for (size_t off = 0; off < line.size();) {
      const ssize_t w = ::write(out_, line.data() + off, line.size() - off);
      if (w <= 0) return Status::Unavailable("browser: DevTools pipe closed");
      off += static_cast<size_t>(w);
    }
    SecureWipe(line.data(), line.size());  // a fill step carries a credential field
    while (true) {
      TOANI_ASSIGN_OR_RETURN(json m, Next(deadline));
      if (m.contains("id") && m["id"] == id) {
        if (m.contains("error")) {
          return Status::FailedPrecondition("browser: " + method + ": " +
                                            m["error"].value("message", "error"));
        }
        return m.value("result", json::object());
      }
      Event(m);
    }
  }

  // Waits until the page's load event count exceeds `seen`.
  Status WaitForLoad(int seen, Clock::time_point deadline) {
    while (loads_ <= seen) {
      TOANI_ASSIGN_OR_RETURN(json m, Next(deadline));
      Event(m);
    }
    return Status::Ok();
  }
  int loads() const { return loads_; }

 private:
  void Event(const json& m) {
    if (m.value("method", "") == "Page.loadEventFired") ++loads_;
  }
  StatusOr<json> Next(Clock::time_point deadline) {
    while (true) {
      const size_t nul = buf_.find('\0');
      if (nul != std::string::npos) {
        json m = json::parse(buf_.substr(0, nul), nullptr, false);
        SecureWipe(buf_.data(), nul);
        buf_.erase(0, nul + 1);
        if (!m.is_discarded()) return m;
        continue;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return Status::Unavailable("browser: step timed out");
      pollfd p{in_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000))) <= 0) continue;
      char tmp[65536];
      const ssize_t n = ::read(in_, tmp, sizeof tmp);
      if (n <= 0) return Status::Unavailable("browser: Chromium exited");
      if (buf_.size() + static_cast<size_t>(n) > (64u << 20)) {
        return Status::PayloadTooLarge("browser: DevTools message too large");
      }
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }

  int out_, in_;
  int next_id_ = 0;
  int loads_ = 0;
  std::string buf_;
};

struct Chromium {
  pid_t pid = -1;
  ~Chromium() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      int st = 0;
      ::waitpid(pid, &st, 0);
    }
  }
};

// Runs `fn` (a JS function taking (selector, value)) against the page's document.
StatusOr<json> OnDocument(Cdp& cdp, const std::string& session, const std::string& fn,
                          const std::string& selector, const std::string& value,
                          Clock::time_point deadline) {
  TOANI_ASSIGN_OR_RETURN(
      json doc, cdp.Call("Runtime.evaluate", {{"expression", "document"}}, deadline, session));
  const std::string object_id = doc["result"].value("objectId", "");
  if (object_id.empty()) return Status::FailedPrecondition("browser: no document");
  TOANI_ASSIGN_OR_RETURN(
      json r, cdp.Call("Runtime.callFunctionOn",
                       {{"objectId", object_id},
                        {"functionDeclaration", fn},
                        {"arguments", json::array({{{"value", selector}}, {{"value", value}}})},
                        {"returnByValue", true},
                        {"awaitPromise", false}},
                       deadline, session));
  if (r.contains("exceptionDetails")) return Status::FailedPrecondition("browser: script error");
  return r["result"].value("value", json());
}

}  // namespace

BrowserOutcome RunBrowser(const HttpJob& job, const CredentialSet& creds) {
  BrowserOutcome out;
  const BrowserSpec& spec = *job.browser;
  Relay relay;
  if (Status st = relay.Start(job.proxy_socket); !st.ok()) return {st};

  int to_browser[2], from_browser[2];
  if (::pipe2(to_browser, O_CLOEXEC) != 0 || ::pipe2(from_browser, O_CLOEXEC) != 0) {
    return {Status::Unavailable("browser: pipe failed")};
  }
  std::vector<std::string> args = {
      spec.chromium_path,
      "--headless",
      "--no-sandbox",  // the bwrap sandbox is the sandbox; user namespaces are disabled in it
      "--no-zygote",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-extensions",
      "--disable-default-apps",
      "--disable-features=Translate,MediaRouter,OptimizationHints,DialMediaRouteProvider",
      "--no-first-run",
      "--no-default-browser-check",
      "--password-store=basic",
      "--user-data-dir=/tmp/chromium-profile",
      "--remote-debugging-pipe",
      "--proxy-server=socks5://127.0.0.1:" + std::to_string(relay.port()),
      "--proxy-bypass-list=<-loopback>",  // even loopback goes through the proxy
      "--window-size=1024,768",
      "about:blank"};
  if (job.ca_file) {
    const std::string pins = SpkiPins(*job.ca_file);
    if (!pins.empty()) args.push_back("--ignore-certificate-errors-spki-list=" + pins);
  }
  Chromium chromium;
  chromium.pid = ::fork();
  if (chromium.pid < 0) return {Status::Unavailable("browser: fork failed")};
  if (chromium.pid == 0) {
    // fd 3: commands in; fd 4: answers out. stdout (the protocol channel) goes to stderr.
    ::dup2(to_browser[0], 3);
    ::dup2(from_browser[1], 4);
    ::dup2(2, 1);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    char home[] = "HOME=/tmp";
    char* envp[] = {home, nullptr};
    ::execve(argv[0], argv.data(), envp);
    ::_exit(127);
  }
  ::close(to_browser[0]);
  ::close(from_browser[1]);
  Cdp cdp(to_browser[1], from_browser[0]);

  const auto step_time = std::chrono::milliseconds(spec.step_timeout_ms);
  auto deadline = [&] { return Clock::now() + step_time; };
  // Attach to the page target with a flat session.
  auto targets = cdp.Call("Target.getTargets", json::object(), Clock::now() + 2 * step_time);
  if (!targets.ok()) return {targets.status()};
  std::string target_id;
  for (const json& t : (*targets)["targetInfos"]) {
    if (t.value("type", "") == "page") target_id = t.value("targetId", "");
  }
  if (target_id.empty()) {
    auto created = cdp.Call("Target.createTarget", {{"url", "about:blank"}}, deadline());
    if (!created.ok()) return {created.status()};
    target_id = created->value("targetId", "");
  }
  auto attached =
      cdp.Call("Target.attachToTarget", {{"targetId", target_id}, {"flatten", true}}, deadline());
  if (!attached.ok()) return {attached.status()};
  const std::string session = attached->value("sessionId", "");
  for (const char* domain : {"Page.enable", "Runtime.enable"}) {
    if (auto r = cdp.Call(domain, json::object(), deadline(), session); !r.ok())
      return {r.status()};
  }

  int loads_at_action = cdp.loads();
  size_t index = 0;
  for (const BrowserStep& st : spec.steps) {
    const std::string where = "step " + std::to_string(index++) + " (" + st.op + ")";
    auto fail = [&](const Status& s) {
      return BrowserOutcome{Status(s.code() == StatusCode::kUnavailable
                                       ? Status::Unavailable(where + ": " + s.message())
                                       : Status::FailedPrecondition(where + ": " + s.message())),
                            std::move(out.extracted), std::move(out.screenshots)};
    };
    if (st.op == "goto") {
      loads_at_action = cdp.loads();
      auto r = cdp.Call("Page.navigate", {{"url", st.url}}, deadline(), session);
      if (!r.ok()) return fail(r.status());
      if (r->contains("errorText")) {
        return fail(
            Status::Unavailable("navigation failed: " + (*r)["errorText"].get<std::string>()));
      }
      if (Status s = cdp.WaitForLoad(loads_at_action, deadline()); !s.ok()) return fail(s);
      loads_at_action = cdp.loads();
    } else if (st.op == "fill") {
      std::string value = st.value;
      if (!st.credential_field.empty()) {
        auto f = creds.Field(st.credential_field);
        if (!f.ok()) return fail(f.status());
        value = std::string((*f)->UnsafeView());
      }
      auto r = OnDocument(cdp, session,
                          "function(sel, v) { const e = this.querySelector(sel); if (!e) return "
                          "false; e.focus(); e.value = v; e.dispatchEvent(new Event('input', "
                          "{bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: "
                          "true})); return true; }",
                          st.selector, value, deadline());
      SecureWipe(value.data(), value.size());
      if (!r.ok()) return fail(r.status());
      if (*r != true) return fail(Status::NotFound("no element matches " + st.selector));
    } else if (st.op == "click") {
      loads_at_action = cdp.loads();
      auto r = OnDocument(cdp, session,
                          "function(sel) { const e = this.querySelector(sel); if (!e) return "
                          "false; e.click(); return true; }",
                          st.selector, "", deadline());
      if (!r.ok()) return fail(r.status());
      if (*r != true) return fail(Status::NotFound("no element matches " + st.selector));
    } else if (st.op == "wait_navigation") {
      if (Status s = cdp.WaitForLoad(loads_at_action, deadline()); !s.ok()) return fail(s);
      loads_at_action = cdp.loads();
    } else if (st.op == "wait_for") {
      const auto until = deadline();
      while (true) {
        auto r = OnDocument(cdp, session, "function(sel) { return !!this.querySelector(sel); }",
                            st.selector, "", until);
        if (r.ok() && *r == true) break;
        if (Clock::now() >= until) {
          return fail(Status::Unavailable("timed out waiting for " + st.selector));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    } else if (st.op == "extract") {
      auto r = OnDocument(cdp, session,
                          "function(sel) { const e = this.querySelector(sel); return e ? "
                          "e.textContent : null; }",
                          st.selector, "", deadline());
      if (!r.ok()) return fail(r.status());
      if (!r->is_string()) return fail(Status::NotFound("no element matches " + st.selector));
      out.extracted[st.name] = r->get<std::string>().substr(0, 64 * 1024);
    } else if (st.op == "screenshot") {
      if (!spec.screenshots) continue;  // the policy does not allow screenshots
      auto r = cdp.Call("Page.captureScreenshot", {{"format", "png"}}, deadline(), session);
      if (!r.ok()) return fail(r.status());
      out.screenshots.push_back({{"name", st.name}, {"png_base64", r->value("data", "")}});
    }
  }
  (void)cdp.Call("Browser.close", json::object(), Clock::now() + std::chrono::seconds(2));
  return out;
}

}  // namespace toani
