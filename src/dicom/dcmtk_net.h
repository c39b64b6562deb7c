// DCMTK network set-up shared by the listener and the sender: the one place where Conduit
// configures DCMTK's upper layer. Private to src/dicom (the public headers stay DCMTK-free).
#pragma once

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmnet/assoc.h>

#include <chrono>
#include <string>

namespace conduit {

// Call before any DCMTK network use (idempotent, thread-safe): DCMTK 3.6.7 reads TCP_NODELAY
// from the environment when it opens a socket and leaves Nagle on without it.
void PrepareDcmtkNetwork();

// Sets TCP_NODELAY on the association's socket. Returns the socket, or -1 if it has none.
int DisableNagle(T_ASC_Association* assoc);

// Makes every connection `network` opens or accepts from now on acknowledge what it reads at
// once (TCP_QUICKACK after each read). A peer that leaves Nagle's algorithm on (DCMTK 3.6.7's
// tools without TCP_NODELAY=1, for one) holds each small write until its previous one is
// acknowledged; with Linux's delayed acknowledgement that is up to 40 ms per message.
void AckEveryRead(T_ASC_Network* network);

// A plain connection on an accepted `socket` (owned from here on) that acknowledges what it
// reads at once, as AckEveryRead's connections do.
DcmTransportConnection* NewQuickAckConnection(int socket);

// Whole seconds for DCMTK timeouts (at least 1).
int TimeoutSeconds(std::chrono::milliseconds timeout);

// True for the uncompressed transfer syntaxes (implicit/explicit little endian, explicit big
// endian): any of them can be converted to another without a codec.
bool IsUncompressedTransferSyntax(const std::string& uid);

}  // namespace conduit
