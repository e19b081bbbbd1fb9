#include "crypto/b64url.h"

#include <array>
#include <cstring>

namespace toani::crypto {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Two output characters per 12 input bits.
constexpr std::array<std::array<char, 2>, 4096> MakePairTable() {
  std::array<std::array<char, 2>, 4096> t{};
  for (int i = 0; i < 4096; ++i) t[i] = {kAlphabet[i >> 6], kAlphabet[i & 63]};
  return t;
}
constexpr auto kPairs = MakePairTable();

// One table per position in a 4-character group, each value already shifted into its
// place in the 24-bit group; an invalid character sets bit 31.
constexpr uint32_t kInvalid = 0x80000000u;
constexpr std::array<uint32_t, 256> MakeDecodeTable(int shift) {
  std::array<uint32_t, 256> t{};
  for (auto& v : t) v = kInvalid;
  for (int i = 0; i < 64; ++i) {
    t[static_cast<uint8_t>(kAlphabet[i])] = static_cast<uint32_t>(i) << shift;
  }
  return t;
}
constexpr auto kD0 = MakeDecodeTable(18);
constexpr auto kD1 = MakeDecodeTable(12);
constexpr auto kD2 = MakeDecodeTable(6);
constexpr auto kD3 = MakeDecodeTable(0);

void EncodeTo(std::span<const uint8_t> in, char* o) {
  const size_t full = in.size() / 3, rest = in.size() % 3;
  const uint8_t* p = in.data();
  for (size_t g = 0; g < full; ++g, p += 3, o += 4) {
    const uint32_t v = (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2];
    std::memcpy(o, kPairs[v >> 12].data(), 2);
    std::memcpy(o + 2, kPairs[v & 0xFFF].data(), 2);
  }
  if (rest > 0) {
    const uint32_t v = (uint32_t{p[0]} << 16) | (rest == 2 ? uint32_t{p[1]} << 8 : 0);
    o[0] = kAlphabet[(v >> 18) & 63];
    o[1] = kAlphabet[(v >> 12) & 63];
    if (rest == 2) o[2] = kAlphabet[(v >> 6) & 63];
  }
}

}  // namespace

std::string PublicBase64UrlEncode(std::span<const uint8_t> in) {
  std::string out;
  PublicBase64UrlEncodeAppend(in, &out);
  return out;
}

void PublicBase64UrlEncodeAppend(std::span<const uint8_t> in, std::string* out) {
  const size_t at = out->size();
  out->resize(at + PublicBase64UrlEncodedSize(in.size()));
  EncodeTo(in, out->data() + at);
}

bool PublicBase64UrlDecodeStrictInto(std::string_view in, std::span<uint8_t> out) {
  const size_t full = in.size() / 4, rest = in.size() % 4;
  if (rest == 1 || out.size() != PublicBase64UrlDecodedSize(in.size())) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(in.data());
  uint8_t* o = out.data();
  uint32_t bad = 0;
  for (size_t g = 0; g < full; ++g, p += 4, o += 3) {
    const uint32_t v = kD0[p[0]] | kD1[p[1]] | kD2[p[2]] | kD3[p[3]];
    bad |= v;
    o[0] = static_cast<uint8_t>(v >> 16);
    o[1] = static_cast<uint8_t>(v >> 8);
    o[2] = static_cast<uint8_t>(v);
  }
  if (rest > 0) {
    const uint32_t v = kD0[p[0]] | kD1[p[1]] | (rest == 3 ? kD2[p[2]] : 0);
    bad |= v;
    o[0] = static_cast<uint8_t>(v >> 16);
    if (rest == 3) o[1] = static_cast<uint8_t>(v >> 8);
    // Non-zero trailing bits would give a second spelling of the same bytes.
    const uint32_t trailing = rest == 2 ? (v & 0xFFFF) : (v & 0xFF);
    if (trailing != 0) return false;
  }
  return (bad & kInvalid) == 0;
}

std::optional<Bytes> PublicBase64UrlDecodeStrict(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  Bytes out(PublicBase64UrlDecodedSize(in.size()));
  if (!PublicBase64UrlDecodeStrictInto(in, out)) return std::nullopt;
  return out;
}

}  // namespace toani::crypto
