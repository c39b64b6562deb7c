// Serving one Storage Commitment N-EVENT-REPORT-RQ on an association, wherever it arrives: on
// the listener (an association the PACS opened) or on the association that sent the N-ACTION.
// Private to src/dicom (DCMTK types).
#pragma once

#include <functional>

#include "core/ids.h"
#include "core/status.h"
#include "dicom/dcmtk_net.h"  // first DCMTK include: brings osconfig.h
// (dcmtk_net.h first)
#include <dcmtk/dcmnet/dimse.h>

#include "dicom/storage_commitment.h"

namespace conduit {

// Reads the request's dataset, parses the report (reported_by = `peer_ae`), hands it to
// `handle`, and answers: 0000 when `handle` returned OK, 0106 for a malformed report, 0118 for
// another SOP class, else by NResponseStatus. Returns false if the association broke.
bool ServeCommitmentReport(T_ASC_Association* assoc, T_ASC_PresentationContextID pres_id,
                           const T_DIMSE_N_EventReportRQ& request, int timeout_s,
                           const AeTitle& peer_ae,
                           const std::function<Status(const CommitmentReport&)>& handle);

}  // namespace conduit
