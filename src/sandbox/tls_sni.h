// Reads the server name (SNI, RFC 6066 §3) from the first bytes a client sends on a TLS
// connection, so the egress proxy can refuse a connection whose TLS name differs from
// the host it was asked to reach (a connector cannot tunnel to another name on an
// allowed address, e.g. a shared CDN front).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace toani {

enum class SniResult {
  kNeedMore,  // the ClientHello is not complete yet
  kFound,     // *sni holds the host_name, lower-cased, trailing dot removed
  kNoSni,     // a well-formed ClientHello without a server_name extension
  kNotTls,    // not a TLS handshake record / not a ClientHello / malformed
};

// `data` is everything the client has sent so far, from its first byte. The hello may
// span several records; at most 64 KiB are considered.
SniResult ExtractTlsSni(const uint8_t* data, size_t size, std::string* sni);

}  // namespace toani
