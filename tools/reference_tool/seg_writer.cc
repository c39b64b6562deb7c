#include "reference_tool/seg_writer.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmfg/fgderimg.h>
#include <dcmtk/dcmfg/fgfracon.h>
#include <dcmtk/dcmfg/fgpixmsr.h>
#include <dcmtk/dcmfg/fgplanor.h>
#include <dcmtk/dcmfg/fgplanpo.h>
#include <dcmtk/dcmfg/fgseg.h>
#include <dcmtk/dcmiod/cielabutil.h>
#include <dcmtk/dcmiod/iodreferences.h>
#include <dcmtk/dcmseg/segdoc.h>
#include <dcmtk/dcmseg/segment.h>

#include <vector>

#include "common/dicom_values.h"

namespace conduit::tools {
namespace {

Status Check(const OFCondition& cond, const char* what) {
  if (cond.good()) return Status::Ok();
  return Internal(std::string("segmentation: ") + what + ": " + cond.text());
}

struct SegmentSpec {
  const char* label;
  const char* description;
  const char* type_code;
  const char* type_meaning;
  double r, g, b;  // recommended display colour, 0..1
};

const SegmentSpec kSegments[] = {
    {"Body", "NON-CLINICAL body (threshold, enclosed by skin)", "38266002", "Entire body", 0.3, 0.5,
     0.9},
    {"Lung", "NON-CLINICAL lung (air enclosed by the body)", "39607008", "Lung", 0.9, 0.4, 0.4},
};

Status AddSegment(DcmSegmentation& seg, const SegmentSpec& spec, const std::string& tracking_uid,
                  uint16_t expected_number) {
  DcmSegment* segment = nullptr;
  CodeSequenceMacro category("123037004", "SCT", "Anatomical Structure");
  CodeSequenceMacro type(spec.type_code, "SCT", spec.type_meaning);
  RETURN_IF_ERROR(Check(DcmSegment::create(segment, spec.label, category, type,
                                           DcmSegTypes::SAT_AUTOMATIC, kAlgorithmName),
                        "create segment"));
  std::unique_ptr<DcmSegment> owned(segment);
  RETURN_IF_ERROR(Check(segment->setSegmentDescription(spec.description), "segment description"));
  RETURN_IF_ERROR(Check(segment->setTrackingID(spec.label), "tracking id"));
  RETURN_IF_ERROR(Check(segment->setTrackingUID(tracking_uid), "tracking uid"));
  AlgorithmIdentificationMacro algorithm;
  RETURN_IF_ERROR(
      Check(algorithm.getAlgorithmFamilyCode().set("123105", "DCM", "Histogram Analysis"),
            "algorithm family"));
  RETURN_IF_ERROR(Check(algorithm.setAlgorithmName(kAlgorithmName), "algorithm name"));
  RETURN_IF_ERROR(Check(algorithm.setAlgorithmVersion(kToolVersion), "algorithm version"));
  RETURN_IF_ERROR(Check(segment->setSegmentationAlgorithmIdentification(algorithm),
                        "algorithm identification"));
  double l = 0, a = 0, b = 0;
  IODCIELabUtil::rgb2DicomLab(l, a, b, spec.r, spec.g, spec.b);
  RETURN_IF_ERROR(Check(segment->setRecommendedDisplayCIELabValue(
                            static_cast<Uint16>(l), static_cast<Uint16>(a), static_cast<Uint16>(b)),
                        "display colour"));
  Uint16 number = 0;
  RETURN_IF_ERROR(Check(seg.addSegment(segment, number), "add segment"));
  owned.release();  // the segmentation owns it now
  if (number != expected_number) return Internal("segmentation: unexpected segment number");
  return Status::Ok();
}

}  // namespace

SegmentationBuilder::SegmentationBuilder(const SourceSeries& source, const ResultUids& uids,
                                         std::unique_ptr<DcmSegmentation> seg)
    : source_(source), seg_(std::move(seg)) {}

SegmentationBuilder::~SegmentationBuilder() = default;

Result<std::unique_ptr<SegmentationBuilder>> SegmentationBuilder::Create(const SourceSeries& source,
                                                                         const ResultUids& uids) {
  IODGeneralEquipmentModule::EquipmentInfo equipment(kManufacturer, kModelName, "0", kToolVersion);
  ContentIdentificationMacro content("1", "NONCLINICAL_SEG", "NON-CLINICAL reference segmentation",
                                     kCreatorName);
  DcmSegmentation* raw = nullptr;
  RETURN_IF_ERROR(Check(DcmSegmentation::createBinarySegmentation(
                            raw, static_cast<Uint16>(source.rows), static_cast<Uint16>(source.cols),
                            equipment, content),
                        "create"));
  std::unique_ptr<DcmSegmentation> seg(raw);
  RETURN_IF_ERROR(
      Check(seg->importFromSourceImage(*source.header->getDataset()), "import patient and study"));
  RETURN_IF_ERROR(Check(seg->getSeries().setSeriesInstanceUID(uids.seg_series), "series uid"));
  RETURN_IF_ERROR(Check(seg->getSOPCommon().setSOPInstanceUID(uids.seg_instance), "sop uid"));
  RETURN_IF_ERROR(
      Check(seg->getSeries().setSeriesNumber(std::to_string(kSegSeriesNumber)), "series number"));
  RETURN_IF_ERROR(
      Check(seg->getSeries().setSeriesDescription("NON-CLINICAL reference segmentation"),
            "series description"));
  RETURN_IF_ERROR(
      Check(seg->getFrameOfReference().setFrameOfReferenceUID(source.frame_of_reference_uid),
            "frame of reference"));

  RETURN_IF_ERROR(AddSegment(*seg, kSegments[0], uids.body_tracking, kBodySegment));
  RETURN_IF_ERROR(AddSegment(*seg, kSegments[1], uids.lung_tracking, kLungSegment));

  FGPixelMeasures measures;
  RETURN_IF_ERROR(Check(measures.setPixelSpacing((DecimalString(source.pixel_spacing[0]) + "\\" +
                                                  DecimalString(source.pixel_spacing[1]))
                                                     .c_str()),
                        "pixel spacing"));
  RETURN_IF_ERROR(
      Check(measures.setSliceThickness(DecimalString(source.slice_thickness_mm).c_str()),
            "slice thickness"));
  RETURN_IF_ERROR(
      Check(measures.setSpacingBetweenSlices(DecimalString(source.slice_spacing_mm).c_str()),
            "spacing between slices"));
  RETURN_IF_ERROR(Check(seg->addForAllFrames(measures), "pixel measures"));
  FGPlaneOrientationPatient orientation;
  const auto& o = source.orientation;
  RETURN_IF_ERROR(Check(orientation.setImageOrientationPatient(
                            DecimalString(o[0]), DecimalString(o[1]), DecimalString(o[2]),
                            DecimalString(o[3]), DecimalString(o[4]), DecimalString(o[5])),
                        "orientation"));
  RETURN_IF_ERROR(Check(seg->addForAllFrames(orientation), "plane orientation"));

  IODMultiframeDimensionModule& dims = seg->getDimensions();
  RETURN_IF_ERROR(
      Check(dims.addDimensionIndex(DCM_ReferencedSegmentNumber, uids.dimension_organization,
                                   DCM_SegmentIdentificationSequence, "ReferencedSegmentNumber"),
            "segment dimension"));
  RETURN_IF_ERROR(
      Check(dims.addDimensionIndex(DCM_ImagePositionPatient, uids.dimension_organization,
                                   DCM_PlanePositionSequence, "ImagePositionPatient"),
            "position dimension"));

  OFString patient_id;
  source.header->getDataset()->findAndGetOFString(DCM_PatientID, patient_id);
  IODReferences references;
  for (const SourceSlice& slice : source.slices) {
    auto* ref = new IODImageReference(patient_id, source.study_uid, source.series_uid,
                                      slice.sop_instance_uid, slice.sop_class_uid);
    if (!references.add(ref)) {
      delete ref;
      return Internal("segmentation: reference to a source image refused");
    }
  }
  seg->getCommonInstanceReference().addReferences(references, source.study_uid);
  return std::unique_ptr<SegmentationBuilder>(
      new SegmentationBuilder(source, uids, std::move(seg)));
}

Status SegmentationBuilder::AddSlice(size_t index, std::span<const uint8_t> labels) {
  if (index != next_slice_ || index >= source_.slices.size()) {
    return Internal("segmentation: slices must be added once each, in order");
  }
  const size_t n = static_cast<size_t>(source_.rows) * source_.cols;
  if (labels.size() != n) return Internal("segmentation: label slice has the wrong size");
  const SourceSlice& slice = source_.slices[index];

  FGPlanePosPatient position;
  RETURN_IF_ERROR(Check(position.setImagePositionPatient(DecimalString(slice.position[0]),
                                                         DecimalString(slice.position[1]),
                                                         DecimalString(slice.position[2])),
                        "plane position"));
  OFVector<ImageSOPInstanceReferenceMacro> sources(1);
  RETURN_IF_ERROR(Check(sources[0].setReferencedSOPClassUID(slice.sop_class_uid), "source class"));
  RETURN_IF_ERROR(
      Check(sources[0].setReferencedSOPInstanceUID(slice.sop_instance_uid), "source instance"));
  std::unique_ptr<FGDerivationImage> derivation(DcmSegmentation::createDerivationImageFG(
      sources, "NON-CLINICAL threshold segmentation of the source image"));
  if (!derivation) return Internal("segmentation: derivation image group refused");

  std::vector<Uint8> frame(n);
  for (uint16_t segment : {kBodySegment, kLungSegment}) {
    uint8_t bit = segment == kBodySegment ? 1 : 2;
    for (size_t i = 0; i < n; ++i) frame[i] = (labels[i] & bit) != 0 ? 1 : 0;
    FGFrameContent content;
    RETURN_IF_ERROR(Check(content.setDimensionIndexValues(segment, 0), "dimension index"));
    RETURN_IF_ERROR(Check(content.setDimensionIndexValues(static_cast<Uint32>(index + 1), 1),
                          "dimension index"));
    FGSegmentation segmentation;
    RETURN_IF_ERROR(Check(segmentation.setReferencedSegmentNumber(segment), "segment number"));
    OFVector<FGBase*> groups;
    groups.push_back(&position);
    groups.push_back(derivation.get());
    groups.push_back(&content);
    groups.push_back(&segmentation);
    RETURN_IF_ERROR(Check(seg_->addFrame(frame.data(), segment, groups), "add frame"));
  }
  ++next_slice_;
  return Status::Ok();
}

Status SegmentationBuilder::Write(const std::filesystem::path& path) {
  if (next_slice_ != source_.slices.size()) return Internal("segmentation: slices missing");
  DcmFileFormat file;
  RETURN_IF_ERROR(Check(seg_->writeDataset(*file.getDataset()), "write"));
  RETURN_IF_ERROR(CopyPatientAndStudy(*source_.header->getDataset(), *file.getDataset()));
  return SaveResult(file, path);
}

}  // namespace conduit::tools
