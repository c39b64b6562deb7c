#include "reference_tool/reference_tool.h"

#include <spdlog/spdlog.h>

#include <system_error>
#include <vector>

#include "common/uid.h"
#include "reference_tool/result_common.h"
#include "reference_tool/sc_writer.h"
#include "reference_tool/seg_writer.h"
#include "reference_tool/segmentation.h"
#include "reference_tool/slice_reader.h"
#include "reference_tool/source_series.h"
#include "reference_tool/sr_writer.h"

namespace conduit::tools {

Result<ReferenceRunSummary> RunReferenceTool(const std::filesystem::path& input_dir,
                                             const std::filesystem::path& output_dir) {
  ScanReport scan;
  ASSIGN_OR_RETURN(SourceSeries source, FindLargestConsistentSeries(input_dir, &scan));
  spdlog::info(
      "scanned {} files ({} DICOM, {} CT/MR series, {} consistent); study {}: {} series "
      "of {} slices {}x{}",
      scan.files_seen, scan.dicom_files, scan.image_series, scan.consistent_series,
      LogRef(source.study_uid), source.modality, source.slices.size(), source.rows, source.cols);

  Thresholds thresholds = kCtThresholds;
  if (source.modality == "MR") {
    Histogram histogram;
    for (const SourceSlice& slice : source.slices) {
      ASSIGN_OR_RETURN(std::vector<int16_t> values,
                       ReadRescaledSlice(slice, source.rows, source.cols));
      histogram.Add(values);
    }
    thresholds = MrThresholds(histogram.OtsuThreshold());
    spdlog::info("MR Otsu threshold {}", thresholds.tissue_above);
  }

  std::error_code ec;
  std::filesystem::create_directories(output_dir, ec);
  if (ec) return Internal("output " + output_dir.string() + ": " + ec.message());

  const ResultUids uids = DeriveResultUids(source);
  ASSIGN_OR_RETURN(std::unique_ptr<SegmentationBuilder> seg,
                   SegmentationBuilder::Create(source, uids));
  const size_t middle = source.slices.size() / 2;
  std::vector<int16_t> middle_values;
  std::vector<uint8_t> middle_labels;
  LabelCounts counts;
  for (size_t i = 0; i < source.slices.size(); ++i) {
    ASSIGN_OR_RETURN(std::vector<int16_t> values,
                     ReadRescaledSlice(source.slices[i], source.rows, source.cols));
    std::vector<uint8_t> labels = LabelSlice(values, source.rows, source.cols, thresholds);
    counts.Add(labels);
    RETURN_IF_ERROR(seg->AddSlice(i, labels));
    if (i == middle) {
      middle_values = std::move(values);
      middle_labels = std::move(labels);
    }
    if ((i + 1) % 50 == 0 || i + 1 == source.slices.size()) {
      spdlog::info("segmented {}/{} slices", i + 1, source.slices.size());
    }
  }

  const double voxel_ml =
      source.pixel_spacing[0] * source.pixel_spacing[1] * source.slice_spacing_mm / 1000.0;
  ReferenceRunSummary summary;
  summary.modality = source.modality;
  summary.slices = source.slices.size();
  summary.body_ml = static_cast<double>(counts.body) * voxel_ml;
  summary.lung_ml = static_cast<double>(counts.lung) * voxel_ml;
  spdlog::info("body {:.1f} ml, lung {:.1f} ml", summary.body_ml, summary.lung_ml);

  summary.seg_file = output_dir / "seg.dcm";
  summary.sr_file = output_dir / "sr.dcm";
  summary.sc_file = output_dir / "sc.dcm";
  RETURN_IF_ERROR(seg->Write(summary.seg_file));
  seg.reset();
  spdlog::info("wrote segmentation {}", summary.seg_file.string());
  RETURN_IF_ERROR(
      WriteMeasurementReport(source, uids, {summary.body_ml, summary.lung_ml}, summary.sr_file));
  spdlog::info("wrote measurement report {}", summary.sr_file.string());
  RETURN_IF_ERROR(
      WriteOverlayCapture(source, uids, middle, middle_values, middle_labels, summary.sc_file));
  spdlog::info("wrote secondary capture {}", summary.sc_file.string());
  return summary;
}

}  // namespace conduit::tools
