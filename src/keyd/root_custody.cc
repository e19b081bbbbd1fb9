#include "keyd/root_custody.h"

#include <sodium.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "crypto/hash.h"
#include "crypto/kdf.h"
#include "keyd/file_util.h"

namespace toani::keyd {
namespace {

using nlohmann::json;

constexpr size_t kRootBytes = 32;
constexpr size_t kRootIdBytes = 8;
constexpr size_t kShareChecksum = 4;
constexpr size_t kShareRaw = kRootIdBytes + 1 + kRootBytes + kShareChecksum;
constexpr std::string_view kSharePrefix = "ts1.";
constexpr int kB64 = sodium_base64_VARIANT_URLSAFE_NO_PADDING;

std::string CheckValue(const SecretBytes& l0) {
  auto mac = crypto::HmacSha256(l0, AsBytes("toani.l0.check.v1"));
  return std::string(reinterpret_cast<const char*>(mac.data()), mac.size());
}

// First 4 bytes of SHA-256("toani.share.v1" || root_id || x || y): catches typos.
void ShareChecksum(const uint8_t* raw, uint8_t* out) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, reinterpret_cast<const uint8_t*>("toani.share.v1"), 14);
  crypto_hash_sha256_update(&st, raw, kRootIdBytes + 1 + kRootBytes);
  uint8_t h[32];
  crypto_hash_sha256_final(&st, h);
  std::copy(h, h + kShareChecksum, out);
  sodium_memzero(&st, sizeof st);
}

SecretBytes EncodeShare(const std::string& root_id, const crypto::ShamirShare& s) {
  SecretBytes raw(kShareRaw);
  uint8_t* p = raw.UnsafeMutableData();
  std::copy(root_id.begin(), root_id.end(), p);
  p[kRootIdBytes] = s.x;
  std::copy(s.y.UnsafeBytes().begin(), s.y.UnsafeBytes().end(), p + kRootIdBytes + 1);
  ShareChecksum(p, p + kRootIdBytes + 1 + kRootBytes);
  const size_t b64_len = sodium_base64_ENCODED_LEN(kShareRaw, kB64);  // includes NUL
  SecretBytes text(kSharePrefix.size() + b64_len);
  uint8_t* t = text.UnsafeMutableData();
  std::copy(kSharePrefix.begin(), kSharePrefix.end(), t);
  sodium_bin2base64(reinterpret_cast<char*>(t + kSharePrefix.size()), b64_len, p, kShareRaw, kB64);
  SecretBytes out = SecretBytes::Copy(text.UnsafeBytes().first(text.size() - 1));  // drop NUL
  return out;
}

}  // namespace

StatusOr<RootCustody> RootCustody::OpenDev(const std::string& state_dir) {
  ::mkdir(state_dir.c_str(), 0700);
  RootCustody c;
  c.dev_ = true;
  c.state_dir_ = state_dir;
  const std::string path = state_dir + "/dev-root.key";
  auto k = ReadSecretFile(path, kRootBytes);
  if (k.ok()) {
    c.root_ = std::move(k).value();
    return c;
  }
  if (k.status().code() != StatusCode::kNotFound) return k.status();
  SecretBytes fresh = SecretBytes::Random(kRootBytes);
  TOANI_RETURN_IF_ERROR(WriteSecretFileExclusive(path, fresh));
  c.root_ = std::move(fresh);
  return c;
}

StatusOr<RootCustody> RootCustody::OpenShamir(const std::string& state_dir) {
  ::mkdir(state_dir.c_str(), 0700);
  RootCustody c;
  c.state_dir_ = state_dir;
  auto text = ReadSmallFile(state_dir + "/root.json");
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return c;  // not initialised yet
    return text.status();
  }
  auto j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("v", 0) != 1 ||
      j.value("mode", "") != "shamir") {
    return Status::FailedPrecondition("keyd: root.json is malformed");
  }
  auto id = Base64UrlDecodeStrict(j.value("root_id", ""));
  auto check = Base64UrlDecodeStrict(j.value("check", ""));
  int n = j.value("shares", 0), t = j.value("threshold", 0);
  if (!id.ok() || id->size() != kRootIdBytes || !check.ok() || check->size() != 32 || t < 1 ||
      n < t || n > 255) {
    return Status::FailedPrecondition("keyd: root.json is malformed");
  }
  c.shares_ = n;
  c.threshold_ = t;
  c.root_id_ = ToString(*id);
  c.check_ = ToString(*check);
  return c;
}

UnsealProgress RootCustody::Progress() const {
  return {sealed(), static_cast<int>(pending_.size()), dev_ ? 0 : threshold_, dev_ ? 0 : shares_};
}

StatusOr<std::vector<SecretBytes>> RootCustody::SplitAndPersist(const SecretBytes& l0, int shares,
                                                                int threshold) {
  TOANI_ASSIGN_OR_RETURN(auto parts, crypto::ShamirSplit(l0, shares, threshold));
  uint8_t id[kRootIdBytes];
  randombytes_buf(id, sizeof id);
  std::string root_id(reinterpret_cast<const char*>(id), sizeof id);
  std::string check = CheckValue(l0);
  json doc = {{"v", 1},
              {"mode", "shamir"},
              {"shares", shares},
              {"threshold", threshold},
              {"root_id", Base64UrlEncode(AsBytes(root_id))},
              {"check", Base64UrlEncode(AsBytes(check))}};
  TOANI_RETURN_IF_ERROR(WriteFileAtomic(state_dir_ + "/root.json", doc.dump() + "\n"));
  shares_ = shares;
  threshold_ = threshold;
  root_id_ = root_id;
  check_ = check;
  pending_.clear();
  std::vector<SecretBytes> out;
  for (const auto& p : parts) out.push_back(EncodeShare(root_id_, p));
  return out;
}

StatusOr<std::vector<SecretBytes>> RootCustody::Init(int shares, int threshold) {
  if (dev_)
    return Status::FailedPrecondition("keyd runs in dev mode: its root key is the dev key file");
  if (initialized()) return Status::FailedPrecondition("keyd is already initialised");
  if (threshold < 1 || shares < threshold || shares > 255) {
    return Status::InvalidArgument("need 1 <= threshold <= shares <= 255");
  }
  SecretBytes l0 = SecretBytes::Random(kRootBytes);
  return SplitAndPersist(l0, shares, threshold);  // L0 is wiped here: keyd stays sealed
}

StatusOr<crypto::ShamirShare> RootCustody::Decode(const SecretBytes& text) const {
  const Status bad = Status::InvalidArgument("unseal share is malformed (check for typos)");
  std::string_view v = text.UnsafeView();
  if (v.substr(0, kSharePrefix.size()) != kSharePrefix) return bad;
  v.remove_prefix(kSharePrefix.size());
  SecretBytes raw(kShareRaw);
  size_t len = 0;
  if (sodium_base642bin(raw.UnsafeMutableData(), raw.size(), v.data(), v.size(), nullptr, &len,
                        nullptr, kB64) != 0 ||
      len != kShareRaw) {
    return bad;
  }
  const uint8_t* p = raw.UnsafeBytes().data();
  uint8_t sum[kShareChecksum];
  ShareChecksum(p, sum);
  if (sodium_memcmp(sum, p + kRootIdBytes + 1 + kRootBytes, kShareChecksum) != 0) return bad;
  if (std::string_view(reinterpret_cast<const char*>(p), kRootIdBytes) != root_id_) {
    return Status::InvalidArgument(
        "unseal share belongs to another root key (another init or a rekey)");
  }
  if (p[kRootIdBytes] == 0) return bad;
  crypto::ShamirShare s;
  s.x = p[kRootIdBytes];
  s.y = SecretBytes::Copy(std::span<const uint8_t>(p + kRootIdBytes + 1, kRootBytes));
  return s;
}

StatusOr<SecretBytes> RootCustody::Reconstruct(
    const std::vector<crypto::ShamirShare>& shares) const {
  TOANI_ASSIGN_OR_RETURN(SecretBytes l0, crypto::ShamirCombine(shares));
  std::string check = CheckValue(l0);
  if (check.size() != check_.size() ||
      sodium_memcmp(check.data(), check_.data(), check.size()) != 0) {
    return Status::PermissionDenied("the shares do not reconstruct the root key");
  }
  return l0;
}

StatusOr<UnsealProgress> RootCustody::Submit(const SecretBytes& share_text) {
  if (dev_) return Status::FailedPrecondition("keyd runs in dev mode: nothing to unseal");
  if (!initialized())
    return Status::FailedPrecondition("keyd is not initialised: run toani operator init");
  if (!sealed()) return Progress();
  TOANI_ASSIGN_OR_RETURN(crypto::ShamirShare s, Decode(share_text));
  for (const auto& p : pending_) {
    if (p.x == s.x) return Status::InvalidArgument("this share was already submitted");
  }
  pending_.push_back(std::move(s));
  if (static_cast<int>(pending_.size()) < threshold_) return Progress();
  auto l0 = Reconstruct(pending_);
  pending_.clear();
  if (!l0.ok()) {
    return Status::PermissionDenied(l0.status().message() + "; unseal progress was reset");
  }
  root_ = std::move(l0).value();
  return Progress();
}

StatusOr<std::vector<SecretBytes>> RootCustody::Rekey(const std::vector<SecretBytes>& current,
                                                      int shares, int threshold) {
  if (dev_) return Status::FailedPrecondition("keyd runs in dev mode: nothing to rekey");
  if (!initialized()) return Status::FailedPrecondition("keyd is not initialised");
  if (threshold < 1 || shares < threshold || shares > 255) {
    return Status::InvalidArgument("need 1 <= threshold <= shares <= 255");
  }
  std::vector<crypto::ShamirShare> parts;
  for (const auto& t : current) {
    TOANI_ASSIGN_OR_RETURN(crypto::ShamirShare s, Decode(t));
    for (const auto& p : parts) {
      if (p.x == s.x) return Status::InvalidArgument("a share was given twice");
    }
    parts.push_back(std::move(s));
  }
  if (static_cast<int>(parts.size()) < threshold_) {
    return Status::InvalidArgument("rekey needs " + std::to_string(threshold_) + " current shares");
  }
  TOANI_ASSIGN_OR_RETURN(SecretBytes l0, Reconstruct(parts));
  return SplitAndPersist(l0, shares, threshold);
}

}  // namespace toani::keyd
