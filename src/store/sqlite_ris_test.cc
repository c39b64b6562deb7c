#include <gtest/gtest.h>

#include "store/sqlite_index.h"
#include "testing/testing.h"

namespace conduit {
namespace {

using namespace std::chrono_literals;

class SqliteRisTest : public ::testing::Test {
 protected:
  SqliteRisTest() {
    auto index = OpenSqliteIndex(tmp_.path() / "index.db");
    EXPECT_TRUE(index.ok()) << index.status().ToString();
    index_ = std::move(index).value();
  }

  Result<PutOutcome> Enqueue(const std::string& destination, const std::string& patient,
                             const std::string& control_id, TimePoint due) {
    Hl7OutboxRecord r;
    r.destination = destination;
    r.patient_key = patient;
    r.job_id = JobId{7};
    r.message_type = "ORU^R01";
    r.control_id = control_id;
    r.message = "MSH|^~\\&|A";
    r.next_attempt_at = due;
    r.created_at = t0_;
    return index_->EnqueueHl7(r);
  }

  std::vector<std::string> Sendable(const std::string& destination, TimePoint now) {
    std::vector<std::string> out;
    auto rows = index_->SendableHl7(destination, now, 100);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    if (rows.ok()) {
      for (const auto& r : *rows) out.push_back(r.control_id);
    }
    return out;
  }

  testing::TempDir tmp_;
  std::unique_ptr<Index> index_;
  const TimePoint t0_ = TimePoint(std::chrono::seconds(1'700'000'000));
};

TEST_F(SqliteRisTest, EnqueueIsIdempotentPerDestinationAndControlId) {
  EXPECT_EQ(*Enqueue("ris", "p", "J1R", t0_), PutOutcome::kInserted);
  EXPECT_EQ(*Enqueue("ris", "p", "J1R", t0_), PutOutcome::kDuplicate);
  EXPECT_EQ(*Enqueue("other", "p", "J1R", t0_), PutOutcome::kInserted);
  auto rows = index_->ListHl7("ris", std::nullopt, 10);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].job_id, JobId{7});
  EXPECT_EQ((*rows)[0].state, Hl7OutboxState::kPending);
  EXPECT_EQ(*index_->CountHl7("ris", Hl7OutboxState::kPending), 1);
}

TEST_F(SqliteRisTest, OnlyTheOldestPendingMessageOfEachPatientIsSendableWhenDue) {
  ASSERT_TRUE(Enqueue("ris", "a", "A1", t0_ + 10s).ok());
  ASSERT_TRUE(Enqueue("ris", "a", "A2", t0_).ok());
  ASSERT_TRUE(Enqueue("ris", "b", "B1", t0_).ok());
  ASSERT_TRUE(Enqueue("ris", "b", "B2", t0_).ok());
  EXPECT_EQ(Sendable("ris", t0_), (std::vector<std::string>{"B1"}))
      << "A1 is not due, and A2 may not overtake it";
  EXPECT_EQ(Sendable("ris", t0_ + 10s), (std::vector<std::string>{"A1", "B1"}));
  auto rows = index_->ListHl7("ris", std::nullopt, 10);
  ASSERT_TRUE(rows.ok());
  Hl7OutboxRecord b1 = (*rows)[2];
  ASSERT_EQ(b1.control_id, "B1");
  b1.state = Hl7OutboxState::kFailed;
  b1.sent_at = t0_;
  b1.last_error = "AR";
  ASSERT_TRUE(index_->UpdateHl7(b1).ok());
  EXPECT_EQ(Sendable("ris", t0_), (std::vector<std::string>{"B2"}))
      << "a message failed for good holds nothing up";
  EXPECT_EQ(*index_->NextHl7AttemptAt("ris"), std::optional<TimePoint>(t0_));
  EXPECT_EQ(*index_->NextHl7AttemptAt("none"), std::nullopt);
  b1.id = 999;
  EXPECT_EQ(index_->UpdateHl7(b1).code(), StatusCode::kNotFound);
}

TEST_F(SqliteRisTest, OrdersReportsAndStudiesByAccession) {
  RisOrderRecord order;
  order.accession = "ACC1";
  order.placer_order = "PL1";
  order.patient_key = "k";
  order.order_control = "NW";
  order.updated_at = t0_;
  ASSERT_TRUE(index_->PutRisOrder(order).ok());
  order.order_status = "CM";
  ASSERT_TRUE(index_->PutRisOrder(order).ok());
  auto got = index_->GetRisOrder("ACC1");
  ASSERT_TRUE(got.ok() && *got);
  EXPECT_EQ((*got)->order_status, "CM");
  EXPECT_FALSE(*index_->GetRisOrder("ACC2"));

  RisReportRecord report;
  report.sending_application = "RIS";
  report.control_id = "R1";
  report.accession = "ACC1";
  report.text = "Normal.";
  report.received_at = t0_;
  EXPECT_EQ(*index_->PutRisReport(report), PutOutcome::kInserted);
  EXPECT_EQ(*index_->PutRisReport(report), PutOutcome::kDuplicate);
  report.obr_index = 2;
  EXPECT_EQ(*index_->PutRisReport(report), PutOutcome::kInserted);
  auto reports = index_->ListRisReports("ACC1");
  ASSERT_TRUE(reports.ok());
  EXPECT_EQ(reports->size(), 2u);
  EXPECT_EQ((*reports)[0].codes_json, "[]");

  InstanceRecord r;
  r.study_uid = StudyUid("1.2.3");
  r.series_uid = SeriesUid("1.2.3.1");
  r.sop_instance_uid = SopInstanceUid("1.2.3.1.1");
  r.accession_number = "ACC1";
  r.received_at = t0_;
  AuditEvent audit;
  audit.at = t0_;
  audit.action = "receive";
  audit.outcome = "success";
  ASSERT_TRUE(index_->PutInstance(r, audit).ok());
  auto studies = index_->StudiesWithAccession("ACC1");
  ASSERT_TRUE(studies.ok());
  EXPECT_EQ(*studies, (std::vector<StudyUid>{StudyUid("1.2.3")}));
  EXPECT_TRUE(index_->StudiesWithAccession("")->empty());
  EXPECT_TRUE(index_->StudiesWithAccession("ACC9")->empty());
}

// Records `control_id`'s outcome as `state` at `at` (sent_at empty: an outcome without time).
void SetOutcome(Index& index, const std::string& control_id, Hl7OutboxState state,
                std::optional<TimePoint> at) {
  auto rows = index.ListHl7("ris", std::nullopt, 100);
  ASSERT_TRUE(rows.ok());
  for (Hl7OutboxRecord& row : *rows) {
    if (row.control_id != control_id) continue;
    row.state = state;
    row.sent_at = at;
    row.attempts = 2;
    row.last_error = "peer answered AE";
    ASSERT_TRUE(index.UpdateHl7(row).ok());
    return;
  }
  FAIL() << "no message " << control_id;
}

std::vector<std::string> ControlIds(const Result<std::vector<Hl7OutboxRecord>>& rows) {
  std::vector<std::string> out;
  EXPECT_TRUE(rows.ok()) << rows.status().ToString();
  if (rows.ok()) {
    for (const auto& r : *rows) out.push_back(r.control_id);
  }
  return out;
}

TEST_F(SqliteRisTest, RecentMessagesComeNewestFirstOfTheStateAskedFor) {
  for (const char* id : {"M1", "M2", "M3", "M4"}) ASSERT_TRUE(Enqueue("ris", id, id, t0_).ok());
  ASSERT_TRUE(Enqueue("other", "p", "X1", t0_).ok());
  SetOutcome(*index_, "M2", Hl7OutboxState::kSent, t0_ + 1s);
  SetOutcome(*index_, "M3", Hl7OutboxState::kFailed, t0_ + 2s);

  EXPECT_EQ(ControlIds(index_->RecentHl7("ris", std::nullopt, 10)),
            (std::vector<std::string>{"M4", "M3", "M2", "M1"}));
  EXPECT_EQ(ControlIds(index_->RecentHl7("ris", std::nullopt, 2)),
            (std::vector<std::string>{"M4", "M3"}));
  EXPECT_EQ(ControlIds(index_->RecentHl7("ris", Hl7OutboxState::kPending, 10)),
            (std::vector<std::string>{"M4", "M1"}));
  EXPECT_EQ(ControlIds(index_->RecentHl7("ris", Hl7OutboxState::kFailed, 10)),
            (std::vector<std::string>{"M3"}));
  EXPECT_EQ(ControlIds(index_->ListHl7("ris", Hl7OutboxState::kPending, 10)),
            (std::vector<std::string>{"M1", "M4"}))
      << "ListHl7 keeps the order queued";
  auto sent = index_->RecentHl7("ris", Hl7OutboxState::kSent, 1);
  ASSERT_TRUE(sent.ok() && sent->size() == 1u);
  EXPECT_EQ((*sent)[0].sent_at, t0_ + 1s);
  EXPECT_EQ((*sent)[0].attempts, 2);
  EXPECT_EQ((*sent)[0].last_error, "peer answered AE");
}

TEST_F(SqliteRisTest, PurgeDeletesOnlyOutcomesOlderThanTheCutoffNeverPending) {
  for (const char* id : {"SENT-OLD", "FAILED-OLD", "NO-TIME-OLD", "PENDING", "SENT-NEW"}) {
    ASSERT_TRUE(Enqueue("ris", id, id, t0_).ok());
  }
  SetOutcome(*index_, "SENT-OLD", Hl7OutboxState::kSent, t0_ + 1h);
  SetOutcome(*index_, "FAILED-OLD", Hl7OutboxState::kFailed, t0_ + 1h);
  SetOutcome(*index_, "NO-TIME-OLD", Hl7OutboxState::kFailed, std::nullopt);  // created at t0_
  SetOutcome(*index_, "SENT-NEW", Hl7OutboxState::kSent, t0_ + 3h);

  EXPECT_EQ(*index_->PurgeHl7Before(t0_), 0) << "nothing is older than t0";
  EXPECT_EQ(*index_->PurgeHl7Before(t0_ + 2h), 3);
  EXPECT_EQ(ControlIds(index_->ListHl7("ris", std::nullopt, 10)),
            (std::vector<std::string>{"PENDING", "SENT-NEW"}));
  EXPECT_EQ(*index_->PurgeHl7Before(t0_ + 1000h), 1);
  EXPECT_EQ(ControlIds(index_->ListHl7("ris", std::nullopt, 10)),
            (std::vector<std::string>{"PENDING"}));
}

TEST_F(SqliteRisTest, PurgesOfOrdersAndReportsGoInBatchesByTheirTimes) {
  // More rows than one batch (5000), so the purge needs several transactions.
  const int rows = 5003;
  for (int i = 0; i < rows; ++i) {
    RisOrderRecord order;
    order.accession = "A" + std::to_string(i);
    order.patient_key = "k";
    order.order_control = "NW";
    order.updated_at = t0_ + std::chrono::seconds(i < rows - 1 ? 0 : 10);
    ASSERT_TRUE(index_->PutRisOrder(order).ok());
  }
  RisReportRecord report;
  report.sending_application = "RIS";
  report.accession = "A1";
  report.text = "Normal.";
  for (int i = 0; i < 3; ++i) {
    report.control_id = "R" + std::to_string(i);
    report.received_at = t0_ + std::chrono::seconds(i * 10);
    ASSERT_EQ(*index_->PutRisReport(report), PutOutcome::kInserted);
  }

  EXPECT_EQ(*index_->PurgeRisOrdersBefore(t0_ + 5s), rows - 1);
  EXPECT_FALSE(*index_->GetRisOrder("A0"));
  EXPECT_TRUE(*index_->GetRisOrder("A" + std::to_string(rows - 1)));
  EXPECT_EQ(*index_->PurgeRisReportsBefore(t0_ + 15s), 2);
  auto left = index_->ListRisReports("A1");
  ASSERT_TRUE(left.ok() && left->size() == 1u);
  EXPECT_EQ((*left)[0].control_id, "R2");
}

}  // namespace
}  // namespace conduit
