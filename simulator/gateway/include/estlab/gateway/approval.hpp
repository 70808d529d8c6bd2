// Manual approval of enrollments (RFC 7030 4.2.3 202 + Retry-After; PG-IDM-1). The gateway asks
// an ApprovalGate before issuing; the IDM will be one, the lab's in-memory operator queue is another.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "estlab/core/certificate.hpp"
#include "estlab/core/clock.hpp"

namespace estlab::gateway {

struct ApprovalRequest {
  std::string id;              // stable across retries of the same CSR: sha256_hex(CSR DER)
  std::string subject;         // the CSR's subject
  std::string client_subject;  // who asked; "" when no client certificate
  std::string operation;
  TimePoint first_seen{};
};

enum class ApprovalState { pending, approved, rejected };
const char* to_string(ApprovalState state);

class ApprovalGate {
 public:
  virtual ~ApprovalGate() = default;
  // Called for every enrollment; the same CSR retried gets the same id.
  virtual ApprovalState check(const ApprovalRequest& request) = 0;
  // RFC 7030 4.2.3: a retry after approval returns the certificate already issued, not a new one.
  virtual std::optional<Certificate> issued_for(const std::string& id) = 0;
  virtual void record_issued(const std::string& id, const Certificate& certificate) = 0;
};

// An operator queue held in memory: requests wait until approve() or reject().
class OperatorQueue final : public ApprovalGate {
 public:
  explicit OperatorQueue(std::shared_ptr<Clock> clock = system_clock()) : clock_(std::move(clock)) {}

  ApprovalState check(const ApprovalRequest& request) override;
  std::optional<Certificate> issued_for(const std::string& id) override;
  void record_issued(const std::string& id, const Certificate& certificate) override;

  struct Entry {
    ApprovalRequest request;
    ApprovalState state = ApprovalState::pending;
  };
  std::vector<Entry> list() const;
  bool approve(const std::string& id);  // false when the id is unknown
  bool reject(const std::string& id);

 private:
  std::shared_ptr<Clock> clock_;
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
  std::map<std::string, Certificate> issued_;
};

}  // namespace estlab::gateway
