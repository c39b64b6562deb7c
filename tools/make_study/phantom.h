// A chest phantom in patient coordinates (DICOM LPS, millimetres): an elliptical body of soft
// tissue under a rim of fat, two lungs and a spine, with air outside. The lungs are ellipsoids
// centred on z = 0 that span most of the given z extent, so any stack centred there shows them.
#pragma once

namespace conduit::tools {

enum class Tissue { kAir, kFat, kSoftTissue, kLung, kBone };

class ChestPhantom {
 public:
  // `z_half_extent_mm`: half the cranio-caudal length of the imaged volume (> 0).
  explicit ChestPhantom(double z_half_extent_mm);

  // The tissue at patient position (x, y, z).
  Tissue TissueAt(double x, double y, double z) const;

  // Lengths (mm) that a ray parallel to the y axis at (x, z) travels through body (all of it,
  // lungs included), lungs and bone: used to synthesise a projection radiograph.
  struct Chords {
    double body_mm = 0;
    double lung_mm = 0;
    double bone_mm = 0;
  };
  Chords ChordsAlongY(double x, double z) const;

  // Mean CT number of a tissue in Hounsfield units.
  static double Hounsfield(Tissue tissue);
  // Mean MR signal (arbitrary units, 12-bit range) of a tissue in a T1-weighted image.
  static double MrSignal(Tissue tissue);

  static constexpr double kBodyHalfWidthMm = 160;  // along x
  static constexpr double kBodyHalfDepthMm = 110;  // along y
  static constexpr double kFatRimMm = 12;

 private:
  // Scale (0..1] of a lung's cross-section at height z; 0 outside the lungs' extent.
  double LungScale(double z) const;

  double lung_half_length_mm_;
};

}  // namespace conduit::tools
