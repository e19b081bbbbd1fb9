// The binary keyd frame `token.mint` (docs/formats.md §1.3). Pure code, shared by the
// server (encode the request, decode the reply) and keyd (decode the request, encode the
// reply). keyd checks what the frame says with the same rules as the JSON op.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace toani::keyd {

inline constexpr uint8_t kMintRequest = 0x03;
inline constexpr uint8_t kMintReply = 0x83;

struct MintRequest {
  std::string tenant, agent, user;
  int64_t ttl_seconds = 0;
  std::string policy_id;
  int64_t policy_version = 0;
  std::string action, params_hash, risk_tier = "low";
  // The `hitl` claim: an object; null means no approval (formats.md §4's default).
  nlohmann::json hitl;
  std::vector<std::string> cred;
};

struct MintedToken {
  std::string token, jti, exp;
};

// The `hitl` claim of a token minted without an approval.
const nlohmann::json& NoApprovalHitl();

// InvalidArgument when a field cannot be encoded (a length or value out of range).
StatusOr<std::string> EncodeMintRequest(const MintRequest& r);
// InvalidArgument for anything but an exact, well-formed request (formats.md §1.3).
StatusOr<MintRequest> DecodeMintRequest(std::string_view frame);

std::string EncodeMintReply(const MintedToken& t);
// Unavailable (keyd is failing) for anything but an exact, well-formed reply.
StatusOr<MintedToken> DecodeMintReply(std::string_view frame);

}  // namespace toani::keyd
