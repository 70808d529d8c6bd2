// The IDM's HTTPS API without sockets: the gateway API only for the pinned client certificate,
// the operator API only with the token, POSTs refused without the anti-CSRF header or from
// another origin, bad input a 4xx with a reason, and the whole approve/reject flow.
#include "estlab/idm/service.hpp"

#include <gtest/gtest.h>

#include "estlab/core/base64.hpp"
#include "estlab/core/csr.hpp"
#include "estlab/gateway/idm_gate.hpp"
#include "lab_support.hpp"

namespace estlab::idm {
namespace {

using gateway::EstRequest;
using gateway::Handled;

const std::string kToken = "0123456789abcdef0123456789abcdef";

class IdmServiceTest : public ::testing::Test {
 protected:
  IdmServiceTest() {
    auto opened = IdmStore::open(lab.dir() / "idm.db");
    store = std::shared_ptr<IdmStore>(std::move(opened).value());
    IdmOptions options;
    options.operator_token = kToken;
    options.gateway_fingerprints = {lab.certificate("ra-officer").sha256_fingerprint()};
    service = std::make_unique<IdmService>(options, store);
  }

  Handled gateway_call(const std::string& what, const std::string& body, const std::string& as = "ra-officer") {
    EstRequest r;
    r.method = "POST";
    r.target = "/idm/ws/processes/est-enroll/" + what;
    r.body = body;
    if (!as.empty()) r.client.peer_chain = {lab.certificate(as)};
    return service->handle(r);
  }

  Handled operator_call(const std::string& method, const std::string& path, const std::string& body = "",
                        HttpHeaders headers = {{"Authorization", "Bearer " + kToken}, {"X-IDM-Request", "1"}}) {
    EstRequest r;
    r.method = method;
    r.target = "/idm/api/" + path;
    r.headers = std::move(headers);
    r.body = body;
    return service->handle(r);
  }

  // The same request again (a poll).
  std::string check_body_again() {
    return "{\"operation\":\"simpleenroll\",\"client\":\"cert:aa\",\"csr\":\"" + base64_encode(csr_der) + "\"}";
  }

  std::string check_body(const std::string& client = "cert:aa") {
    CsrBuilder builder;
    builder.subject(DistinguishedName::parse("CN=device-0001").value());
    builder.add_subject_alt_name(SubjectAltName::dns("device-0001.example"));
    csr_der = builder.sign(key).value().der();
    return "{\"operation\":\"simpleenroll\",\"client\":\"" + client + "\",\"client_subject\":\"CN=factory\",\"subject\":\"CN=device-0001\",\"csr\":\"" +
           base64_encode(csr_der) + "\"}";
  }

  test::TestLab lab;
  std::shared_ptr<IdmStore> store;
  std::unique_ptr<IdmService> service;
  PrivateKey key = PrivateKey::generate(KeyType::ec_p256).value();
  Bytes csr_der;
};

TEST_F(IdmServiceTest, OnlyThePinnedGatewayCertificateMayCallTheGatewayApi) {
  EXPECT_EQ(gateway_call("check", check_body(), "").response.status, 401);
  EXPECT_EQ(gateway_call("check", check_body(), "device-factory").response.status, 403);
  auto ok = gateway_call("check", check_body());
  ASSERT_EQ(ok.response.status, 200) << ok.response.body;
  // The IDM derives the id from the CSR it holds and the client: the gateway computes the same.
  const std::string id = gateway::approval_id("simpleenroll", sha256_hex(csr_der), "cert:aa");
  EXPECT_NE(ok.response.body.find(id), std::string::npos) << ok.response.body;
  EXPECT_NE(ok.response.body.find("\"state\":\"pending\""), std::string::npos);
  for (const char* bad : {"not json {", "[1,2]", "{\"operation\":\"simpleenroll\"}", "{\"operation\":\"x\",\"client\":\"c\",\"csr\":\"!!\"}"}) {
    auto refused = gateway_call("check", bad);
    EXPECT_EQ(refused.response.status, 400) << bad;
    EXPECT_NE(refused.response.body.find("\"error\""), std::string::npos) << bad;
  }
  EXPECT_EQ(gateway_call("nosuch", "{\"id\":\"x\"}").response.status, 404);
}

TEST_F(IdmServiceTest, TheOperatorApiNeedsTheTokenAndRefusesCrossSitePosts) {
  gateway_call("check", check_body());
  const std::string id = gateway::approval_id("simpleenroll", sha256_hex(csr_der), "cert:aa");
  auto anonymous = operator_call("GET", "requests", "", {});
  EXPECT_EQ(anonymous.response.status, 401);
  EXPECT_TRUE(find_header(anonymous.response.headers, "WWW-Authenticate").has_value());
  EXPECT_EQ(operator_call("GET", "requests", "", {{"Authorization", "Bearer wrong"}}).response.status, 401);
  EXPECT_EQ(operator_call("POST", "requests/" + id + "/approve", "{}", {}).response.status, 401);
  // With the token but without the custom header (what a cross-site form can send): refused.
  EXPECT_EQ(operator_call("POST", "requests/" + id + "/approve", "{}", {{"Authorization", "Bearer " + kToken}}).response.status, 403);
  auto other_origin = operator_call("POST", "requests/" + id + "/approve", "{}",
                                    {{"Authorization", "Bearer " + kToken}, {"X-IDM-Request", "1"}, {"Origin", "https://evil.example"},
                                     {"Host", "127.0.0.1:8444"}});
  EXPECT_EQ(other_origin.response.status, 403);
  auto still = store->find(id);
  ASSERT_TRUE(still.ok() && still->has_value());
  EXPECT_EQ((*still)->status.state, gateway::ApprovalState::pending) << "nothing approves without the operator's credential";
}

TEST_F(IdmServiceTest, ListShowApproveRejectAndBadInput) {
  gateway_call("check", check_body());
  const std::string id = gateway::approval_id("simpleenroll", sha256_hex(csr_der), "cert:aa");
  auto list = operator_call("GET", "requests");
  ASSERT_EQ(list.response.status, 200);
  EXPECT_NE(list.response.body.find(id), std::string::npos);
  auto shown = operator_call("GET", "requests/" + id);
  ASSERT_EQ(shown.response.status, 200);
  for (const char* expected : {"device-0001.example", "EC P-256", "CN=factory", "first_seen", "last_seen", "\"polls\":1"})
    EXPECT_NE(shown.response.body.find(expected), std::string::npos) << expected << " in " << shown.response.body;
  EXPECT_EQ(operator_call("GET", "requests/nosuch").response.status, 404);
  EXPECT_EQ(operator_call("GET", "requests?state=maybe").response.status, 400);
  EXPECT_EQ(operator_call("POST", "requests/" + id + "/reject", "{}").response.status, 400);  // no reason
  EXPECT_EQ(operator_call("POST", "requests/" + id + "/reject", "{\"reason\": [1]}").response.status, 400);
  EXPECT_EQ(operator_call("POST", "requests/" + id + "/reject", "{bad json").response.status, 400);
  EXPECT_EQ(operator_call("POST", "requests/" + id + "/frobnicate", "{}").response.status, 404);
  EXPECT_EQ(operator_call("POST", "requests/nosuch/approve", "{}").response.status, 404);
  auto rejected = operator_call("POST", "requests/" + id + "/reject", "{\"reason\":\"unknown serial\",\"operator\":\"bob\"}");
  ASSERT_EQ(rejected.response.status, 200) << rejected.response.body;
  EXPECT_EQ(operator_call("POST", "requests/" + id + "/approve", "{}").response.status, 409);  // final
  auto polled = gateway_call("check", check_body_again());
  EXPECT_NE(polled.response.body.find("unknown serial"), std::string::npos) << polled.response.body;
  auto history = operator_call("GET", "history");
  EXPECT_NE(history.response.body.find("bob"), std::string::npos);
}

TEST_F(IdmServiceTest, ThePageIsServedWithoutCredentialsAndCannotBeFramed) {
  EstRequest r;
  r.method = "GET";
  r.target = "/idm/";
  auto page = service->handle(r);
  EXPECT_EQ(page.response.status, 200);
  EXPECT_NE(page.response.body.find("Approve"), std::string::npos);
  EXPECT_EQ(find_header(page.response.headers, "X-Frame-Options"), "DENY");
}

}  // namespace
}  // namespace estlab::idm
