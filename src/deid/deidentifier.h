// Deidentifier: applies the policy's de-identification to one DICOM file, writing a new
// file. PS3.15 Annex E actions at every depth of nested sequences, private attributes
// removed unless listed safe, attributes unknown to the dictionary removed, overlays and
// curves per the options, UIDs replaced by keyed 2.25 UIDs (file meta included), identifiers
// pseudonymised, dates shifted per patient under Modified Dates, burned-in text refused or
// blanked, and the de-identification attributes added (Patient Identity Removed,
// De-identification Method and its Code Sequence, Longitudinal Temporal Information
// Modified). Pixel data is copied, never decoded, unless a region must be blanked.
// Memory: one instance at a time; large values are read from the input file while writing, and
// Pixel Data that passes unchanged is copied file to file in the kernel.
// Thread safety: const; DeidentifyFile may run on many threads at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "deid/deid_settings.h"
#include "deid/pseudonymiser.h"

namespace conduit {

// A substitute made for an original, kept in the trust's crosswalk for re-identification.
struct PseudonymPair {
  enum class Kind : uint8_t { kUid, kPatientId, kAccessionNumber };
  Kind kind;
  std::string pseudonym;
  std::string original;
};

struct DeidOutcome {
  // Refused instances are not written; `refusal` says why in words safe to log.
  bool refused = false;
  std::string refusal;
  // Attributes per action name ("K", "X", "Z", "D", "C", "U"), plus "pseudonymised" (Patient
  // ID, Patient's Name, Accession Number), "private_removed", "private_kept",
  // "unknown_removed", "misplaced_removed" (group 0000/0002 inside the dataset),
  // "pixel_regions_blanked".
  std::map<std::string, int64_t> actions;
  // Every substitute made (UIDs of every depth, Patient ID, Accession Number), deduplicated.
  std::vector<PseudonymPair> pseudonyms;
  // The output's identity (pseudonymous), for the caller's bookkeeping.
  std::string study_uid, series_uid, sop_instance_uid;
  uint64_t bytes_in = 0, bytes_out = 0;
  // The Pixel Data value was copied from the input file to the output in the kernel
  // (copy_file_range, or sendfile between file systems) rather than read into memory and
  // written out by DCMTK; the bytes written are the same either way.
  bool pixel_data_copied = false;
};

class Deidentifier {
 public:
  Deidentifier(DeidSettings settings, Pseudonymiser pseudonymiser);

  // Reads `in`, writes `out` (created or replaced; the parent folder must exist). A refusal
  // by policy is an OK outcome with refused = true and nothing written. Errors:
  // kInvalidArgument for input that is not readable DICOM (message names the file and the
  // problem, never a value), storage errors for `out`.
  Result<DeidOutcome> DeidentifyFile(const std::filesystem::path& in,
                                     const std::filesystem::path& out) const;

  // Whether an unchanged Pixel Data value may be copied from the input file in the kernel (the
  // default) or always goes through DCMTK; set before use. For tests and benchmarks.
  void set_copy_pixel_data(bool allowed) { copy_pixel_data_ = allowed; }

  const DeidSettings& settings() const { return settings_; }
  const Pseudonymiser& pseudonymiser() const { return pseudonymiser_; }

 private:
  DeidSettings settings_;
  Pseudonymiser pseudonymiser_;
  bool copy_pixel_data_ = true;
};

}  // namespace conduit
