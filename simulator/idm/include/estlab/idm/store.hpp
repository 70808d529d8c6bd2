// The simulated identity manager's request store (PG-IDM-1/2): every request waiting for an
// operator, keyed by its identity binding (gateway::approval_id), with the operator's decision,
// its history and the certificate issued, so later retries get the same one. SQLite in WAL mode:
// a committed change survives the process being killed.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "estlab/core/certificate.hpp"
#include "estlab/core/clock.hpp"
#include "estlab/core/result.hpp"
#include "estlab/gateway/approval.hpp"

namespace estlab::idm {

struct StoredRequest {
  gateway::ApprovalRequest request;  // first_seen as first recorded
  TimePoint last_seen{};
  int polls = 0;  // times the gateway asked, the first included
  gateway::ApprovalStatus status;
  std::optional<TimePoint> decided_at;
};

struct HistoryEntry {
  std::string request_id;
  std::string subject;
  std::string action;  // "approved", "rejected", "issued"
  std::string by;
  std::string reason;
  TimePoint at{};
};

class IdmStore {
 public:
  static Result<std::unique_ptr<IdmStore>> open(const std::filesystem::path& path, std::shared_ptr<Clock> clock = system_clock());
  ~IdmStore();
  IdmStore(const IdmStore&) = delete;
  IdmStore& operator=(const IdmStore&) = delete;

  // The gateway asks: records the request on first sight, counts a poll otherwise, applies the
  // operator policy to a pending one, all in one transaction. The request's fields other than the
  // id are kept from the first sight.
  Result<gateway::ApprovalStatus> check(const gateway::ApprovalRequest& request, const gateway::OperatorPolicy& policy = {});
  Result<void> record_issued(const std::string& id, const Certificate& certificate);
  Result<std::optional<Certificate>> issued_for(const std::string& id);

  Result<std::optional<StoredRequest>> find(const std::string& id);
  // Requests by last sight, newest first; `state` filters.
  Result<std::vector<StoredRequest>> list(std::optional<gateway::ApprovalState> state = std::nullopt);
  // An operator decides a pending request. not_found for an unknown id; policy_refused when it
  // was decided already (a decision is final).
  Result<StoredRequest> decide(const std::string& id, gateway::ApprovalState decision, const std::string& by,
                               const std::string& reason);
  Result<std::vector<HistoryEntry>> history(std::size_t limit = 200);

 private:
  struct Impl;
  explicit IdmStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The store as the gateway's approver in the same process (the lab; tests).
class StoreApprovalGate final : public gateway::ApprovalGate {
 public:
  explicit StoreApprovalGate(std::shared_ptr<IdmStore> store) : store_(std::move(store)) {}
  Result<gateway::ApprovalStatus> check(const gateway::ApprovalRequest& request) override;
  Result<void> record_issued(const std::string& id, const Certificate& certificate) override;
  Result<std::optional<Certificate>> issued_for(const std::string& id) override;
  void set_policy(gateway::OperatorPolicy policy);

 private:
  std::shared_ptr<IdmStore> store_;
  std::mutex mutex_;
  gateway::OperatorPolicy policy_;
};

}  // namespace estlab::idm
