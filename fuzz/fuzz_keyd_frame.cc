// Fuzzes keyd's message decoder and dispatcher: the input is a byte stream of frames
// (4-byte length, then a JSON body or a binary frame, docs/formats.md §1.1), decoded
// exactly as toani-keyd does and handed to KeyService::Handle or ::HandleBinary (the
// audit.sign_batch decoder, the one-pass canonical-JSON check and member insertion).
// Any crash, sanitizer report, abort or uncaught exception fails.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_common.h"
#include "keyd/protocol.h"
#include "keyd/token_frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& svc = toani::fuzz::Service();
  size_t pos = 0;
  while (size - pos >= 4) {
    auto n = toani::keyd::DecodeFrameLength(data + pos);
    pos += 4;
    if (!n.ok()) break;  // keyd closes the stream here
    size_t take = *n < size - pos ? *n : size - pos;
    const std::string_view body(reinterpret_cast<const char*>(data + pos), take);
    pos += take;
    if (toani::keyd::IsBinaryFrame(body)) {
      std::string frame(body);
      // token.mint (0x03): as for JSON requests, the tenant is forced to "dev" so the
      // keyring stays small; a frame that does not decode goes in as it is.
      if (frame[0] == static_cast<char>(toani::keyd::kMintRequest)) {
        if (auto m = toani::keyd::DecodeMintRequest(frame); m.ok()) {
          m->tenant = "dev";
          if (auto again = toani::keyd::EncodeMintRequest(*m); again.ok()) frame = *again;
        }
      }
      std::string reply = svc.HandleBinary(frame);
      if (reply.empty()) abort();
      // A reply is binary (0x81 signed batch, 0x83 minted token) or the JSON error object.
      const bool binary = reply[0] == '\x81' || reply[0] == '\x83';
      if (!binary && !toani::keyd::DecodeFrameBody(reply).ok()) abort();
      if (reply[0] == '\x83' && !toani::keyd::DecodeMintReply(reply).ok()) abort();
      continue;
    }
    auto req = toani::keyd::DecodeFrameBody(body);
    if (!req.ok()) continue;  // keyd answers with an error and reads on
    // Keep the keyring small: every request acts on tenant "dev", and key rotation
    // (which writes a file per call) is left out.
    if (req->contains("tenant")) (*req)["tenant"] = "dev";
    if (req->value("op", nlohmann::json()) == "tenant.rotate") continue;
    nlohmann::json reply = svc.Handle(*req);
    if (!reply.is_object() || !reply.contains("ok")) abort();
    (void)reply.dump();
  }
  return 0;
}
