// Fuzzes keyd's message decoder and dispatcher: the input is a byte stream of frames
// (4-byte length, JSON body), decoded exactly as toani-keyd does and handed to
// KeyService::Handle. Any crash, sanitizer report, abort or uncaught exception fails.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_common.h"
#include "keyd/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& svc = toani::fuzz::Service();
  size_t pos = 0;
  while (size - pos >= 4) {
    auto n = toani::keyd::DecodeFrameLength(data + pos);
    pos += 4;
    if (!n.ok()) break;  // keyd closes the stream here
    size_t take = *n < size - pos ? *n : size - pos;
    auto req = toani::keyd::DecodeFrameBody(
        std::string_view(reinterpret_cast<const char*>(data + pos), take));
    pos += take;
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
