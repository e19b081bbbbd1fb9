#include "sandbox/ip_address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>

namespace toani {
namespace {

bool Global(const char* text) {
  sockaddr_storage ss{};
  auto* in = reinterpret_cast<sockaddr_in*>(&ss);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
  } else if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
  } else {
    ADD_FAILURE() << "not an address: " << text;
  }
  return IsGlobalUnicast(reinterpret_cast<const sockaddr*>(&ss));
}

struct Case {
  const char* address;
  bool global;
};

class IsGlobalUnicastTest : public ::testing::TestWithParam<Case> {};

TEST_P(IsGlobalUnicastTest, Classifies) {
  EXPECT_EQ(Global(GetParam().address), GetParam().global) << GetParam().address;
}

INSTANTIATE_TEST_SUITE_P(
    Table, IsGlobalUnicastTest,
    ::testing::Values(
        // Global.
        Case{"1.1.1.1", true}, Case{"8.8.8.8", true}, Case{"93.184.216.34", true},
        Case{"100.63.255.255", true}, Case{"100.128.0.0", true}, Case{"172.15.255.255", true},
        Case{"172.32.0.0", true}, Case{"192.0.1.1", true}, Case{"198.17.255.255", true},
        Case{"198.20.0.0", true}, Case{"223.255.255.255", true}, Case{"11.0.0.1", true},
        Case{"2606:4700:4700::1111", true}, Case{"2a00:1450:4001::1", true},
        Case{"2001:4860:4860::8888", true},
        // IPv4 non-global.
        Case{"0.0.0.0", false}, Case{"0.1.2.3", false}, Case{"10.0.0.1", false},
        Case{"10.255.255.255", false}, Case{"100.64.0.1", false}, Case{"100.127.255.255", false},
        Case{"127.0.0.1", false}, Case{"127.255.255.254", false}, Case{"169.254.169.254", false},
        Case{"169.254.0.1", false}, Case{"172.16.0.1", false}, Case{"172.31.255.255", false},
        Case{"192.0.0.8", false}, Case{"192.0.2.1", false}, Case{"192.88.99.1", false},
        Case{"192.168.1.1", false}, Case{"198.18.0.1", false}, Case{"198.19.255.255", false},
        Case{"198.51.100.7", false}, Case{"203.0.113.9", false}, Case{"224.0.0.1", false},
        Case{"239.255.255.250", false}, Case{"240.0.0.1", false}, Case{"255.255.255.255", false},
        // IPv6 non-global.
        Case{"::", false}, Case{"::1", false}, Case{"::ffff:127.0.0.1", false},
        Case{"::ffff:8.8.8.8", false}, Case{"::127.0.0.1", false}, Case{"64:ff9b::7f00:1", false},
        Case{"64:ff9b:1::1", false}, Case{"fc00::1", false}, Case{"fd12:3456::1", false},
        Case{"fe80::1", false}, Case{"febf::1", false}, Case{"ff02::1", false},
        Case{"2001::1", false}, Case{"2001:0:4136:e378::1", false}, Case{"2001:db8::1", false},
        Case{"2002:7f00:1::1", false}, Case{"2002:a9fe:a9fe::1", false}, Case{"3fff::1", false},
        Case{"100::1", false}, Case{"4000::1", false}));

TEST(IsGlobalUnicastTest, RejectsNullAndOtherFamilies) {
  EXPECT_FALSE(IsGlobalUnicast(nullptr));
  sockaddr sa{};
  sa.sa_family = AF_UNIX;
  EXPECT_FALSE(IsGlobalUnicast(&sa));
}

TEST(LooksLikeIpLiteralTest, CatchesEveryNumericForm) {
  for (const char* s : {"127.0.0.1", "127.1", "2130706433", "0x7f.1", "0x7f000001", "::1",
                        "::ffff:127.0.0.1", "017700000001", "1.2.3.4", "a.b.123"}) {
    EXPECT_TRUE(LooksLikeIpLiteral(s)) << s;
  }
  for (const char* s :
       {"example.com", "target.toani.test", "localhost", "1password.com", "a1.b2.c3d"}) {
    EXPECT_FALSE(LooksLikeIpLiteral(s)) << s;
  }
}

}  // namespace
}  // namespace toani
