// The authorization matrix (issue 13, item 7): every fixture identity x every EST operation x both
// profiles x both transports, against one embedded lab. The expected verdict of each cell comes
// from the rules (RFC 7030, RFC 9148, the protocol-gateway PG-* rules), written out in kRows below;
// "issued" is what the CA store holds after the request, not what the status code claims.
//
// The lab's EST-coaps proxy fronts the protocol-gateway gateway only (PG-COAP-1, lab.cpp), so the
// coaps columns exist for that profile alone. CoAP carries no HTTP authentication, so rows that
// differ only by their Basic credentials have no coaps cells.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "estlab/ca/ca.hpp"
#include "estlab/conformance/lab.hpp"
#include "estlab/core/base64.hpp"
#include "estlab/core/certs_only.hpp"
#include "estlab/core/cmc.hpp"
#include "estlab/core/coaps_client.hpp"
#include "estlab/core/csr.hpp"
#include "estlab/core/est.hpp"
#include "estlab/core/https_client.hpp"

namespace estlab::conformance {
namespace {

namespace fs = std::filesystem;

// What a cell must show.
enum class Expect {
  issue,          // a certificate is issued (2xx, one more certificate in the CA store)
  refuse,         // no certificate is issued (4xx/5xx, a refused handshake)
  last_issued,    // PG-ENR-4: issue while the client certificate is the last one issued for its subject, else refuse
  answer,         // a non-issuing operation answers 2xx
  any,            // a non-issuing operation may answer or refuse (the server may refuse the client's certificate first)
};

enum class Basic { none, right, wrong };

// How the DTLS handshake with the product's proxy must go for the row's certificate.
enum class Dtls {
  accept,   // a valid certificate from an open CA (PG-COAP-4)
  refuse,   // no certificate (9148-3-e) or one from a CA outside the truststore (PG-COAP-4)
  maybe,    // a certificate RFC 5280 or the product refuses: refused at the handshake or by the gateway
};

enum class Asks { own, preregistered, other };  // the subject the CSR asks for

struct Row {
  const char* name;
  const char* tls;  // fixture item presented as the TLS client certificate; "" = none
  Basic basic;
  Asks asks;
  // cacerts and csrattrs must answer it (7030-4.1.2-b, 7030-4.5-a: no authentication demanded):
  // no certificate, or one that passes RFC 5280 validation for TLS client authentication. Else
  // the server may refuse the certificate first (7030-3.3.2-b), or a forged forwarding (PG-COAP-2).
  bool answered;
  // simpleenroll / serverkeygen / fullcmc, and simplereenroll, per profile.
  Expect rfc_enroll, rfc_reenroll, pg_enroll, pg_reenroll;
  Dtls dtls;
  // Over HTTPS, the client sends this fixture item's chain in the header the product's proxy uses
  // for the device it speaks for (PG-COAP-2); the gateway must judge that device as if it had
  // connected itself. "" = none.
  const char* forwards = "";
};

constexpr Expect I = Expect::issue;
constexpr Expect R = Expect::refuse;
constexpr Expect L = Expect::last_issued;

// clang-format off
const std::vector<Row> kRows = {
  //  row                       TLS certificate          Basic         asks                 answer rfc7030 enroll, reenroll   protocol-gateway enroll, reenroll   DTLS
  {"device-factory",            "device-factory",        Basic::none,  Asks::own,           true,  I, I,   I, L,  Dtls::accept},
  {"device-key-agreement",      "device-key-agreement",  Basic::none,  Asks::own,           true,  I, I,   I, L,  Dtls::accept},
  {"device-current",            "device-current",        Basic::none,  Asks::own,           true,  I, I,   I, L,  Dtls::accept},
  // Valid, but not the last certificate of its subject: PG-ENR-4 refuses its renewal (the lab's
  // allowRenewalWithOldCertificates reading turns the rule on); RFC 7030 has no such rule.
  {"device-superseded",         "device-superseded",     Basic::none,  Asks::own,           true,  I, I,   I, L,  Dtls::accept},
  // Two open CAs with one subject: both valid over HTTPS; the proxy keeps one (PG-COAP-5). Both
  // below the root, and accepted over DTLS too: the device sends its CA after its leaf and the proxy
  // trusts the root; the CA it says it ignored refuses only a device that sends its leaf alone
  // (CoapProxyTest.TwinCasIgnoreLater...).
  {"device-twin-a",             "device-twin-a",         Basic::none,  Asks::own,           true,  I, I,   I, L,  Dtls::accept},
  {"device-twin-b",             "device-twin-b",         Basic::none,  Asks::own,           true,  I, I,   I, L,  Dtls::accept},
  // Issued by the rolled-over CA: chains to the new root, an open CA (PG-COAP-4).
  {"device-rollover",           "device-rollover",       Basic::none,  Asks::own,           true,  I, I,   I, L,  Dtls::accept},
  // PG-AUTH-3: an officer-role RA enrolls on behalf of a device (another subject); it renews its own.
  {"ra-officer",                "ra-officer",            Basic::none,  Asks::other,         true,  I, I,   I, L,  Dtls::accept},
  // clientAuth and id-kp-cmcRA: a client like any other for its own subject (PG-RA-1: no extra rights).
  {"ra-cmc",                    "ra-cmc",                Basic::none,  Asks::own,           true,  I, I,   I, L,  Dtls::accept},
  // An EKU without clientAuth may not authenticate a TLS client (RFC 5280 4.2.1.12, 7030-3.3.2-b); PG-RA-1.
  {"ra-cmc-only",               "ra-cmc-only",           Basic::none,  Asks::own,           false, R, R,   R, R,  Dtls::maybe},
  {"device-no-clientauth",      "device-no-clientauth",  Basic::none,  Asks::own,           false, R, R,   R, R,  Dtls::maybe},  // serverAuth only; PG-ENR-2
  // No EKU extension: any purpose under RFC 5280 4.2.1.12; the product wants clientAuth (PG-ENR-2).
  {"device-no-eku",             "device-no-eku",         Basic::none,  Asks::own,           true,  I, I,   R, R,  Dtls::maybe},
  {"device-revoked",            "device-revoked",        Basic::none,  Asks::own,           false, R, R,   R, R,  Dtls::maybe},  // 7030-3.3.2-b, PG-ENR-3
  {"device-expired",            "device-expired",        Basic::none,  Asks::own,           false, R, R,   R, R,  Dtls::maybe},  // 7030-3.3.2-b
  {"device-unknown-ca",         "device-unknown-ca",     Basic::none,  Asks::own,           false, R, R,   R, R,  Dtls::refuse}, // 7030-3.3.2-b, PG-COAP-4
  // HTTP Basic alone authenticates under RFC 7030 (3.2.3, 4.2-b), not a re-enrollment (7030-4.2.2-c:
  // the certificate being renewed is the TLS one); the product issues nothing without a client
  // certificate (PG-AUTH-1).
  {"basic-right",               "",                      Basic::right, Asks::preregistered, true,  I, R,   R, R,  Dtls::refuse},
  {"basic-wrong",               "",                      Basic::wrong, Asks::preregistered, true,  R, R,   R, R,  Dtls::refuse},  // 7030-3.2.3-a 401, PG-AUTH-2
  {"device-factory+basic-right","device-factory",        Basic::right, Asks::own,           true,  I, I,   I, L,  Dtls::accept},  // PG-AUTH-2
  // Credentials that fail are refused even beside a valid certificate (RFC 9110 11.6.1: 401).
  {"device-factory+basic-wrong","device-factory",        Basic::wrong, Asks::own,           true,  R, R,   R, R,  Dtls::accept},  // PG-AUTH-2
  {"anonymous",                 "",                      Basic::none,  Asks::other,         true,  R, R,   R, R,  Dtls::refuse},  // 7030-4.2-b, PG-AUTH-1, 9148-3-e
  // A forwarded device certificate (the proxy's header, sent directly over HTTPS): a header of the
  // product alone, so protocol-gateway cells only (the rfc7030 and DTLS columns are unused).
  // "asks own" = the forwarded device's subject.
  // The officer speaks for a device (PG-COAP-2), which is then judged as itself: PG-ENR-3, PG-ENR-2, 7030-3.3.2-b.
  {"ra-officer fwd factory",    "ra-officer",            Basic::none,  Asks::own,           true,  R, R,   I, L,  Dtls::accept, "device-factory"},
  {"ra-officer fwd revoked",    "ra-officer",            Basic::none,  Asks::own,           false, R, R,   R, R,  Dtls::accept, "device-revoked"},
  {"ra-officer fwd no-eku",     "ra-officer",            Basic::none,  Asks::own,           false, R, R,   R, R,  Dtls::accept, "device-no-eku"},
  {"ra-officer fwd unknown-ca", "ra-officer",            Basic::none,  Asks::own,           false, R, R,   R, R,  Dtls::accept, "device-unknown-ca"},
  // Only an officer-role client may forward a certificate (PG-COAP-2; id-kp-cmcRA gives no rights, PG-RA-1).
  {"factory fwd current",       "device-factory",        Basic::none,  Asks::own,           false, R, R,   R, R,  Dtls::accept, "device-current"},
  {"ra-cmc fwd factory",        "ra-cmc",                Basic::none,  Asks::own,           false, R, R,   R, R,  Dtls::accept, "device-factory"},
};
// clang-format on

// The operations of a column group, by the name printed.
struct Op {
  const char* name;
  std::optional<EstOperation> est;  // nullopt: /skc (RFC 9148 only)
};
const std::vector<Op> kHttpsOps = {{"cacerts", EstOperation::cacerts},       {"csrattrs", EstOperation::csrattrs},
                                   {"simpleenroll", EstOperation::simpleenroll}, {"simplereenroll", EstOperation::simplereenroll},
                                   {"serverkeygen", EstOperation::serverkeygen}, {"fullcmc", EstOperation::fullcmc}};
const std::vector<Op> kCoapsOps = {{"crts", EstOperation::cacerts},      {"att", EstOperation::csrattrs},
                                   {"sen", EstOperation::simpleenroll},  {"sren", EstOperation::simplereenroll},
                                   {"skg", EstOperation::serverkeygen},  {"skc", std::nullopt},
                                   {"fullcmc", EstOperation::fullcmc}};

bool issuing(const Op& op) {
  return !op.est || (*op.est != EstOperation::cacerts && *op.est != EstOperation::csrattrs);
}

// What one request did.
struct Seen {
  std::string code;      // "200", "4.03", "hs" (the handshake was refused)
  bool success = false;  // 2xx
  bool not_found = false;  // 404 / 4.04
  long issued = 0;       // certificates the CA store gained
  std::optional<TlsIdentity> renewed;  // a simplereenroll that issued: the new key and certificate
};

struct Cell {
  Seen seen;
  Expect expect = Expect::any;
  bool by_last_issued = false;  // `expect` was resolved from PG-ENR-4 (the CA's last certificate of the subject)
  bool optional_resource = false;  // RFC 9148 4.2-a: /att, /skg, /skc may be absent (4.04)
  bool wrong = false;
  std::string why;
};

class Matrix {
 public:
  explicit Matrix(LabOptions options) {
    static int labs = 0;
    dir_ = fs::temp_directory_path() / ("estlab-authz-" + std::to_string(::getpid()) + "-" + std::to_string(labs++));
    options.dir = dir_;
    lab_ = EmbeddedLab::start(options);
    for (const Target* target : lab_->targets()) {
      if (target->features.count("manual-approval") || target->controls.count("restart") || target->features.count("coaps-slow-upstream"))
        continue;
      if (target->profile == "rfc7030" && !rfc7030_) rfc7030_ = target;
      if (target->profile == "protocol-gateway" && !pg_) pg_ = target;
    }
    if (!rfc7030_ || !pg_ || pg_->coaps_port == 0) throw std::runtime_error("the embedded lab offers no rfc7030 and protocol-gateway targets with coaps");
    auto ca = ca::SimulatedCa::open({dir_ / "lab.db"});
    if (!ca.ok()) throw std::runtime_error(ca.error().message);
    ca_ = std::move(ca).value();
    // PG-COAP-5: which of the two twin CAs the proxy says it ignored.
    for (const auto& line : lab_->log()) {
      const auto at = line.find("PG-COAP-5: ignoring CA '");
      if (at == std::string::npos) continue;
      const auto start = at + std::string("PG-COAP-5: ignoring CA '").size();
      ignored_twin_ca_ = line.substr(start, line.find('\'', start) - start);
    }
  }
  ~Matrix() {
    lab_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  const Target& rfc7030() const { return *rfc7030_; }
  const Target& pg() const { return *pg_; }
  const std::string& ignored_twin_ca() const { return ignored_twin_ca_; }

  long issued_count() const {
    auto issued = ca_->list_issued();
    if (!issued.ok()) throw std::runtime_error(issued.error().message);
    return static_cast<long>(issued->size());
  }

  // PG-ENR-4, read from the CA: is this the last certificate issued for its subject?
  bool last_issued(const Certificate& certificate) const {
    auto last = ca_->last_issued_for_subject(certificate.subject());
    if (!last.ok()) throw std::runtime_error(last.error().message);
    return !last->has_value() || (*last)->certificate.serial_hex() == certificate.serial_hex();
  }

 private:
  fs::path dir_;
  std::unique_ptr<EmbeddedLab> lab_;
  std::unique_ptr<ca::SimulatedCa> ca_;
  const Target* rfc7030_ = nullptr;
  const Target* pg_ = nullptr;
  std::string ignored_twin_ca_;
};

// The certificate a device holds: the fixture's, or the one its last renewal got (a device renews
// with the newest certificate it has; PG-ENR-4 asks for exactly that).
using Held = std::map<std::string, TlsIdentity>;

std::optional<TlsIdentity> identity_of(const Target& target, const std::string& item, const Held& held = {}) {
  if (item.empty()) return std::nullopt;
  if (auto renewed = held.find(item); renewed != held.end()) return renewed->second;
  auto it = target.identities.find(item);
  if (it == target.identities.end()) throw std::runtime_error("the lab has no identity " + item);
  return it->second;
}

// The fixture item the request speaks for: the forwarded device, else the TLS client.
std::string principal_item(const Row& row) { return std::string(*row.forwards ? row.forwards : row.tls); }

// The TLS client's certificate: a forwarder always presents its own fixture certificate (a
// renewal would not carry the officer role), a device the newest it holds.
std::optional<TlsIdentity> tls_identity_of(const Target& target, const Row& row, const Held& held) {
  return identity_of(target, row.tls, *row.forwards ? Held{} : held);
}

// The CSR the row sends: its own certificate's subject and SANs (what PG-ENR-1 and 7030-4.2.2-a
// compare), the preregistered device's subject, or a fresh device subject.
struct Request {
  Csr csr;
  PrivateKey key;
};

Request make_request(const Target& target, const Row& row, const std::optional<TlsIdentity>& identity, EstOperation op, int serial) {
  CsrBuilder builder;
  DistinguishedName subject;
  // A re-enrollment always renews the client's own certificate (RFC 7030 4.2.2).
  const Asks asks = (op == EstOperation::simplereenroll && identity) ? Asks::own : row.asks;
  if (asks == Asks::own && identity) {
    subject = identity->certificate.subject();
    for (const auto& san : identity->certificate.subject_alt_names()) builder.add_subject_alt_name(san);
  } else if (asks == Asks::preregistered) {
    subject = DistinguishedName::parse(target.credentials.at("preregistered").subject).value();
  } else {
    std::string text = target.subject_template;
    text.replace(text.find("{{cn}}"), 6, "authz-" + std::to_string(serial));
    subject = DistinguishedName::parse(text).value();
  }
  builder.subject(subject);
  auto key = PrivateKey::generate(target.key_type).value();
  auto csr = builder.sign(key).value();
  return {std::move(csr), std::move(key)};
}

// The certificate a re-enrollment answer carries, with the key the CSR was made with.
std::optional<TlsIdentity> renewed_identity(ByteView certs_only, const Request& made, const TlsIdentity& before) {
  auto bag = CertsOnly::parse(certs_only);
  if (!bag.ok() || bag->certificates().empty()) return std::nullopt;
  return TlsIdentity{made.key, bag->certificates().front(), before.chain};
}

Seen https_cell(const Matrix& m, const Target& target, const Row& row, EstOperation op, int serial, const Held& held) {
  const auto identity = identity_of(target, principal_item(row), held);
  HttpsClientOptions options;
  options.host = target.host;
  options.port = target.port;
  options.server_name = target.server_name;
  options.trust_anchors = target.trust_anchors;
  options.identity = tls_identity_of(target, row, held);
  HttpRequest request;
  request.method = std::string(http_method(op));
  request.target = est_path("", op);
  if (*row.forwards) {
    std::string chain = base64_encode(identity->certificate.der());
    for (const auto& certificate : identity->chain) chain += "," + base64_encode(certificate.der());
    request.headers.emplace_back(kForwardedClientCertHeader, chain);
  }
  if (row.basic != Basic::none) {
    const auto& credential = target.credentials.at("preregistered");
    request.headers.emplace_back("Authorization", make_basic_authorization(credential.user, row.basic == Basic::right
                                                                                                  ? credential.password
                                                                                                  : credential.password + "-wrong"));
  }
  std::optional<Request> made;
  if (op != EstOperation::cacerts && op != EstOperation::csrattrs) {
    made = make_request(target, row, identity, op, serial);
    Bytes body = made->csr.der();
    std::string type(media_types::pkcs10);
    if (op == EstOperation::fullcmc) {
      body = make_full_pki_request(made->csr, made->key, nullptr).value();
      type = std::string(media_types::cmc_request);
    }
    request.headers.emplace_back("Content-Type", type);
    request.headers.emplace_back("Content-Transfer-Encoding", "base64");
    request.body = encode_est_body(body);
  }
  const long before = m.issued_count();
  auto response = https_request(options, request);
  Seen seen;
  seen.issued = m.issued_count() - before;
  if (!response.ok()) {
    seen.code = "hs";
    return seen;
  }
  seen.code = std::to_string(response->status);
  seen.success = response->status >= 200 && response->status < 300;
  seen.not_found = response->status == 404;
  if (op == EstOperation::simplereenroll && seen.success && seen.issued == 1)
    seen.renewed = renewed_identity(as_bytes(response->body), *made, *identity);
  return seen;
}

Seen coaps_cell(const Matrix& m, const Target& target, const Row& row, const Op& op, int serial, const Held& held) {
  const auto identity = identity_of(target, row.tls, held);
  auto options = coaps_client_options(target, identity, CoapsClientOptions{}.request_timeout);
  options.handshake_timeout = CoapsClientOptions{}.handshake_timeout;
  CoapRequest request;
  request.method = op.est && http_method(*op.est) == "GET" ? CoapMethod::get : CoapMethod::post;
  request.path = op.est ? coaps_est_path("", *op.est).value_or(std::string(coaps_est_root) + "/fullcmc")
                        : std::string(coaps_est_root) + "/skc";
  std::optional<Request> made;
  if (issuing(op)) {
    const EstOperation est = op.est.value_or(EstOperation::serverkeygen);
    made = make_request(target, row, identity, est, serial);
    request.content_format = coap_formats::pkcs10;
    request.payload = made->csr.der();
    if (est == EstOperation::fullcmc) {
      request.content_format.reset();  // RFC 9148 defines no Content-Format for a Full PKI Request
      request.payload = make_full_pki_request(made->csr, made->key, nullptr).value();
    }
  }
  const long before = m.issued_count();
  Seen seen;
  auto connection = CoapsConnection::connect(options);
  if (!connection.ok()) {
    seen.code = "hs";
    seen.issued = m.issued_count() - before;
    return seen;
  }
  auto response = connection->send(request);
  connection->close();
  seen.issued = m.issued_count() - before;
  if (!response.ok()) {
    seen.code = "err";
    return seen;
  }
  seen.code = response->code.to_string();
  seen.success = response->code.code_class() == 2;
  seen.not_found = response->code == CoapCode::make(4, 4);
  if (op.est == EstOperation::simplereenroll && seen.success && seen.issued == 1)
    seen.renewed = renewed_identity(response->payload, *made, *identity);
  return seen;
}

// Judges one cell; `expect` is already resolved (last_issued read from the CA before the request).
void judge(Cell& cell) {
  const Seen& s = cell.seen;
  switch (cell.expect) {
    case Expect::issue:
      if (cell.optional_resource && s.not_found && s.issued == 0) return;
      cell.wrong = !(s.success && s.issued == 1);
      if (cell.wrong) cell.why = "wrong refusal: expected a certificate, got " + s.code + " and " + std::to_string(s.issued) + " issued";
      return;
    case Expect::refuse:
      cell.wrong = s.issued != 0 || s.success;
      if (cell.wrong) cell.why = "wrong issuance: expected a refusal, got " + s.code + " and " + std::to_string(s.issued) + " issued";
      return;
    case Expect::answer:
      cell.wrong = s.issued != 0 || !(s.success || (cell.optional_resource && s.not_found));
      if (cell.wrong) cell.why = "expected an answer, got " + s.code;
      return;
    case Expect::any:
      cell.wrong = s.issued != 0;
      if (cell.wrong) cell.why = "a non-issuing operation issued " + std::to_string(s.issued);
      return;
    case Expect::last_issued: break;
  }
  cell.wrong = true;
  cell.why = "unresolved expectation";
}

const char* expect_mark(Expect e) {
  switch (e) {
    case Expect::issue: return "I";
    case Expect::refuse: return "R";
    case Expect::answer: return "A";
    case Expect::any: return "*";
    case Expect::last_issued: return "L";
  }
  return "?";
}

struct Group {
  std::string title;
  const Target* target;
  bool coaps;
  const std::vector<Op>* ops;
  std::map<std::pair<std::size_t, std::size_t>, Cell> cells;  // (row, op)
};

struct MatrixRun {
  std::vector<Group> groups;
  int cells = 0, issued = 0, wrong_issued = 0, wrong_refused = 0, other_wrong = 0;
  std::string text;

  const Cell* cell(const std::string& group_prefix, const std::string& row, const std::string& op) const {
    for (const auto& g : groups) {
      if (g.title.rfind(group_prefix, 0) != 0) continue;
      for (const auto& [at, c] : g.cells)
        if (kRows[at.first].name == row && (*g.ops)[at.second].name == op) return &c;
    }
    return nullptr;
  }
};

// Runs every cell against one lab with these faults, and prints the matrix.
MatrixRun run_matrix(const LabOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  Matrix m(options);
  MatrixRun run;
  std::vector<Group> groups = {{"rfc7030 over HTTPS", &m.rfc7030(), false, &kHttpsOps, {}},
                               {"protocol-gateway over HTTPS", &m.pg(), false, &kHttpsOps, {}},
                               {"protocol-gateway over coaps (the product's proxy)", &m.pg(), true, &kCoapsOps, {}}};
  if (m.ignored_twin_ca().empty()) throw std::runtime_error("the proxy did not say which twin CA it ignored (PG-COAP-5)");

  // The expected verdict of a cell, from the row's rules; nullopt = no such cell.
  auto expectation = [&](const Group& g, const Row& row, const Op& op, const std::optional<TlsIdentity>& identity)
      -> std::optional<Cell> {
    Cell cell;
    if (*row.forwards && g.target->profile == "rfc7030") return std::nullopt;  // PG-COAP-2's header
    const bool reenroll = op.est == EstOperation::simplereenroll;
    Expect rule = g.target->profile == "rfc7030" ? (reenroll ? row.rfc_reenroll : row.rfc_enroll)
                                                 : (reenroll ? row.pg_reenroll : row.pg_enroll);
    if (g.coaps) {
      if (row.basic != Basic::none || *row.forwards) return std::nullopt;  // CoAP has no HTTP authentication; the proxy forwards
      cell.optional_resource = !op.est || op.est == EstOperation::csrattrs || op.est == EstOperation::serverkeygen;  // 9148-4.2-a
      const Dtls dtls = row.dtls;
      if (dtls == Dtls::refuse || op.est == EstOperation::fullcmc) {  // 9148-3-e, PG-COAP-4/5; PG-COAP-3
        cell.expect = Expect::refuse;
        return cell;
      }
      if (!issuing(op)) {
        cell.expect = dtls == Dtls::accept ? Expect::answer : Expect::any;
        return cell;
      }
    } else if (!issuing(op)) {
      // 7030-4.1.2-b, 7030-4.5-a: no authentication is demanded for these; a certificate that
      // fails validation may be refused first (7030-3.3.2-b).
      cell.expect = row.answered ? Expect::answer : Expect::any;
      return cell;
    }
    if (rule == Expect::last_issued) {  // PG-ENR-4, read from the CA just before the request
      rule = m.last_issued(identity->certificate) ? Expect::issue : Expect::refuse;
      cell.by_last_issued = true;
    }
    cell.expect = rule;
    return cell;
  };

  // Re-enrollments first, since any enrollment for a row's own subject makes its certificate no
  // longer the last issued (PG-ENR-4). A device renews with the newest certificate it holds, so
  // each renewal's certificate is what that fixture identity presents next; coaps first, as the
  // renewed certificates come without the chain a DTLS client sends. Every other operation then
  // presents the fixture's own certificate.
  int serial = 0;
  Held held;
  for (const bool reenroll_pass : {true, false}) {
    for (std::size_t gi : {std::size_t{2}, std::size_t{1}, std::size_t{0}}) {
      Group& g = groups[gi];
      for (std::size_t r = 0; r < kRows.size(); ++r) {
        const Row& row = kRows[r];
        const auto identity = identity_of(*g.target, principal_item(row), reenroll_pass ? held : Held{});
        for (std::size_t o = 0; o < g.ops->size(); ++o) {
          const Op& op = (*g.ops)[o];
          if ((op.est == EstOperation::simplereenroll) != reenroll_pass) continue;
          auto cell = expectation(g, row, op, identity);
          if (!cell) continue;
          ++serial;
          cell->seen = g.coaps ? coaps_cell(m, *g.target, row, op, serial, reenroll_pass ? held : Held{})
                               : https_cell(m, *g.target, row, *op.est, serial, reenroll_pass ? held : Held{});
          judge(*cell);
          // The superseded row stands for a device presenting an older certificate: it keeps it.
          if (cell->seen.renewed && std::string(row.name) != "device-superseded") held.insert_or_assign(principal_item(row), *cell->seen.renewed);
          g.cells[{r, o}] = *cell;
        }
      }
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  // The matrix: one block per profile x transport; a cell is "<code> <expected><mark>", the mark
  // "+" when a certificate was issued, "!" when the cell is wrong.
  std::ostringstream out;
  int& cells = run.cells;
  int& issued = run.issued;
  int& wrong_issued = run.wrong_issued;
  int& wrong_refused = run.wrong_refused;
  int& other_wrong = run.other_wrong;
  auto mark = [](const Cell& c) {
    std::string text = expect_mark(c.expect);
    if (c.optional_resource && c.expect == Expect::issue) text = "O";
    if (c.by_last_issued) text = "L>" + text;
    return text;
  };
  out << "\nAuthorization matrix. Expected: I issue, R refuse, A answer, * answer or refuse, O issue or 4.04 (optional\n"
         "resource, 9148-4.2-a), L>x: x because the certificate is (I) or is not (R) the last issued for its subject\n"
         "(PG-ENR-4). Seen: + a certificate was issued (CA store), ! wrong; hs = handshake refused.\n";
  out << "PG-COAP-5: the proxy ignored CA '" << m.ignored_twin_ca() << "'\n";
  for (const auto& g : groups) {
    out << "\n== " << g.title << " ==\n" << std::left << std::setw(28) << "identity";
    for (const auto& op : *g.ops) out << std::setw(15) << op.name;
    out << "\n";
    for (std::size_t r = 0; r < kRows.size(); ++r) {
      out << std::setw(28) << kRows[r].name;
      for (std::size_t o = 0; o < g.ops->size(); ++o) {
        auto it = g.cells.find({r, o});
        if (it == g.cells.end()) {
          out << std::setw(15) << "n/a";
          continue;
        }
        const Cell& c = it->second;
        ++cells;
        issued += c.seen.issued > 0;
        if (c.wrong) {
          if (c.seen.issued > 0 && c.expect != Expect::issue) ++wrong_issued;
          else if (c.expect == Expect::issue && c.seen.issued == 0) ++wrong_refused;
          else ++other_wrong;
        }
        std::string text = c.seen.code + " " + mark(c) + (c.seen.issued > 0 ? "+" : "") + (c.wrong ? "!" : "");
        out << std::setw(15) << text;
      }
      out << "\n";
    }
  }
  out << "\n" << cells << " cells, " << issued << " issued, " << wrong_issued << " wrong issuances, " << wrong_refused
      << " wrong refusals, " << other_wrong << " other mismatches, " << std::fixed << std::setprecision(1) << seconds << " s\n";
  run.text = out.str();
  run.groups = std::move(groups);
  return run;
}

TEST(AuthorizationMatrix, NoWrongIssuanceAndNoWrongRefusalForEveryIdentityOperationProfileAndTransport) {
  const MatrixRun run = run_matrix({});
  std::cout << run.text;
  for (const auto& g : run.groups)
    for (const auto& [at, cell] : g.cells)
      EXPECT_FALSE(cell.wrong) << g.title << ": " << kRows[at.first].name << " x " << (*g.ops)[at.second].name << ": " << cell.why;
  EXPECT_EQ(run.wrong_issued, 0);
  EXPECT_EQ(run.wrong_refused, 0);
  EXPECT_GT(run.issued, 0);
}

// The matrix is only worth its zeros if it sees a broken gateway or proxy: each fault below must
// turn the cells of its rule wrong, in the direction the fault breaks it.
TEST(AuthorizationMatrix, SeesTheWrongIssuancesAndRefusalsOfABrokenGatewayAndProxy) {
  LabOptions options;
  options.faults = {gateway::Fault::skip_eku_check, gateway::Fault::accept_revoked, gateway::Fault::ignore_renewal_rule};
  options.proxy_faults = {coap_proxy::ProxyFault::forward_fullcmc, coap_proxy::ProxyFault::forward_as_officer};
  const MatrixRun run = run_matrix(options);
  std::cout << "with gateway faults skip-eku-check, accept-revoked, ignore-renewal-rule and proxy faults forward-fullcmc, "
               "forward-as-officer: "
            << run.wrong_issued << " wrong issuances, " << run.wrong_refused << " wrong refusals\n";
  struct Broken {
    const char* fault;
    const char* group;
    const char* row;
    const char* op;
    bool issued;  // true: a wrong issuance; false: a wrong refusal
  };
  for (const Broken& b : std::vector<Broken>{
           {"skip-eku-check (PG-ENR-2)", "protocol-gateway over HTTPS", "device-no-eku", "simpleenroll", true},
           {"skip-eku-check (7030-3.3.2-b)", "rfc7030", "device-no-clientauth", "fullcmc", true},
           {"accept-revoked (7030-3.3.2-b)", "rfc7030", "device-revoked", "simpleenroll", true},
           {"accept-revoked (PG-ENR-3)", "protocol-gateway over HTTPS", "device-revoked", "serverkeygen", true},
           {"ignore-renewal-rule (PG-ENR-4)", "protocol-gateway over HTTPS", "device-superseded", "simplereenroll", true},
           {"forward-fullcmc (PG-COAP-3)", "protocol-gateway over coaps", "device-factory", "fullcmc", true},
           // The gateway sees the officer, not the device: a renewal of the device's subject is refused.
           {"forward-as-officer (PG-COAP-2)", "protocol-gateway over coaps", "device-factory", "sren", false},
       }) {
    const Cell* cell = run.cell(b.group, b.row, b.op);
    ASSERT_NE(cell, nullptr) << b.group << " " << b.row << " " << b.op;
    EXPECT_TRUE(cell->wrong) << b.fault << ": " << b.row << " x " << b.op << " saw " << cell->seen.code;
    EXPECT_EQ(cell->seen.issued > 0, b.issued) << b.fault << ": " << b.row << " x " << b.op;
  }
  EXPECT_GT(run.wrong_issued, 0);
  EXPECT_GT(run.wrong_refused, 0);
}

}  // namespace
}  // namespace estlab::conformance
