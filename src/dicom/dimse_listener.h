// DimseListener: Conduit's DICOM upper-layer front end. Owns its accept loop and one thread
// per connection, which does the TLS handshake (TLS listener), receives the A-ASSOCIATE-RQ and
// serves the association. Handshake and request together must be done within acse_timeout of
// the connection's accept (enforced within about a second), however slowly the peer drips its
// bytes: a peer that connects and stalls holds up only itself, and not for longer. Associations are
// bounded by max_associations (one more is rejected as transient, local limit exceeded);
// connections still negotiating by as many again (at least 8), and by half that from any one
// address (at least 4); one more is closed at once and reported through OnAssociationRejected.
// Serves C-ECHO, C-STORE for every storage SOP class and common transfer syntax (stored as
// received, never transcoded), MPPS N-CREATE/N-SET, and the N-EVENT-REPORTs of Storage
// Commitment (Conduit asks; it refuses to commit itself: N-ACTION is answered 0110). TCP_NODELAY is
// on. The bind address must be IPv4 ("0.0.0.0", "127.0.0.1", "localhost"...). Any called AE title
// is accepted (the A-ASSOCIATE-AC echoes it); only calling AE titles are checked. Thread safety:
// Start/Stop from one thread; the sink is called from association threads.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/ids.h"
#include "core/status.h"
#include "dicom/instance_meta.h"
#include "dicom/storage_commitment.h"

namespace conduit {

struct AssociationInfo {
  AeTitle calling_ae;
  AeTitle called_ae;
  std::string peer_host;
  // How the objects came: "DIMSE", or "DICOMweb" for STOW-RS (calling_ae is then "DICOMWEB").
  std::string protocol = "DIMSE";
  bool tls = false;  // DIMSE over TLS (the TLS listener)
};

// A C-STORE whose dataset has been written, with a Part 10 meta header, to `file`
// (a path the sink chose with NewIncomingPath()). Not yet fsync'd.
struct ReceivedInstance {
  std::filesystem::path file;
  InstanceMeta meta;
  AssociationInfo association;
  // A C-STORE sub-operation of a C-MOVE: the AE title that asked for the move, as the
  // C-STORE-RQ names it (Move Originator Application Entity Title); empty otherwise.
  AeTitle move_originator;
};

// An MPPS N-CREATE or N-SET. `instances` lists every Referenced SOP Instance UID in the
// Performed Series Sequence (present on N-SET COMPLETED).
struct MppsEvent {
  std::string mpps_sop_instance_uid;
  std::string status;  // "IN PROGRESS", "COMPLETED", "DISCONTINUED", or empty on a partial N-SET
  StudyUid study_uid;  // from Scheduled Step Attributes Sequence; may be empty on N-SET
  std::vector<SopInstanceUid> instances;
  AssociationInfo association;
};

// What the listener hands received objects to. The listener answers the sender with
// success only if OnInstance returned OK, so OK must mean durable.
class IngestSink {
 public:
  virtual ~IngestSink() = default;
  // A fresh path where the listener may write one incoming instance.
  virtual std::filesystem::path NewIncomingPath() = 0;
  // Free-space check before receiving: kResourceExhausted refuses the C-STORE.
  virtual Status CheckCapacity() = 0;
  // Takes ownership of the file (moves or removes it). Errors become DIMSE failure statuses:
  // kResourceExhausted -> A700 (out of resources), kInvalidArgument -> C000 (cannot
  // understand), kPermissionDenied -> 0124 (not authorized), others -> 0110 (processing failure).
  virtual Status OnInstance(const ReceivedInstance& instance) = 0;
  // An instance the listener refused (malformed, not allowed); for logs, metrics and audit.
  virtual void OnRejected(const AssociationInfo& association, const Status& why) = 0;
  // An association the listener refused (calling AE title not allowed, too many open); for
  // logs, metrics and audit. A scanner probing the port causes many: an implementation should
  // not log or audit each one. Default: OnRejected.
  virtual void OnAssociationRejected(const AssociationInfo& association, const Status& why) {
    OnRejected(association, why);
  }
  virtual Status OnMpps(const MppsEvent& event) = 0;
  // A Storage Commitment report (N-EVENT-REPORT) from a PACS Conduit asked to commit.
  // OK acknowledges it (0000); errors map as for MPPS. Default: refused (0110), for sinks
  // that never ask.
  virtual Status OnCommitmentReport(const CommitmentReport& report,
                                    const AssociationInfo& association) {
    (void)report;
    (void)association;
    return FailedPrecondition("no storage commitment was requested here");
  }
};

class DimseListener {
 public:
  virtual ~DimseListener() = default;
  // Binds and starts the accept thread. Errors: kUnavailable if the port cannot be bound.
  virtual Status Start() = 0;
  // Stops accepting, aborts open associations, closes negotiating connections, joins every
  // thread; within about a second.
  virtual void Stop() = 0;
  // The bound port (useful when config asked for port 0).
  virtual int port() const = 0;
  virtual int active_associations() const = 0;
};

std::unique_ptr<DimseListener> MakeDimseListener(const DicomConfig& config, IngestSink& sink);

// The same on config.tls.port, speaking only DICOM over TLS (dicom/dicom_tls.h: BCP 195
// non-downgrading profile; a client certificate verified against config.tls.ca_file, required
// unless config.tls.require_client_certificate is false). A handshake that fails, or does not
// finish within acse_timeout, is reported through OnAssociationRejected (calling AE "UNKNOWN").
std::unique_ptr<DimseListener> MakeDimseTlsListener(const DicomConfig& config, IngestSink& sink);

}  // namespace conduit
