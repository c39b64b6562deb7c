// ResultValidator on objects of every IHE AIR kind built with DCMTK (valid, and invalid in
// each way it checks), and on the reference tool's real outputs when its binaries are built.
#include "results/result_validator.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <functional>

#include "dicom/instance_meta.h"
#include "results/result_test_objects.h"
#include "testing/testing.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using result_test::Inputs;
using result_test::kUnknownSop;
using result_test::SrOptions;

class ResultValidatorTest : public ::testing::Test {
 protected:
  Result<ValidatedResult> Validate(DcmFileFormat* file) {
    EXPECT_NE(file, nullptr) << "the fixture could not be built";
    if (file == nullptr) return Internal("no fixture");
    const fs::path path = tmp_.path() / ("result-" + std::to_string(++count_) + ".dcm");
    Status saved = result_test::Save(*file, path);
    EXPECT_TRUE(saved.ok()) << saved.ToString();
    return validator_.Validate(path, in_.Context());
  }

  testing::TempDir tmp_;
  Inputs in_;
  ResultValidator validator_;
  int count_ = 0;
};

const FindingRecord* FindKind(const std::vector<FindingRecord>& findings, const std::string& kind) {
  for (const FindingRecord& f : findings) {
    if (f.kind == kind) return &f;
  }
  return nullptr;
}

TEST_F(ResultValidatorTest, MeasurementReportYieldsFindingMeasurementScoreAndTriage) {
  auto result = Validate(result_test::MeasurementReport(in_).get());
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->kind, "sr");
  EXPECT_TRUE(result->warnings.empty());
  ASSERT_EQ(result->findings.size(), 4u);

  const FindingRecord* finding = FindKind(result->findings, "finding");
  ASSERT_NE(finding, nullptr);
  EXPECT_EQ(finding->concept_value, "121071");
  EXPECT_EQ(finding->value_scheme, "SCT");
  EXPECT_EQ(finding->value_code, "27925004");
  EXPECT_EQ(finding->value_meaning, "Nodule");
  EXPECT_EQ(finding->tracking_id, "lesion 1");
  EXPECT_EQ(finding->referenced_sop_uid, in_.sops[0]) << "the group's image (under a SCOORD)";
  EXPECT_EQ(finding->result_sop_uid.str(), "1.2.826.0.1.3680043.9.7.500.91.1");

  const FindingRecord* measurement = FindKind(result->findings, "measurement");
  ASSERT_NE(measurement, nullptr);
  EXPECT_EQ(measurement->concept_meaning, "Long Axis");
  ASSERT_TRUE(measurement->numeric_value.has_value());
  EXPECT_DOUBLE_EQ(*measurement->numeric_value, 12.5);
  EXPECT_EQ(measurement->units, "mm");
  EXPECT_EQ(measurement->tracking_id, "lesion 1");
  EXPECT_EQ(measurement->referenced_sop_uid, in_.sops[0]);

  const FindingRecord* score = FindKind(result->findings, "score");
  ASSERT_NE(score, nullptr);
  EXPECT_EQ(score->concept_meaning, "Malignancy probability");
  EXPECT_DOUBLE_EQ(score->numeric_value.value_or(0), 0.82);
  EXPECT_EQ(score->units, "1");

  const FindingRecord* triage = FindKind(result->findings, "triage");
  ASSERT_NE(triage, nullptr);
  EXPECT_EQ(triage->value_code, "URGENT");
  EXPECT_EQ(triage->tracking_id, "") << "outside any measurement group";
}

TEST_F(ResultValidatorTest, SegmentationYieldsOneFindingPerSegment) {
  auto result = Validate(result_test::Segmentation(in_).get());
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->kind, "seg");
  ASSERT_EQ(result->findings.size(), 2u);
  EXPECT_EQ(result->findings[0].kind, "finding");
  EXPECT_EQ(result->findings[0].concept_value, "123037004");
  EXPECT_EQ(result->findings[0].value_code, "39607008");
  EXPECT_EQ(result->findings[0].value_meaning, "Lung");
  EXPECT_EQ(result->findings[0].tracking_id, "lung");
  EXPECT_EQ(result->findings[0].referenced_sop_uid, in_.sops[0]);
  EXPECT_EQ(result->findings[1].value_meaning, "Liver");
}

TEST_F(ResultValidatorTest, PresentationStateIsValidWithoutFindings) {
  auto result = Validate(result_test::PresentationState(in_).get());
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->kind, "gsps");
  EXPECT_TRUE(result->findings.empty());
}

TEST_F(ResultValidatorTest, KeyObjectSelectionYieldsItsTitleAsAFlag) {
  auto result = Validate(result_test::KeyObjects(in_).get());
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->kind, "kos");
  ASSERT_EQ(result->findings.size(), 1u);
  EXPECT_EQ(result->findings[0].kind, "flag");
  EXPECT_EQ(result->findings[0].concept_value, "113000");
  EXPECT_EQ(result->findings[0].concept_meaning, "Of Interest");
  EXPECT_EQ(result->findings[0].referenced_sop_uid, in_.sops[0]);
}

TEST_F(ResultValidatorTest, SecondaryCaptureWithASourceIsValidWithoutWarning) {
  auto result = Validate(result_test::SecondaryCapture(in_, in_.sops[1]).get());
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->kind, "sc");
  EXPECT_TRUE(result->warnings.empty());
}

TEST_F(ResultValidatorTest, SecondaryCaptureWithoutSourceIsAcceptedWithAWarning) {
  auto result = Validate(result_test::SecondaryCapture(in_, "").get());
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->warnings.size(), 1u);
  EXPECT_NE(result->warnings[0].find("names no source image"), std::string::npos);
}

TEST_F(ResultValidatorTest, ParametricMapDerivedFromAnInputIsValid) {
  auto result = Validate(result_test::ParametricMap(in_).get());
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->kind, "parametric_map");
  EXPECT_TRUE(result->warnings.empty());
}

TEST_F(ResultValidatorTest, ResultReferringToAnotherResultOfTheToolIsValid) {
  // An SR naming the tool's SEG (not received yet) in its evidence, as the reference tool does.
  auto file = result_test::MeasurementReport(in_);
  DcmItem* study = nullptr;
  ASSERT_TRUE(
      file->getDataset()
          ->findOrCreateSequenceItem(DCM_CurrentRequestedProcedureEvidenceSequence, study, 0)
          .good());
  DcmItem* series = nullptr;
  study->findOrCreateSequenceItem(DCM_ReferencedSeriesSequence, series, -2);
  series->putAndInsertString(DCM_SeriesInstanceUID, "1.2.826.0.1.3680043.9.7.500.92");
  DcmItem* sop = nullptr;
  series->findOrCreateSequenceItem(DCM_ReferencedSOPSequence, sop, -2);
  sop->putAndInsertString(DCM_ReferencedSOPClassUID, UID_SegmentationStorage);
  sop->putAndInsertString(DCM_ReferencedSOPInstanceUID, "1.2.826.0.1.3680043.9.7.500.92.1");
  auto result = Validate(file.get());
  EXPECT_TRUE(result.ok()) << result.status().ToString();
}

TEST_F(ResultValidatorTest, MissingFileIsNotFoundAndNonDicomIsInvalid) {
  auto missing = validator_.Validate(tmp_.path() / "absent.dcm", in_.Context());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  const fs::path text = tmp_.path() / "text.dcm";
  std::ofstream(text) << "not dicom at all";
  auto invalid = validator_.Validate(text, in_.Context());
  EXPECT_EQ(invalid.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(invalid.status().message().find("not parsable DICOM"), std::string::npos);
}

// One way to be invalid: how to build it, and what the reason must say.
struct InvalidCase {
  const char* name;
  std::function<std::unique_ptr<DcmFileFormat>(const Inputs&)> build;
  const char* reason;
};

std::unique_ptr<DcmFileFormat> Edit(std::unique_ptr<DcmFileFormat> file,
                                    const std::function<void(DcmDataset&)>& edit) {
  if (file != nullptr) edit(*file->getDataset());
  return file;
}

std::unique_ptr<DcmFileFormat> Sr(const Inputs& in, const std::function<void(SrOptions&)>& set) {
  SrOptions options;
  set(options);
  return result_test::MeasurementReport(in, options);
}

DcmItem* Nested(DcmItem& ds, std::initializer_list<DcmTagKey> path) {
  DcmItem* item = &ds;
  for (const DcmTagKey& tag : path) {
    DcmItem* next = nullptr;
    if (item->findAndGetSequenceItem(tag, next, 0).bad()) return nullptr;
    item = next;
  }
  return item;
}

void SetNested(DcmDataset& ds, std::initializer_list<DcmTagKey> path, const DcmTagKey& tag,
               const char* value) {
  DcmItem* item = Nested(ds, path);
  ASSERT_NE(item, nullptr);
  item->putAndInsertString(tag, value);
}

const InvalidCase kInvalidCases[] = {
    {"NotAnAiResultKind",
     [](const Inputs& in) {
       return Edit(result_test::SecondaryCapture(in, in.sops[0]), [](DcmDataset& ds) {
         ds.putAndInsertString(DCM_SOPClassUID, result_test::kCtImageStorage);
       });
     },
     "SOP class 1.2.840.10008.5.1.4.1.1.2 is not an AI result kind"},
    {"AnotherStudy",
     [](const Inputs& in) {
       return Edit(result_test::Segmentation(in), [](DcmDataset& ds) {
         ds.putAndInsertString(DCM_StudyInstanceUID, "1.2.826.0.1.3680043.9.7.501");
       });
     },
     "StudyInstanceUID is not the job's study"},
    {"SopInstanceOfAnInput",
     [](const Inputs& in) {
       return Edit(result_test::SecondaryCapture(in, ""), [&](DcmDataset& ds) {
         ds.putAndInsertString(DCM_SOPInstanceUID, in.sops[2].c_str());
       });
     },
     "SOPInstanceUID is one of the job's input instances"},
    {"InAnInputSeries",
     [](const Inputs& in) {
       return Edit(result_test::PresentationState(in), [&](DcmDataset& ds) {
         ds.putAndInsertString(DCM_SeriesInstanceUID, in.series.c_str());
       });
     },
     "SeriesInstanceUID is one of the job's input series"},
    {"NoSeries",
     [](const Inputs& in) {
       return Edit(result_test::ParametricMap(in),
                   [](DcmDataset& ds) { ds.findAndDeleteElement(DCM_SeriesInstanceUID); });
     },
     "SeriesInstanceUID missing"},
    {"SrWithImageModality",
     [](const Inputs& in) {
       return Edit(result_test::MeasurementReport(in),
                   [](DcmDataset& ds) { ds.putAndInsertString(DCM_Modality, "OT"); });
     },
     "Modality is not SR"},
    {"ScWithSegModality",
     [](const Inputs& in) {
       return Edit(result_test::SecondaryCapture(in, ""),
                   [](DcmDataset& ds) { ds.putAndInsertString(DCM_Modality, "SEG"); });
     },
     "Modality SEG is not one of an image"},
    {"SrNotAnSrDocument",
     [](const Inputs& in) {
       return Edit(result_test::MeasurementReport(in),
                   [](DcmDataset& ds) { ds.putAndInsertString(DCM_ValueType, "NONSENSE"); });
     },
     "not a valid SR document"},
    {"SrRootNotAMeasurementReport",
     [](const Inputs& in) { return Sr(in, [](SrOptions& o) { o.root_code = "126001"; }); },
     "not an Imaging Measurement Report (126000, DCM)"},
    {"SrWithoutContent",
     [](const Inputs& in) {
       return Edit(result_test::MeasurementReport(in),
                   [](DcmDataset& ds) { ds.findAndDeleteElement(DCM_ContentSequence); });
     },
     "the report has no content items"},
    {"SrOtherTemplate",
     [](const Inputs& in) { return Sr(in, [](SrOptions& o) { o.template_id = "2000"; }); },
     "names TID 2000 (DCMR), not TID 1500"},
    {"SrGroupWithoutTrackingIdentifier",
     [](const Inputs& in) { return Sr(in, [](SrOptions& o) { o.tracking_id = false; }); },
     "Measurement Group without Tracking Identifier (112039, DCM)"},
    {"SrGroupWithoutTrackingUid",
     [](const Inputs& in) { return Sr(in, [](SrOptions& o) { o.tracking_uid = false; }); },
     "Measurement Group without Tracking Unique Identifier (112040, DCM)"},
    {"SrUnitsNotUcum",
     [](const Inputs& in) { return Sr(in, [](SrOptions& o) { o.units_scheme = "99LOCAL"; }); },
     "Measurement Units are not UCUM"},
    {"SrImageNotAnInput",
     [](const Inputs& in) { return Sr(in, [](SrOptions& o) { o.image_sop = kUnknownSop; }); },
     "content item 1.1.1.4.1.1 ReferencedSOPSequence: Referenced SOP Instance UID is not one of "
     "the job's input instances"},
    {"SrEvidenceNotAnInput",
     [](const Inputs& in) { return Sr(in, [](SrOptions& o) { o.evidence_sop = kUnknownSop; }); },
     "CurrentRequestedProcedureEvidenceSequence[1] ReferencedSeriesSequence[1] "
     "ReferencedSOPSequence[1]: Referenced SOP Instance UID is not one of the job's input"},
    {"SrEvidenceOfAnotherStudy",
     [](const Inputs& in) {
       return Edit(result_test::MeasurementReport(in), [](DcmDataset& ds) {
         SetNested(ds, {DCM_CurrentRequestedProcedureEvidenceSequence}, DCM_StudyInstanceUID,
                   "1.2.826.0.1.3680043.9.7.501");
       });
     },
     "StudyInstanceUID is not the job's study"},
    {"SegWithoutSegments",
     [](const Inputs& in) {
       return Edit(result_test::Segmentation(in),
                   [](DcmDataset& ds) { ds.findAndDeleteElement(DCM_SegmentSequence); });
     },
     "SEG: SegmentSequence missing or empty"},
    {"SegSegmentWithoutType",
     [](const Inputs& in) {
       return Edit(result_test::Segmentation(in), [](DcmDataset& ds) {
         Nested(ds, {DCM_SegmentSequence})
             ->findAndDeleteElement(DCM_SegmentedPropertyTypeCodeSequence);
       });
     },
     "SegmentSequence[1]: SegmentedPropertyTypeCodeSequence missing or incomplete"},
    {"SegDerivedFromAnUnknownImage",
     [](const Inputs& in) {
       return Edit(result_test::Segmentation(in), [](DcmDataset& ds) {
         SetNested(ds,
                   {DCM_PerFrameFunctionalGroupsSequence, DCM_DerivationImageSequence,
                    DCM_SourceImageSequence},
                   DCM_ReferencedSOPInstanceUID, kUnknownSop);
       });
     },
     "PerFrameFunctionalGroupsSequence[1] DerivationImageSequence[1] SourceImageSequence[1]: "
     "Referenced SOP Instance UID is not one of the job's input instances"},
    {"SegReferenceWithWrongClass",
     [](const Inputs& in) {
       return Edit(result_test::Segmentation(in), [](DcmDataset& ds) {
         SetNested(ds, {DCM_ReferencedSeriesSequence, DCM_ReferencedInstanceSequence},
                   DCM_ReferencedSOPClassUID, UID_MRImageStorage);
       });
     },
     "Referenced SOP Class UID differs from the input instance's"},
    {"SegReferencesNothing",
     [](const Inputs& in) {
       return Edit(result_test::Segmentation(in), [](DcmDataset& ds) {
         ds.findAndDeleteElement(DCM_ReferencedSeriesSequence);
         DcmSequenceOfItems* frames = nullptr;
         ds.findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, frames);
         for (unsigned long i = 0; frames != nullptr && i < frames->card(); ++i) {
           frames->getItem(i)->findAndDeleteElement(DCM_DerivationImageSequence);
         }
       });
     },
     "references no input image"},
    {"SegPixelDataShort",
     [](const Inputs& in) {
       return Edit(result_test::Segmentation(in), [](DcmDataset& ds) {
         ds.putAndInsertString(DCM_NumberOfFrames, "600");
         DcmSequenceOfItems* frames = nullptr;
         ds.findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, frames);
         while (frames != nullptr && frames->card() < 600) {
           frames->append(new DcmItem(*frames->getItem(0)));
         }
       });
     },
     "PixelData is shorter than Rows x Columns x NumberOfFrames"},
    {"SegFrameCountMismatch",
     [](const Inputs& in) {
       return Edit(result_test::Segmentation(in),
                   [](DcmDataset& ds) { ds.putAndInsertString(DCM_NumberOfFrames, "5"); });
     },
     "PerFrameFunctionalGroupsSequence does not have NumberOfFrames items"},
    {"GspsWithoutReferencedSeries",
     [](const Inputs& in) {
       return Edit(result_test::PresentationState(in),
                   [](DcmDataset& ds) { ds.findAndDeleteElement(DCM_ReferencedSeriesSequence); });
     },
     "GSPS: ReferencedSeriesSequence missing or empty"},
    {"GspsOnAnUnknownImage",
     [](const Inputs& in) {
       return Edit(result_test::PresentationState(in), [](DcmDataset& ds) {
         SetNested(ds, {DCM_GraphicAnnotationSequence, DCM_ReferencedImageSequence},
                   DCM_ReferencedSOPInstanceUID, kUnknownSop);
       });
     },
     "GraphicAnnotationSequence[1] ReferencedImageSequence[1]: Referenced SOP Instance UID is "
     "not one of the job's input instances"},
    {"KosWithoutEvidence",
     [](const Inputs& in) {
       return Edit(result_test::KeyObjects(in), [](DcmDataset& ds) {
         ds.findAndDeleteElement(DCM_CurrentRequestedProcedureEvidenceSequence);
       });
     },
     "KOS: CurrentRequestedProcedureEvidenceSequence missing or empty"},
    {"KosWithoutTitle",
     [](const Inputs& in) {
       return Edit(result_test::KeyObjects(in), [](DcmDataset& ds) {
         Nested(ds, {DCM_ConceptNameCodeSequence})->findAndDeleteElement(DCM_CodeMeaning);
       });
     },
     "KOS: "},
    {"KosSelectingAnUnknownImage",
     [](const Inputs& in) {
       return Edit(result_test::KeyObjects(in), [](DcmDataset& ds) {
         SetNested(ds, {DCM_ContentSequence, DCM_ReferencedSOPSequence},
                   DCM_ReferencedSOPInstanceUID, kUnknownSop);
       });
     },
     "content item 1.1 ReferencedSOPSequence: Referenced SOP Instance UID is not one of"},
    {"ScFromAnUnknownImage",
     [](const Inputs&) { return result_test::SecondaryCapture(Inputs{}, kUnknownSop); },
     "secondary capture: SourceImageSequence[1]: Referenced SOP Instance UID is not one of"},
    {"ParametricMapFromAnUnknownImage",
     [](const Inputs& in) {
       return Edit(result_test::ParametricMap(in), [](DcmDataset& ds) {
         SetNested(ds,
                   {DCM_SharedFunctionalGroupsSequence, DCM_DerivationImageSequence,
                    DCM_SourceImageSequence},
                   DCM_ReferencedSOPInstanceUID, kUnknownSop);
       });
     },
     "parametric map: SharedFunctionalGroupsSequence[1] DerivationImageSequence[1] "
     "SourceImageSequence[1]: Referenced SOP Instance UID is not one of"},
};

TEST_F(ResultValidatorTest, EachInvalidObjectIsRefusedWithAPreciseReasonAndNoIdentifiers) {
  for (const InvalidCase& c : kInvalidCases) {
    SCOPED_TRACE(c.name);
    std::unique_ptr<DcmFileFormat> file = c.build(in_);
    auto result = Validate(file.get());
    ASSERT_FALSE(result.ok()) << "accepted";
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument) << result.status().ToString();
    const std::string& why = result.status().message();
    EXPECT_NE(why.find(c.reason), std::string::npos) << why;
    // Reasons name attributes, never their values.
    for (const std::string& value :
         {in_.study, in_.series, in_.sops[0], in_.sops[2], std::string(kUnknownSop),
          std::string("TEST0002"), std::string("TEST^RESULT"),
          std::string("1.2.826.0.1.3680043.9.7.501")}) {
      EXPECT_EQ(why.find(value), std::string::npos) << why;
    }
  }
}

// The reference tool's real SEG, SR and secondary capture, on a generated CT study.
TEST_F(ResultValidatorTest, ReferenceToolOutputsAreValid) {
  const fs::path bin = CONDUIT_BINARY_DIR;
  const fs::path make_study = bin / "conduit-make-study";
  const fs::path tool = bin / "conduit-reference-tool";
  if (!fs::exists(make_study) || !fs::exists(tool)) {
    GTEST_SKIP() << "build conduit-make-study and conduit-reference-tool to run this test";
  }
  const fs::path study = tmp_.path() / "ct";
  const fs::path out = tmp_.path() / "out";
  const std::string make = make_study.string() + " --out '" + study.string() +
                           "' --modality CT --slices 6 --rows 64 --cols 64 --seed 3 >/dev/null";
  ASSERT_EQ(std::system(make.c_str()), 0) << make;
  const std::string run = tool.string() + " --input '" + study.string() + "' --output '" +
                          out.string() + "' >/dev/null 2>&1";
  ASSERT_EQ(std::system(run.c_str()), 0) << run;

  MetaScan scan = ScanInstanceMetas(study);
  ASSERT_EQ(scan.instances.size(), 6u);
  ResultContext context;
  context.study_uid = scan.instances.front().second.study_uid;
  for (const auto& [path, meta] : scan.instances) {
    context.inputs.emplace(meta.sop_instance_uid, ResultInput{meta.sop_class_uid, meta.series_uid});
  }

  auto seg = validator_.Validate(out / "seg.dcm", context);
  ASSERT_TRUE(seg.ok()) << seg.status().ToString();
  EXPECT_EQ(seg->kind, "seg");
  ASSERT_EQ(seg->findings.size(), 2u);
  EXPECT_EQ(seg->findings[0].value_meaning, "Entire body");
  EXPECT_EQ(seg->findings[1].value_meaning, "Lung");
  EXPECT_EQ(seg->findings[1].tracking_id, "Lung");

  auto sr = validator_.Validate(out / "sr.dcm", context);
  ASSERT_TRUE(sr.ok()) << sr.status().ToString();
  EXPECT_EQ(sr->kind, "sr");
  int volumes = 0;
  bool lung_finding = false;
  for (const FindingRecord& f : sr->findings) {
    if (f.kind == "measurement" && f.units == "ml") ++volumes;
    if (f.kind == "finding" && f.value_meaning == "Lung") {
      lung_finding = true;
      EXPECT_EQ(f.tracking_id, "NON-CLINICAL Lung");
      EXPECT_FALSE(f.referenced_sop_uid.empty()) << "the SEG the group refers to";
    }
  }
  EXPECT_EQ(volumes, 2) << "a volume per measurement group";
  EXPECT_TRUE(lung_finding);

  auto sc = validator_.Validate(out / "sc.dcm", context);
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  EXPECT_EQ(sc->kind, "sc");
  EXPECT_TRUE(sc->warnings.empty()) << "it names its source slice";

  // The same outputs judged against another job's inputs: references do not resolve.
  Inputs other;
  auto elsewhere = validator_.Validate(out / "seg.dcm", other.Context());
  EXPECT_EQ(elsewhere.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace conduit
