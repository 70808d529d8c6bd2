// The certs-only CMC Simple PKI Response (RFC 7030 4.1.3 and 4.2.3, RFC 5272 4.1): a degenerate
// SignedData with no signerInfos and no eContent. Ours against openssl's, and every violation
// rejected with its own message.
#include "estlab/core/certs_only.hpp"

#include <gtest/gtest.h>

#include "estlab/core/base64.hpp"
#include "estlab/core/encoding.hpp"
#include "test_support.hpp"

namespace estlab {
namespace {

using test::read_data;
using test::read_text;

Certificate load_cert(const std::string& name) {
  auto cert = Certificate::parse(read_data(name + ".cert.pem"));
  if (!cert.ok()) throw std::runtime_error(name + ": " + cert.error().message);
  return std::move(cert).value();
}

Crl load_crl() {
  auto crl = Crl::parse(read_data("int.crl.pem"));
  if (!crl.ok()) throw std::runtime_error(crl.error().message);
  return std::move(crl).value();
}

std::vector<Certificate> chain() { return {load_cert("leaf"), load_cert("int"), load_cert("root")}; }

// --- a small DER writer, to build exactly the structures the tests need

Bytes tlv(std::uint8_t tag, const Bytes& content) {
  Bytes out = {tag};
  std::size_t n = content.size();
  if (n < 0x80) {
    out.push_back(static_cast<std::uint8_t>(n));
  } else {
    Bytes len;
    for (; n > 0; n >>= 8) len.insert(len.begin(), static_cast<std::uint8_t>(n & 0xff));
    out.push_back(static_cast<std::uint8_t>(0x80 | len.size()));
    out.insert(out.end(), len.begin(), len.end());
  }
  out.insert(out.end(), content.begin(), content.end());
  return out;
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

const Bytes kOidSignedData = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02};
const Bytes kOidData = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01};
const Bytes kOidEnvelopedData = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03};

Bytes data_without_content() { return tlv(0x30, kOidData); }  // EncapsulatedContentInfo: id-data, no eContent

// ContentInfo { signedData, [0] SignedData { 1, {}, encap, [0] certs, [1] crls (when given), {} } }
Bytes content_info(const std::vector<Certificate>& certs, const std::optional<Bytes>& crls = std::nullopt,
                   const Bytes& encap = data_without_content()) {
  Bytes cert_bytes;
  for (const auto& c : certs) cert_bytes.insert(cert_bytes.end(), c.der().begin(), c.der().end());
  Bytes body = cat({tlv(0x02, {0x01}), tlv(0x31, {}), encap, tlv(0xa0, cert_bytes)});
  if (crls) body = cat({body, tlv(0xa1, *crls)});
  body = cat({body, tlv(0x31, {})});
  return tlv(0x30, cat({kOidSignedData, tlv(0xa0, tlv(0x30, body))}));
}

// from_der and check_structure (which decodes no certificate) refuse it alike.
void expect_rejected(ByteView der, const std::string& message) {
  auto p7 = CertsOnly::from_der(der);
  ASSERT_FALSE(p7.ok()) << "accepted; expected: " << message;
  EXPECT_EQ(p7.error().code, ErrorCode::invalid_input);
  EXPECT_EQ(p7.error().message, message);
  auto structure = CertsOnly::check_structure(der);
  ASSERT_FALSE(structure.ok()) << "check_structure accepted; expected: " << message;
  EXPECT_EQ(structure.error().code, ErrorCode::invalid_input);
  EXPECT_EQ(structure.error().message, message);
}

// --- make()

TEST(CertsOnly, MakeThenFromDerRoundTrip) {
  auto made = CertsOnly::make(chain());
  ASSERT_TRUE(made.ok()) << made.error().message;
  auto back = CertsOnly::from_der(made->der());
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->certificates().size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_TRUE(back->certificates()[i] == chain()[i]) << i;  // order kept
  EXPECT_TRUE(back->crls().empty());
  EXPECT_EQ(back->der(), made->der());
  EXPECT_EQ(made->certificates().size(), 3u);
}

TEST(CertsOnly, MakeWritesTheMinimalDegenerateStructure) {
  // Version 1, no digestAlgorithms, id-data without eContent, the certificates, no crls field and
  // an empty signerInfos: byte for byte what RFC 5272 4.1 describes.
  auto made = CertsOnly::make(chain());
  ASSERT_TRUE(made.ok());
  EXPECT_EQ(to_hex(made->der()), to_hex(content_info(chain())));
}

TEST(CertsOnly, MakeWithACrl) {
  auto made = CertsOnly::make({load_cert("leaf")}, {load_crl()});
  ASSERT_TRUE(made.ok()) << made.error().message;
  auto back = CertsOnly::from_der(made->der());
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->certificates().size(), 1u);
  ASSERT_EQ(back->crls().size(), 1u);
  EXPECT_EQ(back->crls()[0].der(), load_crl().der());
  EXPECT_EQ(back->crls()[0].entries().size(), 3u);
}

TEST(CertsOnly, MakeWithNothing) {
  auto made = CertsOnly::make({});
  ASSERT_TRUE(made.ok()) << made.error().message;
  auto back = CertsOnly::from_der(made->der());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(back->certificates().empty());
}

TEST(CertsOnly, OpensslPrintsOurCertificates) {
  ESTLAB_REQUIRE_OPENSSL_COMMAND();
  auto made = CertsOnly::make(chain(), {load_crl()});
  ASSERT_TRUE(made.ok());
  test::TempFile file("certs.p7b");
  file.write(made->der());
  auto out = test::run_command("openssl pkcs7 -inform DER -print_certs -in '" + file.path() + "'");
  ASSERT_EQ(out.exit_code, 0) << out.output;
  std::size_t subjects = 0;
  for (const auto& line : test::split(out.output, "\n")) subjects += line.rfind("subject=", 0) == 0 ? 1 : 0;
  EXPECT_EQ(subjects, 3u) << out.output;
  EXPECT_NE(out.output.find("CN = device-1.example"), std::string::npos);
  EXPECT_NE(out.output.find("CN = estlab Test Issuing CA"), std::string::npos);
  EXPECT_NE(out.output.find("CN = estlab Test Root CA"), std::string::npos);
  EXPECT_NE(out.output.find("Certificate Revocation List (CRL)"), std::string::npos);
  auto blocks = pem_decode_all(out.output);
  ASSERT_TRUE(blocks.ok()) << blocks.error().message;
  ASSERT_EQ(blocks->size(), 4u);
  EXPECT_EQ((*blocks)[0].der, chain()[0].der());
  EXPECT_EQ((*blocks)[2].der, chain()[2].der());
  EXPECT_EQ((*blocks)[3].label, "X509 CRL");
}

// --- openssl's

TEST(CertsOnly, ParsesOpensslCrl2pkcs7WithoutCrls) {
  auto p7 = CertsOnly::parse(read_data("p7-nocrl.der"));
  ASSERT_TRUE(p7.ok()) << p7.error().message;
  ASSERT_EQ(p7->certificates().size(), static_cast<std::size_t>(std::stoi(test::expected("p7-nocrl.certificates"))));
  auto bundle = Certificate::parse_all(read_data("chain.pem"));
  ASSERT_TRUE(bundle.ok());
  for (std::size_t i = 0; i < bundle->size(); ++i) EXPECT_TRUE(p7->certificates()[i] == (*bundle)[i]) << i;
  // crl2pkcs7 -nocrl (OpenSSL 3.0) omits the crls field rather than writing an empty one.
  EXPECT_TRUE(p7->crls().empty());
  EXPECT_EQ(to_hex(read_data("p7-nocrl.der")), to_hex(content_info(*bundle)));

  auto pem = CertsOnly::parse(read_data("p7-nocrl.pem"));  // label PKCS7
  ASSERT_TRUE(pem.ok()) << pem.error().message;
  EXPECT_EQ(pem->der(), p7->der());
  // An EST body: base64 with CRLF line breaks.
  auto body = CertsOnly::parse(as_bytes(base64_encode(p7->der(), LineBreaks::every76_crlf)));
  ASSERT_TRUE(body.ok()) << body.error().message;
  EXPECT_EQ(body->certificates().size(), 3u);
}

TEST(CertsOnly, ParsesOpensslCrl2pkcs7WithACrl) {
  auto p7 = CertsOnly::from_der(read_data("p7-crl.der"));
  ASSERT_TRUE(p7.ok()) << p7.error().message;
  ASSERT_EQ(p7->certificates().size(), static_cast<std::size_t>(std::stoi(test::expected("p7-crl.certificates"))));
  EXPECT_TRUE(p7->certificates()[0] == load_cert("leaf"));
  ASSERT_EQ(p7->crls().size(), 1u);
  EXPECT_EQ(p7->crls()[0].der(), load_crl().der());
  EXPECT_EQ(p7->crls()[0].find("3003")->reason, RevocationReason::key_compromise);
}

TEST(CertsOnly, AcceptsAnEmptyCrlsField) {
  auto p7 = CertsOnly::from_der(content_info({load_cert("leaf")}, Bytes{}));
  ASSERT_TRUE(p7.ok()) << p7.error().message;
  EXPECT_EQ(p7->certificates().size(), 1u);
  EXPECT_TRUE(p7->crls().empty());
}

TEST(CertsOnly, CheckStructureAcceptsWhatFromDerAccepts) {
  std::vector<Bytes> good = {CertsOnly::make(chain())->der(), CertsOnly::make({load_cert("leaf")}, {load_crl()})->der(),
                             CertsOnly::make({})->der(), read_data("p7-nocrl.der"), read_data("p7-crl.der"),
                             content_info({load_cert("leaf")}, Bytes{})};
  for (const auto& der : good) {
    ASSERT_TRUE(CertsOnly::from_der(der).ok());
    auto checked = CertsOnly::check_structure(der);
    EXPECT_TRUE(checked.ok()) << checked.error().message;
  }
  // What it does not decode must still be a SEQUENCE: a certificate replaced by an INTEGER.
  Bytes body = {0x02, 0x01, 0x01, 0x31, 0x00};
  const Bytes encap = data_without_content();
  body.insert(body.end(), encap.begin(), encap.end());
  const Bytes not_a_certificate = tlv(0xa0, tlv(0x02, {0x05}));
  body.insert(body.end(), not_a_certificate.begin(), not_a_certificate.end());
  body.insert(body.end(), {0x31, 0x00});
  const Bytes odd = tlv(0x30, cat({kOidSignedData, tlv(0xa0, tlv(0x30, body))}));
  ASSERT_FALSE(CertsOnly::from_der(odd).ok());
  auto refused = CertsOnly::check_structure(odd);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message.rfind("certs-only: not a DER PKCS#7 ContentInfo", 0), 0u) << refused.error().message;
  EXPECT_NE(refused.error().message.find("INTEGER where SEQUENCE was expected"), std::string::npos) << refused.error().message;
}

TEST(CertsOnly, PemAndCmsLabel) {
  auto made = CertsOnly::make({load_cert("leaf")});
  ASSERT_TRUE(made.ok());
  std::string pem = made->pem();
  EXPECT_EQ(pem.rfind("-----BEGIN PKCS7-----\n", 0), 0u);
  auto back = CertsOnly::parse(as_bytes(pem));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->der(), made->der());
  auto cms = CertsOnly::parse(as_bytes(pem_encode("CMS", made->der())));
  ASSERT_TRUE(cms.ok()) << cms.error().message;
  EXPECT_EQ(cms->der(), made->der());
}

TEST(CertsOnly, ToTextOneLinePerObject) {
  auto made = CertsOnly::make({load_cert("leaf")}, {load_crl()});
  ASSERT_TRUE(made.ok());
  EXPECT_EQ(made->to_text(),
            "subject=C=DE,O=estlab Lab,OU=Devices,CN=device-1.example issuer=C=DE,O=estlab Lab,CN=estlab Test Issuing CA "
            "serial=0a1b2c3d4e5f\n"
            "crl issuer=C=DE,O=estlab Lab,CN=estlab Test Issuing CA\n");
}

// --- violations

TEST(CertsOnly, RejectsSignedDataWithASigner) {
  // openssl smime -sign -nodetach: one signerInfo (and eContent); the signer is the first violation.
  expect_rejected(read_data("p7-signed.der"), "certs-only: 1 signerInfo(s), expected none (degenerate SignedData)");
}

TEST(CertsOnly, RejectsContentTypeOtherThanSignedData) {
  // openssl cms -data_create: a ContentInfo of type id-data.
  expect_rejected(read_data("cms-data.der"), "certs-only: contentType is pkcs7-data, expected signedData");
}

TEST(CertsOnly, RejectsEncapsulatedContentTypeOtherThanData) {
  expect_rejected(content_info({load_cert("leaf")}, std::nullopt, tlv(0x30, kOidEnvelopedData)),
                  "certs-only: encapsulated content type is not id-data");
}

TEST(CertsOnly, RejectsEncapsulatedContent) {
  Bytes with_content = tlv(0x30, cat({kOidData, tlv(0xa0, tlv(0x04, to_bytes("hello")))}));
  expect_rejected(content_info({load_cert("leaf")}, std::nullopt, with_content),
                  "certs-only: encapsulated content is present, expected none");
}

TEST(CertsOnly, RejectsEmptyButPresentEncapsulatedContent) {
  Bytes empty_content = tlv(0x30, cat({kOidData, tlv(0xa0, tlv(0x04, {}))}));
  expect_rejected(content_info({load_cert("leaf")}, std::nullopt, empty_content),
                  "certs-only: encapsulated content is present, expected none");
}

TEST(CertsOnly, RejectsTrailingBytes) {
  auto made = CertsOnly::make({load_cert("leaf")});
  ASSERT_TRUE(made.ok());
  Bytes der = made->der();
  der.insert(der.end(), {0x00, 0x00});
  expect_rejected(der, "certs-only: 2 trailing bytes after the PKCS#7 structure");
  auto parsed = CertsOnly::parse(der);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().message, "certs-only: 2 trailing bytes after the DER element");
}

TEST(CertsOnly, RejectsGarbage) {
  auto garbage = CertsOnly::from_der(as_bytes("garbage"));
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().message.rfind("certs-only: not a DER PKCS#7 ContentInfo", 0), 0u) << garbage.error().message;
  const Bytes leaf_der = read_data("leaf.cert.der");
  for (ByteView bad : {as_bytes("garbage"), ByteView(leaf_der)}) {
    auto structure = CertsOnly::check_structure(bad);
    ASSERT_FALSE(structure.ok());
    EXPECT_EQ(structure.error().message.rfind("certs-only: not a DER PKCS#7 ContentInfo", 0), 0u) << structure.error().message;
  }
  auto cert = CertsOnly::from_der(read_data("leaf.cert.der"));  // a SEQUENCE, not a ContentInfo
  ASSERT_FALSE(cert.ok());
  EXPECT_EQ(cert.error().message.rfind("certs-only: not a DER PKCS#7 ContentInfo", 0), 0u) << cert.error().message;
  auto pem = CertsOnly::parse(read_data("leaf.cert.pem"));
  ASSERT_FALSE(pem.ok());
  EXPECT_EQ(pem.error().message, "certs-only: no PEM block labelled PKCS7 or CMS");
  auto bad_b64 = CertsOnly::parse(as_bytes("MIIB%"));
  ASSERT_FALSE(bad_b64.ok());
  EXPECT_EQ(bad_b64.error().message, "certs-only: neither DER, PEM nor base64");
  auto truncated_b64 = CertsOnly::parse(as_bytes("MIIB\r\nMII"));
  ASSERT_FALSE(truncated_b64.ok());
  EXPECT_EQ(truncated_b64.error().message.rfind("certs-only: base64: input ends inside a 4-character group", 0), 0u)
      << truncated_b64.error().message;
}

}  // namespace
}  // namespace estlab
