#include "common/time.h"

#include <gtest/gtest.h>

namespace toani {
namespace {

SysTime At(int64_t unix_seconds) { return SysTime(std::chrono::seconds(unix_seconds)); }

// RFC 3339 in UTC, whole seconds: token claims, audit entries and log lines all use it.
TEST(Rfc3339, FormatsUtcToTheSecondAndParsesBack) {
  EXPECT_EQ(FormatRfc3339(At(0)), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(At(1795305599)), "2026-11-21T23:59:59Z");
  EXPECT_EQ(FormatRfc3339(At(951782400)), "2000-02-29T00:00:00Z");  // a leap day
  EXPECT_EQ(FormatRfc3339(At(4102444800)), "2100-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(At(1795305599) + std::chrono::milliseconds(999)),
            "2026-11-21T23:59:59Z");  // fractions are dropped, not rounded
  for (int64_t t : {int64_t{0}, int64_t{951782400}, int64_t{1795305599}, int64_t{4102444800}}) {
    auto back = ParseRfc3339(FormatRfc3339(At(t)));
    ASSERT_TRUE(back.ok()) << t;
    EXPECT_EQ(UnixSeconds(*back), t);
  }
}

}  // namespace
}  // namespace toani
