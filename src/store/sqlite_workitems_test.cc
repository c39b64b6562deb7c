// The UPS worklist part of the SQLite index: workitems (insert, compare-and-set, lists) and
// subscriptions, on a real index in a temporary folder.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "store/sqlite_index.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

class SqliteWorkitemsTest : public testing::Test {
 protected:
  SqliteWorkitemsTest() {
    std::random_device rd;
    dir_ = fs::temp_directory_path() /
           ("conduit-workitems-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    auto index = OpenSqliteIndex(dir_ / "index.sqlite");
    EXPECT_TRUE(index.ok()) << index.status().ToString();
    if (index.ok()) index_ = std::move(index).value();
  }
  ~SqliteWorkitemsTest() override {
    index_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  WorkitemRecord Workitem(const std::string& uid, int64_t job, const std::string& tool) {
    WorkitemRecord w;
    w.uid = uid;
    w.job_id = JobId{job};
    w.tool = tool;
    w.priority = "HIGH";
    w.dataset = R"({"00741000":{"vr":"CS","Value":["SCHEDULED"]}})";
    w.created_at = clock_.Now();
    w.updated_at = clock_.Now();
    clock_.Advance(seconds(1));
    return w;
  }

  AuditEvent Audit(const std::string& action) {
    AuditEvent e;
    e.at = clock_.Now();
    e.action = action;
    e.outcome = "ok";
    e.actor = "test";
    return e;
  }

  std::vector<std::string> Uids(const std::vector<WorkitemRecord>& ws) {
    std::vector<std::string> out;
    for (const auto& w : ws) out.push_back(w.uid);
    return out;
  }

  FakeClock clock_;
  fs::path dir_;
  std::unique_ptr<Index> index_;
};

TEST_F(SqliteWorkitemsTest, PutThenGetKeepsEveryField) {
  WorkitemRecord w = Workitem("2.25.1", 7, "lungs");
  w.state = UpsState::kInProgress;
  w.transaction_uid = "2.25.99";
  w.performer = "PERFORMER1";
  w.cancel_requested = true;
  w.claimed_at = clock_.Now();
  w.progress_at = clock_.Now() + seconds(5);
  ASSERT_TRUE(index_->PutWorkitem(w, Audit("workitem_scheduled")).ok());

  auto got = index_->GetWorkitem("2.25.1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  const WorkitemRecord& g = **got;
  EXPECT_EQ(g.uid, w.uid);
  EXPECT_EQ(g.job_id, w.job_id);
  EXPECT_EQ(g.tool, "lungs");
  EXPECT_EQ(g.state, UpsState::kInProgress);
  EXPECT_EQ(g.priority, "HIGH");
  EXPECT_EQ(g.transaction_uid, "2.25.99");
  EXPECT_EQ(g.performer, "PERFORMER1");
  EXPECT_TRUE(g.cancel_requested);
  EXPECT_EQ(g.dataset, w.dataset);
  EXPECT_EQ(g.created_at, w.created_at);
  EXPECT_EQ(g.updated_at, w.updated_at);
  EXPECT_EQ(g.claimed_at, w.claimed_at);
  EXPECT_EQ(g.progress_at, w.progress_at);

  auto none = index_->GetWorkitem("2.25.404");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  auto audit = index_->ListAudit(10, 0);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].action, "workitem_scheduled");
}

TEST_F(SqliteWorkitemsTest, PutOfAKnownUidIsRefusedAndAuditsNothing) {
  ASSERT_TRUE(index_->PutWorkitem(Workitem("2.25.1", 1, "a"), Audit("first")).ok());
  Status again = index_->PutWorkitem(Workitem("2.25.1", 2, "b"), Audit("second"));
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists) << again.ToString();
  EXPECT_EQ(index_->PutWorkitem(Workitem("", 2, "b"), Audit("x")).code(),
            StatusCode::kInvalidArgument);
  auto audit = index_->ListAudit(10, 0);
  ASSERT_TRUE(audit.ok());
  EXPECT_EQ(audit->size(), 1u) << "the refused insert rolled back its audit event";
  EXPECT_EQ((*index_->GetWorkitem("2.25.1"))->job_id, JobId{1});
}

TEST_F(SqliteWorkitemsTest, UpdateIsACompareAndSetOnTheState) {
  WorkitemRecord w = Workitem("2.25.1", 1, "a");
  ASSERT_TRUE(index_->PutWorkitem(w, Audit("scheduled")).ok());
  w.state = UpsState::kInProgress;
  w.transaction_uid = "2.25.7";
  w.claimed_at = clock_.Now();
  ASSERT_TRUE(index_->UpdateWorkitem(w, UpsState::kScheduled, Audit("claimed")).ok());

  WorkitemRecord late = w;
  late.transaction_uid = "2.25.8";
  Status lost = index_->UpdateWorkitem(late, UpsState::kScheduled, Audit("claimed"));
  EXPECT_EQ(lost.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(lost.message().find("IN PROGRESS"), std::string::npos) << lost.message();
  EXPECT_EQ((*index_->GetWorkitem("2.25.1"))->transaction_uid, "2.25.7");

  WorkitemRecord missing = Workitem("2.25.2", 1, "a");
  EXPECT_EQ(index_->UpdateWorkitem(missing, UpsState::kScheduled, Audit("x")).code(),
            StatusCode::kNotFound);

  auto audit = index_->ListAudit(10, 0);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 2u) << "failed updates append no audit event";
  EXPECT_EQ((*audit)[0].action, "claimed");
}

TEST_F(SqliteWorkitemsTest, OfManyRacingClaimsExactlyOneWins) {
  ASSERT_TRUE(index_->PutWorkitem(Workitem("2.25.1", 1, "a"), Audit("scheduled")).ok());
  const WorkitemRecord base = **index_->GetWorkitem("2.25.1");
  constexpr int kClaimers = 8;
  std::atomic<int> ready{0};
  std::atomic<int> won{0};
  std::atomic<int> refused{0};
  std::vector<std::string> winners(kClaimers);
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < kClaimers; ++i) {
      threads.emplace_back([&, i] {
        WorkitemRecord claim = base;
        claim.state = UpsState::kInProgress;
        claim.transaction_uid = "2.25.100" + std::to_string(i);
        claim.performer = "P" + std::to_string(i);
        ready.fetch_add(1);
        while (ready.load() < kClaimers) std::this_thread::yield();
        AuditEvent e;
        e.action = "claimed";
        e.outcome = "ok";
        Status st = index_->UpdateWorkitem(claim, UpsState::kScheduled, e);
        if (st.ok()) {
          won.fetch_add(1);
          winners[i] = claim.transaction_uid;
        } else if (st.code() == StatusCode::kFailedPrecondition) {
          refused.fetch_add(1);
        }
      });
    }
  }
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(refused.load(), kClaimers - 1);
  std::string winner;
  for (const auto& t : winners) {
    if (!t.empty()) winner = t;
  }
  const WorkitemRecord after = **index_->GetWorkitem("2.25.1");
  EXPECT_EQ(after.state, UpsState::kInProgress);
  EXPECT_EQ(after.transaction_uid, winner) << "the stored claim is the winner's";
}

TEST_F(SqliteWorkitemsTest, ListsFilterByToolAndStateInCreationOrder) {
  ASSERT_TRUE(index_->PutWorkitem(Workitem("2.25.1", 1, "a"), Audit("s")).ok());
  ASSERT_TRUE(index_->PutWorkitem(Workitem("2.25.2", 2, "b"), Audit("s")).ok());
  WorkitemRecord third = Workitem("2.25.3", 1, "a");
  third.state = UpsState::kCompleted;
  ASSERT_TRUE(index_->PutWorkitem(third, Audit("s")).ok());
  ASSERT_TRUE(index_->PutWorkitem(Workitem("2.25.4", 3, "a"), Audit("s")).ok());

  auto all = index_->ListWorkitems("", std::nullopt, 100, 0);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Uids(*all), (std::vector<std::string>{"2.25.1", "2.25.2", "2.25.3", "2.25.4"}));
  EXPECT_EQ(Uids(*index_->ListWorkitems("a", std::nullopt, 100, 0)),
            (std::vector<std::string>{"2.25.1", "2.25.3", "2.25.4"}));
  EXPECT_EQ(Uids(*index_->ListWorkitems("a", UpsState::kScheduled, 100, 0)),
            (std::vector<std::string>{"2.25.1", "2.25.4"}));
  EXPECT_EQ(Uids(*index_->ListWorkitems("", std::nullopt, 2, 1)),
            (std::vector<std::string>{"2.25.2", "2.25.3"}));
  EXPECT_TRUE(index_->ListWorkitems("c", std::nullopt, 100, 0)->empty());
  EXPECT_EQ(Uids(*index_->WorkitemsOfJob(JobId{1})),
            (std::vector<std::string>{"2.25.1", "2.25.3"}));
  EXPECT_TRUE(index_->WorkitemsOfJob(JobId{9})->empty());
}

TEST_F(SqliteWorkitemsTest, SubscriptionsToAWorkitemAndToWorklists) {
  auto sub = [&](const std::string& ae, const std::string& tool, const std::string& uid) {
    UpsSubscription s;
    s.subscriber_ae = ae;
    s.tool = tool;
    s.workitem_uid = uid;
    s.created_at = clock_.Now();
    clock_.Advance(seconds(1));
    return s;
  };
  UpsSubscription global_a = sub("WATCHER", "a", "");
  global_a.filter = "ScheduledProcedureStepPriority=HIGH";
  ASSERT_TRUE(index_->PutSubscription(global_a, Audit("subscribed")).ok());
  ASSERT_TRUE(index_->PutSubscription(sub("ADMIN", "", ""), Audit("subscribed")).ok());
  ASSERT_TRUE(index_->PutSubscription(sub("OTHER", "b", ""), Audit("subscribed")).ok());
  ASSERT_TRUE(index_->PutSubscription(sub("WATCHER", "a", "2.25.1"), Audit("subscribed")).ok());
  UpsSubscription locked = sub("PERF", "a", "2.25.1");
  locked.deletion_lock = true;
  ASSERT_TRUE(index_->PutSubscription(locked, Audit("subscribed")).ok());
  ASSERT_TRUE(index_->PutSubscription(sub("PERF", "a", "2.25.2"), Audit("subscribed")).ok());

  auto of_item = index_->ListSubscriptions("a", "2.25.1");
  ASSERT_TRUE(of_item.ok()) << of_item.status().ToString();
  ASSERT_EQ(of_item->size(), 4u);
  EXPECT_EQ((*of_item)[0].subscriber_ae, "WATCHER");
  EXPECT_EQ((*of_item)[0].workitem_uid, "");
  EXPECT_EQ((*of_item)[0].filter, "ScheduledProcedureStepPriority=HIGH");
  EXPECT_EQ((*of_item)[1].subscriber_ae, "ADMIN");
  EXPECT_EQ((*of_item)[2].subscriber_ae, "WATCHER");
  EXPECT_EQ((*of_item)[2].workitem_uid, "2.25.1");
  EXPECT_EQ((*of_item)[3].subscriber_ae, "PERF");
  EXPECT_TRUE((*of_item)[3].deletion_lock);
  EXPECT_EQ(index_->ListSubscriptions("a", "")->size(), 2u) << "the worklist ones only";
  EXPECT_EQ(index_->ListSubscriptions("b", "")->size(), 2u);

  // Suspending is a put of the same key: it updates, not duplicates.
  global_a.suspended = true;
  ASSERT_TRUE(index_->PutSubscription(global_a, Audit("suspended")).ok());
  auto globals = index_->ListSubscriptions("a", "");
  ASSERT_EQ(globals->size(), 2u);
  EXPECT_TRUE((*globals)[0].suspended);

  // One workitem subscription goes alone...
  ASSERT_TRUE(index_->DeleteSubscription("PERF", "a", "2.25.2", Audit("unsubscribed")).ok());
  EXPECT_EQ(index_->DeleteSubscription("PERF", "a", "2.25.2", Audit("unsubscribed")).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(index_->ListSubscriptions("a", "2.25.1")->size(), 4u);
  // ...a worklist unsubscription takes the subscriber's workitem subscriptions with it.
  ASSERT_TRUE(index_->DeleteSubscription("WATCHER", "a", "", Audit("unsubscribed")).ok());
  auto left = index_->ListSubscriptions("a", "2.25.1");
  ASSERT_EQ(left->size(), 2u);
  EXPECT_EQ((*left)[0].subscriber_ae, "ADMIN");
  EXPECT_EQ((*left)[1].subscriber_ae, "PERF");
  EXPECT_EQ(index_->ListSubscriptions("b", "")->size(), 2u) << "other worklists untouched";
  EXPECT_EQ(index_->PutSubscription(sub("", "a", ""), Audit("subscribed")).code(),
            StatusCode::kInvalidArgument);
}

TEST_F(SqliteWorkitemsTest, WorkitemsSurviveReopening) {
  ASSERT_TRUE(index_->PutWorkitem(Workitem("2.25.1", 1, "a"), Audit("s")).ok());
  index_.reset();
  auto reopened = OpenSqliteIndex(dir_ / "index.sqlite");
  ASSERT_TRUE(reopened.ok());
  index_ = std::move(reopened).value();
  auto got = index_->GetWorkitem("2.25.1");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->state, UpsState::kScheduled);
}

}  // namespace
}  // namespace conduit
