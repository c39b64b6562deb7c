// MllpStream: the bytes of one MLLP connection over a non-blocking socket, in the clear or
// over TLS (OpenSSL), with every wait bounded. The TLS contexts come from the trust's files as
// core/tls_files.h checks them at start-up: a listener's (our certificate; the peer's verified
// against ca_file, required unless require_client_certificate is off) and a sender's (the
// peer's certificate verified against ca_file or the system's CAs and its name against the
// host; our client certificate when given). TLS 1.2 at least; with a crl_file, peers are checked
// against its CRLs, re-read whenever the file changes (core/revocation_store.h).
// Thread safety: none; one stream per connection, used from one thread (Shutdown excepted).
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>

#include "core/config.h"
#include "core/revocation_store.h"
#include "core/status.h"

namespace conduit {

// One end's TLS set-up for the RIS link: the OpenSSL context and, with a CRL file, the
// certificate store that follows that file.
class MllpTlsContext {
 public:
  MllpTlsContext(SSL_CTX* context, std::unique_ptr<RevocationStore> revocation);  // takes both
  ~MllpTlsContext();
  MllpTlsContext(const MllpTlsContext&) = delete;
  MllpTlsContext& operator=(const MllpTlsContext&) = delete;

  // A new connection's SSL, checking its peer against the current CAs and CRLs; null if
  // OpenSSL cannot make one.
  SSL* NewConnection() const;

 private:
  SSL_CTX* context_;
  std::unique_ptr<RevocationStore> revocation_;
};
using MllpTls = std::shared_ptr<const MllpTlsContext>;

// Errors: kFailedPrecondition naming `setting` and the file that cannot be used.
Result<MllpTls> MakeMllpServerContext(const DicomTlsListenerConfig& tls,
                                      const std::string& setting);
Result<MllpTls> MakeMllpClientContext(const TlsClientConfig& tls, const std::string& setting);

class MllpStream {
 public:
  // Takes the connected non-blocking socket `fd`. With `context`, the stream speaks TLS (after
  // Handshake); `server_name` is the host a client verifies the server's certificate against.
  MllpStream(int fd, const MllpTls& context, const std::string& server_name = "");
  ~MllpStream();
  MllpStream(const MllpStream&) = delete;
  MllpStream& operator=(const MllpStream&) = delete;

  bool tls() const { return ssl_ != nullptr; }
  int fd() const { return fd_; }

  // The TLS handshake (nothing in the clear), as server or client, before `deadline` and
  // unless `stop` is requested. Errors: kPermissionDenied with OpenSSL's reason (certificate
  // refused, not TLS), kDeadlineExceeded, kUnavailable (closed, stopping).
  Status Handshake(bool server, std::chrono::steady_clock::time_point deadline,
                   const std::stop_token* stop);
  // Up to `size` bytes, waiting at most `wait` for them: 0 when none came. Errors:
  // kUnavailable ("peer closed the connection", or the read error).
  Result<size_t> Read(char* buffer, size_t size, std::chrono::milliseconds wait);
  // All of `bytes` before `deadline`, unless `stop` is requested. Errors: kDeadlineExceeded,
  // kUnavailable.
  Status WriteAll(std::string_view bytes, std::chrono::steady_clock::time_point deadline,
                  const std::stop_token* stop);

 private:
  // Waits for `events` on the socket for at most `millis`; false on timeout.
  bool Wait(short events, int millis) const;

  int fd_;
  SSL* ssl_ = nullptr;
};

}  // namespace conduit
