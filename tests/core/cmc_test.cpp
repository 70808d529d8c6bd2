// CMC for EST /fullcmc (RFC 7030 4.3, RFC 5272): Full PKI Requests signed with the CSR's key
// (no certificate yet, RFC 5272 3.2) and with a certificate, Full PKI Responses with statuses and
// certificates, openssl's reading of ours, and every malformed or foreign message rejected with
// a message that names what is wrong.
#include "estlab/core/cmc.hpp"

#include <gtest/gtest.h>

#include <random>

#include "estlab/core/oids.hpp"
#include "test_support.hpp"

namespace estlab {
namespace {

using test::cached_key;
using test::read_data;

Certificate load_cert(const std::string& name) {
  auto cert = Certificate::parse(read_data(name + ".cert.pem"));
  if (!cert.ok()) throw std::runtime_error(name + ": " + cert.error().message);
  return std::move(cert).value();
}

PrivateKey load_key(const std::string& name) {
  auto key = PrivateKey::parse(read_data(name + ".key.pem"));
  if (!key.ok()) throw std::runtime_error(name + ": " + key.error().message);
  return std::move(key).value();
}

Csr make_csr(const PrivateKey& key, const std::string& cn = "cmc-device") {
  auto csr = CsrBuilder().subject(*DistinguishedName::parse("CN=" + cn)).sign(key);
  if (!csr.ok()) throw std::runtime_error(csr.error().message);
  return std::move(csr).value();
}

Bytes hex(std::string_view text) { return *from_hex(text); }

// --- a small DER writer and a CMS signer, to build exactly the messages a test needs

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

Bytes seq(std::initializer_list<Bytes> parts) { return tlv(0x30, cat(parts)); }
const Bytes kEmptySeq = {0x30, 0x00};

// SignedData over `content` with eContentType `type`, signed by the leaf test certificate.
Bytes sign_content(const Bytes& content, const std::string& type) {
  Certificate cert = load_cert("leaf");
  PrivateKey key = load_key("leaf");
  ossl::Cms cms(CMS_sign(nullptr, nullptr, nullptr, nullptr, CMS_PARTIAL | CMS_BINARY));
  ossl::Asn1Object obj(OBJ_txt2obj(type.c_str(), 1));
  if (!cms || !obj || CMS_set1_eContentType(cms.get(), obj.get()) != 1 ||
      CMS_add1_signer(cms.get(), cert.native(), key.native(), EVP_sha256(), CMS_BINARY | CMS_NOSMIMECAP) == nullptr) {
    throw std::runtime_error("cannot start SignedData: " + ossl::drain_errors());
  }
  ossl::Bio data(BIO_new_mem_buf(content.data(), static_cast<int>(content.size())));
  if (CMS_final(cms.get(), data.get(), nullptr, CMS_BINARY) != 1) throw std::runtime_error("cannot sign");
  return ossl::i2d_bytes(i2d_CMS_ContentInfo, cms.get());
}

Bytes sign_pki_data(const Bytes& content) { return sign_content(content, std::string(oid::cct_pki_data)); }
Bytes sign_pki_response(const Bytes& content) { return sign_content(content, std::string(oid::cct_pki_response)); }

// TaggedRequest tcr [0] { bodyPartID, certificationRequest }
Bytes tcr(std::uint8_t body_part, const Bytes& pkcs10) { return tlv(0xa0, cat({{0x02, 0x01, body_part}, pkcs10})); }

void expect_error_text(const Error& error, std::string_view needle) {
  EXPECT_EQ(error.code, ErrorCode::invalid_input);
  EXPECT_NE(error.message.find(needle), std::string::npos) << error.message;
}

template <typename T>
void expect_error(const Result<T>& result, std::string_view needle) {
  ASSERT_FALSE(result.ok()) << "accepted; expected an error containing \"" << needle << "\"";
  expect_error_text(result.error(), needle);
}

// --- names

TEST(CmcNames, StatusAndFailInfo) {
  EXPECT_EQ(to_string(CmcStatusCode::success), "success");
  EXPECT_EQ(to_string(CmcStatusCode::no_support), "noSupport");
  EXPECT_EQ(to_string(CmcStatusCode::partial), "partial");
  EXPECT_EQ(to_string(static_cast<CmcStatusCode>(1)), "unknown(1)");  // 1 is not assigned
  EXPECT_EQ(to_string(CmcFailInfo::pop_failed), "popFailed");
  EXPECT_EQ(to_string(CmcFailInfo::internal_ca_error), "internalCAError");
  EXPECT_EQ(to_string(static_cast<CmcFailInfo>(99)), "unknown(99)");
  EXPECT_EQ(*parse_cmc_status("confirmRequired"), CmcStatusCode::confirm_required);
  EXPECT_EQ(*parse_cmc_fail_info("authDataFail"), CmcFailInfo::auth_data_fail);
  auto bad = parse_cmc_fail_info("popfailed");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("popFailed"), std::string::npos) << bad.error().message;  // lists valid names
  for (int i = 0; i <= 13; ++i) {
    auto name = to_string(static_cast<CmcFailInfo>(i));
    auto back = parse_cmc_fail_info(name);
    ASSERT_TRUE(back.ok()) << name;
    EXPECT_EQ(static_cast<int>(*back), i);
  }
}

// --- Full PKI Request

class CmcRequestByKeyType : public ::testing::TestWithParam<KeyType> {};

TEST_P(CmcRequestByKeyType, SignedWithTheCsrKeyRoundTrips) {
  const PrivateKey& key = cached_key(GetParam());
  Csr csr = make_csr(key);
  auto der = make_full_pki_request(csr, key, nullptr);
  ASSERT_TRUE(der.ok()) << der.error().message;
  auto data = parse_full_pki_request(*der);
  ASSERT_TRUE(data.ok()) << data.error().message;
  ASSERT_EQ(data->requests.size(), 1u);
  EXPECT_EQ(data->requests[0].body_part_id, 1u);
  EXPECT_EQ(data->requests[0].pkcs10_der, csr.der());
  auto back = Csr::from_der(data->requests[0].pkcs10_der);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->public_key(), key.public_key());
  EXPECT_TRUE(data->controls.empty());
  EXPECT_EQ(data->crmf_requests + data->other_requests + data->unknown_requests + data->cms_sequence + data->other_msgs, 0u);
  // RFC 5272 3.2: no certificate travels, the signer is named by the request key's SKI.
  EXPECT_TRUE(data->certificates.empty());
  EXPECT_TRUE(data->signature.verified) << data->signature.detail;
  EXPECT_TRUE(data->signature.signed_with_request_key);
  EXPECT_FALSE(data->signature.signer.has_value());
  EXPECT_NE(data->signature.detail.find("body part 1"), std::string::npos) << data->signature.detail;
}

INSTANTIATE_TEST_SUITE_P(CmcKeyTypes, CmcRequestByKeyType,
                         ::testing::Values(KeyType::ec_p256, KeyType::ec_p384, KeyType::rsa2048),
                         [](const auto& info) {
                           std::string name(to_string(info.param));
                           name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
                           return name;
                         });

TEST(CmcRequest, Ed25519IsSignedOrReportedUnsupported) {
  // RFC 8419 allows Ed25519 in CMS; OpenSSL 3.0 cannot sign it, and that must be a clear error.
  const PrivateKey& key = cached_key(KeyType::ed25519);
  auto der = make_full_pki_request(make_csr(key), key, nullptr);
  if (!der.ok()) {
    EXPECT_EQ(der.error().code, ErrorCode::unsupported) << der.error().message;
    EXPECT_NE(der.error().message.find("cannot sign CMS with ED25519"), std::string::npos) << der.error().message;
    return;
  }
  auto data = parse_full_pki_request(*der);
  ASSERT_TRUE(data.ok()) << data.error().message;
  EXPECT_TRUE(data->signature.verified) << data->signature.detail;
}

TEST(CmcRequest, SignedWithACertificate) {
  Csr csr = make_csr(cached_key(KeyType::ec_p256));
  Certificate leaf = load_cert("leaf");
  auto der = make_full_pki_request(csr, load_key("leaf"), &leaf);
  ASSERT_TRUE(der.ok()) << der.error().message;
  auto data = parse_full_pki_request(*der);
  ASSERT_TRUE(data.ok()) << data.error().message;
  EXPECT_TRUE(data->signature.verified) << data->signature.detail;
  EXPECT_FALSE(data->signature.signed_with_request_key);
  ASSERT_TRUE(data->signature.signer.has_value());
  EXPECT_EQ(*data->signature.signer, leaf);
  EXPECT_EQ(data->certificates, std::vector<Certificate>{leaf});
  EXPECT_EQ(data->requests.at(0).pkcs10_der, csr.der());
}

TEST(CmcRequest, KeyNotMatchingTheCertificateIsAnError) {
  Certificate leaf = load_cert("leaf");
  auto der = make_full_pki_request(make_csr(cached_key(KeyType::ec_p256)), cached_key(KeyType::ec_p384), &leaf);
  expect_error(der, "cannot add the signer");
}

TEST(CmcRequest, SignedByAnotherKeyDoesNotVerify) {
  // Parses, but no request key matches the signer: the verdict says so, the gateway refuses.
  auto der = make_full_pki_request(make_csr(cached_key(KeyType::ec_p256)), cached_key(KeyType::ec_p384), nullptr);
  ASSERT_TRUE(der.ok()) << der.error().message;
  auto data = parse_full_pki_request(*der);
  ASSERT_TRUE(data.ok()) << data.error().message;
  EXPECT_FALSE(data->signature.verified);
  EXPECT_FALSE(data->signature.signed_with_request_key);
  EXPECT_NE(data->signature.detail.find("did not verify"), std::string::npos) << data->signature.detail;
}

TEST(CmcRequest, TamperedSignatureDoesNotVerify) {
  const PrivateKey& key = cached_key(KeyType::ec_p256);
  auto der = make_full_pki_request(make_csr(key), key, nullptr);
  ASSERT_TRUE(der.ok()) << der.error().message;
  // The signature value is the last field of the last SignerInfo: flip its last byte.
  Bytes tampered = *der;
  tampered.back() ^= 0x01;
  auto data = parse_full_pki_request(tampered);
  ASSERT_TRUE(data.ok()) << data.error().message;
  EXPECT_FALSE(data->signature.verified) << data->signature.detail;
}

TEST(CmcRequest, ExtraControlsRoundTrip) {
  const PrivateKey& key = cached_key(KeyType::ec_p256);
  // id-cmc-transactionId (1.3.6.1.5.5.7.7.5) INTEGER 42 and a private control with two values.
  std::vector<CmcControl> controls = {
      {2, "1.3.6.1.5.5.7.7.5", {hex("02012a")}},
      {3, "1.3.6.1.4.1.99999.7", {hex("0c0162"), hex("0c0161")}},
  };
  auto der = make_full_pki_request(make_csr(key), key, nullptr, controls);
  ASSERT_TRUE(der.ok()) << der.error().message;
  auto data = parse_full_pki_request(*der);
  ASSERT_TRUE(data.ok()) << data.error().message;
  ASSERT_EQ(data->controls.size(), 2u);
  EXPECT_EQ(data->controls[0].body_part_id, 2u);
  EXPECT_EQ(data->controls[0].oid, "1.3.6.1.5.5.7.7.5");
  EXPECT_EQ(data->controls[0].values_der, std::vector<Bytes>{hex("02012a")});
  EXPECT_EQ(data->controls[1].oid, "1.3.6.1.4.1.99999.7");
  EXPECT_EQ(data->controls[1].values_der, (std::vector<Bytes>{hex("0c0161"), hex("0c0162")}));  // DER SET order
  EXPECT_TRUE(data->signature.verified) << data->signature.detail;
}

TEST(CmcRequest, BadControlsAreErrors) {
  const PrivateKey& key = cached_key(KeyType::ec_p256);
  Csr csr = make_csr(key);
  expect_error(make_full_pki_request(csr, key, nullptr, {{1, "1.2.3", {}}}), "reuses body part ID 1");
  expect_error(make_full_pki_request(csr, key, nullptr, {{2, "1.2.3", {}}, {2, "1.2.4", {}}}), "reuses body part ID 2");
  expect_error(make_full_pki_request(csr, key, nullptr, {{2, "transactionId", {}}}), "is not a dotted OID");
  expect_error(make_full_pki_request(csr, key, nullptr, {{2, "1.2.3", {hex("0205")}}}), "control 1 value 1");
}

TEST(CmcRequest, OpensslPrintsOurs) {
  ESTLAB_REQUIRE_OPENSSL_COMMAND();
  const PrivateKey& key = cached_key(KeyType::ec_p256);
  auto der = make_full_pki_request(make_csr(key), key, nullptr);
  ASSERT_TRUE(der.ok()) << der.error().message;
  test::TempFile file("fullcmc.der");
  file.write(*der);
  auto printed = test::run_command("openssl cms -cmsout -print -inform DER -in " + file.path());
  ASSERT_EQ(printed.exit_code, 0) << printed.output;
  EXPECT_NE(printed.output.find("id-cct-PKIData"), std::string::npos) << printed.output;
  EXPECT_NE(printed.output.find("subjectKeyIdentifier"), std::string::npos) << printed.output;
}

TEST(CmcRequest, CountsOtherRequestFormsWithoutDecodingThem) {
  Bytes pkcs10 = make_csr(cached_key(KeyType::ec_p256)).der();
  Bytes requests = seq({tcr(1, pkcs10),
                        tlv(0xa1, seq({hex("020102")})),                        // crm [1]: counted
                        tlv(0xa2, cat({hex("020103"), hex("06032a0304"), hex("0500")})),  // orm [2]
                        tlv(0xa7, hex("0500"))});                               // [7]: no such choice
  Bytes others = seq({seq({hex("020104"), hex("06032a0305"), hex("0500")})});
  auto data = parse_full_pki_request(sign_pki_data(seq({kEmptySeq, requests, kEmptySeq, others})));
  ASSERT_TRUE(data.ok()) << data.error().message;
  EXPECT_EQ(data->requests.size(), 1u);
  EXPECT_EQ(data->crmf_requests, 1u);
  EXPECT_EQ(data->other_requests, 1u);
  EXPECT_EQ(data->unknown_requests, 1u);
  EXPECT_EQ(data->other_msgs, 1u);
  EXPECT_TRUE(data->signature.verified) << data->signature.detail;
  EXPECT_EQ(*data->signature.signer, load_cert("leaf"));
}

TEST(CmcRequest, MalformedPkiDataIsNamed) {
  Bytes pkcs10 = make_csr(cached_key(KeyType::ec_p256)).der();
  Bytes one_request = seq({tcr(1, pkcs10)});
  auto parse = [](const Bytes& pki_data) { return parse_full_pki_request(sign_pki_data(pki_data)); };
  expect_error(parse(seq({kEmptySeq, one_request, kEmptySeq})), "PKIData otherMsgSequence is missing");
  expect_error(parse(seq({kEmptySeq, one_request, kEmptySeq, kEmptySeq, kEmptySeq})),
               "unexpected element after otherMsgSequence");
  expect_error(parse(cat({seq({kEmptySeq, one_request, kEmptySeq, kEmptySeq}), hex("00")})), "1 trailing bytes");
  expect_error(parse(hex("30803000300030003000" "0000")), "indefinite length");
  expect_error(parse(seq({kEmptySeq, seq({hex("020101")}), kEmptySeq, kEmptySeq})),
               "reqSequence element 1: INTEGER is not a TaggedRequest choice");
  expect_error(parse(seq({kEmptySeq, seq({tlv(0xa0, cat({hex("0201ff"), pkcs10}))}), kEmptySeq, kEmptySeq})),
               "(tcr) bodyPartID: not a DER INTEGER in 0..4294967295");
  expect_error(parse(seq({kEmptySeq, seq({tlv(0xa0, cat({hex("02050100000000"), pkcs10}))}), kEmptySeq, kEmptySeq})),
               "(tcr) bodyPartID");
  expect_error(parse(seq({kEmptySeq, seq({tlv(0xa0, hex("020101"))}), kEmptySeq, kEmptySeq})),
               "(tcr) certificationRequest is missing");
  expect_error(parse(seq({seq({seq({hex("020101"), hex("0500"), hex("3100")})}), kEmptySeq, kEmptySeq, kEmptySeq})),
               "controlSequence element 1 attrType: NULL where OBJECT IDENTIFIER");
  expect_error(parse(seq({seq({seq({hex("020101"), hex("06032a0304")})}), kEmptySeq, kEmptySeq, kEmptySeq})),
               "controlSequence element 1 (1.2.3.4) attrValues is missing");
  expect_error(parse(seq({kEmptySeq, kEmptySeq, seq({hex("020101")}), kEmptySeq})),
               "cmsSequence element 1: INTEGER where SEQUENCE");
}

TEST(CmcRequest, WrongContentTypesAreNamed) {
  // A signed id-data message (openssl smime -sign), a certs-only response, a plain id-data ContentInfo.
  expect_error(parse_full_pki_request(read_data("p7-signed.der")),
               "eContentType is pkcs7-data (1.2.840.113549.1.7.1), expected id-cct-PKIData (1.3.6.1.5.5.7.12.2)");
  expect_error(parse_full_pki_request(read_data("p7-nocrl.der")), "eContentType is pkcs7-data");
  expect_error(parse_full_pki_request(read_data("cms-data.der")), "contentType is pkcs7-data (1.2.840.113549.1.7.1), expected signedData");
  // A response is not a request, and the other way round.
  auto response = make_full_pki_response(CmcStatus{CmcStatusCode::success, {1}, "", std::nullopt, std::nullopt}, {},
                                         load_key("int"), load_cert("int"));
  ASSERT_TRUE(response.ok()) << response.error().message;
  expect_error(parse_full_pki_request(*response), "eContentType is id-cct-PKIResponse");
  const PrivateKey& key = cached_key(KeyType::ec_p256);
  auto request = make_full_pki_request(make_csr(key), key, nullptr);
  ASSERT_TRUE(request.ok()) << request.error().message;
  expect_error(parse_full_pki_response(*request), "eContentType is id-cct-PKIData (1.3.6.1.5.5.7.12.2), expected id-cct-PKIResponse");
}

TEST(CmcRequest, GarbageAndTruncations) {
  expect_error(parse_full_pki_request({}), "not a DER CMS ContentInfo");
  expect_error(parse_full_pki_request(as_bytes("hello, this is not CMS")), "not a DER CMS ContentInfo");
  expect_error(parse_full_pki_request(read_data("leaf.cert.der")), "CMC Full PKI Request");
  const PrivateKey& key = cached_key(KeyType::ec_p256);
  auto der = make_full_pki_request(make_csr(key), key, nullptr);
  ASSERT_TRUE(der.ok()) << der.error().message;
  for (std::size_t n = 0; n < der->size(); ++n) {
    EXPECT_FALSE(parse_full_pki_request(ByteView(*der).first(n)).ok()) << "accepted the first " << n << " bytes";
  }
  Bytes trailing = *der;
  trailing.push_back(0x00);
  expect_error(parse_full_pki_request(trailing), "1 trailing bytes after the ContentInfo");
}

TEST(CmcRequest, SurvivesRandomMutations) {
  const PrivateKey& key = cached_key(KeyType::ec_p256);
  auto der = make_full_pki_request(make_csr(key), key, nullptr, {{2, "1.3.6.1.5.5.7.7.5", {hex("02012a")}}});
  ASSERT_TRUE(der.ok()) << der.error().message;
  std::mt19937 rng(5272);
  std::size_t verified = 0;
  for (int i = 0; i < 2000; ++i) {
    Bytes mutated = *der;
    int edits = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < edits; ++k) mutated[rng() % mutated.size()] = static_cast<std::uint8_t>(rng());
    auto data = parse_full_pki_request(mutated);
    if (data.ok() && data->signature.verified) ++verified;
  }
  // A changed byte inside the signed content can never keep a valid signature.
  EXPECT_LT(verified, 2000u);
}

// --- Full PKI Response

TEST(CmcResponse, SuccessWithCertificatesRoundTrips) {
  Certificate leaf = load_cert("leaf");
  Certificate issuer = load_cert("int");
  Certificate root = load_cert("root");
  CmcStatus status{CmcStatusCode::success, {1}, "issued", std::nullopt, std::nullopt};
  auto der = make_full_pki_response(status, {leaf, issuer, root}, load_key("int"), issuer);
  ASSERT_TRUE(der.ok()) << der.error().message;
  auto response = parse_full_pki_response(*der);
  ASSERT_TRUE(response.ok()) << response.error().message;
  ASSERT_EQ(response->statuses.size(), 1u);
  EXPECT_EQ(response->statuses[0].status, CmcStatusCode::success);
  EXPECT_EQ(response->statuses[0].body_parts, std::vector<std::uint32_t>{1});
  EXPECT_EQ(response->statuses[0].text, "issued");
  EXPECT_FALSE(response->statuses[0].fail_info.has_value());
  ASSERT_EQ(response->controls.size(), 1u);
  EXPECT_EQ(response->controls[0].oid, oid::cmc_status_info_v2);
  // The signer (the issuing CA) is already in the chain: it travels once.
  ASSERT_EQ(response->certificates.size(), 3u);
  for (const auto& cert : {leaf, issuer, root}) {
    EXPECT_NE(std::find(response->certificates.begin(), response->certificates.end(), cert), response->certificates.end());
  }
  EXPECT_TRUE(response->signature.verified) << response->signature.detail;
  ASSERT_TRUE(response->signature.signer.has_value());
  EXPECT_EQ(*response->signature.signer, issuer);
  EXPECT_EQ(to_text(response->statuses[0]), "success bodyList=1 statusString=\"issued\"");
}

TEST(CmcResponse, FailedWithPopFailed) {
  CmcStatus status{CmcStatusCode::failed, {1, 7}, "proof of possession failed", CmcFailInfo::pop_failed, std::nullopt};
  auto der = make_full_pki_response(status, {}, load_key("int"), load_cert("int"));
  ASSERT_TRUE(der.ok()) << der.error().message;
  auto response = parse_full_pki_response(*der);
  ASSERT_TRUE(response.ok()) << response.error().message;
  ASSERT_EQ(response->statuses.size(), 1u);
  const CmcStatus& got = response->statuses[0];
  EXPECT_EQ(got.status, CmcStatusCode::failed);
  EXPECT_EQ(got.body_parts, (std::vector<std::uint32_t>{1, 7}));
  EXPECT_EQ(got.text, "proof of possession failed");
  EXPECT_EQ(got.fail_info, CmcFailInfo::pop_failed);
  // Only the signer's certificate travels.
  EXPECT_EQ(response->certificates, std::vector<Certificate>{load_cert("int")});
  EXPECT_TRUE(response->signature.verified) << response->signature.detail;
  EXPECT_EQ(to_text(got), "failed bodyList=1,7 failInfo=popFailed statusString=\"proof of possession failed\"");
  std::string text = to_text(*response);
  EXPECT_NE(text.find("status failed"), std::string::npos) << text;
  EXPECT_NE(text.find("signature 1 signerInfo verified"), std::string::npos) << text;
}

TEST(CmcResponse, EncodesTheStatusExactly) {
  // CMCStatusInfoV2 { failed, { 1 }, failInfo badRequest } inside TaggedAttribute { 1, statusInfoV2, { . } }.
  auto der = make_full_pki_response(CmcStatus{CmcStatusCode::failed, {1}, "", CmcFailInfo::bad_request, std::nullopt}, {},
                                    load_key("int"), load_cert("int"));
  ASSERT_TRUE(der.ok()) << der.error().message;
  const std::string expected_content = "3024" "301e" "301c" "020101" "06082b06010505070719" "310d" "300b" "020102"
                                       "3003020101" "020102" "3000" "3000";
  // The eContent appears verbatim inside the SignedData.
  EXPECT_NE(to_hex(*der).find(expected_content), std::string::npos) << to_hex(*der);
}

TEST(CmcResponse, EmptyBodyListIsAnError) {
  expect_error(make_full_pki_response(CmcStatus{}, {}, load_key("int"), load_cert("int")),
               "bodyList is empty (SIZE (1..MAX))");
}

TEST(CmcResponse, ReadsStatusInfoV1AndBodyPartPathsAndPendInfo) {
  // statusInfo (v1) { pending, {2}, pendInfo } and statusInfoV2 { partial, { path {1, 5}, 3 }, "x", extendedFailInfo }.
  Bytes v1 = seq({hex("020103"), seq({hex("020102")}),
                  seq({hex("04020102"), hex("180f32303236303130313030303030305a")})});
  Bytes v2 = seq({hex("020107"), seq({seq({hex("020101"), hex("020105")}), hex("020103")}), hex("0c0178"),
                  seq({hex("06032a0304"), hex("0500")})});
  Bytes controls = seq({seq({hex("020101"), hex("06082b06010505070701"), tlv(0x31, v1)}),
                        seq({hex("020102"), hex("06082b06010505070719"), tlv(0x31, v2)})});
  auto response = parse_full_pki_response(sign_pki_response(seq({controls, kEmptySeq, kEmptySeq})));
  ASSERT_TRUE(response.ok()) << response.error().message;
  ASSERT_EQ(response->statuses.size(), 2u);
  EXPECT_EQ(response->statuses[0].status, CmcStatusCode::pending);
  EXPECT_EQ(response->statuses[0].body_parts, std::vector<std::uint32_t>{2});
  EXPECT_EQ(response->statuses[1].status, CmcStatusCode::partial);
  EXPECT_EQ(response->statuses[1].body_parts, (std::vector<std::uint32_t>{5, 3}));
  EXPECT_EQ(response->statuses[1].text, "x");
  EXPECT_FALSE(response->statuses[1].fail_info.has_value());
  EXPECT_TRUE(response->signature.verified) << response->signature.detail;
}

TEST(CmcResponse, MalformedStatusesAreNamed) {
  auto parse = [](const Bytes& status_value) {
    Bytes controls = seq({seq({hex("020101"), hex("06082b06010505070719"), tlv(0x31, status_value)})});
    return parse_full_pki_response(sign_pki_response(seq({controls, kEmptySeq, kEmptySeq})));
  };
  expect_error(parse(seq({hex("020100"), kEmptySeq})), "statusInfoV2 value 1: bodyList is empty");
  expect_error(parse(seq({hex("020100")})), "statusInfoV2 value 1 bodyList is missing");
  expect_error(parse(seq({hex("0c0178"), seq({hex("020101")})})), "cMCStatus: UTF8String where INTEGER");
  expect_error(parse(seq({hex("020100"), seq({hex("020101")}), hex("0101ff")})),
               "otherInfo: BOOLEAN is not failInfo, pendInfo or extendedFailInfo");
  expect_error(parse(seq({hex("020100"), seq({hex("020101")}), hex("020102"), hex("020103")})),
               "unexpected element after otherInfo");
  expect_error(parse(seq({hex("020100"), seq({hex("02050100000000")})})), "not a DER INTEGER in 0..4294967295");
  expect_error(parse(seq({hex("02020001"), seq({hex("020101")})})), "cMCStatus: not a DER INTEGER");  // not minimal
  expect_error(parse_full_pki_response(sign_pki_response(seq({kEmptySeq, kEmptySeq}))),
               "PKIResponse otherMsgSequence is missing");
}

TEST(CmcResponse, OpensslVerifiesOurs) {
  ESTLAB_REQUIRE_OPENSSL_COMMAND();
  auto der = make_full_pki_response(CmcStatus{CmcStatusCode::success, {1}, "", std::nullopt, std::nullopt}, {load_cert("leaf")},
                                    load_key("int"), load_cert("int"));
  ASSERT_TRUE(der.ok()) << der.error().message;
  test::TempFile file("response.der");
  file.write(*der);
  auto verified = test::run_command("openssl cms -verify -noverify -binary -inform DER -in " + file.path() +
                                    " -out /dev/null");
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
  EXPECT_NE(verified.output.find("Verification successful"), std::string::npos) << verified.output;
  auto printed = test::run_command("openssl cms -cmsout -print -inform DER -in " + file.path());
  EXPECT_NE(printed.output.find("id-cct-PKIResponse"), std::string::npos) << printed.output;
}

TEST(CmcResponse, GarbageAndTruncations) {
  expect_error(parse_full_pki_response({}), "not a DER CMS ContentInfo");
  expect_error(parse_full_pki_response(read_data("p7-nocrl.der")), "eContentType is pkcs7-data");
  auto der = make_full_pki_response(CmcStatus{CmcStatusCode::success, {1}, "", std::nullopt, std::nullopt}, {load_cert("leaf")},
                                    load_key("int"), load_cert("int"));
  ASSERT_TRUE(der.ok()) << der.error().message;
  for (std::size_t n = 0; n < der->size(); n += 3) {
    EXPECT_FALSE(parse_full_pki_response(ByteView(*der).first(n)).ok()) << "accepted the first " << n << " bytes";
  }
  std::mt19937 rng(5273);
  for (int i = 0; i < 1000; ++i) {
    Bytes mutated = *der;
    mutated[rng() % mutated.size()] = static_cast<std::uint8_t>(rng());
    (void)parse_full_pki_response(mutated);  // must not crash
  }
}

}  // namespace
}  // namespace estlab
