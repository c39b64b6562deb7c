#include "dicom/accepted_connection.h"

#include <arpa/inet.h>
#include <dcmtk/dcmnet/dcmlayer.h>
#include <dcmtk/dcmnet/dcmtrans.h>
#include <dcmtk/dcmnet/dul.h>
#include <dcmtk/ofstd/ofstd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

namespace conduit {
namespace {

// The transport layer of a one-association network: gives DCMTK the connection the listener
// accepted the one time DCMTK asks for one (it asks once per received association).
class HandOverLayer final : public DcmTransportLayer {
 public:
  explicit HandOverLayer(DcmTransportConnection* connection) : connection_(connection) {}
  ~HandOverLayer() override { delete connection_; }
  DcmTransportConnection* createConnection(DcmNativeSocketType /*stand_in*/,
                                           OFBool /*use_secure_layer*/) override {
    return std::exchange(connection_, nullptr);
  }

 private:
  DcmTransportConnection* connection_;  // owned until handed over
};

// A connected loopback TCP socket for DCMTK to inspect in place of each accepted one. Both
// ends stay open for the life of the process.
Status MakeStandIn() {
  auto fail = [](const std::string& step, int fd1, int fd2) {
    const std::string why = std::strerror(errno);
    if (fd1 >= 0) close(fd1);
    if (fd2 >= 0) close(fd2);
    return Unavailable("dimse listener: cannot make its loopback stand-in socket (" + step + ": " +
                       why + "); the DICOM listener needs the loopback interface");
  };
  const int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (server < 0) return fail("socket", -1, -1);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof addr;
  if (bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(server, 1) != 0 ||
      getsockname(server, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    return fail("listen on 127.0.0.1", server, -1);
  }
  const int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (client < 0) return fail("socket", server, -1);
  if (connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return fail("connect to 127.0.0.1", server, client);
  }
  const int accepted = accept4(server, nullptr, nullptr, SOCK_CLOEXEC);
  if (accepted < 0) return fail("accept", server, client);
  close(server);
  dcmExternalSocketHandle.set(accepted);
  return Status::Ok();
}

}  // namespace

Status PrepareOwnAccept() {
  static std::once_flag once;
  static Status prepared = Status::Ok();
  std::call_once(once, [] {
    PrepareDcmtkNetwork();
    prepared = MakeStandIn();
  });
  return prepared;
}

OFCondition ReceiveAssociation(DcmTransportConnection* connection, const std::string& peer_address,
                               int timeout_s, int max_pdu_bytes, bool tls, T_ASC_Network** network,
                               T_ASC_Association** association) {
  *network = nullptr;
  *association = nullptr;
  OFCondition cond = ASC_initializeNetwork(NET_ACCEPTOR, 0, timeout_s, network);
  if (cond.bad()) {
    *network = nullptr;
    delete connection;
    return cond;
  }
  auto* layer = new HandOverLayer(connection);
  cond = ASC_setTransportLayer(*network, layer, /*takeover=*/1);
  if (cond.bad()) {
    delete layer;  // not taken over
    return cond;
  }
  cond = ASC_receiveAssociation(*network, association, max_pdu_bytes, nullptr, nullptr,
                                tls ? OFTrue : OFFalse, DUL_NOBLOCK, timeout_s);
  if (*association != nullptr && (*association)->params != nullptr) {
    OFStandard::strlcpy((*association)->params->DULparams.callingPresentationAddress,
                        peer_address.c_str(),
                        sizeof(*association)->params->DULparams.callingPresentationAddress);
  }
  return cond;
}

void DropReceivedAssociation(T_ASC_Network** network, T_ASC_Association** association) {
  if (*association != nullptr) {
    ASC_dropSCPAssociation(*association, 1);
    ASC_destroyAssociation(association);
  }
  if (*network != nullptr) ASC_dropNetwork(network);
}

}  // namespace conduit
