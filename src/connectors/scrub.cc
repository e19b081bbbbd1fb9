#include "connectors/scrub.h"

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "common/encoding.h"

namespace toani {
namespace {

// Derived forms of a secret, wiped when the holder goes away.
class Needles {
 public:
  Needles() = default;
  Needles(const Needles&) = delete;
  Needles& operator=(const Needles&) = delete;
  ~Needles() {
    for (std::string& s : list_) SecureWipe(s.data(), s.size());
  }
  void Add(std::string s) {
    if (s.empty()) return;
    for (const std::string& have : list_) {
      if (have == s) {
        SecureWipe(s.data(), s.size());
        return;
      }
    }
    list_.push_back(std::move(s));
  }
  const std::vector<std::string>& list() const { return list_; }

 private:
  std::vector<std::string> list_;
};

std::string StripPadding(std::string s) {
  while (!s.empty() && s.back() == '=') s.pop_back();
  return s;
}

bool IsUnreserved(uint8_t c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

std::string PercentEncode(std::span<const uint8_t> b, bool upper, bool plus_for_space) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (uint8_t c : b) {
    if (IsUnreserved(c)) {
      out.push_back(static_cast<char>(c));
    } else if (plus_for_space && c == ' ') {
      out.push_back('+');
    } else {
      out.push_back('%');
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 0xF]);
    }
  }
  return out;
}

std::string JsonEscape(std::span<const uint8_t> b) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t c : b) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out;
}

std::string ToUpper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

// The characters of base64(shift zero bytes ‖ secret) that depend only on secret bytes:
// what the secret looks like inside a longer base64 text at that byte alignment.
void AddShiftedBase64(Needles& needles, std::span<const uint8_t> secret) {
  constexpr size_t kMinCore = 8;  // shorter cores would redact innocent text
  for (size_t shift = 0; shift <= 2; ++shift) {
    SecretBytes buf(shift + secret.size());
    std::copy(secret.begin(), secret.end(), buf.UnsafeMutableData() + shift);
    std::string std64 = Base64Encode(buf.UnsafeBytes());
    std::string url64 = Base64UrlEncode(buf.UnsafeBytes());
    const size_t first = (8 * shift + 5) / 6;               // ceil(8k/6)
    const size_t last = (8 * (shift + secret.size())) / 6;  // floor(8(k+n)/6)
    if (last > first && last - first >= kMinCore) {
      needles.Add(std64.substr(first, last - first));
      needles.Add(url64.substr(first, last - first));
    }
    SecureWipe(std64.data(), std64.size());
    SecureWipe(url64.data(), url64.size());
  }
}

}  // namespace

std::string ScrubSecret(std::string_view text, const SecretBytes& secret) {
  if (secret.empty() || text.empty()) return std::string(text);
  const std::span<const uint8_t> raw = secret.UnsafeBytes();

  Needles needles;
  needles.Add(std::string(secret.UnsafeView()));
  std::string b64 = Base64Encode(raw);
  needles.Add(b64);
  needles.Add(StripPadding(std::move(b64)));
  std::string b64url = Base64UrlEncode(raw);
  needles.Add(b64url);
  b64url.append((4 - b64url.size() % 4) % 4, '=');
  needles.Add(std::move(b64url));
  AddShiftedBase64(needles, raw);
  needles.Add(PercentEncode(raw, /*upper=*/true, /*plus_for_space=*/false));
  needles.Add(PercentEncode(raw, /*upper=*/false, /*plus_for_space=*/false));
  needles.Add(PercentEncode(raw, /*upper=*/true, /*plus_for_space=*/true));
  needles.Add(PercentEncode(raw, /*upper=*/false, /*plus_for_space=*/true));
  std::string hex = HexEncode(raw);
  needles.Add(ToUpper(hex));
  needles.Add(std::move(hex));
  needles.Add(JsonEscape(raw));

  // Mark every byte covered by any occurrence, then emit runs of marked bytes as one
  // marker. This handles overlapping needles without caring about their order.
  std::vector<bool> covered(text.size(), false);
  for (const std::string& needle : needles.list()) {
    for (size_t pos = text.find(needle); pos != std::string_view::npos;
         pos = text.find(needle, pos + 1)) {
      std::fill(covered.begin() + static_cast<std::ptrdiff_t>(pos),
                covered.begin() + static_cast<std::ptrdiff_t>(pos + needle.size()), true);
    }
  }
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (!covered[i]) {
      out.push_back(text[i++]);
      continue;
    }
    out += kRedacted;
    while (i < text.size() && covered[i]) ++i;
  }
  return out;
}

}  // namespace toani

namespace toani {

std::string MakeValidUtf8(std::string_view text) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(text.size());
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  for (size_t i = 0; i < text.size();) {
    const uint8_t c = byte(i);
    size_t len = 0;
    uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
    if (c < 0x80) {
      len = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // no overlongs
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // no overlongs
      if (c == 0xF4) hi = 0x8F;  // <= U+10FFFF
    }
    bool valid = len > 0 && i + len <= text.size();
    for (size_t k = 1; valid && k < len; ++k) {
      const uint8_t cc = byte(i + k);
      valid = (k == 1) ? (cc >= lo && cc <= hi) : (cc >= 0x80 && cc <= 0xBF);
    }
    if (valid) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      out += kReplacement;
      ++i;
    }
  }
  return out;
}

}  // namespace toani
