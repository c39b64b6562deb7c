// DCMTK network set-up shared by the listener and the sender: the one place where Conduit
// configures DCMTK's upper layer. Private to src/dicom (the public headers stay DCMTK-free).
#pragma once

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmnet/assoc.h>
#include <dcmtk/dcmnet/dcmtrans.h>

#include <chrono>
#include <string>

namespace conduit {

// Call before any DCMTK network use (idempotent, thread-safe): DCMTK 3.6.7 reads TCP_NODELAY
// from the environment when it opens a socket and leaves Nagle on without it.
void PrepareDcmtkNetwork();

// Sets TCP_NODELAY on the association's socket. Returns the socket, or -1 if it has none.
int DisableNagle(T_ASC_Association* assoc);

// Makes every plain connection `network` opens from now on a QuickAck one (below).
void AckEveryRead(T_ASC_Network* network);

// Asks the kernel to acknowledge what `socket` has received at once (TCP_QUICKACK, which does
// not stay set: call it after each read that got data).
void AckNow(int socket);

// A DCMTK connection (Base: DcmTCPConnection, DcmTLSConnection) that calls AckNow after each
// read that got data. A peer that leaves Nagle's algorithm on (DCMTK 3.6.7's tools without
// TCP_NODELAY=1, for one) holds each small write until its previous one is acknowledged; with
// Linux's delayed acknowledgement that is up to 40 ms per message, over TLS as in the clear.
template <typename Base>
class QuickAck final : public Base {
 public:
  using Base::Base;
  ssize_t read(void* buf, size_t nbyte) override {
    const ssize_t n = Base::read(buf, nbyte);
    if (n > 0) AckNow(static_cast<int>(this->getSocket()));
    return n;
  }
};

// Whole seconds for DCMTK timeouts (at least 1).
int TimeoutSeconds(std::chrono::milliseconds timeout);

// True for the uncompressed transfer syntaxes (implicit/explicit little endian, explicit big
// endian): any of them can be converted to another without a codec.
bool IsUncompressedTransferSyntax(const std::string& uid);

}  // namespace conduit
