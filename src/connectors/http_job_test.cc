#include "connectors/http_job.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "connectors/credential_set.h"
#include "connectors/scrub.h"

namespace toani {
namespace {

using nlohmann::json;

json ValidJob() {
  return json::parse(R"({"type":"job","connector":"http",
    "request":{"method":"POST","url":"https://api.example.com:8443/v1/x?q=1",
               "headers":[["Accept","application/json"],["X-Empty",""]],"body":"{}"},
    "inject":{"kind":"header","name":"Authorization","prefix":"Bearer "},
    "sealed_credential":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-Pw",
    "proxy_socket":"/run/toani/egress.sock","ca_file":"/run/toani/ca.pem",
    "limits":{"max_response_bytes":1024,"timeout_ms":5000},"future_field":1})");
}

TEST(ParseHttpJobTest, AcceptsValidJob) {
  StatusOr<HttpJob> job = ParseHttpJob(ValidJob().dump());
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->method, "POST");
  EXPECT_EQ(job->url, "https://api.example.com:8443/v1/x?q=1");
  ASSERT_EQ(job->headers.size(), 2u);
  EXPECT_EQ(job->headers[1].first, "X-Empty");
  EXPECT_EQ(job->body, "{}");
  EXPECT_EQ(job->inject.name, "Authorization");
  EXPECT_EQ(job->inject.prefix, "Bearer ");
  EXPECT_EQ(job->sealed_credential.size(), 64u);
  EXPECT_EQ(job->ca_file.value_or(""), "/run/toani/ca.pem");
  EXPECT_EQ(job->max_response_bytes, 1024u);
  EXPECT_EQ(job->timeout_ms, 5000u);
}

struct BadCase {
  const char* name;
  const char* pointer;  // JSON pointer to replace (or remove when value is null)
  json value;
};

class ParseHttpJobRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(ParseHttpJobRejects, Field) {
  json j = ValidJob();
  const json::json_pointer ptr(GetParam().pointer);
  if (GetParam().value.is_null()) {
    j[ptr.parent_pointer()].erase(ptr.back());
  } else {
    j[ptr] = GetParam().value;
  }
  StatusOr<HttpJob> job = ParseHttpJob(j.dump());
  ASSERT_FALSE(job.ok()) << GetParam().name;
  EXPECT_EQ(job.status().code(), StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(
    All, ParseHttpJobRejects,
    ::testing::Values(BadCase{"type", "/type", "hello"}, BadCase{"connector", "/connector", "ftp"},
                      BadCase{"browser_without_steps", "/connector", "browser"},
                      BadCase{"form_without_form", "/connector", "form"},
                      BadCase{"oauth_without_oauth", "/connector", "oauth"},
                      BadCase{"redirects_too_many", "/redirects", json{{"max", 11}}},
                      BadCase{"redirects_without_allow", "/redirects", json{{"max", 2}}},
                      BadCase{"query_name", "/inject", json{{"kind", "query"}, {"name", "a&b"}}},
                      BadCase{"basic_colon", "/inject",
                              json{{"kind", "basic"}, {"username", "a:b"}}},
                      BadCase{"no_request", "/request", nullptr},
                      BadCase{"method", "/request/method", "TRACE"},
                      BadCase{"method_lower", "/request/method", "get"},
                      BadCase{"http", "/request/url", "http://api.example.com/"},
                      BadCase{"userinfo", "/request/url", "https://u:p@api.example.com/"},
                      BadCase{"fragment", "/request/url", "https://api.example.com/#x"},
                      BadCase{"space", "/request/url", "https://api.example.com/a b"},
                      BadCase{"crlf_value", "/request/headers/0/1", "a\r\nX-Evil: 1"},
                      BadCase{"bad_name", "/request/headers/0/0", "Bad Name"},
                      BadCase{"host_header", "/request/headers/0/0", "Host"},
                      BadCase{"inject_dup", "/request/headers/0/0", "authorization"},
                      BadCase{"te_header", "/request/headers/0/0", "Transfer-Encoding"},
                      BadCase{"header_shape", "/request/headers/0", json::array({"a"})},
                      BadCase{"inject_kind", "/inject/kind", "cookie"},
                      BadCase{"inject_prefix_crlf", "/inject/prefix", "Bearer\r\n"},
                      BadCase{"sealed_padding", "/sealed_credential", "AAAA=="},
                      BadCase{"sealed_std_b64", "/sealed_credential", "AA+/"},
                      BadCase{"proxy_relative", "/proxy_socket", "run/egress.sock"},
                      BadCase{"proxy_odd_chars", "/proxy_socket", "/run/x?y"},
                      BadCase{"ca_relative", "/ca_file", "ca.pem"},
                      BadCase{"max_zero", "/limits/max_response_bytes", 0},
                      BadCase{"max_negative", "/limits/max_response_bytes", -1},
                      BadCase{"max_huge", "/limits/max_response_bytes", uint64_t{1} << 40},
                      BadCase{"timeout_float", "/limits/timeout_ms", 1.5},
                      BadCase{"timeout_missing", "/limits/timeout_ms", nullptr}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(ParseHttpJobTest, RejectsBodyOnGet) {
  json j = ValidJob();
  j["request"]["method"] = "GET";
  EXPECT_FALSE(ParseHttpJob(j.dump()).ok());
  j["request"]["body"] = "";
  EXPECT_TRUE(ParseHttpJob(j.dump()).ok());
}

TEST(ParseHttpJobTest, RejectsNonJson) {
  EXPECT_FALSE(ParseHttpJob("not json").ok());
  EXPECT_FALSE(ParseHttpJob("[]").ok());
  EXPECT_FALSE(ParseHttpJob(std::string(kMaxJobLineBytes + 1, ' ')).ok());
}

TEST(ValidateCredentialTest, RefusesHeaderBreakingBytes) {
  EXPECT_TRUE(ValidateCredentialForHeader(SecretBytes::Copy(std::string_view("abc"))).ok());
  EXPECT_FALSE(ValidateCredentialForHeader(SecretBytes()).ok());
  EXPECT_FALSE(ValidateCredentialForHeader(SecretBytes::Copy(std::string_view("a\r\nb"))).ok());
  EXPECT_FALSE(ValidateCredentialForHeader(SecretBytes::Copy(std::string_view("a\0b", 3))).ok());
}

// The scrubbing forms are derived once per credential (SecretScrubber); a value added
// after a first Scrub (an OAuth access token) is scrubbed from then on.
TEST(CredentialSetScrubTest, CachedFormsMatchScrubSecretAndFollowNewDerivedValues) {
  const std::string whole = R"({"username":"alice-user","password":"s3cr3t-P@ss/word"})";
  CredentialSet creds(SecretBytes::Copy(whole));
  const std::string texts[] = {
      "password=s3cr3t-P%40ss%2Fword&user=alice-user",
      R"({"echo":"s3cr3t-P@ss\/word"})",
      "nothing secret here",
  };
  for (const std::string& t : texts) {
    std::string expected = t;
    expected = ScrubSecret(expected, SecretBytes::Copy(whole));
    expected = ScrubSecret(expected, SecretBytes::Copy(std::string_view("s3cr3t-P@ss/word")));
    expected = ScrubSecret(expected, SecretBytes::Copy(std::string_view("alice-user")));
    EXPECT_EQ(creds.Scrub(t), ScrubCredentialShapes(expected)) << t;
    EXPECT_EQ(creds.Scrub(t), creds.Scrub(t)) << t;  // the cached forms give the same
  }
  EXPECT_EQ(creds.Scrub("value qzx-derived-7788"), "value qzx-derived-7788");
  creds.AddDerived("qzx-derived-7788");
  EXPECT_EQ(creds.Scrub("value qzx-derived-7788").find("qzx-derived"), std::string::npos);
  const SecretScrubber one(SecretBytes::Copy(std::string_view("abcd1234")));
  EXPECT_EQ(one.Scrub("x abcd1234 YWJjZDEyMzQ= 6162636431323334 y"),
            ScrubSecret("x abcd1234 YWJjZDEyMzQ= 6162636431323334 y",
                        SecretBytes::Copy(std::string_view("abcd1234"))));
  EXPECT_EQ(one.Scrub("x abcd1234 y"), "x [REDACTED] y");
}

}  // namespace
}  // namespace toani
