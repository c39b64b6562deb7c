// Reading values from DICOM JSON (PS3.18 Annex F) that a peer sent: QIDO-RS and STOW-RS
// answers, UPS-RS workitems. Tolerant: anything missing or of the wrong JSON type reads as
// absent, never an error or an exception. Pure functions; reentrant.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace conduit {

// The first string Value of attribute `tag` ("0020000D") of a DICOM JSON dataset, or "".
std::string DicomJsonString(const nlohmann::json& dataset, const char* tag);
// Every non-empty string Value of attribute `tag` (e.g. ModalitiesInStudy), in order.
std::vector<std::string> DicomJsonStrings(const nlohmann::json& dataset, const char* tag);
// The first Value of `tag` as a whole number (IS as string or number), or nullopt.
std::optional<int64_t> DicomJsonInteger(const nlohmann::json& dataset, const char* tag);
// Items of sequence `tag` of a DICOM JSON dataset (an empty array if absent).
const nlohmann::json& DicomJsonSequence(const nlohmann::json& dataset, const char* tag);

}  // namespace conduit
