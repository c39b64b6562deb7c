// The DICOM JSON (PS3.18 F.2) vocabulary of UPS workitems shared by the Worklist and the
// worklist adapter: attribute tags, element builders and readers, UIDs and date-times.
// Internal to adapters. Pure functions; reentrant.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"

namespace conduit {

// Attribute tags as DICOM JSON keys (8 upper-case hex digits).
namespace upstag {
inline constexpr char kSopClassUid[] = "00080016";
inline constexpr char kSopInstanceUid[] = "00080018";
inline constexpr char kAccessionNumber[] = "00080050";
inline constexpr char kCodeValue[] = "00080100";
inline constexpr char kCodingSchemeDesignator[] = "00080102";
inline constexpr char kCodeMeaning[] = "00080104";
inline constexpr char kReferencedSopClassUid[] = "00081150";
inline constexpr char kReferencedSopInstanceUid[] = "00081155";
inline constexpr char kRetrieveUrl[] = "00081190";
inline constexpr char kTransactionUid[] = "00081195";
inline constexpr char kReferencedSopSequence[] = "00081199";
inline constexpr char kPatientName[] = "00100010";
inline constexpr char kPatientId[] = "00100020";
inline constexpr char kPatientBirthDate[] = "00100030";
inline constexpr char kPatientSex[] = "00100040";
inline constexpr char kStudyInstanceUid[] = "0020000D";
inline constexpr char kSeriesInstanceUid[] = "0020000E";
inline constexpr char kRequestedProcedureDescription[] = "00321060";
inline constexpr char kAdmissionId[] = "00380010";
inline constexpr char kRequestedProcedureId[] = "00401001";
inline constexpr char kScheduledProcedureStepStartDateTime[] = "00404005";
inline constexpr char kExpectedCompletionDateTime[] = "00404011";
inline constexpr char kScheduledWorkitemCodeSequence[] = "00404018";
inline constexpr char kInputInformationSequence[] = "00404021";
inline constexpr char kScheduledStationNameCodeSequence[] = "00404025";
inline constexpr char kScheduledStationClassCodeSequence[] = "00404026";
inline constexpr char kScheduledStationGeographicLocationCodeSequence[] = "00404027";
inline constexpr char kScheduledHumanPerformersSequence[] = "00404034";
inline constexpr char kInputReadinessState[] = "00404041";
inline constexpr char kProcedureStepCancellationDateTime[] = "00404052";
inline constexpr char kOutputDestinationSequence[] = "00404070";
inline constexpr char kStowRsStorageSequence[] = "00404072";
inline constexpr char kStorageUrl[] = "00404073";
inline constexpr char kReferencedRequestSequence[] = "0040A370";
inline constexpr char kTypeOfInstances[] = "0040E020";
inline constexpr char kWadoRsRetrievalSequence[] = "0040E025";
inline constexpr char kProcedureStepState[] = "00741000";
inline constexpr char kProcedureStepProgressInformationSequence[] = "00741002";
inline constexpr char kScheduledProcedureStepPriority[] = "00741200";
inline constexpr char kWorklistLabel[] = "00741202";
inline constexpr char kProcedureStepLabel[] = "00741204";
inline constexpr char kUpsPerformedProcedureSequence[] = "00741216";
inline constexpr char kReplacedProcedureStepSequence[] = "00741224";
inline constexpr char kRequestingAe[] = "00741236";
inline constexpr char kReasonForCancellation[] = "00741238";
}  // namespace upstag

// The UPS Push SOP Class, the SOP Class of every workitem.
inline constexpr char kUpsPushSopClassUid[] = "1.2.840.10008.5.1.4.34.6.1";

// An element with one value; an empty value gives the element without "Value" (type 2).
nlohmann::json DicomJsonValue(std::string_view vr, const std::string& value);
// A PN element with its alphabetic group; empty: without "Value".
nlohmann::json DicomJsonPersonName(const std::string& alphabetic);
// An SQ element of `items` (each a dataset object); no items: without "Value".
nlohmann::json DicomJsonSequence(std::vector<nlohmann::json> items);
// A code sequence item (Code Value, Coding Scheme Designator, Code Meaning).
nlohmann::json DicomJsonCode(const std::string& value, const std::string& scheme,
                             const std::string& meaning);
// The first value of `tag` in `dataset` as text (a PN's alphabetic group); empty if absent
// or not text.
std::string DicomJsonString(const nlohmann::json& dataset, std::string_view tag);

// `t` as a DICOM DT in UTC: "YYYYMMDDHHMMSS+0000".
std::string DicomDateTimeUtc(TimePoint t);

// The Reason For Cancellation recorded in a workitem's dataset (its Procedure Step Progress
// Information Sequence); empty if none or the text is not a DICOM JSON object.
std::string UpsCancellationReason(const std::string& dataset);

}  // namespace conduit
