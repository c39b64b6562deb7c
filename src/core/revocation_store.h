// The certificate store a TLS endpoint verifies its peers with when it has a CRL file: the
// trusted CAs and the CRLs, rebuilt when the CRL file changes (inode, size or modification
// time), so that a newly published CRL takes effect from the next connection without a restart.
// A changed file that cannot be used leaves the last good store in force (logged once per
// change). Shared by the DICOM TLS listener and the RIS link (MLLP over TLS).
// Thread safety: Apply may be called from any thread.
#pragma once

#include <openssl/ssl.h>

#include <filesystem>
#include <mutex>
#include <string>

#include "core/status.h"

namespace conduit {

class RevocationStore {
 public:
  // `ca_file` empty: the system's CAs. `setting` names the config section in messages and log
  // lines (e.g. "ris.tls").
  RevocationStore(std::filesystem::path ca_file, std::filesystem::path crl_file,
                  std::string setting);
  ~RevocationStore();
  RevocationStore(const RevocationStore&) = delete;
  RevocationStore& operator=(const RevocationStore&) = delete;

  // The first load. Errors: kFailedPrecondition naming the file (no usable CA, no or an
  // unreadable CRL); the caller should refuse to start.
  Status Load();

  // Has `ssl` verify its peer against the current CAs and CRLs, re-reading them first if the
  // CRL file changed since they were read.
  void Apply(SSL* ssl);

 private:
  std::string StampOf() const;
  Result<X509_STORE*> Build() const;

  const std::filesystem::path ca_file_;
  const std::filesystem::path crl_file_;
  const std::string setting_;
  std::mutex mu_;
  X509_STORE* store_ = nullptr;  // guarded by mu_
  std::string stamp_;            // guarded by mu_: the CRL file's when store_ was (re)built
};

}  // namespace conduit
