// The strict DER reader and writer under CMC and the CSR attributes: what X.690 10.1 (definite,
// minimal lengths), 8.3.2 (minimal INTEGERs) and 11.6 (SET OF order) require, each edge case
// accepted or rejected with a message that names what is wrong.
#include "estlab/core/der.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "estlab/core/oids.hpp"
#include "estlab/core/ossl.hpp"

namespace estlab {
namespace {

Bytes hex(std::string_view text) { return *from_hex(text); }

template <typename T>
void expect_error(const Result<T>& result, std::string_view needle) {
  ASSERT_FALSE(result.ok()) << "accepted; expected an error containing \"" << needle << "\"";
  EXPECT_EQ(result.error().code, ErrorCode::invalid_input);
  EXPECT_NE(result.error().message.find(needle), std::string::npos) << result.error().message;
}

// Reading the first element of `encoding` as `what`: the error, or success. (The Element itself
// would point into a buffer gone when this returns.)
Result<void> read_first(std::string_view encoding, const std::string& what) {
  Bytes data = hex(encoding);
  auto element = der::Reader(data).next(what);
  if (!element.ok()) return element.error();
  return {};
}

Result<void> expect_first(std::string_view encoding, std::uint8_t tag, const std::string& what) {
  Bytes data = hex(encoding);
  auto element = der::Reader(data).expect(tag, what);
  if (!element.ok()) return element.error();
  return {};
}

Result<void> read_single_hex(std::string_view encoding, std::uint8_t tag, const std::string& what) {
  Bytes data = hex(encoding);
  auto element = der::read_single(data, tag, what);
  if (!element.ok()) return element.error();
  return {};
}

// `levels` SEQUENCEs around a NULL.
Bytes nested_sequences(int levels) {
  Bytes value = {der::kNull, 0x00};
  for (int i = 0; i < levels; ++i) value = der::encode_sequence(value);
  return value;
}

// --- reading

TEST(DerReader, YieldsTagContentAndWholeElement) {
  Bytes data = hex("3006" "020105" "0401ff" "0500");
  der::Reader reader(data);
  EXPECT_EQ(reader.peek_tag(), der::kSequence);
  auto seq = reader.next("outer");
  ASSERT_TRUE(seq.ok()) << seq.error().message;
  EXPECT_EQ(seq->tag, der::kSequence);
  EXPECT_EQ(seq->whole.data(), data.data());  // views into the buffer, not copies
  EXPECT_EQ(seq->whole.size(), 8u);
  EXPECT_EQ(Bytes(seq->content.begin(), seq->content.end()), hex("020105" "0401ff"));
  EXPECT_EQ(reader.remaining(), 2u);

  auto null = reader.expect(der::kNull, "trailer");
  ASSERT_TRUE(null.ok()) << null.error().message;
  EXPECT_TRUE(null->content.empty());
  EXPECT_TRUE(reader.empty());
  EXPECT_EQ(reader.peek_tag(), std::nullopt);
  expect_error(reader.next("third element"), "third element is missing");
}

// Elements are views: a Reader over a temporary buffer would hand out dangling ones.
static_assert(std::is_constructible_v<der::Reader, const Bytes&>);
static_assert(!std::is_constructible_v<der::Reader, Bytes&&>);

TEST(DerReader, LongFormLengthWhereTheContentNeedsIt) {
  for (std::size_t size : {std::size_t{127}, std::size_t{128}, std::size_t{255}, std::size_t{256}, std::size_t{70000}}) {
    Bytes content(size, 0xab);
    Bytes element = der::encode_octet_string(content);
    std::size_t header = size < 0x80 ? 2 : size < 0x100 ? 3 : size < 0x10000 ? 4 : 5;
    EXPECT_EQ(element.size(), header + size) << size;
    der::Reader reader(element);
    auto read = reader.expect(der::kOctetString, "value");
    ASSERT_TRUE(read.ok()) << size << ": " << read.error().message;
    EXPECT_EQ(read->content.size(), size);
    EXPECT_TRUE(reader.empty());
  }
  EXPECT_EQ(to_hex(ByteView(der::encode_sequence(Bytes(127, 0))).first(2)), "307f");
  EXPECT_EQ(to_hex(ByteView(der::encode_sequence(Bytes(128, 0))).first(3)), "308180");
  EXPECT_EQ(to_hex(ByteView(der::encode_sequence(Bytes(256, 0))).first(4)), "30820100");
}

TEST(DerReader, RejectsIndefiniteLength) {
  expect_error(read_first("3080" "0500" "0000", "PKIData"), "PKIData: DER: indefinite length");
}

TEST(DerReader, RejectsLongFormLengthForShortContent) {
  // 5 content bytes fit the short form: 81 05 is not minimal, nor is 82 00 05.
  expect_error(read_first("308105" "0203010001", "value"), "value: DER: non-minimal length");
  expect_error(read_first("30820005" "0203010001", "value"), "non-minimal length");
  // 0x80 bytes need 81 80; a leading zero octet in the length is still not minimal.
  Bytes padded = hex("3082" "0080");
  padded.resize(padded.size() + 0x80, 0x00);
  expect_error(der::Reader(padded).next("value"), "non-minimal length");
}

TEST(DerReader, RejectsOverlongLengthOfLength) {
  expect_error(read_first("3085ffffffffff", "value"), "length of length 5 is too large");
}

TEST(DerReader, RejectsEveryTruncation) {
  Bytes data = der::encode_sequence(der::encode_octet_string(Bytes(200, 0x11)));
  for (std::size_t n = 1; n < data.size(); ++n) {
    der::Reader reader(ByteView(data).first(n));
    auto element = reader.next("value");
    EXPECT_FALSE(element.ok()) << "accepted the first " << n << " bytes";
  }
  expect_error(read_first("30", "value"), "fewer than 2 bytes");
  expect_error(read_first("3082", "value"), "truncated length field");
  expect_error(read_first("3005" "0500", "value"), "element says 5 bytes but only 2 follow");
}

TEST(DerReader, RejectsMultiByteTags) {
  expect_error(read_first("1f8101" "00", "value"), "multi-byte tags");
}

TEST(DerReader, ExpectNamesBothTags) {
  expect_error(expect_first("3100", der::kSequence, "attrValues"), "attrValues: SET where SEQUENCE was expected");
  expect_error(expect_first("a000", der::kInteger, "id"), "id: [0] where INTEGER was expected");
}

TEST(DerReader, ReadSingleRejectsTrailingBytes) {
  Bytes data = hex("3003020101");
  auto one = der::read_single(data, der::kSequence, "PKIResponse");
  ASSERT_TRUE(one.ok()) << one.error().message;
  EXPECT_EQ(one->whole.size(), 5u);
  expect_error(read_single_hex("3003020101" "0000", der::kSequence, "PKIResponse"),
               "PKIResponse: 2 trailing bytes after the SEQUENCE");
  expect_error(read_single_hex("3100" "05", der::kSet, "values"), "values: 1 trailing bytes after the SET");
  expect_error(der::read_single(ByteView{}, der::kSequence, "PKIResponse"), "PKIResponse is missing");
  expect_error(read_single_hex("0500", der::kSequence, "PKIResponse"), "NULL where SEQUENCE was expected");
}

TEST(DerReader, TagNames) {
  EXPECT_EQ(der::tag_name(der::kSequence), "SEQUENCE");
  EXPECT_EQ(der::tag_name(der::kPrintableString), "PrintableString");
  EXPECT_EQ(der::tag_name(0xa1), "[1]");  // context-specific, constructed
  EXPECT_EQ(der::tag_name(0x82), "[2]");  // context-specific, primitive
  EXPECT_EQ(der::tag_name(0x41), "tag 0x41");
  EXPECT_TRUE(der::is_constructed(der::kSet));
  EXPECT_TRUE(der::is_constructed(0xa0));
  EXPECT_FALSE(der::is_constructed(der::kOctetString));
}

// --- walking a whole value

TEST(DerCheckTree, NestingLimit) {
  // check_tree starts at depth 0: the content of the 32nd SEQUENCE is at depth 32, still allowed.
  EXPECT_TRUE(der::check_tree(nested_sequences(der::kMaxDepth)).ok());
  expect_error(der::check_tree(nested_sequences(der::kMaxDepth + 1)), "DER nesting deeper than 32");
  EXPECT_TRUE(der::check_tree(nested_sequences(4), 4).ok());
  expect_error(der::check_tree(nested_sequences(5), 4), "DER nesting deeper than 4");
  expect_error(der::check_one_element(nested_sequences(200)), "nesting deeper");
}

TEST(DerCheckTree, FindsBadElementsDeepInside) {
  // SEQUENCE { SEQUENCE { indefinite SEQUENCE } }
  expect_error(der::check_tree(hex("3006" "3004" "30800000")), "indefinite length");
  expect_error(der::check_tree(hex("3005" "3003" "308100")), "non-minimal length");
  // Constructed context tags are walked, primitive contents are not.
  expect_error(der::check_tree(hex("a004" "30800000")), "indefinite length");
  EXPECT_TRUE(der::check_tree(hex("8004" "30800000")).ok());
  EXPECT_TRUE(der::check_tree(hex("0404" "30800000")).ok());
  // Several top-level elements, the second one bad.
  expect_error(der::check_tree(hex("0500" "3003" "0201")), "element says 3 bytes");
  EXPECT_TRUE(der::check_tree({}).ok());
}

TEST(DerCheckTree, OneElementExactly) {
  EXPECT_TRUE(der::check_one_element(hex("3003020101")).ok());
  expect_error(der::check_one_element({}), "empty value");
  expect_error(der::check_one_element(hex("3003020101" "00")), "1 bytes after the DER element");
  expect_error(der::check_one_element(hex("0500" "0500")), "2 bytes after the DER element");
  expect_error(der::check_one_element(hex("3080" "0000")), "indefinite length");
}

// --- INTEGER

TEST(DerInteger, MinimalTwosComplement) {
  const std::pair<std::int64_t, std::string_view> cases[] = {
      {0, "020100"},          {1, "020101"},          {127, "02017f"},         {128, "02020080"},
      {255, "020200ff"},      {256, "02020100"},      {-1, "0201ff"},          {-128, "020180"},
      {-129, "0202ff7f"},     {-256, "0202ff00"},     {-257, "0202feff"},      {4294967295, "020500ffffffff"},
      {std::numeric_limits<std::int64_t>::max(), "02087fffffffffffffff"},
      {std::numeric_limits<std::int64_t>::min(), "02088000000000000000"},
  };
  for (const auto& [value, encoding] : cases) {
    EXPECT_EQ(to_hex(der::encode_integer(value)), encoding) << value;
    Bytes data = hex(encoding);
    auto element = der::Reader(data).next("INTEGER");
    ASSERT_TRUE(element.ok()) << element.error().message;
    EXPECT_EQ(der::decode_integer(*element), value) << encoding;
  }
}

TEST(DerInteger, RoundTrip) {
  for (std::int64_t value = -70000; value <= 70000; value += 7) {
    Bytes encoded = der::encode_integer(value);
    auto element = der::Reader(encoded).next("INTEGER");
    ASSERT_TRUE(element.ok()) << element.error().message;
    ASSERT_EQ(der::decode_integer(*element), value) << to_hex(encoded);
  }
}

TEST(DerInteger, RejectsWhatIsNotAMinimalInteger) {
  for (std::string_view encoding : {"0200",                     // no content octets
                                    "02020001", "0202007f",     // a leading zero that only repeats the sign
                                    "0202ffff", "0202ff80",     // a leading 0xff likewise
                                    "0209010000000000000000",   // more than 64 bits
                                    "0a0101", "800101"}) {      // ENUMERATED, [0]: not INTEGER
    Bytes data = hex(encoding);
    auto element = der::Reader(data).next("INTEGER");
    ASSERT_TRUE(element.ok()) << encoding << ": " << element.error().message;
    EXPECT_EQ(der::decode_integer(*element), std::nullopt) << encoding;
  }
  // Minimal, but 2^64 - 1 does not fit: nullopt, not a wrapped value.
  Bytes nine_octets = hex("020900ffffffffffffffff");
  auto nine = der::Reader(nine_octets).next("INTEGER");
  ASSERT_TRUE(nine.ok());
  EXPECT_EQ(der::decode_integer(*nine), std::nullopt);
}

// --- OBJECT IDENTIFIER

TEST(DerOid, DottedSyntax) {
  for (std::string_view good : {"1.2", "0.0", "2.999", "1.2.840.113549.1.9.14", "2.25.12345678901234567890"}) {
    EXPECT_TRUE(der::is_dotted_oid(good)) << good;
  }
  for (std::string_view bad : {"", "1", "1.", ".1", "1..2", "3.1", "12.3", "01.2", "1.02", "1.2a", "1.-2", " 1.2",
                               "2.123456789012345678901"}) {
    EXPECT_FALSE(der::is_dotted_oid(bad)) << bad;
    EXPECT_TRUE(der::encode_oid(bad).empty()) << bad;
  }
  // Syntax alone is not enough: under arcs 0 and 1 the second arc is below 40 (X.690 8.19.4).
  EXPECT_TRUE(der::encode_oid("1.40").empty());
}

TEST(DerOid, RoundTrip) {
  EXPECT_EQ(to_hex(der::encode_oid("1.2.840.113549")), "06062a864886f70d");
  EXPECT_EQ(to_hex(der::encode_oid("2.999")), "06028837");
  for (std::string_view dotted : {"1.2", "2.999.7030.1.1", "1.3.6.1.5.5.7.7.25", "2.25.12345678901234567890"}) {
    Bytes encoded = der::encode_oid(dotted);
    ASSERT_FALSE(encoded.empty()) << dotted;
    auto element = der::Reader(encoded).next("OID");
    ASSERT_TRUE(element.ok()) << element.error().message;
    auto decoded = der::decode_oid(*element, "OID");
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    EXPECT_EQ(*decoded, dotted);
  }
}

TEST(DerOid, RejectsMalformedOids) {
  auto decode = [](std::string_view encoding) {
    Bytes data = hex(encoding);
    return der::decode_oid(*der::Reader(data).next("x"), "attrType");
  };
  expect_error(decode("0600"), "attrType: malformed OBJECT IDENTIFIER");
  expect_error(decode("060180"), "malformed OBJECT IDENTIFIER");      // a subidentifier padded with 0x80
  expect_error(decode("06022a86"), "malformed OBJECT IDENTIFIER");    // the last subidentifier unterminated
  expect_error(decode("020101"), "attrType: INTEGER where OBJECT IDENTIFIER was expected");
}

// --- writing

TEST(DerWriter, TagLengthContent) {
  EXPECT_EQ(to_hex(der::encode_sequence({})), "3000");
  EXPECT_EQ(to_hex(der::encode_octet_string(hex("0102"))), "04020102");
  EXPECT_EQ(to_hex(der::encode_utf8_string("ab")), "0c026162");
  EXPECT_EQ(to_hex(der::encode_tlv(0xa0, der::encode_integer(1))), "a003020101");
  Bytes out = hex("05");
  der::append(out, hex("00"));
  EXPECT_EQ(to_hex(out), "0500");
}

// --- SET OF

TEST(DerSetOf, SortedByEncodingShorterPaddedWithZeros) {
  // By the whole encoding, tag and length included: 04 01 .. sorts before 04 02 .. whatever follows.
  std::vector<Bytes> values = {hex("0402aabb"), hex("0401ff"), hex("020105"), hex("0401ff")};
  EXPECT_EQ(to_hex(der::encode_set_of(values)), "310d" "020105" "0401ff" "0401ff" "0402aabb");
  der::sort_set_of(values);
  EXPECT_EQ(values, (std::vector<Bytes>{hex("020105"), hex("0401ff"), hex("0401ff"), hex("0402aabb")}));
  EXPECT_EQ(to_hex(der::encode_set_of({})), "3100");
  // The comparison X.690 11.6 describes: a shorter encoding is padded with zero octets.
  EXPECT_TRUE(der::set_of_less(hex("01"), hex("0101")));
  EXPECT_FALSE(der::set_of_less(hex("01"), hex("0100")));
  EXPECT_FALSE(der::set_of_less(hex("0100"), hex("01")));
  EXPECT_TRUE(der::set_of_less(hex("0100"), hex("02")));
}

TEST(DerSetOf, SameOrderAsOpenSsl) {
  // A multi-valued RDN is a SET OF AttributeTypeAndValue, which OpenSSL sorts when it encodes a Name.
  const std::pair<const char*, const char*> entries[] = {{"CN", "zzzz"}, {"OU", "bb"}, {"O", "a"}, {"L", "q"}};
  ossl::X509Name name(X509_NAME_new());
  ASSERT_TRUE(name);
  std::vector<Bytes> values;
  for (const auto& [type, value] : entries) {
    ASSERT_EQ(X509_NAME_add_entry_by_txt(name.get(), type, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value),
                                         -1, -1, values.empty() ? 0 : -1),
              1);
    Bytes atv = der::encode_oid(oid::to_dotted(type));
    der::append(atv, der::encode_utf8_string(value));
    values.push_back(der::encode_sequence(atv));
  }
  Bytes openssl = ossl::i2d_bytes(i2d_X509_NAME, name.get());
  EXPECT_EQ(to_hex(der::encode_sequence(der::encode_set_of(values))), to_hex(openssl));
}

}  // namespace
}  // namespace estlab
