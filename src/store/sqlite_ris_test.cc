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

}  // namespace
}  // namespace conduit
