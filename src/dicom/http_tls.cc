#include "dicom/http_tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <memory>

#include "core/tls_files.h"

namespace conduit {

Result<std::unique_ptr<httplib::Client>> MakeHttpClient(const HttpUrl& url,
                                                        const TlsClientConfig& tls,
                                                        const std::string& setting) {
  if (url.scheme != "https") {
    if (tls.enabled) {
      return FailedPrecondition(setting + ": applies to an https url, and the url is " +
                                url.ToString());
    }
    return std::make_unique<httplib::Client>(url.Origin());
  }
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
  return FailedPrecondition(setting + ": this build's HTTP client has no TLS; https is refused");
#else
  ERR_clear_error();
  auto client = std::make_unique<httplib::Client>(url.Origin());
  SSL_CTX* ctx = client->ssl_context();
  if (!client->is_valid() || ctx == nullptr) {
    return FailedPrecondition(setting + ": no TLS context (" + OpenSslReason("OpenSSL") + ")");
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (!tls.client_certificate_file.empty()) {
    RETURN_IF_ERROR(UseCertificateAndKey(ctx, tls.client_certificate_file, tls.client_key_file,
                                         setting + ".client_certificate_file",
                                         setting + ".client_key_file"));
  }
  if (!tls.ca_file.empty()) client->set_ca_cert_path(tls.ca_file.string());
  if (!tls.crl_file.empty()) {
    // The CA file is loaded into the same store when the client connects.
    RETURN_IF_ERROR(
        LoadCrlFile(SSL_CTX_get_cert_store(ctx), tls.crl_file, setting + ".crl_file").status());
  }
  client->enable_server_certificate_verification(true);
  return client;
#endif
}

std::string DescribeTlsError(httplib::Error error, const httplib::Client& client,
                             const HttpUrl& url, const std::string& setting) {
  const std::string peer = url.host + ":" + std::to_string(url.port);
  switch (error) {
    case httplib::Error::SSLServerVerification: {
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
      const long result = client.get_openssl_verify_result();
      if (result != X509_V_OK) {
        ERR_clear_error();
        const bool revocation =
            result == X509_V_ERR_CERT_REVOKED || result == X509_V_ERR_CRL_HAS_EXPIRED ||
            result == X509_V_ERR_UNABLE_TO_GET_CRL || result == X509_V_ERR_CRL_NOT_YET_VALID;
        return "the TLS certificate of " + peer + " was not accepted (" +
               X509_verify_cert_error_string(result) + "); " +
               (revocation ? setting +
                                 ".crl_file holds the CA's revocation list: the certificate "
                                 "is revoked, or the CRL is missing or out of date"
                           : setting + ".ca_file must hold the CA that issued it");
      }
#else
      (void)client;
#endif
      ERR_clear_error();
      return "the TLS certificate of " + peer + " does not name " + url.host +
             "; use the name the certificate gives in the url";
    }
    case httplib::Error::SSLConnection:
      return "the TLS handshake with " + peer + " failed (" + OpenSslReason("no reason given") +
             "): the server may not speak TLS on this port, or may want a client certificate (" +
             setting + ".client_certificate_file) it trusts";
    case httplib::Error::SSLLoadingCerts:
      return "the trusted CAs could not be loaded (" + OpenSslReason("no reason given") +
             "): check " + setting + ".ca_file";
    default: {
      // A server refusing our client certificate after a TLS 1.3 handshake does so by an alert
      // on the first read or write, which httplib reports as a plain transport error.
      // Often the alert is lost with the connection; then only the hint remains.
      if (url.scheme != "https") return "";
      const std::string hint = ": a server that wants a client certificate (" + setting +
                               ".client_certificate_file) it trusts ends the connection so";
      const unsigned long code = ERR_peek_last_error();
      if (code != 0 && ERR_GET_LIB(code) == ERR_LIB_SSL) {
        return "the TLS connection with " + peer + " was ended by an alert (" + OpenSslReason("") +
               ")" + hint;
      }
      if (error == httplib::Error::Read || error == httplib::Error::Write ||
          error == httplib::Error::Canceled) {
        return "the TLS connection with " + peer + " ended during the request (" +
               httplib::to_string(error) + ")" + hint;
      }
      return "";
    }
  }
}

}  // namespace conduit
