#include "results/commitment_waiters.h"

#include <gtest/gtest.h>

#include <thread>

namespace conduit {
namespace {

using namespace std::chrono_literals;

CommitmentReport ReportFor(const std::string& transaction) {
  CommitmentReport report;
  report.transaction_uid = transaction;
  report.committed.push_back(
      {SopClassUid("1.2.840.10008.5.1.4.1.1.2"), SopInstanceUid("1.2.3"), 0});
  return report;
}

TEST(CommitmentWaitersTest, AReportReachesTheDeliveryWaitingForIt) {
  CommitmentWaiters waiters;
  auto ticket = waiters.Expect("2.25.1");
  std::thread pacs([&] {
    std::this_thread::sleep_for(20ms);
    EXPECT_TRUE(waiters.Deliver(ReportFor("2.25.1")));
  });
  std::optional<CommitmentReport> report = ticket->Wait(10s);
  pacs.join();
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->committed.size(), 1u);
}

// The report may come before the N-ACTION's own answer: it waits in the ticket.
TEST(CommitmentWaitersTest, AReportBeforeTheWaitIsKept) {
  CommitmentWaiters waiters;
  auto ticket = waiters.Expect("2.25.2");
  EXPECT_TRUE(waiters.Deliver(ReportFor("2.25.2")));
  EXPECT_FALSE(waiters.Deliver(ReportFor("2.25.2")));  // a second copy is not taken
  EXPECT_TRUE(ticket->Wait(0ms).has_value());
}

TEST(CommitmentWaitersTest, UnknownAndLateReportsFindNobody) {
  CommitmentWaiters waiters;
  EXPECT_FALSE(waiters.Deliver(ReportFor("2.25.3")));
  {
    auto ticket = waiters.Expect("2.25.4");
    EXPECT_FALSE(ticket->Wait(10ms).has_value());
  }
  EXPECT_FALSE(waiters.Deliver(ReportFor("2.25.4")));  // its wait ended
}

TEST(CommitmentWaitersTest, ShutdownEndsEveryWait) {
  CommitmentWaiters waiters;
  auto ticket = waiters.Expect("2.25.5");
  std::thread stopper([&] {
    std::this_thread::sleep_for(20ms);
    waiters.Shutdown();
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(ticket->Wait(60s).has_value());
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
  EXPECT_TRUE(waiters.shut_down());
  EXPECT_FALSE(waiters.Expect("2.25.6")->Wait(60s).has_value());
}

}  // namespace
}  // namespace conduit
