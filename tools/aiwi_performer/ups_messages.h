// The UPS-RS messages of an IHE AIW-I Task Performer (NON-CLINICAL test tool), as DICOM JSON
// (PS3.18 F.2): the bodies it sends (Change Workitem State, Update Workitem) and the parts it
// reads (search results, a workitem's input and output URLs, event reports). Written from
// PS3.18 chapter 11 and PS3.4 Annex CC. Pure functions: no I/O, thread-safe.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace conduit::tools {

// The well-known UID naming the whole worklist in a global subscription (PS3.4 CC.3.1).
inline constexpr char kUpsGlobalSubscriptionUid[] = "1.2.840.10008.5.1.4.34.5";

// Event Type ID (0000,1002) values of a UPS event report (PS3.4 CC.2.4-1).
inline constexpr int kUpsStateReport = 1;
inline constexpr int kUpsCancelRequested = 2;

// DICOM DT "YYYYMMDDHHMMSS" (UTC) of `when`.
std::string DicomDateTime(std::chrono::system_clock::time_point when);

// Change Workitem State payload (PS3.18 11.7.1.4): Procedure Step State (0074,1000) `state`
// ("IN PROGRESS", "COMPLETED" or "CANCELED") and Transaction UID (0008,1195).
nlohmann::json StateChangeBody(std::string_view state, const std::string& transaction_uid);

// Update Workitem payload for progress (PS3.4 CC.2.6.2: the Transaction UID is an attribute
// of an IN PROGRESS workitem's update): Procedure Step Progress Information Sequence
// (0074,1002) holding Procedure Step Progress (0074,1004) and its Description (0074,1006).
nlohmann::json ProgressBody(const std::string& transaction_uid, int percent,
                            std::string_view description);

// Update Workitem payload meeting the CANCELED final-state requirements (PS3.4 CC.2.5-3):
// the progress sequence with Procedure Step Cancellation DateTime (0040,4052) and Reason For
// Cancellation (0074,1238).
nlohmann::json CancellationBody(const std::string& transaction_uid, int percent,
                                std::string_view reason,
                                std::chrono::system_clock::time_point when);

// One result instance the performer stored, for the Output Information Sequence.
struct OutputInstance {
  std::string study_uid;
  std::string series_uid;
  std::string sop_class_uid;
  std::string sop_instance_uid;
};

// Update Workitem payload meeting the COMPLETED final-state requirements: the Unified
// Procedure Step Performed Procedure Sequence (0074,1216) with Actual start/end DateTime
// (0040,4050/4051), Performed Station Name Code Sequence (0040,4028) naming `ae_title`,
// Performed Workitem Code Sequence (0040,4019) copied from the workitem's Scheduled Workitem
// Code Sequence (0040,4018) when it has one, and Output Information Sequence (0040,4033): one
// item per series of `outputs` with its Referenced SOP Sequence (0008,1199).
nlohmann::json PerformedProcedureBody(const std::string& transaction_uid,
                                      const nlohmann::json& workitem, std::string_view ae_title,
                                      const std::vector<OutputInstance>& outputs,
                                      std::chrono::system_clock::time_point started,
                                      std::chrono::system_clock::time_point ended);

// Parses a DICOM JSON object, or an array holding exactly one (a Retrieve Workitem answer).
// Errors: kInvalidArgument naming what is wrong.
Result<nlohmann::json> ParseWorkitem(std::string_view text);

// A workitem as a search (RAD-81) lists it.
struct WorkitemSummary {
  std::string uid;    // SOP Instance UID (0008,0018)
  std::string state;  // Procedure Step State (0074,1000), empty when not returned
};

// Parses a Search Workitems answer (a JSON array of datasets; an empty body is no match).
// Items without a SOP Instance UID are skipped. Errors: kInvalidArgument if not an array.
Result<std::vector<WorkitemSummary>> ParseSearchResults(std::string_view text);

// The WADO-RS Retrieve URLs (0008,1190) of the workitem's inputs: in each Input Information
// Sequence (0040,4021) item, those of its WADO-RS Retrieval Sequence (0040,E025) items, or the
// item's own Retrieve URL when it has no such sequence; in order, without repeats.
// Errors: kInvalidArgument if there is none.
Result<std::vector<std::string>> InputRetrieveUrls(const nlohmann::json& workitem);

// The STOW-RS Storage URLs (0040,4073) of Output Destination Sequence (0040,4070) > STOW-RS
// Storage Sequence (0040,4072), in order. Errors: kInvalidArgument if there is none.
Result<std::vector<std::string>> OutputStorageUrls(const nlohmann::json& workitem);

// A UPS event report (PS3.18 11.13; PS3.4 CC.2.4-1) as received on the event channel.
struct EventReport {
  int event_type = 0;  // Event Type ID (0000,1002)
  std::string uid;     // Affected SOP Instance UID (0000,1000)
  std::string state;   // Procedure Step State (0074,1000), if given
};

// Parses one event report frame. Accepts values as {"vr":..,"Value":[..]} and, as early
// drafts wrote them, bare arrays; numbers as JSON numbers or numeric strings.
// Errors: kInvalidArgument if it is not a JSON object or lacks the Event Type ID.
Result<EventReport> ParseEventReport(std::string_view text);

// The first value of `tag` (8 hex digits, e.g. "00741000") as a string, if present.
std::optional<std::string> FirstString(const nlohmann::json& dataset, std::string_view tag);

}  // namespace conduit::tools
