#include "deid/deidentifier.h"

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcvrds.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "deid/reidentifier.h"
#include "dicom/test_support.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using testing::CtSpec;
using testing::Syntax;
using testing::TempDir;
using testing::WriteCtImage;

PseudonymKey TestKey(uint8_t fill = 7) {
  PseudonymKey key;
  key.bytes.assign(32, fill);
  key.id = "test-key-" + std::to_string(fill);
  return key;
}

std::string Get(DcmItem& item, const DcmTagKey& key) {
  OFString value;
  if (item.findAndGetOFStringArray(key, value).bad()) return "<absent>";
  return value.c_str();
}

// Loads a file and hands its dataset to `edit`, then saves it in its own transfer syntax.
template <typename Fn>
void Edit(const fs::path& file, Fn&& edit) {
  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile(file.c_str()).good());
  ff.loadAllDataIntoMemory();
  edit(*ff.getDataset());
  ASSERT_TRUE(ff.saveFile(file.c_str(), ff.getDataset()->getOriginalXfer()).good());
}

struct Loaded {
  DcmFileFormat file;
  DcmDataset& ds() { return *file.getDataset(); }
};

std::unique_ptr<Loaded> Load(const fs::path& path) {
  auto loaded = std::make_unique<Loaded>();
  EXPECT_TRUE(loaded->file.loadFile(path.c_str()).good()) << path;
  return loaded;
}

class DeidentifierTest : public ::testing::Test {
 protected:
  fs::path Ct(const std::string& name, const CtSpec& spec = {}) {
    fs::path file = dir_.path() / name;
    WriteCtImage(file, spec);
    return file;
  }
  Result<DeidOutcome> Run(const fs::path& in, const DeidSettings& settings = {}) {
    Deidentifier deid(settings, Pseudonymiser(TestKey()));
    return deid.DeidentifyFile(in, Out(in));
  }
  fs::path Out(const fs::path& in) { return dir_.path() / ("deid-" + in.filename().string()); }

  TempDir dir_;
};

TEST_F(DeidentifierTest, ReplacesIdentifiersAndUidsAndSaysSo) {
  fs::path in = Ct("a.dcm");
  Edit(in, [](DcmDataset& ds) {
    ds.putAndInsertString(DCM_InstitutionName, "ST ELSEWHERE");
    ds.putAndInsertString(DCM_PatientBirthDate, "19700101");
    ds.putAndInsertString(DcmTagKey(0x0009, 0x0010), "ACME 1.0");
    ds.putAndInsertString(DcmTag(0x0009, 0x1001, EVR_LO), "PRIVATE PHI");
    ds.putAndInsertString(DcmTag(0x0010, 0x9F00, EVR_LO), "UNKNOWN PHI");  // not in PS3.6
  });
  auto outcome = Run(in);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_FALSE(outcome->refused);
  auto out = Load(Out(in));
  DcmDataset& ds = out->ds();
  EXPECT_EQ(Get(ds, DCM_PatientName).rfind("PSEUDO^P", 0), 0u);
  EXPECT_EQ(Get(ds, DCM_PatientID).size(), 16u);
  EXPECT_NE(Get(ds, DCM_PatientID), "PID0001");
  EXPECT_EQ(Get(ds, DCM_AccessionNumber).rfind("A", 0), 0u);
  EXPECT_EQ(Get(ds, DCM_PatientBirthDate), "");          // Z
  EXPECT_EQ(Get(ds, DCM_InstitutionName), "ANONYMOUS");  // X/Z/D -> D
  EXPECT_EQ(Get(ds, DCM_StudyDescription), "<absent>");  // X
  EXPECT_EQ(Get(ds, DcmTagKey(0x0009, 0x1001)), "<absent>");
  EXPECT_EQ(Get(ds, DcmTagKey(0x0009, 0x0010)), "<absent>");
  EXPECT_EQ(Get(ds, DcmTagKey(0x0010, 0x9F00)), "<absent>");
  const std::string sop = Get(ds, DCM_SOPInstanceUID);
  EXPECT_TRUE(IsPseudonymUid(sop)) << sop;
  EXPECT_TRUE(IsPseudonymUid(Get(ds, DCM_StudyInstanceUID)));
  EXPECT_EQ(Get(*out->file.getMetaInfo(), DCM_MediaStorageSOPInstanceUID), sop);
  EXPECT_EQ(outcome->sop_instance_uid, sop);
  EXPECT_EQ(Get(ds, DCM_PatientIdentityRemoved), "YES");
  EXPECT_EQ(Get(ds, DCM_LongitudinalTemporalInformationModified), "REMOVED");
  DcmItem* code = nullptr;
  ASSERT_TRUE(ds.findAndGetSequenceItem(DCM_DeidentificationMethodCodeSequence, code, 0).good());
  EXPECT_EQ(Get(*code, DCM_CodeValue), "113100");
  EXPECT_GE(outcome->actions["private_removed"], 2);
  EXPECT_EQ(outcome->actions["unknown_removed"], 1);

  // The crosswalk pairs name every substitute, each once.
  std::map<std::string, std::string> pairs;
  for (const auto& p : outcome->pseudonyms)
    EXPECT_TRUE(pairs.emplace(p.pseudonym, p.original).second);
  EXPECT_EQ(pairs[sop], CtSpec{}.sop_instance_uid);
  EXPECT_EQ(pairs[Get(ds, DCM_PatientID)], "PID0001");
  EXPECT_EQ(pairs[Get(ds, DCM_AccessionNumber)], "ACC0001");
}

TEST_F(DeidentifierTest, ReferencesStayConsistentAcrossInstances) {
  CtSpec first, second;
  second.sop_instance_uid = first.sop_instance_uid + ".2";
  fs::path a = Ct("a.dcm", first), b = Ct("b.dcm", second);
  Edit(b, [&](DcmDataset& ds) {
    DcmItem* ref = nullptr;
    ASSERT_TRUE(ds.findOrCreateSequenceItem(DCM_SourceImageSequence, ref, -2).good());
    ref->putAndInsertString(DCM_ReferencedSOPClassUID, UID_CTImageStorage);
    ref->putAndInsertString(DCM_ReferencedSOPInstanceUID, first.sop_instance_uid.c_str());
  });
  ASSERT_TRUE(Run(a).ok());
  ASSERT_TRUE(Run(b).ok());
  auto out_a = Load(Out(a)), out_b = Load(Out(b));
  EXPECT_EQ(Get(out_a->ds(), DCM_StudyInstanceUID), Get(out_b->ds(), DCM_StudyInstanceUID));
  DcmItem* ref = nullptr;
  ASSERT_TRUE(out_b->ds().findAndGetSequenceItem(DCM_SourceImageSequence, ref, 0).good());
  EXPECT_EQ(Get(*ref, DCM_ReferencedSOPInstanceUID), Get(out_a->ds(), DCM_SOPInstanceUID));
  EXPECT_EQ(Get(*ref, DCM_ReferencedSOPClassUID), UID_CTImageStorage);  // well-known: kept
}

TEST_F(DeidentifierTest, OptionsChangeTheOutcome) {
  fs::path in = Ct("a.dcm");
  DeidSettings settings;
  settings.options =
      ProfileOptions{ProfileOption::kRetainUids, ProfileOption::kRetainLongitudinalModifiedDates,
                     ProfileOption::kCleanDescriptors};
  settings.date_shift_min_days = 10;
  settings.date_shift_max_days = 20;
  Edit(in, [](DcmDataset& ds) {
    ds.putAndInsertString(DCM_StudyDescription, "CT CHEST for PATIENT PID0001 tel 0161 496 0000");
    ds.putAndInsertString(DCM_AcquisitionDateTime, "20240102101500.123");
  });
  auto outcome = Run(in, settings);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  auto out = Load(Out(in));
  DcmDataset& ds = out->ds();
  EXPECT_EQ(Get(ds, DCM_SOPInstanceUID), CtSpec{}.sop_instance_uid);  // retained
  EXPECT_EQ(Get(ds, DCM_StudyDescription), "CT CHEST for XXXXXXX XXXXXXX tel XXXXXXXXXXXXX");
  const std::string date = Get(ds, DCM_StudyDate);
  ASSERT_EQ(date.size(), 8u);
  EXPECT_GE(date, "20231213");  // 2024-01-02 minus 20 days
  EXPECT_LE(date, "20231223");  // minus 10 days
  const std::string datetime = Get(ds, DCM_AcquisitionDateTime);
  EXPECT_EQ(datetime.substr(0, 8), date);  // the same shift for every date of the patient
  EXPECT_EQ(datetime.substr(8), "101500.123");
  EXPECT_EQ(Get(ds, DCM_LongitudinalTemporalInformationModified), "MODIFIED");
  int codes = 0;
  DcmItem* code = nullptr;
  while (ds.findAndGetSequenceItem(DCM_DeidentificationMethodCodeSequence, code, codes).good())
    ++codes;
  EXPECT_EQ(codes, 4);
}

TEST_F(DeidentifierTest, OverlaysGoWholeUnlessCleanGraphics) {
  fs::path in = Ct("a.dcm");
  Edit(in, [](DcmDataset& ds) {
    ds.putAndInsertUint16(DcmTagKey(0x6000, 0x0010), 16);
    ds.putAndInsertUint16(DcmTagKey(0x6000, 0x0011), 16);
    ds.putAndInsertString(DcmTagKey(0x6000, 0x0040), "G");
    ds.putAndInsertString(DcmTagKey(0x6000, 0x4000), "OVERLAY PHI");
    std::vector<Uint16> bits(16, 0xFFFF);
    ds.putAndInsertUint16Array(DcmTagKey(0x6000, 0x3000), bits.data(), bits.size());
  });
  ASSERT_TRUE(Run(in).ok());
  auto basic = Load(Out(in));
  EXPECT_EQ(Get(basic->ds(), DcmTagKey(0x6000, 0x0010)), "<absent>");
  EXPECT_EQ(Get(basic->ds(), DcmTagKey(0x6000, 0x0040)), "<absent>");

  DeidSettings graphics;
  graphics.options.Add(ProfileOption::kCleanGraphics);
  ASSERT_TRUE(Run(in, graphics).ok());
  auto cleaned = Load(Out(in));
  EXPECT_TRUE(cleaned->ds().tagExists(DcmTagKey(0x6000, 0x3000)));
  EXPECT_EQ(Get(cleaned->ds(), DcmTagKey(0x6000, 0x4000)), "OVERLAY PHI");  // no identifier
}

TEST_F(DeidentifierTest, KeepsOnlyPolicyListedSafePrivateAttributes) {
  fs::path in = Ct("a.dcm");
  Edit(in, [](DcmDataset& ds) {
    ds.putAndInsertString(DcmTagKey(0x0019, 0x0010), "ACME CT");
    ds.putAndInsertString(DcmTag(0x0019, 0x1008, EVR_LO), "1.5");
    ds.putAndInsertString(DcmTag(0x0019, 0x1009, EVR_LO), "PHI HERE");
  });
  DeidSettings settings;
  settings.options.Add(ProfileOption::kRetainSafePrivate);
  settings.safe_private.push_back({0x0019, "ACME CT", 0x08});
  ASSERT_TRUE(Run(in, settings).ok());
  auto out = Load(Out(in));
  EXPECT_EQ(Get(out->ds(), DcmTagKey(0x0019, 0x0010)), "ACME CT");
  EXPECT_EQ(Get(out->ds(), DcmTagKey(0x0019, 0x1008)), "1.5");
  EXPECT_EQ(Get(out->ds(), DcmTagKey(0x0019, 0x1009)), "<absent>");
}

TEST_F(DeidentifierTest, RefusesBurnedInTextAndRiskyKindsWithoutWriting) {
  fs::path burned = Ct("burned.dcm");
  Edit(burned, [](DcmDataset& ds) { ds.putAndInsertString(DCM_BurnedInAnnotation, "YES"); });
  auto outcome = Run(burned);
  ASSERT_TRUE(outcome.ok());
  EXPECT_TRUE(outcome->refused);
  EXPECT_NE(outcome->refusal.find("Burned In Annotation"), std::string::npos);
  EXPECT_FALSE(fs::exists(Out(burned)));

  fs::path us = Ct("us.dcm");
  Edit(us, [](DcmDataset& ds) { ds.putAndInsertString(DCM_Modality, "US"); });
  outcome = Run(us);
  ASSERT_TRUE(outcome.ok());
  EXPECT_TRUE(outcome->refused);
  DeidSettings allow;
  allow.burned_in.allow_ultrasound = true;
  outcome = Run(us, allow);
  ASSERT_TRUE(outcome.ok());
  EXPECT_FALSE(outcome->refused);
}

TEST_F(DeidentifierTest, BlanksConfiguredRegionsEvenWhenCompressed) {
  CtSpec spec;
  spec.syntax = Syntax::kJpegLsLossless;
  fs::path in = Ct("ls.dcm", spec);
  Edit(in, [](DcmDataset& ds) { ds.putAndInsertString(DCM_BurnedInAnnotation, "YES"); });
  DeidSettings settings;
  settings.burned_in.cleaning.push_back({"CT", "", "", {{0, 0, 16, 4}}});
  auto outcome = Run(in, settings);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_FALSE(outcome->refused) << outcome->refusal;
  auto out = Load(Out(in));
  DcmDataset& ds = out->ds();
  EXPECT_EQ(ds.getOriginalXfer(), EXS_LittleEndianExplicit);
  EXPECT_EQ(Get(ds, DCM_BurnedInAnnotation), "NO");
  const Uint16* pixels = nullptr;
  ASSERT_TRUE(ds.findAndGetUint16Array(DCM_PixelData, pixels).good());
  for (int i = 0; i < 16 * 4; ++i) ASSERT_EQ(pixels[i], 0) << i;
  bool untouched_nonzero = false;
  for (int i = 16 * 4; i < 16 * 16; ++i) untouched_nonzero |= pixels[i] != 0;
  EXPECT_TRUE(untouched_nonzero);
}

TEST_F(DeidentifierTest, RejectsWhatIsNotDicom) {
  fs::path junk = dir_.path() / "junk.dcm";
  std::ofstream(junk) << "this is not DICOM at all";
  auto outcome = Run(junk);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kInvalidArgument);
}

// A sender's file meta is not carried over: its AE titles go, and a Transfer Syntax UID sent
// with a wrong VR (found by fuzz_deid: DCMTK then cannot read the output) is written afresh.
TEST_F(DeidentifierTest, WritesAFreshFileMeta) {
  fs::path in = Ct("meta.dcm");
  {
    DcmFileFormat ff;
    ASSERT_TRUE(ff.loadFile(in.c_str()).good());
    ff.loadAllDataIntoMemory();
    DcmMetaInfo& meta = *ff.getMetaInfo();
    delete meta.remove(DCM_TransferSyntaxUID);
    auto* wrong_vr = new DcmDecimalString(DcmTag(DCM_TransferSyntaxUID, EVR_DS));
    wrong_vr->putString(UID_LittleEndianExplicitTransferSyntax);
    ASSERT_TRUE(meta.insert(wrong_vr).good());
    meta.putAndInsertString(DCM_SourceApplicationEntityTitle, "WARD7_CT");
    ASSERT_TRUE(ff.saveFile(in.c_str(), EXS_LittleEndianExplicit, EET_UndefinedLength,
                            EGL_withoutGL, EPD_noChange, 0, 0, EWM_dontUpdateMeta)
                    .good());
  }
  auto outcome = Run(in);
  ASSERT_TRUE(outcome.ok()) << outcome.status().message();
  ASSERT_FALSE(outcome->refused) << outcome->refusal;
  auto out = Load(Out(in));
  DcmMetaInfo& meta = *out->file.getMetaInfo();
  DcmElement* syntax = nullptr;
  ASSERT_TRUE(meta.findAndGetElement(DCM_TransferSyntaxUID, syntax).good());
  EXPECT_EQ(syntax->getVR(), EVR_UI);
  EXPECT_EQ(Get(meta, DCM_SourceApplicationEntityTitle), "<absent>");
  EXPECT_EQ(Get(out->ds(), DCM_SourceApplicationEntityTitle), "<absent>");
  EXPECT_EQ(Get(meta, DCM_MediaStorageSOPInstanceUID), outcome->sop_instance_uid);
  EXPECT_EQ(Get(out->ds(), DCM_PatientIdentityRemoved), "YES");
}

class ReidentifierTest : public DeidentifierTest {
 protected:
  // De-identifies the original CT and keeps the crosswalk in memory.
  void SetUp() override {
    original_ = Ct("original.dcm");
    auto outcome = Run(original_);
    ASSERT_TRUE(outcome.ok());
    for (const auto& p : outcome->pseudonyms) crosswalk_[p.pseudonym] = p.original;
    pseudo_sop_ = outcome->sop_instance_uid;
  }
  // A result made on the pseudonymised study, referencing `referenced`.
  fs::path MakeResult(const std::string& referenced) {
    fs::path result = dir_.path() / "result.dcm";
    fs::copy_file(Out(original_), result, fs::copy_options::overwrite_existing);
    Edit(result, [&](DcmDataset& ds) {
      ds.putAndInsertString(DCM_SOPInstanceUID, "2.25.1234567890");
      ds.putAndInsertString(DCM_SeriesInstanceUID, "2.25.1234567891");
      DcmItem* ref = nullptr;
      ASSERT_TRUE(ds.findOrCreateSequenceItem(DCM_ReferencedImageSequence, ref, -2).good());
      ref->putAndInsertString(DCM_ReferencedSOPClassUID, UID_CTImageStorage);
      ref->putAndInsertString(DCM_ReferencedSOPInstanceUID, referenced.c_str());
    });
    return result;
  }
  Reidentifier Make() {
    return Reidentifier([this](const std::vector<std::string>& wanted) {
      std::map<std::string, std::string> found;
      for (const auto& w : wanted)
        if (auto it = crosswalk_.find(w); it != crosswalk_.end()) found.insert(*it);
      return Result<std::map<std::string, std::string>>(found);
    });
  }

  fs::path original_;
  std::string pseudo_sop_;
  std::map<std::string, std::string> crosswalk_;
};

TEST_F(ReidentifierTest, RestoresStudyReferencesAndPatient) {
  fs::path result = MakeResult(pseudo_sop_);
  fs::path mapped = dir_.path() / "mapped.dcm";
  auto outcome = Make().ReidentifyFile(result, mapped, original_);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_EQ(outcome->study_uid, CtSpec{}.study_uid);
  auto out = Load(mapped);
  DcmDataset& ds = out->ds();
  EXPECT_EQ(Get(ds, DCM_StudyInstanceUID), CtSpec{}.study_uid);
  EXPECT_EQ(Get(ds, DCM_SOPInstanceUID), "2.25.1234567890");  // the tool's own object
  EXPECT_EQ(Get(ds, DCM_PatientName), "TEST^PATIENT");
  EXPECT_EQ(Get(ds, DCM_PatientID), "PID0001");
  EXPECT_EQ(Get(ds, DCM_AccessionNumber), "ACC0001");
  EXPECT_EQ(Get(ds, DCM_PatientIdentityRemoved), "<absent>");
  DcmItem* ref = nullptr;
  ASSERT_TRUE(ds.findAndGetSequenceItem(DCM_ReferencedImageSequence, ref, 0).good());
  EXPECT_EQ(Get(*ref, DCM_ReferencedSOPInstanceUID), CtSpec{}.sop_instance_uid);
  auto study = Make().OriginalStudyOf(result);
  ASSERT_TRUE(study.ok());
  EXPECT_EQ(study->value_or(""), CtSpec{}.study_uid);
}

TEST_F(ReidentifierTest, RefusesReferencesToPseudonymsNeverIssued) {
  Pseudonymiser other(TestKey(9));
  fs::path result = MakeResult(other.Uid("1.2.3.4.5.6.7"));
  auto outcome = Make().ReidentifyFile(result, dir_.path() / "mapped.dcm", original_);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(outcome.status().message().find("ReferencedSOPInstanceUID"), std::string::npos);
}

TEST_F(ReidentifierTest, RefusesResultsForAStudyNeverSent) {
  crosswalk_.clear();
  fs::path result = MakeResult(pseudo_sop_);
  auto outcome = Make().ReidentifyFile(result, dir_.path() / "mapped.dcm", original_);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace conduit
