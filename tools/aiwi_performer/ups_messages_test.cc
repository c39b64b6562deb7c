#include "aiwi_performer/ups_messages.h"

#include <gtest/gtest.h>

namespace conduit::tools {
namespace {

using nlohmann::json;

json Ui(const std::string& uid) { return {{"vr", "UI"}, {"Value", {uid}}}; }
json Ur(const std::string& url) { return {{"vr", "UR"}, {"Value", {url}}}; }
json Sq(json items) { return {{"vr", "SQ"}, {"Value", std::move(items)}}; }

TEST(UpsMessagesTest, StateChangeBodyHoldsStateAndTransactionUid) {
  json body = StateChangeBody("IN PROGRESS", "2.25.42");
  EXPECT_EQ(body["00741000"], json({{"vr", "CS"}, {"Value", {"IN PROGRESS"}}}));
  EXPECT_EQ(body["00081195"], Ui("2.25.42"));
  EXPECT_EQ(body.size(), 2u) << body.dump();
}

TEST(UpsMessagesTest, ProgressBodyHoldsOneProgressItemAndTheTransactionUid) {
  json body = ProgressBody("2.25.7", 50, "analysis done");
  EXPECT_EQ(body["00081195"], Ui("2.25.7"));
  ASSERT_EQ(body["00741002"]["vr"], "SQ");
  ASSERT_EQ(body["00741002"]["Value"].size(), 1u);
  const json& item = body["00741002"]["Value"][0];
  EXPECT_EQ(item["00741004"], json({{"vr", "DS"}, {"Value", {50}}}));
  EXPECT_EQ(item["00741006"], json({{"vr", "ST"}, {"Value", {"analysis done"}}}));
  EXPECT_FALSE(body.contains("00741000")) << "an update must not set the state";
}

TEST(UpsMessagesTest, ProgressIsClampedToAPercentage) {
  EXPECT_EQ(ProgressBody("2.25.7", 150, "")["00741002"]["Value"][0]["00741004"]["Value"][0], 100);
  EXPECT_FALSE(ProgressBody("2.25.7", 0, "")["00741002"]["Value"][0].contains("00741006"));
}

TEST(UpsMessagesTest, CancellationBodyHasDateTimeAndReason) {
  const auto when = std::chrono::system_clock::from_time_t(86400 * 365);  // 1971-01-01
  json item = CancellationBody("2.25.9", 25, "no inputs", when)["00741002"]["Value"][0];
  EXPECT_EQ(item["00404052"]["Value"][0], "19710101000000");
  EXPECT_EQ(item["00741238"], json({{"vr", "LT"}, {"Value", {"no inputs"}}}));
  EXPECT_EQ(item["00741004"]["Value"][0], 25);
}

TEST(UpsMessagesTest, PerformedProcedureGroupsOutputsBySeriesAndCopiesTheWorkitemCode) {
  json code = {{"00080100", {{"vr", "SH"}, {"Value", {"LUNG"}}}}};
  json workitem = {{"00404018", Sq(json::array({code}))}};
  std::vector<OutputInstance> outputs = {
      {"1.2", "1.2.1", "1.2.840.10008.5.1.4.1.1.66.4", "1.2.1.1"},
      {"1.2", "1.2.2", "1.2.840.10008.5.1.4.1.1.88.34", "1.2.2.1"},
      {"1.2", "1.2.1", "1.2.840.10008.5.1.4.1.1.7", "1.2.1.2"}};
  const auto t0 = std::chrono::system_clock::from_time_t(0);
  json body = PerformedProcedureBody("2.25.1", workitem, "AITOOL", outputs, t0,
                                     t0 + std::chrono::seconds(61));
  EXPECT_EQ(body["00081195"], Ui("2.25.1"));
  const json& performed = body["00741216"]["Value"][0];
  EXPECT_EQ(performed["00404050"]["Value"][0], "19700101000000");
  EXPECT_EQ(performed["00404051"]["Value"][0], "19700101000101");
  EXPECT_EQ(performed["00404019"]["Value"][0], code);
  EXPECT_EQ(performed["00404028"]["Value"][0]["00080100"]["Value"][0], "AITOOL");
  const json& series = performed["00404033"]["Value"];
  ASSERT_EQ(series.size(), 2u);
  EXPECT_EQ(series[0]["0020000E"], Ui("1.2.1"));
  EXPECT_EQ(series[0]["0020000D"], Ui("1.2"));
  EXPECT_EQ(series[0]["0040E020"]["Value"][0], "DICOM");
  ASSERT_EQ(series[0]["00081199"]["Value"].size(), 2u);
  EXPECT_EQ(series[0]["00081199"]["Value"][1]["00081155"], Ui("1.2.1.2"));
  EXPECT_EQ(series[1]["00081199"]["Value"][0]["00081150"], Ui("1.2.840.10008.5.1.4.1.1.88.34"));
}

TEST(UpsMessagesTest, PerformedWorkitemCodeSequenceIsEmptyWithoutAScheduledCode) {
  const auto t0 = std::chrono::system_clock::from_time_t(0);
  json body = PerformedProcedureBody("2.25.1", json::object(), "AE", {}, t0, t0);
  EXPECT_EQ(body["00741216"]["Value"][0]["00404019"]["Value"], json::array());
}

TEST(UpsMessagesTest, ParseWorkitemAcceptsAnObjectOrASingletonArray) {
  EXPECT_TRUE(ParseWorkitem(R"({"00080018": {"vr": "UI", "Value": ["1.2"]}})").ok());
  Result<json> wrapped = ParseWorkitem(R"([{"00080018": {"vr": "UI", "Value": ["1.2"]}}])");
  ASSERT_TRUE(wrapped.ok());
  EXPECT_EQ(FirstString(*wrapped, "00080018"), "1.2");
  EXPECT_FALSE(ParseWorkitem("[]").ok());
  EXPECT_FALSE(ParseWorkitem("{not json").ok());
  EXPECT_FALSE(ParseWorkitem("\"text\"").ok());
}

TEST(UpsMessagesTest, ParseSearchResultsListsUidsAndStates) {
  Result<std::vector<WorkitemSummary>> found = ParseSearchResults(R"([
    {"00080018": {"vr": "UI", "Value": ["1.1"]}, "00741000": {"vr": "CS", "Value": ["SCHEDULED"]}},
    {"00741000": {"vr": "CS", "Value": ["SCHEDULED"]}},
    {"00080018": {"vr": "UI", "Value": ["1.3"]}}])");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_EQ(found->size(), 2u) << "the item without a UID is skipped";
  EXPECT_EQ((*found)[0].uid, "1.1");
  EXPECT_EQ((*found)[0].state, "SCHEDULED");
  EXPECT_EQ((*found)[1].uid, "1.3");
  EXPECT_EQ((*found)[1].state, "");
}

TEST(UpsMessagesTest, ParseSearchResultsTreatsAnEmptyBodyAsNoMatch) {
  Result<std::vector<WorkitemSummary>> found = ParseSearchResults("  \r\n");
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->empty());
  EXPECT_FALSE(ParseSearchResults(R"({"00080018": {}})").ok());
}

TEST(UpsMessagesTest, InputRetrieveUrlsComeFromTheWadoRsRetrievalSequence) {
  json workitem = {
      {"00404021",
       Sq({{{"0040E025", Sq({{{"00081190", Ur("http://h/dw/studies/1.2")}},
                             {{"00081190", Ur("http://h/dw/studies/1.2/series/1.2.3")}}})}},
           {{"00081190", Ur("http://h/dw/studies/9")}},  // no retrieval sequence: own URL
           {{"0040E025", Sq({{{"00081190", Ur("http://h/dw/studies/1.2")}}})}}})}};
  Result<std::vector<std::string>> urls = InputRetrieveUrls(workitem);
  ASSERT_TRUE(urls.ok()) << urls.status().ToString();
  EXPECT_EQ(*urls, (std::vector<std::string>{"http://h/dw/studies/1.2",
                                             "http://h/dw/studies/1.2/series/1.2.3",
                                             "http://h/dw/studies/9"}));
}

TEST(UpsMessagesTest, InputRetrieveUrlsErrWithoutAny) {
  EXPECT_FALSE(InputRetrieveUrls(json::object()).ok());
  EXPECT_FALSE(InputRetrieveUrls({{"00404021", Sq(json::array({json::object()}))}}).ok());
  // A wrong shape is not a crash.
  EXPECT_FALSE(InputRetrieveUrls({{"00404021", {{"vr", "SQ"}, {"Value", "x"}}}}).ok());
}

TEST(UpsMessagesTest, OutputStorageUrlsComeFromTheStowRsStorageSequence) {
  json workitem = {{"00404070", Sq({{{"00404072", Sq({{{"00404073", Ur("http://h/dw")}}})}}})}};
  Result<std::vector<std::string>> urls = OutputStorageUrls(workitem);
  ASSERT_TRUE(urls.ok()) << urls.status().ToString();
  EXPECT_EQ(*urls, std::vector<std::string>{"http://h/dw"});
  EXPECT_FALSE(OutputStorageUrls({{"00404070", Sq(json::array())}}).ok());
}

TEST(UpsMessagesTest, ParseEventReportReadsTypeUidAndState) {
  Result<EventReport> event = ParseEventReport(R"({
    "00000002": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.34.6.4"]},
    "00001000": {"vr": "UI", "Value": ["1.2.3"]},
    "00001002": {"vr": "US", "Value": [1]},
    "00741000": {"vr": "CS", "Value": ["SCHEDULED"]}})");
  ASSERT_TRUE(event.ok()) << event.status().ToString();
  EXPECT_EQ(event->event_type, kUpsStateReport);
  EXPECT_EQ(event->uid, "1.2.3");
  EXPECT_EQ(event->state, "SCHEDULED");
}

TEST(UpsMessagesTest, ParseEventReportAcceptsBareArraysAndNumericStrings) {
  Result<EventReport> event =
      ParseEventReport(R"({"00001000": ["1.2.3"], "00001002": {"vr": "US", "Value": ["2"]}})");
  ASSERT_TRUE(event.ok()) << event.status().ToString();
  EXPECT_EQ(event->event_type, kUpsCancelRequested);
  EXPECT_EQ(event->uid, "1.2.3");
  EXPECT_EQ(event->state, "");
}

TEST(UpsMessagesTest, ParseEventReportRefusesWhatIsNotAnEvent) {
  for (const char* text : {"", "[]", "{}", R"({"00001002": {"vr": "US", "Value": ["x"]}})",
                           R"({"00001002": {"vr": "US"}})", "{\"00001002\""}) {
    EXPECT_FALSE(ParseEventReport(text).ok()) << text;
  }
}

TEST(UpsMessagesTest, DicomDateTimeIsUtc) {
  EXPECT_EQ(DicomDateTime(std::chrono::system_clock::from_time_t(1700000000)), "20231114221320");
}

}  // namespace
}  // namespace conduit::tools
