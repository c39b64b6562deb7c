#include "make_study/study_writer.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcuid.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <system_error>
#include <vector>

#include "common/dataset_putter.h"
#include "common/dicom_values.h"
#include "common/uid.h"
#include "make_study/phantom.h"

namespace conduit::tools {
namespace {

constexpr double kCtFieldOfViewMm = 400;
constexpr double kMrFieldOfViewMm = 380;
constexpr double kCtSliceThicknessMm = 2.5;
constexpr double kMrSliceThicknessMm = 5.0;
constexpr double kDxPixelSpacingMm = 0.14;
constexpr int kCtRescaleOffset = 1024;  // stored = HU + 1024, RescaleIntercept -1024

struct SeriesContext {
  const StudySpec& spec;
  DicomDateTime stamp;
  std::string series_uid;
  std::string frame_of_reference_uid;
  const char* sop_class_uid;
  const char* modality;
  const char* series_description;
};

// Patient, General Study, General Series, General Equipment, General Image (common part) and
// SOP Common modules.
Status PutCommon(DcmItem& ds, const SeriesContext& ctx, int instance_number) {
  const StudySpec& spec = ctx.spec;
  std::string sop_uid =
      DerivedUid({spec.study_uid, ctx.series_uid, "instance", std::to_string(instance_number)});
  DatasetPutter p(ds, "make study");
  p.Str(DCM_SpecificCharacterSet, "ISO_IR 100")
      .Str(DCM_SOPClassUID, ctx.sop_class_uid)
      .Str(DCM_SOPInstanceUID, sop_uid)
      .Str(DCM_InstanceCreationDate, ctx.stamp.date)
      .Str(DCM_InstanceCreationTime, ctx.stamp.time)
      .Str(DCM_StudyDate, ctx.stamp.date)
      .Str(DCM_StudyTime, ctx.stamp.time)
      .Str(DCM_SeriesDate, ctx.stamp.date)
      .Str(DCM_SeriesTime, ctx.stamp.time)
      .Str(DCM_ContentDate, ctx.stamp.date)
      .Str(DCM_ContentTime, ctx.stamp.time)
      .Str(DCM_AcquisitionDate, ctx.stamp.date)
      .Str(DCM_AcquisitionTime, ctx.stamp.time)
      .Str(DCM_AccessionNumber, spec.accession)
      .Str(DCM_Modality, ctx.modality)
      .Str(DCM_Manufacturer, "Conduit")
      .Str(DCM_InstitutionName, "Conduit synthetic data")
      .Str(DCM_ReferringPhysicianName, "")
      .Str(DCM_StationName, "CONDUIT-SIM")
      .Str(DCM_StudyDescription, "SYNTHETIC phantom study")
      .Str(DCM_SeriesDescription, ctx.series_description)
      .Str(DCM_ManufacturerModelName, "conduit-make-study")
      .Str(DCM_DeviceSerialNumber, "0")
      .Str(DCM_SoftwareVersions, "0.1")
      .Str(DCM_PatientName, spec.patient_name)
      .Str(DCM_PatientID, spec.patient_id)
      .Str(DCM_PatientBirthDate, "19600101")
      .Str(DCM_PatientSex, "O")
      .Str(DCM_BodyPartExamined, "CHEST")
      .Str(DCM_StudyInstanceUID, spec.study_uid)
      .Str(DCM_SeriesInstanceUID, ctx.series_uid)
      .Str(DCM_StudyID, "1")
      .Str(DCM_SeriesNumber, "1")
      .Str(DCM_AcquisitionNumber, "1")
      .Str(DCM_InstanceNumber, std::to_string(instance_number))
      .Str(DCM_BurnedInAnnotation, "NO")
      .Str(DCM_LossyImageCompression, "00");
  if (!ctx.frame_of_reference_uid.empty()) {
    p.Str(DCM_FrameOfReferenceUID, ctx.frame_of_reference_uid)
        .Str(DCM_PositionReferenceIndicator, "");
  }
  return p.status();
}

// Image Plane module for an axial slice and the cross-sectional acquisition attributes.
Status PutAxialPlane(DcmItem& ds, const StudySpec& spec, double spacing_mm, double thickness_mm,
                     double z_mm) {
  double x0 = -0.5 * (spec.cols - 1) * spacing_mm;
  double y0 = -0.5 * (spec.rows - 1) * spacing_mm;
  DatasetPutter p(ds, "make study");
  p.Str(DCM_PatientPosition, "HFS")
      .Str(DCM_ImagePositionPatient,
           DecimalString(x0) + "\\" + DecimalString(y0) + "\\" + DecimalString(z_mm))
      .Str(DCM_ImageOrientationPatient, "1\\0\\0\\0\\1\\0")
      .Str(DCM_PixelSpacing, DecimalString(spacing_mm) + "\\" + DecimalString(spacing_mm))
      .Str(DCM_SliceThickness, DecimalString(thickness_mm))
      .Str(DCM_SpacingBetweenSlices, DecimalString(thickness_mm))
      .Str(DCM_SliceLocation, DecimalString(z_mm));
  return p.status();
}

Status PutMonochromePixels(DcmItem& ds, const StudySpec& spec, std::vector<Uint16>& pixels,
                           int bits_stored, bool is_signed) {
  DatasetPutter p(ds, "make study");
  p.U16(DCM_SamplesPerPixel, 1)
      .Str(DCM_PhotometricInterpretation, "MONOCHROME2")
      .U16(DCM_Rows, static_cast<Uint16>(spec.rows))
      .U16(DCM_Columns, static_cast<Uint16>(spec.cols))
      .U16(DCM_BitsAllocated, 16)
      .U16(DCM_BitsStored, static_cast<Uint16>(bits_stored))
      .U16(DCM_HighBit, static_cast<Uint16>(bits_stored - 1))
      .U16(DCM_PixelRepresentation, is_signed ? 1 : 0);
  RETURN_IF_ERROR(p.status());
  OFCondition cond = ds.putAndInsertUint16Array(DCM_PixelData, pixels.data(),
                                                static_cast<unsigned long>(pixels.size()));
  if (cond.bad()) return Internal(std::string("set PixelData: ") + cond.text());
  return Status::Ok();
}

Status Save(DcmFileFormat& file, const StudySpec& spec, int instance_number) {
  char name[32];
  std::snprintf(name, sizeof name, "%04d.dcm", instance_number);
  std::filesystem::path path = spec.out_dir / name;
  E_TransferSyntax xfer = spec.transfer_syntax == StudyTransferSyntax::kImplicitLittleEndian
                              ? EXS_LittleEndianImplicit
                              : EXS_LittleEndianExplicit;
  OFCondition cond = file.saveFile(path.c_str(), xfer);
  if (cond.bad()) return Internal("write " + path.string() + ": " + cond.text());
  return Status::Ok();
}

// Mid-point of slice `index` of `count` slices `thickness` apart, centred on z = 0, head first:
// the first slice is the most superior (largest z in LPS).
double SliceZ(int index, int count, double thickness) {
  return 0.5 * (count - 1) * thickness - index * thickness;
}

Status WriteCt(const StudySpec& spec, const DicomDateTime& stamp) {
  SeriesContext ctx{spec,
                    stamp,
                    DerivedUid({spec.study_uid, "series", "CT"}),
                    DerivedUid({spec.study_uid, "frame-of-reference"}),
                    UID_CTImageStorage,
                    "CT",
                    "SYNTHETIC CT chest phantom"};
  double spacing = kCtFieldOfViewMm / std::max(spec.rows, spec.cols);
  ChestPhantom phantom(0.5 * spec.slices * kCtSliceThicknessMm);
  std::vector<Uint16> pixels(static_cast<size_t>(spec.rows) * spec.cols);
  for (int i = 0; i < spec.slices; ++i) {
    double z = SliceZ(i, spec.slices, kCtSliceThicknessMm);
    std::mt19937_64 rng(spec.seed * 1000003u + static_cast<uint64_t>(i));
    std::normal_distribution<double> noise(0.0, 8.0);
    double x0 = -0.5 * (spec.cols - 1) * spacing;
    double y0 = -0.5 * (spec.rows - 1) * spacing;
    for (int r = 0; r < spec.rows; ++r) {
      for (int c = 0; c < spec.cols; ++c) {
        double hu =
            ChestPhantom::Hounsfield(phantom.TissueAt(x0 + c * spacing, y0 + r * spacing, z));
        if (hu > -1000) hu += noise(rng);
        double stored = std::clamp(std::round(hu) + kCtRescaleOffset, -1024.0, 32767.0);
        pixels[static_cast<size_t>(r) * spec.cols + c] =
            static_cast<Uint16>(static_cast<Sint16>(stored));
      }
    }
    DcmFileFormat file;
    DcmDataset& ds = *file.getDataset();
    RETURN_IF_ERROR(PutCommon(ds, ctx, i + 1));
    RETURN_IF_ERROR(PutAxialPlane(ds, spec, spacing, kCtSliceThicknessMm, z));
    DatasetPutter p(ds, "make study");
    p.Str(DCM_ImageType, "ORIGINAL\\PRIMARY\\AXIAL")
        .Str(DCM_RescaleIntercept, DecimalString(-kCtRescaleOffset))
        .Str(DCM_RescaleSlope, "1")
        .Str(DCM_RescaleType, "HU")
        .Str(DCM_KVP, "120")
        .Str(DCM_ScanOptions, "HELICAL")
        .Str(DCM_ConvolutionKernel, "STANDARD")
        .Str(DCM_WindowCenter, "40")
        .Str(DCM_WindowWidth, "400");
    RETURN_IF_ERROR(p.status());
    RETURN_IF_ERROR(PutMonochromePixels(ds, spec, pixels, 16, /*is_signed=*/true));
    RETURN_IF_ERROR(Save(file, spec, i + 1));
  }
  return Status::Ok();
}

Status WriteMr(const StudySpec& spec, const DicomDateTime& stamp) {
  SeriesContext ctx{spec,
                    stamp,
                    DerivedUid({spec.study_uid, "series", "MR"}),
                    DerivedUid({spec.study_uid, "frame-of-reference"}),
                    UID_MRImageStorage,
                    "MR",
                    "SYNTHETIC MR T1 chest phantom"};
  double spacing = kMrFieldOfViewMm / std::max(spec.rows, spec.cols);
  ChestPhantom phantom(0.5 * spec.slices * kMrSliceThicknessMm);
  std::vector<Uint16> pixels(static_cast<size_t>(spec.rows) * spec.cols);
  for (int i = 0; i < spec.slices; ++i) {
    double z = SliceZ(i, spec.slices, kMrSliceThicknessMm);
    std::mt19937_64 rng(spec.seed * 1000003u + static_cast<uint64_t>(i));
    std::normal_distribution<double> noise(0.0, 20.0);
    double x0 = -0.5 * (spec.cols - 1) * spacing;
    double y0 = -0.5 * (spec.rows - 1) * spacing;
    for (int r = 0; r < spec.rows; ++r) {
      for (int c = 0; c < spec.cols; ++c) {
        double s = ChestPhantom::MrSignal(phantom.TissueAt(x0 + c * spacing, y0 + r * spacing, z));
        // Magnitude images: noise is rectified, so air is dark but not zero.
        s = std::fabs(s + noise(rng));
        pixels[static_cast<size_t>(r) * spec.cols + c] =
            static_cast<Uint16>(std::clamp(std::round(s), 0.0, 4095.0));
      }
    }
    DcmFileFormat file;
    DcmDataset& ds = *file.getDataset();
    RETURN_IF_ERROR(PutCommon(ds, ctx, i + 1));
    RETURN_IF_ERROR(PutAxialPlane(ds, spec, spacing, kMrSliceThicknessMm, z));
    DatasetPutter p(ds, "make study");
    p.Str(DCM_ImageType, "ORIGINAL\\PRIMARY\\OTHER")
        .Str(DCM_ScanningSequence, "SE")
        .Str(DCM_SequenceVariant, "NONE")
        .Str(DCM_ScanOptions, "")
        .Str(DCM_MRAcquisitionType, "2D")
        .Str(DCM_RepetitionTime, "500")
        .Str(DCM_EchoTime, "15")
        .Str(DCM_EchoTrainLength, "1")
        .Str(DCM_ImagedNucleus, "1H")
        .Str(DCM_MagneticFieldStrength, "1.5")
        .Str(DCM_WindowCenter, "1000")
        .Str(DCM_WindowWidth, "2000");
    RETURN_IF_ERROR(p.status());
    RETURN_IF_ERROR(PutMonochromePixels(ds, spec, pixels, 12, /*is_signed=*/false));
    RETURN_IF_ERROR(Save(file, spec, i + 1));
  }
  return Status::Ok();
}

// A PA chest radiograph: columns run along patient x (left of image = patient's right),
// rows run from head to feet. Brighter = more attenuation (MONOCHROME2, for presentation).
Status WriteDx(const StudySpec& spec, const DicomDateTime& stamp) {
  SeriesContext ctx{spec,
                    stamp,
                    DerivedUid({spec.study_uid, "series", "DX"}),
                    "",
                    UID_DigitalXRayImageStorageForPresentation,
                    "DX",
                    "SYNTHETIC DX chest PA phantom"};
  double height_mm = spec.rows * kDxPixelSpacingMm;
  ChestPhantom phantom(0.35 * height_mm);
  std::vector<Uint16> pixels(static_cast<size_t>(spec.rows) * spec.cols);
  std::mt19937_64 rng(spec.seed);
  std::normal_distribution<double> noise(0.0, 6.0);
  constexpr double kMuSoftPerMm = 0.006;  // effective linear attenuation, 1/mm
  constexpr double kMuLungPerMm = 0.001;
  constexpr double kMuBonePerMm = 0.02;
  for (int r = 0; r < spec.rows; ++r) {
    double z = 0.5 * height_mm - (r + 0.5) * kDxPixelSpacingMm;
    for (int c = 0; c < spec.cols; ++c) {
      double x = -0.5 * spec.cols * kDxPixelSpacingMm + (c + 0.5) * kDxPixelSpacingMm;
      ChestPhantom::Chords ch = phantom.ChordsAlongY(x, z);
      double soft = std::max(ch.body_mm - ch.lung_mm - ch.bone_mm, 0.0);
      double mu_l = kMuSoftPerMm * soft + kMuLungPerMm * ch.lung_mm + kMuBonePerMm * ch.bone_mm;
      double v = 200 + 3600 * (1 - std::exp(-mu_l)) + noise(rng);
      pixels[static_cast<size_t>(r) * spec.cols + c] =
          static_cast<Uint16>(std::clamp(std::round(v), 0.0, 4095.0));
    }
  }
  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();
  RETURN_IF_ERROR(PutCommon(ds, ctx, 1));
  DatasetPutter p(ds, "make study");
  p.Str(DCM_ImageType, "ORIGINAL\\PRIMARY")
      .Str(DCM_PresentationIntentType, "FOR PRESENTATION")
      .Str(DCM_PatientOrientation, "R\\F")
      .Str(DCM_ViewPosition, "PA")
      .Str(DCM_ImageLaterality, "U")
      .Str(DCM_PixelIntensityRelationship, "LOG")
      .Str(DCM_RescaleIntercept, "0")
      .Str(DCM_RescaleSlope, "1")
      .Str(DCM_RescaleType, "US")
      .Str(DCM_PresentationLUTShape, "IDENTITY")
      .Str(DCM_WindowCenter, "2048")
      .Str(DCM_WindowWidth, "4096")
      .Str(DCM_KVP, "125")
      .Str(DCM_DetectorType, "SCINTILLATOR")
      .Str(DCM_ImagerPixelSpacing,
           DecimalString(kDxPixelSpacingMm) + "\\" + DecimalString(kDxPixelSpacingMm))
      .Str(DCM_DistanceSourceToDetector, "1800")
      .Str(DCM_DistanceSourceToPatient, "1700")
      .Str(DCM_EstimatedRadiographicMagnificationFactor, DecimalString(1800.0 / 1700.0))
      .Str(DCM_PositionerType, "NONE")
      .Empty(DCM_AcquisitionContextSequence);
  p.S16(DCM_PixelIntensityRelationshipSign, 1)
      .Code(DCM_AnatomicRegionSequence, "51185008", "SCT", "Chest")
      .Code(DCM_ViewCodeSequence, "399348003", "SCT", "postero-anterior");
  RETURN_IF_ERROR(p.status());
  RETURN_IF_ERROR(PutMonochromePixels(ds, spec, pixels, 12, /*is_signed=*/false));
  return Save(file, spec, 1);
}

}  // namespace

Result<int> WriteStudy(const StudySpec& spec) {
  bool cross_sectional = spec.modality != StudyModality::kDx;
  if (spec.rows < 8 || spec.cols < 8 || spec.rows > 65535 || spec.cols > 65535) {
    return InvalidArgument("make study: rows and columns must be within 8..65535");
  }
  if (cross_sectional && (spec.slices < 1 || spec.slices > 100000)) {
    return InvalidArgument("make study: slices must be within 1..100000");
  }
  if (spec.study_uid.empty() || spec.study_uid.size() > 64) {
    return InvalidArgument("make study: study UID must have 1..64 characters");
  }
  if (spec.patient_id.empty() || spec.patient_name.empty()) {
    return InvalidArgument("make study: patient ID and name must not be empty");
  }
  std::error_code ec;
  std::filesystem::create_directories(spec.out_dir, ec);
  if (ec)
    return InvalidArgument("make study: create " + spec.out_dir.string() + ": " + ec.message());
  DicomDateTime stamp = DicomNow();
  switch (spec.modality) {
    case StudyModality::kCt:
      RETURN_IF_ERROR(WriteCt(spec, stamp));
      return spec.slices;
    case StudyModality::kMr:
      RETURN_IF_ERROR(WriteMr(spec, stamp));
      return spec.slices;
    case StudyModality::kDx:
      RETURN_IF_ERROR(WriteDx(spec, stamp));
      return 1;
  }
  return Internal("make study: unknown modality");
}

}  // namespace conduit::tools
