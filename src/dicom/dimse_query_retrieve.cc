#include "dicom/dimse_query_retrieve.h"

#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcostrmf.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/dimse.h>
#include <dcmtk/ofstd/ofstd.h>

#include <algorithm>
#include <charconv>
#include <memory>
#include <system_error>

#include "dicom/dcmtk_net.h"  // first DCMTK include: brings osconfig.h
#include "dicom/dimse_association.h"
#include "dicom/dimse_status.h"
#include "dicom/instance_meta.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using std::chrono::steady_clock;

// How often a wait for the peer wakes to look at `stop` and the deadline.
constexpr int kPollSeconds = 1;
// DCMTK allows at most 128 presentation contexts; one goes to the C-GET itself.
constexpr size_t kMaxStorageContexts = 127;

const char* kUncompressedSyntaxes[] = {
    UID_LittleEndianExplicitTransferSyntax,
    UID_LittleEndianImplicitTransferSyntax,
};

// Syntaxes a PACS may hold instances in and send without transcoding; stored as received.
const char* kCompressedSyntaxes[] = {
    UID_JPEGProcess14SV1TransferSyntax, UID_JPEGProcess14TransferSyntax,
    UID_JPEGProcess1TransferSyntax,     UID_JPEGProcess2_4TransferSyntax,
    UID_JPEGLSLosslessTransferSyntax,   UID_JPEGLSLossyTransferSyntax,
    UID_RLELosslessTransferSyntax,      UID_JPEG2000LosslessOnlyTransferSyntax,
    UID_JPEG2000TransferSyntax,         UID_DeflatedExplicitVRLittleEndianTransferSyntax,
};

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  size_t lead = 0;
  while (lead < s.size() && s[lead] == ' ') ++lead;
  return s.substr(lead);
}

std::string StringOf(DcmDataset& dataset, const DcmTagKey& tag) {
  OFString value;
  if (dataset.findAndGetOFStringArray(tag, value).bad()) return {};
  return Trimmed(value.c_str());
}

std::vector<std::string> ValuesOf(DcmDataset& dataset, const DcmTagKey& tag) {
  std::vector<std::string> out;
  const std::string all = StringOf(dataset, tag);
  size_t start = 0;
  while (start <= all.size()) {
    const size_t end = std::min(all.find('\\', start), all.size());
    std::string value = Trimmed(all.substr(start, end - start));
    if (!value.empty()) out.push_back(std::move(value));
    start = end + 1;
  }
  return out;
}

StudyMatch MatchOf(DcmDataset& identifier) {
  StudyMatch match;
  match.study_uid = StudyUid(StringOf(identifier, DCM_StudyInstanceUID));
  match.patient_id = StringOf(identifier, DCM_PatientID);
  match.study_date = StringOf(identifier, DCM_StudyDate);
  match.modalities = ValuesOf(identifier, DCM_ModalitiesInStudy);
  match.study_description = StringOf(identifier, DCM_StudyDescription);
  match.body_part = StringOf(identifier, DCM_BodyPartExamined);
  match.sop_classes = ValuesOf(identifier, DCM_SOPClassesInStudy);
  const std::string count = StringOf(identifier, DCM_NumberOfStudyRelatedInstances);
  int n = 0;
  auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), n);
  if (!count.empty() && ec == std::errc() && end == count.data() + count.size() && n >= 0) {
    match.instance_count = n;
  }
  return match;
}

// Waits for the peer's next DIMSE command, waking every second: kUnavailable once `stop` is
// requested; kDeadlineExceeded past `deadline` or after the peer's timeout of silence.
Status NextCommand(T_ASC_Association* assoc, const DicomPeer& peer, const std::string& operation,
                   steady_clock::time_point deadline, const std::stop_token& stop,
                   T_ASC_PresentationContextID& pres_id, T_DIMSE_Message& message) {
  const auto silent_until = std::min(deadline, steady_clock::now() + peer.timeout);
  for (;;) {
    if (stop.stop_requested()) {
      return Unavailable(operation + " to " + PeerName(peer) + ": stopped (shutting down)");
    }
    if (steady_clock::now() >= silent_until) {
      return DeadlineExceeded(operation + " to " + PeerName(peer) +
                              (silent_until == deadline ? ": not done within the time limit"
                                                        : ": the peer went silent"));
    }
    DcmDataset* detail = nullptr;
    message = T_DIMSE_Message{};
    OFCondition cond =
        DIMSE_receiveCommand(assoc, DIMSE_NONBLOCKING, kPollSeconds, &pres_id, &message, &detail);
    delete detail;
    if (cond == DIMSE_NODATAAVAILABLE) continue;
    if (cond.bad()) return BrokenAssociation(peer, operation, cond);
    return Status::Ok();
  }
}

// NextCommand, which must be a `expected` (a C-FIND-RSP or C-MOVE-RSP): kUnavailable otherwise.
Status NextResponse(T_ASC_Association* assoc, const DicomPeer& peer, const std::string& operation,
                    T_DIMSE_Command expected, steady_clock::time_point deadline,
                    const std::stop_token& stop, T_ASC_PresentationContextID& pres_id,
                    T_DIMSE_Message& message) {
  RETURN_IF_ERROR(NextCommand(assoc, peer, operation, deadline, stop, pres_id, message));
  if (message.CommandField != expected) {
    return Unavailable(operation + " to " + PeerName(peer) + ": unexpected DIMSE command");
  }
  return Status::Ok();
}

Status CheckPatientId(const std::string& patient_id) {
  if (patient_id.empty()) return InvalidArgument("C-FIND: the study has no Patient ID");
  if (patient_id.find_first_of("*?\\") != std::string::npos) {
    return InvalidArgument(
        "C-FIND: the Patient ID holds a wildcard or backslash; it would match other patients");
  }
  return Status::Ok();
}

// Receives the dataset of one C-STORE sub-operation into `file` and answers it. Returns the
// association's state (an error if it broke); `kept` says whether the file holds an instance
// of `study`.
Status ReceiveSubOperation(T_ASC_Association* assoc, const DicomPeer& peer,
                           T_ASC_PresentationContextID pres_id, T_DIMSE_C_StoreRQ& request,
                           const fs::path& file, const StudyUid& study, bool& kept) {
  kept = false;
  const int timeout_s = TimeoutSeconds(peer.timeout);
  const std::string what = "C-GET from " + PeerName(peer) + ": C-STORE sub-operation";
  Status outcome;
  std::error_code ec;
  if (request.DataSetType == DIMSE_DATASET_NULL) {
    outcome = InvalidArgument(what + ": request has no dataset");
  } else {
    DcmOutputFileStream* stream = nullptr;
    OFCondition cond = DIMSE_createFilestream(file.c_str(), &request, assoc, pres_id,
                                              /*writeMetaheader=*/OFTrue, &stream);
    if (cond.bad()) {
      delete stream;
      fs::remove(file, ec);
      outcome = ResourceExhausted(what + ": create " + file.string() + ": " + cond.text());
      DIC_UL bytes = 0, pdvs = 0;
      cond = DIMSE_ignoreDataSet(assoc, DIMSE_NONBLOCKING, timeout_s, &bytes, &pdvs);
      if (cond.bad()) return BrokenAssociation(peer, "C-GET", cond);
    } else {
      // Streams the PDVs to the file as they arrive: never the whole dataset in memory.
      cond = DIMSE_receiveDataSetInFile(assoc, DIMSE_NONBLOCKING, timeout_s, &pres_id, stream,
                                        nullptr, nullptr);
      const bool written = stream->status().good();
      delete stream;  // closes the file
      if (cond.bad()) {
        fs::remove(file, ec);
        return BrokenAssociation(peer, "C-GET", cond);
      }
      Result<InstanceMeta> meta =
          written ? ReadInstanceMeta(file)
                  : Result<InstanceMeta>(ResourceExhausted(what + ": write failed"));
      if (!meta.ok()) {
        outcome = meta.status().WithContext(what);
      } else if (meta->study_uid != study) {
        outcome = InvalidArgument(what + ": an instance of another study than the one asked for");
      } else if (meta->sop_instance_uid.str() != Trimmed(request.AffectedSOPInstanceUID)) {
        outcome = InvalidArgument(what + ": dataset SOP Instance UID differs from the request's");
      }
      if (outcome.ok()) {
        kept = true;
      } else {
        fs::remove(file, ec);
      }
    }
  }
  T_DIMSE_C_StoreRSP response{};
  response.MessageIDBeingRespondedTo = request.MessageID;
  response.DimseStatus = StoreResponseStatus(outcome);
  response.DataSetType = DIMSE_DATASET_NULL;
  OFStandard::strlcpy(response.AffectedSOPClassUID, request.AffectedSOPClassUID,
                      sizeof response.AffectedSOPClassUID);
  OFStandard::strlcpy(response.AffectedSOPInstanceUID, request.AffectedSOPInstanceUID,
                      sizeof response.AffectedSOPInstanceUID);
  response.opts = O_STORE_AFFECTEDSOPCLASSUID | O_STORE_AFFECTEDSOPINSTANCEUID;
  OFCondition cond = DIMSE_sendStoreResponse(assoc, pres_id, &request, &response, nullptr);
  if (cond.bad()) return BrokenAssociation(peer, "C-GET", cond);
  return Status::Ok();
}

// Reads and drops a dataset that follows a command (e.g. a C-GET-RSP's failed SOP list).
Status SkipDataset(T_ASC_Association* assoc, const DicomPeer& peer, const std::string& operation) {
  DIC_UL bytes = 0, pdvs = 0;
  OFCondition cond =
      DIMSE_ignoreDataSet(assoc, DIMSE_NONBLOCKING, TimeoutSeconds(peer.timeout), &bytes, &pdvs);
  if (cond.bad()) return BrokenAssociation(peer, operation, cond);
  return Status::Ok();
}

// Opens an association offering `contexts`, the first of which is the Study Root model
// `operation` (C-FIND or C-GET) uses; kUnavailable if the peer does not accept that one.
Status OpenStudyRoot(Association& association, const DicomPeer& peer,
                     const std::vector<Association::Context>& contexts,
                     const std::string& operation) {
  RETURN_IF_ERROR(association.Open(peer, contexts));
  if (association.AcceptedTransferSyntax(1).empty()) {
    return Unavailable(operation + " to " + PeerName(peer) +
                       ": the peer does not accept Study Root " + operation);
  }
  return Status::Ok();
}

// OpenStudyRoot with the one context `operation` needs (`sop_class`, uncompressed).
Status OpenStudyRootOnly(Association& association, const DicomPeer& peer, const char* sop_class,
                         const std::string& operation) {
  return OpenStudyRoot(
      association, peer,
      {{sop_class, {std::begin(kUncompressedSyntaxes), std::end(kUncompressedSyntaxes)}}},
      operation);
}

// The identifier of a retrieve of a whole study.
void StudyKeys(DcmDataset& keys, const StudyUid& study) {
  keys.putAndInsertString(DCM_QueryRetrieveLevel, "STUDY");
  keys.putAndInsertString(DCM_StudyInstanceUID, study.str().c_str());
}

// Sends a C-FIND-RQ, C-GET-RQ or C-MOVE-RQ (`command`; to `move_destination`) of `sop_class`
// with `identifier` on presentation context 1 (the one OpenStudyRoot checked).
Status SendStudyRootRequest(T_ASC_Association* assoc, const DicomPeer& peer,
                            const std::string& operation, T_DIMSE_Command command,
                            const char* sop_class, DcmDataset& identifier,
                            const std::string& move_destination = {}) {
  T_DIMSE_Message request{};
  request.CommandField = command;
  auto fill = [&](auto& rq) {
    rq.MessageID = assoc->nextMsgID++;
    OFStandard::strlcpy(rq.AffectedSOPClassUID, sop_class, sizeof rq.AffectedSOPClassUID);
    rq.Priority = DIMSE_PRIORITY_MEDIUM;
    rq.DataSetType = DIMSE_DATASET_PRESENT;
  };
  if (command == DIMSE_C_FIND_RQ) {
    fill(request.msg.CFindRQ);
  } else if (command == DIMSE_C_MOVE_RQ) {
    fill(request.msg.CMoveRQ);
    OFStandard::strlcpy(request.msg.CMoveRQ.MoveDestination, move_destination.c_str(),
                        sizeof request.msg.CMoveRQ.MoveDestination);
  } else {
    fill(request.msg.CGetRQ);
  }
  OFCondition cond =
      DIMSE_sendMessageUsingMemoryData(assoc, 1, &request, nullptr, &identifier, nullptr, nullptr);
  if (cond.bad()) return BrokenAssociation(peer, operation, cond);
  return Status::Ok();
}

}  // namespace

Result<std::vector<StudyMatch>> FindStudies(const DicomPeer& peer, const std::string& patient_id,
                                            steady_clock::time_point deadline,
                                            std::stop_token stop) {
  RETURN_IF_ERROR(CheckPatientId(patient_id));
  const std::string operation = "C-FIND";
  Association association;
  RETURN_IF_ERROR(OpenStudyRootOnly(association, peer,
                                    UID_FINDStudyRootQueryRetrieveInformationModel, operation));
  T_ASC_Association* assoc = association.get();

  DcmDataset query;
  query.putAndInsertString(DCM_QueryRetrieveLevel, "STUDY");
  query.putAndInsertString(DCM_PatientID, patient_id.c_str());
  for (const DcmTagKey& tag :
       {DCM_StudyInstanceUID, DCM_StudyDate, DCM_ModalitiesInStudy, DCM_StudyDescription,
        DCM_BodyPartExamined, DCM_SOPClassesInStudy, DCM_NumberOfStudyRelatedInstances}) {
    query.insertEmptyElement(tag);
  }
  RETURN_IF_ERROR(SendStudyRootRequest(assoc, peer, operation, DIMSE_C_FIND_RQ,
                                       UID_FINDStudyRootQueryRetrieveInformationModel, query));

  std::vector<StudyMatch> matches;
  for (;;) {
    T_ASC_PresentationContextID pres_id = 0;
    T_DIMSE_Message message;
    RETURN_IF_ERROR(
        NextResponse(assoc, peer, operation, DIMSE_C_FIND_RSP, deadline, stop, pres_id, message));
    const T_DIMSE_C_FindRSP& response = message.msg.CFindRSP;
    std::unique_ptr<DcmDataset> identifier;
    if (response.DataSetType != DIMSE_DATASET_NULL) {
      DcmDataset* received = nullptr;
      OFCondition cond =
          DIMSE_receiveDataSetInMemory(assoc, DIMSE_NONBLOCKING, TimeoutSeconds(peer.timeout),
                                       &pres_id, &received, nullptr, nullptr);
      identifier.reset(received);
      if (cond.bad()) return BrokenAssociation(peer, operation, cond);
    }
    const uint16_t status = response.DimseStatus;
    if (status == STATUS_FIND_Pending_MatchesAreContinuing ||
        status == STATUS_FIND_Pending_WarningUnsupportedOptionalKeys) {
      if (!identifier) continue;
      StudyMatch match = MatchOf(*identifier);
      // Exact match only: a PACS that matched loosely must not hand us another patient.
      if (match.study_uid.str().empty() || match.patient_id != patient_id) continue;
      matches.push_back(std::move(match));
      continue;
    }
    if (status == kDimseSuccess) break;
    return Unavailable(operation + " to " + PeerName(peer) + ": status " + DimseStatusText(status));
  }
  association.Release();
  return matches;
}

Result<std::vector<fs::path>> GetStudy(const DicomPeer& peer, const StudyUid& study,
                                       const std::vector<std::string>& sop_classes,
                                       const fs::path& dir, steady_clock::time_point deadline,
                                       std::stop_token stop) {
  const std::string operation = "C-GET";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return ErrnoStatus(ec.value(), operation + ": create " + dir.string());

  std::vector<Association::Context> contexts;
  contexts.push_back({UID_GETStudyRootQueryRetrieveInformationModel,
                      {std::begin(kUncompressedSyntaxes), std::end(kUncompressedSyntaxes)}});
  if (!sop_classes.empty() && 2 * sop_classes.size() <= kMaxStorageContexts) {
    // Two contexts per class: the PACS sends each instance as it holds it, compressed or not.
    for (const std::string& sop_class : sop_classes) {
      contexts.push_back({sop_class,
                          {std::begin(kUncompressedSyntaxes), std::end(kUncompressedSyntaxes)},
                          ASC_SC_ROLE_SCP});
      contexts.push_back({sop_class,
                          {std::begin(kCompressedSyntaxes), std::end(kCompressedSyntaxes)},
                          ASC_SC_ROLE_SCP});
    }
  } else {
    const size_t n = std::min<size_t>(numberOfDcmShortSCUStorageSOPClassUIDs, kMaxStorageContexts);
    for (size_t i = 0; i < n; ++i) {
      contexts.push_back({dcmShortSCUStorageSOPClassUIDs[i],
                          {std::begin(kUncompressedSyntaxes), std::end(kUncompressedSyntaxes)},
                          ASC_SC_ROLE_SCP});
    }
  }
  Association association;
  RETURN_IF_ERROR(OpenStudyRoot(association, peer, contexts, operation));
  T_ASC_Association* assoc = association.get();

  DcmDataset keys;
  StudyKeys(keys, study);
  RETURN_IF_ERROR(SendStudyRootRequest(assoc, peer, operation, DIMSE_C_GET_RQ,
                                       UID_GETStudyRootQueryRetrieveInformationModel, keys));

  std::vector<fs::path> files;
  int refused = 0;
  for (;;) {
    T_ASC_PresentationContextID pres_id = 0;
    T_DIMSE_Message message;
    RETURN_IF_ERROR(NextCommand(assoc, peer, operation, deadline, stop, pres_id, message));
    if (message.CommandField == DIMSE_C_STORE_RQ) {
      const fs::path file = dir / (std::to_string(files.size() + refused + 1) + ".dcm");
      bool kept = false;
      RETURN_IF_ERROR(
          ReceiveSubOperation(assoc, peer, pres_id, message.msg.CStoreRQ, file, study, kept));
      if (kept) {
        files.push_back(file);
      } else {
        ++refused;
      }
      continue;
    }
    if (message.CommandField != DIMSE_C_GET_RSP) {
      return Unavailable(operation + " to " + PeerName(peer) + ": unexpected DIMSE command");
    }
    const T_DIMSE_C_GetRSP& response = message.msg.CGetRSP;
    if (response.DataSetType != DIMSE_DATASET_NULL) {
      RETURN_IF_ERROR(SkipDataset(assoc, peer, operation));
    }
    if (response.DimseStatus == STATUS_GET_Pending_SubOperationsAreContinuing) continue;
    if (response.DimseStatus == kDimseSuccess && refused == 0) break;
    const int failed = (response.opts & O_GET_NUMBEROFFAILEDSUBOPERATIONS)
                           ? response.NumberOfFailedSubOperations
                           : 0;
    return Unavailable(operation + " to " + PeerName(peer) + ": status " +
                       DimseStatusText(response.DimseStatus) + ", " + std::to_string(files.size()) +
                       " instance(s) received, " + std::to_string(failed) +
                       " failed at the peer, " + std::to_string(refused) + " refused here");
  }
  association.Release();
  return files;
}

Result<int> MoveStudy(const DicomPeer& peer, const StudyUid& study, const AeTitle& destination,
                      steady_clock::time_point deadline, std::stop_token stop) {
  const std::string operation = "C-MOVE";
  Association association;
  RETURN_IF_ERROR(OpenStudyRootOnly(association, peer,
                                    UID_MOVEStudyRootQueryRetrieveInformationModel, operation));
  T_ASC_Association* assoc = association.get();

  DcmDataset keys;
  StudyKeys(keys, study);
  RETURN_IF_ERROR(SendStudyRootRequest(assoc, peer, operation, DIMSE_C_MOVE_RQ,
                                       UID_MOVEStudyRootQueryRetrieveInformationModel, keys,
                                       destination.str()));
  for (;;) {
    T_ASC_PresentationContextID pres_id = 0;
    T_DIMSE_Message message;
    RETURN_IF_ERROR(
        NextResponse(assoc, peer, operation, DIMSE_C_MOVE_RSP, deadline, stop, pres_id, message));
    const T_DIMSE_C_MoveRSP& response = message.msg.CMoveRSP;
    if (response.DataSetType != DIMSE_DATASET_NULL) {
      RETURN_IF_ERROR(SkipDataset(assoc, peer, operation));
    }
    if (response.DimseStatus == STATUS_MOVE_Pending_SubOperationsAreContinuing) continue;
    const int completed = (response.opts & O_MOVE_NUMBEROFCOMPLETEDSUBOPERATIONS)
                              ? response.NumberOfCompletedSubOperations
                              : 0;
    const int failed = (response.opts & O_MOVE_NUMBEROFFAILEDSUBOPERATIONS)
                           ? response.NumberOfFailedSubOperations
                           : 0;
    if (response.DimseStatus == kDimseSuccess && failed == 0) {
      association.Release();
      return completed;
    }
    std::string message_text =
        operation + " to " + PeerName(peer) + " (destination " + destination.str() + "): status " +
        DimseStatusText(response.DimseStatus) + ", " + std::to_string(completed) + " sent, " +
        std::to_string(failed) + " failed";
    if (response.DimseStatus == STATUS_MOVE_Refused_MoveDestinationUnknown) {
      message_text +=
          " (the PACS does not know the destination AE title: add it, with this "
          "node's address and DICOM port)";
    }
    return Unavailable(message_text);
  }
}

}  // namespace conduit
