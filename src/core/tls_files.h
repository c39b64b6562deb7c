// The trust's TLS files (core/config.h: TlsClientConfig, DicomTlsListenerConfig) loaded with
// OpenSSL the way a connection loads them: shared by Conduit's HTTPS client and its DICOM TLS,
// and run at start-up (`conduit serve`, `conduit config check`) so that a wrong file stops the
// start instead of failing every transfer. Messages name the setting and the file, never what
// the file holds.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/revocation_store.h"
#include "core/status.h"

namespace conduit {

// The reason of the newest OpenSSL error on this thread, or `fallback`; the queue is emptied.
std::string OpenSslReason(const std::string& fallback);

// Puts the certificate chain in `certificate` (ours first, then any intermediate CAs) and the
// unencrypted private key in `key` (PEM both) into `ctx`. `certificate_setting` and
// `key_setting` name them in messages (e.g. "dicom.tls.certificate_file"). Errors:
// kFailedPrecondition naming the file: no usable certificate, no usable unencrypted key, or a
// key that does not match the certificate.
Status UseCertificateAndKey(SSL_CTX* ctx, const std::filesystem::path& certificate,
                            const std::filesystem::path& key,
                            const std::string& certificate_setting, const std::string& key_setting);

// Trusts the PEM CA certificates in `ca_file` for verifying peers; nothing when it is empty.
// Errors: kFailedPrecondition naming `setting` and the file when it holds no usable one.
Status LoadCaFile(SSL_CTX* ctx, const std::filesystem::path& ca_file, const std::string& setting);

// Adds every PEM CRL in `crl_file` to `store` and has it checked for the peer's certificate
// (X509_V_FLAG_CRL_CHECK). Returns the earliest next update of those CRLs (seconds since the
// epoch; 0 if none says). Errors: kFailedPrecondition naming `setting` and the file when it
// holds no CRL or one that cannot be read.
Result<int64_t> LoadCrlFile(X509_STORE* store, const std::filesystem::path& crl_file,
                            const std::string& setting);

// Has the server context `ctx` ask every client for a certificate and end the handshake
// unless it chains to a CA in `ca_file` (`setting`: its config section, e.g. "http.tls").
// With `crl_file`, also unless it is revoked: apply the returned store to each connection
// (RevocationStore::Apply); null without one. Errors: kFailedPrecondition naming the file.
Result<std::unique_ptr<RevocationStore>> RequireClientCertificates(
    SSL_CTX* ctx, const std::filesystem::path& ca_file, const std::filesystem::path& crl_file,
    const std::string& setting);

// Why a server handshake on `ssl` that ended with the OpenSSL error `error` refused the
// client's certificate: none sent, or OpenSSL's verification verdict (e.g. "certificate has
// expired"); nullopt when it failed for another reason (a plain-HTTP client, no shared cipher).
struct ClientCertificateRefusal {
  bool missing = false;
  std::string reason;
};
std::optional<ClientCertificateRefusal> ClientCertificateRefusalOf(const SSL* ssl,
                                                                   unsigned long error);

// Loads every file `tls` names (`setting` is its config section, e.g. "priors_source.tls").
// Also refuses a client certificate outside its dates, warns when one ends within 30 days and
// when the key file is open to other users.
Status CheckTlsClientFiles(const TlsClientConfig& tls, const std::string& setting);

// The same for the DICOM TLS listener's certificate, key, client CAs and CRLs (when a port is
// set); CRLs past their next update are refused (they would refuse every peer).
Status CheckTlsListenerFiles(const DicomTlsListenerConfig& tls, const std::string& setting);

// Both, for every TLS peer and listener of `config`: DICOMweb tools, DIMSE tools and
// destinations with TLS, the priors source, dicom.tls, and http.tls. Messages name the tool or
// destination.
Status CheckConfiguredTls(const Config& config);

// When a certificate file `config` names stops being valid: the TLS listeners' certificates,
// each client certificate, and each CA file (its earliest-ending certificate). `setting` names
// it as a metric label can, e.g. "destinations[pacs].tls.client_certificate_file". Files that
// cannot be read are left out (the start-up check and the failing connections name them).
struct CertificateEnd {
  std::string setting;
  std::filesystem::path file;
  int64_t not_after_unix = 0;  // seconds since the epoch
};
std::vector<CertificateEnd> ConfiguredCertificateEnds(const Config& config);

// When each CRL file `config` names is due to be replaced (the earliest next update in it):
// past that time OpenSSL refuses every peer it would check. Same shape; unreadable files are
// left out.
std::vector<CertificateEnd> ConfiguredCrlNextUpdates(const Config& config);

}  // namespace conduit
