// Reidentifier: maps a result a tool made on a pseudonymised study back to the original,
// inside the trust. Every UID the crosswalk knows is restored at every depth (references,
// study/series/frame of reference, file meta), and the patient and study identity is copied
// from an original instance of the study, so the result files onto the right patient in
// PACS. A reference inside a sequence (Referenced SOP Instance UID, Study, Series or Frame
// of Reference UID) that the crosswalk does not know but that has the form of our pseudonyms
// (IsPseudonymUid) makes the result invalid: it points at nothing we sent. Other unknown
// UIDs name objects the tool made (an SR referencing the tool's own SEG) and are kept.
// Thread safety: const; ReidentifyFile may run on many threads at once.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace conduit {

// Looks up the originals of pseudonyms (UIDs); absent pseudonyms are absent in the map.
using CrosswalkLookup = std::function<Result<std::map<std::string, std::string>>(
    const std::vector<std::string>& pseudonyms)>;

// True if `uid` has the form Pseudonymiser::Uid gives: "2.25." and a version 8, variant 10
// UUID whose last 16 bits are 0xC0DE. A tool's own UIDs have it by chance 1 in 2^22 at most,
// version 4 (random) UUIDs never.
bool IsPseudonymUid(std::string_view uid);

struct ReidOutcome {
  std::string study_uid;  // the original Study Instance UID the result now belongs to
  int uids_restored = 0;
  int identity_attributes_restored = 0;
};

class Reidentifier {
 public:
  explicit Reidentifier(CrosswalkLookup lookup);

  // Reads `in`, writes `out`. `original_instance` is any original instance of the study the
  // result belongs to (patient and study modules are copied from it). Errors:
  // kInvalidArgument when the result is not DICOM, its study is not a known pseudonym, or a
  // reference is unknown (the message says which attribute, never a value); storage errors.
  Result<ReidOutcome> ReidentifyFile(const std::filesystem::path& in,
                                     const std::filesystem::path& out,
                                     const std::filesystem::path& original_instance) const;
  // The original Study Instance UID of a result, from its pseudonymous one; nullopt if the
  // crosswalk does not know it (or the file has no study).
  Result<std::optional<std::string>> OriginalStudyOf(const std::filesystem::path& result) const;

 private:
  CrosswalkLookup lookup_;
};

}  // namespace conduit
