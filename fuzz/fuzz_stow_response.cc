// Fuzz target: the body of a DICOMweb server's (an AI tool's or a PACS's) answer to a STOW-RS
// request, as the DICOMweb push adapter and the STOW-RS sender read it (ParseStowResponse), and
// the DICOM JSON readers it and the QIDO-RS and UPS-RS clients use on peers' answers. Checks
// that errors are kInvalidArgument with a message, that parsing is deterministic, that the
// failed count equals the sum of the failure reasons (each counted at least once), that no
// more instances are named than items counted, each failed one with a counted reason, and
// that a blank body says nothing; and that every reader runs on every attribute of a parsed
// object, with its documented shape.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "dicom/dicom_json_read.h"
#include "dicom/stow_response.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_stow_response: property violated: %s\n", what);
  std::abort();
}

void CheckReaders(const nlohmann::json& dataset) {
  for (const auto& [key, attr] : dataset.items()) {
    const std::string first = conduit::DicomJsonString(dataset, key.c_str());
    const std::vector<std::string> all = conduit::DicomJsonStrings(dataset, key.c_str());
    for (const std::string& value : all) {
      if (value.empty()) Fail("DicomJsonStrings returned an empty string");
    }
    if (!first.empty() && (all.empty() || all.front() != first))
      Fail("DicomJsonString is not the first of DicomJsonStrings");
    (void)conduit::DicomJsonInteger(dataset, key.c_str());
    const nlohmann::json& items = conduit::DicomJsonSequence(dataset, key.c_str());
    if (!items.is_array()) Fail("DicomJsonSequence is not an array");
    for (const nlohmann::json& item : items) {
      if (item.is_object()) {
        for (const auto& [item_key, item_attr] : item.items()) {
          (void)conduit::DicomJsonString(item, item_key.c_str());
          (void)conduit::DicomJsonInteger(item, item_key.c_str());
        }
      }
    }
  }
  // Readers on something that is not an object read as absent.
  if (!conduit::DicomJsonString(nlohmann::json::array(), "00081199").empty())
    Fail("a reader found a value in an array");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const conduit::Result<conduit::StowResponse> a = conduit::ParseStowResponse(body);
  const conduit::Result<conduit::StowResponse> b = conduit::ParseStowResponse(body);
  if (a.ok() != b.ok()) Fail("parsing is not deterministic");
  if (!a.ok()) {
    if (a.status().code() != conduit::StatusCode::kInvalidArgument)
      Fail("error other than kInvalidArgument");
    if (a.status().message().empty()) Fail("error without a message");
  } else {
    if (a->stored != b->stored || a->failed != b->failed ||
        a->failure_reasons != b->failure_reasons || a->stored_instances != b->stored_instances ||
        a->failed_instances != b->failed_instances)
      Fail("parsing is not deterministic");
    if (a->stored_instances.size() > a->stored) Fail("more stored instances named than counted");
    if (a->failed_instances.size() > a->failed) Fail("more failed instances named than counted");
    for (const auto& [uid, reason] : a->failed_instances) {
      if (uid.empty()) Fail("a failed instance named by an empty UID");
      if (a->failure_reasons.count(reason) == 0) Fail("a failed instance's reason not counted");
    }
    for (const std::string& uid : a->stored_instances) {
      if (uid.empty()) Fail("a stored instance named by an empty UID");
    }
    size_t counted = 0;
    for (const auto& [reason, count] : a->failure_reasons) {
      if (count == 0) Fail("a failure reason counted zero times");
      counted += count;
      const std::string described = conduit::DescribeFailureReason(reason);
      if (described.size() < 9 || described.compare(0, 2, "0x") != 0 || described[6] != ' ')
        Fail("a failure reason described without its 0xNNNN code");
    }
    if (counted != a->failed) Fail("failed differs from the sum of the failure reasons");
  }
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos &&
      (!a.ok() || a->stored != 0 || a->failed != 0))
    Fail("a blank body said something");

  const nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_object()) CheckReaders(doc);
  if (doc.is_array()) {
    for (const nlohmann::json& element : doc) {
      if (element.is_object()) CheckReaders(element);
    }
  }
  return 0;
}
