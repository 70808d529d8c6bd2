// The IDM store: one request per identity binding however often it is polled, final decisions
// with their history, the issued certificate kept for retries, policies, and durability across
// SIGKILL (WAL).
#include "estlab/idm/store.hpp"

#include <gtest/gtest.h>
#include <fstream>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lab_support.hpp"

namespace estlab::idm {
namespace {

using gateway::ApprovalRequest;
using gateway::ApprovalState;

class IdmStoreTest : public ::testing::Test {
 protected:
  std::filesystem::path db() const { return lab.dir() / "idm.db"; }
  std::unique_ptr<IdmStore> open() {
    auto store = IdmStore::open(db());
    EXPECT_TRUE(store.ok()) << store.error().message;
    return std::move(store).value();
  }
  static ApprovalRequest request(const std::string& csr_hash, const std::string& client = "cert:aa") {
    ApprovalRequest r;
    r.operation = "simpleenroll";
    r.csr_sha256 = csr_hash;
    r.client = client;
    r.id = gateway::approval_id(r.operation, r.csr_sha256, r.client);
    r.subject = "CN=device-" + csr_hash;
    r.client_subject = "CN=factory";
    r.csr_der = Bytes{0x30, 0x00};
    return r;
  }

  test::TestLab lab;
};

TEST_F(IdmStoreTest, PollsOfOneBindingAreOneRequestAndDecisionsAreFinal) {
  auto store = open();
  const auto a = request("01");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(store->check(a)->state, ApprovalState::pending);
  EXPECT_EQ(store->check(request("01", "cert:bb"))->state, ApprovalState::pending);  // another client: another request
  auto pending = store->list(ApprovalState::pending);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 2u);
  auto found = store->find(a.id);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->polls, 3);
  EXPECT_EQ((*found)->request.subject, "CN=device-01");

  EXPECT_EQ(store->decide("nosuchid", ApprovalState::approved, "op", "").error().code, ErrorCode::not_found);
  EXPECT_EQ(store->decide(a.id, ApprovalState::rejected, "op", "").error().code, ErrorCode::invalid_input);  // no reason
  auto approved = store->decide(a.id, ApprovalState::approved, "alice", "");
  ASSERT_TRUE(approved.ok()) << approved.error().message;
  EXPECT_EQ(approved->status.decided_by, "alice");
  EXPECT_TRUE(approved->decided_at.has_value());
  EXPECT_EQ(store->decide(a.id, ApprovalState::rejected, "bob", "late").error().code, ErrorCode::policy_refused);
  EXPECT_EQ(store->check(a)->state, ApprovalState::approved);

  const Certificate cert = lab.certificate("device-factory");
  EXPECT_FALSE(store->record_issued(request("01", "cert:bb").id, cert).ok()) << "a pending request gets no certificate";
  ASSERT_TRUE(store->record_issued(a.id, cert).ok());
  EXPECT_FALSE(store->record_issued(a.id, cert).ok()) << "issued once";
  auto issued = store->issued_for(a.id);
  ASSERT_TRUE(issued.ok() && issued->has_value());
  EXPECT_EQ((*issued)->serial_hex(), cert.serial_hex());

  auto history = store->history();
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ(history->front().action, "issued");
  EXPECT_EQ(history->back().action, "approved");
  EXPECT_EQ(history->back().by, "alice");
}

TEST_F(IdmStoreTest, PoliciesDecideOnThePoll) {
  auto store = open();
  const auto after = *gateway::parse_operator_policy("approve-after=2");
  const auto r = request("02");
  EXPECT_EQ(store->check(r, after)->state, ApprovalState::pending);
  EXPECT_EQ(store->check(r, after)->state, ApprovalState::pending);
  EXPECT_EQ(store->check(r, after)->state, ApprovalState::approved);
  const auto rejected = store->check(request("03"), *gateway::parse_operator_policy("reject=not ours"));
  EXPECT_EQ(rejected->state, ApprovalState::rejected);
  EXPECT_EQ(rejected->reason, "not ours");
  EXPECT_EQ(store->check(request("04"), *gateway::parse_operator_policy("never"))->state, ApprovalState::pending);
}

TEST_F(IdmStoreTest, ABadFileIsAClearError) {
  {
    std::ofstream out(db(), std::ios::binary);
    out << "this is not a database, it is a text file with enough bytes to have a header";
  }
  auto store = IdmStore::open(db());
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("idm.db"), std::string::npos) << store.error().message;
  EXPECT_NE(store.error().message.find("not a database"), std::string::npos) << store.error().message;
  EXPECT_FALSE(IdmStore::open("").ok());
}

// A child records requests and decisions, tells the parent each committed one through a pipe,
// and is killed mid-stream; everything it reported must be there after reopening.
TEST_F(IdmStoreTest, CommittedRequestsAndDecisionsSurviveSigkill) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    auto store = IdmStore::open(db());
    if (!store.ok()) ::_exit(2);
    for (int i = 0;; ++i) {
      const auto r = request("k" + std::to_string(i));
      if (!(*store)->check(r).ok()) ::_exit(3);
      if (i % 2 == 0 && !(*store)->decide(r.id, ApprovalState::approved, "child", "").ok()) ::_exit(4);
      const int n = i;
      if (::write(fds[1], &n, sizeof n) != sizeof n) ::_exit(5);
    }
  }
  ::close(fds[1]);
  int last = -1;
  for (int n = 0; last < 50 && ::read(fds[0], &n, sizeof n) == sizeof n;) last = n;
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(fds[0]);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child ended with " << status;
  ASSERT_GE(last, 50);
  auto store = open();
  for (int i = 0; i <= last; ++i) {
    auto found = store->find(request("k" + std::to_string(i)).id);
    ASSERT_TRUE(found.ok() && found->has_value()) << "request " << i << " lost after SIGKILL";
    EXPECT_EQ((*found)->status.state, i % 2 == 0 ? ApprovalState::approved : ApprovalState::pending) << i;
  }
}

}  // namespace
}  // namespace estlab::idm
