#include "audit/note.h"

#include <sodium.h>

#include <charconv>
#include <vector>

#include "common/encoding.h"
#include "crypto/hash.h"

namespace toani::audit {
namespace {

constexpr std::string_view kDash = "\xE2\x80\x94 ";  // U+2014 EM DASH, space
constexpr size_t kMaxNote = 1 << 20;
constexpr int kMaxSignatures = 64;

bool ValidKeyName(std::string_view n) {
  if (n.empty()) return false;
  for (unsigned char c : n) {
    if (c <= 0x20 || c == '+') return false;
  }
  return true;
}

StatusOr<uint64_t> ParseDecimal(std::string_view s) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return Status::InvalidArgument("bad decimal");
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return Status::InvalidArgument("bad decimal");
  return v;
}

}  // namespace

uint32_t Ed25519KeyId(std::string_view name, const std::array<uint8_t, 32>& public_key) {
  std::string buf(name);
  buf.push_back('\n');
  buf.push_back('\x01');
  buf.append(reinterpret_cast<const char*>(public_key.data()), public_key.size());
  auto d = crypto::Sha256(AsBytes(buf));
  return (uint32_t{d[0]} << 24) | (uint32_t{d[1]} << 16) | (uint32_t{d[2]} << 8) | d[3];
}

StatusOr<VerifierKey> ParseVerifierKey(std::string_view vkey) {
  size_t p1 = vkey.find('+');
  size_t p2 = p1 == std::string_view::npos ? p1 : vkey.find('+', p1 + 1);
  // The key material is base64, which may itself contain '+': split at the first two.
  if (p2 == std::string_view::npos) {
    return Status::InvalidArgument("verifier key: want <name>+<hex id>+<base64 key>");
  }
  VerifierKey k;
  k.name = std::string(vkey.substr(0, p1));
  if (!ValidKeyName(k.name)) return Status::InvalidArgument("verifier key: bad key name");
  auto id = HexDecode(vkey.substr(p1 + 1, p2 - p1 - 1));
  if (!id.ok() || id->size() != 4) return Status::InvalidArgument("verifier key: bad key id");
  auto material = Base64Decode(vkey.substr(p2 + 1));
  if (!material.ok() || material->size() != 33 || (*material)[0] != 0x01) {
    return Status::InvalidArgument("verifier key: not an Ed25519 (type 0x01) key");
  }
  std::copy(material->begin() + 1, material->end(), k.public_key.begin());
  k.key_id = (uint32_t{(*id)[0]} << 24) | (uint32_t{(*id)[1]} << 16) | (uint32_t{(*id)[2]} << 8) |
             (*id)[3];
  if (k.key_id != Ed25519KeyId(k.name, k.public_key)) {
    return Status::InvalidArgument("verifier key: key id does not match name and key");
  }
  return k;
}

std::string FormatVerifierKey(const VerifierKey& k) {
  uint8_t id[4] = {static_cast<uint8_t>(k.key_id >> 24), static_cast<uint8_t>(k.key_id >> 16),
                   static_cast<uint8_t>(k.key_id >> 8), static_cast<uint8_t>(k.key_id)};
  std::vector<uint8_t> m{0x01};
  m.insert(m.end(), k.public_key.begin(), k.public_key.end());
  return k.name + "+" + HexEncode(id) + "+" + Base64Encode(m);
}

StatusOr<std::string> VerifyNote(std::string_view note, const VerifierKey& key) {
  if (note.size() > kMaxNote) return Status::InvalidArgument("note: too large");
  for (unsigned char c : note) {
    if (c < 0x20 && c != '\n') return Status::InvalidArgument("note: control character");
  }
  // The text is separated from the signatures by the last empty line.
  if (note.empty() || note.back() != '\n') return Status::InvalidArgument("note: no final newline");
  size_t sep = note.rfind("\n\n");
  if (sep == std::string_view::npos) return Status::InvalidArgument("note: no signatures");
  std::string_view text = note.substr(0, sep + 1);
  std::string_view sigs = note.substr(sep + 2);
  bool verified = false;
  int count = 0;
  while (!sigs.empty()) {
    size_t nl = sigs.find('\n');
    std::string_view line = sigs.substr(0, nl);
    sigs.remove_prefix(nl + 1);
    if (++count > kMaxSignatures) return Status::InvalidArgument("note: too many signatures");
    if (line.substr(0, kDash.size()) != kDash)
      return Status::InvalidArgument("note: bad signature line");
    line.remove_prefix(kDash.size());
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos) return Status::InvalidArgument("note: bad signature line");
    std::string_view name = line.substr(0, sp);
    if (!ValidKeyName(name)) return Status::InvalidArgument("note: bad key name");
    auto sig = Base64Decode(line.substr(sp + 1));
    if (!sig.ok() || sig->size() < 5)
      return Status::InvalidArgument("note: bad signature encoding");
    uint32_t id = (uint32_t{(*sig)[0]} << 24) | (uint32_t{(*sig)[1]} << 16) |
                  (uint32_t{(*sig)[2]} << 8) | (*sig)[3];
    if (name != key.name || id != key.key_id) continue;  // unknown key: ignored
    if (sig->size() != 4 + crypto_sign_BYTES ||
        crypto_sign_verify_detached(sig->data() + 4,
                                    reinterpret_cast<const unsigned char*>(text.data()),
                                    text.size(), key.public_key.data()) != 0) {
      return Status::PermissionDenied("note: signature by " + key.name + " does not verify");
    }
    verified = true;
  }
  if (!verified) return Status::PermissionDenied("note: not signed by " + key.name);
  return std::string(text);
}

std::string CheckpointText(const Checkpoint& c) {
  return c.origin + "\n" + std::to_string(c.size) + "\n" +
         Base64Encode(std::span<const uint8_t>(c.root.data(), c.root.size())) + "\n";
}

StatusOr<Checkpoint> ParseCheckpointText(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos)
      return Status::InvalidArgument("checkpoint: no final newline");
    lines.push_back(text.substr(0, nl));
    text.remove_prefix(nl + 1);
  }
  if (lines.size() < 3) return Status::InvalidArgument("checkpoint: fewer than three lines");
  for (auto l : lines) {
    if (l.empty()) return Status::InvalidArgument("checkpoint: empty line");
  }
  Checkpoint c;
  c.origin = std::string(lines[0]);
  auto size = ParseDecimal(lines[1]);
  if (!size.ok()) return Status::InvalidArgument("checkpoint: bad tree size");
  c.size = *size;
  auto root = Base64Decode(lines[2]);
  if (!root.ok() || root->size() != 32) return Status::InvalidArgument("checkpoint: bad root hash");
  std::copy(root->begin(), root->end(), c.root.begin());
  return c;
}

StatusOr<Checkpoint> VerifyCheckpoint(std::string_view note, const VerifierKey& key) {
  TOANI_ASSIGN_OR_RETURN(std::string text, VerifyNote(note, key));
  TOANI_ASSIGN_OR_RETURN(Checkpoint c, ParseCheckpointText(text));
  if (c.origin != key.name)
    return Status::PermissionDenied("checkpoint: origin is not the key name");
  return c;
}

}  // namespace toani::audit
