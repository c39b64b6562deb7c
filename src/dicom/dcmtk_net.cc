#include "dicom/dcmtk_net.h"

#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/dcmlayer.h>
#include <dcmtk/dcmnet/dcmtrans.h>
#include <dcmtk/dcmnet/dul.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstdlib>
#include <mutex>

namespace conduit {

namespace {

// DCMTK 3.6.7 keeps the socket of a connection protected; a member pointer taken through a
// derived class is the standard-conforming way to read it.
struct SocketOf : DcmTransportConnection {
  static int Get(DcmTransportConnection& connection) {
    return static_cast<int>((connection.*(&SocketOf::getSocket))());
  }
};

}  // namespace

void PrepareDcmtkNetwork() {
  static std::once_flag once;
  std::call_once(once, [] {
    setenv("TCP_NODELAY", "1", /*overwrite=*/0);
    // Peers are logged by address; a reverse DNS lookup per association only adds latency.
    dcmDisableGethostbyaddr.set(OFTrue);
  });
}

namespace {

int SocketOfAssociation(T_ASC_Association* assoc) {
  if (assoc == nullptr || assoc->DULassociation == nullptr) return -1;
  DcmTransportConnection* connection = DUL_getTransportConnection(assoc->DULassociation);
  return connection == nullptr ? -1 : SocketOf::Get(*connection);
}

}  // namespace

int DisableNagle(T_ASC_Association* assoc) {
  const int fd = SocketOfAssociation(assoc);
  if (fd < 0) return -1;
  const int on = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  return fd;
}

void AckNow(int socket) {
  const int on = 1;
  setsockopt(socket, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
}

namespace {

class QuickAckLayer final : public DcmTransportLayer {
 public:
  DcmTransportConnection* createConnection(DcmNativeSocketType socket,
                                           OFBool use_secure_layer) override {
    if (use_secure_layer) return nullptr;  // TLS: dicom_tls.h's layer
    return new QuickAck<DcmTCPConnection>(socket);
  }
};

}  // namespace

void AckEveryRead(T_ASC_Network* network) {
  if (network != nullptr) ASC_setTransportLayer(network, new QuickAckLayer, /*takeover=*/1);
}

int TimeoutSeconds(std::chrono::milliseconds timeout) {
  const auto seconds = (timeout.count() + 999) / 1000;
  return seconds < 1 ? 1 : static_cast<int>(seconds);
}

bool IsUncompressedTransferSyntax(const std::string& uid) {
  return uid == UID_LittleEndianImplicitTransferSyntax ||
         uid == UID_LittleEndianExplicitTransferSyntax ||
         uid == UID_BigEndianExplicitTransferSyntax;
}

}  // namespace conduit
