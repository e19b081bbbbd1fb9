#include "common/jcs.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <set>
#include <vector>

namespace toani {
namespace {

// Decodes UTF-8 into UTF-16 code units (the order RFC 8785 sorts member names by).
// Returns false for malformed UTF-8: overlong forms, surrogates, values > U+10FFFF.
bool Utf8ToUtf16(std::string_view s, std::u16string* out) {
  out->clear();
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<uint8_t>(s[i]);
    uint32_t cp = 0;
    size_t len = 0;
    if (b0 < 0x80) {
      cp = b0;
      len = 1;
    } else if ((b0 & 0xE0) == 0xC0) {
      cp = b0 & 0x1Fu;
      len = 2;
    } else if ((b0 & 0xF0) == 0xE0) {
      cp = b0 & 0x0Fu;
      len = 3;
    } else if ((b0 & 0xF8) == 0xF0) {
      cp = b0 & 0x07u;
      len = 4;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto bk = static_cast<uint8_t>(s[i + k]);
      if ((bk & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (bk & 0x3Fu);
    }
    static constexpr uint32_t kMinForLen[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLen[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out->push_back(static_cast<char16_t>(0xD800 + (cp >> 10)));
      out->push_back(static_cast<char16_t>(0xDC00 + (cp & 0x3FF)));
    } else {
      out->push_back(static_cast<char16_t>(cp));
    }
    i += len;
  }
  return true;
}

bool IsAscii(std::string_view s) {
  for (char c : s) {
    if (static_cast<uint8_t>(c) >= 0x80) return false;
  }
  return true;
}

}  // namespace

Status AppendJsonString(std::string_view s, std::string* out) {
  if (!IsAscii(s)) {  // only non-ASCII text needs the full UTF-8 check
    std::u16string scratch;
    if (!Utf8ToUtf16(s, &scratch)) {
      return Status::InvalidArgument("jcs: string is not valid UTF-8");
    }
  }
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the pending run of characters copied as they are
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const char* esc = nullptr;
    switch (c) {
      case '"':
        esc = "\\\"";
        break;
      case '\\':
        esc = "\\\\";
        break;
      case '\b':
        esc = "\\b";
        break;
      case '\t':
        esc = "\\t";
        break;
      case '\n':
        esc = "\\n";
        break;
      case '\f':
        esc = "\\f";
        break;
      case '\r':
        esc = "\\r";
        break;
      default:
        if (static_cast<uint8_t>(c) >= 0x20) continue;
    }
    out->append(s.substr(run, i - run));
    run = i + 1;
    if (esc != nullptr) {
      out->append(esc);
    } else {
      const auto u = static_cast<uint8_t>(c);
      out->append("\\u00");
      out->push_back(kHex[u >> 4]);
      out->push_back(kHex[u & 0x0F]);
    }
  }
  out->append(s.substr(run));
  out->push_back('"');
  return Status::Ok();
}

namespace {

Status AppendNumber(double d, std::string* out) {
  if (!std::isfinite(d)) return Status::InvalidArgument("jcs: NaN and Infinity have no JSON form");
  out->append(FormatJsonNumber(d));
  return Status::Ok();
}

// Canonicalization recurses; untrusted input must not be able to exhaust the stack.
constexpr int kMaxDepth = 256;

Status Append(const nlohmann::json& v, int depth, std::string* out) {
  using T = nlohmann::json::value_t;
  if (depth > kMaxDepth) return Status::InvalidArgument("jcs: nesting too deep");
  switch (v.type()) {
    case T::null:
      out->append("null");
      return Status::Ok();
    case T::boolean:
      out->append(v.get<bool>() ? "true" : "false");
      return Status::Ok();
    case T::number_integer:
      return AppendNumber(static_cast<double>(v.get<int64_t>()), out);
    case T::number_unsigned:
      return AppendNumber(static_cast<double>(v.get<uint64_t>()), out);
    case T::number_float:
      return AppendNumber(v.get<double>(), out);
    case T::string:
      return AppendJsonString(v.get_ref<const std::string&>(), out);
    case T::array: {
      out->push_back('[');
      bool first = true;
      for (const auto& e : v) {
        if (!first) out->push_back(',');
        first = false;
        TOANI_RETURN_IF_ERROR(Append(e, depth + 1, out));
      }
      out->push_back(']');
      return Status::Ok();
    }
    case T::object: {
      // nlohmann's std::map orders keys by UTF-8 bytes; RFC 8785 wants UTF-16 code units
      // (they differ for U+E000..U+FFFF versus supplementary-plane characters). When
      // every key is ASCII the two orders agree and the map's order is kept as it is.
      struct Member {
        std::u16string sort_key;  // filled only when some key is not ASCII
        const std::string* name;
        const nlohmann::json* value;
      };
      std::vector<Member> members;
      members.reserve(v.size());
      bool all_ascii = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        members.push_back(Member{{}, &it.key(), &it.value()});
        all_ascii = all_ascii && IsAscii(it.key());
      }
      if (!all_ascii) {
        for (auto& m : members) {
          if (!Utf8ToUtf16(*m.name, &m.sort_key)) {
            return Status::InvalidArgument("jcs: member name is not valid UTF-8");
          }
        }
        std::sort(members.begin(), members.end(),
                  [](const Member& a, const Member& b) { return a.sort_key < b.sort_key; });
      }
      out->push_back('{');
      bool first = true;
      for (const auto& m : members) {
        if (!first) out->push_back(',');
        first = false;
        TOANI_RETURN_IF_ERROR(AppendJsonString(*m.name, out));
        out->push_back(':');
        TOANI_RETURN_IF_ERROR(Append(*m.value, depth + 1, out));
      }
      out->push_back('}');
      return Status::Ok();
    }
    case T::binary:
      return Status::InvalidArgument("jcs: binary values have no JSON form");
    case T::discarded:
      return Status::InvalidArgument("jcs: discarded value");
  }
  return Status::InvalidArgument("jcs: unknown value type");
}

}  // namespace

std::string FormatJsonNumber(double d) {
  TOANI_CHECK(std::isfinite(d));
  if (d == 0) return "0";  // covers -0, which ECMAScript prints as "0"
  // Shortest round-trip digits in scientific form, e.g. "-3.333333333333333e+08".
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  TOANI_CHECK(res.ec == std::errc());
  const std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  const size_t e_pos = sci.find('e');
  TOANI_CHECK(e_pos != std::string_view::npos);
  std::string digits;
  bool negative = false;
  for (char c : sci.substr(0, e_pos)) {
    if (c == '-') {
      negative = true;
    } else if (c != '.') {
      digits.push_back(c);
    }
  }
  int exp10 = 0;
  std::string_view exp_text = sci.substr(e_pos + 1);
  if (!exp_text.empty() && exp_text.front() == '+') exp_text.remove_prefix(1);
  const auto er = std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exp10);
  TOANI_CHECK(er.ec == std::errc());

  // ECMAScript Number::toString: value = 0.digits * 10^n, k = number of digits.
  const int k = static_cast<int>(digits.size());
  const int n = exp10 + 1;
  std::string out = negative ? "-" : "";
  if (k <= n && n <= 21) {
    out += digits;
    out.append(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, static_cast<size_t>(n));
    out.push_back('.');
    out += digits.substr(static_cast<size_t>(n));
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-n), '0');
    out += digits;
  } else {
    out.push_back(digits[0]);
    if (k > 1) {
      out.push_back('.');
      out += digits.substr(1);
    }
    out.push_back('e');
    out.push_back(n - 1 >= 0 ? '+' : '-');
    out += std::to_string(std::abs(n - 1));
  }
  return out;
}

StatusOr<std::string> TryCanonicalizeJson(const nlohmann::json& v) {
  std::string out;
  TOANI_RETURN_IF_ERROR(Append(v, 0, &out));
  return out;
}

std::string CanonicalizeJson(const nlohmann::json& v) {
  auto out = TryCanonicalizeJson(v);
  TOANI_CHECK(out.ok());
  return std::move(out).value();
}

StatusOr<std::string> CanonicalizeJsonText(std::string_view json_text) {
  // Duplicate member names are detected with the parser callback: one set of seen
  // names per open object (arrays never receive `key` events, so the innermost open
  // object is always the top of the stack).
  std::vector<std::set<std::string>> seen;
  bool duplicate = false;
  auto on_event = [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) {
      seen.emplace_back();
    } else if (event == E::object_end) {
      if (!seen.empty()) seen.pop_back();
    } else if (event == E::key && !seen.empty()) {
      if (!seen.back().insert(parsed.get<std::string>()).second) duplicate = true;
    }
    return true;
  };
  nlohmann::json v;
  try {
    v = nlohmann::json::parse(json_text.begin(), json_text.end(), on_event,
                              /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(std::string("jcs: invalid JSON: ") + e.what());
  }
  if (duplicate) return Status::InvalidArgument("jcs: duplicate member name");
  return TryCanonicalizeJson(v);
}

}  // namespace toani
