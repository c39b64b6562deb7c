// Test-only: AI result objects of every IHE AIR kind, built with DCMTK, referring to a small
// study of CT inputs. Each builder makes a valid object; its options (or edits of the returned
// dataset) make it invalid in one precise way.
#pragma once

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcfilefo.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "results/result_validator.h"

namespace conduit::result_test {

// The inputs results refer to: one CT series of three instances.
struct Inputs {
  std::string study = "1.2.826.0.1.3680043.9.7.500";
  std::string series = "1.2.826.0.1.3680043.9.7.500.1";
  std::vector<std::string> sops = {"1.2.826.0.1.3680043.9.7.500.1.1",
                                   "1.2.826.0.1.3680043.9.7.500.1.2",
                                   "1.2.826.0.1.3680043.9.7.500.1.3"};
  ResultContext Context() const;  // the validator's view of these inputs
};

inline constexpr const char* kCtImageStorage = "1.2.840.10008.5.1.4.1.1.2";
inline constexpr const char* kUnknownSop = "1.2.826.0.1.3680043.9.7.599.1";

struct SrOptions {
  std::string root_code = "126000";  // Imaging Measurement Report
  std::string template_id = "1500";
  bool tracking_id = true;
  bool tracking_uid = true;
  std::string units_scheme = "UCUM";
  std::string image_sop;     // the IMAGE the measurement refers to; empty: the first input
  std::string evidence_sop;  // the instance in the evidence; empty: the first input
};
// A TID 1500 report: one measurement group (tracking id "lesion 1") with a Finding
// (Nodule), a long axis in mm on an input image (under a SCOORD), and a malignancy
// probability score; a triage flag at report level.
std::unique_ptr<DcmFileFormat> MeasurementReport(const Inputs& in, const SrOptions& options = {});

// A binary segmentation of the three inputs, two segments (Lung, Liver).
std::unique_ptr<DcmFileFormat> Segmentation(const Inputs& in);

// A GSPS on the first input with a text annotation.
std::unique_ptr<DcmFileFormat> PresentationState(const Inputs& in);

// A KOS "Of Interest" (113000, DCM) selecting the first input.
std::unique_ptr<DcmFileFormat> KeyObjects(const Inputs& in);

// A secondary capture, with a SourceImageSequence naming `source` unless it is empty.
std::unique_ptr<DcmFileFormat> SecondaryCapture(const Inputs& in, const std::string& source);

// A parametric map derived from the first input (shared functional groups).
std::unique_ptr<DcmFileFormat> ParametricMap(const Inputs& in);

// Adds to the CurrentRequestedProcedureEvidenceSequence of `object` (an SR or KOS) a reference
// to `result` (its series, SOP Class and Instance UIDs): a report citing a segmentation.
void AddResultEvidence(DcmFileFormat& object, DcmFileFormat& result);

// Writes `file` (explicit VR little endian).
Status Save(DcmFileFormat& file, const std::filesystem::path& path);

}  // namespace conduit::result_test
