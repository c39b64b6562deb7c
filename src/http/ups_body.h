// UPS-RS request bodies (PS3.18 §11): the DICOM JSON datasets (PS3.18 Annex F.2) a performer
// sends to change a workitem's state (RAD-82/85), update it (RAD-84) or ask for its
// cancellation (RAD-88). Each is validated before anything is looked up: JSON shape, tags,
// VRs against PS3.6, value types and lengths, sizes and nesting. Pure functions, no storage.
// Errors are kInvalidArgument with a message naming the attribute (its tag) and the problem;
// values are never echoed (they may identify a patient).
// Thread safety: all functions are reentrant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "store/records.h"

namespace conduit {

struct UpsBodyLimits {
  size_t max_body_bytes = 1 << 20;  // the whole body
  size_t max_depth = 8;             // sequences within sequences
  size_t max_attributes = 4096;     // attributes over all nesting levels
  size_t max_values = 1024;         // values of one attribute
  size_t max_value_bytes = 65536;   // one value (UT, UR, UC and LT; shorter VRs have PS3.5's)
};

// A validated DICOM JSON dataset: an object whose keys are 8 upper-case hex digits (lower
// case is accepted and normalised) and whose values are {"vr": VR} with at most one of
// "Value", "InlineBinary" (base64, binary VRs only). "BulkDataURI" is refused: UPS-RS bodies
// carry no bulk data here. The body may be the object or an array holding exactly one.
// Refused: group 0000, 0002 and FFFE elements, group lengths (gggg,0000), a VR other than
// PS3.6's for the tag (UN is accepted for any), values of the wrong JSON type, UIs that are
// not UIDs, CS values with characters outside A-Z 0-9 space and underscore, DA/TM/DT that are
// not digits in their shape, text over PS3.5's length for its VR.
Result<nlohmann::json> ParseDicomJsonDataset(std::string_view body, const UpsBodyLimits& limits);

// RAD-82 / RAD-85 (PUT /workitems/{uid}/state): the requested state and the Transaction UID.
struct UpsStateChangeRequest {
  UpsState state = UpsState::kInProgress;  // IN PROGRESS, COMPLETED or CANCELED
  std::string transaction_uid;             // empty when the body has none
  std::string reason;                      // Reason For Cancellation (0074,1238), if given
};
// Errors: the dataset's; Procedure Step State (0074,1000) missing, not one value, unknown, or
// SCHEDULED (no transaction moves a workitem back to it).
Result<UpsStateChangeRequest> ParseStateChangeBody(std::string_view body,
                                                   const UpsBodyLimits& limits);

// RAD-84 (POST /workitems/{uid}): the attributes to change and the Transaction UID if the
// body carries one (PS3.18 puts it in the query; some performers send it in the dataset).
struct UpsUpdateRequest {
  std::string transaction_uid;  // (0008,1195) of the body, removed from `changes`
  std::string changes;          // DICOM JSON object text, keys sorted
};
// Errors: the dataset's; an empty dataset; Procedure Step State (0074,1000) (a state changes
// by PUT .../state only); SOP Class/Instance UID (0008,0016)/(0008,0018).
Result<UpsUpdateRequest> ParseUpdateBody(std::string_view body, const UpsBodyLimits& limits);

// RAD-88 (POST /workitems/{uid}/cancelrequest): an empty body is a request without reason.
struct UpsCancelRequest {
  std::string reason;        // Reason For Cancellation (0074,1238)
  std::string contact_name;  // Contact Display Name (0074,100C)
  std::string contact_uri;   // Contact URI (0074,100A)
};
Result<UpsCancelRequest> ParseCancelRequestBody(std::string_view body, const UpsBodyLimits& limits);

// An AE title from a URL path segment (already percent-decoded): 1-16 printable ASCII
// characters other than '\', not only spaces; leading and trailing spaces are removed.
std::optional<std::string> ParseUpsAeTitle(std::string_view text);

// The value of top-level attribute `tag` of a DICOM JSON dataset in DICOM string form, as
// QidoValueLookup wants it: values joined with '\', PN by its Alphabetic group (groups joined
// with '='), numbers in decimal. nullopt when absent, a sequence, or binary.
std::optional<std::string> DicomJsonValueString(const nlohmann::json& dataset, uint32_t tag);

}  // namespace conduit
