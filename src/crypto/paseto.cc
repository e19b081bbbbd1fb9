#include "crypto/paseto.h"

#include <pthread.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <initializer_list>
#include <memory>
#include <vector>

#include "common/encoding.h"
#include "crypto/b64url.h"
#include "crypto/pae.h"

namespace toani::crypto {
namespace {

constexpr std::string_view kHeader = "v4.local.";
constexpr std::string_view kEncKeyInfo = "paseto-encryption-key";
constexpr std::string_view kAuthKeyInfo = "paseto-auth-key-for-aead";
constexpr size_t kTagSize = 32;
constexpr size_t kXNonceSize = crypto_stream_xchacha20_NONCEBYTES;  // 24

static_assert(crypto_stream_xchacha20_KEYBYTES == 32);
static_assert(crypto_generichash_BYTES_MAX >= 56);

// sodium_init() takes a lock on every call; one successful call is enough.
void EnsureSodium() {
  static const bool ok = sodium_init() >= 0;
  TOANI_CHECK(ok);
}

Status InvalidToken() { return Status::Unauthenticated("invalid token"); }

// Keyed BLAKE2b of info || nonce.
void KeyedBlake2b(const uint8_t* key, std::string_view info, std::span<const uint8_t> nonce,
                  uint8_t* out, size_t out_len) {
  crypto_generichash_state st;
  TOANI_CHECK(crypto_generichash_init(&st, key, kPasetoV4LocalKeySize, out_len) == 0);
  crypto_generichash_update(&st, AsBytes(info).data(), info.size());
  crypto_generichash_update(&st, nonce.data(), nonce.size());
  TOANI_CHECK(crypto_generichash_final(&st, out, out_len) == 0);
  // crypto_generichash_final wipes the state's chaining value and buffer itself.
}

// Splits the key per step 3: Ek || n2 (56 bytes) and Ak (32 bytes). These per-token
// subkeys live on the stack for one call and are wiped by the destructor; a guarded
// sodium_malloc allocation for each (mmap + mprotect + munmap) cost more than the
// cryptography itself (docs/performance.md).
struct SplitKeys {
  std::array<uint8_t, 32 + kXNonceSize> ek_n2;
  std::array<uint8_t, 32> ak;
  SplitKeys() = default;
  SplitKeys(const SplitKeys&) = delete;
  SplitKeys& operator=(const SplitKeys&) = delete;
  ~SplitKeys() {
    sodium_memzero(ek_n2.data(), ek_n2.size());
    sodium_memzero(ak.data(), ak.size());
  }
  const uint8_t* ek() const { return ek_n2.data(); }
  const uint8_t* n2() const { return ek_n2.data() + 32; }
};

void Split(const SecretBytes& key32, std::span<const uint8_t> nonce, SplitKeys* k) {
  const uint8_t* key = key32.UnsafeBytes().data();
  KeyedBlake2b(key, kEncKeyInfo, nonce, k->ek_n2.data(), k->ek_n2.size());
  KeyedBlake2b(key, kAuthKeyInfo, nonce, k->ak.data(), k->ak.size());
}

// The tag: keyed BLAKE2b-256 over PAE(pieces), streamed (no PAE buffer is built).
std::array<uint8_t, kTagSize> Mac(const SplitKeys& k,
                                  std::initializer_list<std::span<const uint8_t>> pieces) {
  crypto_generichash_state st;
  TOANI_CHECK(crypto_generichash_init(&st, k.ak.data(), k.ak.size(), kTagSize) == 0);
  PaeStream(pieces, [&](std::span<const uint8_t> s) {
    crypto_generichash_update(&st, s.data(), s.size());
  });
  std::array<uint8_t, kTagSize> t;
  TOANI_CHECK(crypto_generichash_final(&st, t.data(), t.size()) == 0);
  // (final wiped the state)
  return t;
}

struct TokenParts {
  std::string_view body;    // base64url(n || c || t)
  std::string_view footer;  // base64url(f), empty when absent
};

// Splits "v4.local.<body>[.<footer>]". A present footer segment must be non-empty: the
// encoder never writes "<body>." so accepting it would give one token two spellings.
bool SplitToken(std::string_view token, TokenParts* parts) {
  if (token.substr(0, kHeader.size()) != kHeader) return false;
  std::string_view rest = token.substr(kHeader.size());
  const size_t dot = rest.find('.');
  if (dot == std::string_view::npos) {
    parts->body = rest;
    parts->footer = {};
    return true;
  }
  parts->body = rest.substr(0, dot);
  parts->footer = rest.substr(dot + 1);
  return !parts->footer.empty() && parts->footer.find('.') == std::string_view::npos;
}

// Fresh random nonces, drawn from the OS in batches: one getrandom() per 32 tokens
// instead of one per token (the syscall was a tenth of a mint). Nonces are public — they
// are the first 32 bytes of every token — so holding the next few in memory reveals
// nothing; each byte is handed out once. A forked child must not reuse its parent's
// batch, so fork bumps an epoch that makes every thread refill.
std::atomic<uint64_t> g_fork_epoch{0};

void FreshNonce(std::span<uint8_t, kPasetoV4LocalNonceSize> out) {
  static const bool registered = [] {
    pthread_atfork(nullptr, nullptr, [] { g_fork_epoch.fetch_add(1); });
    return true;
  }();
  (void)registered;
  constexpr size_t kBatch = 32 * kPasetoV4LocalNonceSize;
  thread_local std::array<uint8_t, kBatch> batch;
  thread_local size_t used = kBatch;
  thread_local uint64_t epoch = 0;
  const uint64_t now = g_fork_epoch.load(std::memory_order_relaxed);
  if (used == kBatch || epoch != now) {
    randombytes_buf(batch.data(), batch.size());
    used = 0;
    epoch = now;
  }
  std::copy_n(batch.begin() + used, out.size(), out.begin());
  sodium_memzero(batch.data() + used, out.size());
  used += out.size();
}

}  // namespace

StatusOr<std::string> PasetoV4LocalEncryptWithNonce(const SecretBytes& key32,
                                                    std::string_view payload,
                                                    std::string_view footer,
                                                    std::string_view implicit_assertion,
                                                    std::span<const uint8_t> nonce32) {
  if (key32.size() != kPasetoV4LocalKeySize) {
    return Status::InvalidArgument("paseto: key must be 32 bytes");
  }
  if (nonce32.size() != kPasetoV4LocalNonceSize) {
    return Status::InvalidArgument("paseto: nonce must be 32 bytes");
  }
  EnsureSodium();
  SplitKeys k;
  Split(key32, nonce32, &k);

  // n || c || t, encrypted in place (every byte is written below).
  const size_t body_size = kPasetoV4LocalNonceSize + payload.size() + kTagSize;
  const auto body_buf = std::make_unique_for_overwrite<uint8_t[]>(body_size);
  const std::span<uint8_t> body(body_buf.get(), body_size);
  std::copy(nonce32.begin(), nonce32.end(), body.begin());
  const auto c = body.subspan(kPasetoV4LocalNonceSize, payload.size());
  TOANI_CHECK(crypto_stream_xchacha20_xor(c.data(), AsBytes(payload).data(), payload.size(), k.n2(),
                                          k.ek()) == 0);
  const auto t =
      Mac(k, {AsBytes(kHeader), nonce32, c, AsBytes(footer), AsBytes(implicit_assertion)});
  std::copy(t.begin(), t.end(), body.end() - kTagSize);

  std::string token;
  token.reserve(kHeader.size() + PublicBase64UrlEncodedSize(body_size) + 1 +
                PublicBase64UrlEncodedSize(footer.size()));
  token += kHeader;
  PublicBase64UrlEncodeAppend(body, &token);
  if (!footer.empty()) {
    token.push_back('.');
    PublicBase64UrlEncodeAppend(AsBytes(footer), &token);
  }
  return token;
}

StatusOr<std::string> PasetoV4LocalEncrypt(const SecretBytes& key32, std::string_view payload,
                                           std::string_view footer,
                                           std::string_view implicit_assertion) {
  EnsureSodium();
  std::array<uint8_t, kPasetoV4LocalNonceSize> nonce;
  FreshNonce(nonce);
  return PasetoV4LocalEncryptWithNonce(key32, payload, footer, implicit_assertion, nonce);
}

StatusOr<PasetoMessage> PasetoV4LocalDecrypt(const SecretBytes& key32, std::string_view token,
                                             std::string_view implicit_assertion) {
  if (key32.size() != kPasetoV4LocalKeySize) {
    return Status::InvalidArgument("paseto: key must be 32 bytes");
  }
  TokenParts parts;
  if (!SplitToken(token, &parts)) return InvalidToken();
  if (parts.body.size() % 4 == 1 || parts.footer.size() % 4 == 1) return InvalidToken();
  const size_t body_size = PublicBase64UrlDecodedSize(parts.body.size());
  if (body_size < kPasetoV4LocalNonceSize + kTagSize) return InvalidToken();
  const auto body_buf = std::make_unique_for_overwrite<uint8_t[]>(body_size);
  const std::span<const uint8_t> all(body_buf.get(), body_size);
  if (!PublicBase64UrlDecodeStrictInto(parts.body, {body_buf.get(), body_size})) {
    return InvalidToken();
  }
  PasetoMessage msg;
  msg.footer.resize(PublicBase64UrlDecodedSize(parts.footer.size()));
  if (!PublicBase64UrlDecodeStrictInto(
          parts.footer,
          std::span(reinterpret_cast<uint8_t*>(msg.footer.data()), msg.footer.size()))) {
    return InvalidToken();
  }
  if (!parts.footer.empty() && msg.footer.empty()) return InvalidToken();

  const auto n = all.first(kPasetoV4LocalNonceSize);
  const auto c =
      all.subspan(kPasetoV4LocalNonceSize, all.size() - kPasetoV4LocalNonceSize - kTagSize);
  const auto t = all.last(kTagSize);

  EnsureSodium();
  SplitKeys k;
  Split(key32, n, &k);
  const auto t2 =
      Mac(k, {AsBytes(kHeader), n, c, AsBytes(msg.footer), AsBytes(implicit_assertion)});
  if (crypto_verify_32(t.data(), t2.data()) != 0) return InvalidToken();

  msg.payload.resize(c.size());
  TOANI_CHECK(crypto_stream_xchacha20_xor(reinterpret_cast<uint8_t*>(msg.payload.data()), c.data(),
                                          c.size(), k.n2(), k.ek()) == 0);
  return msg;
}

StatusOr<std::string> PasetoUntrustedFooter(std::string_view token) {
  TokenParts parts;
  if (!SplitToken(token, &parts)) return Status::InvalidArgument("paseto: not a v4.local token");
  auto footer = PublicBase64UrlDecodeStrict(parts.footer);
  if (!footer) return Status::InvalidArgument("paseto: malformed footer");
  return ToString(*footer);
}

}  // namespace toani::crypto
