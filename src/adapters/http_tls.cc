#include "adapters/http_tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <memory>

#include "core/text_file.h"

namespace conduit {
namespace {

// A client certificate this close to its end gets a warning at start-up.
constexpr int kExpiryWarningDays = 30;

// The reason of the newest OpenSSL error on this thread, or `fallback`; the queue is emptied.
std::string OpenSslReason(const std::string& fallback) {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return fallback;
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : fallback;
}

Status LoadClientCertificate(SSL_CTX* ctx, const TlsClientConfig& tls, const std::string& setting) {
  if (tls.client_certificate_file.empty()) return Status::Ok();
  const std::string cert = tls.client_certificate_file.string();
  const std::string key = tls.client_key_file.string();
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    return FailedPrecondition(setting + ".client_certificate_file " + cert +
                              ": no usable PEM certificate (" + OpenSslReason("unreadable") + ")");
  }
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(nullptr, &EVP_PKEY_free);
  if (FILE* f = std::fopen(key.c_str(), "re")) {
    // A passphrase callback that gives none: an encrypted key is refused, never prompted for.
    pkey.reset(PEM_read_PrivateKey(
        f, nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
    std::fclose(f);
  }
  if (!pkey) {
    return FailedPrecondition(setting + ".client_key_file " + key +
                              ": no usable unencrypted PEM private key (" +
                              OpenSslReason("unreadable") + ")");
  }
  if (SSL_CTX_use_PrivateKey(ctx, pkey.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    return FailedPrecondition(setting + ".client_key_file " + key + ": does not match " + cert);
  }
  return Status::Ok();
}

// Whether the certificate in use by `ctx` has ended, or ends within the warning period.
Status CheckClientCertificateDates(SSL_CTX* ctx, const TlsClientConfig& tls,
                                   const std::string& setting) {
  X509* cert = SSL_CTX_get0_certificate(ctx);
  if (cert == nullptr) return Status::Ok();
  const std::string name =
      setting + ".client_certificate_file " + tls.client_certificate_file.string();
  if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
    return FailedPrecondition(name + ": the certificate is not valid yet");
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0) {
    return FailedPrecondition(name + ": the certificate has expired; renew it");
  }
  int days = 0;
  int seconds = 0;
  if (ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(cert)) == 1 &&
      days < kExpiryWarningDays) {
    spdlog::warn("{}: the certificate expires in {} day(s); renew it", name, days);
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<httplib::Client>> MakeHttpClient(const HttpUrl& url,
                                                        const TlsClientConfig& tls,
                                                        const std::string& setting) {
  if (url.scheme != "https") {
    if (!tls.empty()) {
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
  RETURN_IF_ERROR(LoadClientCertificate(ctx, tls, setting));
  if (!tls.ca_file.empty()) client->set_ca_cert_path(tls.ca_file.string());
  client->enable_server_certificate_verification(true);
  return client;
#endif
}

Status CheckTlsClientFiles(const TlsClientConfig& tls, const std::string& setting) {
  if (tls.empty()) return Status::Ok();
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        &SSL_CTX_free);
  if (!ctx) return FailedPrecondition(setting + ": no TLS context (" + OpenSslReason("") + ")");
  if (!tls.ca_file.empty()) {
    const std::string ca = tls.ca_file.string();
    if (SSL_CTX_load_verify_locations(ctx.get(), ca.c_str(), nullptr) != 1) {
      return FailedPrecondition(setting + ".ca_file " + ca + ": no usable PEM certificate (" +
                                OpenSslReason("unreadable") + ")");
    }
  }
  RETURN_IF_ERROR(LoadClientCertificate(ctx.get(), tls, setting));
  if (!tls.client_key_file.empty()) {
    WarnIfOpenToOthers(tls.client_key_file, setting + ".client_key_file");
  }
  return CheckClientCertificateDates(ctx.get(), tls, setting);
}

Status CheckConfiguredTls(const Config& config) {
  for (const ToolConfig& tool : config.tools) {
    if (tool.kind != ToolKind::kDicomweb) continue;
    RETURN_IF_ERROR(CheckTlsClientFiles(tool.tls, "tool '" + tool.name + "': dicomweb.tls"));
  }
  if (config.priors_source.kind == PriorsSourceKind::kDicomweb) {
    RETURN_IF_ERROR(CheckTlsClientFiles(config.priors_source.tls, "priors_source.tls"));
  }
  return Status::Ok();
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
        return "the TLS certificate of " + peer + " was not accepted (" +
               X509_verify_cert_error_string(result) + "); " + setting +
               ".ca_file must hold the CA that issued it";
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
