// Credential-shaped strings (docs/connector-protocol.md §5.2): a linear scanner, not a
// regex, because it runs on whole response bodies (std::regex recurses per character
// and overflows the stack on long runs).
#include <array>
#include <string>
#include <string_view>

#include "common/log.h"

namespace toani {
namespace {

constexpr std::string_view kMarker = "[REDACTED]";

bool IsWordChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '~' || c == '+' || c == '/' || c == '-';
}

// '=' belongs to a word only as trailing base64 padding ("abc==" but not "t=abc").
bool IsTokenCharAt(std::string_view t, size_t j) {
  if (IsWordChar(t[j])) return true;
  if (t[j] != '=') return false;
  size_t e = j;
  while (e < t.size() && t[e] == '=') ++e;
  return e == t.size() || !IsWordChar(t[e]);
}

bool IsB64UrlChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// A JWS/JWE compact serialisation: "eyJ" header, then at least one more dot-separated
// base64url segment of 8+ characters.
bool LooksLikeJwt(std::string_view w) {
  if (!w.starts_with("eyJ")) return false;
  size_t dots = 0, seg = 0, longest_after_first = 0;
  for (char c : w) {
    if (c == '.') {
      ++dots;
      seg = 0;
    } else if (IsB64UrlChar(c)) {
      if (dots > 0 && ++seg > longest_after_first) longest_after_first = seg;
    } else {
      return false;
    }
  }
  return dots >= 2 && longest_after_first >= 8;
}

struct Prefix {
  std::string_view text;
  size_t min_rest;  // characters that must follow the prefix
};
// Well-known API key and token prefixes (Stripe, GitHub, GitLab, Slack, AWS, Google,
// OpenAI/Anthropic-style "sk-", npm, Standard Webhooks secrets, PyPI).
constexpr std::array<Prefix, 27> kPrefixes = {{
    {"sk_live_", 8}, {"sk_test_", 8}, {"pk_live_", 8},     {"pk_test_", 8}, {"rk_live_", 8},
    {"rk_test_", 8}, {"whsec_", 16},  {"ghp_", 20},        {"gho_", 20},    {"ghu_", 20},
    {"ghs_", 20},    {"ghr_", 20},    {"github_pat_", 20}, {"glpat-", 20},  {"xoxb-", 10},
    {"xoxp-", 10},   {"xoxa-", 10},   {"xoxs-", 10},       {"xoxr-", 10},   {"AKIA", 16},
    {"ASIA", 16},    {"AIza", 30},    {"sk-", 20},         {"npm_", 30},    {"pypi-", 30},
    {"ya29.", 20},   {"EAAC", 30},
}};

bool HasKeyPrefix(std::string_view w) {
  for (const Prefix& p : kPrefixes) {
    if (w.size() >= p.text.size() + p.min_rest && w.starts_with(p.text)) return true;
  }
  return false;
}

}  // namespace

std::string ScrubCredentialShapes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool redact_next_word = false;  // after "Bearer", "Basic", "Token"
  size_t i = 0;
  while (i < text.size()) {
    if (!IsTokenCharAt(text, i)) {
      // Whitespace between an auth scheme and its value keeps the pending flag.
      if (text[i] != ' ' && text[i] != '\t') redact_next_word = false;
      out.push_back(text[i++]);
      continue;
    }
    size_t j = i;
    while (j < text.size() && IsTokenCharAt(text, j)) ++j;
    std::string_view w = text.substr(i, j - i);
    // A word may start with punctuation that also ends the previous sentence.
    size_t lead = 0;
    while (lead < w.size() && (w[lead] == '.' || w[lead] == '/' || w[lead] == '=')) ++lead;
    std::string_view core = w.substr(lead);
    if ((redact_next_word && core.size() >= 8) || LooksLikeJwt(core) || HasKeyPrefix(core)) {
      out.append(w.substr(0, lead));
      out.append(kMarker);
      redact_next_word = false;
    } else {
      out.append(w);
      redact_next_word = IEquals(w, "bearer") || IEquals(w, "basic") || IEquals(w, "token");
    }
    i = j;
  }
  return out;
}

}  // namespace toani
