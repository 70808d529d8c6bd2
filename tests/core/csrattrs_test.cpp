// The CSR Attributes response (RFC 7030 4.5.2, RFC 8951 4, RFC 9908): the RFC 7030 A.2 example,
// the empty response, builder and spec round trips, openssl's reading of ours, and strict DER:
// every truncation, bad length, wrong tag and mutation rejected with a message, never a crash.
#include "estlab/core/csrattrs.hpp"

#include <gtest/gtest.h>

#include <random>

#include "estlab/core/base64.hpp"
#include "estlab/core/der.hpp"
#include "estlab/core/oids.hpp"
#include "test_support.hpp"

namespace estlab {
namespace {

// RFC 7030 A.2: challengePassword, id-ecPublicKey {secp384r1}, extensionRequest {macAddress},
// ecdsa-with-SHA384.
constexpr std::string_view kRfc7030Example =
    "MEEGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAiMBYGCSqGSIb3DQEJDjEJBgcrBgEBAQEWBggqhkjOPQQDAw==";
constexpr std::string_view kRfc7030Spec =
    "challengePassword, id-ecPublicKey=secp384r1, extensionRequest=macAddress, ecdsa-with-SHA384";

Bytes example_der() { return *base64_decode(kRfc7030Example); }

Bytes hex(std::string_view text) { return *from_hex(text); }

// Expects an error whose message contains `needle`.
void expect_error(const Result<CsrAttrs>& result, std::string_view needle) {
  ASSERT_FALSE(result.ok()) << "accepted; expected an error containing \"" << needle << "\"";
  EXPECT_EQ(result.error().code, ErrorCode::invalid_input);
  EXPECT_NE(result.error().message.find(needle), std::string::npos) << result.error().message;
}

TEST(CsrAttrs, ParsesTheRfc7030Example) {
  auto attrs = CsrAttrs::parse(as_bytes(kRfc7030Example));
  ASSERT_TRUE(attrs.ok()) << attrs.error().message;
  ASSERT_EQ(attrs->entries().size(), 4u);
  const auto& e = attrs->entries();
  EXPECT_EQ(e[0], (CsrAttrEntry{std::string(oid::challenge_password), std::nullopt}));
  EXPECT_EQ(e[1].oid, oid::id_ec_public_key);
  ASSERT_TRUE(e[1].is_attribute());
  EXPECT_EQ(*e[1].values, std::vector<Bytes>{hex("06052b81040022")});  // secp384r1
  EXPECT_EQ(e[2].oid, oid::extension_request);
  EXPECT_EQ(*e[2].values, std::vector<Bytes>{hex("06072b060101010116")});  // macAddress
  EXPECT_EQ(e[3], (CsrAttrEntry{"1.2.840.10045.4.3.3", std::nullopt}));
  EXPECT_EQ(attrs->der(), example_der());

  EXPECT_TRUE(attrs->contains_oid("challengePassword"));
  EXPECT_TRUE(attrs->contains_oid("1.2.840.10045.4.3.3"));
  EXPECT_TRUE(attrs->contains_oid("extensionRequest"));
  EXPECT_FALSE(attrs->contains_oid("unstructuredName"));
  EXPECT_FALSE(attrs->contains_oid("no-such-name"));
  EXPECT_EQ(attrs->required_ec_curve(), "1.3.132.0.34");
  EXPECT_EQ(attrs->required_rsa_bits(), std::nullopt);
  EXPECT_EQ(attrs->extension_request_oids(), std::vector<std::string>{std::string(oid::mac_address)});
  EXPECT_EQ(attrs->find_attribute("challengePassword"), nullptr);  // a bare OID is not an Attribute
  ASSERT_NE(attrs->find_attribute("id-ecPublicKey"), nullptr);
}

TEST(CsrAttrs, TextOfTheRfc7030Example) {
  auto attrs = CsrAttrs::from_der(example_der());
  ASSERT_TRUE(attrs.ok()) << attrs.error().message;
  EXPECT_EQ(attrs->to_text(),
            "challengePassword\n"
            "id-ecPublicKey=secp384r1\n"
            "extensionRequest=macAddress\n"
            "ecdsa-with-SHA384\n");
  EXPECT_EQ(attrs->to_spec(), kRfc7030Spec);
}

TEST(CsrAttrs, SpecBuildsTheRfc7030ExampleByteForByte) {
  auto attrs = parse_csrattrs_spec(kRfc7030Spec);
  ASSERT_TRUE(attrs.ok()) << attrs.error().message;
  EXPECT_EQ(attrs->der(), example_der());
  // Dotted forms and extra whitespace give the same bytes.
  auto dotted = parse_csrattrs_spec(
      "  1.2.840.113549.1.9.7 ,1.2.840.10045.2.1 = 1.3.132.0.34,\n 1.2.840.113549.1.9.14=1.3.6.1.1.1.1.22, "
      "1.2.840.10045.4.3.3  ");
  ASSERT_TRUE(dotted.ok()) << dotted.error().message;
  EXPECT_EQ(dotted->der(), example_der());
}

TEST(CsrAttrs, BuilderBuildsTheRfc7030Example) {
  auto attrs = CsrAttrsBuilder()
                   .add_oid("challengePassword")
                   .require_ec_curve("secp384r1")
                   .add_attribute("extensionRequest", {hex("06072b060101010116")})
                   .add_oid("ecdsa-with-SHA384")
                   .build();
  ASSERT_TRUE(attrs.ok()) << attrs.error().message;
  EXPECT_EQ(attrs->der(), example_der());
  EXPECT_EQ(*attrs, *CsrAttrs::from_der(example_der()));
}

TEST(CsrAttrs, EmptyResponse) {
  auto attrs = CsrAttrs::parse(as_bytes("MAA="));
  ASSERT_TRUE(attrs.ok()) << attrs.error().message;
  EXPECT_TRUE(attrs->empty());
  EXPECT_EQ(attrs->to_text(), "");
  EXPECT_EQ(attrs->to_spec(), "");
  auto built = parse_csrattrs_spec("  ");
  ASSERT_TRUE(built.ok()) << built.error().message;
  EXPECT_EQ(built->der(), (Bytes{0x30, 0x00}));
  EXPECT_EQ(CsrAttrsBuilder().build()->der(), (Bytes{0x30, 0x00}));
}

TEST(CsrAttrs, Base64BodyWithLineBreaks) {
  // RFC 8951: receivers tolerate CR, LF and spaces in base64 bodies.
  std::string body = base64_encode(example_der(), LineBreaks::every64_lf);
  auto attrs = CsrAttrs::parse(as_bytes(body));
  ASSERT_TRUE(attrs.ok()) << attrs.error().message;
  EXPECT_EQ(attrs->der(), example_der());
}

TEST(CsrAttrs, RsaKeySizeAndExtensionTemplates) {
  auto attrs = CsrAttrsBuilder()
                   .require_rsa_bits(3072)
                   .add_extension_request({{"subjectAltName", false, {}}, {"keyUsage", false, {}}})
                   .build();
  ASSERT_TRUE(attrs.ok()) << attrs.error().message;
  EXPECT_EQ(attrs->required_rsa_bits(), 3072);
  EXPECT_EQ(attrs->required_ec_curve(), std::nullopt);
  EXPECT_EQ(attrs->extension_request_oids(), (std::vector<std::string>{"2.5.29.17", "2.5.29.15"}));
  EXPECT_EQ(attrs->to_spec(), "rsaEncryption=3072, extensionRequest=ext(subjectAltName keyUsage)");
  // rsaEncryption { INTEGER 3072 }; extensionRequest { SEQUENCE { {2.5.29.17, ''}, {2.5.29.15, ''} } }
  EXPECT_EQ(to_hex(attrs->der()),
            "3036"
            "3011" "06092a864886f70d010101" "3104" "02020c00"
            "3021" "06092a864886f70d01090e" "3114" "3012" "3007" "0603551d11" "0400" "3007" "0603551d0f" "0400");
  auto again = parse_csrattrs_spec(attrs->to_spec());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->der(), attrs->der());
}

TEST(CsrAttrs, RequiredKeyTypeRoundTripsThroughItsSpec) {
  for (KeyType type : all_key_types()) {
    auto attrs = parse_csrattrs_spec(key_type_csrattrs_spec(type));
    ASSERT_TRUE(attrs.ok()) << to_string(type) << ": " << attrs.error().message;
    EXPECT_EQ(attrs->required_key_type(), type) << to_string(type);
  }
  EXPECT_EQ(key_type_csrattrs_spec(KeyType::ec_p384), "ecdsa-with-SHA384, id-ecPublicKey=secp384r1");
  // A curve or a modulus without a key type of its own, and nothing at all, name none.
  EXPECT_EQ(parse_csrattrs_spec("id-ecPublicKey=secp521r1")->required_key_type(), std::nullopt);
  EXPECT_EQ(parse_csrattrs_spec("rsaEncryption=1024")->required_key_type(), std::nullopt);
  EXPECT_EQ(parse_csrattrs_spec("challengePassword")->required_key_type(), std::nullopt);
}

TEST(CsrAttrs, ExtensionWithAValueIsShownAsDer) {
  // basicConstraints, critical, cA FALSE: a template the text form cannot name, so it goes out verbatim.
  auto attrs = CsrAttrsBuilder().add_extension_request({{"basicConstraints", true, {0x30, 0x00}}}).build();
  ASSERT_TRUE(attrs.ok()) << attrs.error().message;
  EXPECT_EQ(attrs->to_spec(), "extensionRequest=der:300e300c0603551d130101ff04023000");
  auto again = parse_csrattrs_spec(attrs->to_spec());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->der(), attrs->der());
  EXPECT_EQ(again->extension_request_oids(), std::vector<std::string>{"2.5.29.19"});
}

TEST(CsrAttrs, SpecValueKindsRoundTrip) {
  const std::string spec =
      "1.3.6.1.4.1.99999.1=\"a \\\"quoted\\\", + value\", 1.3.6.1.4.1.99999.2=-129+0+65536, "
      "1.3.6.1.4.1.99999.3=der:0500, 1.3.6.1.4.1.99999.4=secp384r1+prime256v1";
  auto attrs = parse_csrattrs_spec(spec);
  ASSERT_TRUE(attrs.ok()) << attrs.error().message;
  ASSERT_EQ(attrs->entries().size(), 4u);
  const std::string text = "a \"quoted\", + value";
  Bytes utf8 = {0x0c, static_cast<std::uint8_t>(text.size())};
  utf8.insert(utf8.end(), text.begin(), text.end());
  EXPECT_EQ((*attrs->entries()[0].values)[0], utf8);
  // DER sorts SET OF by encoding: 020100 < 0202ff7f < 0203010000.
  EXPECT_EQ(*attrs->entries()[1].values, (std::vector<Bytes>{hex("020100"), hex("0202ff7f"), hex("0203010000")}));
  EXPECT_EQ(*attrs->entries()[2].values, std::vector<Bytes>{hex("0500")});
  auto again = parse_csrattrs_spec(attrs->to_spec());
  ASSERT_TRUE(again.ok()) << attrs->to_spec() << ": " << again.error().message;
  EXPECT_EQ(again->der(), attrs->der());
  auto decoded = CsrAttrs::from_der(attrs->der());
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->entries(), attrs->entries());
}

TEST(CsrAttrs, KeepsAnUnsortedSetAsReceived) {
  // SET { INTEGER 2, INTEGER 1 }: not DER order, but what a server sent is reported as sent.
  Bytes der = hex("3014" "300d" "06032a0304" "3106" "020102" "020101" "06032a0305");
  auto attrs = CsrAttrs::from_der(der);
  ASSERT_TRUE(attrs.ok()) << attrs.error().message;
  EXPECT_EQ(attrs->der(), der);
  EXPECT_EQ(*attrs->entries()[0].values, (std::vector<Bytes>{hex("020102"), hex("020101")}));
}

TEST(CsrAttrs, OpensslReadsOurs) {
  ESTLAB_REQUIRE_OPENSSL_COMMAND();
  auto attrs = parse_csrattrs_spec("challengePassword, id-ecPublicKey=secp384r1, rsaEncryption=2048, "
                                   "extensionRequest=ext(subjectAltName)");
  ASSERT_TRUE(attrs.ok()) << attrs.error().message;
  test::TempFile file("csrattrs.der");
  file.write(attrs->der());
  auto result = test::run_command("openssl asn1parse -inform DER -in " + file.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  for (const char* needle : {"challengePassword", "id-ecPublicKey", "secp384r1", "rsaEncryption", ":0800",
                             "Extension Request", "X509v3 Subject Alternative Name"}) {
    EXPECT_NE(result.output.find(needle), std::string::npos) << needle << " in\n" << result.output;
  }
}

// --- strict DER

TEST(CsrAttrs, RejectsEveryTruncation) {
  Bytes der = example_der();
  for (std::size_t n = 0; n < der.size(); ++n) {
    auto attrs = CsrAttrs::from_der(ByteView(der).first(n));
    EXPECT_FALSE(attrs.ok()) << "accepted the first " << n << " bytes";
  }
}

TEST(CsrAttrs, RejectsTrailingBytes) {
  Bytes der = example_der();
  der.push_back(0x00);
  expect_error(CsrAttrs::from_der(der), "1 trailing bytes after the SEQUENCE");
}

TEST(CsrAttrs, RejectsIndefiniteLength) {
  expect_error(CsrAttrs::from_der(hex("3080" "06092a864886f70d010907" "0000")), "indefinite length");
  // Inside an attribute value too.
  expect_error(CsrAttrs::from_der(hex("3010" "300e" "06032a0304" "3107" "3080" "020101" "0000")), "indefinite length");
}

TEST(CsrAttrs, RejectsNonMinimalAndOverlongLengths) {
  expect_error(CsrAttrs::from_der(hex("30810b06092a864886f70d010907")), "non-minimal length");
  expect_error(CsrAttrs::from_der(hex("300c06092a864886f70d010907")), "element says 12 bytes");
  expect_error(CsrAttrs::from_der(hex("3085ffffffffff")), "length of length");
}

TEST(CsrAttrs, RejectsWrongTags) {
  expect_error(CsrAttrs::from_der(hex("3100")), "SET where SEQUENCE was expected");
  expect_error(CsrAttrs::from_der(hex("3003020101")), "entry 1: INTEGER is neither an OBJECT IDENTIFIER");
  expect_error(CsrAttrs::from_der(hex("3007" "3005" "020101" "3100")), "entry 1 type: INTEGER where OBJECT IDENTIFIER");
  expect_error(CsrAttrs::from_der(hex("300a" "3008" "06032a0304" "3001" "05")), "values: SEQUENCE where SET");
}

TEST(CsrAttrs, RejectsMalformedAttributes) {
  expect_error(CsrAttrs::from_der(hex("3009" "3007" "06032a0304" "3100")), "entry 1 (1.2.3.4): the values SET is empty");
  expect_error(CsrAttrs::from_der(hex("300e" "300c" "06032a0304" "3103020101" "0500")),
               "unexpected element after the values SET");
  expect_error(CsrAttrs::from_der(hex("3007" "3005" "06032a0304")), "values is missing");
  expect_error(CsrAttrs::from_der(hex("3002" "0600")), "malformed OBJECT IDENTIFIER");
  expect_error(CsrAttrs::from_der(hex("3003" "060180")), "malformed OBJECT IDENTIFIER");
  expect_error(CsrAttrs::from_der(hex("3004" "1f8101" "00")), "multi-byte tags");
}

TEST(CsrAttrs, RejectsDeepNesting) {
  Bytes value = {0x05, 0x00};
  for (int i = 0; i < 40; ++i) {
    Bytes outer = {0x30, static_cast<std::uint8_t>(value.size())};
    if (value.size() >= 0x80) outer = {0x30, 0x81, static_cast<std::uint8_t>(value.size())};
    outer.insert(outer.end(), value.begin(), value.end());
    value = outer;
  }
  auto attrs = CsrAttrsBuilder().add_attribute("1.2.3.4", {value}).build();
  ASSERT_FALSE(attrs.ok());
  EXPECT_NE(attrs.error().message.find("nesting deeper"), std::string::npos) << attrs.error().message;
}

TEST(CsrAttrs, SurvivesRandomMutations) {
  std::mt19937 rng(7030);
  Bytes base = example_der();
  std::size_t accepted = 0;
  for (int i = 0; i < 5000; ++i) {
    Bytes der = base;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits; ++k) {
      std::size_t at = rng() % der.size();
      switch (rng() % 3) {
        case 0: der[at] = static_cast<std::uint8_t>(rng()); break;
        case 1: der.erase(der.begin() + static_cast<std::ptrdiff_t>(at)); break;
        default: der.insert(der.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::uint8_t>(rng())); break;
      }
      if (der.empty()) der.push_back(0x30);
    }
    auto attrs = CsrAttrs::from_der(der);
    if (!attrs.ok()) {
      EXPECT_FALSE(attrs.error().message.empty());
      continue;
    }
    ++accepted;
    // What is accepted renders and re-encodes without trouble.
    (void)attrs->to_text();
    auto again = CsrAttrs::from_der(attrs->der());
    EXPECT_TRUE(again.ok());
  }
  EXPECT_LT(accepted, 5000u);
}

TEST(CsrAttrs, RejectsNonDerInput) {
  expect_error(CsrAttrs::parse(as_bytes("not base64 at all!")), "CSR attributes");
  expect_error(CsrAttrs::from_der({}), "CSR attributes is missing");
}

// --- spec errors name the item

TEST(CsrAttrsSpec, ErrorsNameTheItem) {
  expect_error(parse_csrattrs_spec("challengePassword, noSuchAttribute"),
               "item 2 \"noSuchAttribute\": unknown OID or name \"noSuchAttribute\"");
  expect_error(parse_csrattrs_spec("id-ecPublicKey=secp999r1"),
               "item 1 \"id-ecPublicKey=secp999r1\": unknown OID or name \"secp999r1\"");
  expect_error(parse_csrattrs_spec("challengePassword,,ecdsa-with-SHA256"), "item 2 is empty");
  expect_error(parse_csrattrs_spec("1.2.3.4=\"open"), "unterminated quoted string");
  expect_error(parse_csrattrs_spec("1.2.3.4="), "empty value");
  expect_error(parse_csrattrs_spec("1.2.3.4=secp384r1+"), "empty value");
  expect_error(parse_csrattrs_spec("1.2.3.4=der:zz"), "item 1");
  expect_error(parse_csrattrs_spec("1.2.3.4=der:050000"), "1 bytes after the DER element");
  expect_error(parse_csrattrs_spec("1.2.3.4=der:3080050000000"), "item 1");
  expect_error(parse_csrattrs_spec("extensionRequest=ext()"), "ext() names no extension");
  expect_error(parse_csrattrs_spec("extensionRequest=ext(subjectAltName bogusExt)"), "\"bogusExt\"");
  expect_error(parse_csrattrs_spec("extensionRequest=ext(subjectAltName"), "'(' without ')'");
  expect_error(parse_csrattrs_spec("rsaEncryption=99999999999999999999"), "integer out of range");
  expect_error(parse_csrattrs_spec("1..2"), "unknown OID or name \"1..2\"");
}

TEST(CsrAttrsSpec, BuilderErrorsNameTheEntry) {
  auto attrs = CsrAttrsBuilder().add_oid("challengePassword").add_oid("nope").build();
  expect_error(attrs, "entry 2: unknown OID or name \"nope\"");
  expect_error(CsrAttrsBuilder().require_ec_curve("curve-x").build(), "unknown curve \"curve-x\"");
  expect_error(CsrAttrsBuilder().add_attribute("1.2.3.4", {}).build(), "at least one value");
  expect_error(CsrAttrsBuilder().add_attribute("1.2.3.4", {{0x02, 0x05, 0x01}}).build(), "value 1");
  expect_error(CsrAttrsBuilder().require_rsa_bits(0).build(), "not positive");
}

// The RFC 9908 lint: each finding names its rule, and the legacy forms of RFC 7030's own examples
// are told apart from violations.
std::vector<std::string> finding_texts(const CsrAttrs& attrs) {
  std::vector<std::string> out;
  for (const auto& f : lint_csrattrs(attrs)) out.push_back(f.rule + (f.legacy ? " legacy" : "") + ": " + f.what);
  return out;
}

TEST(CsrAttrsLint, Rfc7030InlineExampleIsLegacyOnly) {
  auto attrs = CsrAttrs::parse(as_bytes(kRfc7030Example));
  ASSERT_TRUE(attrs.ok());
  const auto findings = lint_csrattrs(*attrs);
  ASSERT_EQ(findings.size(), 1u) << ::testing::PrintToString(finding_texts(*attrs));
  EXPECT_EQ(findings[0].rule, "csrattrs-3.2-a");
  EXPECT_TRUE(findings[0].legacy);
}

TEST(CsrAttrsLint, ModernAnswerHasNoFinding) {
  auto attrs = parse_csrattrs_spec("challengePassword, ecdsa-with-SHA256, id-ecPublicKey=prime256v1, extensionRequest=ext(subjectAltName)");
  ASSERT_TRUE(attrs.ok()) << attrs.error().message;
  EXPECT_TRUE(lint_csrattrs(*attrs).empty()) << ::testing::PrintToString(finding_texts(*attrs));
  auto rsa = parse_csrattrs_spec("rsaEncryption=3072, sha256WithRSAEncryption");
  ASSERT_TRUE(rsa.ok()) << rsa.error().message;
  EXPECT_TRUE(lint_csrattrs(*rsa).empty()) << ::testing::PrintToString(finding_texts(*rsa));
}

Bytes concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(CsrAttrsLint, ViolationsNameTheirRule) {
  const Bytes san_ext = der::encode_sequence(concat(der::encode_oid("2.5.29.17"), der::encode_octet_string({})));
  const Bytes twice = der::encode_sequence(concat(san_ext, san_ext));
  auto attrs = CsrAttrsBuilder()
                   .add_attribute("extensionRequest", {twice})
                   .add_attribute("extensionRequest", {der::encode_sequence(san_ext)})
                   .add_attribute("ecdsa-with-SHA256", {der::encode_oid("2.16.840.1.101.3.4.2.1")})
                   .add_attribute("id-ecPublicKey", {der::encode_integer(256)})
                   .require_rsa_bits(2048)
                   .add_oid("2.5.29.17")
                   .add_oid("prime256v1")
                   .build();
  ASSERT_TRUE(attrs.ok()) << attrs.error().message;
  const auto texts = finding_texts(*attrs);
  auto has = [&](const std::string& needle) {
    return std::any_of(texts.begin(), texts.end(), [&](const std::string& t) { return t.find(needle) != std::string::npos; });
  };
  EXPECT_TRUE(has("csrattrs-3.2-a: extensionRequest repeats extnID 2.5.29.17")) << ::testing::PrintToString(texts);
  EXPECT_TRUE(has("csrattrs-3.2-a: 2 extensionRequest attributes; exactly one")) << ::testing::PrintToString(texts);
  EXPECT_TRUE(has("7030-4.5.2-f: signature scheme 1.2.840.10045.4.3.2 is an attribute")) << ::testing::PrintToString(texts);
  EXPECT_TRUE(has("csrattrs-3.2-b: key type 1.2.840.10045.2.1 carries a INTEGER")) << ::testing::PrintToString(texts);
  EXPECT_TRUE(has("csrattrs-3.2-b: 2 key-type attributes; exactly one")) << ::testing::PrintToString(texts);
  EXPECT_TRUE(has("7030-4.5.2-f: extension 2.5.29.17 is a bare OID")) << ::testing::PrintToString(texts);
  EXPECT_TRUE(has("csrattrs-3.2-b legacy: curve 1.2.840.10045.3.1.7 is a bare OID")) << ::testing::PrintToString(texts);
}

}  // namespace
}  // namespace estlab
