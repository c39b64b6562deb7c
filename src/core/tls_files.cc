#include "core/tls_files.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <vector>

#include "core/text_file.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using SslContext = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;

// A certificate this close to its end gets a warning at start-up.
constexpr int kExpiryWarningDays = 30;

// Refuses the certificate in use by `ctx` outside its dates; warns when it ends soon.
Status CheckCertificateDates(SSL_CTX* ctx, const std::string& name) {
  X509* cert = SSL_CTX_get0_certificate(ctx);
  if (cert == nullptr) return Status::Ok();
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

Status LoadCaFile(SSL_CTX* ctx, const fs::path& ca_file, const std::string& setting) {
  if (ca_file.empty()) return Status::Ok();
  const std::string ca = ca_file.string();
  if (SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr) != 1) {
    return FailedPrecondition(setting + " " + ca + ": no usable PEM certificate (" +
                              OpenSslReason("unreadable") + ")");
  }
  return Status::Ok();
}

namespace {

// Each CRL in `crl_file` must come from a CA in `ca_file`, verify with its key, and that CA
// must be allowed to sign CRLs: otherwise OpenSSL refuses every certificate it checks.
Status CheckCrlIssuers(const fs::path& ca_file, const fs::path& crl_file,
                       const std::string& setting) {
  std::vector<std::unique_ptr<X509, decltype(&X509_free)>> cas;
  if (FILE* f = std::fopen(ca_file.c_str(), "re")) {
    while (X509* ca = PEM_read_X509(f, nullptr, nullptr, nullptr)) cas.emplace_back(ca, &X509_free);
    std::fclose(f);
  }
  ERR_clear_error();
  FILE* f = std::fopen(crl_file.c_str(), "re");
  if (f == nullptr) return Status::Ok();  // LoadCrlFile has said why
  Status status = Status::Ok();
  while (X509_CRL* crl = PEM_read_X509_CRL(f, nullptr, nullptr, nullptr)) {
    const X509* issuer = nullptr;
    for (const auto& ca : cas) {
      if (X509_NAME_cmp(X509_get_subject_name(ca.get()), X509_CRL_get_issuer(crl)) == 0) {
        issuer = ca.get();
      }
    }
    const std::string where = setting + " " + crl_file.string() + ": ";
    if (issuer == nullptr) {
      status = FailedPrecondition(where + "a CRL is not issued by a CA in " + ca_file.string());
    } else if (X509_CRL_verify(crl, X509_get0_pubkey(issuer)) != 1) {
      status = FailedPrecondition(where + "a CRL's signature does not verify with its CA in " +
                                  ca_file.string());
    } else if ((X509_get_extension_flags(const_cast<X509*>(issuer)) & EXFLAG_KUSAGE) != 0 &&
               (X509_get_key_usage(const_cast<X509*>(issuer)) & KU_CRL_SIGN) == 0) {
      status = FailedPrecondition(where +
                                  "its CA's key usage lacks cRLSign, so OpenSSL would "
                                  "refuse every certificate the CRL covers; the CA must be "
                                  "reissued with cRLSign");
    }
    X509_CRL_free(crl);
    if (!status.ok()) break;
  }
  std::fclose(f);
  ERR_clear_error();
  return status;
}

// The CRLs of `crl_file` (if set) loaded into `ctx`, current, and from the CAs of `ca_file`.
Status CheckCrlFile(SSL_CTX* ctx, const fs::path& ca_file, const fs::path& crl_file,
                    const std::string& setting) {
  if (crl_file.empty()) return Status::Ok();
  ASSIGN_OR_RETURN(const int64_t next_update,
                   LoadCrlFile(SSL_CTX_get_cert_store(ctx), crl_file, setting));
  if (next_update != 0 && next_update <= std::time(nullptr)) {
    return FailedPrecondition(setting + " " + crl_file.string() +
                              ": past its next update, so every certificate it covers would be "
                              "refused (CRL has expired); put the CA's current CRL there");
  }
  if (!ca_file.empty()) RETURN_IF_ERROR(CheckCrlIssuers(ca_file, crl_file, setting));
  return Status::Ok();
}

Result<SslContext> NewContext(const SSL_METHOD* method, const std::string& setting) {
  ERR_clear_error();
  SslContext ctx(SSL_CTX_new(method), &SSL_CTX_free);
  if (!ctx) return FailedPrecondition(setting + ": no TLS context (" + OpenSslReason("") + ")");
  return ctx;
}

}  // namespace

std::string OpenSslReason(const std::string& fallback) {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return fallback;
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : fallback;
}

Status UseCertificateAndKey(SSL_CTX* ctx, const fs::path& certificate, const fs::path& key,
                            const std::string& certificate_setting,
                            const std::string& key_setting) {
  const std::string cert = certificate.string();
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    return FailedPrecondition(certificate_setting + " " + cert + ": no usable PEM certificate (" +
                              OpenSslReason("unreadable") + ")");
  }
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(nullptr, &EVP_PKEY_free);
  if (FILE* f = std::fopen(key.c_str(), "re")) {
    // A passphrase callback that gives none: an encrypted key is refused, never prompted for.
    pkey.reset(PEM_read_PrivateKey(
        f, nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
    std::fclose(f);
  }
  if (!pkey) {
    return FailedPrecondition(key_setting + " " + key.string() +
                              ": no usable unencrypted PEM private key (" +
                              OpenSslReason("unreadable") + ")");
  }
  if (SSL_CTX_use_PrivateKey(ctx, pkey.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    return FailedPrecondition(key_setting + " " + key.string() + ": does not match " + cert);
  }
  return Status::Ok();
}

Result<int64_t> LoadCrlFile(X509_STORE* store, const fs::path& crl_file,
                            const std::string& setting) {
  ERR_clear_error();
  FILE* f = std::fopen(crl_file.c_str(), "re");
  if (f == nullptr) {
    return FailedPrecondition(setting + " " + crl_file.string() + ": cannot be read (" +
                              std::strerror(errno) + ")");
  }
  int count = 0;
  int64_t next_update = 0;
  while (X509_CRL* crl = PEM_read_X509_CRL(f, nullptr, nullptr, nullptr)) {
    ++count;
    std::tm tm{};
    const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl);
    if (next != nullptr && ASN1_TIME_to_tm(next, &tm) == 1) {
      const int64_t when = timegm(&tm);
      if (next_update == 0 || when < next_update) next_update = when;
    }
    const int added = X509_STORE_add_crl(store, crl);
    X509_CRL_free(crl);
    if (added != 1) {
      std::fclose(f);
      return FailedPrecondition(setting + " " + crl_file.string() + ": a CRL cannot be used (" +
                                OpenSslReason("unusable") + ")");
    }
  }
  std::fclose(f);
  // The loop ends on the first thing that is not a CRL: at the end of the file, or on garbage.
  const unsigned long last = ERR_peek_last_error();
  ERR_clear_error();
  if (count == 0 || (last != 0 && ERR_GET_REASON(last) != PEM_R_NO_START_LINE)) {
    return FailedPrecondition(setting + " " + crl_file.string() + ": no usable PEM CRL");
  }
  X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  return next_update;
}

Status CheckTlsClientFiles(const TlsClientConfig& tls, const std::string& setting) {
  if (tls.empty()) return Status::Ok();
  ASSIGN_OR_RETURN(SslContext ctx, NewContext(TLS_client_method(), setting));
  RETURN_IF_ERROR(LoadCaFile(ctx.get(), tls.ca_file, setting + ".ca_file"));
  RETURN_IF_ERROR(CheckCrlFile(ctx.get(), tls.ca_file, tls.crl_file, setting + ".crl_file"));
  if (tls.client_certificate_file.empty()) return Status::Ok();
  RETURN_IF_ERROR(UseCertificateAndKey(ctx.get(), tls.client_certificate_file, tls.client_key_file,
                                       setting + ".client_certificate_file",
                                       setting + ".client_key_file"));
  WarnIfOpenToOthers(tls.client_key_file, setting + ".client_key_file");
  return CheckCertificateDates(
      ctx.get(), setting + ".client_certificate_file " + tls.client_certificate_file.string());
}

Status CheckTlsListenerFiles(const DicomTlsListenerConfig& tls, const std::string& setting) {
  if (tls.port == 0) return Status::Ok();
  ASSIGN_OR_RETURN(SslContext ctx, NewContext(TLS_server_method(), setting));
  RETURN_IF_ERROR(LoadCaFile(ctx.get(), tls.ca_file, setting + ".ca_file"));
  RETURN_IF_ERROR(UseCertificateAndKey(ctx.get(), tls.certificate_file, tls.key_file,
                                       setting + ".certificate_file", setting + ".key_file"));
  WarnIfOpenToOthers(tls.key_file, setting + ".key_file");
  RETURN_IF_ERROR(CheckCrlFile(ctx.get(), tls.ca_file, tls.crl_file, setting + ".crl_file"));
  return CheckCertificateDates(ctx.get(),
                               setting + ".certificate_file " + tls.certificate_file.string());
}

Result<std::unique_ptr<RevocationStore>> RequireClientCertificates(SSL_CTX* ctx,
                                                                   const fs::path& ca_file,
                                                                   const fs::path& crl_file,
                                                                   const std::string& setting) {
  if (ca_file.empty()) return FailedPrecondition(setting + ".ca_file: not set");
  RETURN_IF_ERROR(LoadCaFile(ctx, ca_file, setting + ".ca_file"));
  RETURN_IF_ERROR(CheckCrlFile(ctx, ca_file, crl_file, setting + ".crl_file"));
  // Tells clients which CAs to pick a certificate for (browsers, curl with several).
  if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca_file.c_str())) {
    SSL_CTX_set_client_CA_list(ctx, names);
  }
  ERR_clear_error();
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  // Resumed sessions keep the verified client; OpenSSL refuses them without an id context.
  static constexpr unsigned char kSessionContext[] = "conduit-client-certificates";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);
  if (crl_file.empty()) return std::unique_ptr<RevocationStore>();
  auto revocation = std::make_unique<RevocationStore>(ca_file, crl_file, setting);
  RETURN_IF_ERROR(revocation->Load());
  return revocation;
}

std::optional<ClientCertificateRefusal> ClientCertificateRefusalOf(const SSL* ssl,
                                                                   unsigned long error) {
  if (ERR_GET_LIB(error) == ERR_LIB_SSL &&
      ERR_GET_REASON(error) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
    return ClientCertificateRefusal{.missing = true, .reason = "no client certificate"};
  }
  if (ssl == nullptr) return std::nullopt;
  const long verdict = SSL_get_verify_result(ssl);
  if (verdict == X509_V_OK) return std::nullopt;
  return ClientCertificateRefusal{.missing = false,
                                  .reason = std::string("client certificate refused: ") +
                                            X509_verify_cert_error_string(verdict)};
}

Status CheckConfiguredTls(const Config& config) {
  RETURN_IF_ERROR(CheckTlsListenerFiles(config.dicom.tls, "dicom.tls"));
  if (config.http.port != 0 && config.http.tls()) {
    ASSIGN_OR_RETURN(SslContext ctx, NewContext(TLS_server_method(), "http.tls"));
    RETURN_IF_ERROR(UseCertificateAndKey(ctx.get(), config.http.tls_certificate_file,
                                         config.http.tls_key_file, "http.tls.certificate_file",
                                         "http.tls.key_file"));
    WarnIfOpenToOthers(config.http.tls_key_file, "http.tls.key_file");
    RETURN_IF_ERROR(CheckCertificateDates(
        ctx.get(), "http.tls.certificate_file " + config.http.tls_certificate_file.string()));
    if (!config.http.tls_ca_file.empty()) {
      RETURN_IF_ERROR(RequireClientCertificates(ctx.get(), config.http.tls_ca_file,
                                                config.http.tls_crl_file, "http.tls")
                          .status());
    }
  }
  for (const DestinationConfig& destination : config.destinations) {
    RETURN_IF_ERROR(CheckTlsClientFiles(
        destination.tls,
        "destination '" + destination.name + (destination.stow() ? "': dicomweb.tls" : "': tls")));
  }
  for (const ToolConfig& tool : config.tools) {
    if (tool.kind == ToolKind::kDicomweb) {
      RETURN_IF_ERROR(CheckTlsClientFiles(tool.tls, "tool '" + tool.name + "': dicomweb.tls"));
    } else if (tool.kind == ToolKind::kDimse) {
      RETURN_IF_ERROR(CheckTlsClientFiles(tool.tls, "tool '" + tool.name + "': tls"));
    }
  }
  if (config.priors_source.kind != PriorsSourceKind::kNone) {
    RETURN_IF_ERROR(CheckTlsClientFiles(config.priors_source.tls, "priors_source.tls"));
  }
  if (config.ris.tls) {
    if (!config.ris.listen_tls.certificate_file.empty()) {
      DicomTlsListenerConfig ris = config.ris.listen_tls;
      ris.port = 1;  // checked whenever given: the sender presents the same certificate
      RETURN_IF_ERROR(CheckTlsListenerFiles(ris, "ris.tls"));
    } else {
      RETURN_IF_ERROR(CheckTlsClientFiles(config.ris.send_tls, "ris.tls"));
    }
  }
  return Status::Ok();
}

namespace {

// The end of the first certificate in `file` (`earliest`: of the one that ends first).
std::optional<int64_t> NotAfter(const fs::path& file, bool earliest) {
  FILE* f = std::fopen(file.c_str(), "re");
  if (f == nullptr) return std::nullopt;
  std::optional<int64_t> end;
  while (X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr)) {
    std::tm tm{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1) {
      const int64_t when = timegm(&tm);
      if (!end || when < *end) end = when;
    }
    X509_free(cert);
    if (!earliest) break;
  }
  std::fclose(f);
  ERR_clear_error();  // the read past the last certificate
  return end;
}

void AddEnds(std::vector<CertificateEnd>& out, const std::string& prefix,
             const TlsClientConfig& tls) {
  if (!tls.enabled) return;
  if (!tls.client_certificate_file.empty()) {
    if (auto end = NotAfter(tls.client_certificate_file, false)) {
      out.push_back({prefix + ".client_certificate_file", tls.client_certificate_file, *end});
    }
  }
  if (!tls.ca_file.empty()) {
    if (auto end = NotAfter(tls.ca_file, true)) {
      out.push_back({prefix + ".ca_file", tls.ca_file, *end});
    }
  }
}

// Calls `visit` with the metric label prefix and settings of every TLS client of `config`.
template <typename F>
void ForEachTlsClient(const Config& config, F visit) {
  for (const DestinationConfig& destination : config.destinations) {
    visit("destinations[" + destination.name + (destination.stow() ? "].dicomweb.tls" : "].tls"),
          destination.tls);
  }
  for (const ToolConfig& tool : config.tools) {
    if (tool.kind == ToolKind::kDicomweb) {
      visit("tools[" + tool.name + "].dicomweb.tls", tool.tls);
    } else if (tool.kind == ToolKind::kDimse) {
      visit("tools[" + tool.name + "].tls", tool.tls);
    }
  }
  if (config.priors_source.kind != PriorsSourceKind::kNone) {
    visit(std::string("priors_source.tls"), config.priors_source.tls);
  }
}

}  // namespace

std::vector<CertificateEnd> ConfiguredCertificateEnds(const Config& config) {
  std::vector<CertificateEnd> out;
  const DicomTlsListenerConfig& listener = config.dicom.tls;
  if (listener.port != 0) {
    if (auto end = NotAfter(listener.certificate_file, false)) {
      out.push_back({"dicom.tls.certificate_file", listener.certificate_file, *end});
    }
    if (!listener.ca_file.empty()) {
      if (auto end = NotAfter(listener.ca_file, true)) {
        out.push_back({"dicom.tls.ca_file", listener.ca_file, *end});
      }
    }
  }
  if (config.http.port != 0 && config.http.tls()) {
    if (auto end = NotAfter(config.http.tls_certificate_file, false)) {
      out.push_back({"http.tls.certificate_file", config.http.tls_certificate_file, *end});
    }
    if (!config.http.tls_ca_file.empty()) {
      if (auto end = NotAfter(config.http.tls_ca_file, true)) {
        out.push_back({"http.tls.ca_file", config.http.tls_ca_file, *end});
      }
    }
  }
  ForEachTlsClient(config, [&out](const std::string& prefix, const TlsClientConfig& tls) {
    AddEnds(out, prefix, tls);
  });
  if (config.ris.tls) {
    if (auto end = NotAfter(config.ris.listen_tls.certificate_file, false)) {
      out.push_back({"ris.tls.certificate_file", config.ris.listen_tls.certificate_file, *end});
    }
    if (auto end = NotAfter(config.ris.listen_tls.ca_file, true)) {
      out.push_back({"ris.tls.ca_file", config.ris.listen_tls.ca_file, *end});
    }
  }
  return out;
}

std::vector<CertificateEnd> ConfiguredCrlNextUpdates(const Config& config) {
  std::vector<CertificateEnd> out;
  auto add = [&out](const std::string& setting, const fs::path& crl_file) {
    if (crl_file.empty()) return;
    std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(),
                                                                  &X509_STORE_free);
    Result<int64_t> next_update = LoadCrlFile(store.get(), crl_file, setting);
    if (next_update.ok() && *next_update != 0) out.push_back({setting, crl_file, *next_update});
  };
  if (config.dicom.tls.port != 0) add("dicom.tls.crl_file", config.dicom.tls.crl_file);
  if (config.http.port != 0 && config.http.tls())
    add("http.tls.crl_file", config.http.tls_crl_file);
  ForEachTlsClient(config, [&add](const std::string& prefix, const TlsClientConfig& tls) {
    if (tls.enabled) add(prefix + ".crl_file", tls.crl_file);
  });
  if (config.ris.tls) add("ris.tls.crl_file", config.ris.listen_tls.crl_file);
  return out;
}

}  // namespace conduit
