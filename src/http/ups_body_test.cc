#include "http/ups_body.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace conduit {
namespace {

const UpsBodyLimits kLimits;

TEST(UpsBodyTest, StateChangeClaim) {
  auto r = ParseStateChangeBody(R"({"00741000":{"vr":"CS","Value":["IN PROGRESS"]},
      "00081195":{"vr":"UI","Value":["2.25.1234"]}})",
                                kLimits);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->state, UpsState::kInProgress);
  EXPECT_EQ(r->transaction_uid, "2.25.1234");
  EXPECT_TRUE(r->reason.empty());
}

TEST(UpsBodyTest, StateChangeInAnArrayWithReasonAndLowerCaseTags) {
  auto r = ParseStateChangeBody(R"([{"00741000":{"vr":"CS","Value":["CANCELED"]},
      "00081195":{"vr":"UI","Value":["2.25.9"]},
      "0074123a":{"vr":"UN"},
      "00741238":{"vr":"LT","Value":["input unreadable"]}}])",
                                kLimits);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->state, UpsState::kCanceled);
  EXPECT_EQ(r->reason, "input unreadable");
}

TEST(UpsBodyTest, StateChangeWithoutTransactionUidLeavesItEmpty) {
  auto r = ParseStateChangeBody(R"({"00741000":{"vr":"CS","Value":["COMPLETED"]}})", kLimits);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->state, UpsState::kCompleted);
  EXPECT_TRUE(r->transaction_uid.empty()) << "the HTTP layer answers 400 for it";
}

// Bodies every parser refuses, with a word the message must contain.
struct Refused {
  std::string name;
  std::string body;
  std::string says;
};

TEST(UpsBodyTest, MalformedStateChangeBodiesAreRefusedWithAReason) {
  const std::vector<Refused> cases = {
      {"not json", "{", "not valid JSON"},
      {"a string", R"("IN PROGRESS")", "DICOM JSON dataset"},
      {"two datasets", "[{},{}]", "array of 2"},
      {"no state", R"({"00081195":{"vr":"UI","Value":["1.2"]}})", "missing"},
      {"unknown state", R"({"00741000":{"vr":"CS","Value":["DONE"]}})", "expected IN PROGRESS"},
      {"back to scheduled", R"({"00741000":{"vr":"CS","Value":["SCHEDULED"]}})", "SCHEDULED"},
      {"two states", R"({"00741000":{"vr":"CS","Value":["COMPLETED","CANCELED"]}})", "one value"},
      {"wrong VR", R"({"00741000":{"vr":"LO","Value":["COMPLETED"]}})", "PS3.6 gives CS"},
      {"unknown VR", R"({"00741000":{"vr":"XX","Value":["COMPLETED"]}})", "not a DICOM VR"},
      {"no vr", R"({"00741000":{"Value":["COMPLETED"]}})", "no \"vr\""},
      {"bad key", R"({"0074100":{"vr":"CS","Value":["COMPLETED"]}})", "8 hexadecimal"},
      {"lower case CS", R"({"00741000":{"vr":"CS","Value":["completed"]}})", "A-Z"},
      {"bad UID", R"({"00741000":{"vr":"CS","Value":["COMPLETED"]},
          "00081195":{"vr":"UI","Value":["1..2"]}})",
       "not a UID"},
      {"long UID",
       (std::string(R"({"00741000":{"vr":"CS","Value":["COMPLETED"]},)") +
        R"("00081195":{"vr":"UI","Value":[")" + std::string(65, '1') + R"("]}})"),
       "longer than 64"},
      {"command group", R"({"00001000":{"vr":"UI","Value":["1.2"]}})", "command"},
      {"group length", R"({"00080000":{"vr":"UL","Value":[4]}})", "group lengths"},
      {"value not array", R"({"00741000":{"vr":"CS","Value":"COMPLETED"}})", "must be an array"},
      {"number for CS", R"({"00741000":{"vr":"CS","Value":[3]}})", "must be a string"},
      {"bulk data", R"({"00420011":{"vr":"OB","BulkDataURI":"http://x/y"}})", "BulkDataURI"},
      {"binary value", R"({"00420011":{"vr":"OB","Value":["AAAA"]}})", "InlineBinary"},
      {"bad base64", R"({"00420011":{"vr":"OB","InlineBinary":"A*=="}})", "base64"},
      {"extra member", R"({"00741000":{"vr":"CS","Value":["COMPLETED"],"x":1}})", "unknown member"},
      {"US out of range", R"({"00280010":{"vr":"US","Value":[70000]}})", "out of range"},
      {"DT shape", R"({"00404005":{"vr":"DT","Value":["2024-01-01"]}})", "DT value"},
      {"PN member", R"({"00100010":{"vr":"PN","Value":[{"Family":"x"}]}})", "Alphabetic"},
      {"backslash in CS", R"({"00741000":{"vr":"CS","Value":["A\\B"]}})", "A-Z"},
      {"item not object", R"({"00741002":{"vr":"SQ","Value":[1]}})", "JSON object"},
  };
  for (const Refused& c : cases) {
    auto r = ParseStateChangeBody(c.body, kLimits);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(r.status().message().find(c.says), std::string::npos)
        << c.name << ": " << r.status().message();
  }
}

TEST(UpsBodyTest, ErrorsNameTheNestedAttributeButNeverEchoTheValue) {
  auto r = ParseDicomJsonDataset(
      R"({"00741002":{"vr":"SQ","Value":[{"00741004":{"vr":"DS","Value":["SECRET-NAME"]}}]}})",
      kLimits);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("(0074,1002)[1] > (0074,1004)"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(r.status().message().find("SECRET"), std::string::npos);
}

TEST(UpsBodyTest, SizeDepthAndCountLimits) {
  UpsBodyLimits small;
  small.max_body_bytes = 64;
  EXPECT_FALSE(ParseDicomJsonDataset(std::string(65, ' '), small).ok());

  // Sequences nested one deeper than allowed.
  std::string deep = R"({"00741000":{"vr":"CS","Value":["COMPLETED"]}})";
  for (size_t i = 0; i <= kLimits.max_depth; ++i) {
    deep = R"({"00741002":{"vr":"SQ","Value":[)" + deep + "]}}";
  }
  auto r = ParseDicomJsonDataset(deep, kLimits);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nested"), std::string::npos) << r.status().message();

  // A million brackets are refused before nlohmann parses them.
  EXPECT_FALSE(ParseDicomJsonDataset(std::string(1'000'000, '['), UpsBodyLimits{}).ok());

  UpsBodyLimits few;
  few.max_attributes = 2;
  auto many = ParseDicomJsonDataset(
      R"({"00100010":{"vr":"PN"},"00100020":{"vr":"LO"},"00100030":{"vr":"DA"}})", few);
  ASSERT_FALSE(many.ok());
  EXPECT_NE(many.status().message().find("more than 2 attributes"), std::string::npos);
}

TEST(UpsBodyTest, AcceptsEveryValueShapeOfAnnexF) {
  auto r = ParseDicomJsonDataset(R"({
      "00100010":{"vr":"PN","Value":[{"Alphabetic":"Doe^J","Ideographic":"X"}, null]},
      "00201208":{"vr":"IS","Value":[12, "13"]},
      "00741004":{"vr":"DS","Value":[42.5, "1e3"]},
      "00280010":{"vr":"US","Value":[512]},
      "00404005":{"vr":"DT","Value":["20240102030405.123+0100"]},
      "00080030":{"vr":"TM","Value":["1030"]},
      "00101010":{"vr":"AS","Value":["045Y"]},
      "00209165":{"vr":"AT","Value":["0020000D"]},
      "00420011":{"vr":"OB","InlineBinary":"AAECAw=="},
      "00741002":{"vr":"SQ","Value":[{"00741004":{"vr":"DS","Value":[10]}}]},
      "00090010":{"vr":"LO","Value":["PRIVATE CREATOR"]},
      "00081195":{"vr":"UI","Value":[]}
    })",
                                 kLimits);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->at("00081195").contains("Value")) << "an empty Value is no value";
}

TEST(UpsBodyTest, UpdateTakesTheTransactionUidOutOfTheChanges) {
  auto r = ParseUpdateBody(R"({"00081195":{"vr":"UI","Value":["2.25.77"]},
      "00741002":{"vr":"SQ","Value":[{"00741004":{"vr":"DS","Value":[50]}}]}})",
                           kLimits);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->transaction_uid, "2.25.77");
  EXPECT_EQ(r->changes.find("00081195"), std::string::npos);
  EXPECT_NE(r->changes.find("00741002"), std::string::npos);
}

TEST(UpsBodyTest, UpdateRefusesStateIdentityAndEmptyChanges) {
  EXPECT_FALSE(ParseUpdateBody(R"({"00741000":{"vr":"CS","Value":["COMPLETED"]}})", kLimits).ok());
  EXPECT_FALSE(ParseUpdateBody(R"({"00080018":{"vr":"UI","Value":["1.2.3"]}})", kLimits).ok());
  auto empty = ParseUpdateBody(R"({"00081195":{"vr":"UI","Value":["2.25.77"]}})", kLimits);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("no attributes"), std::string::npos);
}

TEST(UpsBodyTest, CancelRequestMayBeEmptyOrGiveAReasonAndContact) {
  auto empty = ParseCancelRequestBody("  \r\n", kLimits);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->reason.empty());
  auto full = ParseCancelRequestBody(R"({"00741238":{"vr":"LT","Value":["wrong patient"]},
      "0074100C":{"vr":"LO","Value":["Dr Who"]},
      "0074100A":{"vr":"UR","Value":["tel:+441234"]}})",
                                     kLimits);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ(full->reason, "wrong patient");
  EXPECT_EQ(full->contact_name, "Dr Who");
  EXPECT_EQ(full->contact_uri, "tel:+441234");
  EXPECT_FALSE(ParseCancelRequestBody("[1]", kLimits).ok());
}

TEST(UpsBodyTest, ValueStringsForQidoMatching) {
  auto ds = ParseDicomJsonDataset(R"({
      "00100010":{"vr":"PN","Value":[{"Alphabetic":"Doe^J","Ideographic":"D"}]},
      "00741000":{"vr":"CS","Value":["SCHEDULED"]},
      "00080061":{"vr":"CS","Value":["CT","MR"]},
      "00201208":{"vr":"IS","Value":[12]},
      "00100020":{"vr":"LO"},
      "00741002":{"vr":"SQ","Value":[{}]}})",
                                  kLimits);
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(DicomJsonValueString(*ds, 0x00100010), "Doe^J=D");
  EXPECT_EQ(DicomJsonValueString(*ds, 0x00741000), "SCHEDULED");
  EXPECT_EQ(DicomJsonValueString(*ds, 0x00080061), "CT\\MR");
  EXPECT_EQ(DicomJsonValueString(*ds, 0x00201208), "12");
  EXPECT_EQ(DicomJsonValueString(*ds, 0x00100020), "");
  EXPECT_EQ(DicomJsonValueString(*ds, 0x00741002), std::nullopt);
  EXPECT_EQ(DicomJsonValueString(*ds, 0x0020000D), std::nullopt);
}

}  // namespace
}  // namespace conduit
