#include "reference_tool/source_series.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <system_error>

namespace conduit::tools {
namespace {

constexpr Uint32 kMaxHeaderValueBytes = 1024;  // larger values (pixel data) stay on disk
constexpr double kCosineTolerance = 1e-4;
constexpr double kSpacingTolerance = 1e-3;  // relative, pixel spacing
constexpr double kGapTolerance = 0.1;       // relative, gap between slices

struct Candidate {
  SourceSlice slice;
  std::string modality;
  std::string study_uid;
  std::string series_uid;
  std::string frame_of_reference_uid;
  long rows = 0;
  long cols = 0;
  std::array<double, 6> orientation{};
  std::array<double, 2> pixel_spacing{};
  double slice_thickness_mm = 0;
  bool geometry_complete = false;
  bool pixels_supported = false;
};

std::string GetString(DcmDataset& ds, const DcmTagKey& tag) {
  OFString value;
  if (ds.findAndGetOFStringArray(tag, value).bad()) return "";
  return value.c_str();
}

template <size_t N>
bool GetDoubles(DcmDataset& ds, const DcmTagKey& tag, std::array<double, N>& out) {
  for (size_t i = 0; i < N; ++i) {
    Float64 v = 0;
    if (ds.findAndGetFloat64(tag, v, static_cast<unsigned long>(i)).bad()) return false;
    out[i] = v;
  }
  return true;
}

std::array<double, 3> Normal(const std::array<double, 6>& o) {
  return {o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3]};
}

// Reads the header of one file; false if it is not a usable single-frame CT or MR image.
bool ReadCandidate(const std::filesystem::path& path, Candidate& c, bool& is_dicom) {
  DcmFileFormat file;
  is_dicom =
      file.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, kMaxHeaderValueBytes, ERM_autoDetect)
          .good();
  if (!is_dicom) return false;
  DcmDataset& ds = *file.getDataset();
  c.slice.path = path;
  c.slice.sop_class_uid = GetString(ds, DCM_SOPClassUID);
  c.slice.sop_instance_uid = GetString(ds, DCM_SOPInstanceUID);
  if (c.slice.sop_class_uid == UID_CTImageStorage) {
    c.modality = "CT";
  } else if (c.slice.sop_class_uid == UID_MRImageStorage) {
    c.modality = "MR";
  } else {
    return false;
  }
  c.study_uid = GetString(ds, DCM_StudyInstanceUID);
  c.series_uid = GetString(ds, DCM_SeriesInstanceUID);
  c.frame_of_reference_uid = GetString(ds, DCM_FrameOfReferenceUID);
  Uint16 rows = 0;
  Uint16 cols = 0;
  Uint16 samples = 0;
  Uint16 bits_allocated = 0;
  ds.findAndGetUint16(DCM_Rows, rows);
  ds.findAndGetUint16(DCM_Columns, cols);
  ds.findAndGetUint16(DCM_SamplesPerPixel, samples);
  ds.findAndGetUint16(DCM_BitsAllocated, bits_allocated);
  c.rows = rows;
  c.cols = cols;
  long frames = 1;
  Sint32 nframes = 1;
  if (ds.findAndGetSint32(DCM_NumberOfFrames, nframes).good()) frames = nframes;
  std::string photometric = GetString(ds, DCM_PhotometricInterpretation);
  c.pixels_supported = samples == 1 && (bits_allocated == 8 || bits_allocated == 16) &&
                       frames == 1 && rows > 0 && cols > 0 &&
                       (photometric == "MONOCHROME1" || photometric == "MONOCHROME2") &&
                       ds.tagExists(DCM_PixelData);
  c.geometry_complete = GetDoubles(ds, DCM_ImagePositionPatient, c.slice.position) &&
                        GetDoubles(ds, DCM_ImageOrientationPatient, c.orientation) &&
                        GetDoubles(ds, DCM_PixelSpacing, c.pixel_spacing) &&
                        !c.frame_of_reference_uid.empty() && !c.study_uid.empty() &&
                        !c.slice.sop_instance_uid.empty() && c.pixel_spacing[0] > 0 &&
                        c.pixel_spacing[1] > 0;
  Float64 thickness = 0;
  if (ds.findAndGetFloat64(DCM_SliceThickness, thickness).good()) c.slice_thickness_mm = thickness;
  return true;
}

bool Near(double a, double b, double tol) { return std::fabs(a - b) <= tol; }

// Builds the series from its instances, or says why their geometry is not consistent.
Result<SourceSeries> Assemble(const std::string& series_uid, std::vector<Candidate>& members) {
  // The same instance stored twice is one slice, not two at the same position.
  std::stable_sort(members.begin(), members.end(), [](const Candidate& a, const Candidate& b) {
    return a.slice.sop_instance_uid < b.slice.sop_instance_uid;
  });
  members.erase(std::unique(members.begin(), members.end(),
                            [](const Candidate& a, const Candidate& b) {
                              return a.slice.sop_instance_uid == b.slice.sop_instance_uid;
                            }),
                members.end());
  const Candidate& first = members.front();
  for (const Candidate& c : members) {
    if (!c.geometry_complete)
      return InvalidArgument("an image lacks position, orientation or spacing");
    if (!c.pixels_supported)
      return InvalidArgument("unsupported pixel format (need 1 sample, 8/16 bits, 1 frame)");
    if (c.rows != first.rows || c.cols != first.cols) return InvalidArgument("image sizes differ");
    if (c.study_uid != first.study_uid)
      return InvalidArgument("images belong to different studies");
    if (c.frame_of_reference_uid != first.frame_of_reference_uid) {
      return InvalidArgument("frames of reference differ");
    }
    for (size_t i = 0; i < 6; ++i) {
      if (!Near(c.orientation[i], first.orientation[i], kCosineTolerance)) {
        return InvalidArgument("orientations differ");
      }
    }
    for (size_t i = 0; i < 2; ++i) {
      if (!Near(c.pixel_spacing[i], first.pixel_spacing[i],
                kSpacingTolerance * first.pixel_spacing[i])) {
        return InvalidArgument("pixel spacings differ");
      }
    }
  }
  std::array<double, 3> n = Normal(first.orientation);
  double norm = std::sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
  if (norm < 0.5) return InvalidArgument("orientation vectors are not orthogonal unit vectors");
  SourceSeries s;
  s.modality = first.modality;
  s.study_uid = first.study_uid;
  s.series_uid = series_uid;
  s.frame_of_reference_uid = first.frame_of_reference_uid;
  s.rows = static_cast<int>(first.rows);
  s.cols = static_cast<int>(first.cols);
  s.orientation = first.orientation;
  s.pixel_spacing = first.pixel_spacing;
  s.slice_thickness_mm = first.slice_thickness_mm;
  for (Candidate& c : members) {
    const auto& p = c.slice.position;
    c.slice.along_normal_mm = (p[0] * n[0] + p[1] * n[1] + p[2] * n[2]) / norm;
    s.slices.push_back(c.slice);
  }
  std::sort(s.slices.begin(), s.slices.end(), [](const SourceSlice& a, const SourceSlice& b) {
    return a.along_normal_mm < b.along_normal_mm;
  });
  if (s.slices.size() >= 2) {
    double total = s.slices.back().along_normal_mm - s.slices.front().along_normal_mm;
    double gap = total / static_cast<double>(s.slices.size() - 1);
    if (gap <= 1e-3) return InvalidArgument("slices share one position");
    for (size_t i = 1; i < s.slices.size(); ++i) {
      double d = s.slices[i].along_normal_mm - s.slices[i - 1].along_normal_mm;
      if (!Near(d, gap, kGapTolerance * gap)) return InvalidArgument("slices are unevenly spaced");
    }
    s.slice_spacing_mm = gap;
  } else {
    s.slice_spacing_mm = s.slice_thickness_mm > 0 ? s.slice_thickness_mm : 1.0;
  }
  if (s.slice_thickness_mm <= 0) s.slice_thickness_mm = s.slice_spacing_mm;
  return s;
}

}  // namespace

Result<SourceSeries> FindLargestConsistentSeries(const std::filesystem::path& dir,
                                                 ScanReport* report) {
  ScanReport local;
  ScanReport& r = report != nullptr ? *report : local;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return NotFound("input " + dir.string() + ": not a directory");
  }
  std::map<std::string, std::vector<Candidate>> by_series;
  auto it = std::filesystem::recursive_directory_iterator(
      dir, std::filesystem::directory_options::skip_permission_denied, ec);
  if (ec) return NotFound("input " + dir.string() + ": " + ec.message());
  for (; it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (!it->is_regular_file(ec)) continue;
    ++r.files_seen;
    Candidate c;
    bool is_dicom = false;
    bool usable = ReadCandidate(it->path(), c, is_dicom);
    if (is_dicom) ++r.dicom_files;
    if (!usable) continue;
    if (c.series_uid.empty()) continue;
    std::string series_uid = c.series_uid;
    by_series[series_uid].push_back(std::move(c));
  }
  r.image_series = static_cast<int>(by_series.size());
  std::string reasons;
  std::optional<SourceSeries> best;
  for (auto& [series_uid, members] : by_series) {
    Result<SourceSeries> assembled = Assemble(series_uid, members);
    if (!assembled.ok()) {
      reasons += "; a " + members.front().modality + " series of " +
                 std::to_string(members.size()) + " images: " + assembled.status().message();
      continue;
    }
    ++r.consistent_series;
    // Largest wins; on a tie the smallest series UID, so the choice is deterministic.
    if (!best || assembled->slices.size() > best->slices.size())
      best = std::move(assembled).value();
  }
  if (!best) {
    return NotFound("input " + dir.string() + ": no CT or MR series with consistent geometry (" +
                    std::to_string(r.dicom_files) + " DICOM files" + reasons + ")");
  }
  auto header = std::make_shared<DcmFileFormat>();
  OFCondition cond = header->loadFile(best->slices.front().path.c_str(), EXS_Unknown, EGL_noChange,
                                      kMaxHeaderValueBytes);
  if (cond.bad()) {
    return NotFound("input " + best->slices.front().path.string() +
                    ": reread header: " + cond.text());
  }
  best->header = std::move(header);
  return std::move(best).value();
}

}  // namespace conduit::tools
