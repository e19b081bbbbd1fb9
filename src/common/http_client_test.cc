// HttpsCall argument checks and failure mapping. The round trips against a real mTLS
// server live in src/server/https_server_test.cc.
#include "common/http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace toani {
namespace {

// A loopback port that was free a moment ago and has no listener now.
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(HttpsCall, RefusesNonHttpsUrls) {
  for (const char* url : {"http://127.0.0.1/", "file:///etc/passwd", "ftp://x/", "127.0.0.1"}) {
    auto r = HttpsCall("GET", url, "", "", ClientTls{});
    ASSERT_FALSE(r.ok()) << url;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << url;
  }
}

TEST(HttpsCall, RefusesBadMethodAndHeaderInjection) {
  EXPECT_EQ(HttpsCall("G ET", "https://127.0.0.1/", "", "", {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpsCall("get", "https://127.0.0.1/", "", "", {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      HttpsCall("POST", "https://127.0.0.1/", "x", "text/plain\r\nX-Evil: 1", {}).status().code(),
      StatusCode::kInvalidArgument);
}

TEST(HttpsCall, ConnectionFailureIsUnavailable) {
  std::string url = "https://127.0.0.1:" + std::to_string(ClosedPort()) + "/";
  auto r = HttpsCall("GET", url, "", "", ClientTls{}, std::chrono::seconds(5));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("127.0.0.1"), std::string::npos) << r.status().message();
}

TEST(HttpsCall, MissingCaFileIsUnavailable) {
  std::string url = "https://127.0.0.1:" + std::to_string(ClosedPort()) + "/";
  ClientTls tls;
  tls.ca_file = "/nonexistent/ca.pem";
  auto r = HttpsCall("GET", url, "", "", tls, std::chrono::seconds(5));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace toani
