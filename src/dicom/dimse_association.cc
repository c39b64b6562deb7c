#include "dicom/dimse_association.h"

#include <dcmtk/dcmnet/dimse.h>
#include <dcmtk/dcmnet/dul.h>
#include <dcmtk/ofstd/ofstd.h>

#include "dicom/dicom_tls.h"

namespace conduit {

std::string PeerName(const DicomPeer& peer) {
  return peer.called_ae.str() + "@" + peer.host + ":" + std::to_string(peer.port) +
         (peer.tls.enabled ? " (TLS)" : "");
}

Status BrokenAssociation(const DicomPeer& peer, const std::string& operation,
                         const OFCondition& cond) {
  const std::string message =
      operation + " to " + PeerName(peer) + ": association broke: " + cond.text();
  if (cond == DIMSE_NODATAAVAILABLE) return DeadlineExceeded(message);
  return Unavailable(message);
}

Association::~Association() {
  if (assoc_ != nullptr) {
    ASC_abortAssociation(assoc_);
    ASC_destroyAssociation(&assoc_);
  }
  if (network_ != nullptr) ASC_dropNetwork(&network_);
}

Status Association::Open(const DicomPeer& peer, const std::vector<Context>& contexts) {
  const std::string what = "associate with " + PeerName(peer);
  const int timeout_s = TimeoutSeconds(peer.timeout);
  PrepareDcmtkNetwork();
  // DCMTK's connect timeout is process-wide; every requestor sets its own before connecting.
  dcmConnectionTimeout.set(timeout_s);
  OFCondition cond = ASC_initializeNetwork(NET_REQUESTOR, 0, timeout_s, &network_);
  if (cond.bad()) return Internal(what + ": initialize network: " + cond.text());
  if (peer.tls.enabled) {
    if (Status st = UseClientTls(network_, peer.tls, peer.host); !st.ok()) {
      return st.WithContext(what);
    }
  } else {
    AckEveryRead(network_);  // a peer that leaves Nagle on is not held up by our ACKs
  }
  T_ASC_Parameters* params = nullptr;
  cond = ASC_createAssociationParameters(&params, ASC_DEFAULTMAXPDU);
  if (cond.bad()) return Internal(what + ": " + cond.text());
  if (peer.tls.enabled) ASC_setTransportLayerType(params, OFTrue);
  ASC_setAPTitles(params, peer.calling_ae.str().c_str(), peer.called_ae.str().c_str(), nullptr);
  const std::string address = peer.host + ":" + std::to_string(peer.port);
  ASC_setPresentationAddresses(params, OFStandard::getHostName().c_str(), address.c_str());
  T_ASC_PresentationContextID id = 1;
  for (const Context& context : contexts) {
    cond = ASC_addPresentationContext(params, id, context.sop_class.c_str(),
                                      const_cast<const char**>(context.transfer_syntaxes.data()),
                                      static_cast<int>(context.transfer_syntaxes.size()),
                                      context.role);
    if (cond.bad()) {
      ASC_destroyAssociationParameters(&params);
      return Internal(what + ": add presentation context: " + cond.text());
    }
    id += 2;
  }
  cond = ASC_requestAssociation(network_, params, &assoc_);
  if (cond.bad()) {
    std::string message = what + ": " + cond.text();
    if (cond == DUL_ASSOCIATIONREJECTED) {
      T_ASC_RejectParameters rejection;
      ASC_getRejectParameters(params, &rejection);
      OFString text;
      message =
          what + ": association rejected: " + ASC_printRejectParameters(text, &rejection).c_str();
    }
    if (peer.tls.enabled) {
      if (const std::string tls = LastTlsFailure(); !tls.empty()) {
        message += " (TLS: " + tls + "; check the peer's tls settings: ca_file, " +
                   "client_certificate_file)";
      }
    }
    // Once an association exists it owns the parameters.
    if (assoc_ == nullptr) ASC_destroyAssociationParameters(&params);
    return Unavailable(message);
  }
  DisableNagle(assoc_);
  return Status::Ok();
}

std::string Association::AcceptedTransferSyntax(T_ASC_PresentationContextID id) const {
  T_ASC_PresentationContext context;
  if (ASC_findAcceptedPresentationContext(assoc_->params, id, &context).bad()) return {};
  if (context.resultReason != ASC_P_ACCEPTANCE) return {};
  return context.acceptedTransferSyntax;
}

void Association::Release() {
  if (ASC_releaseAssociation(assoc_).bad()) ASC_abortAssociation(assoc_);
  ASC_destroyAssociation(&assoc_);
  assoc_ = nullptr;
}

void Association::AcknowledgePeerRelease() {
  ASC_acknowledgeRelease(assoc_);
  ASC_destroyAssociation(&assoc_);
  assoc_ = nullptr;
}

}  // namespace conduit
