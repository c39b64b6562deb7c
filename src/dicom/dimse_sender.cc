#include "dicom/dimse_sender.h"

#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/dimse.h>
#include <dcmtk/dcmnet/dul.h>
#include <dcmtk/ofstd/ofstd.h>
#include <spdlog/spdlog.h>

#include <map>
#include <memory>
#include <system_error>
#include <utility>

#include "dicom/dcmtk_net.h"  // first DCMTK include: brings osconfig.h
#include "dicom/dimse_association.h"
#include "dicom/dimse_status.h"
#include "dicom/instance_meta.h"

namespace conduit {
namespace {

// DCMTK allows at most 128 presentation contexts (odd ids 1..255).
constexpr int kMaxPresentationContexts = 128;

const char* kUncompressedTransferSyntaxes[] = {
    UID_LittleEndianExplicitTransferSyntax,
    UID_LittleEndianImplicitTransferSyntax,
};

}  // namespace

Status Echo(const DicomPeer& peer) {
  Association association;
  RETURN_IF_ERROR(association.Open(
      peer, {{UID_VerificationSOPClass,
              {UID_LittleEndianExplicitTransferSyntax, UID_LittleEndianImplicitTransferSyntax}}}));
  T_ASC_Association* assoc = association.get();
  const T_ASC_PresentationContextID pres_id =
      ASC_findAcceptedPresentationContextID(assoc, UID_VerificationSOPClass);
  if (pres_id == 0) {
    return Unavailable("C-ECHO to " + PeerName(peer) + ": peer does not accept Verification");
  }
  DIC_US status = 0;
  DcmDataset* detail = nullptr;
  OFCondition cond = DIMSE_echoUser(assoc, assoc->nextMsgID++, DIMSE_NONBLOCKING,
                                    TimeoutSeconds(peer.timeout), &status, &detail);
  delete detail;
  if (cond.bad()) return BrokenAssociation(peer, "C-ECHO", cond);
  association.Release();
  if (status != kDimseSuccess) {
    return Unavailable("C-ECHO to " + PeerName(peer) + ": status " + DimseStatusText(status));
  }
  return Status::Ok();
}

Result<std::vector<Status>> StoreFiles(const DicomPeer& peer,
                                       const std::vector<std::filesystem::path>& files) {
  struct Planned {
    size_t index;
    InstanceMeta meta;
    T_ASC_PresentationContextID exact = 0;     // proposes the file's own transfer syntax
    T_ASC_PresentationContextID fallback = 0;  // proposes uncompressed syntaxes
  };
  std::vector<Status> results(files.size());
  std::vector<Planned> planned;
  std::vector<Association::Context> contexts;
  std::map<std::pair<std::string, std::string>, T_ASC_PresentationContextID> exact_ids;
  std::map<std::string, T_ASC_PresentationContextID> fallback_ids;
  auto next_id = [&contexts] {
    return static_cast<T_ASC_PresentationContextID>(2 * contexts.size() + 1);
  };

  for (size_t i = 0; i < files.size(); ++i) {
    Result<InstanceMeta> meta = ReadInstanceMeta(files[i]);
    if (!meta.ok()) {
      results[i] = meta.status().WithContext("C-STORE to " + PeerName(peer));
      continue;
    }
    Planned plan{i, std::move(meta).value()};
    const std::string& sop_class = plan.meta.sop_class_uid.str();
    const std::string& syntax = plan.meta.transfer_syntax_uid;
    const auto key = std::make_pair(sop_class, syntax);
    if (!exact_ids.contains(key) && contexts.size() < kMaxPresentationContexts) {
      exact_ids[key] = next_id();
      contexts.push_back({sop_class, {}});
      // The context's syntax string must outlive the association request: point into `key`
      // stored in the map.
      contexts.back().transfer_syntaxes = {exact_ids.find(key)->first.second.c_str()};
    }
    if (!fallback_ids.contains(sop_class) && contexts.size() < kMaxPresentationContexts) {
      fallback_ids[sop_class] = next_id();
      contexts.push_back(
          {sop_class,
           {std::begin(kUncompressedTransferSyntaxes), std::end(kUncompressedTransferSyntaxes)}});
    }
    if (auto it = exact_ids.find(key); it != exact_ids.end()) plan.exact = it->second;
    if (auto it = fallback_ids.find(sop_class); it != fallback_ids.end()) {
      plan.fallback = it->second;
    }
    planned.push_back(std::move(plan));
  }
  if (planned.empty()) return results;

  Association association;
  RETURN_IF_ERROR(association.Open(peer, contexts));
  T_ASC_Association* assoc = association.get();
  const int timeout_s = TimeoutSeconds(peer.timeout);

  for (Planned& plan : planned) {
    const std::filesystem::path& file = files[plan.index];
    const std::string what = "C-STORE " + file.string() + " to " + PeerName(peer);
    const std::string& syntax = plan.meta.transfer_syntax_uid;
    // The file is sent as stored: in its own syntax, or (uncompressed only) converted by
    // DCMTK to the uncompressed syntax the peer accepted.
    T_ASC_PresentationContextID pres_id = 0;
    if (plan.exact != 0 && association.AcceptedTransferSyntax(plan.exact) == syntax) {
      pres_id = plan.exact;
    } else if (plan.fallback != 0 && IsUncompressedTransferSyntax(syntax) &&
               !association.AcceptedTransferSyntax(plan.fallback).empty()) {
      pres_id = plan.fallback;
    }
    if (pres_id == 0) {
      results[plan.index] =
          FailedPrecondition(what + ": peer accepted no presentation context for SOP class " +
                             plan.meta.sop_class_uid.str() + " in transfer syntax " + syntax);
      continue;
    }
    T_DIMSE_C_StoreRQ request{};
    request.MessageID = assoc->nextMsgID++;
    OFStandard::strlcpy(request.AffectedSOPClassUID, plan.meta.sop_class_uid.str().c_str(),
                        sizeof request.AffectedSOPClassUID);
    OFStandard::strlcpy(request.AffectedSOPInstanceUID, plan.meta.sop_instance_uid.str().c_str(),
                        sizeof request.AffectedSOPInstanceUID);
    request.DataSetType = DIMSE_DATASET_PRESENT;
    request.Priority = DIMSE_PRIORITY_MEDIUM;
    T_DIMSE_C_StoreRSP response{};
    DcmDataset* detail = nullptr;
    std::error_code ec;
    const auto size = std::filesystem::file_size(file, ec);
    // Large values are streamed from the file as PDVs are written, not loaded in memory.
    OFCondition cond = DIMSE_storeUser(assoc, pres_id, &request, file.c_str(), nullptr, nullptr,
                                       nullptr, DIMSE_NONBLOCKING, timeout_s, &response, &detail,
                                       nullptr, ec ? 0 : static_cast<long>(size));
    delete detail;
    if (cond.bad()) return BrokenAssociation(peer, "C-STORE " + file.string(), cond);
    results[plan.index] = StatusFromStoreResponse(response.DimseStatus, what);
  }
  association.Release();
  return results;
}

}  // namespace conduit
