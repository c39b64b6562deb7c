#include "results/result_test_objects.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmsr/dsrdoc.h>

namespace conduit::result_test {
namespace {

constexpr const char* kSrSeries = "1.2.826.0.1.3680043.9.7.500.91";
constexpr const char* kSegSeries = "1.2.826.0.1.3680043.9.7.500.92";
constexpr const char* kPrSeries = "1.2.826.0.1.3680043.9.7.500.93";
constexpr const char* kKoSeries = "1.2.826.0.1.3680043.9.7.500.94";
constexpr const char* kScSeries = "1.2.826.0.1.3680043.9.7.500.95";
constexpr const char* kPmSeries = "1.2.826.0.1.3680043.9.7.500.96";

DcmItem* Append(DcmItem& parent, const DcmTagKey& sequence) {
  DcmItem* item = nullptr;
  parent.findOrCreateSequenceItem(sequence, item, -2);
  return item;
}

void PutCode(DcmItem& parent, const DcmTagKey& sequence, const char* value, const char* scheme,
             const char* meaning) {
  DcmItem* code = Append(parent, sequence);
  code->putAndInsertString(DCM_CodeValue, value);
  code->putAndInsertString(DCM_CodingSchemeDesignator, scheme);
  code->putAndInsertString(DCM_CodeMeaning, meaning);
}

void PutInstance(DcmItem& parent, const DcmTagKey& sequence, const std::string& sop) {
  DcmItem* ref = Append(parent, sequence);
  ref->putAndInsertString(DCM_ReferencedSOPClassUID, kCtImageStorage);
  ref->putAndInsertString(DCM_ReferencedSOPInstanceUID, sop.c_str());
}

std::unique_ptr<DcmFileFormat> Image(const Inputs& in, const char* sop_class, const char* series,
                                     const char* modality) {
  auto file = std::make_unique<DcmFileFormat>();
  DcmDataset& ds = *file->getDataset();
  ds.putAndInsertString(DCM_SOPClassUID, sop_class);
  ds.putAndInsertString(DCM_SOPInstanceUID, (std::string(series) + ".1").c_str());
  ds.putAndInsertString(DCM_StudyInstanceUID, in.study.c_str());
  ds.putAndInsertString(DCM_SeriesInstanceUID, series);
  ds.putAndInsertString(DCM_Modality, modality);
  ds.putAndInsertString(DCM_PatientName, "TEST^RESULT");
  ds.putAndInsertString(DCM_PatientID, "TEST0002");
  ds.putAndInsertString(DCM_SeriesNumber, "90");
  ds.putAndInsertString(DCM_InstanceNumber, "1");
  return file;
}

void PutPixels(DcmDataset& ds, Uint16 bits, int frames) {
  ds.putAndInsertUint16(DCM_SamplesPerPixel, 1);
  ds.putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
  ds.putAndInsertUint16(DCM_Rows, 4);
  ds.putAndInsertUint16(DCM_Columns, 4);
  ds.putAndInsertUint16(DCM_BitsAllocated, bits);
  ds.putAndInsertUint16(DCM_BitsStored, bits);
  ds.putAndInsertUint16(DCM_HighBit, static_cast<Uint16>(bits - 1));
  ds.putAndInsertUint16(DCM_PixelRepresentation, 0);
  if (frames > 0) ds.putAndInsertString(DCM_NumberOfFrames, std::to_string(frames).c_str());
  const size_t bytes = (static_cast<size_t>(std::max(frames, 1)) * 16 * bits + 7) / 8;
  std::vector<Uint8> pixels((bytes + 1) / 2 * 2, 0x5a);
  ds.putAndInsertUint8Array(DCM_PixelData, pixels.data(),
                            static_cast<unsigned long>(pixels.size()));
}

// Writes `doc` into a new file with fixed series and instance UIDs.
std::unique_ptr<DcmFileFormat> WriteDocument(DSRDocument& doc, const Inputs& in,
                                             const char* series) {
  doc.createNewSeriesInStudy(in.study.c_str());
  auto file = std::make_unique<DcmFileFormat>();
  DcmDataset& ds = *file->getDataset();
  if (doc.write(ds).bad()) return nullptr;
  ds.putAndInsertString(DCM_SeriesInstanceUID, series);
  ds.putAndInsertString(DCM_SOPInstanceUID, (std::string(series) + ".1").c_str());
  return file;
}

}  // namespace

ResultContext Inputs::Context() const {
  ResultContext context;
  context.study_uid = StudyUid(study);
  for (const std::string& sop : sops) {
    context.inputs.emplace(SopInstanceUid(sop),
                           ResultInput{SopClassUid(kCtImageStorage), SeriesUid(series)});
  }
  return context;
}

std::unique_ptr<DcmFileFormat> MeasurementReport(const Inputs& in, const SrOptions& o) {
  DSRDocument doc(DSRTypes::DT_ComprehensiveSR);
  DSRDocumentTree& t = doc.getTree();
  t.addContentItem(DSRTypes::RT_isRoot, DSRTypes::VT_Container);
  t.getCurrentContentItem().setConceptName(
      DSRCodedEntryValue(o.root_code.c_str(), "DCM",
                         o.root_code == "126000" ? "Imaging Measurement Report" : "Other report"));
  t.setTemplateIdentification(o.template_id.c_str(), "DCMR");
  t.addChildContentItem(DSRTypes::RT_contains, DSRTypes::VT_Container,
                        DSRCodedEntryValue("126010", "DCM", "Imaging Measurements"));
  t.addChildContentItem(DSRTypes::RT_contains, DSRTypes::VT_Container,
                        DSRCodedEntryValue("125007", "DCM", "Measurement Group"));
  bool first = true;
  auto add = [&](DSRTypes::E_RelationshipType rel, DSRTypes::E_ValueType type,
                 const DSRCodedEntryValue& name) {
    if (first) {
      t.addChildContentItem(rel, type, name);
    } else {
      t.addContentItem(rel, type, name);
    }
    first = false;
  };
  if (o.tracking_id) {
    add(DSRTypes::RT_hasObsContext, DSRTypes::VT_Text,
        DSRCodedEntryValue("112039", "DCM", "Tracking Identifier"));
    t.getCurrentContentItem().setStringValue("lesion 1");
  }
  if (o.tracking_uid) {
    add(DSRTypes::RT_hasObsContext, DSRTypes::VT_UIDRef,
        DSRCodedEntryValue("112040", "DCM", "Tracking Unique Identifier"));
    t.getCurrentContentItem().setStringValue("1.2.826.0.1.3680043.9.7.500.91.7");
  }
  add(DSRTypes::RT_contains, DSRTypes::VT_Code, DSRCodedEntryValue("121071", "DCM", "Finding"));
  t.getCurrentContentItem().setCodeValue(DSRCodedEntryValue("27925004", "SCT", "Nodule"));
  add(DSRTypes::RT_contains, DSRTypes::VT_Num, DSRCodedEntryValue("103339001", "SCT", "Long Axis"));
  t.getCurrentContentItem().setNumericValue(DSRNumericMeasurementValue(
      "12.5", DSRCodedEntryValue("mm", o.units_scheme.c_str(), "millimeter")));
  t.addChildContentItem(DSRTypes::RT_inferredFrom, DSRTypes::VT_SCoord, DSRCodedEntryValue());
  DSRSpatialCoordinatesValue point(DSRTypes::GT_Point);
  point.getGraphicDataList().addItem(1.5f, 2.5f);
  t.getCurrentContentItem().setSpatialCoordinates(point);
  t.addContentItem(DSRTypes::RT_selectedFrom, DSRTypes::VT_Image, DSRTypes::AM_belowCurrent);
  t.getCurrentContentItem().setImageReference(DSRImageReferenceValue(
      kCtImageStorage, (o.image_sop.empty() ? in.sops[0] : o.image_sop).c_str()));
  t.goUp();
  t.goUp();
  t.addContentItem(DSRTypes::RT_contains, DSRTypes::VT_Num,
                   DSRCodedEntryValue("MALIG", "99CONDUIT", "Malignancy probability"));
  t.getCurrentContentItem().setNumericValue(
      DSRNumericMeasurementValue("0.82", DSRCodedEntryValue("1", "UCUM", "no units")));
  t.goUp();  // the measurement group
  t.goUp();  // Imaging Measurements
  t.addContentItem(DSRTypes::RT_contains, DSRTypes::VT_Code,
                   DSRCodedEntryValue("TRIAGE", "99CONDUIT", "Triage priority"));
  t.getCurrentContentItem().setCodeValue(DSRCodedEntryValue("URGENT", "99CONDUIT", "Urgent"));
  doc.getCurrentRequestedProcedureEvidence().addItem(
      in.study.c_str(), in.series.c_str(), kCtImageStorage,
      (o.evidence_sop.empty() ? in.sops[0] : o.evidence_sop).c_str());
  return WriteDocument(doc, in, kSrSeries);
}

std::unique_ptr<DcmFileFormat> Segmentation(const Inputs& in) {
  auto file = Image(in, UID_SegmentationStorage, kSegSeries, "SEG");
  DcmDataset& ds = *file->getDataset();
  ds.putAndInsertString(DCM_SegmentationType, "BINARY");
  const char* types[][2] = {{"39607008", "Lung"}, {"10200004", "Liver"}};
  for (int s = 0; s < 2; ++s) {
    DcmItem* segment = Append(ds, DCM_SegmentSequence);
    segment->putAndInsertUint16(DCM_SegmentNumber, static_cast<Uint16>(s + 1));
    segment->putAndInsertString(DCM_SegmentLabel, types[s][1]);
    segment->putAndInsertString(DCM_SegmentAlgorithmType, "AUTOMATIC");
    segment->putAndInsertString(DCM_SegmentAlgorithmName, "test");
    segment->putAndInsertString(DCM_TrackingID, s == 0 ? "lung" : "liver");
    PutCode(*segment, DCM_SegmentedPropertyCategoryCodeSequence, "123037004", "SCT",
            "Anatomical Structure");
    PutCode(*segment, DCM_SegmentedPropertyTypeCodeSequence, types[s][0], "SCT", types[s][1]);
  }
  DcmItem* series = Append(ds, DCM_ReferencedSeriesSequence);
  series->putAndInsertString(DCM_SeriesInstanceUID, in.series.c_str());
  for (const std::string& sop : in.sops) PutInstance(*series, DCM_ReferencedInstanceSequence, sop);
  const int frames = static_cast<int>(in.sops.size()) * 2;
  for (int f = 0; f < frames; ++f) {
    DcmItem* group = Append(ds, DCM_PerFrameFunctionalGroupsSequence);
    DcmItem* derivation = Append(*group, DCM_DerivationImageSequence);
    PutInstance(*derivation, DCM_SourceImageSequence, in.sops[static_cast<size_t>(f / 2)]);
    Append(*group, DCM_SegmentIdentificationSequence)
        ->putAndInsertUint16(DCM_ReferencedSegmentNumber, static_cast<Uint16>(f % 2 + 1));
  }
  PutPixels(ds, 1, frames);
  return file;
}

std::unique_ptr<DcmFileFormat> PresentationState(const Inputs& in) {
  auto file = Image(in, UID_GrayscaleSoftcopyPresentationStateStorage, kPrSeries, "PR");
  DcmDataset& ds = *file->getDataset();
  ds.putAndInsertString(DCM_ContentLabel, "AI");
  DcmItem* series = Append(ds, DCM_ReferencedSeriesSequence);
  series->putAndInsertString(DCM_SeriesInstanceUID, in.series.c_str());
  PutInstance(*series, DCM_ReferencedImageSequence, in.sops[0]);
  DcmItem* annotation = Append(ds, DCM_GraphicAnnotationSequence);
  PutInstance(*annotation, DCM_ReferencedImageSequence, in.sops[0]);
  annotation->putAndInsertString(DCM_GraphicLayer, "AI");
  DcmItem* text = Append(*annotation, DCM_TextObjectSequence);
  text->putAndInsertString(DCM_UnformattedTextValue, "nodule");
  return file;
}

std::unique_ptr<DcmFileFormat> KeyObjects(const Inputs& in) {
  DSRDocument doc(DSRTypes::DT_KeyObjectSelectionDocument);
  DSRDocumentTree& t = doc.getTree();
  t.addContentItem(DSRTypes::RT_isRoot, DSRTypes::VT_Container);
  t.getCurrentContentItem().setConceptName(DSRCodedEntryValue("113000", "DCM", "Of Interest"));
  t.setTemplateIdentification("2010", "DCMR");
  t.addContentItem(DSRTypes::RT_contains, DSRTypes::VT_Image, DSRTypes::AM_belowCurrent);
  t.getCurrentContentItem().setImageReference(
      DSRImageReferenceValue(kCtImageStorage, in.sops[0].c_str()));
  doc.getCurrentRequestedProcedureEvidence().addItem(in.study.c_str(), in.series.c_str(),
                                                     kCtImageStorage, in.sops[0].c_str());
  return WriteDocument(doc, in, kKoSeries);
}

std::unique_ptr<DcmFileFormat> SecondaryCapture(const Inputs& in, const std::string& source) {
  auto file = Image(in, UID_SecondaryCaptureImageStorage, kScSeries, "OT");
  DcmDataset& ds = *file->getDataset();
  ds.putAndInsertString(DCM_ConversionType, "WSD");
  if (!source.empty()) PutInstance(ds, DCM_SourceImageSequence, source);
  PutPixels(ds, 8, 0);
  return file;
}

std::unique_ptr<DcmFileFormat> ParametricMap(const Inputs& in) {
  auto file = Image(in, UID_ParametricMapStorage, kPmSeries, "CT");
  DcmDataset& ds = *file->getDataset();
  DcmItem* shared = Append(ds, DCM_SharedFunctionalGroupsSequence);
  PutInstance(*Append(*shared, DCM_DerivationImageSequence), DCM_SourceImageSequence, in.sops[0]);
  PutPixels(ds, 8, 1);
  return file;
}

void AddResultEvidence(DcmFileFormat& object, DcmFileFormat& result) {
  DcmDataset& ds = *object.getDataset();
  DcmDataset& cited = *result.getDataset();
  OFString study, series, sop_class, sop;
  cited.findAndGetOFString(DCM_StudyInstanceUID, study);
  cited.findAndGetOFString(DCM_SeriesInstanceUID, series);
  cited.findAndGetOFString(DCM_SOPClassUID, sop_class);
  cited.findAndGetOFString(DCM_SOPInstanceUID, sop);
  DcmItem* study_item = nullptr;
  if (ds.findOrCreateSequenceItem(DCM_CurrentRequestedProcedureEvidenceSequence, study_item, 0)
          .bad()) {
    study_item = Append(ds, DCM_CurrentRequestedProcedureEvidenceSequence);
  }
  study_item->putAndInsertString(DCM_StudyInstanceUID, study.c_str());
  DcmItem* series_item = Append(*study_item, DCM_ReferencedSeriesSequence);
  series_item->putAndInsertString(DCM_SeriesInstanceUID, series.c_str());
  DcmItem* ref = Append(*series_item, DCM_ReferencedSOPSequence);
  ref->putAndInsertString(DCM_ReferencedSOPClassUID, sop_class.c_str());
  ref->putAndInsertString(DCM_ReferencedSOPInstanceUID, sop.c_str());
}

Status Save(DcmFileFormat& file, const std::filesystem::path& path) {
  const OFCondition cond = file.saveFile(path.c_str(), EXS_LittleEndianExplicit);
  if (cond.bad()) return Internal("save " + path.string() + ": " + cond.text());
  return Status::Ok();
}

}  // namespace conduit::result_test
