// Address classification for the egress proxy's SSRF guard.
#pragma once

#include <sys/socket.h>

#include <optional>
#include <string>
#include <string_view>

namespace toani {

// True only for unicast addresses that are globally routable on the public Internet
// (docs/connector-protocol.md §7 lists every refused range). Everything else — loopback,
// private, link-local (incl. 169.254.169.254), CGNAT, 0/8, multicast, reserved,
// broadcast, documentation/benchmark ranges, IPv6 loopback/unspecified/unique-local/
// link-local/multicast, IPv4-mapped, NAT64, 6to4, Teredo — is false, as is a null
// pointer or any family other than AF_INET/AF_INET6. Thread-safe.
bool IsGlobalUnicast(const sockaddr* addr);

// Formats the address (no port) as text, e.g. "127.0.0.1" or "2001:db8::1".
std::string AddressToString(const sockaddr* addr);

// True if `name` would be accepted as a numeric address by inet_aton or inet_pton in
// any form ("127.0.0.1", "127.1", "2130706433", "0x7f.1", "::1").
bool LooksLikeIpLiteral(std::string_view name);

}  // namespace toani
