#include "dicom/dicom_tls.h"

#include <arpa/inet.h>
#include <dcmtk/dcmtls/tlslayer.h>
#include <dcmtk/dcmtls/tlstrans.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <memory>
#include <string>

#include "core/revocation_store.h"
#include "core/tls_files.h"

namespace conduit {
namespace {

// The certificate error of the last handshake on this thread (X509_V_OK: none). The handshake
// runs on the thread that requests or receives the association.
thread_local int last_verify_error = X509_V_OK;

int RecordVerifyError(int preverify_ok, X509_STORE_CTX* store) {
  if (preverify_ok == 0) last_verify_error = X509_STORE_CTX_get_error(store);
  return preverify_ok;
}

// DCMTK's TLS layer making connections that acknowledge what they read at once, as Conduit's
// plain ones do (what DcmTLSTransportLayer::createConnection does, with QuickAck). For TLS only.
class QuickAckTlsLayer final : public DcmTLSTransportLayer {
 public:
  using DcmTLSTransportLayer::DcmTLSTransportLayer;
  // The listener's client certificates are then checked against CRLs too.
  void CheckRevocation(std::unique_ptr<RevocationStore> revocation) {
    revocation_ = std::move(revocation);
  }

  DcmTransportConnection* createConnection(DcmNativeSocketType socket,
                                           OFBool use_secure_layer) override {
    if (!use_secure_layer) return nullptr;
    SSL* ssl = SSL_new(getNativeHandle());
    if (ssl == nullptr) return nullptr;
    if (revocation_) revocation_->Apply(ssl);
    SSL_set_fd(ssl, static_cast<int>(socket));
    return new QuickAck<DcmTLSConnection>(socket, ssl);
  }

 private:
  std::unique_ptr<RevocationStore> revocation_;
};

bool IsIpAddress(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// A TLS layer for `role` with the BCP 195 non-downgrading profile, and the CAs it trusts.
Result<std::unique_ptr<QuickAckTlsLayer>> NewLayer(T_ASC_NetworkRole role,
                                                   const std::filesystem::path& ca_file,
                                                   const std::string& ca_setting) {
  // OpenSSL 3 initialises and seeds itself; DCMTK need not.
  auto layer = std::make_unique<QuickAckTlsLayer>(role, nullptr, OFFalse);
  if (!*layer) return Internal("DICOM TLS: DCMTK could not make a TLS context");
  if (OFCondition cond = layer->setTLSProfile(TSP_Profile_BCP195_ND); cond.bad()) {
    return Internal(std::string("DICOM TLS: profile: ") + cond.text());
  }
  if (OFCondition cond = layer->activateCipherSuites(); cond.bad()) {
    return Internal(std::string("DICOM TLS: cipher suites: ") + cond.text());
  }
  SSL_CTX* ctx = layer->getNativeHandle();
  if (ca_file.empty()) {
    SSL_CTX_set_default_verify_paths(ctx);
  } else if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
    return FailedPrecondition(ca_setting + " " + ca_file.string() +
                              ": no usable PEM certificate (" + OpenSslReason("unreadable") + ")");
  }
  return layer;
}

}  // namespace

Status UseClientTls(T_ASC_Network* network, const TlsClientConfig& tls, const std::string& host) {
  ERR_clear_error();
  last_verify_error = X509_V_OK;  // the handshake follows on this thread
  ASSIGN_OR_RETURN(std::unique_ptr<DcmTLSTransportLayer> layer,
                   NewLayer(NET_REQUESTOR, tls.ca_file, "tls.ca_file"));
  SSL_CTX* ctx = layer->getNativeHandle();
  if (!tls.client_certificate_file.empty()) {
    RETURN_IF_ERROR(UseCertificateAndKey(ctx, tls.client_certificate_file, tls.client_key_file,
                                         "tls.client_certificate_file", "tls.client_key_file"));
  }
  if (!tls.crl_file.empty()) {
    RETURN_IF_ERROR(
        LoadCrlFile(SSL_CTX_get_cert_store(ctx), tls.crl_file, "tls.crl_file").status());
  }
  layer->setCertificateVerification(DCV_requireCertificate);
  SSL_CTX_set_verify(ctx, SSL_CTX_get_verify_mode(ctx), RecordVerifyError);
  // The layer serves one association to one host (Association opens a network per peer).
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx);
  const int named = IsIpAddress(host) ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                                      : X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
  if (named != 1) return Internal("DICOM TLS: cannot check certificates for host " + host);
  if (OFCondition cond = ASC_setTransportLayer(network, layer.release(), /*takeover=*/1);
      cond.bad()) {
    return Internal(std::string("DICOM TLS: ") + cond.text());
  }
  return Status::Ok();
}

Result<std::unique_ptr<DcmTransportLayer>> MakeServerTlsLayer(const DicomTlsListenerConfig& tls) {
  ERR_clear_error();
  ASSIGN_OR_RETURN(std::unique_ptr<QuickAckTlsLayer> layer,
                   NewLayer(NET_ACCEPTOR, tls.ca_file, "dicom.tls.ca_file"));
  SSL_CTX* ctx = layer->getNativeHandle();
  RETURN_IF_ERROR(UseCertificateAndKey(ctx, tls.certificate_file, tls.key_file,
                                       "dicom.tls.certificate_file", "dicom.tls.key_file"));
  layer->setCertificateVerification(tls.require_client_certificate ? DCV_requireCertificate
                                                                   : DCV_checkCertificate);
  SSL_CTX_set_verify(ctx, SSL_CTX_get_verify_mode(ctx), RecordVerifyError);
  if (!tls.crl_file.empty()) {
    auto revocation = std::make_unique<RevocationStore>(tls.ca_file, tls.crl_file, "dicom.tls");
    RETURN_IF_ERROR(revocation->Load());
    layer->CheckRevocation(std::move(revocation));
  }
  return std::unique_ptr<DcmTransportLayer>(std::move(layer));
}

std::string LastTlsFailure() {
  const int verify = last_verify_error;
  last_verify_error = X509_V_OK;
  const std::string reason = OpenSslReason("");
  if (verify != X509_V_OK) return X509_verify_cert_error_string(verify);
  // What DCMTK's clean-up after the failure adds says nothing of the failure itself.
  if (reason == "shutdown while in init") return "";
  return reason;
}

}  // namespace conduit
