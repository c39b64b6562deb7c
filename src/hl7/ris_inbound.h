// RisInbound: what Conduit does with the messages a RIS sends to its MLLP listener.
//  - ORM^O01 / OMI^O23: each order is kept in ris_orders (by accession number). An order that
//    says the exam is completed (OrderSaysExamCompleted) completes the open assembly units of
//    the studies with that accession number now, as an MPPS COMPLETED would. An order that
//    arrives before any image of its study completes nothing: the study's quiet period then
//    decides (completing at its first instance would send a partial study).
//  - ORU^R01: each report (one per OBR) is kept in ris_reports, the ground truth the
//    evidence layer reads; a report sent again (same MSH-3, MSH-10) is stored once.
// Answers: AA once stored; AE (ERR-3 207) when the index fails (the RIS sends it again later);
// AR for a message refused for good: another type (ERR-3 200), no accession number (101).
// Each message is audited (action hl7_receive) and logged by type and control id only; one that
// does not parse (OnUnparsed) once a minute per peer and kind, counted every time.
// Metric: conduit_hl7_received_total{source,type,ack}. Connections the listener closed at
// once (OnConnectionRefused) are counted in conduit_hl7_connections_refused_total{source,reason}
// and logged and audited (hl7_refused) once a minute per peer and reason.
// Thread safety: Handle, OnConnectionRefused and OnUnparsed may be called concurrently.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "core/refusal_throttle.h"
#include "hl7/hl7_ack.h"
#include "hl7/hl7_message.h"
#include "hl7/patient_key.h"
#include "hl7/ris_messages.h"
#include "store/index.h"

namespace conduit {

// Completes the open units of a study now; returns the jobs created (the assembler's
// StudyAssembler::CompleteStudy).
using CompleteStudyFn =
    std::function<Result<std::vector<JobId>>(const StudyUid& study, const std::string& why)>;

struct RisInboundOptions {
  std::string source = "ris";           // names the RIS in audit, logs and metrics
  std::string application = "CONDUIT";  // MSH-3 of our ACKs
  std::string facility;                 // MSH-4 of our ACKs
};

// The exam of an order is completed when ORC-5 (order status) is CM, or OBR-25 (result
// status) is one of R, P, F, C (results exist, so images do); never when ORC-1 cancels or
// discontinues the order (CA, OC, CR, DC, OD, DR). Case-sensitive, as HL7 tables are.
bool OrderSaysExamCompleted(const RisOrder& order);

class RisInbound {
 public:
  RisInbound(RisInboundOptions options, Index& index, const Clock& clock, Metrics& metrics,
             const PatientKeyer& keyer, CompleteStudyFn complete_study);

  // Handles one message and returns the ACK to send back (ER7). Errors only when no ACK can
  // be built (the listener then answers itself).
  Result<std::string> Handle(const Hl7Message& message);
  // A connection the listener closed before reading from it (MllpListenerOptions::on_refused).
  void OnConnectionRefused(const std::string& peer, const Status& why);
  // A message that did not parse (MllpListenerOptions::on_unparsed): counted as type
  // "unparsed" (ack AR, or "none" when its header was unreadable too and the connection was
  // closed), logged and audited (hl7_receive, failure) once a minute per peer and kind.
  void OnUnparsed(const std::string& peer, const std::string& control_id, const Status& why);

 private:
  struct Handled {
    AckCode code = AckCode::kAccept;
    std::string error_code;           // HL7 table 0357
    std::string text;                 // no patient data
    int items = 0;                    // orders or reports stored
    std::vector<StudyUid> completed;  // studies whose units were completed
  };
  Handled HandleOrders(const Hl7Message& message);
  Handled HandleReports(const Hl7Message& message);
  void Audit(const Hl7Message& message, const std::string& type, const Handled& handled);

  const RisInboundOptions options_;
  Index& index_;
  const Clock& clock_;
  Metrics& metrics_;
  const PatientKeyer& keyer_;
  CompleteStudyFn complete_study_;
  std::atomic<uint64_t> ack_sequence_{0};
  RefusalThrottle refusals_{std::chrono::minutes(1), 1024};
  RefusalThrottle unparsed_{std::chrono::minutes(1), 1024};
};

}  // namespace conduit
