#include "common/encoding.h"

#include <sodium.h>

namespace toani {

std::string HexEncode(std::span<const uint8_t> b) {
  std::string out(b.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), b.data(), b.size());
  out.pop_back();
  return out;
}

StatusOr<Bytes> HexDecode(std::string_view s) {
  if (s.size() % 2 != 0) return Status::InvalidArgument("hex: odd length");
  Bytes out(s.size() / 2);
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(out.data(), out.size(), s.data(), s.size(), nullptr, &len, &end) != 0 ||
      len != out.size() || end != s.data() + s.size()) {
    return Status::InvalidArgument("hex: invalid character");
  }
  return out;
}

namespace {
std::string B64Encode(std::span<const uint8_t> b, int variant) {
  std::string out(sodium_base64_ENCODED_LEN(b.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), b.data(), b.size(), variant);
  out.resize(std::char_traits<char>::length(out.c_str()));
  return out;
}

StatusOr<Bytes> B64DecodeStrict(std::string_view s, int variant, const char* what) {
  Bytes out(s.size() * 3 / 4 + 3);
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), s.data(), s.size(), nullptr, &len, &end, variant) !=
          0 ||
      end != s.data() + s.size()) {
    return Status::InvalidArgument(std::string(what) + ": invalid encoding");
  }
  out.resize(len);
  // Canonical form only: re-encoding must give the input back (rejects non-zero
  // trailing bits, which would make two strings decode to one value).
  if (B64Encode(out, variant) != s)
    return Status::InvalidArgument(std::string(what) + ": non-canonical encoding");
  return out;
}
}  // namespace

std::string Base64UrlEncode(std::span<const uint8_t> b) {
  return B64Encode(b, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}
StatusOr<Bytes> Base64UrlDecodeStrict(std::string_view s) {
  return B64DecodeStrict(s, sodium_base64_VARIANT_URLSAFE_NO_PADDING, "base64url");
}
std::string Base64Encode(std::span<const uint8_t> b) {
  return B64Encode(b, sodium_base64_VARIANT_ORIGINAL);
}
StatusOr<Bytes> Base64Decode(std::string_view s) {
  return B64DecodeStrict(s, sodium_base64_VARIANT_ORIGINAL, "base64");
}

}  // namespace toani
