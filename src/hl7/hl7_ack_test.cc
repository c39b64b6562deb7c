#include "hl7/hl7_ack.h"

#include <gtest/gtest.h>

namespace conduit {
namespace {

constexpr std::string_view kOrm =
    "MSH|^~\\&|RIS|TRUST|CONDUIT|HUB|20240102030405||ORM^O01^ORM_O01|CTRL77|T|2.3.1\r"
    "PID|1||123456^^^NHS^NH||Smith^John\r";

Hl7Message Received() { return *Hl7Message::Parse(kOrm); }

AckSender Sender() {
  AckSender sender;
  sender.application = "CONDUIT";
  sender.facility = "HUB";
  sender.control_id = "ACK1";
  sender.now = TimePoint(std::chrono::seconds(1'700'000'000));
  return sender;
}

TEST(Hl7AckTest, AcceptAckSwapsSenderAndReceiverAndEchoesTheControlId) {
  Result<Hl7Message> ack = BuildAck(Received(), AckDetail{}, Sender());
  ASSERT_TRUE(ack.ok()) << ack.status().ToString();
  EXPECT_EQ(ack->Serialize(),
            "MSH|^~\\&|CONDUIT|HUB|RIS|TRUST|20231114221320||ACK^O01^ACK|ACK1|T|2.3.1\r"
            "MSA|AA|CTRL77\r");
  Result<AckOutcome> outcome = ReadAck(*ack);
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->code, AckCode::kAccept);
  EXPECT_EQ(outcome->acknowledged_control_id, "CTRL77");
  EXPECT_TRUE(AckStatus(*outcome).ok());
}

TEST(Hl7AckTest, ErrorAndRejectCarryAnErrSegment) {
  struct Case {
    Status status;
    std::string msa1;
    StatusCode read_back;
  };
  const std::vector<Case> cases = {
      {Unavailable("index busy"), "AE", StatusCode::kUnavailable},
      {ResourceExhausted("queue full"), "AE", StatusCode::kUnavailable},
      {DeadlineExceeded("slow"), "AE", StatusCode::kUnavailable},
      {InvalidArgument("no accession"), "AR", StatusCode::kInvalidArgument},
      {Internal("bug"), "AR", StatusCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    Result<Hl7Message> ack = BuildAck(Received(), AckDetailForStatus(c.status), Sender());
    ASSERT_TRUE(ack.ok());
    EXPECT_EQ(ack->Value("MSA-1"), c.msa1);
    EXPECT_EQ(ack->Value("MSA-2"), "CTRL77");
    EXPECT_EQ(ack->Value("ERR-3.1"), "207");
    EXPECT_EQ(ack->Value("ERR-3.3"), "HL70357");
    EXPECT_EQ(ack->Value("ERR-4"), "E");
    EXPECT_EQ(ack->Value("ERR-8"), c.status.message());
    Result<Hl7Message> reparsed = Hl7Message::Parse(ack->Serialize());
    ASSERT_TRUE(reparsed.ok());
    Result<AckOutcome> outcome = ReadAck(*reparsed);
    ASSERT_TRUE(outcome.ok());
    EXPECT_EQ(outcome->text, c.status.message());
    EXPECT_EQ(outcome->error_code, "207");
    const Status status = AckStatus(*outcome);
    EXPECT_EQ(status.code(), c.read_back) << c.status.ToString();
    EXPECT_NE(status.message().find("CTRL77"), std::string::npos);
    EXPECT_NE(status.message().find(c.msa1), std::string::npos);
    EXPECT_EQ(status.message().find(c.status.message()), std::string::npos)
        << "the peer's text stays out of the status";
  }
}

TEST(Hl7AckTest, AckUsesTheReceivedSeparatorsAndEscapesText) {
  Result<Hl7Message> received = Hl7Message::Parse("MSH#$*!@#LAB#X#Y#Z###ORU$R01#C9#P#2.5.1\r");
  ASSERT_TRUE(received.ok());
  AckDetail detail{AckCode::kReject, "200", "unsupported: ORU#R01"};
  Result<Hl7Message> ack = BuildAck(*received, detail, Sender());
  ASSERT_TRUE(ack.ok());
  const std::string text = ack->Serialize();
  EXPECT_EQ(text.rfind("MSH#$*!@#CONDUIT#HUB#LAB#X#", 0), 0u) << text;
  Result<AckOutcome> outcome = ReadAck(*Hl7Message::Parse(text));
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->code, AckCode::kReject);
  EXPECT_EQ(outcome->error_code, "200");
  EXPECT_EQ(outcome->text, "unsupported: ORU#R01");
}

TEST(Hl7AckTest, ReadsCommitCodesAndOlderAcks) {
  for (const auto& [code, expected] : std::vector<std::pair<std::string, AckCode>>{
           {"CA", AckCode::kAccept}, {"CE", AckCode::kError}, {"CR", AckCode::kReject}}) {
    Result<Hl7Message> ack =
        Hl7Message::Parse("MSH|^~\\&|R|F|||||ACK|1|P|2.3\rMSA|" + code + "|X1|old text\r");
    Result<AckOutcome> outcome = ReadAck(*ack);
    ASSERT_TRUE(outcome.ok()) << code;
    EXPECT_EQ(outcome->code, expected);
    EXPECT_EQ(outcome->text, "old text");
  }
}

TEST(Hl7AckTest, MalformedAcksAreErrors) {
  EXPECT_EQ(ReadAck(*Hl7Message::Parse("MSH|^~\\&|R\r")).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadAck(*Hl7Message::Parse("MSH|^~\\&|R\rMSA|ZZ|1\r")).status().code(),
            StatusCode::kInvalidArgument);
  AckSender no_id = Sender();
  no_id.control_id.clear();
  EXPECT_EQ(BuildAck(Received(), AckDetail{}, no_id).status().code(), StatusCode::kInvalidArgument);
}

TEST(Hl7AckTest, AckForAMessageWithOnlyAHeader) {
  Result<Hl7Message> header = Hl7Message::ParseHeader("MSH|^~\\&|A|B|C|D|||ADT^A08|Z1\rPID|~~~");
  ASSERT_TRUE(header.ok());
  Result<Hl7Message> ack =
      BuildAck(*header, AckDetail{AckCode::kReject, "102", "malformed PID"}, Sender());
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->Value("MSH-12"), "2.5.1");
  EXPECT_EQ(ack->Value("MSH-11"), "P");
  EXPECT_EQ(ack->Value("MSH-9.2"), "A08");
  EXPECT_EQ(ack->Value("MSA-2"), "Z1");
}

TEST(Hl7AckTest, FormatsHl7Time) {
  EXPECT_EQ(FormatHl7Time(TimePoint(std::chrono::seconds(0))), "19700101000000");
  EXPECT_EQ(FormatHl7Time(TimePoint(std::chrono::seconds(1'700'000'000))), "20231114221320");
}

}  // namespace
}  // namespace conduit
