#include "dicom/commitment_report_service.h"

#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/ofstd/ofstd.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>

#include "dicom/dimse_status.h"

namespace conduit {

bool ServeCommitmentReport(T_ASC_Association* assoc, T_ASC_PresentationContextID pres_id,
                           const T_DIMSE_N_EventReportRQ& request, int timeout_s,
                           const AeTitle& peer_ae,
                           const std::function<Status(const CommitmentReport&)>& handle) {
  std::unique_ptr<DcmDataset> dataset;
  if (request.DataSetType != DIMSE_DATASET_NULL) {
    DcmDataset* received = nullptr;
    OFCondition cond = DIMSE_receiveDataSetInMemory(assoc, DIMSE_NONBLOCKING, timeout_s, &pres_id,
                                                    &received, nullptr, nullptr);
    dataset.reset(received);
    if (cond.bad()) {
      spdlog::warn("storage commitment report from {}: receive dataset: {}", peer_ae.str(),
                   cond.text());
      return false;
    }
  }
  uint16_t status = 0x0118;  // No such SOP Class
  if (std::string(request.AffectedSOPClassUID) == UID_StorageCommitmentPushModelSOPClass) {
    Status outcome;
    if (!dataset) {
      outcome = InvalidArgument("storage commitment report without event information");
    } else {
      Result<CommitmentReport> report = ParseCommitmentReport(request.EventTypeID, *dataset);
      if (report.ok()) {
        report->reported_by = peer_ae;
        outcome = handle(*report);
      } else {
        outcome = report.status();
      }
    }
    if (!outcome.ok()) {
      spdlog::warn("storage commitment report from {} refused: {}", peer_ae.str(),
                   outcome.message());
    }
    status = NResponseStatus(outcome);
  }
  T_DIMSE_Message response{};
  response.CommandField = DIMSE_N_EVENT_REPORT_RSP;
  T_DIMSE_N_EventReportRSP& rsp = response.msg.NEventReportRSP;
  rsp.MessageIDBeingRespondedTo = request.MessageID;
  OFStandard::strlcpy(rsp.AffectedSOPClassUID, request.AffectedSOPClassUID,
                      sizeof rsp.AffectedSOPClassUID);
  OFStandard::strlcpy(rsp.AffectedSOPInstanceUID, request.AffectedSOPInstanceUID,
                      sizeof rsp.AffectedSOPInstanceUID);
  rsp.EventTypeID = request.EventTypeID;
  rsp.DimseStatus = status;
  rsp.DataSetType = DIMSE_DATASET_NULL;
  rsp.opts = O_NEVENTREPORT_AFFECTEDSOPCLASSUID | O_NEVENTREPORT_AFFECTEDSOPINSTANCEUID |
             O_NEVENTREPORT_EVENTTYPEID;
  return DIMSE_sendMessageUsingMemoryData(assoc, pres_id, &response, nullptr, nullptr, nullptr,
                                          nullptr)
      .good();
}

}  // namespace conduit
