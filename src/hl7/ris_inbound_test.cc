// The RIS's side of the conversation, end to end in one process: messages sent over MLLP on
// 127.0.0.1 to Conduit's listener, handled by RisInbound on a real index and assembler.
#include "hl7/ris_inbound.h"

#include <gtest/gtest.h>

#include "hl7/mllp.h"
#include "pipeline/study_assembler.h"
#include "store/sqlite_index.h"
#include "testing/testing.h"

namespace conduit {
namespace {

using namespace std::chrono_literals;

TEST(OrderSaysExamCompletedTest, ReadsOrderStatusResultStatusAndCancels) {
  struct Case {
    std::string control, status, result;
    bool completed;
  };
  const std::vector<Case> cases = {
      {"SC", "CM", "", true},  {"XO", "CM", "", true},  {"SC", "IP", "", false},
      {"NW", "SC", "", false}, {"SC", "", "R", true},   {"SC", "", "F", true},
      {"SC", "", "I", false},  {"CA", "CM", "", false}, {"DC", "", "F", false},
      {"SC", "cm", "", false},
  };
  for (const Case& c : cases) {
    RisOrder order;
    order.order_control = c.control;
    order.order_status = c.status;
    order.result_status = c.result;
    EXPECT_EQ(OrderSaysExamCompleted(order), c.completed)
        << c.control << " / " << c.status << " / " << c.result;
  }
}

class RisInboundTest : public ::testing::Test {
 protected:
  RisInboundTest() {
    auto index = OpenSqliteIndex(tmp_.path() / "index.db");
    EXPECT_TRUE(index.ok()) << index.status().ToString();
    index_ = std::move(index).value();
    RouteConfig route;
    route.name = "ct";
    route.tool = "reference";
    route.results_to = {"pacs"};
    route.stable_after = 600s;
    config_.routes = {route};
    assembler_ = std::make_unique<StudyAssembler>(*index_, clock_, config_,
                                                  [this](JobId id) { jobs_.push_back(id); });
    auto keyer = PatientKeyer::FromSecret(std::string(32, 'k'));
    EXPECT_TRUE(keyer.ok());
    keyer_ = std::make_unique<PatientKeyer>(*keyer);
    inbound_ = std::make_unique<RisInbound>(RisInboundOptions{"ris", "CONDUIT", "HUB"}, *index_,
                                            clock_, metrics_, *keyer_,
                                            [this](const StudyUid& study, const std::string& why) {
                                              return assembler_->CompleteStudy(study, why);
                                            });
    listener_ = std::make_unique<MllpListener>(
        MllpListenerOptions{}, [this](const Hl7Message& m) { return inbound_->Handle(m); }, clock_);
    EXPECT_TRUE(listener_->Start().ok());
    MllpSenderOptions to;
    to.port = listener_->port();
    sender_ = std::make_unique<MllpSender>(to);
  }

  // An instance of `study` with accession `accession`, routed as ingest would.
  void Receive(const std::string& study, const std::string& sop, const std::string& accession) {
    InstanceRecord r;
    r.study_uid = StudyUid(study);
    r.series_uid = SeriesUid(study + ".1");
    r.sop_instance_uid = SopInstanceUid(sop);
    r.sop_class_uid = SopClassUid(testing::kCtImageStorage);
    r.spool_key = "k" + sop;
    r.received_at = clock_.Now();
    r.patient_id = "PAT1";
    r.accession_number = accession;
    r.modality = "CT";
    AuditEvent audit;
    audit.at = clock_.Now();
    audit.action = "receive";
    audit.outcome = "success";
    ASSERT_TRUE(index_->PutInstance(r, audit).ok());
    ASSERT_TRUE(assembler_->Add(config_.routes[0], r.study_uid, r.series_uid).ok());
  }

  AckOutcome Send(const std::string& er7) {
    auto message = Hl7Message::Parse(er7);
    EXPECT_TRUE(message.ok()) << message.status().ToString();
    auto ack = sender_->Exchange(*message);
    EXPECT_TRUE(ack.ok()) << ack.status().ToString();
    return ack.ok() ? *ack : AckOutcome{AckCode::kReject, "", "no ack", ""};
  }

  std::vector<AuditEvent> Audits(const std::string& action) {
    std::vector<AuditEvent> out;
    auto all = index_->ListAudit(100, 0);
    if (all.ok()) {
      for (auto& e : *all) {
        if (e.action == action) out.push_back(e);
      }
    }
    return out;
  }

  testing::TempDir tmp_;
  FakeClock clock_;
  Metrics metrics_;
  Config config_;
  std::unique_ptr<Index> index_;
  std::unique_ptr<StudyAssembler> assembler_;
  std::unique_ptr<PatientKeyer> keyer_;
  std::unique_ptr<RisInbound> inbound_;
  std::unique_ptr<MllpListener> listener_;
  std::unique_ptr<MllpSender> sender_;
  std::vector<JobId> jobs_;
};

std::string OrmComplete(const std::string& control_id, const std::string& accession) {
  return "MSH|^~\\&|RIS|TRUST|CONDUIT|HUB|20240102030405||ORM^O01|" + control_id +
         "|P|2.3.1\rPID|1||PAT1^^^TRUST^MR||Jones^Bob\rORC|SC|PL9|FI9||CM\r"
         "OBR|1|PL9|FI9|CTCHEST^CT Chest||||||||||||||" +
         accession + "|RP9|||||CT\r";
}

TEST_F(RisInboundTest, AnOrderCompletedByTheRisCompletesItsStudyAtOnce) {
  Receive("1.2.3", "1.2.3.1.1", "ACC1");
  Receive("4.5.6", "4.5.6.1.1", "ACC2");
  EXPECT_TRUE(jobs_.empty()) << "quiet period of 600 s not over";
  AckOutcome ack = Send(OrmComplete("M1", "ACC1"));
  EXPECT_EQ(ack.code, AckCode::kAccept) << ack.text;
  EXPECT_EQ(ack.acknowledged_control_id, "M1");
  ASSERT_EQ(jobs_.size(), 1u) << "the study of ACC1 completes without waiting";
  auto job = index_->GetJob(jobs_[0]);
  ASSERT_TRUE(job.ok() && *job);
  EXPECT_EQ((*job)->study_uid, StudyUid("1.2.3"));
  auto units = index_->UnitsOfStudy(StudyUid("4.5.6"));
  ASSERT_TRUE(units.ok());
  EXPECT_EQ((*units)[0].state, UnitState::kOpen);

  auto order = index_->GetRisOrder("ACC1");
  ASSERT_TRUE(order.ok() && *order);
  EXPECT_EQ((*order)->order_status, "CM");
  EXPECT_EQ((*order)->placer_order, "PL9");
  EXPECT_EQ((*order)->patient_key, keyer_->KeyOf("PAT1"));
  EXPECT_EQ((*order)->patient_key.size(), 32u) << "a keyed hash, not the patient ID";

  auto audits = Audits("hl7_receive");
  ASSERT_EQ(audits.size(), 1u);
  EXPECT_EQ(audits[0].outcome, "success");
  EXPECT_EQ(audits[0].study_ref, StudyRef(StudyUid("1.2.3")));
  EXPECT_EQ(audits[0].detail.find("PAT1"), std::string::npos) << "no identifiers in audit";
  EXPECT_EQ(audits[0].detail.find("ACC1"), std::string::npos) << "no identifiers in audit";

  EXPECT_EQ(Send(OrmComplete("M2", "ACC1")).code, AckCode::kAccept);
  EXPECT_EQ(jobs_.size(), 1u) << "the same order again makes no second job";
}

TEST_F(RisInboundTest, AnOrderBeforeTheImagesIsKeptAndLeavesTheStudyToItsQuietPeriod) {
  EXPECT_EQ(Send(OrmComplete("M1", "ACC7")).code, AckCode::kAccept);
  auto order = index_->GetRisOrder("ACC7");
  ASSERT_TRUE(order.ok() && *order);
  Receive("7.7.7", "7.7.7.1.1", "ACC7");
  EXPECT_TRUE(jobs_.empty());
  clock_.Advance(600s);
  ASSERT_TRUE(assembler_->Tick().ok());
  EXPECT_EQ(jobs_.size(), 1u);
}

TEST_F(RisInboundTest, ReportsAreStoredOnceAsGroundTruth) {
  Receive("1.2.3", "1.2.3.1.1", "ACC1");
  const std::string oru =
      "MSH|^~\\&|RIS|TRUST|CONDUIT|HUB|20240102030405||ORU^R01|R100|P|2.5.1\r"
      "PID|1||PAT1^^^TRUST^MR||Jones^Bob\r"
      "OBR|1|PL1|FI1|CTCHEST^CT Chest|||20240101120000|||||||||||ACC1||||||CT|F\r"
      "OBX|1|TX|GDT^Report||Small nodule right upper lobe.||||||F\r"
      "OBX|2|CWE|FIND^Finding||427359005^Nodule^SCT||||||F\r";
  EXPECT_EQ(Send(oru).code, AckCode::kAccept);
  EXPECT_EQ(Send(oru).code, AckCode::kAccept) << "a resend is acknowledged";
  auto reports = index_->ListRisReports("ACC1");
  ASSERT_TRUE(reports.ok());
  ASSERT_EQ(reports->size(), 1u) << "and stored once";
  const RisReportRecord& r = (*reports)[0];
  EXPECT_EQ(r.text, "Small nodule right upper lobe.");
  EXPECT_EQ(r.result_status, "F");
  EXPECT_EQ(r.study_uid, "1.2.3") << "found by accession number";
  EXPECT_NE(r.codes_json.find("427359005"), std::string::npos) << r.codes_json;
  EXPECT_TRUE(jobs_.empty()) << "a report completes nothing";
}

TEST_F(RisInboundTest, MessagesWeCannotUseAreRefusedWithAnExplainingAck) {
  struct Case {
    std::string er7;
    std::string error_code;
  };
  const std::vector<Case> cases = {
      {"MSH|^~\\&|RIS|TRUST|CONDUIT|HUB|20240102030405||ADT^A01|X1|P|2.5.1\rPID|1||PAT1\r", "200"},
      {"MSH|^~\\&|RIS|TRUST|CONDUIT|HUB|20240102030405||ORM^O01|X2|P|2.5.1\r"
       "PID|1||PAT1\rORC|SC|PL1|FI1||CM\rOBR|1|PL1|FI1|CT\r",
       "101"},
      {"MSH|^~\\&|RIS|TRUST|CONDUIT|HUB|20240102030405||ORU^R01|X3|P|2.5.1\r"
       "PID|1||PAT1\rOBR|1|PL1|FI1|CT\rOBX|1|TX|R||text\r",
       "101"},
      {"MSH|^~\\&|RIS|TRUST|CONDUIT|HUB|20240102030405||ORU^R01|X4|P|2.5.1\rPID|1||PAT1\r", "100"},
  };
  for (const Case& c : cases) {
    AckOutcome ack = Send(c.er7);
    EXPECT_EQ(ack.code, AckCode::kReject) << c.er7;
    EXPECT_EQ(ack.error_code, c.error_code) << c.er7;
    EXPECT_EQ(ack.text.find("PAT1"), std::string::npos) << "the ACK quotes no identifier";
  }
  auto audits = Audits("hl7_receive");
  ASSERT_EQ(audits.size(), cases.size());
  for (const auto& a : audits) EXPECT_EQ(a.outcome, "failure");
  EXPECT_EQ(metrics_.Value("conduit_hl7_received_total", R"(source="ris",type="ADT^A01",ack="AR")"),
            1);
}

TEST_F(RisInboundTest, RefusedConnectionsAreCountedAndReportedOnceAMinutePerPeerAndReason) {
  const Status not_allowed = PermissionDenied("connection from 192.0.2.7:40000 refused");
  inbound_->OnConnectionRefused("192.0.2.7", not_allowed);
  inbound_->OnConnectionRefused("192.0.2.7", not_allowed);
  inbound_->OnConnectionRefused("192.0.2.7", ResourceExhausted("8 connections already open"));
  EXPECT_EQ(metrics_.Value("conduit_hl7_connections_refused_total",
                           R"(source="ris",reason="PERMISSION_DENIED")"),
            2);
  EXPECT_EQ(metrics_.Value("conduit_hl7_connections_refused_total",
                           R"(source="ris",reason="RESOURCE_EXHAUSTED")"),
            1);
  std::vector<AuditEvent> audits = Audits("hl7_refused");
  ASSERT_EQ(audits.size(), 2u);
  for (const AuditEvent& audit : audits) {
    EXPECT_EQ(audit.actor, "192.0.2.7");
    EXPECT_EQ(audit.outcome, "failure");
  }
  clock_.Advance(61s);
  inbound_->OnConnectionRefused("192.0.2.7", not_allowed);
  audits = Audits("hl7_refused");
  ASSERT_EQ(audits.size(), 3u);
  EXPECT_NE(audits[0].detail.find("\"unreported_before\":1"), std::string::npos)
      << audits[0].detail;
}

TEST_F(RisInboundTest, UnparsedMessagesAreCountedAndAuditedOnceAMinutePerPeerAndKind) {
  const Status bad = InvalidArgument("segment 2 (pid): not a segment name");
  inbound_->OnUnparsed("192.0.2.9", "M7", bad);
  inbound_->OnUnparsed("192.0.2.9", "M8", bad);
  inbound_->OnUnparsed("192.0.2.9", "", InvalidArgument("no MSH segment"));
  EXPECT_EQ(
      metrics_.Value("conduit_hl7_received_total", R"(source="ris",type="unparsed",ack="AR")"), 2);
  EXPECT_EQ(
      metrics_.Value("conduit_hl7_received_total", R"(source="ris",type="unparsed",ack="none")"),
      1);
  std::vector<AuditEvent> audits = Audits("hl7_receive");
  ASSERT_EQ(audits.size(), 2u);
  for (const AuditEvent& audit : audits) {
    EXPECT_EQ(audit.outcome, "failure");
    EXPECT_NE(audit.detail.find("\"type\":\"unparsed\""), std::string::npos) << audit.detail;
    EXPECT_NE(audit.detail.find("192.0.2.9"), std::string::npos) << audit.detail;
  }
  clock_.Advance(61s);
  inbound_->OnUnparsed("192.0.2.9", "M9", bad);
  audits = Audits("hl7_receive");
  ASSERT_EQ(audits.size(), 3u);
  EXPECT_NE(audits[0].detail.find("\"unreported_before\":1"), std::string::npos)
      << audits[0].detail;
}

}  // namespace
}  // namespace conduit
