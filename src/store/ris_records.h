// Rows of the index for the RIS over HL7 v2: the outbox of messages to send, and the orders
// and reports the RIS sent us. Messages and reports hold patient identifiers (the RIS is
// inside the trust); none of it is ever logged as is. patient_key is a keyed hash of the
// patient ID (never the ID itself).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/ids.h"

namespace conduit {

// pending: to be sent (again); sent: the RIS answered AA; failed: the RIS answered AR (or the
// retries ran out): never sent again.
enum class Hl7OutboxState { kPending, kSent, kFailed };
// "pending", "sent", "failed".
std::string_view Hl7OutboxStateName(Hl7OutboxState state);
std::optional<Hl7OutboxState> ParseHl7OutboxState(std::string_view name);

// One outgoing HL7 v2 message. (destination, control_id) is unique: enqueueing it again
// changes nothing. Messages of one patient_key are sent in id order.
struct Hl7OutboxRecord {
  int64_t id = 0;  // assigned by the index
  std::string destination;
  std::string patient_key;
  JobId job_id;              // the job it reports on (0: none)
  std::string message_type;  // "ORU^R01", "OMI^O23", "ORM^O01"
  std::string control_id;    // MSH-10
  std::string message;       // ER7 text
  Hl7OutboxState state = Hl7OutboxState::kPending;
  int attempts = 0;           // attempts that did not end in AA or AR
  TimePoint next_attempt_at;  // pending: not sent before this
  std::string last_error;     // never contains patient data
  TimePoint created_at;
  std::optional<TimePoint> sent_at;  // when it was acknowledged (AA) or refused (AR)
};

// The latest we heard of an order from the RIS (ORM^O01 / OMI^O23), by accession number.
struct RisOrderRecord {
  std::string accession;
  std::string placer_order;
  std::string filler_order;
  std::string patient_key;
  std::string study_uid;      // when the RIS gave it (ZDS-1, IPC-3)
  std::string order_control;  // ORC-1
  std::string order_status;   // ORC-5
  std::string priority;       // TQ1-9 / ORC-7.6 / OBR-27.6 code
  TimePoint updated_at;
};

// A report (ORU^R01, one per OBR) the RIS sent: the radiologist's ground truth for the
// evidence layer. (sending_application, control_id, obr_index) is unique.
struct RisReportRecord {
  int64_t id = 0;                   // assigned by the index
  std::string sending_application;  // MSH-3
  std::string control_id;           // MSH-10
  int obr_index = 1;                // which OBR of the message (1-based)
  std::string accession;
  std::string study_uid;
  std::string result_status;  // OBR-25: P, F, C, X
  std::string observed_at;    // OBR-7 as written
  std::string text;           // the report text, lines joined by '\n'
  // Coded observations as a JSON array of {"observation": {code, text, system},
  // "value": {code, text, system}}.
  std::string codes_json = "[]";
  TimePoint received_at;
};

}  // namespace conduit
