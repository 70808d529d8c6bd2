// Distinguished names: the two text forms users type, their DER, and RFC 5280 7.1 name matching.
#include "estlab/core/name.hpp"

#include <gtest/gtest.h>

#include "test_support.hpp"

namespace estlab {
namespace {

using Attribute = DistinguishedName::Attribute;

DistinguishedName parse_ok(std::string_view text) {
  auto name = DistinguishedName::parse(text);
  EXPECT_TRUE(name.ok()) << text << ": " << name.error().message;
  return name.ok() ? std::move(name).value() : DistinguishedName{};
}

std::vector<std::pair<std::string, std::string>> pairs(const DistinguishedName& name) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& a : name.attributes()) out.emplace_back(a.type, a.value);
  return out;
}

using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST(DistinguishedName, ParsesCommaFormInWrittenOrder) {
  auto name = parse_ok("CN=device-1,O=Example,C=DE");
  EXPECT_EQ(pairs(name), (Pairs{{"CN", "device-1"}, {"O", "Example"}, {"C", "DE"}}));
  EXPECT_EQ(name.common_name(), "device-1");
  EXPECT_EQ(name.to_string(), "CN=device-1,O=Example,C=DE");
  // The DER carries the attributes in the same order: first RDN is CN (2.5.4.3).
  // SEQUENCE { SET { SEQUENCE { OID 2.5.4.3, UTF8String "device-1" } } ...
  EXPECT_EQ(to_hex(name.der()).rfind("30323111300f06035504030c08" + to_hex(as_bytes("device-1")), 0), 0u)
      << to_hex(name.der());
}

TEST(DistinguishedName, ParsesSlashForm) {
  auto name = parse_ok("/O=Example/CN=device-1");
  EXPECT_EQ(pairs(name), (Pairs{{"O", "Example"}, {"CN", "device-1"}}));
  EXPECT_EQ(name.to_string(), "O=Example,CN=device-1");
  // The same attributes in the same order as the comma form: the same DER.
  EXPECT_EQ(name.der(), parse_ok("O=Example,CN=device-1").der());
}

TEST(DistinguishedName, TrimsSpacesAroundTypesAndValues) {
  auto name = parse_ok(" CN = device-1 ,  O =Example ");
  EXPECT_EQ(pairs(name), (Pairs{{"CN", "device-1"}, {"O", "Example"}}));
}

TEST(DistinguishedName, LongNamesAndDottedOidsAsTypes) {
  auto name = parse_ok("commonName=a,2.5.4.10=b,1.3.6.1.4.1.99999.1=c");
  EXPECT_EQ(pairs(name), (Pairs{{"CN", "a"}, {"O", "b"}, {"1.3.6.1.4.1.99999.1", "c"}}));
  EXPECT_EQ(name.to_string(), "CN=a,O=b,1.3.6.1.4.1.99999.1=c");
}

TEST(DistinguishedName, BackslashEscapesInCommaForm) {
  auto name = parse_ok(R"(CN=a\,b\+c\=d\\e\/f,O=x)");
  EXPECT_EQ(pairs(name), (Pairs{{"CN", R"(a,b+c=d\e/f)"}, {"O", "x"}}));
  EXPECT_EQ(name.to_string(), R"(CN=a\,b\+c\=d\\e\/f,O=x)");
}

TEST(DistinguishedName, BackslashEscapesInSlashForm) {
  auto name = parse_ok(R"(/CN=a\/b/O=c,d)");
  EXPECT_EQ(pairs(name), (Pairs{{"CN", "a/b"}, {"O", "c,d"}}));
  EXPECT_EQ(name.to_string(), R"(CN=a\/b,O=c\,d)");
}

TEST(DistinguishedName, ToStringRoundTrips) {
  for (std::string_view text : {"CN=device-1,O=Example,C=DE", R"(CN=a\,b\+c\=d\\e\/f,O=x)", "/CN=x/OU=a,b/O=y=z",
                                "CN=Gr\xc3\xbc\xc3\x9f" "e,O=\xe6\x97\xa5\xe6\x9c\xac", "1.3.6.1.4.1.99999.1=c,CN=d"}) {
    auto first = parse_ok(text);
    auto second = parse_ok(first.to_string());
    EXPECT_EQ(pairs(second), pairs(first)) << text;
    EXPECT_EQ(second.der(), first.der()) << text;
  }
}

TEST(DistinguishedName, Utf8ValuesSurviveDer) {
  auto name = parse_ok("CN=Gr\xc3\xbc\xc3\x9f" "e");
  auto back = DistinguishedName::from_der(name.der());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->common_name(), "Gr\xc3\xbc\xc3\x9f" "e");
}

TEST(DistinguishedName, EmptyName) {
  auto name = parse_ok("");
  EXPECT_TRUE(name.empty());
  EXPECT_EQ(name.to_string(), "");
  EXPECT_EQ(name.common_name(), std::nullopt);
  EXPECT_EQ(to_hex(name.der()), "3000");
  EXPECT_EQ(to_hex(DistinguishedName{}.der()), "3000");
  EXPECT_TRUE(name == DistinguishedName{});
}

void expect_parse_error(std::string_view text, const std::string& message_start) {
  auto name = DistinguishedName::parse(text);
  ASSERT_FALSE(name.ok()) << text << " parsed as " << name->to_string();
  EXPECT_EQ(name.error().code, ErrorCode::invalid_input);
  EXPECT_EQ(name.error().message.substr(0, message_start.size()), message_start) << name.error().message;
}

TEST(DistinguishedName, MissingEqualsNamesTheAttribute) {
  expect_parse_error("CN=a,O", "name 'CN=a,O': attribute 2 ('O') has no '='");
  expect_parse_error("/CN=a/device", "name '/CN=a/device': attribute 2 ('device') has no '='");
  expect_parse_error("CN=a,", "name 'CN=a,': attribute 2 ('') has no '='");
  expect_parse_error("=a", "name '=a': attribute 1 has no type");
}

TEST(DistinguishedName, UnknownAttributeType) {
  expect_parse_error("CN=a,FOO=bar", "name 'CN=a,FOO=bar': attribute 'FOO=bar' is not valid");
  expect_parse_error("1.2.x=bar", "name '1.2.x=bar': attribute '1.2.x=bar' is not valid");
}

TEST(DistinguishedName, Rfc5280UpperBoundsAreEnforced) {
  // ub-common-name is 64; countryName is a two-letter PrintableString.
  expect_parse_error("CN=" + std::string(65, 'a'), "name 'CN=");
  EXPECT_TRUE(DistinguishedName::parse("CN=" + std::string(64, 'a')).ok());
  expect_parse_error("C=DEU", "name 'C=DEU': attribute 'C=DEU' is not valid");
}

// RFC 5280 7.1 as OpenSSL implements it: case-insensitive, internal whitespace collapsed, string
// types compared after conversion to UTF-8.
TEST(DistinguishedName, EqualityIsRfc5280Matching) {
  EXPECT_TRUE(parse_ok("CN=Device  One,O=ACME") == parse_ok("CN=device one,O=acme"));
  EXPECT_TRUE(parse_ok("CN=a,O=b") == parse_ok("/CN=a/O=b"));
  EXPECT_FALSE(parse_ok("CN=a,O=b") == parse_ok("O=b,CN=a"));  // order matters
  EXPECT_FALSE(parse_ok("CN=a,O=b") == parse_ok("CN=a,O=c"));
  EXPECT_FALSE(parse_ok("CN=a,O=b") == parse_ok("CN=a"));
  EXPECT_FALSE(parse_ok("CN=a") == DistinguishedName{});
  EXPECT_FALSE(parse_ok("CN=a-b") == parse_ok("CN=a b"));
}

TEST(DistinguishedName, PrintableStringMatchesUtf8String) {
  ossl::X509Name printable(X509_NAME_new());
  ASSERT_EQ(X509_NAME_add_entry_by_txt(printable.get(), "CN", V_ASN1_PRINTABLESTRING,
                                       reinterpret_cast<const unsigned char*>("Device 1"), -1, -1, 0),
            1);
  auto a = DistinguishedName::from_native(printable.get());
  ASSERT_TRUE(a.ok()) << a.error().message;
  auto b = parse_ok("CN=DEVICE 1");  // UTF8String
  EXPECT_NE(a->der(), b.der());
  EXPECT_TRUE(*a == b);
  EXPECT_EQ(a->common_name(), "Device 1");
}

TEST(DistinguishedName, FromDerOfACertificateSubject) {
  auto name = parse_ok("C=DE,O=estlab Lab,OU=Devices,CN=device-1.example");
  auto back = DistinguishedName::from_der(name.der());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->to_string(), "C=DE,O=estlab Lab,OU=Devices,CN=device-1.example");
  EXPECT_EQ(back->der(), name.der());
  auto native = back->to_native();
  ASSERT_TRUE(native);
  EXPECT_EQ(X509_NAME_entry_count(native.get()), 4);
}

TEST(DistinguishedName, FromDerOfGarbage) {
  for (const Bytes& garbage : {Bytes{}, Bytes{0x01, 0x02, 0x03}, Bytes{0x30, 0x05, 0x31}, Bytes{0x04, 0x00}}) {
    auto name = DistinguishedName::from_der(garbage);
    ASSERT_FALSE(name.ok()) << to_hex(garbage);
    EXPECT_EQ(name.error().code, ErrorCode::invalid_input);
    EXPECT_EQ(name.error().message.rfind("name: not a DER Name", 0), 0u) << name.error().message;
  }
}

TEST(DistinguishedName, FromDerRejectsTrailingBytes) {
  Bytes der = parse_ok("CN=a").der();
  der.push_back(0x00);
  auto name = DistinguishedName::from_der(der);
  EXPECT_FALSE(name.ok()) << "accepted a Name followed by a stray byte";
}

TEST(DistinguishedName, FromNativeNull) {
  auto name = DistinguishedName::from_native(nullptr);
  ASSERT_FALSE(name.ok());
  EXPECT_EQ(name.error().message, "name: missing");
}

}  // namespace
}  // namespace estlab
