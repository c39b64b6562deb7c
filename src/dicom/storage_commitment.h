// Storage Commitment Push Model (PS3.4 Annex J; IHE RAD-10), the requesting side: Conduit asks
// a PACS to take responsibility for instances it stored there (N-ACTION-RQ, Request Storage
// Commitment), and reads the PACS's answer, an N-EVENT-REPORT-RQ that arrives on Conduit's
// listener, usually over an association the PACS opens. Datasets never leave this file.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/ids.h"
#include "core/status.h"
#include "dicom/dimse_sender.h"

class DcmDataset;

namespace conduit {

// One instance of a commitment request or report. failure_reason: the report's Failure
// Reason (0008,1197) for a failed one (0x0110 processing failure, 0x0112 no such object
// instance, 0x0119 class/instance conflict, 0x0122 SOP class not supported, 0x0131
// duplicate transaction UID, 0x0213 resource limitation); 0 otherwise.
struct CommitmentReference {
  SopClassUid sop_class;
  SopInstanceUid sop_instance;
  uint16_t failure_reason = 0;
};

// What a PACS reported for one transaction (Event Type 1: all committed; 2: some failed).
struct CommitmentReport {
  std::string transaction_uid;
  std::vector<CommitmentReference> committed;  // Referenced SOP Sequence (0008,1199)
  std::vector<CommitmentReference> failed;     // Failed SOP Sequence (0008,1198)
  AeTitle reported_by;                         // the calling AE title of the association
};

// Sends the N-ACTION-RQ for `refs` under `transaction_uid` (a fresh UID: core/dicom_uid.h) on
// an association of its own: OK once the peer answered success. The report usually comes
// later on the listener; a peer that sends it on this association instead, within a second
// of its answer, has it handed to `on_report` (and answered 0000) before the release. Errors:
// kUnavailable if the peer cannot be reached, does not accept the Storage Commitment Push
// Model SOP class, or answers a failure status; kDeadlineExceeded if it goes silent.
Status RequestStorageCommitment(const DicomPeer& peer, const std::string& transaction_uid,
                                const std::vector<CommitmentReference>& refs,
                                const std::function<void(const CommitmentReport&)>& on_report);

// The N-ACTION's Action Information (Transaction UID and Referenced SOP Sequence).
void FillCommitmentRequest(const std::string& transaction_uid,
                           const std::vector<CommitmentReference>& refs, DcmDataset& dataset);

// Reads an N-EVENT-REPORT's Event Information. Errors: kInvalidArgument for an event type
// other than 1 or 2, a missing Transaction UID, or an item without both UIDs.
Result<CommitmentReport> ParseCommitmentReport(uint16_t event_type, DcmDataset& dataset);

}  // namespace conduit
