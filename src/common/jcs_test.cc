#include "common/jcs.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "common/encoding.h"

namespace toani {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path JcsDir() { return fs::path(TOANI_VECTORS_DIR) / "jcs"; }

// One test per file in jcs/input, named after it; the list is read at start-up.
std::vector<std::string> JcsVectorNames() {
  std::vector<std::string> names;
  std::error_code ec;
  if (!fs::is_directory(JcsDir() / "input", ec)) return names;
  for (const auto& e : fs::directory_iterator(JcsDir() / "input")) {
    if (e.is_regular_file()) names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

class JcsVectorTest : public ::testing::TestWithParam<std::string> {};

TEST_P(JcsVectorTest, MatchesOutputAndOuthex) {
  const std::string name = GetParam();
  const std::string input = ReadFile(JcsDir() / "input" / (name + ".json"));
  const std::string expected = ReadFile(JcsDir() / "output" / (name + ".json"));
  std::string hex = ReadFile(JcsDir() / "outhex" / (name + ".txt"));
  hex.erase(std::remove_if(hex.begin(), hex.end(), [](char c) { return std::isspace(c) != 0; }),
            hex.end());
  auto expected_bytes = HexDecode(hex);
  ASSERT_TRUE(expected_bytes.ok()) << expected_bytes.status().ToString();
  ASSERT_EQ(ToString(*expected_bytes), expected) << "output and outhex disagree for " << name;

  auto got = CanonicalizeJsonText(input);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, expected);
  EXPECT_EQ(HexEncode(AsBytes(*got)), hex);
  // Canonicalization is idempotent.
  auto again = CanonicalizeJsonText(*got);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *got);
}

std::string VectorName(const ::testing::TestParamInfo<std::string>& p) { return p.param; }

INSTANTIATE_TEST_SUITE_P(Vectors, JcsVectorTest, ::testing::ValuesIn(JcsVectorNames()), VectorName);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(JcsVectorTest);

TEST(JcsVectors, DirectoryPresent) {
  if (!fs::is_directory(JcsDir())) {
    GTEST_SKIP() << "JCS vectors not found at " << JcsDir() << " (TOANI_VECTORS_DIR); skipping";
  }
  EXPECT_GE(JcsVectorNames().size(), 6u) << "expected the six cyberphone vectors";
}

TEST(JcsNumber, EcmascriptFormatting) {
  EXPECT_EQ(FormatJsonNumber(0.0), "0");
  EXPECT_EQ(FormatJsonNumber(-0.0), "0");
  EXPECT_EQ(FormatJsonNumber(1.0), "1");
  EXPECT_EQ(FormatJsonNumber(-1.5), "-1.5");
  EXPECT_EQ(FormatJsonNumber(1e21), "1e+21");
  EXPECT_EQ(FormatJsonNumber(1e20), "100000000000000000000");
  EXPECT_EQ(FormatJsonNumber(123456789012345680000.0), "123456789012345680000");
  EXPECT_EQ(FormatJsonNumber(0.000001), "0.000001");
  EXPECT_EQ(FormatJsonNumber(0.0000001), "1e-7");
  EXPECT_EQ(FormatJsonNumber(1.25e-7), "1.25e-7");
  EXPECT_EQ(FormatJsonNumber(5e-324), "5e-324");
  EXPECT_EQ(FormatJsonNumber(1.7976931348623157e308), "1.7976931348623157e+308");
  EXPECT_EQ(FormatJsonNumber(9007199254740992.0), "9007199254740992");
  EXPECT_EQ(FormatJsonNumber(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FormatJsonNumber(333333333.33333329), "333333333.3333333");
  EXPECT_EQ(FormatJsonNumber(-1e-7), "-1e-7");
}

TEST(JcsNumber, IntegersBecomeDoubles) {
  EXPECT_EQ(*CanonicalizeJsonText("[9007199254740993]"), "[9007199254740992]");
  EXPECT_EQ(*CanonicalizeJsonText("[18446744073709551615]"), "[18446744073709552000]");
  EXPECT_EQ(*CanonicalizeJsonText("[-0, 0.0, 1.0e0, 10e-1]"), "[0,0,1,1]");
  EXPECT_EQ(CanonicalizeJson(nlohmann::json(int64_t{-42})), "-42");
}

TEST(JcsErrors, RejectsInvalidJson) {
  for (const char* bad : {"", "{", "[1,]", "{\"a\":1,}", "[1] x", "{'a':1}", "[NaN]", "[Infinity]",
                          "[1e400]", "[\"\\ud800\"]", "/*c*/[1]", "[01]", "[\"a\x01\"]"}) {
    EXPECT_FALSE(CanonicalizeJsonText(bad).ok()) << bad;
  }
  EXPECT_FALSE(CanonicalizeJsonText("[\"\xC3\x28\"]").ok());  // invalid UTF-8
  EXPECT_FALSE(CanonicalizeJsonText("[\"\xC0\xAF\"]").ok());  // overlong
}

TEST(JcsErrors, RejectsDuplicateKeys) {
  EXPECT_FALSE(CanonicalizeJsonText(R"({"a":1,"a":2})").ok());
  EXPECT_FALSE(CanonicalizeJsonText(R"({"x":{"a":1,"b":[{"c":1,"c":1}]}})").ok());
  // Same name in sibling or nested objects is fine.
  EXPECT_EQ(*CanonicalizeJsonText(R"({"a":{"a":1},"b":[{"a":2},{"a":3}]})"),
            R"({"a":{"a":1},"b":[{"a":2},{"a":3}]})");
  // Escaped and literal spellings of one name are duplicates.
  EXPECT_FALSE(CanonicalizeJsonText(R"({"a":1,"\u0061":2})").ok());
}

TEST(JcsErrors, NonFiniteNumbersInBuiltValues) {
  EXPECT_FALSE(TryCanonicalizeJson(nlohmann::json(std::nan(""))).ok());
  EXPECT_FALSE(
      TryCanonicalizeJson(nlohmann::json::array({std::numeric_limits<double>::infinity()})).ok());
  EXPECT_FALSE(TryCanonicalizeJson(nlohmann::json(std::string("\xFF"))).ok());
  EXPECT_FALSE(TryCanonicalizeJson(nlohmann::json::binary({1, 2})).ok());
  EXPECT_DEATH(CanonicalizeJson(nlohmann::json(std::nan(""))), "TOANI_CHECK");
}

TEST(JcsErrors, NestingDepthIsBounded) {
  const std::string ok = std::string(256, '[') + std::string(256, ']');
  EXPECT_TRUE(CanonicalizeJsonText(ok).ok());
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_FALSE(CanonicalizeJsonText(deep).ok());
}

TEST(JcsStrings, Escaping) {
  EXPECT_EQ(*CanonicalizeJsonText(R"(["\u0000\u001f\u007f\b\t\n\f\r\"\\\/"])"),
            "[\"\\u0000\\u001f\x7f\\b\\t\\n\\f\\r\\\"\\\\/\"]");
  EXPECT_EQ(*CanonicalizeJsonText(R"(["\u00e9\ud83d\ude02"])"), "[\"\xC3\xA9\xF0\x9F\x98\x82\"]");
}

TEST(JcsObjects, SortsByUtf16CodeUnits) {
  // U+1F602 (surrogates D83D DE02) sorts before U+FB33 in UTF-16, after it in UTF-8.
  EXPECT_EQ(*CanonicalizeJsonText("{\"\xEF\xAC\xB3\":1,\"\xF0\x9F\x98\x82\":2}"),
            "{\"\xF0\x9F\x98\x82\":2,\"\xEF\xAC\xB3\":1}");
  EXPECT_EQ(*CanonicalizeJsonText(R"({"b":1,"a":{"d":[],"c":null},"A":true})"),
            R"({"A":true,"a":{"c":null,"d":[]},"b":1})");
}

}  // namespace
}  // namespace toani
