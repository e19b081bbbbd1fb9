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

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// UTF-8 bytes of code point `cp` into out; returns the length (0 if invalid).
size_t Utf8(uint32_t cp, uint8_t out[4]) {
  if (cp < 0x80) {
    out[0] = static_cast<uint8_t>(cp);
    return 1;
  }
  if (cp < 0x800) {
    out[0] = static_cast<uint8_t>(0xC0 | (cp >> 6));
    out[1] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    out[0] = static_cast<uint8_t>(0xE0 | (cp >> 12));
    out[1] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
    out[2] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
    return 3;
  }
  if (cp > 0x10FFFF) return 0;
  out[0] = static_cast<uint8_t>(0xF0 | (cp >> 18));
  out[1] = static_cast<uint8_t>(0x80 | ((cp >> 12) & 0x3F));
  out[2] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
  out[3] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
  return 4;
}

// Reads 4 hex digits at text[q..q+4).
bool Hex4(std::string_view t, size_t q, uint32_t& v) {
  if (q + 4 > t.size()) return false;
  v = 0;
  for (size_t i = 0; i < 4; ++i) {
    const int h = HexVal(t[q + i]);
    if (h < 0) return false;
    v = (v << 4) | static_cast<uint32_t>(h);
  }
  return true;
}

// One step of a decoding match: the text at q, read as a literal byte, a %XX escape,
// '+' for a space, a JSON backslash escape (incl. \uXXXX and surrogate pairs) or an
// HTML character reference, must equal the secret's next byte(s) from k. Advances q, k.
bool DecodeStep(std::string_view t, size_t& q, std::span<const uint8_t> s, size_t& k) {
  const auto c = static_cast<uint8_t>(t[q]);
  // An escape is tried before the literal byte: "&amp;" must decode to "&", not match
  // a literal "&" and then fail on "amp;".
  auto literal = [&] {
    if (c != s[k]) return false;
    ++q;
    ++k;
    return true;
  };
  uint8_t buf[4];
  size_t len = 0, used = 0;
  if (c == '+' && s[k] == ' ') {
    buf[0] = ' ';
    len = used = 1;
  } else if (c == '%' && q + 2 < t.size() && HexVal(t[q + 1]) >= 0 && HexVal(t[q + 2]) >= 0) {
    buf[0] = static_cast<uint8_t>(HexVal(t[q + 1]) * 16 + HexVal(t[q + 2]));
    len = 1;
    used = 3;
  } else if (c == '\\' && q + 1 < t.size()) {
    const char e = t[q + 1];
    static constexpr std::string_view kFrom = "\"\\/nrtbf", kTo = "\"\\/\n\r\t\b\f";
    if (size_t i = kFrom.find(e); i != std::string_view::npos) {
      buf[0] = static_cast<uint8_t>(kTo[i]);
      len = 1;
      used = 2;
    } else if (e == 'u') {
      uint32_t v = 0, lo = 0;
      if (!Hex4(t, q + 2, v)) return literal();
      used = 6;
      if (v >= 0xD800 && v <= 0xDBFF && q + 12 <= t.size() && t[q + 6] == '\\' && t[q + 7] == 'u' &&
          Hex4(t, q + 8, lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
        v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
        used = 12;
      }
      len = Utf8(v, buf);
    }
  } else if (c == '&') {
    const size_t semi = t.substr(q, 12).find(';');
    if (semi == std::string_view::npos) return literal();
    const std::string_view ent = t.substr(q + 1, semi - 1);
    uint32_t v = 0;
    if (ent == "amp")
      v = '&';
    else if (ent == "lt")
      v = '<';
    else if (ent == "gt")
      v = '>';
    else if (ent == "quot")
      v = '"';
    else if (ent == "apos")
      v = '\'';
    else if (ent.size() >= 2 && ent[0] == '#') {
      const bool hex = ent[1] == 'x' || ent[1] == 'X';
      for (char d : ent.substr(hex ? 2 : 1)) {
        const int h = hex ? HexVal(d) : (d >= '0' && d <= '9' ? d - '0' : -1);
        if (h < 0 || v > 0x10FFFF) return literal();
        v = v * (hex ? 16 : 10) + static_cast<uint32_t>(h);
      }
    }
    if (v == 0) return literal();
    len = Utf8(v, buf);
    used = semi + 1;
  }
  if (len == 0 || k + len > s.size()) return literal();
  for (size_t i = 0; i < len; ++i) {
    if (buf[i] != s[k + i]) return literal();
  }
  q += used;
  k += len;
  return true;
}

// Marks every span of `text` that decodes (percent, form, JSON or HTML escapes, mixed
// freely) to exactly the secret.
void MarkDecodedMatches(std::string_view text, std::span<const uint8_t> secret,
                        std::vector<bool>& covered) {
  if (secret.size() < 4) return;  // tiny secrets: exact forms only
  for (size_t p = 0; p < text.size(); ++p) {
    const char c = text[p];
    if (static_cast<uint8_t>(c) != secret[0] && c != '%' && c != '\\' && c != '&' && c != '+') {
      continue;
    }
    size_t q = p, k = 0;
    while (k < secret.size() && q < text.size() && DecodeStep(text, q, secret, k)) {
    }
    if (k == secret.size()) {
      std::fill(covered.begin() + static_cast<std::ptrdiff_t>(p),
                covered.begin() + static_cast<std::ptrdiff_t>(q), true);
    }
  }
}

}  // namespace

struct SecretScrubber::Forms {
  SecretBytes raw;
  Needles needles;
};

SecretScrubber::SecretScrubber(const SecretBytes& secret) : forms_(std::make_unique<Forms>()) {
  if (secret.empty()) return;
  forms_->raw = SecretBytes::Copy(secret.UnsafeView());
  const std::span<const uint8_t> raw = secret.UnsafeBytes();
  Needles& needles = forms_->needles;
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
  std::string json1 = JsonEscape(raw);
  needles.Add(JsonEscape(AsBytes(json1)));  // escaped twice (JSON inside a JSON string)
  needles.Add(std::move(json1));
}

SecretScrubber::~SecretScrubber() = default;
SecretScrubber::SecretScrubber(SecretScrubber&&) noexcept = default;
SecretScrubber& SecretScrubber::operator=(SecretScrubber&&) noexcept = default;

std::string SecretScrubber::Scrub(std::string_view text) const {
  if (!forms_ || forms_->raw.empty() || text.empty()) return std::string(text);
  // Mark every byte covered by any occurrence, then emit runs of marked bytes as one
  // marker. This handles overlapping needles without caring about their order.
  std::vector<bool> covered(text.size(), false);
  for (const std::string& needle : forms_->needles.list()) {
    for (size_t pos = text.find(needle); pos != std::string_view::npos;
         pos = text.find(needle, pos + 1)) {
      std::fill(covered.begin() + static_cast<std::ptrdiff_t>(pos),
                covered.begin() + static_cast<std::ptrdiff_t>(pos + needle.size()), true);
    }
  }
  MarkDecodedMatches(text, forms_->raw.UnsafeBytes(), covered);
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

std::string ScrubSecret(std::string_view text, const SecretBytes& secret) {
  if (secret.empty() || text.empty()) return std::string(text);
  return SecretScrubber(secret).Scrub(text);
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
