// Fuzz target: the Event Information of a Storage Commitment N-EVENT-REPORT as a PACS may send
// it, read by ParseCommitmentReport. The dataset is built from the input by a small grammar
// rather than decoded from DICOM bytes: DCMTK's decoder reserves an element's declared length
// before reading it, which a fuzzer's memory limit reports for nearly every mutated length,
// while DCMTK's own decoding is what fuzz_instance_meta exercises. Byte 0 is the event type
// (low 2 bits: 0-3); then records, each a byte whose value modulo 8 says what to add:
//   0 Transaction UID, 1 a new Referenced SOP Sequence item, 2 a new Failed SOP Sequence item,
//   3 Referenced SOP Class UID, 4 Referenced SOP Instance UID (3, 4 into the current item, or
//   the dataset before any item), 5 Failure Reason (2 bytes), 6 one of those six attributes
//   with a wrong VR (UL, or an empty sequence), 7 one of them empty;
// strings are a length byte (0-63) and raw bytes (backslashes, spaces and NULs included).
// Checks that errors are kInvalidArgument with a message, that parsing is deterministic, that a
// parsed report has a valid Transaction UID, items with two valid UIDs and a failure reason on
// every failed item (none on a committed one), and that the committed items written as a
// request read back the same.

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcsequen.h>
#include <dcmtk/dcmdata/dcvrul.h>
#include <dcmtk/oflog/oflog.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/dicom_uid.h"
#include "dicom/commitment_dataset.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_commitment_report: property violated: %s\n", what);
  std::abort();
}

const DcmTagKey kTags[] = {DCM_TransactionUID,           DCM_ReferencedSOPSequence,
                           DCM_FailedSOPSequence,        DCM_ReferencedSOPClassUID,
                           DCM_ReferencedSOPInstanceUID, DCM_FailureReason};

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool done() const { return at_ >= size_; }
  uint8_t Byte() { return at_ < size_ ? data_[at_++] : 0; }
  std::string String() {
    size_t n = Byte() % 64;
    std::string s;
    while (n-- > 0 && !done()) s += static_cast<char>(Byte());
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

void Build(Input& in, DcmDataset& dataset) {
  DcmItem* current = nullptr;
  while (!in.done()) {
    const uint8_t op = in.Byte() % 8;
    DcmItem& target = current != nullptr ? *current : static_cast<DcmItem&>(dataset);
    switch (op) {
      case 0:
        dataset.putAndInsertString(DCM_TransactionUID, in.String().c_str());
        break;
      case 1:
      case 2: {
        DcmItem* item = nullptr;
        const DcmTagKey seq = op == 1 ? DCM_ReferencedSOPSequence : DCM_FailedSOPSequence;
        if (dataset.findOrCreateSequenceItem(seq, item, -2).good()) current = item;
        break;
      }
      case 3:
        target.putAndInsertString(DCM_ReferencedSOPClassUID, in.String().c_str());
        break;
      case 4:
        target.putAndInsertString(DCM_ReferencedSOPInstanceUID, in.String().c_str());
        break;
      case 5: {
        const uint16_t reason = static_cast<uint16_t>(in.Byte() | (in.Byte() << 8));
        target.putAndInsertUint16(DCM_FailureReason, reason);
        break;
      }
      case 6: {
        const DcmTagKey& tag = kTags[in.Byte() % 6];
        DcmElement* wrong = (in.Byte() & 1) ? static_cast<DcmElement*>(new DcmSequenceOfItems(tag))
                                            : new DcmUnsignedLong(DcmTag(tag, EVR_UL));
        if (target.insert(wrong, /*replaceOld=*/true).bad()) delete wrong;
        break;
      }
      default:
        target.insertEmptyElement(kTags[in.Byte() % 6], /*replaceOld=*/true);
        break;
    }
  }
}

bool SameRefs(const std::vector<conduit::CommitmentReference>& a,
              const std::vector<conduit::CommitmentReference>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].sop_class.str() != b[i].sop_class.str() ||
        a[i].sop_instance.str() != b[i].sop_instance.str() ||
        a[i].failure_reason != b[i].failure_reason) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Input in(data, size);
  const uint16_t event_type = in.Byte() & 0x3;
  DcmDataset dataset;
  Build(in, dataset);

  const conduit::Result<conduit::CommitmentReport> report =
      conduit::ParseCommitmentReport(event_type, dataset);
  const conduit::Result<conduit::CommitmentReport> again =
      conduit::ParseCommitmentReport(event_type, dataset);
  if (report.ok() != again.ok()) Fail("parsing is not deterministic");
  if (!report.ok()) {
    if (report.status().code() != conduit::StatusCode::kInvalidArgument) {
      Fail("an error other than kInvalidArgument");
    }
    if (report.status().message().empty()) Fail("an error without a message");
    if (report.status().message() != again.status().message()) Fail("errors differ");
    return 0;
  }
  if (event_type != 1 && event_type != 2) Fail("a report of an event type other than 1 or 2");
  if (!conduit::IsDicomUidText(report->transaction_uid)) Fail("an invalid Transaction UID");
  if (!SameRefs(report->committed, again->committed) || !SameRefs(report->failed, again->failed)) {
    Fail("parsing is not deterministic");
  }
  for (const auto& ref : report->committed) {
    if (!conduit::IsDicomUidText(ref.sop_class.str()) ||
        !conduit::IsDicomUidText(ref.sop_instance.str())) {
      Fail("an item without two valid UIDs");
    }
    if (ref.failure_reason != 0) Fail("a committed item with a failure reason");
  }
  for (const auto& ref : report->failed) {
    if (!conduit::IsDicomUidText(ref.sop_class.str()) ||
        !conduit::IsDicomUidText(ref.sop_instance.str())) {
      Fail("an item without two valid UIDs");
    }
    if (ref.failure_reason == 0) Fail("a failed item without a failure reason");
  }

  // What it committed, asked again, reads back as the same references.
  DcmDataset request;
  conduit::FillCommitmentRequest(report->transaction_uid, report->committed, request);
  const conduit::Result<conduit::CommitmentReport> echoed =
      conduit::ParseCommitmentReport(1, request);
  if (!echoed.ok()) Fail("a request written from a parsed report does not read back");
  if (echoed->transaction_uid != report->transaction_uid) Fail("the Transaction UID changed");
  if (!SameRefs(echoed->committed, report->committed)) Fail("the references changed");
  return 0;
}
