// DICOM over TLS (PS3.15 Annex B; DCMTK's dcmtls with the BCP 195 non-downgrading profile,
// as DCMTK's own tools default to): the transport layer of an association Conduit requests,
// verifying the peer's certificate and that it names the host, and of the TLS listener.
// Private to src/dicom (DCMTK types).
#pragma once

#include <memory>
#include <string>

#include "core/config.h"
#include "core/status.h"
#include "dicom/dcmtk_net.h"  // first DCMTK include: brings osconfig.h

namespace conduit {

// Makes every association `network` (a requestor) opens speak TLS to `host`: the peer's
// certificate must chain to tls.ca_file (the system's CAs when empty), be within its dates, name
// `host` (DNS name or IP address) and not be revoked by tls.crl_file's CRLs (when set); tls's
// client certificate, if any, is presented.
// Errors: kFailedPrecondition if a file cannot be loaded (named), kInternal for DCMTK set-up.
Status UseClientTls(T_ASC_Network* network, const TlsClientConfig& tls, const std::string& host);

// The TLS layer of the TLS listener: its createConnection(socket, true) gives a connection
// whose serverSideHandshake() presents the listener's certificate and verifies a client
// certificate against tls.ca_file (the system's CAs when empty); one is required unless
// tls.require_client_certificate is false. Thread-safe: connections may be made on any thread.
Result<std::unique_ptr<DcmTransportLayer>> MakeServerTlsLayer(const DicomTlsListenerConfig& tls);

// After a failed TLS handshake on this thread: what OpenSSL found wrong with the peer's
// certificate (e.g. "hostname mismatch", "certificate has expired"), else OpenSSL's last
// reason, or "" if there is nothing beyond what DCMTK's condition says. Clears what it read.
std::string LastTlsFailure();

}  // namespace conduit
