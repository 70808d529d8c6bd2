#include "estlab/gateway/approval.hpp"

namespace estlab::gateway {

const char* to_string(ApprovalState state) {
  switch (state) {
    case ApprovalState::pending: return "pending";
    case ApprovalState::approved: return "approved";
    case ApprovalState::rejected: return "rejected";
  }
  return "?";
}

ApprovalState OperatorQueue::check(const ApprovalRequest& request) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = entries_.try_emplace(request.id);
  if (inserted) {
    it->second.request = request;
    it->second.request.first_seen = clock_->now();
  }
  return it->second.state;
}

std::optional<Certificate> OperatorQueue::issued_for(const std::string& id) {
  std::lock_guard lock(mutex_);
  if (auto it = issued_.find(id); it != issued_.end()) return it->second;
  return std::nullopt;
}

void OperatorQueue::record_issued(const std::string& id, const Certificate& certificate) {
  std::lock_guard lock(mutex_);
  issued_.insert_or_assign(id, certificate);
}

std::vector<OperatorQueue::Entry> OperatorQueue::list() const {
  std::lock_guard lock(mutex_);
  std::vector<Entry> out;
  for (const auto& [_, entry] : entries_) out.push_back(entry);
  return out;
}

bool OperatorQueue::approve(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;
  it->second.state = ApprovalState::approved;
  return true;
}

bool OperatorQueue::reject(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;
  it->second.state = ApprovalState::rejected;
  return true;
}

}  // namespace estlab::gateway
