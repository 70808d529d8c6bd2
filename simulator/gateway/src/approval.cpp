#include "estlab/gateway/approval.hpp"

#include <charconv>

namespace estlab::gateway {

const char* to_string(ApprovalState state) {
  switch (state) {
    case ApprovalState::pending: return "pending";
    case ApprovalState::approved: return "approved";
    case ApprovalState::rejected: return "rejected";
  }
  return "?";
}

std::optional<ApprovalState> parse_approval_state(std::string_view text) {
  for (auto state : {ApprovalState::pending, ApprovalState::approved, ApprovalState::rejected})
    if (text == to_string(state)) return state;
  return std::nullopt;
}

std::string client_binding(const Certificate* certificate, const std::string* basic_user) {
  if (certificate) return "cert:" + certificate->sha256_fingerprint();
  if (basic_user) return "basic:" + *basic_user;
  return "anonymous";
}

std::string approval_id(std::string_view operation, std::string_view csr_sha256, std::string_view client) {
  // Newlines separate the parts: none of them contains one, so no two inputs share a preimage.
  std::string input;
  input.append(operation).append("\n").append(csr_sha256).append("\n").append(client);
  return sha256_hex(as_bytes(input));
}

std::optional<OperatorPolicy> parse_operator_policy(std::string_view text) {
  OperatorPolicy p;
  if (text == "manual") return p;
  if (text == "never") {
    p.kind = OperatorPolicy::Kind::never_answer;
    return p;
  }
  if (text.rfind("approve-after=", 0) == 0) {
    const auto number = text.substr(14);
    int polls = 0;
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), polls);
    if (ec != std::errc() || end != number.data() + number.size() || polls < 1) return std::nullopt;
    p.kind = OperatorPolicy::Kind::approve_after_polls;
    p.polls = polls;
    return p;
  }
  if (text.rfind("reject=", 0) == 0 && text.size() > 7) {
    p.kind = OperatorPolicy::Kind::reject_all;
    p.reason = std::string(text.substr(7));
    return p;
  }
  return std::nullopt;
}

Result<ApprovalStatus> OperatorQueue::check(const ApprovalRequest& request) {
  std::lock_guard lock(mutex_);
  if (!available_) return make_error(ErrorCode::io, "the identity manager is unreachable (lab control idm-down)");
  auto [it, inserted] = entries_.try_emplace(request.id);
  Entry& entry = it->second;
  if (inserted) {
    entry.request = request;
    entry.request.first_seen = clock_->now();
  }
  ++entry.polls;
  if (entry.status.state == ApprovalState::pending) {
    switch (policy_.kind) {
      case OperatorPolicy::Kind::approve_after_polls:
        if (entry.polls > policy_.polls) {
          entry.status.state = ApprovalState::approved;
          entry.status.decided_by = "policy approve-after=" + std::to_string(policy_.polls);
        }
        break;
      case OperatorPolicy::Kind::reject_all:
        entry.status.state = ApprovalState::rejected;
        entry.status.reason = policy_.reason;
        entry.status.decided_by = "policy reject";
        break;
      case OperatorPolicy::Kind::manual:
      case OperatorPolicy::Kind::never_answer: break;
    }
  }
  return entry.status;
}

Result<void> OperatorQueue::record_issued(const std::string& id, const Certificate& certificate) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return make_error(ErrorCode::not_found, "no approval request " + id);
  it->second.status.issued = certificate;
  return {};
}

Result<std::optional<Certificate>> OperatorQueue::issued_for(const std::string& id) {
  std::lock_guard lock(mutex_);
  if (!available_) return make_error(ErrorCode::io, "the identity manager is unreachable (lab control idm-down)");
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::optional<Certificate>();
  return it->second.status.issued;
}

std::vector<OperatorQueue::Entry> OperatorQueue::list() const {
  std::lock_guard lock(mutex_);
  std::vector<Entry> out;
  for (const auto& [_, entry] : entries_) out.push_back(entry);
  return out;
}

bool OperatorQueue::approve(const std::string& id, const std::string& by) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.status.state != ApprovalState::pending) return false;
  it->second.status.state = ApprovalState::approved;
  it->second.status.decided_by = by;
  return true;
}

bool OperatorQueue::reject(const std::string& id, const std::string& reason, const std::string& by) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.status.state != ApprovalState::pending) return false;
  it->second.status.state = ApprovalState::rejected;
  it->second.status.reason = reason;
  it->second.status.decided_by = by;
  return true;
}

void OperatorQueue::set_policy(OperatorPolicy policy) {
  std::lock_guard lock(mutex_);
  policy_ = std::move(policy);
}

void OperatorQueue::set_available(bool available) {
  std::lock_guard lock(mutex_);
  available_ = available;
}

}  // namespace estlab::gateway
