#include "audit/sign_frame.h"

#include <algorithm>
#include <cstring>

#include "common/jcs.h"
#include "common/wire.h"

namespace toani::audit {
namespace {

constexpr size_t kMaxFrame = 1 << 20;  // keyd::kMaxFrameBytes (docs/formats.md §1)

using wire::Put16;
using wire::Put32;
using wire::Reader;

// A JSON walker. Strict: accepts only text it can prove is RFC 8785 canonical without
// building a tree (ASCII strings with canonical escapes, integers up to 15 digits, no
// whitespace, member names strictly increasing); returns false ("cannot decide") on
// anything else. Lenient: for text already known to be canonical, only finds structure.
class Walker {
 public:
  Walker(std::string_view s, bool strict) : s_(s), strict_(strict) {}

  bool TopObject(std::vector<TopMember>* members) {
    if (!Object(0, members)) return false;
    return i_ == s_.size();
  }
  // Decodes the string that starts at `at` (a '"').
  bool StringAt(size_t at, std::string* out) {
    i_ = at;
    return String(out);
  }

 private:
  bool Peek(char c) const { return i_ < s_.size() && s_[i_] == c; }

  bool Value(int depth) {
    if (i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '{') return Object(depth + 1, nullptr);
    if (c == '[') return Array(depth + 1);
    if (c == '"') return String(nullptr);
    if (c == 't') return Literal("true");
    if (c == 'f') return Literal("false");
    if (c == 'n') return Literal("null");
    return Number();
  }

  bool Literal(std::string_view lit) {
    if (s_.substr(i_, lit.size()) != lit) return false;
    i_ += lit.size();
    return true;
  }

  bool Number() {
    const size_t start = i_;
    if (!strict_) {
      while (i_ < s_.size() && std::strchr("-+.eE0123456789", s_[i_]) != nullptr && s_[i_] != 0)
        ++i_;
      return i_ > start;
    }
    if (Peek('-')) ++i_;
    const size_t digits = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    const size_t n = i_ - digits;
    if (n == 0 || n > 15) return false;
    if (s_[digits] == '0' && (n > 1 || digits > start)) return false;  // leading zero, "-0"
    return !(Peek('.') || Peek('e') || Peek('E'));
  }

  static int Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;  // uppercase hex is not canonical
  }

  // Decodes into `out` (nullptr: only checks).
  bool String(std::string* out) {
    if (!Peek('"')) return false;
    ++i_;
    while (i_ < s_.size()) {
      // A run of plain characters at once.
      size_t run = i_;
      while (run < s_.size()) {
        const unsigned char c = static_cast<unsigned char>(s_[run]);
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        ++run;
      }
      if (out != nullptr) out->append(s_.data() + i_, run - i_);
      i_ = run;
      if (i_ >= s_.size()) return false;
      const unsigned char c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return true;
      if (c < 0x20) return false;
      if (c >= 0x80) {
        if (strict_) return false;
        if (out != nullptr) out->push_back(static_cast<char>(c));
        continue;
      }
      // c == '\\'
      if (i_ >= s_.size()) return false;
      const char e = s_[i_++];
      char d;
      switch (e) {
        case '"':
        case '\\':
          d = e;
          break;
        case 'b':
          d = '\b';
          break;
        case 'f':
          d = '\f';
          break;
        case 'n':
          d = '\n';
          break;
        case 'r':
          d = '\r';
          break;
        case 't':
          d = '\t';
          break;
        case 'u': {
          // Canonical text escapes only the other controls, as \u00xx in lowercase.
          if (s_.size() - i_ < 4 || s_[i_] != '0' || s_[i_ + 1] != '0') return false;
          const int hi = Hex(s_[i_ + 2]), lo = Hex(s_[i_ + 3]);
          if (hi < 0 || lo < 0) return false;
          const int v = hi * 16 + lo;
          if (v >= 0x20 || v == 0x08 || v == 0x09 || v == 0x0a || v == 0x0c || v == 0x0d)
            return false;
          d = static_cast<char>(v);
          i_ += 4;
          break;
        }
        default:
          return false;
      }
      if (out != nullptr) out->push_back(d);
    }
    return false;
  }

  bool Array(int depth) {
    if (depth > kMaxDepth) return false;
    ++i_;  // '['
    if (Peek(']')) {
      ++i_;
      return true;
    }
    for (;;) {
      if (!Value(depth)) return false;
      if (Peek(']')) {
        ++i_;
        return true;
      }
      if (!Peek(',')) return false;
      ++i_;
    }
  }

  bool Object(int depth, std::vector<TopMember>* members) {
    if (depth > kMaxDepth || !Peek('{')) return false;
    ++i_;
    if (Peek('}')) {
      ++i_;
      return true;
    }
    std::string prev;
    bool first = true;
    for (;;) {
      TopMember m;
      m.begin = i_;
      if (!String(&m.name)) return false;
      // Strict: names strictly increasing. They are ASCII here, where byte order is the
      // UTF-16 order RFC 8785 sorts by; strictly increasing also rules out duplicates.
      if (strict_ && !first && !(prev < m.name)) return false;
      if (!Peek(':')) return false;
      ++i_;
      m.value_begin = i_;
      if (!Value(depth)) return false;
      m.end = i_;
      first = false;
      if (members != nullptr) {
        prev = m.name;
        members->push_back(std::move(m));
      } else {
        prev = std::move(m.name);
      }
      if (Peek('}')) {
        ++i_;
        return true;
      }
      if (!Peek(',')) return false;
      ++i_;
    }
  }

  static constexpr int kMaxDepth = 64;
  std::string_view s_;
  bool strict_;
  size_t i_ = 0;
};

}  // namespace

size_t SignItemEncodedSize(const SignItem& item) {
  return 1 + (item.user ? 2 + item.user->size() : 0) + 4 + item.body.size();
}

std::string EncodeSignBatchRequest(const std::optional<Hash>& prev,
                                   const std::vector<SignItem>& items) {
  size_t n = 1 + 32 + 2;
  for (const auto& it : items) n += SignItemEncodedSize(it);
  std::string out;
  out.reserve(n);
  out.push_back(static_cast<char>(prev ? kSignBatchRequest : kSignBatchNextRequest));
  if (prev) out.append(reinterpret_cast<const char*>(prev->data()), prev->size());
  Put16(out, items.size());
  for (const auto& it : items) {
    out.push_back(it.user ? 1 : 0);
    if (it.user) {
      Put16(out, it.user->size());
      out += *it.user;
    }
    Put32(out, it.body.size());
    out += it.body;
  }
  return out;
}

StatusOr<SignBatchRequestView> DecodeSignBatchRequest(std::string_view frame) {
  const auto bad = [](const std::string& why) {
    return Status::InvalidArgument("audit.sign_batch: " + why);
  };
  Reader r(frame);
  uint8_t type = 0;
  if (!r.U8(&type) || (type != kSignBatchRequest && type != kSignBatchNextRequest))
    return bad("not a sign_batch frame");
  SignBatchRequestView req;
  size_t count = 0;
  if (type == kSignBatchRequest) {
    std::string_view prev;
    if (!r.Take(32, &prev)) return bad("truncated header");
    req.prev.emplace();
    std::memcpy(req.prev->data(), prev.data(), 32);
  }
  if (!r.U16(&count)) return bad("truncated header");
  if (count == 0 || count > kSignBatchMaxItems) return bad("1 to 1024 entries required");
  req.items.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    SignItemView item;
    uint8_t flags = 0;
    if (!r.U8(&flags) || flags > 1) return bad("item " + std::to_string(i) + ": bad flags");
    if (flags == 1) {
      size_t u = 0;
      std::string_view user;
      if (!r.U16(&u) || u > kSignBatchMaxUser || !r.Take(u, &user))
        return bad("item " + std::to_string(i) + ": bad user");
      item.user = user;
    }
    size_t b = 0;
    if (!r.U32(&b) || b < 2 || b > kMaxFrame || !r.Take(b, &item.body))
      return bad("item " + std::to_string(i) + ": bad body length");
    req.items.push_back(item);
  }
  if (!r.AtEnd()) return bad("trailing bytes");
  return req;
}

std::string EncodeSignBatchReply(const std::vector<std::string>& entries) {
  size_t n = 3;
  for (const auto& e : entries) n += 4 + e.size();
  std::string out;
  out.reserve(n);
  out.push_back(static_cast<char>(kSignBatchReply));
  Put16(out, entries.size());
  for (const auto& e : entries) {
    Put32(out, e.size());
    out += e;
  }
  return out;
}

StatusOr<std::vector<std::string>> DecodeSignBatchReply(std::string_view frame, size_t expected) {
  const Status bad = Status::InvalidArgument("audit.sign_batch: malformed reply");
  Reader r(frame);
  uint8_t type = 0;
  size_t count = 0;
  if (!r.U8(&type) || type != kSignBatchReply || !r.U16(&count) || count != expected) return bad;
  std::vector<std::string> out;
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    size_t n = 0;
    std::string_view e;
    if (!r.U32(&n) || !r.Take(n, &e)) return bad;
    out.emplace_back(e);
  }
  if (!r.AtEnd()) return bad;
  return out;
}

StatusOr<std::vector<TopMember>> ScanCanonicalObject(std::string_view body) {
  std::vector<TopMember> members;
  if (Walker(body, /*strict=*/true).TopObject(&members)) return members;
  // Not decidable in one pass (non-ASCII text, fractions, big numbers, odd escapes) or
  // not canonical: let the full RFC 8785 implementation decide.
  auto canonical = CanonicalizeJsonText(body);
  if (!canonical.ok() || *canonical != body)
    return Status::InvalidArgument("entry body is not RFC 8785 canonical JSON");
  members.clear();
  if (!Walker(body, /*strict=*/false).TopObject(&members) || body.empty() || body[0] != '{')
    return Status::InvalidArgument("entry body is not a JSON object");
  return members;
}

bool DecodeJsonStringAt(std::string_view body, size_t at, std::string* out) {
  return Walker(body, /*strict=*/false).StringAt(at, out);
}

std::string InsertMembers(std::string_view body, const std::vector<TopMember>& members,
                          std::vector<std::pair<std::string, std::string>> extra) {
  std::sort(extra.begin(), extra.end());
  std::string out;
  size_t n = body.size() + extra.size();
  for (const auto& e : extra) n += e.second.size();
  out.reserve(n);
  out.push_back('{');
  size_t m = 0, x = 0;
  bool first = true;
  while (m < members.size() || x < extra.size()) {
    if (!first) out.push_back(',');
    first = false;
    // An ASCII name against any name: byte order is the RFC 8785 (UTF-16) order.
    if (x < extra.size() && (m == members.size() || extra[x].first < members[m].name)) {
      out += extra[x++].second;
    } else {
      out.append(body.substr(members[m].begin, members[m].end - members[m].begin));
      ++m;
    }
  }
  out.push_back('}');
  return out;
}

}  // namespace toani::audit
