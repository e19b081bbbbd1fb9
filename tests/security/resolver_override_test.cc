// The egress resolver override is explicit server configuration: each one is logged at
// start-up, a malformed one stops the server from starting, and none is on unless given
// (--dev adds only *.toani.test).
#include <gtest/gtest.h>

#include "integration/server_harness.h"

namespace toani {
namespace {

using toani::testing::ReadFileOrEmpty;
using toani::testing::ServerHarness;

TEST(ResolverOverrideTest, ExplicitOverrideIsLogged) {
  ServerHarness server;
  server.extra_args = {"--resolver-override", "*.local.test=127.0.0.1"};
  ASSERT_TRUE(server.Start().ok()) << ReadFileOrEmpty(server.log_path());
  const std::string log = ReadFileOrEmpty(server.log_path());
  EXPECT_NE(log.find("\"pattern\":\"*.local.test\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"why\":\"--resolver-override\""), std::string::npos) << log;
  // Nothing else but the --dev default.
  size_t count = 0;
  for (size_t at = log.find("resolver_override_enabled"); at != std::string::npos;
       at = log.find("resolver_override_enabled", at + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 2u) << log;
}

TEST(ResolverOverrideTest, MalformedOverrideStopsStartUp) {
  for (const char* bad : {"no-equals-sign", "*.x.test=not-an-ip", "=127.0.0.1", "bad host=::1"}) {
    ServerHarness server;
    server.extra_args = {"--resolver-override", bad};
    EXPECT_FALSE(server.Start().ok()) << bad;
    const std::string log = ReadFileOrEmpty(server.log_path());
    EXPECT_TRUE(log.find("resolver override") != std::string::npos ||
                log.find("--resolver-override must be") != std::string::npos)
        << bad << ": " << log;
  }
}

}  // namespace
}  // namespace toani
