#include "reference_tool/sr_writer.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmsr/cmr/tid1500.h>
#include <dcmtk/dcmsr/codes/dcm.h>
#include <dcmtk/dcmsr/dsrdoc.h>

#include <cstdio>

namespace conduit::tools {
namespace {

Status Check(const OFCondition& cond, const char* what) {
  if (cond.good()) return Status::Ok();
  return Internal(std::string("measurement report: ") + what + ": " + cond.text());
}

std::string Decimal(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

struct GroupSpec {
  const char* tracking_id;
  const std::string& tracking_uid;
  uint16_t segment_number;
  DSRCodedEntryValue finding;
  double volume_ml;
  bool lung;
};

Status AddGroup(TID1500_MeasurementReport& report, const SourceSeries& source,
                const ResultUids& uids, const GroupSpec& spec, bool first) {
  if (!first) RETURN_IF_ERROR(Check(report.addVolumetricROIMeasurements(), "new group"));
  CMR_TID1411_in_TID1500& group = report.getVolumetricROIMeasurements();
  RETURN_IF_ERROR(Check(group.setTrackingIdentifier(spec.tracking_id), "tracking id"));
  RETURN_IF_ERROR(Check(group.setTrackingUniqueIdentifier(spec.tracking_uid), "tracking uid"));
  RETURN_IF_ERROR(Check(group.setFinding(spec.finding), "finding"));
  DSRImageReferenceValue segment(UID_SegmentationStorage, uids.seg_instance);
  segment.getSegmentList().addItem(spec.segment_number);
  RETURN_IF_ERROR(Check(group.setReferencedSegment(segment), "referenced segment"));
  RETURN_IF_ERROR(Check(group.setSourceSeriesForSegmentation(source.series_uid), "source series"));
  RETURN_IF_ERROR(Check(group.addFindingSite(spec.finding), "finding site"));
  const CID7181_AbstractMultiDimensionalImageModelComponentUnits millilitre(
      DSRCodedEntryValue("ml", "UCUM", "milliliter"));
  const CMR_TID1411_in_TID1500::MeasurementValue volume(Decimal(spec.volume_ml), millilitre);
  RETURN_IF_ERROR(Check(group.addMeasurement(CMR_CID7469::Volume, volume), "volume"));
  RETURN_IF_ERROR(
      Check(group.getMeasurement().setAlgorithmIdentification(kAlgorithmName, kToolVersion),
            "algorithm"));
  if (spec.lung) {
    DSRCodedEntryValue present = spec.volume_ml > 0
                                     ? DSRCodedEntryValue("52101004", "SCT", "Present")
                                     : DSRCodedEntryValue("2667000", "SCT", "Absent");
    RETURN_IF_ERROR(
        Check(group.addQualitativeEvaluation(CODE_DCM_Finding, present), "finding present"));
  }
  RETURN_IF_ERROR(
      Check(group.addQualitativeEvaluation(CODE_DCM_Comment, kNonClinicalNotice), "notice"));
  return Status::Ok();
}

}  // namespace

Status WriteMeasurementReport(const SourceSeries& source, const ResultUids& uids,
                              const Measurements& measurements, const std::filesystem::path& path) {
  TID1500_MeasurementReport report(CMR_CID7021::ImagingMeasurementReport);
  RETURN_IF_ERROR(Check(report.setLanguage(CID5000_Languages::English), "language"));
  RETURN_IF_ERROR(Check(
      report.getObservationContext().addDeviceObserver(
          uids.device_observer, "NON-CLINICAL reference tool", kManufacturer, kModelName, "0"),
      "device observer"));
  RETURN_IF_ERROR(Check(
      report.addProcedureReported(source.modality == "CT" ? CMR_CID100::CTUnspecifiedBodyRegion
                                                          : CMR_CID100::MRIUnspecifiedBodyRegion),
      "procedure reported"));
  GroupSpec lung{"NON-CLINICAL Lung",
                 uids.lung_tracking,
                 2,
                 DSRCodedEntryValue("39607008", "SCT", "Lung"),
                 measurements.lung_ml,
                 true};
  GroupSpec body{"NON-CLINICAL Body",
                 uids.body_tracking,
                 1,
                 DSRCodedEntryValue("38266002", "SCT", "Entire body"),
                 measurements.body_ml,
                 false};
  RETURN_IF_ERROR(AddGroup(report, source, uids, lung, /*first=*/true));
  RETURN_IF_ERROR(AddGroup(report, source, uids, body, /*first=*/false));
  RETURN_IF_ERROR(Check(report.addQualitativeEvaluation(CODE_DCM_Comment, kNonClinicalNotice),
                        "report notice"));
  if (!report.isValid()) return Internal("measurement report: TID 1500 content is not valid");

  DSRDocument doc;
  RETURN_IF_ERROR(Check(doc.setTreeFromRootTemplate(report, /*expandTree=*/OFTrue), "tree"));
  RETURN_IF_ERROR(Check(doc.createNewSeriesInStudy(source.study_uid.c_str()), "study"));
  RETURN_IF_ERROR(
      Check(doc.setSeriesDescription("NON-CLINICAL reference measurements"), "series description"));
  RETURN_IF_ERROR(Check(doc.setSeriesNumber(std::to_string(kSrSeriesNumber)), "series number"));
  RETURN_IF_ERROR(Check(doc.setInstanceNumber("1"), "instance number"));
  RETURN_IF_ERROR(Check(doc.setManufacturer(kManufacturer), "manufacturer"));
  RETURN_IF_ERROR(Check(doc.setManufacturerModelName(kModelName), "model"));
  RETURN_IF_ERROR(Check(doc.setSoftwareVersions(kToolVersion), "software version"));
  RETURN_IF_ERROR(Check(doc.setDeviceSerialNumber("0"), "serial number"));
  RETURN_IF_ERROR(Check(doc.getCurrentRequestedProcedureEvidence().addItem(
                            source.study_uid.c_str(), uids.seg_series.c_str(),
                            UID_SegmentationStorage, uids.seg_instance.c_str()),
                        "evidence"));

  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();
  RETURN_IF_ERROR(Check(doc.write(ds), "write"));
  RETURN_IF_ERROR(CopyPatientAndStudy(*source.header->getDataset(), ds));
  RETURN_IF_ERROR(
      Check(ds.putAndInsertString(DCM_SeriesInstanceUID, uids.sr_series.c_str()), "series uid"));
  RETURN_IF_ERROR(
      Check(ds.putAndInsertString(DCM_SOPInstanceUID, uids.sr_instance.c_str()), "sop uid"));
  return SaveResult(file, path);
}

}  // namespace conduit::tools
