#include "keyd/token_frame.h"

#include "common/wire.h"

namespace toani::keyd {
namespace {

using nlohmann::json;

constexpr size_t kMaxName = 128;    // tenant, agent, user
constexpr size_t kMaxField = 1024;  // policy_id, action, params_hash, each cred id
constexpr size_t kMaxRiskTier = 64;
constexpr size_t kMaxHitl = 65536;
constexpr size_t kMaxCred = 64;
constexpr size_t kMaxToken = 1 << 20;
constexpr int64_t kMaxTtl = 3600;
constexpr uint64_t kMaxPolicyVersion = (uint64_t{1} << 53) - 1;

Status Bad(const std::string& why) { return Status::InvalidArgument("token.mint frame: " + why); }

bool PutStr16(std::string& out, const std::string& s, size_t min, size_t max) {
  if (s.size() < min || s.size() > max) return false;
  wire::Put16(out, s.size());
  out += s;
  return true;
}

}  // namespace

const json& NoApprovalHitl() {
  static const json kNone = {
      {"confirmed", false}, {"approvers", json::array()}, {"proof", nullptr}};
  return kNone;
}

StatusOr<std::string> EncodeMintRequest(const MintRequest& r) {
  if (r.ttl_seconds < 1 || r.ttl_seconds > kMaxTtl) return Bad("ttl_seconds must be 1..3600");
  if (r.policy_version < 0 || static_cast<uint64_t>(r.policy_version) > kMaxPolicyVersion)
    return Bad("policy_version out of range");
  if (r.cred.size() > kMaxCred) return Bad("too many credential ids");
  std::string out;
  out.reserve(64 + r.tenant.size() + r.agent.size() + r.user.size() + r.policy_id.size() +
              r.action.size() + r.params_hash.size() + r.risk_tier.size() + 32 * r.cred.size());
  wire::Put8(out, kMintRequest);
  wire::Put16(out, static_cast<uint64_t>(r.ttl_seconds));
  wire::Put64(out, static_cast<uint64_t>(r.policy_version));
  if (!PutStr16(out, r.tenant, 1, kMaxName) || !PutStr16(out, r.agent, 1, kMaxName) ||
      !PutStr16(out, r.user, 1, kMaxName)) {
    return Bad("tenant, agent and user must be 1..128 bytes");
  }
  if (!PutStr16(out, r.policy_id, 1, kMaxField) || !PutStr16(out, r.action, 1, kMaxField) ||
      !PutStr16(out, r.params_hash, 1, kMaxField) || !PutStr16(out, r.risk_tier, 1, kMaxRiskTier)) {
    return Bad("policy_id, action, params_hash or risk_tier has a bad length");
  }
  if (r.hitl.is_null() || r.hitl == NoApprovalHitl()) {
    wire::Put32(out, 0);
  } else {
    if (!r.hitl.is_object()) return Bad("hitl must be an object");
    std::string h = r.hitl.dump(-1, ' ', false, json::error_handler_t::strict);
    if (h.size() > kMaxHitl) return Bad("hitl is too long");
    wire::Put32(out, h.size());
    out += h;
  }
  wire::Put16(out, r.cred.size());
  for (const auto& c : r.cred) {
    if (!PutStr16(out, c, 1, kMaxField)) return Bad("a credential id has a bad length");
  }
  return out;
}

StatusOr<MintRequest> DecodeMintRequest(std::string_view frame) {
  wire::Reader rd(frame);
  MintRequest r;
  uint8_t type = 0;
  size_t ttl = 0;
  uint64_t version = 0;
  if (!rd.U8(&type) || type != kMintRequest) return Bad("not a token.mint frame");
  if (!rd.U16(&ttl) || !rd.U64(&version)) return Bad("truncated header");
  if (ttl < 1 || ttl > static_cast<size_t>(kMaxTtl)) return Bad("ttl_seconds must be 1..3600");
  if (version > kMaxPolicyVersion) return Bad("policy_version out of range");
  r.ttl_seconds = static_cast<int64_t>(ttl);
  r.policy_version = static_cast<int64_t>(version);
  struct Str {
    std::string* out;
    size_t max;
    const char* name;
  };
  for (const Str& s :
       {Str{&r.tenant, kMaxName, "tenant"}, Str{&r.agent, kMaxName, "agent"},
        Str{&r.user, kMaxName, "user"}, Str{&r.policy_id, kMaxField, "policy_id"},
        Str{&r.action, kMaxField, "action"}, Str{&r.params_hash, kMaxField, "params_hash"},
        Str{&r.risk_tier, kMaxRiskTier, "risk_tier"}}) {
    std::string_view v;
    if (!rd.Field(2, 1, s.max, &v)) return Bad(std::string(s.name) + ": missing or bad length");
    s.out->assign(v);
  }
  std::string_view hitl;
  if (!rd.Field(4, 0, kMaxHitl, &hitl)) return Bad("hitl: missing or bad length");
  if (hitl.empty()) {
    r.hitl = NoApprovalHitl();
  } else {
    r.hitl = json::parse(hitl, nullptr, /*allow_exceptions=*/false);
    if (!r.hitl.is_object()) return Bad("hitl must be a JSON object");
  }
  size_t count = 0;
  if (!rd.U16(&count) || count > kMaxCred) return Bad("bad credential id count");
  r.cred.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    std::string_view c;
    if (!rd.Field(2, 1, kMaxField, &c)) return Bad("credential id: missing or bad length");
    r.cred.emplace_back(c);
  }
  if (!rd.AtEnd()) return Bad("trailing bytes");
  return r;
}

std::string EncodeMintReply(const MintedToken& t) {
  std::string out;
  out.reserve(7 + t.token.size() + t.jti.size() + t.exp.size());
  wire::Put8(out, kMintReply);
  wire::Put32(out, t.token.size());
  out += t.token;
  wire::Put8(out, t.jti.size());
  out += t.jti;
  wire::Put8(out, t.exp.size());
  out += t.exp;
  return out;
}

StatusOr<MintedToken> DecodeMintReply(std::string_view frame) {
  wire::Reader rd(frame);
  uint8_t type = 0;
  std::string_view token, jti, exp;
  if (!rd.U8(&type) || type != kMintReply || !rd.Field(4, 1, kMaxToken, &token) ||
      !rd.Field(1, 22, 22, &jti) || !rd.Field(1, 20, 20, &exp) || !rd.AtEnd()) {
    return Status::Unavailable("keyd: malformed token.mint reply");
  }
  return MintedToken{std::string(token), std::string(jti), std::string(exp)};
}

}  // namespace toani::keyd
