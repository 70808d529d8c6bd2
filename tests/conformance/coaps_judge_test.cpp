// The coaps checks of the judge (content_format, max_age, links_contain, upstream, csrattrs over
// 2.05) on CoAP answers as the channel hands them over (as_http), and the loader's coaps keys.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "estlab/conformance/judge.hpp"
#include "estlab/conformance/runner.hpp"
#include "estlab/conformance/scenario.hpp"
#include "estlab/core/coaps_client.hpp"
#include "transport.hpp"

namespace estlab::conformance {
namespace {

namespace fs = std::filesystem;

JudgeContext context() {
  JudgeContext c;
  c.default_requirement = "9148-4.3-c";
  c.level_of = [](const std::string&) { return Level::must; };
  return c;
}

Observation seen(const CoapResponse& response) {
  Observation o;
  o.kind = Observation::Kind::response;
  o.response = as_http(response);
  return o;
}

CoapResponse coap(int code_class, int detail, std::optional<std::uint16_t> format = std::nullopt, std::string payload = {}) {
  CoapResponse r;
  r.code = CoapCode::make(code_class, detail);
  r.content_format = format;
  r.payload.assign(payload.begin(), payload.end());
  return r;
}

std::string describe(const Judgement& j) {
  std::string text;
  for (const auto& c : j.checks) text += std::string(to_string(c.verdict)) + " " + c.what + "\n";
  return text;
}

Verdict verdict_of(const Expectation& e, const Observation& o) { return judge(e, o, context()).verdict(); }

TEST(CoapsJudge, ContentFormatIsTheNumberOnTheWire) {
  const auto answer = seen(coap(2, 5, coap_formats::certs_only, "\x30\x00"));
  Expectation e;
  e.status = {205};
  e.content_format = 281;
  EXPECT_EQ(verdict_of(e, answer), Verdict::pass);
  e.content_format = 287;
  const auto wrong = judge(e, answer, context());
  EXPECT_EQ(wrong.verdict(), Verdict::fail);
  EXPECT_NE(describe(wrong).find("Content-Format 281, expected 287"), std::string::npos) << describe(wrong);
  e.content_format = -1;  // none
  EXPECT_EQ(verdict_of(e, answer), Verdict::fail);
  EXPECT_EQ(verdict_of(e, seen(coap(2, 5, std::nullopt, "x"))), Verdict::pass);
  // The format of a success body: a 4.06 carries none and is not judged on it (Accept 287 "or 4.06").
  e.status = {205, 406};
  e.content_format = 287;
  EXPECT_EQ(verdict_of(e, seen(coap(4, 6, std::nullopt, "no"))), Verdict::pass);
}

TEST(CoapsJudge, MaxAgePresentAbsentOrExact) {
  auto busy = coap(5, 3);
  busy.max_age = 60;
  Expectation e;
  e.max_age = "present";
  EXPECT_EQ(verdict_of(e, seen(busy)), Verdict::pass);
  EXPECT_EQ(verdict_of(e, seen(coap(5, 3))), Verdict::fail);
  e.max_age = "absent";
  EXPECT_EQ(verdict_of(e, seen(busy)), Verdict::fail);
  e.max_age = "60";
  EXPECT_EQ(verdict_of(e, seen(busy)), Verdict::pass);
  e.max_age = "30";
  EXPECT_EQ(verdict_of(e, seen(busy)), Verdict::fail);
}

// FB-40: a server that ignores the client's Block2 size answers in larger blocks.
TEST(CoapsJudge, MaxBlockSizeIsTheServersBlock2Size) {
  Expectation e;
  e.max_block_size = 64;
  auto blocks = coap(2, 5, coap_formats::certs_only, "\x30\x00");
  blocks.block2_szx = 2;  // 64 bytes
  EXPECT_EQ(seen(blocks).response.header("Block2-Size"), "64");
  EXPECT_EQ(verdict_of(e, seen(blocks)), Verdict::pass);
  blocks.block2_szx = 1;  // smaller is allowed (RFC 7959 2.4)
  EXPECT_EQ(verdict_of(e, seen(blocks)), Verdict::pass);
  blocks.block2_szx = 6;  // the preference ignored: 1024-byte blocks
  const auto ignored = judge(e, seen(blocks), context());
  EXPECT_EQ(ignored.verdict(), Verdict::fail);
  EXPECT_NE(describe(ignored).find("Block2 blocks of 1024 bytes, at most 64"), std::string::npos) << describe(ignored);
  EXPECT_EQ(verdict_of(e, seen(coap(2, 5, coap_formats::certs_only, "\x30\x00"))), Verdict::fail);  // in one piece
}

// 9148-4.7-a (MAY): a separate response after an empty ACK, or a piggybacked one, is recorded;
// neither fails, and the expectation that did not happen says so as info.
TEST(CoapsJudge, SeparateResponseIsRecorded) {
  Expectation e;
  e.separate = true;
  auto separate = coap(2, 5, coap_formats::certs_only, "\x30\x00");
  separate.separate = true;
  EXPECT_EQ(seen(separate).response.header("CoAP-Separate"), "empty ACK first");
  const auto yes = judge(e, seen(separate), context());
  EXPECT_EQ(yes.verdict(), Verdict::pass) << describe(yes);
  EXPECT_NE(describe(yes).find("as a separate response after an empty ACK"), std::string::npos) << describe(yes);
  const auto piggybacked = judge(e, seen(coap(2, 5, coap_formats::certs_only, "\x30\x00")), context());
  EXPECT_EQ(piggybacked.verdict(), Verdict::info) << describe(piggybacked);
  EXPECT_NE(describe(piggybacked).find("piggybacked on the ACK, not separate"), std::string::npos) << describe(piggybacked);
  Expectation not_separate;
  not_separate.separate = false;
  EXPECT_EQ(verdict_of(not_separate, seen(coap(2, 5, coap_formats::certs_only, "\x30\x00"))), Verdict::pass);
  EXPECT_EQ(verdict_of(not_separate, seen(separate)), Verdict::info);
}

TEST(CoapsJudge, LinksContainNeedsEachRtWithItsContentFormats) {
  Expectation e;
  e.links_contain = {"ace.est.crts", "ace.est.sen", "ace.est.sren"};
  // RFC 9148 4.1's own example shape: quoted multi-value ct, absolute coaps:// targets with a port.
  const std::string good =
      "<coaps://[2001:db8::2:1]:61616/est/crts>;rt=\"ace.est.crts\";ct=\"281 287\","
      "</est/sen>;rt=\"ace.est.sen\";ct=\"281 287\",\n</est/sren>;rt=\"ace.est.sren core.x\";ct=281";
  EXPECT_EQ(verdict_of(e, seen(coap(2, 5, coap_formats::link_format, good))), Verdict::pass)
      << describe(judge(e, seen(coap(2, 5, coap_formats::link_format, good)), context()));
  const std::string missing_sren = "</est/crts>;rt=\"ace.est.crts\";ct=281,</est/sen>;rt=\"ace.est.sen\";ct=281";
  const auto j = judge(e, seen(coap(2, 5, coap_formats::link_format, missing_sren)), context());
  EXPECT_EQ(j.verdict(), Verdict::fail);
  EXPECT_NE(describe(j).find("fail discovery lists rt=ace.est.sren"), std::string::npos) << describe(j);
  e.links_contain = {"ace.est.crts"};
  EXPECT_EQ(verdict_of(e, seen(coap(2, 5, coap_formats::link_format, "</est/crts>;rt=\"ace.est.crts\""))), Verdict::fail);  // no ct
  EXPECT_EQ(verdict_of(e, seen(coap(2, 5, coap_formats::link_format, "</est/crts>;rt=\"ace.est.crts\";ct=0"))), Verdict::fail);
  EXPECT_EQ(verdict_of(e, seen(coap(2, 5, coap_formats::link_format, "</est/crts>;rt=\"ace.est.crtsx\";ct=281"))), Verdict::fail);
  e.links_contain = {"ace.est.skg", "ace.est.att"};
  EXPECT_EQ(verdict_of(e, seen(coap(2, 5, coap_formats::link_format, "</a>;rt=ace.est.skg;ct=62,</b>;rt=ace.est.att;ct=285"))), Verdict::pass);
  EXPECT_EQ(verdict_of(e, seen(coap(2, 5, coap_formats::link_format, "</a>;rt=ace.est.skg;ct=281,</b>;rt=ace.est.att;ct=285"))), Verdict::fail);
}

Observation with_upstream(std::vector<UpstreamRecord> records) {
  Observation o = seen(coap(2, 4, coap_formats::certs_only, "\x30\x00"));
  o.upstream = std::move(records);
  return o;
}

UpstreamRecord forwarded() {
  UpstreamRecord r;
  r.method = "POST";
  r.path = "/.well-known/est/simpleenroll";
  r.content_type = "application/pkcs10";
  r.client = "C=SE,O=x,CN=dev-1";
  r.status = 200;
  return r;
}

TEST(CoapsJudge, UpstreamChecksWhatTheProxyForwarded) {
  Expectation::Upstream u;
  u.requests = 1;
  u.method = "POST";
  u.path = "/.well-known/est/simpleenroll";
  u.content_type = "Application/PKCS10";
  u.client = "C=SE, O=x, CN=dev-1";
  u.status = 200;
  Expectation e;
  e.upstream = u;
  EXPECT_EQ(verdict_of(e, with_upstream({forwarded()})), Verdict::pass) << describe(judge(e, with_upstream({forwarded()}), context()));
  // Block1 not reassembled: the body went up twice, or never.
  EXPECT_EQ(verdict_of(e, with_upstream({forwarded(), forwarded()})), Verdict::fail);
  EXPECT_EQ(verdict_of(e, with_upstream({})), Verdict::fail);
  for (auto change : std::vector<std::function<void(UpstreamRecord&)>>{
           [](UpstreamRecord& r) { r.path = "/.well-known/est/sen"; }, [](UpstreamRecord& r) { r.method = "PUT"; },
           [](UpstreamRecord& r) { r.content_type = "application/octet-stream"; }, [](UpstreamRecord& r) { r.client = "C=SE,O=x,CN=officer"; },
           [](UpstreamRecord& r) { r.status = 403; }}) {
    auto record = forwarded();
    change(record);
    EXPECT_EQ(verdict_of(e, with_upstream({record})), Verdict::fail) << record.path << " " << record.method << " " << record.content_type;
  }
  // A refusal the proxy made itself: nothing forwarded, and that is what requests: 0 checks.
  Expectation none;
  none.upstream = Expectation::Upstream{};
  none.upstream->requests = 0;
  EXPECT_EQ(verdict_of(none, with_upstream({})), Verdict::pass);
  EXPECT_EQ(verdict_of(none, with_upstream({forwarded()})), Verdict::fail);
  // Not visible (a vendor's proxy): said, never passed or failed.
  Observation hidden = seen(coap(2, 4));
  hidden.upstream_unavailable = "the target does not show it";
  const auto j = judge(none, hidden, context());
  EXPECT_EQ(j.verdict(), Verdict::info);
  EXPECT_NE(describe(j).find("not judged: the target does not show it"), std::string::npos) << describe(j);
}

// 9148-5-a/b: the proxy's own connection to the EST server. HTTPS and a presented client
// certificate are judged; the cmcRA EKU RFC 9148 5 describes is recorded (info), never failed.
TEST(CoapsJudge, UpstreamConnectionIsTlsWithAClientCertificate) {
  Expectation e;
  e.upstream = Expectation::Upstream{};
  e.upstream->scheme = "https";
  e.upstream->tls_client = true;
  auto good = forwarded();
  good.scheme = "https";
  good.tls_version = "TLSv1.3";
  good.tls_client = "C=SE,O=x,CN=RA officer";
  good.tls_client_ekus = {"1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.28"};
  EXPECT_EQ(verdict_of(e, with_upstream({good})), Verdict::pass) << describe(judge(e, with_upstream({good}), context()));
  auto plain = good;
  plain.scheme = "";  // not known, or not TLS
  EXPECT_EQ(verdict_of(e, with_upstream({plain})), Verdict::fail);
  auto anonymous = good;
  anonymous.tls_client.clear();
  anonymous.tls_client_ekus.clear();
  EXPECT_EQ(verdict_of(e, with_upstream({anonymous})), Verdict::fail);
  Expectation eku;
  eku.upstream = Expectation::Upstream{};
  eku.upstream->tls_client_eku = "cmcRA";
  EXPECT_EQ(verdict_of(eku, with_upstream({good})), Verdict::pass);
  auto officer_only = good;
  officer_only.tls_client_ekus = {"1.3.6.1.5.5.7.3.2"};
  const auto j = judge(eku, with_upstream({officer_only}), context());
  EXPECT_EQ(j.verdict(), Verdict::info) << describe(j);
  EXPECT_NE(describe(j).find("carries EKU cmcRA (it carries: 1.3.6.1.5.5.7.3.2)"), std::string::npos) << describe(j);
}

TEST(CoapsJudge, CsrattrsAreReadFromA205) {
  // SEQUENCE { challengePassword OID }
  const std::string der("\x30\x0b\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x09\x07", 13);
  Expectation e;
  e.csrattrs_valid = true;
  e.csrattrs_contains = {"1.2.840.113549.1.9.7"};
  const auto j = judge(e, seen(coap(2, 5, coap_formats::csrattrs, der)), context());
  EXPECT_EQ(j.verdict(), Verdict::pass) << describe(j);
  ASSERT_EQ(j.checks.size(), 2u) << describe(j);  // judged, not skipped
  EXPECT_EQ(verdict_of(e, seen(coap(2, 5, coap_formats::csrattrs, "\x30\x03\x06\x01"))), Verdict::fail);
}

TEST(CoapsTransport, AsHttpKeepsTheContentFormatAndMaxAge) {
  auto r = coap(2, 5, coap_formats::csrattrs, "\x30\x00");
  r.max_age = 17;
  const auto http = as_http(r);
  EXPECT_EQ(http.status, 205);
  EXPECT_EQ(http.header("Content-Format"), "285");
  EXPECT_EQ(http.header("Max-Age"), "17");
  EXPECT_EQ(http.header("Content-Type"), "application/csrattrs");
  EXPECT_FALSE(as_http(coap(4, 0, std::nullopt, "bad")).header("Content-Format"));
}

TEST(CoapsTransport, AsHttpShowsSize2OnlyWhenTheServerSentIt) {
  auto r = coap(2, 5, coap_formats::certs_only, "\x30\x00");
  EXPECT_FALSE(as_http(r).header("Size2"));
  r.size2 = 1234;
  EXPECT_EQ(as_http(r).header("Size2"), "1234");
  Expectation e;
  e.headers = {{"Size2", "present"}};
  EXPECT_EQ(verdict_of(e, seen(r)), Verdict::pass);
  r.size2.reset();
  EXPECT_EQ(verdict_of(e, seen(r)), Verdict::fail);
}

std::string load_error(const std::string& yaml) {
  const auto dir = fs::temp_directory_path() / ("estlab-coaps-loader-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto file = dir / "broken.yaml";
  std::ofstream(file) << yaml;
  std::string message;
  try {
    load_scenario_file(file);
  } catch (const ConfigError& e) {
    message = e.what();
  }
  fs::remove_all(dir);
  return message;
}

const std::string kCoapsHead = "id: x\ntitle: t\nrequirements: [9148-4.3-c]\ntransport: coaps\n";

TEST(CoapsScenarioLoader, CoapsKeysLoadAndBadOnesNameTheProblem) {
  const std::string good = kCoapsHead +
                           "steps:\n"
                           "  - connect: {as: device-factory, dtls: \"1.2\", ciphers: ECDHE-ECDSA-AES128-CCM8, groups: P-256}\n"
                           "    expect: {connection_fails: false, extended_master_secret: true}\n"
                           "  - send: {op: simpleenroll, csr: {cn: a}, accept: 281, content_format: 286, block_size: 64}\n"
                           "    expect: {status: 204, content_format: 281, max_age: absent, upstream: {requests: 1, path: /p, status: 200, scheme: https, "
                           "tls_client: present, tls_client_eku: cmcRA}}\n"
                           "  - send: {op: simpleenroll, body: \"x\", block1: {num: 1, more: false, szx: 7}}\n"
                           "  - send: {op: cacerts, uri_host: \"{{server_name}}\", size2: 0}\n"
                           "  - send: {path: \"/.well-known/core?rt=ace.est*\"}\n"
                           "    expect: {links_contain: [ace.est.crts], content_format: none, max_age: 60, max_block_size: 64, separate: false}\n";
  EXPECT_EQ(load_error(good), "");
  struct Case {
    std::string yaml, message;
  };
  const std::string https_head = "id: x\ntitle: t\nrequirements: [9148-4.3-c]\n";
  const std::vector<Case> cases = {
      {https_head + "steps:\n  - send: {op: cacerts, accept: 281}\n", ":5: this step uses accept, content_format, block_size, block1, uri_host or size2, which only exist over EST-coaps"},
      {https_head + "steps:\n  - send: {op: cacerts, uri_host: est.example}\n", ":5: this step uses accept, content_format, block_size, block1, uri_host or size2"},
      {https_head + "steps:\n  - send: {op: cacerts, size2: 0}\n", ":5: this step uses accept, content_format, block_size, block1, uri_host or size2"},
      {kCoapsHead + "steps:\n  - send: {op: cacerts, uri_host: \"\"}\n", ":6: send.uri_host must name a host"},
      {kCoapsHead + "steps:\n  - send: {op: cacerts, size2: -1}\n", ":6: send.size2 must be a whole number from 0"},
      {https_head + "steps:\n  - connect: {dtls: \"1.2\"}\n", ":5: this step uses dtls"},
      {https_head + "steps:\n  - send: {op: cacerts}\n    expect: {content_format: 281}\n", ":5: this step uses content_format, max_age"},
      {kCoapsHead + "steps:\n  - send: {op: cacerts, block_size: 100}\n", ":6: send.block_size must be 16, 32"},
      {kCoapsHead + "steps:\n  - send: {op: cacerts, block_size: 2048}\n", ":6: send.block_size must be a whole number from 16 to 1024"},
      {kCoapsHead + "steps:\n  - send: {op: cacerts, block1: {szx: 8}}\n", ":6: send.block1.szx must be a whole number from 0 to 7"},
      {kCoapsHead + "steps:\n  - send: {op: cacerts, block1: {size: 8}}\n", "unknown key 'size' in send.block1"},
      {kCoapsHead + "steps:\n  - connect: {dtls: \"1.3\"}\n", ":6: connect.dtls must be 1.0, 1.2 or any"},
      {https_head + "steps:\n  - connect: {as: device-factory, rejoin: true}\n", ":5: this step uses dtls, groups, rejoin"},
      {kCoapsHead + "steps:\n  - connect: {rejoin: true, dtls: \"1.2\"}\n", "connect.rejoin comes back as the device's own client"},
      {kCoapsHead + "steps:\n  - connect: {rejoin: sometimes}\n", "connect.rejoin"},
      {kCoapsHead + "steps:\n  - send: {op: cacerts}\n    expect: {upstream: {requests: 1}}\n", "expect.upstream finds the forwarded request by its body"},
      {kCoapsHead + "steps:\n  - send: {op: cacerts, body: x}\n    expect: {upstream: {paht: /x}}\n", "unknown key 'paht' in expect.upstream"},
      {kCoapsHead + "steps:\n  - send: {op: cacerts, body: x}\n    expect: {upstream: {scheme: http}}\n", "expect.upstream.scheme must be https"},
      {kCoapsHead + "steps:\n  - send: {op: cacerts, body: x}\n    expect: {upstream: {tls_client: yes}}\n", "expect.upstream.tls_client must be 'present'"},
      {kCoapsHead + "steps:\n  - send: {op: cacerts}\n    expect: {max_age: soon}\n", "expect.max_age (or present, absent) must be a whole number"},
      {kCoapsHead + "steps:\n  - send: {op: cacerts}\n    expect: {max_block_size: 2048}\n", "expect.max_block_size must be a whole number from 16 to 1024"},
      {kCoapsHead + "steps:\n  - send: {op: cacerts}\n    expect: {separate: sometimes}\n", "expect.separate"},
      {https_head + "steps:\n  - send: {op: cacerts}\n    expect: {separate: true}\n", "links_contain, upstream or separate"},
      {kCoapsHead + "steps:\n  - connect: {as: device-factory}\n    expect: {separate: true}\n", "a connect step can only expect"},
      {https_head + "steps:\n  - send: {op: cacerts}\n    expect: {max_block_size: 64}\n", "this step uses content_format, max_age, max_block_size"},
      {kCoapsHead + "steps:\n  - send: {op: cacerts}\n    expect: {content_format: json}\n", "expect.content_format (or none) must be a whole number"},
      {kCoapsHead + "steps:\n  - send: {op: cacerts}\n    expect: {extended_master_secret: true}\n", "are expectations of connect steps"},
      {kCoapsHead + "steps:\n  - connect: {as: device-factory}\n    expect: {content_format: 281}\n", "a connect step can only expect"},
  };
  for (const auto& c : cases) {
    const auto message = load_error(c.yaml);
    EXPECT_NE(message.find(c.message), std::string::npos) << "got: " << message << "\nfor:\n" << c.yaml;
  }
}

TEST(CoapsScenarioLoader, NetworkNeedsLoadTheirSeedIsStableAndBadValuesNameTheKey) {
  const auto dir = fs::temp_directory_path() / ("estlab-coaps-network-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto load = [&](const std::string& needs) {
    const auto file = dir / "network.yaml";
    std::ofstream(file) << kCoapsHead + "needs:\n  network: " + needs + "\nsteps:\n  - send: {op: cacerts}\n";
    return load_scenario_file(file);
  };
  const auto lossy = load("{loss: 20%, mtu: 576, split-client-hello: after-cookie}");
  ASSERT_TRUE(lossy.needs_network);
  EXPECT_DOUBLE_EQ(lossy.needs_network->loss, 0.2);
  EXPECT_EQ(lossy.needs_network->mtu, 576u);
  EXPECT_EQ(lossy.needs_network->split_client_hello, network::ClientHelloSplit::after_cookie);
  RunOptions options;
  const auto own = network_impairment_for(lossy, options).seed;
  EXPECT_EQ(network_impairment_for(lossy, options).seed, own) << "a scenario's own seed repeats run after run";
  options.network_seed = 5;
  const auto chosen = network_impairment_for(lossy, options).seed;
  EXPECT_NE(chosen, own);
  EXPECT_LT(chosen, 1ULL << 53);
  auto other = lossy;
  other.id = "y";
  EXPECT_NE(network_impairment_for(other, options).seed, chosen) << "--network-seed is mixed with each scenario's id";
  const auto pinned = load("{loss: 1%, seed: 9}");
  EXPECT_EQ(network_impairment_for(pinned, RunOptions{}).seed, 9u);
  EXPECT_NE(network_impairment_for(pinned, options).seed, 9u) << "--network-seed overrides a pinned seed";
  fs::remove_all(dir);

  const std::string https_head = "id: x\ntitle: t\nrequirements: [9148-4.3-c]\n";
  for (const auto& [yaml, message] : std::vector<std::pair<std::string, std::string>>{
           {https_head + "needs:\n  network: {loss: 20%}\nsteps:\n  - send: {op: cacerts}\n", "needs.network impairs the datagrams of EST-coaps"},
           {kCoapsHead + "needs:\n  network: {loss: 200%}\nsteps:\n  - send: {op: cacerts}\n", "needs.network loss: '200%' is not a probability"},
           {kCoapsHead + "needs:\n  network: {lose: 20%}\nsteps:\n  - send: {op: cacerts}\n", "unknown setting 'lose'"},
           {kCoapsHead + "needs:\n  network: {}\nsteps:\n  - send: {op: cacerts}\n", "needs.network maps impairments to values"},
           {kCoapsHead + "needs:\n  network: {mtu: [1]}\nsteps:\n  - send: {op: cacerts}\n", "needs.network.mtu must be a single value"},
       }) {
    const auto got = load_error(yaml);
    EXPECT_NE(got.find(message), std::string::npos) << "got: " << got << "\nfor:\n" << yaml;
  }
}

TEST(CoapsScenarioLoader, UriHostAndSize2ReachTheStep) {
  const auto dir = fs::temp_directory_path() / ("estlab-coaps-options-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto file = dir / "options.yaml";
  std::ofstream(file) << kCoapsHead + "steps:\n  - send: {op: cacerts, uri_host: est.example, size2: 0}\n  - send: {op: cacerts}\n";
  const auto s = load_scenario_file(file);
  fs::remove_all(dir);
  ASSERT_EQ(s.steps.size(), 2u);
  EXPECT_EQ(s.steps[0].uri_host, std::optional<std::string>("est.example"));
  EXPECT_EQ(s.steps[0].size2, std::optional<int>(0));
  EXPECT_FALSE(s.steps[1].uri_host);  // left out: no Uri-Host option at all
  EXPECT_FALSE(s.steps[1].size2);
}

}  // namespace
}  // namespace estlab::conformance
