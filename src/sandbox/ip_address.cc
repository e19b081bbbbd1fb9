#include "sandbox/ip_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <cstring>

namespace toani {
namespace {

struct Range4 {
  uint32_t base;
  int prefix;
};

// IANA IPv4 special-purpose registry, plus multicast and the rest of 240/4.
constexpr std::array<Range4, 16> kNonGlobal4 = {{
    {0x00000000, 8},   // 0.0.0.0/8 "this network"
    {0x0A000000, 8},   // 10/8 private
    {0x64400000, 10},  // 100.64/10 CGNAT
    {0x7F000000, 8},   // 127/8 loopback
    {0xA9FE0000, 16},  // 169.254/16 link-local (cloud metadata)
    {0xAC100000, 12},  // 172.16/12 private
    {0xC0000000, 24},  // 192.0.0/24 IETF protocol assignments
    {0xC0000200, 24},  // 192.0.2/24 TEST-NET-1
    {0xC0586300, 24},  // 192.88.99/24 6to4 relay anycast
    {0xC0A80000, 16},  // 192.168/16 private
    {0xC6120000, 15},  // 198.18/15 benchmarking
    {0xC6336400, 24},  // 198.51.100/24 TEST-NET-2
    {0xCB007100, 24},  // 203.0.113/24 TEST-NET-3
    {0xE0000000, 4},   // 224/4 multicast
    {0xF0000000, 4},   // 240/4 reserved, incl. 255.255.255.255
    {0xFFFFFFFF, 32},  // broadcast (covered above; explicit for readers)
}};

bool IsGlobal4(uint32_t a) {
  for (const Range4& r : kNonGlobal4) {
    const uint32_t mask = r.prefix == 0 ? 0 : ~uint32_t{0} << (32 - r.prefix);
    if ((a & mask) == r.base) return false;
  }
  return true;
}

bool InPrefix6(const uint8_t* a, std::array<uint8_t, 4> base, int prefix) {
  // Compares up to the first 32 bits: every range refused below fits in /32 or shorter.
  for (int bit = 0; bit < prefix; ++bit) {
    const int byte = bit / 8;
    const int mask = 0x80 >> (bit % 8);
    if ((a[byte] & mask) != (base[static_cast<size_t>(byte)] & mask)) return false;
  }
  return true;
}

bool IsGlobal6(const uint8_t* a) {
  // Only 2000::/3 is global unicast; everything outside it (::, ::1, ::ffff:0:0/96,
  // 64:ff9b::/96, fc00::/7, fe80::/10, ff00::/8...) is refused.
  if ((a[0] & 0xE0) != 0x20) return false;
  if (InPrefix6(a, {0x20, 0x01, 0x00, 0x00}, 23)) return false;  // 2001::/23 IETF (Teredo...)
  if (InPrefix6(a, {0x20, 0x01, 0x0d, 0xb8}, 32)) return false;  // 2001:db8::/32 documentation
  if (InPrefix6(a, {0x20, 0x02, 0x00, 0x00}, 16)) return false;  // 2002::/16 6to4 (embeds v4)
  if (InPrefix6(a, {0x3f, 0xff, 0x00, 0x00}, 20)) return false;  // 3fff::/20 documentation
  return true;
}

}  // namespace

bool IsGlobalUnicast(const sockaddr* addr) {
  if (addr == nullptr) return false;
  if (addr->sa_family == AF_INET) {
    sockaddr_in in{};
    std::memcpy(&in, addr, sizeof in);
    return IsGlobal4(ntohl(in.sin_addr.s_addr));
  }
  if (addr->sa_family == AF_INET6) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, addr, sizeof in6);
    return IsGlobal6(in6.sin6_addr.s6_addr);
  }
  return false;
}

std::string AddressToString(const sockaddr* addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr == nullptr) return "?";
  if (addr->sa_family == AF_INET) {
    sockaddr_in in{};
    std::memcpy(&in, addr, sizeof in);
    if (inet_ntop(AF_INET, &in.sin_addr, buf, sizeof buf) != nullptr) return buf;
  } else if (addr->sa_family == AF_INET6) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, addr, sizeof in6);
    if (inet_ntop(AF_INET6, &in6.sin6_addr, buf, sizeof buf) != nullptr) return buf;
  }
  return "?";
}

bool LooksLikeIpLiteral(std::string_view name) {
  const std::string s(name);
  in_addr a4{};
  in6_addr a6{};
  if (inet_aton(s.c_str(), &a4) != 0) return true;  // also accepts 127.1, 0x7f.1, 2130706433
  if (inet_pton(AF_INET6, s.c_str(), &a6) == 1) return true;
  // A last label made of digits (or 0x...) is never a host name (RFC 3696 §2).
  const size_t dot = s.find_last_of('.');
  const std::string last = dot == std::string::npos ? s : s.substr(dot + 1);
  if (last.empty()) return false;
  if (last.rfind("0x", 0) == 0 || last.rfind("0X", 0) == 0) return true;
  return last.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace toani
