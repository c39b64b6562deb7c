// DICOM file work of the DICOMweb tool simulator (NON-CLINICAL test tool): reading what an
// instance is, and the deliberate damage its misbehaviours do to results.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "core/status.h"
#include "dicomweb_tool_sim/study_inbox.h"

namespace conduit::tools {

// Reads `path`'s identity (study, series, SOP instance and class UIDs, modality, instance
// number) without loading large values. Errors: kInvalidArgument if it is not DICOM or lacks
// a study, series or SOP instance UID or a SOP class.
Result<InstanceInfo> ReadInstanceInfo(const std::filesystem::path& path);

// Writes to `out` a copy of `in` in which every UI value (at any depth) found among the keys
// of `replacements` is replaced by its value. Errors: kInvalidArgument if `in` is not DICOM;
// kInternal if `out` cannot be written.
Status RewriteUids(const std::filesystem::path& in, const std::filesystem::path& out,
                   const std::map<std::string, std::string>& replacements);

// Writes to `out` the first 131 bytes of `in`: its preamble and "DIC", a truncated file that
// neither DCMTK nor pydicom can parse (a cut further on, pydicom reads silently). Errors:
// kInternal on I/O.
Status WriteTruncated(const std::filesystem::path& in, const std::filesystem::path& out);

}  // namespace conduit::tools
