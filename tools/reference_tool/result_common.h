// What every object the reference tool writes shares: the NON-CLINICAL labels, the identity
// of the tool, UIDs derived from the input (a re-run yields the same UIDs, so a PACS never
// holds the same result twice), and the patient and study modules copied from the input.
#pragma once

#include <filesystem>
#include <string>

#include "core/status.h"
#include "reference_tool/source_series.h"

class DcmItem;
class DcmFileFormat;

namespace conduit::tools {

inline constexpr char kToolName[] = "conduit-reference-tool";
inline constexpr char kToolVersion[] = "0.1.0";
inline constexpr char kManufacturer[] = "Conduit (NON-CLINICAL reference tool)";
inline constexpr char kModelName[] = "conduit-reference-tool NON-CLINICAL";
inline constexpr char kAlgorithmName[] = "NON-CLINICAL threshold segmentation";
inline constexpr char kCreatorName[] = "NON-CLINICAL^Conduit reference tool";
inline constexpr char kNonClinicalNotice[] =
    "NON-CLINICAL reference output for integration testing; not for diagnostic use";

inline constexpr int kSegSeriesNumber = 9901;
inline constexpr int kSrSeriesNumber = 9902;
inline constexpr int kScSeriesNumber = 9903;

// UIDs of the results, each derived from the input study and series UIDs and its role.
struct ResultUids {
  std::string seg_series, seg_instance;
  std::string sr_series, sr_instance;
  std::string sc_series, sc_instance;
  std::string dimension_organization;
  std::string body_tracking, lung_tracking;
  std::string device_observer;  // the tool's own identity, the same for every input
};
ResultUids DeriveResultUids(const SourceSeries& source);

// Copies the Patient, Patient Study and General Study modules' attributes (and Specific
// Character Set) from `source` into `target`, replacing what is there; type 2 attributes
// absent in the source are written empty.
Status CopyPatientAndStudy(DcmItem& source, DcmItem& target);

// Writes `file` to `path` in explicit VR little endian with a fresh meta header.
Status SaveResult(DcmFileFormat& file, const std::filesystem::path& path);

}  // namespace conduit::tools
