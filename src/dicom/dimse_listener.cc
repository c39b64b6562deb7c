#include "dicom/dimse_listener.h"

#include <arpa/inet.h>
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcostrmf.h>
#include <dcmtk/dcmdata/dcsequen.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/dcmlayer.h>
#include <dcmtk/dcmnet/dcmtrans.h>
#include <dcmtk/dcmnet/dimse.h>
#include <dcmtk/dcmnet/dul.h>
#include <dcmtk/ofstd/ofstd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "core/address_range.h"
#include "core/early_writeback.h"
#include "dicom/accepted_connection.h"
#include "dicom/commitment_report_service.h"
#include "dicom/dcmtk_net.h"  // first DCMTK include: brings osconfig.h
#include "dicom/dicom_tls.h"
#include "dicom/dimse_status.h"

namespace conduit {
namespace {

using namespace std::chrono_literals;

// How often blocked waits wake to check for Stop().
constexpr int kPollSeconds = 1;

const char* kUncompressedTransferSyntaxes[] = {
    UID_LittleEndianExplicitTransferSyntax,
    UID_LittleEndianImplicitTransferSyntax,
    UID_BigEndianExplicitTransferSyntax,
};

// Transfer syntaxes accepted for storage; stored as received, never transcoded. Within a
// context the sender's order decides (AcceptStorageContexts), not this list's.
const char* kStorageTransferSyntaxes[] = {
    UID_LittleEndianExplicitTransferSyntax,
    UID_LittleEndianImplicitTransferSyntax,
    UID_BigEndianExplicitTransferSyntax,
    UID_DeflatedExplicitVRLittleEndianTransferSyntax,
    UID_JPEGProcess14SV1TransferSyntax,
    UID_JPEGProcess14TransferSyntax,
    UID_JPEGProcess1TransferSyntax,
    UID_JPEGProcess2_4TransferSyntax,
    UID_JPEGLSLosslessTransferSyntax,
    UID_JPEGLSLossyTransferSyntax,
    UID_RLELosslessTransferSyntax,
    UID_JPEG2000LosslessOnlyTransferSyntax,
    UID_JPEG2000TransferSyntax,
    UID_JPEG2000Part2MulticomponentImageCompressionLosslessOnlyTransferSyntax,
    UID_JPEG2000Part2MulticomponentImageCompressionTransferSyntax,
    UID_MPEG2MainProfileAtMainLevelTransferSyntax,
    UID_MPEG2MainProfileAtHighLevelTransferSyntax,
    UID_MPEG4HighProfileLevel4_1TransferSyntax,
    UID_MPEG4BDcompatibleHighProfileLevel4_1TransferSyntax,
    UID_MPEG4HighProfileLevel4_2_For2DVideoTransferSyntax,
    UID_MPEG4HighProfileLevel4_2_For3DVideoTransferSyntax,
    UID_MPEG4StereoHighProfileLevel4_2TransferSyntax,
    UID_HEVCMainProfileLevel5_1TransferSyntax,
    UID_HEVCMain10ProfileLevel5_1TransferSyntax,
};

const char* kVerificationSopClasses[] = {UID_VerificationSOPClass};
const char* kMppsSopClasses[] = {UID_ModalityPerformedProcedureStepSOPClass};

// Connections open at once (associated or still negotiating): the associations allowed, and as
// many again (at least 8) that may be negotiating, so that peers which connect and say nothing
// cannot keep others out, nor start threads without bound.
int MaxConnections(int max_associations) {
  const int associations = std::max(1, max_associations);
  return associations + std::max(8, associations);
}

// Connections from one address that may be negotiating at once: half the negotiating room (at
// least 4), so that one host (a broken load balancer, a scanner) cannot take all of it.
int MaxNegotiatingPerPeer(int max_associations) {
  return std::max(8, std::max(1, max_associations)) / 2;
}

template <size_t N>
int Count(const char* (&)[N]) {
  return static_cast<int>(N);
}

Result<int> OpenListenSocket(const std::string& bind, int port) {
  const std::string what = "dimse listener bind " + bind + ":" + std::to_string(port);
  in_addr address{};
  if (bind.empty() || bind == "0.0.0.0") {
    address.s_addr = htonl(INADDR_ANY);
  } else if (bind == "localhost") {
    address.s_addr = htonl(INADDR_LOOPBACK);
  } else if (inet_pton(AF_INET, bind.c_str(), &address) != 1) {
    return InvalidArgument(what + ": not an IPv4 address");
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unavailable(what + ": socket: " + std::strerror(errno));
  const int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr = address;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 64) != 0) {
    const int err = errno;
    close(fd);
    return Unavailable(what + ": " + std::strerror(err));
  }
  return fd;
}

int BoundPort(int fd) {
  sockaddr_in addr{};
  socklen_t length = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) return 0;
  return ntohs(addr.sin_port);
}

std::string Field(const char* text) {
  std::string s(text);
  const auto begin = s.find_first_not_of(' ');
  if (begin == std::string::npos) return {};
  return s.substr(begin, s.find_last_not_of(' ') - begin + 1);
}

std::string Text(DcmItem& item, const DcmTagKey& tag) {
  OFString value;
  if (item.findAndGetOFString(tag, value).good()) return value.c_str();
  return {};
}

// Every Referenced SOP Instance UID under PerformedSeriesSequence.
std::vector<SopInstanceUid> PerformedInstances(DcmDataset& dataset) {
  std::vector<SopInstanceUid> instances;
  DcmSequenceOfItems* series = nullptr;
  if (dataset.findAndGetSequence(DCM_PerformedSeriesSequence, series).bad() || !series) {
    return instances;
  }
  for (unsigned long i = 0; i < series->card(); ++i) {
    DcmItem* one_series = series->getItem(i);
    for (const DcmTagKey& tag :
         {DCM_ReferencedImageSequence, DCM_ReferencedNonImageCompositeSOPInstanceSequence}) {
      DcmSequenceOfItems* refs = nullptr;
      if (one_series->findAndGetSequence(tag, refs).bad() || !refs) continue;
      for (unsigned long j = 0; j < refs->card(); ++j) {
        std::string uid = Text(*refs->getItem(j), DCM_ReferencedSOPInstanceUID);
        if (!uid.empty()) instances.emplace_back(std::move(uid));
      }
    }
  }
  return instances;
}

MppsEvent ParseMpps(std::string sop_instance_uid, DcmDataset* dataset,
                    const AssociationInfo& association) {
  MppsEvent event;
  event.mpps_sop_instance_uid = std::move(sop_instance_uid);
  event.association = association;
  if (dataset == nullptr) return event;
  event.status = Text(*dataset, DCM_PerformedProcedureStepStatus);
  DcmItem* scheduled = nullptr;
  if (dataset->findAndGetSequenceItem(DCM_ScheduledStepAttributesSequence, scheduled, 0).good() &&
      scheduled != nullptr) {
    event.study_uid = StudyUid(Text(*scheduled, DCM_StudyInstanceUID));
  }
  event.instances = PerformedInstances(*dataset);
  return event;
}

class Listener final : public DimseListener {
 public:
  Listener(const DicomConfig& config, IngestSink& sink, bool tls)
      : config_(config), sink_(sink), tls_(tls) {}
  ~Listener() override { Stop(); }

  Status Start() override;
  void Stop() override;
  int port() const override { return port_.load(); }
  int active_associations() const override { return active_.load(); }

 private:
  struct Worker {
    std::jthread thread;
    std::string peer;  // the peer's address
    int socket = -1;   // guarded by mu_; -1 once the connection is closing
    bool finished = false;
    // Guarded by mu_. Until the association is admitted, the TLS handshake and the
    // A-ASSOCIATE-RQ must be done by this time; max() once admitted.
    std::chrono::steady_clock::time_point negotiate_until =
        std::chrono::steady_clock::time_point::max();
    bool cut_off = false;  // guarded by mu_: shut down by CutOffSlowNegotiations
  };

  void AcceptLoop(std::stop_token stop);
  // Shuts down every connection still negotiating past its deadline (its thread then reports
  // it): a peer that sends a byte now and then is bounded like one that sends nothing.
  void CutOffSlowNegotiations();
  // Ends the negotiation phase of `self`: false if it was already cut off.
  bool FinishNegotiation(Worker* self);
  bool WasCutOff(Worker* self);
  // Starts a thread for an accepted connection, or closes it when too many are open.
  void Spawn(int socket, const std::string& peer);
  void RunConnection(std::stop_token stop, int socket, AssociationInfo info, Worker* self);
  // The TLS handshake on `connection` (on `socket`), bounded by acse_timeout. False (reported)
  // if it fails.
  bool Handshake(DcmTransportConnection& connection, int socket, const AssociationInfo& info,
                 Worker* self);
  // Reports a connection that ended without an A-ASSOCIATE-RQ (closed, timed out, not DICOM).
  void NoAssociation(const AssociationInfo& info, const OFCondition& cond, bool timed_out);
  // Why the calling AE title may not associate from the peer's address (the allow-list and
  // config_.calling_ae_hosts), or empty if it may.
  std::string CallingAeRefusal(const AssociationInfo& info) const;
  // Checks the calling AE title and the association limit; serves the association if both pass.
  void Admit(std::stop_token stop, T_ASC_Association* assoc, AssociationInfo info);
  void Reject(T_ASC_Association* assoc, const AssociationInfo& info, T_ASC_RejectParameters why,
              const Status& status);
  void Serve(std::stop_token stop, T_ASC_Association* assoc, const AssociationInfo& info);
  // Handlers return false when the association can no longer be used (and must be aborted).
  bool HandleStore(T_ASC_Association* assoc, T_ASC_PresentationContextID pres_id,
                   T_DIMSE_C_StoreRQ& request, const AssociationInfo& info);
  bool ReceiveStore(T_ASC_Association* assoc, T_ASC_PresentationContextID pres_id,
                    T_DIMSE_C_StoreRQ& request, const AssociationInfo& info, Status& outcome);
  bool HandleMpps(T_ASC_Association* assoc, T_ASC_PresentationContextID pres_id,
                  T_DIMSE_Message& message, const AssociationInfo& info);
  bool HandleCommitmentReport(T_ASC_Association* assoc, T_ASC_PresentationContextID pres_id,
                              T_DIMSE_N_EventReportRQ& request, const AssociationInfo& info);
  bool RefuseCommitmentRequest(T_ASC_Association* assoc, T_ASC_PresentationContextID pres_id,
                               T_DIMSE_N_ActionRQ& request, const AssociationInfo& info);
  bool SendStoreResponse(T_ASC_Association* assoc, T_ASC_PresentationContextID pres_id,
                         T_DIMSE_C_StoreRQ& request, const Status& outcome);
  bool DrainDataset(T_ASC_Association* assoc);
  void ReapFinishedWorkers();

  const DicomConfig config_;
  IngestSink& sink_;
  const bool tls_;  // the TLS listener: config_.tls.port, DCMTK's TLS layer
  const char* const kind_ = tls_ ? "dimse TLS listener" : "dimse listener";
  const int acse_timeout_s_ = TimeoutSeconds(config_.acse_timeout);
  const int dimse_timeout_s_ = TimeoutSeconds(config_.dimse_timeout);
  // Connections open at once, associated or still negotiating; one more is closed at once.
  const size_t max_connections_ = static_cast<size_t>(MaxConnections(config_.max_associations));
  const size_t max_negotiating_per_peer_ =
      static_cast<size_t>(MaxNegotiatingPerPeer(config_.max_associations));

  int listen_fd_ = -1;
  std::unique_ptr<DcmTransportLayer> tls_layer_;  // the TLS listener's
  std::jthread accept_thread_;
  std::atomic<int> port_{0};
  std::atomic<int> active_{0};
  std::chrono::steady_clock::time_point last_accept_warning_{};  // accept thread only

  std::mutex mu_;
  std::list<Worker> workers_;  // guarded by mu_; nodes are stable while their thread runs
};

Status Listener::Start() {
  if (listen_fd_ >= 0) return FailedPrecondition("dimse listener: already started");
  if (Status st = PrepareOwnAccept(); !st.ok()) return st;
  if (tls_) {
    Result<std::unique_ptr<DcmTransportLayer>> layer = MakeServerTlsLayer(config_.tls);
    if (!layer.ok()) return layer.status().WithContext(kind_);
    tls_layer_ = std::move(*layer);
  }
  Result<int> listen_fd = OpenListenSocket(config_.bind, tls_ ? config_.tls.port : config_.port);
  if (!listen_fd.ok()) {
    tls_layer_.reset();
    return listen_fd.status();
  }
  listen_fd_ = *listen_fd;
  port_ = BoundPort(listen_fd_);
  accept_thread_ = std::jthread([this](std::stop_token stop) { AcceptLoop(stop); });
  pthread_setname_np(accept_thread_.native_handle(), "dimse-accept");
  spdlog::info("{} {} on {}:{}", kind_, config_.ae_title.str(), config_.bind, port_.load());
  return Status::Ok();
}

void Listener::Stop() {
  if (listen_fd_ < 0) return;
  accept_thread_.request_stop();
  if (accept_thread_.joinable()) accept_thread_.join();
  std::list<Worker> stopping;
  {
    std::lock_guard lock(mu_);
    for (Worker& worker : workers_) {
      worker.thread.request_stop();
      // Wakes a thread blocked in a read or a handshake; it then closes the connection.
      if (worker.socket >= 0) shutdown(worker.socket, SHUT_RDWR);
    }
    stopping.splice(stopping.end(), workers_);
  }
  for (Worker& worker : stopping) {
    if (worker.thread.joinable()) worker.thread.join();
  }
  close(listen_fd_);
  listen_fd_ = -1;
  tls_layer_.reset();
  spdlog::info("{} {} stopped", kind_, config_.ae_title.str());
}

void Listener::AcceptLoop(std::stop_token stop) {
  while (!stop.stop_requested()) {
    ReapFinishedWorkers();
    CutOffSlowNegotiations();
    pollfd ready{listen_fd_, POLLIN, 0};
    if (poll(&ready, 1, kPollSeconds * 1000) <= 0) continue;
    sockaddr_in from{};
    socklen_t length = sizeof from;
    const int socket =
        accept4(listen_fd_, reinterpret_cast<sockaddr*>(&from), &length, SOCK_CLOEXEC);
    if (socket < 0) {
      const int err = errno;
      if (err == EINTR || err == EAGAIN || err == ECONNABORTED) continue;
      // Out of descriptors, say: the connection waits in the backlog; warn, at most every 10 s.
      const auto now = std::chrono::steady_clock::now();
      if (now - last_accept_warning_ >= std::chrono::seconds(10)) {
        last_accept_warning_ = now;
        spdlog::warn("{}: accept: {}", kind_, std::strerror(err));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    char address[INET_ADDRSTRLEN] = "unknown";
    inet_ntop(AF_INET, &from.sin_addr, address, sizeof address);
    Spawn(socket, address);
  }
}

void Listener::Spawn(int socket, const std::string& peer) {
  AssociationInfo info;
  info.calling_ae = AeTitle("UNKNOWN");
  info.peer_host = peer;
  info.tls = tls_;
  std::string why;
  {
    std::lock_guard lock(mu_);
    size_t negotiating_from_peer = 0;
    for (const Worker& worker : workers_) {
      if (!worker.finished && worker.peer == peer &&
          worker.negotiate_until != std::chrono::steady_clock::time_point::max()) {
        ++negotiating_from_peer;
      }
    }
    if (workers_.size() >= max_connections_) {
      why = std::to_string(max_connections_) +
            " connections already open (associated or negotiating)";
    } else if (negotiating_from_peer >= max_negotiating_per_peer_) {
      why = std::to_string(negotiating_from_peer) + " connections from " + peer +
            " still negotiating";
    } else {
      Worker& worker = workers_.emplace_back();
      worker.peer = peer;
      worker.socket = socket;
      worker.negotiate_until =
          std::chrono::steady_clock::now() + std::chrono::seconds(acse_timeout_s_);
      // The thread takes mu_ before touching `worker`, so it waits for this assignment.
      worker.thread = std::jthread([this, socket, info, self = &worker](std::stop_token stop) {
        RunConnection(stop, socket, info, self);
      });
      pthread_setname_np(worker.thread.native_handle(), "dimse-assoc");
      return;
    }
  }
  close(socket);
  sink_.OnAssociationRejected(info,
                              ResourceExhausted("connection from " + peer + " closed: " + why));
}

void Listener::ReapFinishedWorkers() {
  std::list<Worker> finished;
  {
    std::lock_guard lock(mu_);
    for (auto it = workers_.begin(); it != workers_.end();) {
      auto next = std::next(it);
      if (it->finished) finished.splice(finished.end(), workers_, it);
      it = next;
    }
  }
  // Joined outside the lock: each thread has only its return left to do.
}

void Listener::CutOffSlowNegotiations() {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  for (Worker& worker : workers_) {
    if (worker.socket >= 0 && !worker.cut_off && now >= worker.negotiate_until) {
      worker.cut_off = true;
      // Wakes the thread from its read; it reports the timeout and closes the connection.
      shutdown(worker.socket, SHUT_RDWR);
    }
  }
}

bool Listener::FinishNegotiation(Worker* self) {
  std::lock_guard lock(mu_);
  self->negotiate_until = std::chrono::steady_clock::time_point::max();
  return !self->cut_off;
}

bool Listener::WasCutOff(Worker* self) {
  std::lock_guard lock(mu_);
  return self->cut_off;
}

bool Listener::Handshake(DcmTransportConnection& connection, int socket,
                         const AssociationInfo& info, Worker* self) {
  // DCMTK's handshake blocks. The accept thread shuts the socket down once the negotiation
  // deadline has passed (CutOffSlowNegotiations); the per-read timeouts only back that up.
  timeval limit{acse_timeout_s_, 0};
  setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  const auto began = std::chrono::steady_clock::now();
  const OFCondition cond = connection.serverSideHandshake();
  const bool timed_out = WasCutOff(self) || std::chrono::steady_clock::now() - began >=
                                                std::chrono::seconds(acse_timeout_s_) - 1s;
  timeval none{0, 0};
  setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
  setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
  if (cond.good()) return true;
  // No or an untrusted certificate, plain DICOM on the TLS port, a stalled handshake: reported
  // like any refused association, so it is logged and audited (the sink throttles what a
  // scanner would cause).
  const std::string why = LastTlsFailure();
  if (timed_out) {
    sink_.OnAssociationRejected(
        info, DeadlineExceeded("TLS association refused: handshake not finished within " +
                               std::to_string(acse_timeout_s_) + " s (dicom.acse_timeout)"));
  } else {
    sink_.OnAssociationRejected(
        info, PermissionDenied(std::string("TLS association refused: ") + cond.text() +
                               (why.empty() ? "" : " (" + why + ")")));
  }
  return false;
}

void Listener::RunConnection(std::stop_token stop, int socket, AssociationInfo info, Worker* self) {
  const int on = 1;
  setsockopt(socket, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  // Owns the socket until DCMTK takes it; closed (below) only once Stop() cannot touch it.
  std::unique_ptr<DcmTransportConnection> connection(
      tls_ ? tls_layer_->createConnection(socket, OFTrue) : new QuickAck<DcmTCPConnection>(socket));
  const bool made = connection != nullptr;
  if (!made) {
    sink_.OnAssociationRejected(info, Internal("TLS association refused: no TLS connection"));
  }
  T_ASC_Network* network = nullptr;
  T_ASC_Association* assoc = nullptr;
  if (connection != nullptr && (!tls_ || Handshake(*connection, socket, info, self))) {
    const auto began = std::chrono::steady_clock::now();
    const OFCondition cond =
        ReceiveAssociation(connection.release(), info.peer_host, acse_timeout_s_,
                           config_.max_pdu_bytes, tls_, &network, &assoc);
    // DCMTK reports a peer that closed, or said nothing until the ARTIM timer ran out, as a
    // success without a request: an A-ASSOCIATE-RQ proposes at least one context.
    if (cond.good() && ASC_countPresentationContexts(assoc->params) > 0 &&
        FinishNegotiation(self)) {
      Admit(stop, assoc, info);
    } else if (!stop.stop_requested()) {
      const bool timed_out =
          WasCutOff(self) || cond == DUL_READTIMEOUT ||
          std::chrono::steady_clock::now() - began >= std::chrono::seconds(acse_timeout_s_) - 1s;
      NoAssociation(info, cond, timed_out);
    }
  }
  {
    std::lock_guard lock(mu_);
    self->socket = -1;  // from here on Stop() must not touch the descriptor
  }
  connection.reset();        // closes the socket if DCMTK never took the connection
  if (!made) close(socket);  // no connection object was ever made
  DropReceivedAssociation(&network, &assoc);
  std::lock_guard lock(mu_);
  self->finished = true;
}

void Listener::NoAssociation(const AssociationInfo& info, const OFCondition& cond, bool timed_out) {
  if (timed_out) {
    sink_.OnAssociationRejected(
        info,
        DeadlineExceeded("connection from " + info.peer_host + ": no A-ASSOCIATE-RQ within " +
                         std::to_string(acse_timeout_s_) + " s (dicom.acse_timeout); closed"));
  } else if (cond.good() || cond == DUL_NETWORKCLOSED) {
    // A port probe or a load balancer's health check: connects and closes.
    spdlog::debug("{}: connection from {} closed before associating", kind_, info.peer_host);
  } else {
    sink_.OnAssociationRejected(info, InvalidArgument("connection from " + info.peer_host +
                                                      ": no valid A-ASSOCIATE-RQ: " + cond.text()));
  }
}

std::string Listener::CallingAeRefusal(const AssociationInfo& info) const {
  const auto& allowed = config_.allowed_calling_aes;
  if (!allowed.empty() &&
      std::find(allowed.begin(), allowed.end(), info.calling_ae.str()) == allowed.end()) {
    return "calling AE title not allowed";
  }
  const auto bound = config_.calling_ae_hosts.find(info.calling_ae.str());
  if (bound == config_.calling_ae_hosts.end()) return {};
  in_addr address{};
  if (inet_pton(AF_INET, info.peer_host.c_str(), &address) == 1 &&
      Allowed(bound->second, address)) {
    return {};
  }
  return "calling AE title not allowed from this address";
}

void Listener::Admit(std::stop_token stop, T_ASC_Association* assoc, AssociationInfo info) {
  info.calling_ae = AeTitle(Field(assoc->params->DULparams.callingAPTitle));
  info.called_ae = AeTitle(Field(assoc->params->DULparams.calledAPTitle));

  if (const std::string refusal = CallingAeRefusal(info); !refusal.empty()) {
    Reject(assoc, info,
           {ASC_RESULT_REJECTEDPERMANENT, ASC_SOURCE_SERVICEUSER,
            ASC_REASON_SU_CALLINGAETITLENOTRECOGNIZED},
           PermissionDenied("association from " + info.calling_ae.str() + " at " + info.peer_host +
                            ": " + refusal));
    return;
  }
  if (active_.fetch_add(1) >= std::max(1, config_.max_associations)) {
    --active_;
    Reject(assoc, info,
           {ASC_RESULT_REJECTEDTRANSIENT, ASC_SOURCE_SERVICEPROVIDER_PRESENTATION_RELATED,
            ASC_REASON_SP_PRES_LOCALLIMITEXCEEDED},
           ResourceExhausted("association from " + info.calling_ae.str() + " at " + info.peer_host +
                             ": " + std::to_string(config_.max_associations) +
                             " associations already open"));
    return;
  }
  Serve(stop, assoc, info);
  --active_;
}

void Listener::Reject(T_ASC_Association* assoc, const AssociationInfo& info,
                      T_ASC_RejectParameters why, const Status& status) {
  // Logged and audited by the sink (throttled there: scanners probe DICOM ports).
  sink_.OnAssociationRejected(info, status);  // before the peer learns of it: tests see order
  ASC_rejectAssociation(assoc, &why);
}

// Accepts each proposed context whose SOP class is in `classes` with the first transfer syntax
// the *sender* proposed that is in `syntaxes` (refused when none is), in the role the sender
// proposed when `proposed_role`, else the default role.
void AcceptProposedContexts(T_ASC_Parameters* params, const std::set<std::string>& classes,
                            const std::set<std::string>& syntaxes, bool proposed_role) {
  const int count = ASC_countPresentationContexts(params);
  for (int i = 0; i < count; ++i) {
    T_ASC_PresentationContext pc;
    if (ASC_getPresentationContext(params, i, &pc).bad()) continue;
    if (!classes.count(pc.abstractSyntax)) continue;
    const char* chosen = nullptr;
    for (int t = 0; t < pc.transferSyntaxCount && chosen == nullptr; ++t) {
      if (syntaxes.count(pc.proposedTransferSyntaxes[t])) chosen = pc.proposedTransferSyntaxes[t];
    }
    if (chosen == nullptr) {
      ASC_refusePresentationContext(params, pc.presentationContextID,
                                    ASC_P_TRANSFERSYNTAXESNOTSUPPORTED);
      continue;
    }
    ASC_acceptPresentationContext(params, pc.presentationContextID, chosen,
                                  proposed_role ? pc.proposedRole : ASC_SC_ROLE_DEFAULT);
  }
}

// Storage contexts: senders list the encoding their file already has first, so the instance
// is stored as the modality encoded it rather than re-encoded to suit a preference of ours.
void AcceptStorageContexts(T_ASC_Parameters* params) {
  static const std::set<std::string> kStorageClasses(
      dcmAllStorageSOPClassUIDs, dcmAllStorageSOPClassUIDs + numberOfDcmAllStorageSOPClassUIDs);
  static const std::set<std::string> kSyntaxes(std::begin(kStorageTransferSyntaxes),
                                               std::end(kStorageTransferSyntaxes));
  AcceptProposedContexts(params, kStorageClasses, kSyntaxes, /*proposed_role=*/false);
}

// Storage Commitment Push Model contexts, in the role the peer proposed: a PACS sends its
// N-EVENT-REPORT on an association it opens, proposing either the default role or, by role
// selection, the SCP role (PS3.7 D.3.3.4).
void AcceptCommitmentContexts(T_ASC_Parameters* params) {
  static const std::set<std::string> kClasses{UID_StorageCommitmentPushModelSOPClass};
  static const std::set<std::string> kSyntaxes(std::begin(kUncompressedTransferSyntaxes),
                                               std::end(kUncompressedTransferSyntaxes));
  AcceptProposedContexts(params, kClasses, kSyntaxes, /*proposed_role=*/true);
}

void Listener::Serve(std::stop_token stop, T_ASC_Association* assoc, const AssociationInfo& info) {
  T_ASC_Parameters* params = assoc->params;
  ASC_acceptContextsWithPreferredTransferSyntaxes(
      params, kVerificationSopClasses, Count(kVerificationSopClasses),
      kUncompressedTransferSyntaxes, Count(kUncompressedTransferSyntaxes));
  AcceptStorageContexts(params);
  ASC_acceptContextsWithPreferredTransferSyntaxes(params, kMppsSopClasses, Count(kMppsSopClasses),
                                                  kUncompressedTransferSyntaxes,
                                                  Count(kUncompressedTransferSyntaxes));
  AcceptCommitmentContexts(params);
  // Answer with the title the peer called us by.
  ASC_setAPTitles(params, nullptr, nullptr, info.called_ae.str().c_str());
  OFCondition cond = ASC_acknowledgeAssociation(assoc);
  if (cond.bad()) {
    spdlog::warn("dimse listener: acknowledge association from {}: {}", info.calling_ae.str(),
                 cond.text());
    return;
  }
  spdlog::debug("dimse listener: association from {} at {} ({} contexts accepted)",
                info.calling_ae.str(), info.peer_host,
                ASC_countAcceptedPresentationContexts(params));

  int idle_s = 0;
  while (!stop.stop_requested()) {
    if (!ASC_dataWaiting(assoc, kPollSeconds)) {
      idle_s += kPollSeconds;
      if (idle_s >= dimse_timeout_s_) {
        spdlog::warn("dimse listener: association from {} idle for {} s, aborting",
                     info.calling_ae.str(), idle_s);
        ASC_abortAssociation(assoc);
        return;
      }
      continue;
    }
    idle_s = 0;
    T_DIMSE_Message message;
    T_ASC_PresentationContextID pres_id = 0;
    DcmDataset* command_detail = nullptr;
    cond = DIMSE_receiveCommand(assoc, DIMSE_NONBLOCKING, dimse_timeout_s_, &pres_id, &message,
                                &command_detail);
    delete command_detail;
    if (cond == DUL_PEERREQUESTEDRELEASE) {
      ASC_acknowledgeRelease(assoc);
      return;
    }
    if (cond == DUL_PEERABORTEDASSOCIATION) return;
    if (cond.bad()) {
      if (!stop.stop_requested()) {
        spdlog::warn("dimse listener: association from {}: receive command: {}",
                     info.calling_ae.str(), cond.text());
      }
      ASC_abortAssociation(assoc);
      return;
    }
    bool usable = true;
    switch (message.CommandField) {
      case DIMSE_C_ECHO_RQ:
        usable =
            DIMSE_sendEchoResponse(assoc, pres_id, &message.msg.CEchoRQ, STATUS_Success, nullptr)
                .good();
        break;
      case DIMSE_C_STORE_RQ:
        usable = HandleStore(assoc, pres_id, message.msg.CStoreRQ, info);
        break;
      case DIMSE_N_CREATE_RQ:
      case DIMSE_N_SET_RQ:
        usable = HandleMpps(assoc, pres_id, message, info);
        break;
      case DIMSE_N_EVENT_REPORT_RQ:
        usable = HandleCommitmentReport(assoc, pres_id, message.msg.NEventReportRQ, info);
        break;
      case DIMSE_N_ACTION_RQ:
        usable = RefuseCommitmentRequest(assoc, pres_id, message.msg.NActionRQ, info);
        break;
      default:
        spdlog::warn("dimse listener: association from {}: unsupported DIMSE command 0x{:04x}",
                     info.calling_ae.str(), static_cast<unsigned>(message.CommandField));
        usable = false;
    }
    if (!usable) {
      ASC_abortAssociation(assoc);
      return;
    }
  }
  ASC_abortAssociation(assoc);
}

bool Listener::DrainDataset(T_ASC_Association* assoc) {
  DIC_UL bytes = 0;
  DIC_UL pdvs = 0;
  return DIMSE_ignoreDataSet(assoc, DIMSE_NONBLOCKING, dimse_timeout_s_, &bytes, &pdvs).good();
}

bool Listener::HandleStore(T_ASC_Association* assoc, T_ASC_PresentationContextID pres_id,
                           T_DIMSE_C_StoreRQ& request, const AssociationInfo& info) {
  Status outcome;
  if (!ReceiveStore(assoc, pres_id, request, info, outcome)) return false;
  if (!outcome.ok()) sink_.OnRejected(info, outcome);
  return SendStoreResponse(assoc, pres_id, request, outcome);
}

// Receives the dataset of one C-STORE into a file and hands it to the sink; `outcome` is what
// the response reports. Returns false if the association broke.
bool Listener::ReceiveStore(T_ASC_Association* assoc, T_ASC_PresentationContextID pres_id,
                            T_DIMSE_C_StoreRQ& request, const AssociationInfo& info,
                            Status& outcome) {
  const std::string what = "C-STORE from " + info.calling_ae.str();
  if (request.DataSetType == DIMSE_DATASET_NULL) {
    outcome = InvalidArgument(what + ": request has no dataset");
    return true;
  }
  if (Status capacity = sink_.CheckCapacity(); !capacity.ok()) {
    outcome = capacity;
    return DrainDataset(assoc);
  }
  const std::filesystem::path file = sink_.NewIncomingPath();
  DcmOutputFileStream* stream = nullptr;
  OFCondition cond = DIMSE_createFilestream(file.c_str(), &request, assoc, pres_id,
                                            /*writeMetaheader=*/OFTrue, &stream);
  if (cond.bad()) {
    delete stream;
    std::error_code ec;
    std::filesystem::remove(file, ec);
    outcome = ResourceExhausted(what + ": create " + file.string() + ": " + cond.text());
    return DrainDataset(assoc);
  }
  // Streams the PDVs to the file as they arrive: never the whole dataset in memory. Writeback
  // starts as they do, so the fsync before the response waits for the tail only.
  EarlyWriteback writeback(file);
  cond = DIMSE_receiveDataSetInFile(
      assoc, DIMSE_NONBLOCKING, dimse_timeout_s_, &pres_id, stream,
      [](void* context, unsigned long received) {
        static_cast<EarlyWriteback*>(context)->Progress(received);
      },
      &writeback);
  const bool written = stream->status().good();
  delete stream;  // closes the file
  writeback.Finish();
  std::error_code ec;
  if (cond.bad()) {
    std::filesystem::remove(file, ec);
    spdlog::warn("dimse listener: {}: receive dataset: {}", what, cond.text());
    return false;
  }
  if (!written) {
    std::filesystem::remove(file, ec);
    outcome = ResourceExhausted(what + ": write " + file.string() + " failed");
    return true;
  }
  Result<InstanceMeta> meta = ReadInstanceMeta(file);
  if (!meta.ok()) {
    std::filesystem::remove(file, ec);
    outcome = meta.status().WithContext(what);
    return true;
  }
  if (meta->sop_instance_uid.str() != Field(request.AffectedSOPInstanceUID) ||
      meta->sop_class_uid.str() != Field(request.AffectedSOPClassUID)) {
    std::filesystem::remove(file, ec);
    outcome = InvalidArgument(what +
                              ": dataset SOP Instance/Class UID differ from the C-STORE request's");
    return true;
  }
  AeTitle move_originator;
  if ((request.opts & O_STORE_MOVEORIGINATORAETITLE) != 0) {
    move_originator = AeTitle(Field(request.MoveOriginatorApplicationEntityTitle));
  }
  outcome = sink_.OnInstance(
      ReceivedInstance{file, std::move(meta).value(), info, std::move(move_originator)});
  return true;
}

bool Listener::SendStoreResponse(T_ASC_Association* assoc, T_ASC_PresentationContextID pres_id,
                                 T_DIMSE_C_StoreRQ& request, const Status& outcome) {
  T_DIMSE_C_StoreRSP response{};
  response.MessageIDBeingRespondedTo = request.MessageID;
  OFStandard::strlcpy(response.AffectedSOPClassUID, request.AffectedSOPClassUID,
                      sizeof response.AffectedSOPClassUID);
  OFStandard::strlcpy(response.AffectedSOPInstanceUID, request.AffectedSOPInstanceUID,
                      sizeof response.AffectedSOPInstanceUID);
  response.DataSetType = DIMSE_DATASET_NULL;
  response.DimseStatus = StoreResponseStatus(outcome);
  response.opts = O_STORE_AFFECTEDSOPCLASSUID | O_STORE_AFFECTEDSOPINSTANCEUID;
  if (request.opts & O_STORE_RQ_BLANK_PADDING) response.opts |= O_STORE_RSP_BLANK_PADDING;
  DcmDataset detail;
  if (!outcome.ok()) {
    const std::string comment = "conduit: " + std::string(StatusCodeName(outcome.code()));
    detail.putAndInsertString(DCM_ErrorComment, comment.substr(0, 64).c_str());
    spdlog::warn("dimse listener: refused instance ({}): {}", DimseStatusText(response.DimseStatus),
                 StatusCodeName(outcome.code()));
  }
  OFCondition cond = DIMSE_sendStoreResponse(assoc, pres_id, &request, &response,
                                             outcome.ok() ? nullptr : &detail);
  return cond.good();
}

bool Listener::HandleMpps(T_ASC_Association* assoc, T_ASC_PresentationContextID pres_id,
                          T_DIMSE_Message& message, const AssociationInfo& info) {
  const bool create = message.CommandField == DIMSE_N_CREATE_RQ;
  const char* sop_class =
      create ? message.msg.NCreateRQ.AffectedSOPClassUID : message.msg.NSetRQ.RequestedSOPClassUID;
  const T_DIMSE_DataSetType dataset_type =
      create ? message.msg.NCreateRQ.DataSetType : message.msg.NSetRQ.DataSetType;
  std::string instance_uid;
  if (!create) {
    instance_uid = Field(message.msg.NSetRQ.RequestedSOPInstanceUID);
  } else if (message.msg.NCreateRQ.opts & O_NCREATE_AFFECTEDSOPINSTANCEUID) {
    instance_uid = Field(message.msg.NCreateRQ.AffectedSOPInstanceUID);
  } else {
    char uid[100];
    instance_uid = dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT);
  }

  DcmDataset* dataset = nullptr;
  if (dataset_type != DIMSE_DATASET_NULL) {
    OFCondition cond = DIMSE_receiveDataSetInMemory(assoc, DIMSE_NONBLOCKING, dimse_timeout_s_,
                                                    &pres_id, &dataset, nullptr, nullptr);
    if (cond.bad()) {
      delete dataset;
      spdlog::warn("dimse listener: MPPS from {}: receive dataset: {}", info.calling_ae.str(),
                   cond.text());
      return false;
    }
  }
  uint16_t status = 0x0118;  // No such SOP Class
  if (Field(sop_class) == UID_ModalityPerformedProcedureStepSOPClass) {
    const Status outcome = sink_.OnMpps(ParseMpps(instance_uid, dataset, info));
    if (!outcome.ok()) {
      spdlog::warn("dimse listener: MPPS from {} refused: {}", info.calling_ae.str(),
                   StatusCodeName(outcome.code()));
    }
    status = NResponseStatus(outcome);
  }
  delete dataset;

  T_DIMSE_Message response{};
  if (create) {
    response.CommandField = DIMSE_N_CREATE_RSP;
    T_DIMSE_N_CreateRSP& rsp = response.msg.NCreateRSP;
    rsp.MessageIDBeingRespondedTo = message.msg.NCreateRQ.MessageID;
    OFStandard::strlcpy(rsp.AffectedSOPClassUID, sop_class, sizeof rsp.AffectedSOPClassUID);
    OFStandard::strlcpy(rsp.AffectedSOPInstanceUID, instance_uid.c_str(),
                        sizeof rsp.AffectedSOPInstanceUID);
    rsp.DimseStatus = status;
    rsp.DataSetType = DIMSE_DATASET_NULL;
    rsp.opts = O_NCREATE_AFFECTEDSOPCLASSUID | O_NCREATE_AFFECTEDSOPINSTANCEUID;
  } else {
    response.CommandField = DIMSE_N_SET_RSP;
    T_DIMSE_N_SetRSP& rsp = response.msg.NSetRSP;
    rsp.MessageIDBeingRespondedTo = message.msg.NSetRQ.MessageID;
    OFStandard::strlcpy(rsp.AffectedSOPClassUID, sop_class, sizeof rsp.AffectedSOPClassUID);
    OFStandard::strlcpy(rsp.AffectedSOPInstanceUID, instance_uid.c_str(),
                        sizeof rsp.AffectedSOPInstanceUID);
    rsp.DimseStatus = status;
    rsp.DataSetType = DIMSE_DATASET_NULL;
    rsp.opts = O_NSET_AFFECTEDSOPCLASSUID | O_NSET_AFFECTEDSOPINSTANCEUID;
  }
  return DIMSE_sendMessageUsingMemoryData(assoc, pres_id, &response, nullptr, nullptr, nullptr,
                                          nullptr)
      .good();
}

bool Listener::HandleCommitmentReport(T_ASC_Association* assoc, T_ASC_PresentationContextID pres_id,
                                      T_DIMSE_N_EventReportRQ& request,
                                      const AssociationInfo& info) {
  return ServeCommitmentReport(assoc, pres_id, request, dimse_timeout_s_, info.calling_ae,
                               [this, &info](const CommitmentReport& report) {
                                 return sink_.OnCommitmentReport(report, info);
                               });
}

// Conduit holds instances only until its jobs are done and its retention ends: it must not
// tell a modality that it may delete them. A commitment request is answered 0110.
bool Listener::RefuseCommitmentRequest(T_ASC_Association* assoc,
                                       T_ASC_PresentationContextID pres_id,
                                       T_DIMSE_N_ActionRQ& request, const AssociationInfo& info) {
  if (request.DataSetType != DIMSE_DATASET_NULL && !DrainDataset(assoc)) return false;
  spdlog::warn(
      "dimse listener: {} asked Conduit to commit to storage; refused: Conduit is "
      "no archive",
      info.calling_ae.str());
  sink_.OnRejected(info, FailedPrecondition("N-ACTION from " + info.calling_ae.str() +
                                            ": storage commitment requests are refused"));
  T_DIMSE_Message response{};
  response.CommandField = DIMSE_N_ACTION_RSP;
  T_DIMSE_N_ActionRSP& rsp = response.msg.NActionRSP;
  rsp.MessageIDBeingRespondedTo = request.MessageID;
  OFStandard::strlcpy(rsp.AffectedSOPClassUID, request.RequestedSOPClassUID,
                      sizeof rsp.AffectedSOPClassUID);
  OFStandard::strlcpy(rsp.AffectedSOPInstanceUID, request.RequestedSOPInstanceUID,
                      sizeof rsp.AffectedSOPInstanceUID);
  rsp.ActionTypeID = request.ActionTypeID;
  rsp.DimseStatus = 0x0110;  // Processing failure
  rsp.DataSetType = DIMSE_DATASET_NULL;
  rsp.opts =
      O_NACTION_AFFECTEDSOPCLASSUID | O_NACTION_AFFECTEDSOPINSTANCEUID | O_NACTION_ACTIONTYPEID;
  return DIMSE_sendMessageUsingMemoryData(assoc, pres_id, &response, nullptr, nullptr, nullptr,
                                          nullptr)
      .good();
}

}  // namespace

std::unique_ptr<DimseListener> MakeDimseListener(const DicomConfig& config, IngestSink& sink) {
  return std::make_unique<Listener>(config, sink, /*tls=*/false);
}

std::unique_ptr<DimseListener> MakeDimseTlsListener(const DicomConfig& config, IngestSink& sink) {
  return std::make_unique<Listener>(config, sink, /*tls=*/true);
}

}  // namespace conduit
