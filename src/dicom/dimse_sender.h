// DIMSE client side: C-STORE SCU and C-ECHO SCU towards one peer (a PACS or an AI tool's
// node). Proposes each file's own transfer syntax (no transcoding) plus uncompressed ones.
// TCP_NODELAY is on; TLS when the peer's tls is enabled. Thread safety: each call opens its
// own association.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/ids.h"
#include "core/status.h"

namespace conduit {

struct DicomPeer {
  AeTitle calling_ae;
  AeTitle called_ae;
  std::string host;
  int port = 104;
  std::chrono::milliseconds timeout{30'000};
  TlsClientConfig tls;  // enabled: the association speaks TLS (dicom/dicom_tls.h)
};

// C-ECHO. Errors: kUnavailable if the peer cannot be reached or rejects the association.
Status Echo(const DicomPeer& peer);

// C-STOREs every file over one association. The outer Result fails (kUnavailable,
// kDeadlineExceeded; kFailedPrecondition for a TLS file that cannot be loaded) only if the
// association cannot be made or breaks; otherwise one Status
// per file, in order: OK on success or warning statuses; kUnavailable on A7xx "out of
// resources" (retryable); kInvalidArgument for other refusals; kFailedPrecondition if no
// presentation context was accepted for the file's SOP class and transfer syntax.
Result<std::vector<Status>> StoreFiles(const DicomPeer& peer,
                                       const std::vector<std::filesystem::path>& files);

}  // namespace conduit
