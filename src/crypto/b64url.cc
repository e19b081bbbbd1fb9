#include "crypto/b64url.h"

#include <array>

namespace toani::crypto {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<int8_t, 256> MakeDecodeTable() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(kAlphabet[i])] = static_cast<int8_t>(i);
  return t;
}
constexpr std::array<int8_t, 256> kDecode = MakeDecodeTable();

}  // namespace

std::string PublicBase64UrlEncode(std::span<const uint8_t> in) {
  const size_t full = in.size() / 3, rest = in.size() % 3;
  std::string out(full * 4 + (rest == 0 ? 0 : rest + 1), '\0');
  const uint8_t* p = in.data();
  char* o = out.data();
  for (size_t g = 0; g < full; ++g, p += 3, o += 4) {
    const uint32_t v = (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2];
    o[0] = kAlphabet[(v >> 18) & 63];
    o[1] = kAlphabet[(v >> 12) & 63];
    o[2] = kAlphabet[(v >> 6) & 63];
    o[3] = kAlphabet[v & 63];
  }
  if (rest > 0) {
    const uint32_t v = (uint32_t{p[0]} << 16) | (rest == 2 ? uint32_t{p[1]} << 8 : 0);
    o[0] = kAlphabet[(v >> 18) & 63];
    o[1] = kAlphabet[(v >> 12) & 63];
    if (rest == 2) o[2] = kAlphabet[(v >> 6) & 63];
  }
  return out;
}

std::optional<Bytes> PublicBase64UrlDecodeStrict(std::string_view in) {
  const size_t full = in.size() / 4, rest = in.size() % 4;
  if (rest == 1) return std::nullopt;
  Bytes out(full * 3 + (rest == 0 ? 0 : rest - 1));
  const auto* p = reinterpret_cast<const uint8_t*>(in.data());
  uint8_t* o = out.data();
  int bad = 0;
  for (size_t g = 0; g < full; ++g, p += 4, o += 3) {
    const int a = kDecode[p[0]], b = kDecode[p[1]], c = kDecode[p[2]], d = kDecode[p[3]];
    bad |= a | b | c | d;  // any -1 sets the sign bit
    const uint32_t v = (static_cast<uint32_t>(a & 63) << 18) |
                       (static_cast<uint32_t>(b & 63) << 12) |
                       (static_cast<uint32_t>(c & 63) << 6) | static_cast<uint32_t>(d & 63);
    o[0] = static_cast<uint8_t>(v >> 16);
    o[1] = static_cast<uint8_t>(v >> 8);
    o[2] = static_cast<uint8_t>(v);
  }
  if (rest > 0) {
    const int a = kDecode[p[0]], b = kDecode[p[1]], c = rest == 3 ? kDecode[p[2]] : 0;
    bad |= a | b | c;
    const uint32_t v = (static_cast<uint32_t>(a & 63) << 18) |
                       (static_cast<uint32_t>(b & 63) << 12) | (static_cast<uint32_t>(c & 63) << 6);
    o[0] = static_cast<uint8_t>(v >> 16);
    if (rest == 3) o[1] = static_cast<uint8_t>(v >> 8);
    // Non-zero trailing bits would give a second spelling of the same bytes.
    const uint32_t trailing = rest == 2 ? (v & 0xFFFF) : (v & 0xFF);
    if (trailing != 0) return std::nullopt;
  }
  if (bad < 0) return std::nullopt;
  return out;
}

}  // namespace toani::crypto
