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

// Asks the kernel to acknowledge what arrives on the association's socket at once, for the
// next while (TCP_QUICKACK does not stay set: call before each read of a message). A sender
// that leaves Nagle's algorithm on (DCMTK 3.6.7's tools without TCP_NODELAY=1, other stacks)
// holds each small write until its previous one is acknowledged; with the receiver's delayed
// acknowledgement that is ~40 ms per message.
void AckPromptly(T_ASC_Association* assoc);

// Whole seconds for DCMTK timeouts (at least 1).
int TimeoutSeconds(std::chrono::milliseconds timeout);

// True for the uncompressed transfer syntaxes (implicit/explicit little endian, explicit big
// endian): any of them can be converted to another without a codec.
bool IsUncompressedTransferSyntax(const std::string& uid);

}  // namespace conduit
