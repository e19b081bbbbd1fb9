#include "server/https_server.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "common/encoding.h"
#include "server/openssl_error.h"

namespace toani {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

constexpr std::chrono::seconds kLingerTime{2};  // drain a refused upload before closing
constexpr size_t kMaxLingerBytes = 8 << 20;
constexpr size_t kFirstReadBytes = 16 * 1024;  // the first read of a request
constexpr const char* kServerHeader = "toani";

std::string_view Std(beast::string_view s) { return {s.data(), s.size()}; }

bool AsciiIEquals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    return lower(x) == lower(y);
  });
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded decoding of one query component.
std::optional<std::string> PercentDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>((hi << 4) | lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Splits `target` into path and decoded query. Returns false (-> 400) for a target
// that is not origin-form, a malformed escape or a repeated parameter name (which
// different components could otherwise resolve differently).
bool ParseTarget(std::string_view target, std::string* path,
                 std::map<std::string, std::string>* query) {
  if (target.empty() || target.front() != '/') return false;
  size_t q = target.find('?');
  *path = std::string(target.substr(0, q));
  if (q == std::string_view::npos) return true;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view part = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    auto key = PercentDecode(part.substr(0, eq));
    auto value = PercentDecode(eq == std::string_view::npos ? "" : part.substr(eq + 1));
    if (!key || !value) return false;
    if (!query->emplace(std::move(*key), std::move(*value)).second) return false;
  }
  return true;
}

PeerIdentity ExtractPeer(SSL* ssl) {
  PeerIdentity peer;
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return peer;
  peer.authenticated = true;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &md_len) == 1) {
    peer.cert_sha256 = HexEncode(std::span<const uint8_t>(md, md_len));
  }
  if (const ASN1_INTEGER* serial = X509_get0_serialNumber(cert)) {
    if (BIGNUM* bn = ASN1_INTEGER_to_BN(serial, nullptr)) {
      if (char* hex = BN_bn2hex(bn)) {
        peer.serial_hex = hex;
        for (char& ch : peer.serial_hex)
          ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        OPENSSL_free(hex);
      }
      BN_free(bn);
    }
  }
  if (STACK_OF(X509)* chain = SSL_get0_verified_chain(ssl);
      chain != nullptr && sk_X509_num(chain) > 1) {
    if (X509_digest(sk_X509_value(chain, 1), EVP_sha256(), md, &md_len) == 1)
      peer.issuer_sha256 = HexEncode(std::span<const uint8_t>(md, md_len));
  }
  const X509_NAME* subject = X509_get_subject_name(cert);
  for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_organizationalUnitName, i)) >= 0;) {
    const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
    peer.roles.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                            static_cast<size_t>(ASN1_STRING_length(s)));
  }
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
      if (gn->type != GEN_URI) continue;
      const ASN1_STRING* s = gn->d.uniformResourceIdentifier;
      peer.uri_san.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                          static_cast<size_t>(ASN1_STRING_length(s)));
      break;
    }
    GENERAL_NAMES_free(names);
  }
  ERR_clear_error();
  return peer;
}

bool HeaderSafe(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

bool ServerOwnedHeader(std::string_view name) {
  for (std::string_view owned :
       {"server", "content-length", "connection", "transfer-encoding", "content-type"}) {
    if (AsciiIEquals(name, owned)) return true;
  }
  return false;
}

struct Shared {
  HttpHandler handler;
  HttpsServerOptions options;
  std::function<bool(const PeerIdentity&)> revoked;
  std::atomic<size_t> connections{0};
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, ssl::context& ctx, std::shared_ptr<Shared> shared)
      : stream_(std::move(socket), ctx), shared_(std::move(shared)) {
    shared_->connections.fetch_add(1);
  }
  ~Session() { shared_->connections.fetch_sub(1); }

  void Run() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->Arm();
      self->stream_.async_handshake(ssl::stream_base::server,
                                    [self](beast::error_code ec) { self->OnHandshake(ec); });
    });
  }

 private:
  void Arm() { beast::get_lowest_layer(stream_).expires_after(shared_->options.read_timeout); }

  void OnHandshake(beast::error_code ec) {
    if (ec) return;  // failed handshake (e.g. no or bad client cert): drop the connection
    peer_ = ExtractPeer(stream_.native_handle());
    if (peer_.authenticated && shared_->revoked && shared_->revoked(peer_)) {
      // A revoked certificate gets no request served: close the connection now.
      beast::error_code ignored;
      beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
      return;
    }
    ReadHeader();
  }

  // Waits (idle deadline) for the first byte of the next request, then reads it.
  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(shared_->options.max_header_bytes));
    parser_->body_limit(shared_->options.max_body_bytes);
    if (buffer_.size() > 0) return StartRequest();  // pipelined: already here
    Arm();
    stream_.async_read_some(buffer_.prepare(kFirstReadBytes),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec) return;  // idle timeout, EOF or TLS error: drop it
                              self->buffer_.commit(n);
                              self->StartRequest();
                            });
  }

  // The request's one deadline starts at its first byte and is not re-armed until its
  // body is read: trickling headers or body never extends it (slow loris).
  void StartRequest() {
    Arm();
    // A small request usually arrives whole in the first read: parse it straight from the
    // buffer, without the extra asynchronous steps (each a trip through the scheduler)
    // of reading a header and a body that are already here.
    beast::error_code parse_ec;
    while (buffer_.size() > 0 && !parser_->is_done()) {
      const size_t used = parser_->put(buffer_.data(), parse_ec);
      if (parse_ec == http::error::need_more) break;
      if (parse_ec) return OnReadError(parse_ec);
      buffer_.consume(used);
      if (used == 0) break;
    }
    if (parser_->is_done()) return Respond(Dispatch());
    if (parser_->is_header_done()) return OnHeader({});
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    const auto& msg = parser_->get();
    if (msg.version() >= 11 && AsciiIEquals(Std(msg[http::field::expect]), "100-continue") &&
        !parser_->is_done()) {
      continue_.emplace(http::status::continue_, msg.version());
      http::async_write(stream_, *continue_,
                        [self = shared_from_this()](beast::error_code wec, size_t) {
                          if (!wec) self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return Respond(Dispatch());
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->OnReadError(ec);
                       self->Respond(self->Dispatch());
                     });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return SendErrorAndClose(
          ProblemResponse(413, "Payload Too Large", "request body exceeds the configured limit"));
    }
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      return SendErrorAndClose(
          ProblemResponse(431, "Request Header Fields Too Large", "request headers too large"));
    }
    if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return SendErrorAndClose(ProblemResponse(400, "Bad Request", "malformed HTTP request"));
    }
    // EOF, timeout, TLS or socket error: nothing useful can be said; drop it.
  }

  HttpResponse Dispatch() {
    const auto& msg = parser_->get();
    HttpRequest req;
    req.method = std::string(Std(msg.method_string()));
    req.target = std::string(Std(msg.target()));
    if (!ParseTarget(req.target, &req.path, &req.query)) {
      return ProblemResponse(400, "Bad Request", "malformed request target or query string");
    }
    for (const auto& field : msg) {
      req.headers.emplace_back(Std(field.name_string()), Std(field.value()));
    }
    req.body = parser_->release().body();
    req.peer = peer_;
    if (peer_.authenticated && shared_->revoked && shared_->revoked(peer_)) {
      return ProblemResponse(401, "Unauthenticated", "the client certificate is revoked");
    }
    try {
      return shared_->handler(req);
    } catch (...) {
      // The handler's failure text may hold internal detail: not for the client.
      return ProblemResponse(500, "Internal Server Error", "the request could not be handled");
    }
  }

  // Builds the wire response for `out` into res_.
  void Build(HttpResponse out, unsigned version, bool keep_alive, bool head) {
    if (out.status < 200 || out.status > 599) {
      out = ProblemResponse(500, "Internal Server Error", "handler returned a bad status");
    }
    res_.emplace();
    res_->version(version);
    res_->result(static_cast<unsigned>(out.status));
    res_->set(http::field::server, kServerHeader);
    if (!out.content_type.empty() && HeaderSafe(out.content_type)) {
      res_->set(http::field::content_type, out.content_type);
    }
    for (const auto& [name, value] : out.headers) {
      if (name.empty() || !HeaderSafe(name) || !HeaderSafe(value) || ServerOwnedHeader(name)) {
        continue;
      }
      res_->insert(name, value);
    }
    res_->keep_alive(keep_alive);
    size_t length = out.body.size();
    if (!head) res_->body() = std::move(out.body);
    res_->content_length(length);
  }

  void Respond(HttpResponse out) {
    bool keep_alive = parser_->get().keep_alive();
    bool head = parser_->get().method() == http::verb::head;
    Build(std::move(out), parser_->get().version(), keep_alive, head);
    Arm();
    http::async_write(stream_, *res_,
                      [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                        self->res_.reset();
                        if (ec) return;
                        if (keep_alive) return self->ReadHeader();
                        // close_notify; don't hold the slot long for a peer that never answers.
                        beast::get_lowest_layer(self->stream_).expires_after(kLingerTime);
                        self->stream_.async_shutdown([self](beast::error_code) {});
                      });
  }

  // Answers a request we refused to read, then lingers: if we closed while the client
  // is still uploading, its kernel would see a RST and might discard our answer.
  void SendErrorAndClose(HttpResponse out) {
    Build(std::move(out), 11, /*keep_alive=*/false, /*head=*/false);
    Arm();
    http::async_write(stream_, *res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->res_.reset();
      if (ec) return;
      auto& tcp_stream = beast::get_lowest_layer(self->stream_);
      beast::error_code ignored;
      tcp_stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      tcp_stream.expires_after(kLingerTime);
      self->buffer_.clear();
      self->Drain(0);
    });
  }

  void Drain(size_t drained) {
    auto& tcp_stream = beast::get_lowest_layer(stream_);
    tcp_stream.async_read_some(buffer_.prepare(4096), [self = shared_from_this(), drained](
                                                          beast::error_code ec, size_t n) {
      self->buffer_.clear();
      if (ec || drained + n > kMaxLingerBytes) return;
      self->Drain(drained + n);
    });
  }

  beast::ssl_stream<beast::tcp_stream> stream_;
  std::shared_ptr<Shared> shared_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  std::optional<http::response<http::string_body>> res_;
  PeerIdentity peer_;
};

Status ConfigureTls(ssl::context& ctx, const TlsServerConfig& tls) {
  SSL_CTX* c = ctx.native_handle();
  if (SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_ciphersuites(
          c, "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256") != 1 ||
      SSL_CTX_set1_groups_list(c, "X25519:P-256:P-384") != 1) {
    return Status::Internal(OpenSslError("TLS parameters"));
  }
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(c, tls.cert_file.c_str()) != 1) {
    return Status::Internal(OpenSslError("load server certificate " + tls.cert_file));
  }
  if (SSL_CTX_use_PrivateKey_file(c, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(c) != 1) {
    return Status::Internal(OpenSslError("load server key " + tls.key_file));
  }
  int mode = SSL_VERIFY_NONE;
  if (!tls.client_ca_file.empty()) {
    // Only the given CAs: never the system store, or any public CA could mint agents.
    if (SSL_CTX_load_verify_locations(c, tls.client_ca_file.c_str(), nullptr) != 1) {
      return Status::Internal(OpenSslError("load client CA " + tls.client_ca_file));
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca_file.c_str());
    if (names == nullptr) return Status::Internal(OpenSslError("read client CA names"));
    SSL_CTX_set_client_CA_list(c, names);  // takes ownership
    mode = SSL_VERIFY_PEER;
    if (tls.require_client_cert) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  }
  SSL_CTX_set_verify(c, mode, nullptr);
  SSL_CTX_set_verify_depth(c, 4);
  static const unsigned char kSidCtx[] = "toani";
  SSL_CTX_set_session_id_context(c, kSidCtx, sizeof(kSidCtx) - 1);
  return Status::Ok();
}

}  // namespace

std::string HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (AsciiIEquals(k, name)) return v;
  }
  return "";
}

HttpResponse ProblemResponse(int status, std::string_view title, std::string_view detail) {
  nlohmann::json j = {{"type", "about:blank"},
                      {"title", std::string(title)},
                      {"status", status},
                      {"detail", std::string(detail)}};
  HttpResponse r;
  r.status = status;
  r.content_type = "application/problem+json";
  r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

struct HttpsServer::Impl {
  std::shared_ptr<Shared> shared;
  ssl::context ssl_ctx{ssl::context::tls_server};
  std::unique_ptr<net::io_context> ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<net::steady_timer> retry_timer;
  std::vector<std::thread> threads;
  uint16_t port = 0;
  std::mutex stop_mu;
  bool stopped = false;

  void Accept() {
    acceptor->async_accept(net::make_strand(*ioc),
                           [this](beast::error_code ec, tcp::socket socket) {
                             if (ec == net::error::operation_aborted) return;
                             if (ec) {
                               // E.g. EMFILE: back off instead of spinning on a listener that stays
                               // readable.
                               retry_timer->expires_after(std::chrono::milliseconds(100));
                               retry_timer->async_wait([this](beast::error_code wec) {
                                 if (!wec) Accept();
                               });
                               return;
                             }
                             if (shared->connections.load() >= shared->options.max_connections) {
                               beast::error_code ignored;
                               socket.close(ignored);
                             } else {
                               std::make_shared<Session>(std::move(socket), ssl_ctx, shared)->Run();
                             }
                             Accept();
                           });
  }

  void RunWorker() {
    for (;;) {
      try {
        ioc->run();
        return;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "https_server: worker caught: %s\n", e.what());
      } catch (...) {
        std::fprintf(stderr, "https_server: worker caught unknown exception\n");
      }
    }
  }
};

HttpsServer::HttpsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpsServer::~HttpsServer() { Stop(); }

uint16_t HttpsServer::port() const { return impl_->port; }

StatusOr<std::unique_ptr<HttpsServer>> HttpsServer::Start(const TlsServerConfig& tls,
                                                          const HttpsServerOptions& options,
                                                          HttpHandler handler) {
  if (!handler) return Status::InvalidArgument("no handler");
  if (options.threads == 0 || options.threads > 256) {
    return Status::InvalidArgument("threads must be 1..256");
  }
  if (tls.require_client_cert && tls.client_ca_file.empty()) {
    return Status::InvalidArgument("require_client_cert needs client_ca_file");
  }
  beast::error_code ec;
  net::ip::address address = net::ip::make_address(options.listen_host, ec);
  if (ec)
    return Status::InvalidArgument("listen_host is not an IP literal: " + options.listen_host);

  try {
    auto impl = std::make_unique<Impl>();
    TOANI_RETURN_IF_ERROR(ConfigureTls(impl->ssl_ctx, tls));
    impl->shared = std::make_shared<Shared>();
    impl->shared->handler = std::move(handler);
    impl->shared->options = options;
    impl->shared->revoked = tls.revoked;
    impl->ioc = std::make_unique<net::io_context>(static_cast<int>(options.threads));
    impl->acceptor = std::make_unique<tcp::acceptor>(*impl->ioc);
    impl->retry_timer = std::make_unique<net::steady_timer>(*impl->ioc);
    tcp::endpoint endpoint(address, options.port);
    impl->acceptor->open(endpoint.protocol(), ec);
    if (!ec) impl->acceptor->set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) impl->acceptor->bind(endpoint, ec);
    if (!ec) impl->acceptor->listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::Unavailable("listen on " + options.listen_host + ":" +
                                 std::to_string(options.port) + ": " + ec.message());
    }
    impl->port = impl->acceptor->local_endpoint().port();
    impl->work.emplace(impl->ioc->get_executor());
    impl->Accept();
    std::unique_ptr<HttpsServer> server(new HttpsServer(std::move(impl)));
    for (size_t i = 0; i < options.threads; ++i) {
      Impl* raw = server->impl_.get();
      server->impl_->threads.emplace_back([raw] { raw->RunWorker(); });
    }
    return server;
  } catch (const std::exception& e) {
    return Status::Internal(std::string("https server start: ") + e.what());
  }
}

void HttpsServer::Stop() {
  std::lock_guard<std::mutex> lock(impl_->stop_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  for (const auto& t : impl_->threads) TOANI_CHECK(t.get_id() != std::this_thread::get_id());
  // Stopping the io_context abandons every pending accept, read (including idle
  // keep-alive reads) and write at once; destroying it closes their sockets.
  impl_->work.reset();
  impl_->ioc->stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  impl_->retry_timer.reset();
  impl_->acceptor.reset();
  impl_->ioc.reset();
}

}  // namespace toani
