// base64 as every EST body uses it: RFC 4648 section 4 with padding; RFC 8951 section 3.1 (senders
// need not wrap lines, receivers MUST tolerate CR, LF, space and tab).
#include "estlab/core/base64.hpp"

#include <gtest/gtest.h>

#include <random>

namespace estlab {
namespace {

std::string decode_to_string(std::string_view text) {
  auto bytes = base64_decode(text);
  EXPECT_TRUE(bytes.ok()) << bytes.error().message;
  if (!bytes.ok()) return {};
  return std::string(bytes->begin(), bytes->end());
}

void expect_error(std::string_view text, const std::string& message) {
  auto bytes = base64_decode(text);
  ASSERT_FALSE(bytes.ok()) << "'" << text << "' decoded";
  EXPECT_EQ(bytes.error().code, ErrorCode::invalid_input);
  EXPECT_EQ(bytes.error().message, message);
}

Bytes random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  Bytes out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>(rng());
  return out;
}

// RFC 4648 section 10 test vectors.
TEST(Base64, Rfc4648TestVectors) {
  const std::pair<std::string_view, std::string_view> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (auto [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(as_bytes(plain)), encoded) << plain;
    EXPECT_EQ(decode_to_string(encoded), plain) << encoded;
  }
}

TEST(Base64, EncodesEveryByteValueWithTheStandardAlphabet) {
  Bytes all(256);
  for (int i = 0; i < 256; ++i) all[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
  std::string encoded = base64_encode(all);
  // '+' and '/' (not the URL-safe '-' and '_') carry values 62 and 63.
  EXPECT_EQ(encoded.substr(0, 8), "AAECAwQF");
  EXPECT_EQ(encoded.substr(encoded.size() - 8), "/P3+/w==");
  EXPECT_EQ(encoded.find_first_of("-_\r\n"), std::string::npos);
  auto decoded = base64_decode(encoded);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(*decoded, all);
}

TEST(Base64, LineBreaksNoneIsOneLine) {
  Bytes data = random_bytes(100, 1);
  std::string text = base64_encode(data, LineBreaks::none);
  EXPECT_EQ(text.size(), 136u);
  EXPECT_EQ(text.find_first_of("\r\n"), std::string::npos);
}

TEST(Base64, LineBreaksEvery64Lf) {
  Bytes data = random_bytes(100, 2);  // 136 symbols: 64 + 64 + 8
  std::string flat = base64_encode(data);
  std::string text = base64_encode(data, LineBreaks::every64_lf);
  EXPECT_EQ(text, flat.substr(0, 64) + "\n" + flat.substr(64, 64) + "\n" + flat.substr(128) + "\n");
  EXPECT_EQ(text.find('\r'), std::string::npos);
  // A full last line gets its line feed and no empty line after it.
  EXPECT_EQ(base64_encode(random_bytes(48, 3), LineBreaks::every64_lf).size(), 65u);
  EXPECT_EQ(base64_encode({}, LineBreaks::every64_lf), "");
}

TEST(Base64, LineBreaksEvery76Crlf) {
  Bytes data = random_bytes(100, 4);  // 136 symbols: 76 + 60
  std::string flat = base64_encode(data);
  std::string text = base64_encode(data, LineBreaks::every76_crlf);
  EXPECT_EQ(text, flat.substr(0, 76) + "\r\n" + flat.substr(76) + "\r\n");
  EXPECT_EQ(base64_encode(random_bytes(57, 5), LineBreaks::every76_crlf).size(), 78u);
}

TEST(Base64, RoundTripsEveryLengthInEveryMode) {
  for (std::size_t n = 0; n < 200; ++n) {
    Bytes data = random_bytes(n, static_cast<unsigned>(n) + 100);
    for (LineBreaks mode : {LineBreaks::none, LineBreaks::every64_lf, LineBreaks::every76_crlf}) {
      auto decoded = base64_decode(base64_encode(data, mode));
      ASSERT_TRUE(decoded.ok()) << "length " << n << ": " << decoded.error().message;
      ASSERT_EQ(*decoded, data) << "length " << n;
    }
  }
}

// RFC 8951 3.1: CR, LF, space and tab anywhere, including inside a 4-symbol group and around '='.
TEST(Base64, DecodeSkipsCrLfSpaceAndTabAnywhere) {
  EXPECT_EQ(decode_to_string("Zm9v\r\nYmFy\r\n"), "foobar");
  EXPECT_EQ(decode_to_string(" Z m 9 v Y m F y "), "foobar");
  EXPECT_EQ(decode_to_string("\tZm\t9vYm\nFy\r"), "foobar");
  EXPECT_EQ(decode_to_string("Zg\r\n=\t= \n"), "f");
  EXPECT_EQ(decode_to_string("Zm8 =\n"), "fo");
  EXPECT_EQ(decode_to_string("\r\n \t"), "");
}

// RFC 8951: a sender may put the whole body on one line; nothing limits its length.
TEST(Base64, DecodesOneLineLongerThan4000Characters) {
  Bytes data = random_bytes(3003, 6);
  std::string text = base64_encode(data);
  ASSERT_EQ(text.size(), 4004u);
  ASSERT_EQ(text.find('\n'), std::string::npos);
  auto decoded = base64_decode(text + "\r\n");
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(*decoded, data);
}

TEST(Base64, InvalidCharacterNamesCharacterAndOffset) {
  // Offsets count every character of the input, whitespace included.
  expect_error("Zm9vYmFy\r\nZm9vYmF%", "base64: invalid character '%' at offset 17");
  expect_error("Zm9v-mFy", "base64: invalid character '-' at offset 4");  // base64url is not accepted
  expect_error("Zm9v_mFy", "base64: invalid character '_' at offset 4");
  expect_error(std::string_view("Zm\x01v", 4), "base64: invalid character byte 0x01 at offset 2");
  expect_error("Zm9v\xc3\xa9", "base64: invalid character byte 0xc3 at offset 4");
  expect_error("Zm9v\fYmFy", "base64: invalid character byte 0x0c at offset 4");  // form feed is not tolerated
}

TEST(Base64, MissingPadding) {
  expect_error("Zm9vYg", "base64: input ends inside a 4-character group (2 left over; missing '=' padding or truncated)");
  expect_error("Zm9vYmE", "base64: input ends inside a 4-character group (3 left over; missing '=' padding or truncated)");
  expect_error("Zm9vY", "base64: input ends inside a 4-character group (1 left over; missing '=' padding or truncated)");
  expect_error("Zg=", "base64: input ends inside a 4-character group (3 left over; missing '=' padding or truncated)");
}

TEST(Base64, DataAfterPadding) {
  expect_error("Zg==Zg==", "base64: data after padding at offset 4 (padding began at offset 2)");
  expect_error("Zm8=Zm8=", "base64: data after padding at offset 4 (padding began at offset 3)");
  expect_error("Zm=9", "base64: data after padding at offset 3 (padding began at offset 2)");
  expect_error("Zg==\r\nZg", "base64: data after padding at offset 6 (padding began at offset 2)");
}

TEST(Base64, PaddingTooEarly) {
  expect_error("=Zg=", "base64: padding '=' at offset 0 where data is expected");
  expect_error("Z===", "base64: padding '=' at offset 1 where data is expected");
  expect_error("Zm9v=", "base64: padding '=' at offset 4 where data is expected");
  expect_error("Zg===", "base64: padding '=' at offset 4 where data is expected");
  expect_error("Zm9v\n\n====", "base64: padding '=' at offset 6 where data is expected");
}

}  // namespace
}  // namespace estlab
