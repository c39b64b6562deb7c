#include "reference_tool/sc_writer.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "common/dataset_putter.h"
#include "common/dicom_values.h"
#include "reference_tool/segmentation.h"

namespace conduit::tools {
namespace {

// 5x7 glyphs, one string per row, '#' = ink.
struct Glyph {
  char ch;
  const char* rows[7];
};
const Glyph kGlyphs[] = {
    {'N', {"#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#", "#...#"}},
    {'O', {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
    {'C', {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."}},
    {'L', {"#....", "#....", "#....", "#....", "#....", "#....", "#####"}},
    {'I', {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "#####"}},
    {'A', {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
    {'-', {".....", ".....", ".....", "#####", ".....", ".....", "....."}},
};

void DrawText(std::vector<uint8_t>& rgb, int rows, int cols, const std::string& text) {
  int scale = std::max(1, cols / 200);
  int x = 2 * scale;
  const int y = 2 * scale;
  for (char ch : text) {
    const Glyph* glyph = nullptr;
    for (const Glyph& g : kGlyphs) {
      if (g.ch == ch) glyph = &g;
    }
    if (glyph != nullptr) {
      for (int gy = 0; gy < 7; ++gy) {
        for (int gx = 0; gx < 5; ++gx) {
          if (glyph->rows[gy][gx] != '#') continue;
          for (int dy = 0; dy < scale; ++dy) {
            for (int dx = 0; dx < scale; ++dx) {
              int px = x + gx * scale + dx;
              int py = y + gy * scale + dy;
              if (px >= cols || py >= rows) continue;
              uint8_t* p = &rgb[(static_cast<size_t>(py) * cols + px) * 3];
              p[0] = 255;
              p[1] = 220;
              p[2] = 0;
            }
          }
        }
      }
    }
    x += 6 * scale;
  }
}

// True if pixel (r, c) carries `bit` and a 4-neighbour (or the image edge) does not.
bool OnContour(std::span<const uint8_t> labels, int rows, int cols, int r, int c, uint8_t bit) {
  auto has = [&](int rr, int cc) {
    if (rr < 0 || cc < 0 || rr >= rows || cc >= cols) return false;
    return (labels[static_cast<size_t>(rr) * cols + cc] & bit) != 0;
  };
  return has(r, c) && (!has(r - 1, c) || !has(r + 1, c) || !has(r, c - 1) || !has(r, c + 1));
}

// Patient Orientation letters for a direction cosine vector (dominant axis first).
std::string OrientationLetters(double x, double y, double z) {
  struct Axis {
    double v;
    char pos, neg;
  } axes[3] = {{x, 'L', 'R'}, {y, 'P', 'A'}, {z, 'H', 'F'}};
  std::sort(std::begin(axes), std::end(axes),
            [](const Axis& a, const Axis& b) { return std::fabs(a.v) > std::fabs(b.v); });
  std::string out;
  for (const Axis& a : axes) {
    if (std::fabs(a.v) < 0.25) break;
    out += a.v > 0 ? a.pos : a.neg;
  }
  return out.empty() ? "L" : out;
}

}  // namespace

std::vector<uint8_t> RenderOverlay(std::span<const int16_t> values, std::span<const uint8_t> labels,
                                   int rows, int cols, bool is_ct) {
  const size_t n = static_cast<size_t>(rows) * cols;
  double low = -1100;
  double high = 500;
  if (!is_ct) {
    std::vector<int16_t> sorted(values.begin(), values.end());
    std::sort(sorted.begin(), sorted.end());
    low = sorted.front();
    high = sorted[static_cast<size_t>(0.995 * static_cast<double>(n - 1))];
    if (high <= low) high = low + 1;
  }
  std::vector<uint8_t> rgb(n * 3);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      size_t i = static_cast<size_t>(r) * cols + c;
      double g = std::clamp((values[i] - low) / (high - low), 0.0, 1.0) * 255.0;
      uint8_t grey = static_cast<uint8_t>(std::lround(g));
      uint8_t* p = &rgb[i * 3];
      p[0] = p[1] = p[2] = grey;
      if (OnContour(labels, rows, cols, r, c, kLungLabel)) {
        p[0] = 255;
        p[1] = 40;
        p[2] = 40;
      } else if (OnContour(labels, rows, cols, r, c, kBodyLabel)) {
        p[0] = 40;
        p[1] = 220;
        p[2] = 40;
      }
    }
  }
  DrawText(rgb, rows, cols, "NON-CLINICAL");
  return rgb;
}

Status WriteOverlayCapture(const SourceSeries& source, const ResultUids& uids, size_t slice_index,
                           std::span<const int16_t> values, std::span<const uint8_t> labels,
                           const std::filesystem::path& path) {
  const SourceSlice& slice = source.slices.at(slice_index);
  std::vector<uint8_t> rgb =
      RenderOverlay(values, labels, source.rows, source.cols, source.modality == "CT");
  const DicomDateTime now = DicomNow();
  const std::string& date = now.date;
  const std::string& time = now.time;
  const auto& o = source.orientation;

  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();
  DatasetPutter p(ds, "secondary capture");
  p.Str(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage)
      .Str(DCM_SOPInstanceUID, uids.sc_instance)
      .Str(DCM_SeriesInstanceUID, uids.sc_series)
      .Str(DCM_Modality, "OT")
      .Str(DCM_SeriesNumber, std::to_string(kScSeriesNumber))
      .Str(DCM_SeriesDescription, "NON-CLINICAL reference overlay")
      .Str(DCM_SeriesDate, date)
      .Str(DCM_SeriesTime, time)
      .Str(DCM_InstanceNumber, "1")
      .Str(DCM_ContentDate, date)
      .Str(DCM_ContentTime, time)
      .Str(DCM_InstanceCreationDate, date)
      .Str(DCM_InstanceCreationTime, time)
      .Str(DCM_PatientOrientation,
           OrientationLetters(o[0], o[1], o[2]) + "\\" + OrientationLetters(o[3], o[4], o[5]))
      .Str(DCM_ImageType, "DERIVED\\SECONDARY")
      .Str(DCM_DerivationDescription,
           "NON-CLINICAL: source slice with lung (red) and body (green) contours")
      .Str(DCM_ImageComments, kNonClinicalNotice)
      .Str(DCM_ConversionType, "WSD")
      .Str(DCM_Manufacturer, kManufacturer)
      .Str(DCM_ManufacturerModelName, kModelName)
      .Str(DCM_SecondaryCaptureDeviceManufacturer, kManufacturer)
      .Str(DCM_SecondaryCaptureDeviceManufacturerModelName, kModelName)
      .Str(DCM_SecondaryCaptureDeviceSoftwareVersions, kToolVersion)
      .Str(DCM_SoftwareVersions, kToolVersion)
      .Str(DCM_DateOfSecondaryCapture, date)
      .Str(DCM_TimeOfSecondaryCapture, time)
      .Str(DCM_BurnedInAnnotation, "NO")
      .Str(DCM_RecognizableVisualFeatures, "NO")
      .Str(DCM_LossyImageCompression, "00")
      .Str(DCM_PixelSpacing,
           DecimalString(source.pixel_spacing[0]) + "\\" + DecimalString(source.pixel_spacing[1]))
      .U16(DCM_SamplesPerPixel, 3)
      .Str(DCM_PhotometricInterpretation, "RGB")
      .U16(DCM_PlanarConfiguration, 0)
      .U16(DCM_Rows, static_cast<Uint16>(source.rows))
      .U16(DCM_Columns, static_cast<Uint16>(source.cols))
      .U16(DCM_BitsAllocated, 8)
      .U16(DCM_BitsStored, 8)
      .U16(DCM_HighBit, 7)
      .U16(DCM_PixelRepresentation, 0);
  if (DcmItem* ref = p.SeqItem(DCM_SourceImageSequence)) {
    DatasetPutter r(*ref, "secondary capture");
    r.Str(DCM_ReferencedSOPClassUID, slice.sop_class_uid)
        .Str(DCM_ReferencedSOPInstanceUID, slice.sop_instance_uid);
    r.Code(DCM_PurposeOfReferenceCodeSequence, "121322", "DCM",
           "Source image for image processing operation");
    RETURN_IF_ERROR(r.status());
  }
  RETURN_IF_ERROR(p.status());
  OFCondition cond =
      ds.putAndInsertUint8Array(DCM_PixelData, rgb.data(), static_cast<unsigned long>(rgb.size()));
  if (cond.bad()) return Internal(std::string("secondary capture: pixel data: ") + cond.text());
  RETURN_IF_ERROR(CopyPatientAndStudy(*source.header->getDataset(), ds));
  // General Series: Laterality is required for paired body parts; without Body Part Examined
  // that cannot be decided, so it is then present and empty ("unknown").
  DcmItem& header = *source.header->getDataset();
  OFString body_part;
  OFString laterality;
  header.findAndGetOFStringArray(DCM_BodyPartExamined, body_part);
  header.findAndGetOFStringArray(DCM_Laterality, laterality);
  if (!body_part.empty()) p.Str(DCM_BodyPartExamined, body_part.c_str());
  if (!laterality.empty()) {
    p.Str(DCM_Laterality, laterality.c_str());
  } else if (body_part.empty()) {
    p.Empty(DCM_Laterality);
  }
  RETURN_IF_ERROR(p.status());
  return SaveResult(file, path);
}

}  // namespace conduit::tools
