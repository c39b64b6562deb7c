// The datasets of Storage Commitment (PS3.4 J.3): the N-ACTION's Action Information Conduit
// writes and the N-EVENT-REPORT's Event Information it reads from a PACS (outside input).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/ids.h"
#include "core/status.h"

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

// The N-ACTION's Action Information (Transaction UID and Referenced SOP Sequence).
void FillCommitmentRequest(const std::string& transaction_uid,
                           const std::vector<CommitmentReference>& refs, DcmDataset& dataset);

// Reads an N-EVENT-REPORT's Event Information. Errors: kInvalidArgument for an event type
// other than 1 or 2, a missing Transaction UID, or an item without both UIDs (each must be
// a syntactically valid UID).
Result<CommitmentReport> ParseCommitmentReport(uint16_t event_type, DcmDataset& dataset);

}  // namespace conduit
