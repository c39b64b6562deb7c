#include "results/ris_reporter.h"

#include <gtest/gtest.h>

#include "store/sqlite_index.h"
#include "testing/testing.h"

namespace conduit {
namespace {

FindingRecord Finding(std::string kind, std::string value_scheme, std::string value_code,
                      std::optional<double> number = std::nullopt) {
  FindingRecord f;
  f.kind = std::move(kind);
  f.concept_scheme = "DCM";
  f.concept_value = "121071";
  f.concept_meaning = "Finding";
  f.value_scheme = std::move(value_scheme);
  f.value_code = std::move(value_code);
  f.value_meaning = "Meaning";
  f.numeric_value = number;
  return f;
}

TEST(RisUrgencyTest, CodesMatchCodedValuesOrFlagTitlesAndScoresMeetTheThreshold) {
  RisUrgencyRule rule;
  rule.codes = {"SCT:52101004", "DCM:CRIT"};
  rule.score_at_least = 0.8;
  FindingRecord flag = Finding("flag", "", "");
  flag.concept_scheme = "DCM";
  flag.concept_value = "CRIT";
  FindingRecord other_flag = flag;
  other_flag.concept_value = "OTHER";
  struct Case {
    FindingRecord finding;
    bool urgent;
  };
  const std::vector<Case> cases = {
      {Finding("finding", "SCT", "52101004"), true},
      {Finding("finding", "SCT", "2667000"), false},
      {Finding("finding", "LN", "52101004"), false},
      {Finding("triage", "SCT", "52101004"), true},
      {Finding("measurement", "SCT", "52101004", 12.0), false},
      {Finding("score", "", "", 0.8), true},
      {Finding("score", "", "", 0.79), false},
      {Finding("score", "", ""), false},
      {flag, true},
      {other_flag, false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(IsUrgent(rule, {c.finding}), c.urgent)
        << c.finding.kind << " " << c.finding.value_scheme << ":" << c.finding.value_code;
  }
  EXPECT_FALSE(IsUrgent(RisUrgencyRule{}, {Finding("score", "", "", 1.0)}))
      << "an empty rule never says urgent";
}

TEST(RisObservationsTest, FindingsBecomeCodedAndNumericObxAndNothingBecomesANote) {
  RisUrgencyRule rule;
  rule.codes = {"SCT:52101004"};
  FindingRecord volume = Finding("measurement", "", "", 1234.5);
  volume.units = "ml";
  auto obx = ObservationsOf({Finding("finding", "SCT", "52101004"), volume}, rule);
  ASSERT_EQ(obx.size(), 2u);
  EXPECT_EQ(obx[0].kind, AiObservation::Kind::kCoded);
  EXPECT_EQ(obx[0].coded_value, (Hl7Coded{"52101004", "Meaning", "SCT"}));
  EXPECT_EQ(obx[0].abnormal_flag, "A");
  EXPECT_EQ(obx[1].kind, AiObservation::Kind::kNumeric);
  EXPECT_EQ(obx[1].value, "1234.5");
  EXPECT_EQ(obx[1].units, "ml");
  auto none = ObservationsOf({}, rule);
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(none[0].kind, AiObservation::Kind::kText);
}

class RisReporterTest : public ::testing::Test {
 protected:
  RisReporterTest() {
    auto index = OpenSqliteIndex(tmp_.path() / "index.db");
    EXPECT_TRUE(index.ok()) << index.status().ToString();
    index_ = std::move(index).value();
    config_.host = "127.0.0.1";
    config_.port = 2575;
    config_.receiving_application = "RIS";
    config_.urgent_when.codes = {"SCT:52101004"};
    keyer_ = std::make_unique<PatientKeyer>(*PatientKeyer::FromSecret(std::string(32, 's')));
  }

  JobId MakeJob(const std::string& study, bool with_instance = true) {
    if (with_instance) {
      InstanceRecord r;
      r.study_uid = StudyUid(study);
      r.series_uid = SeriesUid(study + ".1");
      r.sop_instance_uid = SopInstanceUid(study + ".1.1");
      r.received_at = clock_.Now();
      r.patient_id = "9434765919";
      r.patient_name = "Smith^Jane";
      r.accession_number = "ACC42";
      r.modality = "CT";
      r.attributes = {{"IssuerOfPatientID", "NHS"}};
      AuditEvent audit;
      audit.at = clock_.Now();
      audit.action = "receive";
      audit.outcome = "success";
      EXPECT_TRUE(index_->PutInstance(r, audit).ok());
    }
    JobRecord job;
    job.study_uid = StudyUid(study);
    job.route = "ct";
    job.tool = "reference";
    job.created_at = clock_.Now();
    AuditEvent audit;
    audit.at = clock_.Now();
    audit.action = "assemble";
    audit.outcome = "success";
    auto id = index_->CreateJob(job, audit);
    EXPECT_TRUE(id.ok());
    return *id;
  }

  JobRecord Job(JobId id) { return **index_->GetJob(id); }

  std::vector<Hl7OutboxRecord> Outbox() { return *index_->ListHl7("ris", std::nullopt, 100); }

  testing::TempDir tmp_;
  FakeClock clock_;
  RisConfig config_;
  std::unique_ptr<Index> index_;
  std::unique_ptr<PatientKeyer> keyer_;
  int woken_ = 0;
};

TEST_F(RisReporterTest, AnUrgentJobQueuesAStatUpdateThenItsResultOnceForTheOriginalPatient) {
  const JobId job = MakeJob("1.2.3");
  ASSERT_TRUE(
      index_->PutFindings(job, SopInstanceUid("9.9"), {Finding("finding", "SCT", "52101004")})
          .ok());
  RisReporter reporter(config_, *index_, clock_, *keyer_, [this] { ++woken_; });
  ASSERT_TRUE(reporter.OnDelivered(Job(job)).ok());
  ASSERT_TRUE(reporter.OnDelivered(Job(job)).ok()) << "a crash before done reports again";
  auto outbox = Outbox();
  ASSERT_EQ(outbox.size(), 2u) << "nothing new the second time";
  EXPECT_EQ(woken_, 1);
  EXPECT_EQ(outbox[0].message_type, "OMI^O23");
  EXPECT_EQ(outbox[0].control_id, "J" + std::to_string(job.value) + "P");
  EXPECT_EQ(outbox[1].message_type, "ORU^R01");
  EXPECT_EQ(outbox[1].patient_key, keyer_->KeyOf("9434765919"));
  EXPECT_EQ(outbox[0].patient_key, outbox[1].patient_key);

  auto omi = Hl7Message::Parse(outbox[0].message);
  ASSERT_TRUE(omi.ok());
  EXPECT_EQ(omi->Value("TQ1-9.1"), "S");
  EXPECT_EQ(omi->Value("IPC-1"), "ACC42");
  EXPECT_EQ(omi->Value("ORC-3"), "ACC42") << "no order known: the accession names it";
  auto oru = Hl7Message::Parse(outbox[1].message);
  ASSERT_TRUE(oru.ok());
  EXPECT_EQ(oru->Value("PID-3.1"), "9434765919");
  EXPECT_EQ(oru->Value("PID-3.4"), "NHS");
  EXPECT_EQ(oru->Value("PID-5.1"), "Smith");
  EXPECT_EQ(oru->Value("OBR-18"), "ACC42");
  EXPECT_EQ(oru->Value("OBR-25"), "P");
  EXPECT_EQ(oru->Value("OBX(1)-5.1"), "52101004");
  EXPECT_EQ(oru->Value("OBX(1)-8"), "A");
  EXPECT_EQ(oru->Value("OBX(2)-5"), "1.2.3") << "the original study instance UID";
  EXPECT_EQ(oru->Value("MSH-5"), "RIS");

  auto audit = index_->ListAudit(10, 0);
  ASSERT_TRUE(audit.ok());
  ASSERT_FALSE(audit->empty());
  EXPECT_EQ((*audit)[0].action, "ris_report");
  EXPECT_EQ((*audit)[0].detail.find("9434765919"), std::string::npos);
}

TEST_F(RisReporterTest, ARoutineJobQueuesItsResultOnlyAndUsesTheRisOrderNumbers) {
  const JobId job = MakeJob("1.2.3");
  RisOrderRecord order;
  order.accession = "ACC42";
  order.placer_order = "PL7";
  order.filler_order = "FI7";
  order.patient_key = "x";
  order.order_control = "NW";
  order.updated_at = clock_.Now();
  ASSERT_TRUE(index_->PutRisOrder(order).ok());
  config_.priority_message = RisPriorityMessage::kOrm;
  RisReporter reporter(config_, *index_, clock_, *keyer_, nullptr);
  ASSERT_TRUE(reporter.OnDelivered(Job(job)).ok());
  auto outbox = Outbox();
  ASSERT_EQ(outbox.size(), 1u);
  auto oru = Hl7Message::Parse(outbox[0].message);
  ASSERT_TRUE(oru.ok());
  EXPECT_EQ(oru->Value("ORC-2"), "PL7");
  EXPECT_EQ(oru->Value("ORC-3"), "FI7");
  EXPECT_EQ(oru->Value("OBX(1)-2"), "TX") << "no findings: a note says so";
}

TEST_F(RisReporterTest, AJobWhoseStudyIsGoneIsAuditedNotFailed) {
  const JobId job = MakeJob("5.5.5", /*with_instance=*/false);
  RisReporter reporter(config_, *index_, clock_, *keyer_, nullptr);
  ASSERT_TRUE(reporter.OnDelivered(Job(job)).ok());
  EXPECT_TRUE(Outbox().empty());
  auto audit = index_->ListAudit(10, 0);
  ASSERT_TRUE(audit.ok());
  EXPECT_EQ((*audit)[0].action, "ris_report");
  EXPECT_EQ((*audit)[0].outcome, "failure");
}

}  // namespace
}  // namespace conduit
