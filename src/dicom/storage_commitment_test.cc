// The Storage Commitment datasets: the N-ACTION Conduit sends, the N-EVENT-REPORT it reads.
#include "dicom/storage_commitment.h"

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/dcmtrans.h>
#include <dcmtk/dcmnet/dimse.h>
#include <dcmtk/ofstd/ofstd.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "dicom/accepted_connection.h"

namespace conduit {
namespace {

using namespace std::chrono_literals;

// A PACS that answers the N-ACTION and then reports on the same association, as PS3.4 J.3.3
// allows, before the requester releases it. Listens on 127.0.0.1 for one association.
class SameAssociationPacs {
 public:
  SameAssociationPacs() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(listen_fd_, 1);
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~SameAssociationPacs() {
    thread_.join();
    close(listen_fd_);
  }
  int port() const { return port_; }
  uint16_t report_answer() const { return report_answer_; }
  bool released() const { return released_; }

 private:
  void Serve() {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(PrepareOwnAccept().ok());
    T_ASC_Network* network = nullptr;
    T_ASC_Association* assoc = nullptr;
    ASSERT_TRUE(ReceiveAssociation(new DcmTCPConnection(fd), "127.0.0.1", 10, ASC_DEFAULTMAXPDU,
                                   false, &network, &assoc)
                    .good());
    const char* classes[] = {UID_StorageCommitmentPushModelSOPClass};
    const char* syntaxes[] = {UID_LittleEndianExplicitTransferSyntax,
                              UID_LittleEndianImplicitTransferSyntax};
    ASC_acceptContextsWithPreferredTransferSyntaxes(assoc->params, classes, 1, syntaxes, 2);
    ASSERT_TRUE(ASC_acknowledgeAssociation(assoc).good());

    T_DIMSE_Message message{};
    T_ASC_PresentationContextID id = 0;
    ASSERT_TRUE(DIMSE_receiveCommand(assoc, DIMSE_BLOCKING, 0, &id, &message, nullptr).good());
    ASSERT_EQ(message.CommandField, DIMSE_N_ACTION_RQ);
    DcmDataset* request = nullptr;
    ASSERT_TRUE(
        DIMSE_receiveDataSetInMemory(assoc, DIMSE_BLOCKING, 0, &id, &request, nullptr, nullptr)
            .good());

    T_DIMSE_Message answer{};
    answer.CommandField = DIMSE_N_ACTION_RSP;
    answer.msg.NActionRSP.MessageIDBeingRespondedTo = message.msg.NActionRQ.MessageID;
    answer.msg.NActionRSP.DimseStatus = 0;
    answer.msg.NActionRSP.DataSetType = DIMSE_DATASET_NULL;
    ASSERT_TRUE(
        DIMSE_sendMessageUsingMemoryData(assoc, id, &answer, nullptr, nullptr, nullptr, nullptr)
            .good());

    // Everything asked is committed: the request's dataset is the report's.
    T_DIMSE_Message report{};
    report.CommandField = DIMSE_N_EVENT_REPORT_RQ;
    T_DIMSE_N_EventReportRQ& rq = report.msg.NEventReportRQ;
    rq.MessageID = 1;
    OFStandard::strlcpy(rq.AffectedSOPClassUID, UID_StorageCommitmentPushModelSOPClass,
                        sizeof rq.AffectedSOPClassUID);
    OFStandard::strlcpy(rq.AffectedSOPInstanceUID, UID_StorageCommitmentPushModelSOPInstance,
                        sizeof rq.AffectedSOPInstanceUID);
    rq.EventTypeID = 1;
    rq.DataSetType = DIMSE_DATASET_PRESENT;
    ASSERT_TRUE(
        DIMSE_sendMessageUsingMemoryData(assoc, id, &report, nullptr, request, nullptr, nullptr)
            .good());
    delete request;
    T_DIMSE_Message reply{};
    ASSERT_TRUE(DIMSE_receiveCommand(assoc, DIMSE_BLOCKING, 0, &id, &reply, nullptr).good());
    ASSERT_EQ(reply.CommandField, DIMSE_N_EVENT_REPORT_RSP);
    report_answer_ = reply.msg.NEventReportRSP.DimseStatus;

    T_DIMSE_Message last{};
    released_ = DIMSE_receiveCommand(assoc, DIMSE_BLOCKING, 0, &id, &last, nullptr) ==
                DUL_PEERREQUESTEDRELEASE;
    if (released_) ASC_acknowledgeRelease(assoc);
    ASC_destroyAssociation(&assoc);
    ASC_dropNetwork(&network);
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  uint16_t report_answer_ = 0xFFFF;
  bool released_ = false;
};

TEST(StorageCommitmentTest, AReportOnTheRequestsOwnAssociationIsTakenAndAnswered) {
  SameAssociationPacs pacs;
  DicomPeer peer{AeTitle("CONDUIT"), AeTitle("PACS"), "127.0.0.1", pacs.port(), 10s, {}};
  std::vector<CommitmentReport> reports;
  const Status st = RequestStorageCommitment(
      peer, "2.25.31337", {{SopClassUid(UID_CTImageStorage), SopInstanceUid("1.2.3.9"), 0}},
      [&reports](const CommitmentReport& r) {
        reports.push_back(r);
        return Status::Ok();
      });
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].transaction_uid, "2.25.31337");
  EXPECT_EQ(reports[0].reported_by.str(), "PACS");
  ASSERT_EQ(reports[0].committed.size(), 1u);
  EXPECT_EQ(reports[0].committed[0].sop_instance.str(), "1.2.3.9");
  EXPECT_EQ(pacs.report_answer(), 0x0000);
  EXPECT_TRUE(pacs.released());
}

// A report that cannot be recorded (the index failed) is not acknowledged as taken: the PACS
// hears a processing failure and may send it again.
TEST(StorageCommitmentTest, AReportThatCannotBeRecordedIsAnsweredWithAFailure) {
  SameAssociationPacs pacs;
  DicomPeer peer{AeTitle("CONDUIT"), AeTitle("PACS"), "127.0.0.1", pacs.port(), 10s, {}};
  const Status st = RequestStorageCommitment(
      peer, "2.25.31338", {{SopClassUid(UID_CTImageStorage), SopInstanceUid("1.2.3.9"), 0}},
      [](const CommitmentReport&) { return Internal("index: disk I/O error"); });
  ASSERT_TRUE(st.ok()) << "the request itself was answered: " << st.ToString();
  EXPECT_EQ(pacs.report_answer(), 0x0110);
  EXPECT_TRUE(pacs.released());
}

std::vector<CommitmentReference> TwoRefs() {
  return {{SopClassUid(UID_CTImageStorage), SopInstanceUid("1.2.3.1"), 0},
          {SopClassUid(UID_ComprehensiveSRStorage), SopInstanceUid("1.2.3.2"), 0}};
}

TEST(StorageCommitmentTest, RequestCarriesTheTransactionAndEveryReference) {
  DcmDataset dataset;
  FillCommitmentRequest("2.25.99", TwoRefs(), dataset);
  OFString transaction;
  ASSERT_TRUE(dataset.findAndGetOFString(DCM_TransactionUID, transaction).good());
  EXPECT_EQ(transaction, "2.25.99");
  DcmItem* second = nullptr;
  ASSERT_TRUE(dataset.findAndGetSequenceItem(DCM_ReferencedSOPSequence, second, 1).good());
  OFString uid;
  ASSERT_TRUE(second->findAndGetOFString(DCM_ReferencedSOPInstanceUID, uid).good());
  EXPECT_EQ(uid, "1.2.3.2");
  ASSERT_TRUE(second->findAndGetOFString(DCM_ReferencedSOPClassUID, uid).good());
  EXPECT_EQ(uid, UID_ComprehensiveSRStorage);
}

// A PACS that commits everything answers with the request's own references (event type 1).
TEST(StorageCommitmentTest, AllCommittedReportReadsBack) {
  DcmDataset dataset;
  FillCommitmentRequest("2.25.99", TwoRefs(), dataset);
  Result<CommitmentReport> report = ParseCommitmentReport(1, dataset);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->transaction_uid, "2.25.99");
  ASSERT_EQ(report->committed.size(), 2u);
  EXPECT_EQ(report->committed[0].sop_instance.str(), "1.2.3.1");
  EXPECT_EQ(report->committed[1].sop_class.str(), UID_ComprehensiveSRStorage);
  EXPECT_TRUE(report->failed.empty());
}

TEST(StorageCommitmentTest, FailedItemsKeepTheirReasonOrGetProcessingFailure) {
  DcmDataset dataset;
  dataset.putAndInsertString(DCM_TransactionUID, "2.25.100");
  for (int i = 0; i < 2; ++i) {
    DcmItem* item = nullptr;
    ASSERT_TRUE(dataset.findOrCreateSequenceItem(DCM_FailedSOPSequence, item, i).good());
    item->putAndInsertString(DCM_ReferencedSOPClassUID, UID_CTImageStorage);
    item->putAndInsertString(DCM_ReferencedSOPInstanceUID, i == 0 ? "1.2.3.1" : "1.2.3.2");
    if (i == 0) item->putAndInsertUint16(DCM_FailureReason, 0x0112);
  }
  Result<CommitmentReport> report = ParseCommitmentReport(2, dataset);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->committed.empty());
  ASSERT_EQ(report->failed.size(), 2u);
  EXPECT_EQ(report->failed[0].failure_reason, 0x0112);
  EXPECT_EQ(report->failed[1].failure_reason, 0x0110);
}

TEST(StorageCommitmentTest, MalformedReportsAreRefused) {
  DcmDataset good;
  FillCommitmentRequest("2.25.1", TwoRefs(), good);
  EXPECT_EQ(ParseCommitmentReport(3, good).status().code(), StatusCode::kInvalidArgument);

  DcmDataset no_transaction;
  FillCommitmentRequest("", TwoRefs(), no_transaction);
  EXPECT_EQ(ParseCommitmentReport(1, no_transaction).status().code(), StatusCode::kInvalidArgument);

  DcmDataset half_item;
  half_item.putAndInsertString(DCM_TransactionUID, "2.25.2");
  DcmItem* item = nullptr;
  ASSERT_TRUE(half_item.findOrCreateSequenceItem(DCM_ReferencedSOPSequence, item, 0).good());
  item->putAndInsertString(DCM_ReferencedSOPInstanceUID, "1.2.3.1");
  EXPECT_EQ(ParseCommitmentReport(1, half_item).status().code(), StatusCode::kInvalidArgument);

  DcmDataset not_a_uid;
  FillCommitmentRequest("2.25.3", {{SopClassUid("1.2.abc"), SopInstanceUid("1.2.3"), 0}},
                        not_a_uid);
  EXPECT_EQ(ParseCommitmentReport(1, not_a_uid).status().code(), StatusCode::kInvalidArgument);
  DcmDataset blank_transaction;
  FillCommitmentRequest("   ", TwoRefs(), blank_transaction);
  EXPECT_EQ(ParseCommitmentReport(1, blank_transaction).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace conduit
