// PEM/DER/base64 detection and conversion: what a user hands the suite in a file may be any of them.
#include "estlab/core/encoding.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "estlab/core/base64.hpp"
#include "test_support.hpp"

namespace estlab {
namespace {

using test::read_data;
using test::read_text;

std::size_t line_count(std::string_view text) { return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')); }

TEST(DetectEncoding, DerPemBase64) {
  Bytes der = read_data("leaf.cert.der");
  EXPECT_EQ(detect_encoding(der), Encoding::der);
  EXPECT_EQ(detect_encoding(read_data("leaf.cert.pem")), Encoding::pem);
  EXPECT_EQ(detect_encoding(as_bytes(base64_encode(der))), Encoding::base64);
  EXPECT_EQ(detect_encoding(as_bytes(base64_encode(der, LineBreaks::every76_crlf))), Encoding::base64);
  // PEM with text before the block (openssl's "subject=" lines, "Bag Attributes") is still PEM.
  EXPECT_EQ(detect_encoding(as_bytes("subject=CN=x\n" + read_text("leaf.cert.pem"))), Encoding::pem);
}

TEST(DetectEncoding, GarbageIsUnknown) {
  EXPECT_EQ(detect_encoding({}), Encoding::unknown);
  const Bytes binary = {0x00, 0xff, 0x13, 0x37, 0x80};
  EXPECT_EQ(detect_encoding(binary), Encoding::unknown);
  EXPECT_EQ(detect_encoding(as_bytes("not base64!")), Encoding::unknown);
  EXPECT_EQ(detect_encoding(as_bytes(" \r\n\t")), Encoding::unknown);  // whitespace only
  // DER, but not one complete SEQUENCE: truncated, or with trailing bytes, or another tag.
  Bytes der = read_data("leaf.cert.der");
  EXPECT_EQ(detect_encoding(ByteView(der).first(der.size() - 1)), Encoding::unknown);
  Bytes trailing = der;
  trailing.push_back(0x00);
  EXPECT_EQ(detect_encoding(trailing), Encoding::unknown);
  const Bytes octet_string = {0x04, 0x02, 0xaa, 0xbb};
  EXPECT_EQ(detect_encoding(octet_string), Encoding::unknown);
}

TEST(DetectEncoding, NamesForReports) {
  EXPECT_STREQ(to_string(Encoding::der), "DER");
  EXPECT_STREQ(to_string(Encoding::pem), "PEM");
  EXPECT_STREQ(to_string(Encoding::base64), "base64");
  EXPECT_STREQ(to_string(Encoding::unknown), "unknown");
}

TEST(DerElementLength, CompleteElements) {
  Bytes der = read_data("leaf.cert.der");
  auto len = der_element_length(der);
  ASSERT_TRUE(len.ok()) << len.error().message;
  EXPECT_EQ(*len, der.size());
  // Only the first element counts: trailing bytes are the caller's business.
  der.insert(der.end(), {0x05, 0x00});
  EXPECT_EQ(*der_element_length(der), der.size() - 2);

  const Bytes empty_sequence = {0x30, 0x00};
  EXPECT_EQ(*der_element_length(empty_sequence), 2u);
  Bytes long_form = {0x30, 0x81, 0x80};  // 128 content bytes need the long form
  long_form.resize(3 + 128, 0x00);
  EXPECT_EQ(*der_element_length(long_form), 131u);
}

void expect_der_error(const Bytes& data, const std::string& message) {
  auto len = der_element_length(data);
  ASSERT_FALSE(len.ok()) << "length " << *len;
  EXPECT_EQ(len.error().code, ErrorCode::invalid_input);
  EXPECT_EQ(len.error().message, message);
}

TEST(DerElementLength, IndefiniteLengthIsBerNotDer) {
  expect_der_error({0x30, 0x80, 0x02, 0x01, 0x05, 0x00, 0x00}, "DER: indefinite length (BER) at offset 1");
}

TEST(DerElementLength, Truncated) {
  expect_der_error({0x30}, "DER: fewer than 2 bytes");
  expect_der_error({0x30, 0x05, 0x01, 0x02}, "DER: element says 5 bytes but only 2 follow");
  expect_der_error({0x30, 0x82, 0x01}, "DER: truncated length field");
  Bytes der = read_data("leaf.cert.der");
  der.resize(100);
  auto len = der_element_length(der);
  ASSERT_FALSE(len.ok());
  EXPECT_EQ(len.error().message, "DER: element says " + std::to_string(read_data("leaf.cert.der").size() - 4) +
                                     " bytes but only 96 follow");
}

TEST(DerElementLength, NonMinimalLengthIsRejected) {
  Bytes short_in_long_form = {0x30, 0x81, 0x05, 1, 2, 3, 4, 5};  // 5 fits the short form
  expect_der_error(short_in_long_form, "DER: non-minimal length encoding");
  Bytes leading_zero = {0x30, 0x82, 0x00, 0x80};  // 0x80 needs one length byte, not two
  leading_zero.resize(4 + 0x80, 0x00);
  expect_der_error(leading_zero, "DER: non-minimal length encoding");
  expect_der_error({0x30, 0x85, 1, 1, 1, 1, 1}, "DER: length of length 5 is too large");
}

TEST(PemDecodeAll, MultipleBlocksInOrder) {
  auto blocks = pem_decode_all(read_text("chain.pem"));
  ASSERT_TRUE(blocks.ok()) << blocks.error().message;
  ASSERT_EQ(blocks->size(), 3u);
  for (const auto& block : *blocks) EXPECT_EQ(block.label, "CERTIFICATE");
  EXPECT_EQ((*blocks)[0].der, read_data("leaf.cert.der"));
  EXPECT_EQ((*blocks)[2].der, read_data("root.cert.der"));
}

TEST(PemDecodeAll, MixedLabelsAndTextBetweenBlocks) {
  // openssl ecparam -genkey writes "EC PARAMETERS" then "EC PRIVATE KEY"; text outside blocks
  // (openssl's Bag Attributes, with colons) is not part of any block.
  std::string text = "Bag Attributes\n    localKeyID: 01 02\n" + read_text("leaf.key.pem") + "subject=CN=x\n" +
                     read_text("leaf.cert.pem");
  auto blocks = pem_decode_all(text);
  ASSERT_TRUE(blocks.ok()) << blocks.error().message;
  ASSERT_EQ(blocks->size(), 3u);
  EXPECT_EQ((*blocks)[0].label, "EC PARAMETERS");
  EXPECT_EQ((*blocks)[1].label, "EC PRIVATE KEY");
  EXPECT_EQ((*blocks)[2].label, "CERTIFICATE");
  // The P-256 named-curve parameters are exactly the OID 1.2.840.10045.3.1.7.
  EXPECT_EQ(to_hex((*blocks)[0].der), "06082a8648ce3d030107");
}

TEST(PemDecodeAll, CrlfLineEndings) {
  std::string crlf;
  for (char c : read_text("leaf.cert.pem")) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  auto blocks = pem_decode_all(crlf);
  ASSERT_TRUE(blocks.ok()) << blocks.error().message;
  ASSERT_EQ(blocks->size(), 1u);
  EXPECT_EQ((*blocks)[0].label, "CERTIFICATE");
  EXPECT_EQ((*blocks)[0].der, read_data("leaf.cert.der"));
}

TEST(PemDecodeAll, NoBlocksIsAnEmptyList) {
  auto blocks = pem_decode_all("just text\n");
  ASSERT_TRUE(blocks.ok());
  EXPECT_TRUE(blocks->empty());
}

TEST(PemDecodeAll, BlockWithoutEndNamesBlockLabelAndLine) {
  std::string first = read_text("leaf.cert.pem");
  std::string text = first + "-----BEGIN CERTIFICATE-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n";
  auto blocks = pem_decode_all(text);
  ASSERT_FALSE(blocks.ok());
  EXPECT_EQ(blocks.error().code, ErrorCode::invalid_input);
  EXPECT_EQ(blocks.error().message,
            "PEM block 2 (CERTIFICATE) at line " + std::to_string(line_count(first) + 1) + ": no matching END line");
  // An END line with another label does not close the block.
  auto mismatched = pem_decode_all("-----BEGIN X509 CRL-----\nAAAA\n-----END CERTIFICATE-----\n");
  ASSERT_FALSE(mismatched.ok());
  EXPECT_EQ(mismatched.error().message, "PEM block 1 (X509 CRL) at line 1: no matching END line");
}

TEST(PemDecodeAll, MalformedBeginLine) {
  auto blocks = pem_decode_all("\n\n-----BEGIN CERTIFICATE\nAAAA\n-----END CERTIFICATE-----\n");
  ASSERT_FALSE(blocks.ok());
  EXPECT_EQ(blocks.error().message, "PEM block 1 at line 3: malformed BEGIN line");
}

TEST(PemDecodeAll, EncryptedPemHeadersAreUnsupported) {
  // openssl ec -aes128: "Proc-Type: 4,ENCRYPTED" and "DEK-Info:" headers (RFC 1421).
  auto blocks = pem_decode_all(read_text("leaf.key.enc-trad.pem"));
  ASSERT_FALSE(blocks.ok());
  EXPECT_EQ(blocks.error().code, ErrorCode::unsupported);
  EXPECT_EQ(blocks.error().message,
            "PEM block 1 (EC PRIVATE KEY) at line 1: encrypted or header-bearing PEM is not supported");
}

TEST(PemDecodeAll, BadBase64InsideABlockNamesTheBlock) {
  std::string text = "\n-----BEGIN CERTIFICATE-----\nMIIB%\n-----END CERTIFICATE-----\n";
  auto blocks = pem_decode_all(text);
  ASSERT_FALSE(blocks.ok());
  // The base64 offset counts from the block's body, which starts right after the BEGIN line's dashes.
  EXPECT_EQ(blocks.error().message, "PEM block 1 (CERTIFICATE) at line 2: base64: invalid character '%' at offset 5");
}

TEST(PemEncode, SixtyFourColumnsAndRoundTrip) {
  Bytes der = read_data("leaf.cert.der");
  std::string pem = pem_encode("CERTIFICATE", der);
  EXPECT_EQ(pem.rfind("-----BEGIN CERTIFICATE-----\n", 0), 0u);
  EXPECT_TRUE(pem.ends_with("\n-----END CERTIFICATE-----\n"));
  auto lines = test::split(pem, "\n");
  for (std::size_t i = 1; i + 3 < lines.size(); ++i) EXPECT_EQ(lines[i].size(), 64u) << "line " << i;
  auto blocks = pem_decode_all(pem);
  ASSERT_TRUE(blocks.ok()) << blocks.error().message;
  ASSERT_EQ(blocks->size(), 1u);
  EXPECT_EQ((*blocks)[0].der, der);
  // openssl writes the same text for the same certificate.
  EXPECT_EQ(pem, read_text("leaf.cert.pem"));
}

TEST(ToDer, EachInputForm) {
  Bytes der = read_data("leaf.cert.der");
  const std::vector<std::string_view> labels = {"CERTIFICATE"};
  EXPECT_EQ(*to_der(der, labels, "certificate"), der);
  EXPECT_EQ(*to_der(read_data("leaf.cert.pem"), labels, "certificate"), der);
  EXPECT_EQ(*to_der(as_bytes(base64_encode(der, LineBreaks::every76_crlf)), labels, "certificate"), der);
  // The first block with a wanted label, skipping others.
  auto from_bundle = to_der(as_bytes(read_text("leaf.key.pem") + read_text("int.cert.pem")), labels, "certificate");
  ASSERT_TRUE(from_bundle.ok()) << from_bundle.error().message;
  EXPECT_EQ(*from_bundle, (*pem_decode_all(read_text("int.cert.pem")))[0].der);
}

void expect_to_der_error(ByteView data, const std::string& message) {
  auto der = to_der(data, {"CERTIFICATE", "TRUSTED CERTIFICATE"}, "certificate");
  ASSERT_FALSE(der.ok());
  EXPECT_EQ(der.error().code, ErrorCode::invalid_input);
  EXPECT_EQ(der.error().message, message);
}

TEST(ToDer, TrailingBytesAfterDer) {
  Bytes der = read_data("leaf.cert.der");
  der.insert(der.end(), {0x00, 0x00, 0x00});
  expect_to_der_error(der, "certificate: 3 trailing bytes after the DER element");
}

TEST(ToDer, TruncatedDer) {
  Bytes der = read_data("leaf.cert.der");
  std::size_t full = der.size();
  der.resize(full - 10);
  expect_to_der_error(der, "certificate: DER: element says " + std::to_string(full - 4) + " bytes but only " +
                               std::to_string(full - 14) + " follow");
}

TEST(ToDer, WrongLabelGarbageAndBadBase64) {
  expect_to_der_error(read_data("leaf.key.pem"), "certificate: no PEM block labelled CERTIFICATE or TRUSTED CERTIFICATE");
  const Bytes binary = {0x01, 0x02, 0xff};
  expect_to_der_error(binary, "certificate: neither DER, PEM nor base64");
  expect_to_der_error(as_bytes("MIIBZg==AA"), "certificate: base64: data after padding at offset 8 (padding began at offset 6)");
  expect_to_der_error(as_bytes("-----BEGIN CERTIFICATE-----\nMIIB\n"),
                      "certificate: PEM block 1 (CERTIFICATE) at line 1: no matching END line");
}

}  // namespace
}  // namespace estlab
