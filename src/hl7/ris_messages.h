// The HL7 v2 messages Conduit exchanges with a RIS, as plain structs:
//  - out: an AI tool's finding as a preliminary result (ORU^R01), and a change of an order's
//    priority after AI triage (OMI^O23, v2.5.1 with TQ1, or ORM^O01 with the older TQ fields);
//  - in: the RIS's orders and their status (ORM^O01, OMI^O23) and its reports (ORU^R01).
// Builders validate what they need and return kInvalidArgument naming the missing field, never
// its content. Readers are lenient: absent fields read as "".
// Thread safety: free functions without shared state.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "hl7/hl7_message.h"

namespace conduit {

// MSH fields of an outgoing message.
struct Hl7Header {
  std::string sending_application = "CONDUIT";  // MSH-3
  std::string sending_facility;                 // MSH-4
  std::string receiving_application;            // MSH-5
  std::string receiving_facility;               // MSH-6
  TimePoint time;                               // MSH-7
  std::string control_id;                       // MSH-10, required, unique per message
  std::string processing_id = "P";              // MSH-11: P production, T training, D debug
  std::string version = "2.5.1";                // MSH-12
};

// The first triplet of a CE/CWE: identifier, text, coding system.
struct Hl7Coded {
  std::string code;
  std::string text;
  std::string system;
  bool operator==(const Hl7Coded&) const = default;
};

struct RisPatient {
  std::string id;            // PID-3.1
  std::string id_authority;  // PID-3.4, e.g. "NHS"
  std::string id_type;       // PID-3.5, e.g. "NH" (NHS number) or "MR"
  std::string family_name;   // PID-5.1
  std::string given_name;    // PID-5.2
  bool operator==(const RisPatient&) const = default;
};

// The identifiers that tie a message to an order and its study.
struct RisOrderIds {
  std::string placer_order_number;     // ORC-2 / OBR-2
  std::string filler_order_number;     // ORC-3 / OBR-3
  std::string accession_number;        // IPC-1 (OMI), OBR-18 (ORM, ORU)
  std::string requested_procedure_id;  // IPC-2 (OMI), OBR-19 (ORM)
  std::string study_instance_uid;      // IPC-3 (OMI), ZDS-1 (ORM); an OBX in our ORU
  bool operator==(const RisOrderIds&) const = default;
};

// HL7 priority codes (table 0027 in TQ, table 0485 in TQ1-9).
enum class OrderPriority { kStat, kAsap, kRoutine, kPreop, kCallback, kTimingCritical };
// "S", "A", "R", "P", "C", "T".
std::string_view PriorityCode(OrderPriority priority);
// The priority for a code; nullopt for anything else.
std::optional<OrderPriority> PriorityFromCode(std::string_view code);

// One OBX line of an AI result.
struct AiObservation {
  enum class Kind { kCoded, kNumeric, kText };  // OBX-2 CWE, NM, TX
  Kind kind = Kind::kText;
  Hl7Coded observation;       // OBX-3: what was observed (e.g. a finding code or "score")
  Hl7Coded coded_value;       // OBX-5 for kCoded
  std::string value;          // OBX-5 for kNumeric (a decimal number) and kText
  std::string units;          // OBX-6 for kNumeric
  std::string abnormal_flag;  // OBX-8, e.g. "A" abnormal, "N" normal; may be empty
};

// An AI tool's finding for one study, sent to the RIS as ORU^R01.
struct AiFindingResult {
  Hl7Header header;
  RisPatient patient;                       // id required
  RisOrderIds order;                        // accession or a placer/filler order number required
  Hl7Coded procedure;                       // OBR-4 universal service identifier
  TimePoint observed_at;                    // OBR-7 and OBX-14
  std::string tool;                         // OBX-18 equipment: the AI product and version
  std::string result_status = "P";          // OBR-25 and OBX-11: P preliminary (AI), F, C
  std::vector<AiObservation> observations;  // at least one
};

// ORU^R01^ORU_R01: MSH, PID, ORC (RE), OBR, an OBX per observation, then an OBX with the study
// instance UID (DCM 110180) when given. Errors: kInvalidArgument naming the missing or malformed
// field.
Result<Hl7Message> BuildAiResultOru(const AiFindingResult& result);

// A request to change an order's priority (e.g. to stat after an AI finding).
struct PriorityUpdate {
  Hl7Header header;
  RisPatient patient;  // optional in OMI; id required for ORM
  RisOrderIds order;   // a placer or filler order number required
  Hl7Coded procedure;  // OBR-4
  OrderPriority priority = OrderPriority::kStat;
  std::string reason;    // ORC-16.2 order control code reason, e.g. "AI triage"
  std::string modality;  // IPC-5 (OMI)
};

// OMI^O23^OMI_O23 (v2.5.1): ORC-1 "XO" (change order request), TQ1-9 the new priority, OBR,
// IPC (accession, requested procedure, study instance UID, modality).
Result<Hl7Message> BuildPriorityUpdateOmi(const PriorityUpdate& update);
// ORM^O01^ORM_O01 for RIS that predate OMI: ORC-1 "XO", priority in ORC-7.6 and OBR-27.6 (TQ),
// accession in OBR-18, study instance UID in ZDS-1 when given.
Result<Hl7Message> BuildPriorityUpdateOrm(const PriorityUpdate& update);

// One order as the RIS reports it.
struct RisOrder {
  std::string order_control;  // ORC-1, e.g. NW new, XO changed, CA cancel, SC status changed
  std::string order_status;   // ORC-5, e.g. SC scheduled, IP in process, CM complete, CA
  RisPatient patient;
  RisOrderIds order;
  Hl7Coded procedure;                     // OBR-4
  std::string priority_code;              // TQ1-9.1, else ORC-7.6, else OBR-27.6
  std::optional<OrderPriority> priority;  // priority_code when it is a known code
  std::string modality;                   // IPC-5, else OBR-24
  std::string result_status;              // OBR-25, if the RIS sends it with the order
};

// Orders in an ORM^O01 or OMI^O23, one per ORC (an OBR without an ORC starts one too).
// Accession: IPC-1, else OBR-18. Study instance UID: ZDS-1, else IPC-3.
// Errors: kInvalidArgument if the message is another type or has no order.
Result<std::vector<RisOrder>> ReadOrders(const Hl7Message& message);

// One report (an OBR and its OBX lines) of an ORU^R01.
struct RisReport {
  RisPatient patient;
  RisOrderIds order;          // accession from OBR-18; study UID from an OBX coded 110180^^DCM
  Hl7Coded procedure;         // OBR-4
  std::string result_status;  // OBR-25: P preliminary, F final, C corrected, X cancelled
  std::string observed_at;    // OBR-7 as written (DTM)
  // OBX-5 of TX, FT, ST or untyped OBX, a line per repetition; in FT a \.br\ escape is a line
  // break.
  std::string text;
  // OBX of type CE, CWE or CNE: what was observed (OBX-3) and the coded answer (OBX-5).
  struct CodedObservation {
    Hl7Coded observation;
    Hl7Coded value;
    bool operator==(const CodedObservation&) const = default;
  };
  std::vector<CodedObservation> coded;
};

// Reports in an ORU^R01, one per OBR. Errors: kInvalidArgument if the message is another type
// or has no OBR.
Result<std::vector<RisReport>> ReadReports(const Hl7Message& message);

}  // namespace conduit
