#include "make_study/phantom.h"

#include <algorithm>
#include <cmath>

namespace conduit::tools {
namespace {

constexpr double kLungCentreXMm = 72;  // lungs at x = ±72
constexpr double kLungCentreYMm = -8;
constexpr double kLungHalfWidthMm = 50;
constexpr double kLungHalfDepthMm = 68;
constexpr double kSpineCentreYMm = 78;  // posterior (+y in LPS)
constexpr double kSpineRadiusMm = 18;

bool InEllipse(double x, double y, double cx, double cy, double ax, double ay) {
  double dx = (x - cx) / ax;
  double dy = (y - cy) / ay;
  return dx * dx + dy * dy <= 1.0;
}

// Half the length of the chord of an ellipse (centre cy, half axes ax, ay) at offset dx from
// its centre along x, measured along y; 0 if the line misses it.
double HalfChord(double dx, double ax, double ay) {
  double t = 1.0 - (dx / ax) * (dx / ax);
  return t > 0 ? ay * std::sqrt(t) : 0.0;
}

}  // namespace

ChestPhantom::ChestPhantom(double z_half_extent_mm)
    : lung_half_length_mm_(std::max(z_half_extent_mm * 0.9, 1.0)) {}

double ChestPhantom::LungScale(double z) const {
  double t = z / lung_half_length_mm_;
  return t * t < 1.0 ? std::sqrt(1.0 - t * t) : 0.0;
}

Tissue ChestPhantom::TissueAt(double x, double y, double z) const {
  if (!InEllipse(x, y, 0, 0, kBodyHalfWidthMm, kBodyHalfDepthMm)) return Tissue::kAir;
  if (!InEllipse(x, y, 0, 0, kBodyHalfWidthMm - kFatRimMm, kBodyHalfDepthMm - kFatRimMm)) {
    return Tissue::kFat;
  }
  if (InEllipse(x, y, 0, kSpineCentreYMm, kSpineRadiusMm, kSpineRadiusMm)) return Tissue::kBone;
  double s = LungScale(z);
  if (s > 0) {
    for (double cx : {-kLungCentreXMm, kLungCentreXMm}) {
      if (InEllipse(x, y, cx, kLungCentreYMm, kLungHalfWidthMm * s, kLungHalfDepthMm * s)) {
        return Tissue::kLung;
      }
    }
  }
  return Tissue::kSoftTissue;
}

ChestPhantom::Chords ChestPhantom::ChordsAlongY(double x, double z) const {
  Chords c;
  c.body_mm = 2 * HalfChord(x, kBodyHalfWidthMm, kBodyHalfDepthMm);
  c.bone_mm = 2 * HalfChord(x, kSpineRadiusMm, kSpineRadiusMm);
  double s = LungScale(z);
  if (s > 0) {
    for (double cx : {-kLungCentreXMm, kLungCentreXMm}) {
      c.lung_mm += 2 * HalfChord(x - cx, kLungHalfWidthMm * s, kLungHalfDepthMm * s);
    }
  }
  return c;
}

double ChestPhantom::Hounsfield(Tissue tissue) {
  switch (tissue) {
    case Tissue::kAir:
      return -1000;
    case Tissue::kFat:
      return -100;
    case Tissue::kSoftTissue:
      return 40;
    case Tissue::kLung:
      return -800;
    case Tissue::kBone:
      return 700;
  }
  return -1000;
}

double ChestPhantom::MrSignal(Tissue tissue) {
  switch (tissue) {
    case Tissue::kAir:
      return 0;
    case Tissue::kFat:
      return 1800;
    case Tissue::kSoftTissue:
      return 900;
    case Tissue::kLung:
      return 60;
    case Tissue::kBone:
      return 1300;
  }
  return 0;
}

}  // namespace conduit::tools
