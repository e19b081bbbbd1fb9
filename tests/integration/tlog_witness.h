// A C2SP tlog-witness (https://c2sp.org/tlog-witness) for tests: a real HTTPS server
// (TLS 1.3) on loopback that implements add-checkpoint as the spec says — 404 for an
// unknown origin, 403 when no trusted signature verifies, 400 for old > size or a proof
// with old 0, 409 (text/x.tlog.size) when the old size is not the size it last cosigned
// or the roots differ at equal size, 422 when the consistency proof fails — and answers
// 200 with a C2SP tlog-cosignature/v1 line. State is kept in memory, updated atomically.
// Written for the tests because neither Debian nor npm packages a tlog-witness.
#pragma once

#include <sodium.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "audit/merkle.h"
#include "audit/note.h"
#include "common/encoding.h"
#include "crypto/hash.h"
#include "server/https_server.h"

namespace toani::testing {

class TlogWitness {
 public:
  // Serves with the given PEM certificate and key (no client certificate needed).
  static StatusOr<std::unique_ptr<TlogWitness>> Start(const std::string& cert,
                                                      const std::string& key) {
    std::unique_ptr<TlogWitness> w(new TlogWitness());
    TlsServerConfig tls;
    tls.cert_file = cert;
    tls.key_file = key;
    tls.require_client_cert = false;
    HttpsServerOptions o;
    o.threads = 2;
    TlogWitness* self = w.get();
    TOANI_ASSIGN_OR_RETURN(w->server_, HttpsServer::Start(tls, o, [self](const HttpRequest& r) {
                             return self->Handle(r);
                           }));
    return w;
  }
  ~TlogWitness() {
    if (server_) server_->Stop();
  }

  std::string url() const { return "https://127.0.0.1:" + std::to_string(server_->port()); }
  void Trust(const audit::VerifierKey& log_key) {
    std::lock_guard<std::mutex> l(mu_);
    log_key_ = log_key;
  }
  // The size of the latest checkpoint cosigned for `origin` (0 if none).
  uint64_t Size(const std::string& origin) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = latest_.find(origin);
    return it == latest_.end() ? 0 : it->second.size;
  }
  std::atomic<bool> down{false};       // answer 503 (an unreachable witness)
  std::atomic<int> conflicts{0};       // 409s sent
  std::atomic<int> refused_proofs{0};  // 422s sent

 private:
  TlogWitness() {
    crypto_sign_keypair(pk_, sk_);
    std::string buf = name_ + "\n";
    buf.push_back('\x04');  // C2SP tlog-cosignature key type
    buf.append(reinterpret_cast<const char*>(pk_), sizeof pk_);
    auto d = crypto::Sha256(AsBytes(buf));
    std::memcpy(key_id_, d.data(), 4);
  }

  static HttpResponse Text(int status, std::string body, std::string type = "text/plain") {
    HttpResponse r;
    r.status = status;
    r.content_type = std::move(type);
    r.body = std::move(body);
    return r;
  }

  HttpResponse Handle(const HttpRequest& r) {
    if (down) return Text(503, "down for the test\n");
    if (r.method != "POST" || r.path != "/add-checkpoint") return Text(404, "not found\n");
    // old size line, proof lines, empty line, checkpoint.
    std::string_view b = r.body;
    size_t nl = b.find('\n');
    if (nl == std::string_view::npos || b.substr(0, 4) != "old ") return Text(400, "old line\n");
    std::string_view old_s = b.substr(4, nl - 4);
    if (old_s.empty() || (old_s.size() > 1 && old_s[0] == '0')) return Text(400, "old size\n");
    uint64_t old = 0;
    for (char c : old_s) {
      if (c < '0' || c > '9') return Text(400, "old size\n");
      old = old * 10 + static_cast<uint64_t>(c - '0');
    }
    b.remove_prefix(nl + 1);
    std::vector<audit::Hash> proof;
    for (;;) {
      nl = b.find('\n');
      if (nl == std::string_view::npos) return Text(400, "no empty line\n");
      std::string_view line = b.substr(0, nl);
      b.remove_prefix(nl + 1);
      if (line.empty()) break;
      auto h = Base64Decode(line);
      if (!h.ok() || h->size() != 32 || proof.size() == 63) return Text(400, "proof line\n");
      audit::Hash x;
      std::memcpy(x.data(), h->data(), 32);
      proof.push_back(x);
    }
    const std::string note(b);
    std::lock_guard<std::mutex> l(mu_);  // check and update atomically (the spec's race)
    const std::string origin = note.substr(0, note.find('\n'));
    if (!log_key_ || origin != log_key_->name) return Text(404, "unknown log\n");
    auto cp = audit::VerifyCheckpoint(note, *log_key_);
    if (!cp.ok()) return Text(403, "no trusted signature\n");
    if (old > cp->size) return Text(400, "old size > checkpoint size\n");
    if (old == 0 && !proof.empty()) return Text(400, "proof with old size 0\n");
    auto it = latest_.find(origin);
    const uint64_t have = it == latest_.end() ? 0 : it->second.size;
    if (old != have) {
      ++conflicts;
      return Text(409, std::to_string(have) + "\n", "text/x.tlog.size");
    }
    if (old == cp->size) {
      if (it != latest_.end() && it->second.root != cp->root) {
        ++conflicts;
        return Text(409, std::to_string(have) + "\n", "text/x.tlog.size");
      }
    } else if (old > 0 &&
               !audit::VerifyConsistency(old, cp->size, proof, it->second.root, cp->root).ok()) {
      ++refused_proofs;
      return Text(422, "consistency proof does not verify\n");
    }
    latest_[origin] = Latest{cp->size, cp->root};
    return Text(200, Cosign(note.substr(0, note.find("\n\n") + 1)));
  }

  // C2SP tlog-cosignature/v1: Ed25519 over "cosignature/v1\ntime <t>\n" + checkpoint text;
  // the line carries key id || big-endian timestamp || signature.
  std::string Cosign(const std::string& text) {
    const uint64_t t =
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
    const std::string msg = "cosignature/v1\ntime " + std::to_string(t) + "\n" + text;
    uint8_t sig[4 + 8 + crypto_sign_BYTES];
    std::memcpy(sig, key_id_, 4);
    for (int i = 0; i < 8; ++i) sig[4 + i] = static_cast<uint8_t>(t >> (56 - 8 * i));
    crypto_sign_detached(sig + 12, nullptr, reinterpret_cast<const uint8_t*>(msg.data()),
                         msg.size(), sk_);
    return "\xE2\x80\x94 " + name_ + " " + Base64Encode(std::span<const uint8_t>(sig, sizeof sig)) +
           "\n";
  }

  struct Latest {
    uint64_t size = 0;
    audit::Hash root{};
  };
  const std::string name_ = "witness.test/w1";
  uint8_t pk_[crypto_sign_PUBLICKEYBYTES], sk_[crypto_sign_SECRETKEYBYTES];
  uint8_t key_id_[4];
  std::mutex mu_;
  std::optional<audit::VerifierKey> log_key_;
  std::map<std::string, Latest> latest_;
  std::unique_ptr<HttpsServer> server_;
};

}  // namespace toani::testing
