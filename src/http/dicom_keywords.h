// The PS3.6 data dictionary's keywords and VRs (edition 2024b, generated into
// dicom_keywords.inc by dicom_keywords.py), for front ends that name attributes by keyword:
// DICOMweb query parameters, DICOM JSON. No DCMTK: the http layer keeps its own table.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace conduit {

struct DicomAttributeInfo {
  uint32_t tag;              // for a repeating-group attribute, the tag asked for (or group 0)
  std::string_view keyword;  // e.g. "StudyInstanceUID"
  std::string_view vr;       // two letters ("US" for "US or SS"); "" where PS3.6 gives none
};

// The attribute whose PS3.6 keyword is exactly `keyword` (case-sensitive); nullopt if none.
// A repeating-group keyword such as OverlayData gives its first group (0x60003000).
std::optional<DicomAttributeInfo> FindAttributeByKeyword(std::string_view keyword);

// The PS3.6 entry for `tag`: an exact entry, else a repeating-group one ((60xx,3000) for
// 0x60023000); nullopt for private tags and tags not in the dictionary.
std::optional<DicomAttributeInfo> FindAttributeByTag(uint32_t tag);

}  // namespace conduit
