#include "dicom/dimse_listener.h"

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcostrmb.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/assoc.h>
#include <dcmtk/dcmnet/dimse.h>
#include <dcmtk/dcmnet/dul.h>
#include <dcmtk/ofstd/ofstd.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "dicom/dimse_sender.h"
#include "dicom/test_support.h"

namespace conduit {
namespace {

using namespace std::chrono_literals;
using testing::CommittingSink;
using testing::Eventually;
using testing::RunCommand;
using testing::TempDir;

constexpr const char* kCtImageStorage = UID_CTImageStorage;
constexpr const char* kMpps = UID_ModalityPerformedProcedureStepSOPClass;

// A DICOM association requester written with DCMTK directly, for what the command-line tools
// cannot do: hold associations open, send raw bytes, speak MPPS.
class TestScu {
 public:
  ~TestScu() {
    if (assoc_ != nullptr) {
      ASC_abortAssociation(assoc_);
      ASC_destroyAssociation(&assoc_);
    }
    if (network_ != nullptr) ASC_dropNetwork(&network_);
  }

  // Proposes context 1 for `sop_class` in explicit little endian (and 3 for Verification).
  OFCondition Connect(int port, const std::string& calling, const std::string& sop_class,
                      T_ASC_SC_ROLE role = ASC_SC_ROLE_DEFAULT) {
    OFCondition cond = ASC_initializeNetwork(NET_REQUESTOR, 0, 30, &network_);
    if (cond.bad()) return cond;
    T_ASC_Parameters* params = nullptr;
    ASC_createAssociationParameters(&params, ASC_DEFAULTMAXPDU);
    ASC_setAPTitles(params, calling.c_str(), "CONDUIT", nullptr);
    const std::string address = "127.0.0.1:" + std::to_string(port);
    ASC_setPresentationAddresses(params, "localhost", address.c_str());
    const char* syntaxes[] = {UID_LittleEndianExplicitTransferSyntax};
    ASC_addPresentationContext(params, 1, sop_class.c_str(), syntaxes, 1, role);
    ASC_addPresentationContext(params, 3, UID_VerificationSOPClass, syntaxes, 1);
    cond = ASC_requestAssociation(network_, params, &assoc_);
    if (cond == DUL_ASSOCIATIONREJECTED) ASC_getRejectParameters(params, &rejection_);
    if (cond.bad() && assoc_ == nullptr) ASC_destroyAssociationParameters(&params);
    return cond;
  }

  void Release() {
    ASC_releaseAssociation(assoc_);
    ASC_destroyAssociation(&assoc_);
    assoc_ = nullptr;
  }

  uint16_t Echo() {
    DIC_US status = 0xFFFF;
    DcmDataset* detail = nullptr;
    const OFCondition cond =
        DIMSE_echoUser(assoc_, assoc_->nextMsgID++, DIMSE_BLOCKING, 0, &status, &detail);
    delete detail;
    EXPECT_TRUE(cond.good()) << cond.text();
    return status;
  }

  // C-STORE whose dataset PDV carries `dataset_bytes` verbatim; returns the response status.
  uint16_t StoreRaw(const std::string& sop_instance_uid, const std::string& dataset_bytes) {
    DcmDataset command;
    command.putAndInsertString(DCM_AffectedSOPClassUID, kCtImageStorage);
    command.putAndInsertUint16(DCM_CommandField, DIMSE_C_STORE_RQ);
    command.putAndInsertUint16(DCM_MessageID, assoc_->nextMsgID++);
    command.putAndInsertUint16(DCM_Priority, 0);
    command.putAndInsertUint16(DCM_CommandDataSetType, 0x0000);
    command.putAndInsertString(DCM_AffectedSOPInstanceUID, sop_instance_uid.c_str());
    const std::string command_bytes = Encode(command, EXS_LittleEndianImplicit);
    EXPECT_TRUE(WritePdv(DUL_COMMANDPDV, command_bytes).good());
    EXPECT_TRUE(WritePdv(DUL_DATASETPDV, dataset_bytes).good());
    return ReceiveStatus(DIMSE_C_STORE_RSP);
  }

  // Sends an MPPS N-CREATE or N-SET; returns the response status.
  uint16_t SendMpps(bool create, const std::string& uid, DcmDataset& dataset) {
    T_DIMSE_Message request{};
    if (create) {
      request.CommandField = DIMSE_N_CREATE_RQ;
      T_DIMSE_N_CreateRQ& rq = request.msg.NCreateRQ;
      rq.MessageID = assoc_->nextMsgID++;
      OFStandard::strlcpy(rq.AffectedSOPClassUID, kMpps, sizeof rq.AffectedSOPClassUID);
      OFStandard::strlcpy(rq.AffectedSOPInstanceUID, uid.c_str(), sizeof rq.AffectedSOPInstanceUID);
      rq.DataSetType = DIMSE_DATASET_PRESENT;
      rq.opts = O_NCREATE_AFFECTEDSOPINSTANCEUID;
    } else {
      request.CommandField = DIMSE_N_SET_RQ;
      T_DIMSE_N_SetRQ& rq = request.msg.NSetRQ;
      rq.MessageID = assoc_->nextMsgID++;
      OFStandard::strlcpy(rq.RequestedSOPClassUID, kMpps, sizeof rq.RequestedSOPClassUID);
      OFStandard::strlcpy(rq.RequestedSOPInstanceUID, uid.c_str(),
                          sizeof rq.RequestedSOPInstanceUID);
      rq.DataSetType = DIMSE_DATASET_PRESENT;
    }
    const OFCondition cond =
        DIMSE_sendMessageUsingMemoryData(assoc_, 1, &request, nullptr, &dataset, nullptr, nullptr);
    EXPECT_TRUE(cond.good()) << cond.text();
    return ReceiveStatus(create ? DIMSE_N_CREATE_RSP : DIMSE_N_SET_RSP);
  }

  // A Storage Commitment N-EVENT-REPORT (a PACS's report); returns the response status.
  uint16_t SendCommitmentReport(uint16_t event_type, DcmDataset& dataset) {
    T_DIMSE_Message request{};
    request.CommandField = DIMSE_N_EVENT_REPORT_RQ;
    T_DIMSE_N_EventReportRQ& rq = request.msg.NEventReportRQ;
    rq.MessageID = assoc_->nextMsgID++;
    OFStandard::strlcpy(rq.AffectedSOPClassUID, UID_StorageCommitmentPushModelSOPClass,
                        sizeof rq.AffectedSOPClassUID);
    OFStandard::strlcpy(rq.AffectedSOPInstanceUID, UID_StorageCommitmentPushModelSOPInstance,
                        sizeof rq.AffectedSOPInstanceUID);
    rq.EventTypeID = event_type;
    rq.DataSetType = DIMSE_DATASET_PRESENT;
    const OFCondition cond =
        DIMSE_sendMessageUsingMemoryData(assoc_, 1, &request, nullptr, &dataset, nullptr, nullptr);
    EXPECT_TRUE(cond.good()) << cond.text();
    return ReceiveStatus(DIMSE_N_EVENT_REPORT_RSP);
  }

  // A Storage Commitment N-EVENT-REPORT whose dataset PDV carries `dataset_bytes` verbatim
  // (explicit little endian); returns the response status, or 0xFFFF when none came (the
  // association was aborted).
  uint16_t SendCommitmentReportRaw(const std::string& dataset_bytes) {
    DcmDataset command;
    command.putAndInsertString(DCM_AffectedSOPClassUID, UID_StorageCommitmentPushModelSOPClass);
    command.putAndInsertUint16(DCM_CommandField, DIMSE_N_EVENT_REPORT_RQ);
    command.putAndInsertUint16(DCM_MessageID, assoc_->nextMsgID++);
    command.putAndInsertUint16(DCM_CommandDataSetType, 0x0000);
    command.putAndInsertString(DCM_AffectedSOPInstanceUID,
                               UID_StorageCommitmentPushModelSOPInstance);
    command.putAndInsertUint16(DCM_EventTypeID, 1);
    EXPECT_TRUE(WritePdv(DUL_COMMANDPDV, Encode(command, EXS_LittleEndianImplicit)).good());
    EXPECT_TRUE(WritePdv(DUL_DATASETPDV, dataset_bytes).good());
    T_DIMSE_Message response{};
    T_ASC_PresentationContextID id = 0;
    if (DIMSE_receiveCommand(assoc_, DIMSE_NONBLOCKING, 30, &id, &response, nullptr).bad() ||
        response.CommandField != DIMSE_N_EVENT_REPORT_RSP) {
      return 0xFFFF;
    }
    return response.msg.NEventReportRSP.DimseStatus;
  }

  // A Storage Commitment N-ACTION (a modality asking Conduit to commit); the response status.
  uint16_t SendCommitmentRequest(DcmDataset& dataset) {
    T_DIMSE_Message request{};
    request.CommandField = DIMSE_N_ACTION_RQ;
    T_DIMSE_N_ActionRQ& rq = request.msg.NActionRQ;
    rq.MessageID = assoc_->nextMsgID++;
    OFStandard::strlcpy(rq.RequestedSOPClassUID, UID_StorageCommitmentPushModelSOPClass,
                        sizeof rq.RequestedSOPClassUID);
    OFStandard::strlcpy(rq.RequestedSOPInstanceUID, UID_StorageCommitmentPushModelSOPInstance,
                        sizeof rq.RequestedSOPInstanceUID);
    rq.ActionTypeID = 1;
    rq.DataSetType = DIMSE_DATASET_PRESENT;
    const OFCondition cond =
        DIMSE_sendMessageUsingMemoryData(assoc_, 1, &request, nullptr, &dataset, nullptr, nullptr);
    EXPECT_TRUE(cond.good()) << cond.text();
    return ReceiveStatus(DIMSE_N_ACTION_RSP);
  }

  const T_ASC_RejectParameters& rejection() const { return rejection_; }

 private:
  static std::string Encode(DcmDataset& dataset, E_TransferSyntax syntax) {
    std::vector<char> buffer(1 << 16);
    DcmOutputBufferStream out(buffer.data(), buffer.size());
    dataset.transferInit();
    EXPECT_TRUE(dataset.write(out, syntax, EET_ExplicitLength, nullptr, EGL_recalcGL).good());
    dataset.transferEnd();
    void* data = nullptr;
    offile_off_t length = 0;
    out.flushBuffer(data, length);
    return std::string(static_cast<char*>(data), static_cast<size_t>(length));
  }

  OFCondition WritePdv(DUL_DATAPDV type, const std::string& bytes) {
    DUL_PDV pdv{};
    pdv.fragmentLength = bytes.size();
    pdv.presentationContextID = 1;
    pdv.pdvType = type;
    pdv.lastPDV = OFTrue;
    pdv.data = const_cast<char*>(bytes.data());
    DUL_PDVLIST list{};
    list.count = 1;
    list.pdv = &pdv;
    return DUL_WritePDVs(&assoc_->DULassociation, &list);
  }

  uint16_t ReceiveStatus(T_DIMSE_Command expected) {
    T_DIMSE_Message response{};
    T_ASC_PresentationContextID id = 0;
    DcmDataset* detail = nullptr;
    const OFCondition cond =
        DIMSE_receiveCommand(assoc_, DIMSE_NONBLOCKING, 30, &id, &response, &detail);
    delete detail;
    EXPECT_TRUE(cond.good()) << cond.text();
    EXPECT_EQ(response.CommandField, expected);
    switch (response.CommandField) {
      case DIMSE_C_STORE_RSP:
        return response.msg.CStoreRSP.DimseStatus;
      case DIMSE_N_CREATE_RSP:
        return response.msg.NCreateRSP.DimseStatus;
      case DIMSE_N_SET_RSP:
        return response.msg.NSetRSP.DimseStatus;
      case DIMSE_N_EVENT_REPORT_RSP:
        return response.msg.NEventReportRSP.DimseStatus;
      case DIMSE_N_ACTION_RSP:
        return response.msg.NActionRSP.DimseStatus;
      default:
        return 0xFFFF;
    }
  }

  T_ASC_Network* network_ = nullptr;
  T_ASC_Association* assoc_ = nullptr;
  T_ASC_RejectParameters rejection_{};
};

class DimseListenerTest : public ::testing::Test {
 protected:
  void StartListener(DicomConfig config = {}) {
    config.bind = "127.0.0.1";
    config.port = 0;
    listener_ = MakeDimseListener(config, sink_);
    const Status started = listener_->Start();
    ASSERT_TRUE(started.ok()) << started.ToString();
    ASSERT_GT(listener_->port(), 0);
  }

  DicomPeer Peer(const std::string& calling = "TESTSCU") const {
    return DicomPeer{AeTitle(calling), AeTitle("CONDUIT"), "127.0.0.1", listener_->port(), 30s, {}};
  }

  std::vector<std::string> Tool(const std::string& name, const std::string& calling = "TESTSCU") {
    return {
        name, "-aet", calling, "-aec", "CONDUIT", "127.0.0.1", std::to_string(listener_->port())};
  }

  size_t IncomingFiles() const {
    size_t n = 0;
    for ([[maybe_unused]] const auto& entry :
         std::filesystem::directory_iterator(sink_.incoming_dir())) {
      ++n;
    }
    return n;
  }

  TempDir dir_;
  CommittingSink sink_{dir_.path() / "sink"};
  std::unique_ptr<DimseListener> listener_;
};

TEST_F(DimseListenerTest, EchoscuIsAnswered) {
  StartListener();
  const auto result = RunCommand(Tool("echoscu"));
  EXPECT_EQ(result.exit_code, 0) << result.output;
}

TEST_F(DimseListenerTest, StorescuInstancesAreWrittenWithMetaHeaderAndHandedToTheSink) {
  StartListener();
  // Odd instances explicit little endian, even ones implicit.
  const auto files = testing::WriteCtSeries(dir_.path() / "send", 4, "1.2.826.0.1.3680043.10.9");
  std::vector<std::string> argv = Tool("storescu");
  for (const auto& f : files) argv.push_back(f.string());

  const auto result = RunCommand(argv);

  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto received = sink_.instances();
  ASSERT_EQ(received.size(), files.size());
  for (const ReceivedInstance& instance : received) {
    Result<InstanceMeta> meta = ReadInstanceMeta(instance.file);
    ASSERT_TRUE(meta.ok()) << meta.status().ToString();
    EXPECT_EQ(meta->study_uid.str(), "1.2.826.0.1.3680043.10.9");
    EXPECT_EQ(meta->sop_instance_uid, instance.meta.sop_instance_uid);
    EXPECT_EQ(meta->patient_id, "PID0001");
    EXPECT_EQ(instance.association.calling_ae.str(), "TESTSCU");
    EXPECT_EQ(instance.association.called_ae.str(), "CONDUIT");
    EXPECT_EQ(instance.association.peer_host, "127.0.0.1");
    // An independent reader agrees that the file is a valid Part 10 file.
    const auto checked =
        RunCommand({"/usr/bin/python3", "-c",
                    "import sys, pydicom; d = pydicom.dcmread(sys.argv[1]); "
                    "assert d.file_meta.MediaStorageSOPInstanceUID == d.SOPInstanceUID; "
                    "assert len(d.PixelData) == 512",
                    instance.file.string()});
    EXPECT_EQ(checked.exit_code, 0) << checked.output;
  }
  EXPECT_TRUE(sink_.rejected().empty());
  EXPECT_TRUE(Eventually([&] { return listener_->active_associations() == 0; }));
}

TEST_F(DimseListenerTest, CallingAeOutsideTheAllowListIsRejected) {
  DicomConfig config;
  config.allowed_calling_aes = {"MODALITY1"};
  StartListener(config);

  const auto refused = RunCommand(Tool("echoscu", "STRANGER"));
  const auto allowed = RunCommand(Tool("echoscu", "MODALITY1"));

  EXPECT_NE(refused.exit_code, 0) << refused.output;
  EXPECT_EQ(allowed.exit_code, 0) << allowed.output;
  TestScu scu;
  EXPECT_EQ(scu.Connect(listener_->port(), "STRANGER", kCtImageStorage), DUL_ASSOCIATIONREJECTED);
  EXPECT_EQ(scu.rejection().result, ASC_RESULT_REJECTEDPERMANENT);
  EXPECT_EQ(scu.rejection().reason, ASC_REASON_SU_CALLINGAETITLENOTRECOGNIZED);
  const auto rejected = sink_.rejected();
  ASSERT_EQ(rejected.size(), 2u);
  EXPECT_EQ(rejected[0].code(), StatusCode::kPermissionDenied);
}

TEST_F(DimseListenerTest, ACallingAeBoundToAddressesIsRejectedFromOthers) {
  DicomConfig config;
  config.allowed_calling_aes = {"ELSEWHERE", "LOCAL", "ANYWHERE"};
  config.calling_ae_hosts["ELSEWHERE"] = {*AddressRange::Parse("10.0.0.0/8")};
  config.calling_ae_hosts["LOCAL"] = {*AddressRange::Parse("192.0.2.1"),
                                      *AddressRange::Parse("127.0.0.0/8")};
  StartListener(config);

  TestScu elsewhere;
  EXPECT_EQ(elsewhere.Connect(listener_->port(), "ELSEWHERE", kCtImageStorage),
            DUL_ASSOCIATIONREJECTED);
  EXPECT_EQ(elsewhere.rejection().result, ASC_RESULT_REJECTEDPERMANENT);
  EXPECT_EQ(elsewhere.rejection().reason, ASC_REASON_SU_CALLINGAETITLENOTRECOGNIZED);
  const auto rejected = sink_.rejected();
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_EQ(rejected[0].code(), StatusCode::kPermissionDenied);
  EXPECT_NE(rejected[0].message().find("ELSEWHERE at 127.0.0.1: calling AE title not allowed from "
                                       "this address"),
            std::string::npos)
      << rejected[0].message();
  for (const char* ae : {"LOCAL", "ANYWHERE"}) {
    TestScu scu;
    ASSERT_TRUE(scu.Connect(listener_->port(), ae, kCtImageStorage).good()) << ae;
    EXPECT_EQ(scu.Echo(), 0x0000) << ae;
  }
  EXPECT_EQ(sink_.rejected().size(), 1u);
}

TEST_F(DimseListenerTest, AssociationBeyondMaxAssociationsIsRejectedAsTransient) {
  DicomConfig config;
  config.max_associations = 2;
  StartListener(config);
  TestScu first, second, third;
  ASSERT_TRUE(first.Connect(listener_->port(), "SCU1", kCtImageStorage).good());
  ASSERT_TRUE(second.Connect(listener_->port(), "SCU2", kCtImageStorage).good());
  ASSERT_TRUE(Eventually([&] { return listener_->active_associations() == 2; }));

  EXPECT_EQ(third.Connect(listener_->port(), "SCU3", kCtImageStorage), DUL_ASSOCIATIONREJECTED);
  EXPECT_EQ(third.rejection().result, ASC_RESULT_REJECTEDTRANSIENT);
  EXPECT_EQ(third.rejection().source, ASC_SOURCE_SERVICEPROVIDER_PRESENTATION_RELATED);
  EXPECT_EQ(third.rejection().reason, ASC_REASON_SP_PRES_LOCALLIMITEXCEEDED);
  ASSERT_EQ(sink_.rejected().size(), 1u);
  EXPECT_EQ(sink_.rejected()[0].code(), StatusCode::kResourceExhausted);

  // The held associations still work, and a slot frees when one is released.
  EXPECT_EQ(first.Echo(), 0x0000);
  first.Release();
  ASSERT_TRUE(Eventually([&] { return listener_->active_associations() == 1; }));
  TestScu fourth;
  EXPECT_TRUE(fourth.Connect(listener_->port(), "SCU4", kCtImageStorage).good());
  EXPECT_EQ(fourth.Echo(), 0x0000);
}

TEST_F(DimseListenerTest, SinkOutcomesBecomeDimseStatusesAndFileIsNotKept) {
  struct Case {
    const char* name;
    Status capacity;
    Status on_instance;
    StatusCode sender_sees;
  };
  const Case cases[] = {
      {"disk below minimum", ResourceExhausted("spool: 10 MiB free"), Status::Ok(),
       StatusCode::kUnavailable},
      {"commit out of space", Status::Ok(), ResourceExhausted("spool commit: ENOSPC"),
       StatusCode::kUnavailable},
      {"policy refusal", Status::Ok(), PermissionDenied("policy"), StatusCode::kInvalidArgument},
      {"index failure", Status::Ok(), Internal("index down"), StatusCode::kInvalidArgument},
  };
  StartListener();
  const auto files = testing::WriteCtSeries(dir_.path() / "send", 2, "1.2.826.0.1.3680043.10.7");
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    sink_.set_capacity(c.capacity);
    sink_.set_instance_outcome(c.on_instance);
    Result<std::vector<Status>> sent = StoreFiles(Peer(), files);
    ASSERT_TRUE(sent.ok()) << sent.status().ToString();
    ASSERT_EQ(sent->size(), 2u);
    for (const Status& s : *sent) EXPECT_EQ(s.code(), c.sender_sees) << s.ToString();
    EXPECT_EQ(IncomingFiles(), 0u);
  }
  EXPECT_TRUE(sink_.instances().empty());

  // With room again, the same listener accepts them.
  sink_.set_capacity(Status::Ok());
  sink_.set_instance_outcome(Status::Ok());
  Result<std::vector<Status>> sent = StoreFiles(Peer(), files);
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  for (const Status& s : *sent) EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(sink_.instances().size(), 2u);
}

TEST_F(DimseListenerTest, StorescuReportsOutOfResources) {
  StartListener();
  sink_.set_capacity(ResourceExhausted("spool: disk full"));
  const auto files = testing::WriteCtSeries(dir_.path() / "send", 1, "1.2.826.0.1.3680043.10.8");
  std::vector<std::string> argv = Tool("storescu");
  argv.insert(argv.begin() + 1, "-v");
  argv.push_back(files[0].string());
  const auto result = RunCommand(argv);
  EXPECT_NE(result.output.find("Refused: OutOfResources"), std::string::npos) << result.output;
  EXPECT_TRUE(sink_.instances().empty());
}

std::string DatasetBytes(const std::filesystem::path& file) {
  DcmFileFormat format;
  EXPECT_TRUE(format.loadFile(file.c_str()).good());
  std::vector<char> buffer(1 << 16);
  DcmOutputBufferStream out(buffer.data(), buffer.size());
  DcmDataset* dataset = format.getDataset();
  dataset->transferInit();
  EXPECT_TRUE(dataset->write(out, EXS_LittleEndianExplicit, EET_ExplicitLength, nullptr).good());
  dataset->transferEnd();
  void* data = nullptr;
  offile_off_t length = 0;
  out.flushBuffer(data, length);
  return std::string(static_cast<char*>(data), static_cast<size_t>(length));
}

TEST_F(DimseListenerTest, MalformedDatasetsAreRefusedAndTheListenerKeepsServing) {
  StartListener();
  const auto files = testing::WriteCtSeries(dir_.path() / "send", 1, "1.2.826.0.1.3680043.10.6");
  const std::string sop = "1.2.826.0.1.3680043.10.6.1.1";
  const std::string whole = DatasetBytes(files[0]);
  struct Case {
    const char* name;
    std::string uid;
    std::string bytes;
  };
  const Case cases[] = {
      {"text, not a dataset", sop, std::string(400, 'x')},
      {"truncated in pixel data", sop, whole.substr(0, whole.size() - 100)},
      {"truncated in the attributes", sop, whole.substr(0, 300)},
      {"dataset of another instance", "1.2.826.0.1.3680043.10.6.999", whole},
  };
  TestScu scu;
  ASSERT_TRUE(scu.Connect(listener_->port(), "TESTSCU", kCtImageStorage).good());
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(scu.StoreRaw(c.uid, c.bytes), 0xC000);
  }
  // The same association is still usable, for a good instance too.
  EXPECT_EQ(scu.Echo(), 0x0000);
  EXPECT_EQ(scu.StoreRaw(sop, whole), 0x0000);
  scu.Release();

  EXPECT_EQ(sink_.rejected().size(), std::size(cases));
  for (const Status& s : sink_.rejected()) EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  ASSERT_EQ(sink_.instances().size(), 1u);
  EXPECT_EQ(IncomingFiles(), 0u);
  const auto next = RunCommand(Tool("echoscu"));
  EXPECT_EQ(next.exit_code, 0) << next.output;
}

TEST_F(DimseListenerTest, MppsCreateAndSetReachTheSinkWithPerformedInstances) {
  StartListener();
  TestScu scu;
  ASSERT_TRUE(scu.Connect(listener_->port(), "MODALITY", kMpps).good());
  const std::string mpps_uid = "1.2.826.0.1.3680043.10.5.100";

  DcmDataset create;
  create.putAndInsertString(DCM_PerformedProcedureStepStatus, "IN PROGRESS");
  create.putAndInsertString(DCM_Modality, "CT");
  DcmItem* scheduled = nullptr;
  ASSERT_TRUE(
      create.findOrCreateSequenceItem(DCM_ScheduledStepAttributesSequence, scheduled, 0).good());
  scheduled->putAndInsertString(DCM_StudyInstanceUID, "1.2.826.0.1.3680043.10.5");
  scheduled->putAndInsertString(DCM_AccessionNumber, "ACC5");
  EXPECT_EQ(scu.SendMpps(true, mpps_uid, create), 0x0000);

  DcmDataset set;
  set.putAndInsertString(DCM_PerformedProcedureStepStatus, "COMPLETED");
  DcmItem* series = nullptr;
  ASSERT_TRUE(set.findOrCreateSequenceItem(DCM_PerformedSeriesSequence, series, 0).good());
  series->putAndInsertString(DCM_SeriesInstanceUID, "1.2.826.0.1.3680043.10.5.1");
  for (int i = 0; i < 2; ++i) {
    DcmItem* image = nullptr;
    ASSERT_TRUE(series->findOrCreateSequenceItem(DCM_ReferencedImageSequence, image, i).good());
    image->putAndInsertString(DCM_ReferencedSOPClassUID, kCtImageStorage);
    image->putAndInsertString(DCM_ReferencedSOPInstanceUID,
                              ("1.2.826.0.1.3680043.10.5.1." + std::to_string(i + 1)).c_str());
  }
  DcmItem* other = nullptr;
  ASSERT_TRUE(
      series->findOrCreateSequenceItem(DCM_ReferencedNonImageCompositeSOPInstanceSequence, other, 0)
          .good());
  other->putAndInsertString(DCM_ReferencedSOPInstanceUID, "1.2.826.0.1.3680043.10.5.1.9");
  EXPECT_EQ(scu.SendMpps(false, mpps_uid, set), 0x0000);
  scu.Release();

  const auto events = sink_.mpps();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].mpps_sop_instance_uid, mpps_uid);
  EXPECT_EQ(events[0].status, "IN PROGRESS");
  EXPECT_EQ(events[0].study_uid.str(), "1.2.826.0.1.3680043.10.5");
  EXPECT_TRUE(events[0].instances.empty());
  EXPECT_EQ(events[0].association.calling_ae.str(), "MODALITY");
  EXPECT_EQ(events[1].mpps_sop_instance_uid, mpps_uid);
  EXPECT_EQ(events[1].status, "COMPLETED");
  EXPECT_TRUE(events[1].study_uid.empty());
  ASSERT_EQ(events[1].instances.size(), 3u);
  EXPECT_EQ(events[1].instances[0].str(), "1.2.826.0.1.3680043.10.5.1.1");
  EXPECT_EQ(events[1].instances[1].str(), "1.2.826.0.1.3680043.10.5.1.2");
  EXPECT_EQ(events[1].instances[2].str(), "1.2.826.0.1.3680043.10.5.1.9");
}

TEST_F(DimseListenerTest, StopAbortsOpenAssociationsAndReturnsPromptly) {
  StartListener();
  TestScu scu;
  ASSERT_TRUE(scu.Connect(listener_->port(), "TESTSCU", kCtImageStorage).good());
  ASSERT_TRUE(Eventually([&] { return listener_->active_associations() == 1; }));

  const auto start = std::chrono::steady_clock::now();
  listener_->Stop();
  const auto took = std::chrono::steady_clock::now() - start;

  EXPECT_EQ(listener_->active_associations(), 0);
  // Contract is about a second; the bound is generous for a loaded machine.
  EXPECT_LT(took, 15s);
  EXPECT_FALSE(testing::WaitForPort(listener_->port(), 1s));
}

// The A-ASSOCIATE-RQ PDU header (type 01H, reserved, length) announcing `length` bytes.
std::string AssociateRqHeader(uint32_t length) {
  return {'\x01',
          '\x00',
          static_cast<char>(length >> 24),
          static_cast<char>(length >> 16),
          static_cast<char>(length >> 8),
          static_cast<char>(length)};
}

TEST_F(DimseListenerTest, PeersThatStallBeforeAssociatingDoNotHoldUpOthers) {
  DicomConfig config;
  config.acse_timeout = 120s;  // far beyond TestScu's own 30 s wait for its answer
  StartListener(config);
  // Connected and silent; half a PDU header; a header announcing more than follows.
  testing::SilentPeer silent(listener_->port());
  testing::SilentPeer half_header(listener_->port(), "\x01\x00\x00");
  testing::SilentPeer short_pdu(listener_->port(), AssociateRqHeader(1000) + "0123456789");
  ASSERT_TRUE(silent.connected() && half_header.connected() && short_pdu.connected());

  TestScu scu;
  ASSERT_TRUE(scu.Connect(listener_->port(), "TESTSCU", kCtImageStorage).good());
  EXPECT_EQ(scu.Echo(), 0x0000);
  EXPECT_EQ(listener_->active_associations(), 1);
  const auto result = RunCommand(Tool("echoscu"));
  EXPECT_EQ(result.exit_code, 0) << result.output;
}

TEST_F(DimseListenerTest, APeerThatNeverAssociatesIsCutOffAfterTheAcseTimeout) {
  DicomConfig config;
  config.acse_timeout = 1s;
  StartListener(config);
  testing::SilentPeer silent(listener_->port());
  testing::SilentPeer half_header(listener_->port(), "\x01\x00");
  ASSERT_TRUE(silent.connected() && half_header.connected());
  EXPECT_TRUE(silent.ClosedByPeer(30s));
  EXPECT_TRUE(half_header.ClosedByPeer(30s));
  // Reported (and so logged and audited, throttled by the sink) as a refused association.
  ASSERT_TRUE(Eventually([&] { return sink_.rejected().size() == 2; }));
  for (const Status& why : sink_.rejected()) {
    EXPECT_EQ(why.code(), StatusCode::kDeadlineExceeded);
    EXPECT_NE(why.message().find("no A-ASSOCIATE-RQ within 1 s"), std::string::npos)
        << why.message();
  }
}

TEST_F(DimseListenerTest, APeerThatDripsItsRequestIsCutOffAfterTheAcseTimeoutToo) {
  DicomConfig config;
  config.acse_timeout = 2s;
  StartListener(config);
  // Announces a 1000-byte A-ASSOCIATE-RQ and sends it a byte every 200 ms: each read gets
  // data well within acse_timeout, so only a deadline on the whole request ends it (else after
  // about 200 s).
  testing::SilentPeer dripping(listener_->port(), AssociateRqHeader(1000));
  ASSERT_TRUE(dripping.connected());
  dripping.Drip(200ms);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(dripping.ClosedByPeer(60s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
  ASSERT_TRUE(Eventually([&] { return !sink_.rejected().empty(); }));
  ASSERT_EQ(sink_.rejected().size(), 1u);
  EXPECT_EQ(sink_.rejected()[0].code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(sink_.rejected()[0].message().find("no A-ASSOCIATE-RQ within 2 s"), std::string::npos)
      << sink_.rejected()[0].message();

  // The listener still serves a peer that associates at once.
  TestScu scu;
  ASSERT_TRUE(scu.Connect(listener_->port(), "TESTSCU", kCtImageStorage).good());
  EXPECT_EQ(scu.Echo(), 0x0000);
}

TEST_F(DimseListenerTest, APeerThatSpeaksSomethingElseIsReportedAndAPortProbeIsNot) {
  StartListener();
  ASSERT_TRUE(testing::WaitForPort(listener_->port()));  // connects and closes: a probe
  testing::SilentPeer http(listener_->port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(http.ClosedByPeer(30s));
  ASSERT_TRUE(Eventually([&] { return !sink_.rejected().empty(); }));
  ASSERT_EQ(sink_.rejected().size(), 1u);
  EXPECT_EQ(sink_.rejected()[0].code(), StatusCode::kInvalidArgument);
  EXPECT_NE(sink_.rejected()[0].message().find("no valid A-ASSOCIATE-RQ"), std::string::npos)
      << sink_.rejected()[0].message();
}

TEST_F(DimseListenerTest, ConnectionsBeyondTheLimitAreClosedAndReported) {
  DicomConfig config;
  config.max_associations = 1;  // so 1 + 8 connections may be open at once
  StartListener(config);
  // From nine addresses, within each address's own limit.
  std::vector<std::unique_ptr<testing::SilentPeer>> silent;
  for (int i = 0; i < 9; ++i) {
    silent.push_back(std::make_unique<testing::SilentPeer>(listener_->port(), "",
                                                           "127.0.0." + std::to_string(10 + i)));
    ASSERT_TRUE(silent.back()->connected());
  }
  testing::SilentPeer one_too_many(listener_->port(), "", "127.0.0.30");
  EXPECT_TRUE(one_too_many.ClosedByPeer(30s));
  ASSERT_TRUE(Eventually([&] { return !sink_.rejected().empty(); }));
  EXPECT_EQ(sink_.rejected()[0].code(), StatusCode::kResourceExhausted);
  EXPECT_NE(sink_.rejected()[0].message().find("9 connections already open"), std::string::npos)
      << sink_.rejected()[0].message();

  // Once they go, a real peer gets in.
  silent.clear();
  EXPECT_TRUE(Eventually([&] {
    TestScu scu;
    return scu.Connect(listener_->port(), "TESTSCU", kCtImageStorage).good() && scu.Echo() == 0;
  }));
}

TEST_F(DimseListenerTest, OneAddressCannotTakeAllTheRoomForNegotiating) {
  DicomConfig config;
  config.max_associations = 1;  // 8 may be negotiating, 4 of them from one address
  StartListener(config);
  std::vector<std::unique_ptr<testing::SilentPeer>> silent;
  for (int i = 0; i < 4; ++i) {
    silent.push_back(std::make_unique<testing::SilentPeer>(listener_->port(), "", "127.0.0.5"));
    ASSERT_TRUE(silent.back()->connected());
  }
  testing::SilentPeer fifth(listener_->port(), "", "127.0.0.5");
  EXPECT_TRUE(fifth.ClosedByPeer(30s));
  ASSERT_TRUE(Eventually([&] { return !sink_.rejected().empty(); }));
  EXPECT_EQ(sink_.rejected()[0].code(), StatusCode::kResourceExhausted);
  EXPECT_NE(sink_.rejected()[0].message().find("4 connections from 127.0.0.5 still negotiating"),
            std::string::npos)
      << sink_.rejected()[0].message();

  // Another address still gets in and is served.
  TestScu scu;
  ASSERT_TRUE(scu.Connect(listener_->port(), "TESTSCU", kCtImageStorage).good());
  EXPECT_EQ(scu.Echo(), 0x0000);
  EXPECT_EQ(sink_.rejected().size(), 1u);
}

TEST_F(DimseListenerTest, StopClosesConnectionsThatAreStillNegotiating) {
  DicomConfig config;
  config.acse_timeout = 120s;
  StartListener(config);
  testing::SilentPeer silent(listener_->port());
  ASSERT_TRUE(silent.connected());
  {
    // Connections are accepted in order: once this one is served, the silent one is waiting
    // for its A-ASSOCIATE-RQ on a thread of its own.
    TestScu scu;
    ASSERT_TRUE(scu.Connect(listener_->port(), "TESTSCU", kCtImageStorage).good());
    EXPECT_EQ(scu.Echo(), 0x0000);
  }

  const auto start = std::chrono::steady_clock::now();
  listener_->Stop();
  const auto took = std::chrono::steady_clock::now() - start;
  // Contract is about a second, not the 120 s acse_timeout; the bound is generous for a
  // loaded machine.
  EXPECT_LT(took, 15s);
  EXPECT_TRUE(silent.ClosedByPeer(5s));
}

TEST_F(DimseListenerTest, SecondListenerOnTheSamePortIsUnavailable) {
  StartListener();
  DicomConfig config;
  config.bind = "127.0.0.1";
  config.port = listener_->port();
  auto second = MakeDimseListener(config, sink_);
  const Status started = second->Start();
  EXPECT_EQ(started.code(), StatusCode::kUnavailable) << started.ToString();
}

// A PACS reports storage commitment on an association it opens, proposing the default role or
// the SCP role by role selection: the report reaches the sink and is acknowledged.
TEST_F(DimseListenerTest, StorageCommitmentReportsReachTheSinkInEitherRole) {
  StartListener();
  for (T_ASC_SC_ROLE role : {ASC_SC_ROLE_DEFAULT, ASC_SC_ROLE_SCP}) {
    TestScu scu;
    ASSERT_TRUE(scu.Connect(listener_->port(), "PACS", UID_StorageCommitmentPushModelSOPClass, role)
                    .good());
    DcmDataset report;
    report.putAndInsertString(DCM_TransactionUID, "2.25.4242");
    DcmItem* item = nullptr;
    ASSERT_TRUE(report.findOrCreateSequenceItem(DCM_ReferencedSOPSequence, item, 0).good());
    item->putAndInsertString(DCM_ReferencedSOPClassUID, kCtImageStorage);
    item->putAndInsertString(DCM_ReferencedSOPInstanceUID, "1.2.826.0.1.3680043.10.6.1");
    DcmItem* failed = nullptr;
    ASSERT_TRUE(report.findOrCreateSequenceItem(DCM_FailedSOPSequence, failed, 0).good());
    failed->putAndInsertString(DCM_ReferencedSOPClassUID, kCtImageStorage);
    failed->putAndInsertString(DCM_ReferencedSOPInstanceUID, "1.2.826.0.1.3680043.10.6.2");
    failed->putAndInsertUint16(DCM_FailureReason, 0x0112);
    EXPECT_EQ(scu.SendCommitmentReport(2, report), 0x0000);
    scu.Release();
  }
  const std::vector<CommitmentReport> reports = sink_.commitment_reports();
  ASSERT_EQ(reports.size(), 2u);
  for (const CommitmentReport& r : reports) {
    EXPECT_EQ(r.transaction_uid, "2.25.4242");
    EXPECT_EQ(r.reported_by.str(), "PACS");
    ASSERT_EQ(r.committed.size(), 1u);
    EXPECT_EQ(r.committed[0].sop_instance.str(), "1.2.826.0.1.3680043.10.6.1");
    ASSERT_EQ(r.failed.size(), 1u);
    EXPECT_EQ(r.failed[0].sop_instance.str(), "1.2.826.0.1.3680043.10.6.2");
    EXPECT_EQ(r.failed[0].failure_reason, 0x0112);
  }
}

// A report without a Transaction UID is answered with a failure and not handed on; the
// association stays usable.
TEST_F(DimseListenerTest, MalformedStorageCommitmentReportIsRefused) {
  StartListener();
  TestScu scu;
  ASSERT_TRUE(
      scu.Connect(listener_->port(), "PACS", UID_StorageCommitmentPushModelSOPClass).good());
  DcmDataset report;
  report.putAndInsertString(DCM_PatientID, "not a report");
  EXPECT_NE(scu.SendCommitmentReport(1, report), 0x0000);
  EXPECT_EQ(scu.Echo(), 0x0000);
  scu.Release();
  EXPECT_TRUE(sink_.commitment_reports().empty());
}

// A report whose Transaction UID claims 805 MB but carries a few bytes: DCMTK cannot receive
// it, the association is aborted without anything held or handed on, and the listener goes
// on serving.
TEST_F(DimseListenerTest, AReportClaimingAHugeValueAbortsTheAssociationWithoutHoldingIt) {
  StartListener();
  TestScu scu;
  ASSERT_TRUE(
      scu.Connect(listener_->port(), "PACS", UID_StorageCommitmentPushModelSOPClass).good());
  // (0008,1195) in explicit VR little endian: UI has a 16-bit length field, so the 32-bit
  // length of an unknown VR (UN) for the same tag.
  std::string bytes("\x08\x00\x95\x11UN\x00\x00\x00\x00\x00\x30", 12);
  bytes += "2.25.1";
  EXPECT_EQ(scu.SendCommitmentReportRaw(bytes), 0xFFFF);
  TestScu next;
  ASSERT_TRUE(next.Connect(listener_->port(), "PACS", UID_VerificationSOPClass).good());
  EXPECT_EQ(next.Echo(), 0x0000);
  next.Release();
  EXPECT_TRUE(sink_.commitment_reports().empty());
}

// Conduit is no archive: a modality asking it to commit is refused (0110), and told so.
TEST_F(DimseListenerTest, StorageCommitmentRequestsAreRefused) {
  StartListener();
  TestScu scu;
  ASSERT_TRUE(
      scu.Connect(listener_->port(), "MODALITY", UID_StorageCommitmentPushModelSOPClass).good());
  DcmDataset request;
  request.putAndInsertString(DCM_TransactionUID, "2.25.77");
  EXPECT_EQ(scu.SendCommitmentRequest(request), 0x0110);
  EXPECT_EQ(scu.Echo(), 0x0000);
  scu.Release();
  EXPECT_FALSE(sink_.rejected().empty());
}

}  // namespace
}  // namespace conduit
