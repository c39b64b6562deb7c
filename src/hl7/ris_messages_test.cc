#include "hl7/ris_messages.h"

#include <gtest/gtest.h>

#include <functional>

namespace conduit {
namespace {

Hl7Header Header(const std::string& control_id) {
  Hl7Header header;
  header.sending_application = "CONDUIT";
  header.sending_facility = "HUB";
  header.receiving_application = "RIS";
  header.receiving_facility = "TRUST";
  header.time = TimePoint(std::chrono::seconds(1'700'000'000));
  header.control_id = control_id;
  return header;
}

RisPatient Patient() { return {"9434765919", "NHS", "NH", "O'Neil^Smith", "Ann"}; }

AiFindingResult Finding() {
  AiFindingResult result;
  result.header = Header("R1");
  result.patient = Patient();
  result.order.placer_order_number = "PL1";
  result.order.filler_order_number = "FI1";
  result.order.accession_number = "ACC123";
  result.order.study_instance_uid = "1.2.826.0.1.3680043.2.1125.1";
  result.procedure = {"CTHEAD", "CT Head", "LOCAL"};
  result.observed_at = TimePoint(std::chrono::seconds(1'699'999'000));
  result.tool = "Vendor ICH 2.1";
  AiObservation finding;
  finding.kind = AiObservation::Kind::kCoded;
  finding.observation = {"ICH", "Intracranial haemorrhage", "99CONDUIT"};
  finding.coded_value = {"52988006", "Lesion", "SCT"};
  finding.abnormal_flag = "A";
  AiObservation score;
  score.kind = AiObservation::Kind::kNumeric;
  score.observation = {"SCORE", "AI probability", "99CONDUIT"};
  score.value = "0.93";
  score.units = "1";
  AiObservation text;
  text.kind = AiObservation::Kind::kText;
  text.observation = {"NOTE", "AI summary", "99CONDUIT"};
  text.value = "Suspected bleed | left & right ^ check";
  result.observations = {finding, score, text};
  return result;
}

TEST(RisMessagesTest, AiResultOruHasTheExpectedSegments) {
  Result<Hl7Message> oru = BuildAiResultOru(Finding());
  ASSERT_TRUE(oru.ok()) << oru.status().ToString();
  EXPECT_EQ(
      oru->Serialize(),
      "MSH|^~\\&|CONDUIT|HUB|RIS|TRUST|20231114221320||ORU^R01^ORU_R01|R1|P|2.5.1\r"
      "PID|1||9434765919^^^NHS^NH||O'Neil\\S\\Smith^Ann\r"
      "ORC|RE|PL1|FI1\r"
      "OBR|1|PL1|FI1|CTHEAD^CT Head^LOCAL|||20231114215640|||||||||||ACC123||||20231114221320|||P\r"
      "OBX|1|CWE|ICH^Intracranial haemorrhage^99CONDUIT||52988006^Lesion^SCT|||A|||P|||"
      "20231114215640||||Vendor ICH 2.1\r"
      "OBX|2|NM|SCORE^AI probability^99CONDUIT||0.93|1|||||P|||20231114215640||||Vendor ICH 2.1\r"
      "OBX|3|TX|NOTE^AI summary^99CONDUIT||Suspected bleed \\F\\ left \\T\\ right \\S\\ check"
      "||||||P|||20231114215640||||Vendor ICH 2.1\r"
      "OBX|4|ST|110180^Study Instance UID^DCM||1.2.826.0.1.3680043.2.1125.1||||||P\r");
}

TEST(RisMessagesTest, AiResultOruReadsBackAsAReport) {
  Result<Hl7Message> oru = BuildAiResultOru(Finding());
  ASSERT_TRUE(oru.ok());
  Result<Hl7Message> parsed = Hl7Message::Parse(oru->Serialize());
  ASSERT_TRUE(parsed.ok());
  Result<std::vector<RisReport>> reports = ReadReports(*parsed);
  ASSERT_TRUE(reports.ok()) << reports.status().ToString();
  ASSERT_EQ(reports->size(), 1u);
  const RisReport& report = (*reports)[0];
  EXPECT_EQ(report.patient, Patient());
  EXPECT_EQ(report.order, Finding().order);
  EXPECT_EQ(report.procedure, (Hl7Coded{"CTHEAD", "CT Head", "LOCAL"}));
  EXPECT_EQ(report.result_status, "P");
  EXPECT_EQ(report.observed_at, "20231114215640");
  EXPECT_EQ(report.text, "Suspected bleed | left & right ^ check");
}

TEST(RisMessagesTest, AiResultOruRefusesIncompleteInputWithoutQuotingIt) {
  struct Case {
    std::function<void(AiFindingResult&)> change;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {[](AiFindingResult& r) { r.header.control_id.clear(); }, "MSH-10"},
      {[](AiFindingResult& r) { r.patient.id.clear(); }, "PID-3"},
      {[](AiFindingResult& r) { r.order = {}; }, "accession number or order number"},
      {[](AiFindingResult& r) { r.observations.clear(); }, "no observation"},
      {[](AiFindingResult& r) { r.observations[1].value = "0.9 (high)"; },
       "observation 2: NM OBX-5 is not a number"},
      {[](AiFindingResult& r) { r.observations[0].coded_value = {}; },
       "observation 1: coded OBX-5 is empty"},
      {[](AiFindingResult& r) { r.observations[2].observation = {}; }, "observation 3: OBX-3"},
  };
  for (const Case& c : cases) {
    AiFindingResult result = Finding();
    c.change(result);
    Result<Hl7Message> oru = BuildAiResultOru(result);
    EXPECT_EQ(oru.status().code(), StatusCode::kInvalidArgument) << c.message_part;
    EXPECT_NE(oru.status().message().find(c.message_part), std::string::npos)
        << oru.status().message();
    EXPECT_EQ(oru.status().message().find("9434765919"), std::string::npos);
  }
}

PriorityUpdate Update() {
  PriorityUpdate update;
  update.header = Header("P1");
  update.patient = Patient();
  update.order.placer_order_number = "PL1";
  update.order.filler_order_number = "FI1";
  update.order.accession_number = "ACC123";
  update.order.requested_procedure_id = "RP1";
  update.order.study_instance_uid = "1.2.3.4";
  update.procedure = {"CTHEAD", "CT Head", "LOCAL"};
  update.priority = OrderPriority::kStat;
  update.reason = "AI triage: suspected ICH";
  update.modality = "CT";
  return update;
}

TEST(RisMessagesTest, OmiPriorityUpdateUsesXoAndTq1) {
  Result<Hl7Message> omi = BuildPriorityUpdateOmi(Update());
  ASSERT_TRUE(omi.ok()) << omi.status().ToString();
  EXPECT_EQ(omi->Serialize(),
            "MSH|^~\\&|CONDUIT|HUB|RIS|TRUST|20231114221320||OMI^O23^OMI_O23|P1|P|2.5.1\r"
            "PID|1||9434765919^^^NHS^NH||O'Neil\\S\\Smith^Ann\r"
            "ORC|XO|PL1|FI1||||||20231114221320|||||||^AI triage: suspected ICH\r"
            "TQ1|1||||||||S^^HL70485\r"
            "OBR|1|PL1|FI1|CTHEAD^CT Head^LOCAL\r"
            "IPC|ACC123|RP1|1.2.3.4||CT\r");
  Result<std::vector<RisOrder>> orders = ReadOrders(*Hl7Message::Parse(omi->Serialize()));
  ASSERT_TRUE(orders.ok()) << orders.status().ToString();
  ASSERT_EQ(orders->size(), 1u);
  const RisOrder& order = (*orders)[0];
  EXPECT_EQ(order.order_control, "XO");
  EXPECT_EQ(order.priority, OrderPriority::kStat);
  EXPECT_EQ(order.order, Update().order);
  EXPECT_EQ(order.patient, Patient());
  EXPECT_EQ(order.modality, "CT");
}

TEST(RisMessagesTest, OrmPriorityUpdateUsesXoAndTqPriority) {
  PriorityUpdate update = Update();
  update.priority = OrderPriority::kAsap;
  update.header.version = "2.3.1";
  Result<Hl7Message> orm = BuildPriorityUpdateOrm(update);
  ASSERT_TRUE(orm.ok()) << orm.status().ToString();
  EXPECT_EQ(orm->Serialize(),
            "MSH|^~\\&|CONDUIT|HUB|RIS|TRUST|20231114221320||ORM^O01^ORM_O01|P1|P|2.3.1\r"
            "PID|1||9434765919^^^NHS^NH||O'Neil\\S\\Smith^Ann\r"
            "ORC|XO|PL1|FI1||||^^^^^A||20231114221320|||||||^AI triage: suspected ICH\r"
            "OBR|1|PL1|FI1|CTHEAD^CT Head^LOCAL||||||||||||||ACC123|RP1||||||||^^^^^A\r"
            "ZDS|1.2.3.4^100^Application^DICOM\r");
  Result<std::vector<RisOrder>> orders = ReadOrders(*orm);
  ASSERT_TRUE(orders.ok());
  ASSERT_EQ(orders->size(), 1u);
  EXPECT_EQ((*orders)[0].priority, OrderPriority::kAsap);
  EXPECT_EQ((*orders)[0].order, update.order);
}

TEST(RisMessagesTest, PriorityUpdatesRefuseIncompleteInput) {
  PriorityUpdate no_order = Update();
  no_order.order.placer_order_number.clear();
  no_order.order.filler_order_number.clear();
  EXPECT_EQ(BuildPriorityUpdateOmi(no_order).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(BuildPriorityUpdateOrm(no_order).status().code(), StatusCode::kInvalidArgument);
  PriorityUpdate no_patient = Update();
  no_patient.patient = {};
  EXPECT_TRUE(BuildPriorityUpdateOmi(no_patient).ok()) << "the patient group is optional in OMI";
  EXPECT_EQ(BuildPriorityUpdateOrm(no_patient).status().code(), StatusCode::kInvalidArgument);
}

TEST(RisMessagesTest, ReadsAnOrmStatusUpdateFromARis) {
  // dcm4chee-style ORM^O01 (v2.3.1): order complete, accession in OBR-18, study UID in ZDS-1.
  const std::string text =
      "MSH|^~\\&|RIS|TRUST|CONDUIT|HUB|20240102030405||ORM^O01|M100|P|2.3.1\r"
      "PID|1||123^^^TRUST^MR||Jones^Bob||19600101|M\r"
      "PV1|1|O\r"
      "ORC|SC|PL9|FI9||CM||^^^^^R\r"
      "OBR|1|PL9|FI9|MRBRAIN^MR Brain^LOCAL||||||||||||||ACC9|RP9|||||MR|I\r"
      "ZDS|1.2.840.99.1^100^Application^DICOM\r";
  Result<std::vector<RisOrder>> orders = ReadOrders(*Hl7Message::Parse(text));
  ASSERT_TRUE(orders.ok()) << orders.status().ToString();
  ASSERT_EQ(orders->size(), 1u);
  const RisOrder& order = (*orders)[0];
  EXPECT_EQ(order.order_control, "SC");
  EXPECT_EQ(order.order_status, "CM");
  EXPECT_EQ(order.priority_code, "R");
  EXPECT_EQ(order.priority, OrderPriority::kRoutine);
  EXPECT_EQ(order.order.accession_number, "ACC9");
  EXPECT_EQ(order.order.requested_procedure_id, "RP9");
  EXPECT_EQ(order.order.study_instance_uid, "1.2.840.99.1");
  EXPECT_EQ(order.order.placer_order_number, "PL9");
  EXPECT_EQ(order.procedure.code, "MRBRAIN");
  EXPECT_EQ(order.modality, "MR");
  EXPECT_EQ(order.result_status, "I");
  EXPECT_EQ(order.patient.id, "123");
  EXPECT_EQ(order.patient.family_name, "Jones");
}

TEST(RisMessagesTest, ReadsEveryOrderOfAnOmi) {
  const std::string text =
      "MSH|^~\\&|RIS|TRUST|CONDUIT|HUB|20240102030405||OMI^O23^OMI_O23|M200|P|2.5.1\r"
      "PID|1||123^^^TRUST^MR||Jones^Bob\r"
      "ORC|NW|PLA|FIA||IP\r"
      "TQ1|1||||||||A\r"
      "OBR|1|PLA|FIA|CTCHEST^CT Chest\r"
      "IPC|ACCA|RPA|1.2.3.A|SPS1|CT\r"
      "IPC|ACCA|RPA|1.2.3.A|SPS2|CT\r"
      "ORC|NW|PLB|FIB||SC\r"
      "TQ1|1||||||||TS30\r"
      "OBR|1|PLB|FIB|XRCHEST^XR Chest\r"
      "IPC|ACCB|RPB|1.2.3.B|SPS3|DX\r";
  Result<std::vector<RisOrder>> orders = ReadOrders(*Hl7Message::Parse(text));
  ASSERT_TRUE(orders.ok()) << orders.status().ToString();
  ASSERT_EQ(orders->size(), 2u);
  EXPECT_EQ((*orders)[0].order_status, "IP");
  EXPECT_EQ((*orders)[0].priority, OrderPriority::kAsap);
  EXPECT_EQ((*orders)[0].order.accession_number, "ACCA");
  EXPECT_EQ((*orders)[0].order.study_instance_uid, "1.2.3.A");
  EXPECT_EQ((*orders)[0].modality, "CT");
  EXPECT_EQ((*orders)[1].order_status, "SC");
  EXPECT_EQ((*orders)[1].priority_code, "TS30");
  EXPECT_EQ((*orders)[1].priority, std::nullopt);
  EXPECT_EQ((*orders)[1].order.accession_number, "ACCB");
  EXPECT_EQ((*orders)[1].order.filler_order_number, "FIB");
  EXPECT_EQ((*orders)[1].modality, "DX");
}

TEST(RisMessagesTest, ReadsRadiologistReports) {
  const std::string text =
      "MSH|^~\\&|RIS|TRUST|CONDUIT|HUB|20240102030405||ORU^R01|M300|P|2.5.1\r"
      "PID|1||123^^^TRUST^MR||Jones^Bob\r"
      "ORC|RE|PL1|FI1\r"
      "OBR|1|PL1|FI1|CTHEAD^CT Head|||20240101120000|||||||||||ACC1||||||CT|F\r"
      "OBX|1|TX|GDT^Report||Findings: small acute subdural.~No midline shift.||||||F\r"
      "OBX|2|FT|IMP^Impression||Impression:\\.br\\Acute SDH.||||||F\r"
      "OBX|3|CWE|CODE^Coded||123^Thing^SCT||||||F\r"
      "OBR|2|PL2|FI2|CTCHEST^CT Chest|||20240101130000|||||||||||ACC2||||||CT|C\r"
      "OBX|1|TX|GDT^Report||Normal.||||||C\r";
  Result<std::vector<RisReport>> reports = ReadReports(*Hl7Message::Parse(text));
  ASSERT_TRUE(reports.ok()) << reports.status().ToString();
  ASSERT_EQ(reports->size(), 2u);
  EXPECT_EQ((*reports)[0].order.accession_number, "ACC1");
  EXPECT_EQ((*reports)[0].result_status, "F");
  EXPECT_EQ((*reports)[0].text,
            "Findings: small acute subdural.\nNo midline shift.\nImpression:\nAcute SDH.");
  EXPECT_EQ((*reports)[1].order.accession_number, "ACC2");
  EXPECT_EQ((*reports)[1].order.placer_order_number, "PL2");
  EXPECT_EQ((*reports)[1].result_status, "C");
  EXPECT_EQ((*reports)[1].text, "Normal.");
  EXPECT_EQ((*reports)[1].patient.id, "123");
  ASSERT_EQ((*reports)[0].coded.size(), 1u) << "OBX 3 is coded: kept apart from the text";
  EXPECT_EQ((*reports)[0].coded[0].observation, (Hl7Coded{"CODE", "Coded", ""}));
  EXPECT_EQ((*reports)[0].coded[0].value, (Hl7Coded{"123", "Thing", "SCT"}));
  EXPECT_TRUE((*reports)[1].coded.empty());
}

TEST(RisMessagesTest, ReadersRefuseOtherMessageTypes) {
  const Hl7Message adt = *Hl7Message::Parse("MSH|^~\\&|RIS||||||ADT^A01|X1|P|2.5.1\rPID|1\r");
  EXPECT_EQ(ReadOrders(adt).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadReports(adt).status().code(), StatusCode::kInvalidArgument);
  const Hl7Message empty_orm = *Hl7Message::Parse("MSH|^~\\&|RIS||||||ORM^O01|X2|P|2.3\r");
  EXPECT_EQ(ReadOrders(empty_orm).status().code(), StatusCode::kInvalidArgument);
  const Hl7Message empty_oru = *Hl7Message::Parse("MSH|^~\\&|RIS||||||ORU^R01|X3|P|2.3\r");
  EXPECT_EQ(ReadReports(empty_oru).status().code(), StatusCode::kInvalidArgument);
}

TEST(RisMessagesTest, PriorityCodes) {
  for (OrderPriority p :
       {OrderPriority::kStat, OrderPriority::kAsap, OrderPriority::kRoutine, OrderPriority::kPreop,
        OrderPriority::kCallback, OrderPriority::kTimingCritical}) {
    EXPECT_EQ(PriorityFromCode(PriorityCode(p)), p);
  }
  EXPECT_EQ(PriorityFromCode(""), std::nullopt);
  EXPECT_EQ(PriorityFromCode("STAT"), std::nullopt);
}

}  // namespace
}  // namespace conduit
