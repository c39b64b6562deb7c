// One association Conduit requests of a peer (the C-STORE/C-ECHO sender, the query/retrieve
// SCU): presentation contexts proposed in order, TCP_NODELAY on, aborted unless released.
// Private to src/dicom (DCMTK types).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "dicom/dcmtk_net.h"  // first DCMTK include: brings osconfig.h
#include "dicom/dimse_sender.h"

namespace conduit {

// "AE@host:port", for messages.
std::string PeerName(const DicomPeer& peer);

// The association broke during `operation`: kDeadlineExceeded if the peer went silent past
// the timeout, kUnavailable otherwise.
Status BrokenAssociation(const DicomPeer& peer, const std::string& operation,
                         const OFCondition& cond);

class Association {
 public:
  Association() = default;
  ~Association();
  Association(const Association&) = delete;
  Association& operator=(const Association&) = delete;

  // A presentation context proposing `transfer_syntaxes` for `sop_class`, with our role
  // (ASC_SC_ROLE_SCP for storage contexts of a C-GET: the peer sends us C-STOREs). Open()
  // numbers them 1, 3, 5... in order. The syntax strings must outlive Open().
  struct Context {
    std::string sop_class;
    std::vector<const char*> transfer_syntaxes;
    T_ASC_SC_ROLE role = ASC_SC_ROLE_DEFAULT;
  };

  // Requests the association (over TLS when peer.tls.enabled). Errors: kUnavailable if the
  // peer cannot be reached, fails the TLS handshake or rejects it; kFailedPrecondition if a TLS
  // file cannot be loaded; kInternal for DCMTK set-up failures.
  Status Open(const DicomPeer& peer, const std::vector<Context>& contexts);

  // Accepted presentation context `id`'s transfer syntax, or "" if it was not accepted.
  std::string AcceptedTransferSyntax(T_ASC_PresentationContextID id) const;

  // Releases the association (aborts it if the release fails).
  void Release();
  // Answers the release the peer asked for (DUL_PEERREQUESTEDRELEASE) and closes.
  void AcknowledgePeerRelease();

  T_ASC_Association* get() { return assoc_; }

 private:
  T_ASC_Network* network_ = nullptr;
  T_ASC_Association* assoc_ = nullptr;
};

}  // namespace conduit
