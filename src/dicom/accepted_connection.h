// Receiving an A-ASSOCIATE-RQ on a connection the listener accepted itself, on a DCMTK network
// of its own. DCMTK 3.6.7 accepts, does the TLS handshake and reads the A-ASSOCIATE-RQ in one
// blocking call on its listen socket, so one peer that connects and says nothing would hold up
// every peer after it; here each connection waits on its own thread.
// Private to src/dicom (DCMTK types).
#pragma once

#include <string>

#include "core/status.h"
#include "dicom/dcmtk_net.h"  // first DCMTK include: brings osconfig.h

namespace conduit {

// Once per process, before the first ReceiveAssociation (idempotent, thread-safe). Sets DCMTK's
// process-wide "socket handed in from outside" (dcmExternalSocketHandle) to a stand-in: a
// connected loopback TCP socket Conduit keeps open. From then on DCMTK acceptor networks have
// no listen socket of their own; DCMTK only sets options on the stand-in and takes the real
// connection from the network's transport layer (ReceiveAssociation's). Conduit's only acceptor
// is its DIMSE listener. Errors: kUnavailable if no loopback socket can be made.
Status PrepareOwnAccept();

// Receives the A-ASSOCIATE-RQ on `connection` (owned from here on; a TLS connection must have
// finished its handshake), waiting at most timeout_s for it. Sets *network (always, unless
// the network cannot be made) and *association (when DCMTK got that far), which
// DropReceivedAssociation frees whatever the outcome. peer_address replaces DCMTK's note of
// the calling presentation address (it saw only the stand-in).
OFCondition ReceiveAssociation(DcmTransportConnection* connection, const std::string& peer_address,
                               int timeout_s, int max_pdu_bytes, bool tls, T_ASC_Network** network,
                               T_ASC_Association** association);

// Drops (without a word to the peer) and frees what ReceiveAssociation set; closes the
// connection. Either may be null.
void DropReceivedAssociation(T_ASC_Network** network, T_ASC_Association** association);

}  // namespace conduit
