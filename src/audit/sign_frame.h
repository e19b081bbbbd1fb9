// The binary keyd frame `audit.sign_batch` (docs/formats.md §1.1) and the one-pass
// RFC 8785 check keyd runs on each entry body. Pure code, shared by the server (encode
// the request, decode the reply) and keyd (decode the request, encode the reply).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/merkle.h"
#include "common/status.h"

namespace toani::audit {

inline constexpr uint8_t kSignBatchRequest = 0x01;
inline constexpr uint8_t kSignBatchNextRequest = 0x02;  // no prev: keyd chains on (§1.2)
inline constexpr uint8_t kSignBatchReply = 0x81;
inline constexpr size_t kSignBatchMaxItems = 1024;
inline constexpr size_t kSignBatchMaxUser = 1024;
// How much longer an entry is in the reply than its body in the request: the members keyd
// inserts, `,"prev":"<64 hex>"` (75 bytes), `,"user_ref":"hmac-sha256:<64 hex>"` (90) and
// `,"sig":"<88 base64>"` (96), rounded up. A sender budgets a batch's request and its
// reply within one frame (formats.md §1.1) with it.
inline constexpr size_t kSignReplyGrowthPerEntry = 272;
// What a sender lets a batch's request (or reply) take of keyd's 1 MiB frame (formats.md §1).
inline constexpr size_t kSignFrameBudget = (1 << 20) - 64;

struct SignItem {
  std::string body;                 // RFC 8785 canonical JSON of the unsigned entry
  std::optional<std::string> user;  // turned into user_ref by keyd
};

// A decoded request; the views point into the frame passed to DecodeSignBatchRequest.
struct SignItemView {
  std::string_view body;
  std::optional<std::string_view> user;
};
struct SignBatchRequestView {
  std::optional<Hash> prev;  // absent in an audit.sign_batch_next frame
  std::vector<SignItemView> items;
};

// The encoded size of one item (to split batches under the frame limit).
size_t SignItemEncodedSize(const SignItem& item);
// `prev` given: audit.sign_batch (§1.1); absent: audit.sign_batch_next (§1.2).
std::string EncodeSignBatchRequest(const std::optional<Hash>& prev,
                                   const std::vector<SignItem>& items);
// InvalidArgument for anything but an exact, well-formed request.
StatusOr<SignBatchRequestView> DecodeSignBatchRequest(std::string_view frame);

std::string EncodeSignBatchReply(const std::vector<std::string>& entries);
// InvalidArgument unless exactly `expected` entries.
StatusOr<std::vector<std::string>> DecodeSignBatchReply(std::string_view frame, size_t expected);

// One top-level member of a JSON object: its decoded name and where the member's text
// ("name":value) lies in the object's bytes.
struct TopMember {
  std::string name;
  size_t begin = 0, end = 0;  // [begin, end) of "name":value
  size_t value_begin = 0;     // start of the value
};

// Checks that `body` is the RFC 8785 canonical form of a JSON object and returns its
// top-level members in order. A single pass decides ASCII text with integer numbers;
// anything else is re-canonicalised with CanonicalizeJsonText and compared.
// InvalidArgument when it is not canonical (or not an object).
StatusOr<std::vector<TopMember>> ScanCanonicalObject(std::string_view body);

// Decodes the JSON string starting at body[at] (a '"') of text known to be canonical.
bool DecodeJsonStringAt(std::string_view body, size_t at, std::string* out);

// Rebuilds the object `body` (members as scanned) with `extra` members inserted at their
// RFC 8785 places. Each extra is {ASCII name, member text `"name":value`}; names must not
// already be present (checked by the caller).
std::string InsertMembers(std::string_view body, const std::vector<TopMember>& members,
                          std::vector<std::pair<std::string, std::string>> extra);

}  // namespace toani::audit
