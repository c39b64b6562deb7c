#include "dicom/storage_commitment.h"

#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/dimse.h>
#include <dcmtk/ofstd/ofstd.h>

#include <chrono>

#include "dicom/commitment_report_service.h"
#include "dicom/dcmtk_net.h"  // first DCMTK include: brings osconfig.h
#include "dicom/dimse_association.h"
#include "dicom/dimse_status.h"

namespace conduit {
namespace {

constexpr uint16_t kRequestStorageCommitment = 1;  // Action Type ID
constexpr int kReportLingerSeconds = 1;

}  // namespace

Status RequestStorageCommitment(const DicomPeer& peer, const std::string& transaction_uid,
                                const std::vector<CommitmentReference>& refs,
                                const std::function<Status(const CommitmentReport&)>& on_report) {
  const std::string what = "storage commitment request to " + PeerName(peer);
  Association association;
  RETURN_IF_ERROR(association.Open(
      peer, {{UID_StorageCommitmentPushModelSOPClass,
              {UID_LittleEndianExplicitTransferSyntax, UID_LittleEndianImplicitTransferSyntax}}}));
  T_ASC_Association* assoc = association.get();
  const T_ASC_PresentationContextID pres_id =
      ASC_findAcceptedPresentationContextID(assoc, UID_StorageCommitmentPushModelSOPClass);
  if (pres_id == 0) {
    return FailedPrecondition(what +
                              ": the peer does not accept the Storage Commitment Push Model");
  }
  DcmDataset information;
  FillCommitmentRequest(transaction_uid, refs, information);

  T_DIMSE_Message request{};
  request.CommandField = DIMSE_N_ACTION_RQ;
  T_DIMSE_N_ActionRQ& rq = request.msg.NActionRQ;
  rq.MessageID = assoc->nextMsgID++;
  OFStandard::strlcpy(rq.RequestedSOPClassUID, UID_StorageCommitmentPushModelSOPClass,
                      sizeof rq.RequestedSOPClassUID);
  OFStandard::strlcpy(rq.RequestedSOPInstanceUID, UID_StorageCommitmentPushModelSOPInstance,
                      sizeof rq.RequestedSOPInstanceUID);
  rq.ActionTypeID = kRequestStorageCommitment;
  rq.DataSetType = DIMSE_DATASET_PRESENT;
  OFCondition cond = DIMSE_sendMessageUsingMemoryData(assoc, pres_id, &request, nullptr,
                                                      &information, nullptr, nullptr);
  if (cond.bad()) return BrokenAssociation(peer, "N-ACTION", cond);

  const int timeout_s = TimeoutSeconds(peer.timeout);
  T_DIMSE_Message response{};
  T_ASC_PresentationContextID response_id = 0;
  DcmDataset* detail = nullptr;
  cond =
      DIMSE_receiveCommand(assoc, DIMSE_NONBLOCKING, timeout_s, &response_id, &response, &detail);
  delete detail;
  if (cond.bad()) return BrokenAssociation(peer, "N-ACTION", cond);
  if (response.CommandField != DIMSE_N_ACTION_RSP) {
    return Unavailable(what + ": unexpected DIMSE command in answer");
  }
  const T_DIMSE_N_ActionRSP& rsp = response.msg.NActionRSP;
  if (rsp.DataSetType != DIMSE_DATASET_NULL) {
    DcmDataset* reply = nullptr;
    cond = DIMSE_receiveDataSetInMemory(assoc, DIMSE_NONBLOCKING, timeout_s, &response_id, &reply,
                                        nullptr, nullptr);
    delete reply;
    if (cond.bad()) return BrokenAssociation(peer, "N-ACTION", cond);
  }
  if (rsp.DimseStatus != kDimseSuccess) {
    association.Release();
    return Unavailable(what + ": status " + DimseStatusText(rsp.DimseStatus));
  }
  // A PACS may report on this association while it is open (PS3.4 J.3.3): linger a second.
  while (ASC_dataWaiting(assoc, kReportLingerSeconds)) {
    T_DIMSE_Message message{};
    T_ASC_PresentationContextID id = 0;
    DcmDataset* command_detail = nullptr;
    cond =
        DIMSE_receiveCommand(assoc, DIMSE_NONBLOCKING, timeout_s, &id, &message, &command_detail);
    delete command_detail;
    if (cond == DUL_PEERREQUESTEDRELEASE) {
      association.AcknowledgePeerRelease();
      return Status::Ok();
    }
    // The request was answered: a broken association here loses nothing but this report,
    // which then does not come (and the delivery is retried after its deadline).
    if (cond.bad()) return Status::Ok();
    if (message.CommandField != DIMSE_N_EVENT_REPORT_RQ) break;
    if (!ServeCommitmentReport(assoc, id, message.msg.NEventReportRQ, timeout_s, peer.called_ae,
                               on_report)) {
      return Status::Ok();
    }
  }
  association.Release();
  return Status::Ok();
}

}  // namespace conduit
