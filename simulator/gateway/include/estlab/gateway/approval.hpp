// Manual approval of every issuing operation (RFC 7030 4.2.3 202 + Retry-After; PG-IDM-1/2). The
// gateway asks an ApprovalGate before issuing: the lab's in-memory OperatorQueue is one, the IDM
// (simulator/idm, reached over HTTPS by IdmApprovalGate) another.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "estlab/core/bytes.hpp"
#include "estlab/core/certificate.hpp"
#include "estlab/core/clock.hpp"
#include "estlab/core/result.hpp"

namespace estlab::gateway {

struct ApprovalRequest {
  std::string id;              // the identity binding, approval_id(): stable across retries of one request
  std::string operation;       // "simpleenroll", "simplereenroll", "serverkeygen", "fullcmc"
  std::string csr_sha256;      // sha256_hex of the CSR's DER
  std::string client;          // the authenticated client, client_binding()
  std::string client_subject;  // who asked, for operators; "" without a client certificate
  std::string subject;         // the subject the certificate will carry
  Bytes csr_der;               // for operators: SANs, key type and size
  TimePoint first_seen{};
};

// "cert:<sha256 fingerprint>" when the client showed a certificate, else "basic:<user>" for HTTP
// Basic, else "anonymous".
std::string client_binding(const Certificate* certificate, const std::string* basic_user);

// The key a decision is bound to: sha256 over the operation, the CSR's hash and the client
// binding. A retry of the same CSR by the same client finds its request (FB-19: no duplicate); a
// different client posting a copy of someone's CSR (the CSR is not secret: it may be seen on the
// wire of a proxy or in logs) gets a request of its own, so it can never collect a certificate
// an operator approved for the other. "anonymous" only arises where the gateway lets
// unauthenticated clients enroll at all.
std::string approval_id(std::string_view operation, std::string_view csr_sha256, std::string_view client);

enum class ApprovalState { pending, approved, rejected };
const char* to_string(ApprovalState state);
std::optional<ApprovalState> parse_approval_state(std::string_view text);

struct ApprovalStatus {
  ApprovalState state = ApprovalState::pending;
  std::string reason;                 // the operator's words (a rejection's reason)
  std::string decided_by;             // the operator
  std::optional<Certificate> issued;  // issued already: retries get this one (RFC 7030 4.2.3)
};

class ApprovalGate {
 public:
  virtual ~ApprovalGate() = default;
  // Records the request on first sight (the same id again is a poll) and says where it stands.
  // An error means the approver cannot be asked now (IDM unreachable): the gateway answers 503 +
  // Retry-After and the device's retry asks again (PG-IDM-2).
  virtual Result<ApprovalStatus> check(const ApprovalRequest& request) = 0;
  // The certificate issued for an approved request, so later retries get the same one.
  virtual Result<void> record_issued(const std::string& id, const Certificate& certificate) = 0;
  // The certificate issued for this id, if any; records nothing (a lookup before authorization).
  virtual Result<std::optional<Certificate>> issued_for(const std::string& id) = 0;
};

// What an operator does without being asked (lab controls, the fleet's IDM policies).
struct OperatorPolicy {
  enum class Kind { manual, approve_after_polls, reject_all, never_answer } kind = Kind::manual;
  int polls = 0;       // approve_after_polls: approved when the request has been seen this many times
  std::string reason;  // reject_all
};
std::optional<OperatorPolicy> parse_operator_policy(std::string_view text);  // "manual", "approve-after=3", "reject=why", "never"

// An operator queue held in memory: requests wait until approve() or reject() or the policy.
class OperatorQueue final : public ApprovalGate {
 public:
  explicit OperatorQueue(std::shared_ptr<Clock> clock = system_clock()) : clock_(std::move(clock)) {}

  Result<ApprovalStatus> check(const ApprovalRequest& request) override;
  Result<void> record_issued(const std::string& id, const Certificate& certificate) override;
  Result<std::optional<Certificate>> issued_for(const std::string& id) override;

  struct Entry {
    ApprovalRequest request;
    ApprovalStatus status;
    int polls = 0;  // times the request was seen, the first included
  };
  std::vector<Entry> list() const;
  bool approve(const std::string& id, const std::string& by = "operator");  // false when the id is unknown or decided
  bool reject(const std::string& id, const std::string& reason, const std::string& by = "operator");
  void set_policy(OperatorPolicy policy);
  // Unavailable: check() fails as an unreachable IDM would (lab controls idm-down / idm-up).
  void set_available(bool available);

 private:
  std::shared_ptr<Clock> clock_;
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
  OperatorPolicy policy_;
  bool available_ = true;
};

}  // namespace estlab::gateway
