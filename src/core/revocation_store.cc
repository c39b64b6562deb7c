#include "core/revocation_store.h"

#include <openssl/x509_vfy.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <memory>
#include <utility>

#include "core/tls_files.h"

namespace conduit {

RevocationStore::RevocationStore(std::filesystem::path ca_file, std::filesystem::path crl_file,
                                 std::string setting)
    : ca_file_(std::move(ca_file)), crl_file_(std::move(crl_file)), setting_(std::move(setting)) {}

RevocationStore::~RevocationStore() { X509_STORE_free(store_); }

Status RevocationStore::Load() {
  std::lock_guard lock(mu_);
  stamp_ = StampOf();
  ASSIGN_OR_RETURN(X509_STORE * store, Build());
  X509_STORE_free(store_);
  store_ = store;
  return Status::Ok();
}

void RevocationStore::Apply(SSL* ssl) {
  std::lock_guard lock(mu_);
  if (const std::string stamp = StampOf(); stamp != stamp_) {
    stamp_ = stamp;
    Result<X509_STORE*> rebuilt = Build();
    if (rebuilt.ok()) {
      X509_STORE_free(store_);
      store_ = *rebuilt;
      spdlog::info("event=tls_crl_reloaded setting={}.crl_file file={}", setting_,
                   crl_file_.string());
    } else {
      spdlog::error("event=tls_crl_reload_failed {}; the previous CRLs stay in force",
                    rebuilt.status().message());
    }
  }
  if (store_ == nullptr) return;  // Load failed: the context's own store stays
  SSL_set1_verify_cert_store(ssl, store_);
  X509_VERIFY_PARAM_set_flags(SSL_get0_param(ssl), X509_V_FLAG_CRL_CHECK);
}

std::string RevocationStore::StampOf() const {
  struct stat st {};
  if (::stat(crl_file_.c_str(), &st) != 0) return "missing";
  return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

Result<X509_STORE*> RevocationStore::Build() const {
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), &X509_STORE_free);
  if (!store) return Internal(setting_ + ": cannot make a certificate store");
  const int loaded = ca_file_.empty()
                         ? X509_STORE_set_default_paths(store.get())
                         : X509_STORE_load_locations(store.get(), ca_file_.c_str(), nullptr);
  if (loaded != 1) {
    return FailedPrecondition(setting_ + ".ca_file " + ca_file_.string() +
                              ": no usable PEM certificate (" + OpenSslReason("unreadable") + ")");
  }
  RETURN_IF_ERROR(LoadCrlFile(store.get(), crl_file_, setting_ + ".crl_file").status());
  return store.release();
}

}  // namespace conduit
