// Storage Commitment Push Model (PS3.4 Annex J; IHE RAD-10), the requesting side: Conduit asks
// a PACS to take responsibility for instances it stored there (N-ACTION-RQ, Request Storage
// Commitment). The PACS's answer, an N-EVENT-REPORT-RQ, arrives on Conduit's listener, usually
// over an association the PACS opens (dicom/commitment_report_service.h).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "dicom/commitment_dataset.h"
#include "dicom/dimse_sender.h"

namespace conduit {

// Sends the N-ACTION-RQ for `refs` under `transaction_uid` (a fresh UID: core/dicom_uid.h) on
// an association of its own: OK once the peer answered success. The report usually comes
// later on the listener; a peer that sends it on this association instead, within a second
// of its answer, has it handed to `on_report` before the release (answered 0000 when that
// returns OK, else by NResponseStatus, so the peer may send it again). Errors:
// kFailedPrecondition if the peer does not accept the Storage Commitment Push Model SOP class
// (it does not offer the service: asking again will not help); kUnavailable if it cannot be
// reached or answers a failure status; kDeadlineExceeded if it goes silent.
Status RequestStorageCommitment(const DicomPeer& peer, const std::string& transaction_uid,
                                const std::vector<CommitmentReference>& refs,
                                const std::function<Status(const CommitmentReport&)>& on_report);

}  // namespace conduit
