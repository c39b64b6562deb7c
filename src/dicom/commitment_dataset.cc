#include "dicom/commitment_dataset.h"

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcitem.h>

#include <utility>

#include "core/dicom_uid.h"

namespace conduit {
namespace {

constexpr uint16_t kAllCommitted = 1;  // Event Type IDs
constexpr uint16_t kSomeFailed = 2;

std::string StringOf(DcmItem& item, const DcmTagKey& key) {
  OFString value;
  if (item.findAndGetOFString(key, value).bad()) return {};
  return std::string(value.c_str());
}

// The items of `sequence` in `dataset` (none if absent). kInvalidArgument for an item
// without two valid UIDs.
Status ReadReferences(DcmDataset& dataset, const DcmTagKey& sequence, bool with_reason,
                      std::vector<CommitmentReference>& out) {
  for (unsigned long i = 0;; ++i) {
    DcmItem* item = nullptr;
    if (dataset.findAndGetSequenceItem(sequence, item, static_cast<signed long>(i)).bad() ||
        item == nullptr) {
      break;
    }
    CommitmentReference ref;
    ref.sop_class = SopClassUid(StringOf(*item, DCM_ReferencedSOPClassUID));
    ref.sop_instance = SopInstanceUid(StringOf(*item, DCM_ReferencedSOPInstanceUID));
    if (!IsDicomUidText(ref.sop_class.str()) || !IsDicomUidText(ref.sop_instance.str())) {
      return InvalidArgument(
          "storage commitment report: an item lacks a valid SOP class or instance UID");
    }
    if (with_reason) {
      Uint16 reason = 0;
      // A failed item without a reason still failed: 0x0110 (processing failure).
      ref.failure_reason =
          item->findAndGetUint16(DCM_FailureReason, reason).good() && reason != 0 ? reason : 0x0110;
    }
    out.push_back(std::move(ref));
  }
  return Status::Ok();
}

}  // namespace

void FillCommitmentRequest(const std::string& transaction_uid,
                           const std::vector<CommitmentReference>& refs, DcmDataset& dataset) {
  dataset.putAndInsertString(DCM_TransactionUID, transaction_uid.c_str());
  // An empty sequence still has to be present (Type 1 in the N-ACTION).
  dataset.insertEmptyElement(DCM_ReferencedSOPSequence);
  for (const CommitmentReference& ref : refs) {
    auto* item = new DcmItem();
    item->putAndInsertString(DCM_ReferencedSOPClassUID, ref.sop_class.str().c_str());
    item->putAndInsertString(DCM_ReferencedSOPInstanceUID, ref.sop_instance.str().c_str());
    dataset.insertSequenceItem(DCM_ReferencedSOPSequence, item);
  }
}

Result<CommitmentReport> ParseCommitmentReport(uint16_t event_type, DcmDataset& dataset) {
  if (event_type != kAllCommitted && event_type != kSomeFailed) {
    return InvalidArgument("storage commitment report: event type " + std::to_string(event_type) +
                           " (expected 1 or 2)");
  }
  CommitmentReport report;
  report.transaction_uid = StringOf(dataset, DCM_TransactionUID);
  if (!IsDicomUidText(report.transaction_uid)) {
    return InvalidArgument("storage commitment report: no valid Transaction UID");
  }
  RETURN_IF_ERROR(ReadReferences(dataset, DCM_ReferencedSOPSequence, false, report.committed));
  RETURN_IF_ERROR(ReadReferences(dataset, DCM_FailedSOPSequence, true, report.failed));
  return report;
}

}  // namespace conduit
