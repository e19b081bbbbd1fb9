#include "common/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace toani {
namespace {

using nlohmann::json;

// Runs `f` with fd 2 sent to a temporary file and returns the lines it wrote.
template <typename F>
std::vector<std::string> Captured(F f) {
  char path[] = "/tmp/toani-log-test-XXXXXX";
  int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  int saved = ::dup(2);
  ::dup2(fd, 2);
  f();
  ::dup2(saved, 2);
  ::close(saved);
  std::string all;
  char buf[4096];
  ::lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) all.append(buf, static_cast<size_t>(n));
  ::close(fd);
  ::unlink(path);
  std::vector<std::string> lines;
  for (size_t at = 0, nl; (nl = all.find('\n', at)) != std::string::npos; at = nl + 1)
    lines.push_back(all.substr(at, nl - at));
  return lines;
}

TEST(Log, OneJsonObjectPerLineWithEveryFieldAndSecretsScrubbed) {
  auto lines = Captured([] {
    Log(LogLevel::kInfo, "http", "request",
        {{"path", "/v1/x"},
         {"status", 200},
         {"auth", "Bearer sk_live_51Habcdefghijklmnop"},
         {"nested", {{"k", "token ghp_abcdefghijklmnopqrstuvwxyz0123456789"}}},
         {"quote", "a\"b\\\n"}});
    Log(LogLevel::kWarn, "x", "y", {{"event", "overridden"}});
    Log(LogLevel::kError, "x", "bad-utf8", {{"v", std::string("\xff\xfe")}});
  });
  ASSERT_EQ(lines.size(), 3u);
  json a = json::parse(lines[0]);
  EXPECT_EQ(a["level"], "info");
  EXPECT_EQ(a["component"], "http");
  EXPECT_EQ(a["event"], "request");
  EXPECT_EQ(a["path"], "/v1/x");
  EXPECT_EQ(a["status"], 200);
  EXPECT_EQ(a["quote"], "a\"b\\\n");
  EXPECT_TRUE(a["ts"].is_string());
  EXPECT_EQ(lines[0].find("sk_live_51H"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[0].find("ghp_abcdef"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("[REDACTED]"), std::string::npos);
  // A field named like a fixed member replaces it.
  EXPECT_EQ(json::parse(lines[1])["event"], "overridden");
  // Text that is not UTF-8 still makes a valid JSON line.
  json c = json::parse(lines[2], nullptr, false);
  EXPECT_FALSE(c.is_discarded()) << lines[2];
  EXPECT_EQ(c["event"], "bad-utf8");
}

}  // namespace
}  // namespace toani
