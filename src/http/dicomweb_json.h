// DICOM JSON (PS3.18 Annex F) for attributes held as text (InstanceMeta::attributes: values
// joined with '\', numbers in decimal): what QIDO-RS answers are made of. No DCMTK.
// Thread safety: all functions are reentrant.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace conduit {

// "0020000D" for 0x0020000D.
std::string TagKey(uint32_t tag);

// The DICOM JSON object of one attribute of VR `vr` ("UN" when empty): {"vr": vr} plus
// "Value" when `value` has any non-empty value. Values are split on '\' (not for LT, ST, UT,
// UR), padding removed; PN values become {"Alphabetic", "Ideographic", "Phonetic"} objects;
// IS, DS and binary numbers become JSON numbers (a value that does not parse becomes null).
// Text must already be UTF-8 (see ToUtf8); invalid bytes are replaced by U+FFFD.
nlohmann::json DicomJsonAttribute(std::string_view vr, const std::optional<std::string>& value);

// `text` converted to UTF-8 from the character set named by `specific_character_set` (the
// value of (0008,0005)); ASCII, ISO_IR 192 and unknown or code-extension sets are returned
// as they are (invalid UTF-8 is replaced later, when the JSON is written).
std::string ToUtf8(std::string_view specific_character_set, std::string_view text);

}  // namespace conduit
