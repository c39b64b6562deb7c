#include "hl7/mllp_stream.h"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

#include "core/tls_files.h"

namespace conduit {
namespace {

using SteadyClock = std::chrono::steady_clock;

int MillisUntil(SteadyClock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left.count(), 1 << 30));
}

constexpr int kStopCheckMillis = 100;  // how often a wait looks at its stop token

using OwnedContext = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;

Result<OwnedContext> NewContext(const SSL_METHOD* method, const std::string& setting) {
  OwnedContext context(SSL_CTX_new(method), &SSL_CTX_free);
  if (!context) return Internal(setting + ": " + OpenSslReason("cannot create a TLS context"));
  SSL_CTX_set_min_proto_version(context.get(), TLS1_2_VERSION);
  SSL_CTX_set_mode(context.get(), SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return context;
}

// The CAs in the context itself; with a CRL file, also a store of CAs and CRLs that follows it.
Result<std::unique_ptr<RevocationStore>> UseCas(SSL_CTX* context,
                                                const std::filesystem::path& ca_file,
                                                const std::filesystem::path& crl_file,
                                                const std::string& setting) {
  if (ca_file.empty()) SSL_CTX_set_default_verify_paths(context);
  RETURN_IF_ERROR(LoadCaFile(context, ca_file, setting + ".ca_file"));
  if (crl_file.empty()) return std::unique_ptr<RevocationStore>();
  auto revocation = std::make_unique<RevocationStore>(ca_file, crl_file, setting);
  RETURN_IF_ERROR(revocation->Load());
  return revocation;
}

}  // namespace

MllpTlsContext::MllpTlsContext(SSL_CTX* context, std::unique_ptr<RevocationStore> revocation)
    : context_(context), revocation_(std::move(revocation)) {}

MllpTlsContext::~MllpTlsContext() { SSL_CTX_free(context_); }

SSL* MllpTlsContext::NewConnection() const {
  SSL* ssl = SSL_new(context_);
  if (ssl != nullptr && revocation_) revocation_->Apply(ssl);
  return ssl;
}

Result<MllpTls> MakeMllpServerContext(const DicomTlsListenerConfig& tls,
                                      const std::string& setting) {
  ASSIGN_OR_RETURN(OwnedContext context, NewContext(TLS_server_method(), setting));
  RETURN_IF_ERROR(UseCertificateAndKey(context.get(), tls.certificate_file, tls.key_file,
                                       setting + ".certificate_file", setting + ".key_file"));
  ASSIGN_OR_RETURN(std::unique_ptr<RevocationStore> revocation,
                   UseCas(context.get(), tls.ca_file, tls.crl_file, setting));
  SSL_CTX_set_verify(
      context.get(),
      SSL_VERIFY_PEER | (tls.require_client_certificate ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
      nullptr);
  return std::make_shared<const MllpTlsContext>(context.release(), std::move(revocation));
}

Result<MllpTls> MakeMllpClientContext(const TlsClientConfig& tls, const std::string& setting) {
  ASSIGN_OR_RETURN(OwnedContext context, NewContext(TLS_client_method(), setting));
  if (!tls.client_certificate_file.empty()) {
    RETURN_IF_ERROR(UseCertificateAndKey(context.get(), tls.client_certificate_file,
                                         tls.client_key_file, setting + ".certificate_file",
                                         setting + ".key_file"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<RevocationStore> revocation,
                   UseCas(context.get(), tls.ca_file, tls.crl_file, setting));
  SSL_CTX_set_verify(context.get(), SSL_VERIFY_PEER, nullptr);
  return std::make_shared<const MllpTlsContext>(context.release(), std::move(revocation));
}

MllpStream::MllpStream(int fd, const MllpTls& context, const std::string& server_name) : fd_(fd) {
  if (!context) return;
  ssl_ = context->NewConnection();
  if (ssl_ == nullptr) return;
  SSL_set_fd(ssl_, fd_);
  if (!server_name.empty()) {
    SSL_set_tlsext_host_name(ssl_, server_name.c_str());
    SSL_set1_host(ssl_, server_name.c_str());
  }
}

MllpStream::~MllpStream() {
  if (ssl_ != nullptr) {
    SSL_shutdown(ssl_);  // close_notify, best effort: no waiting for the peer's
    SSL_free(ssl_);
  }
  close(fd_);
}

bool MllpStream::Wait(short events, int millis) const {
  for (;;) {
    pollfd ready{fd_, events, 0};
    const int n = poll(&ready, 1, millis);
    if (n < 0 && errno == EINTR) continue;
    return n > 0;
  }
}

Status MllpStream::Handshake(bool server, SteadyClock::time_point deadline,
                             const std::stop_token* stop) {
  if (ssl_ == nullptr) return Status::Ok();
  for (;;) {
    ERR_clear_error();
    const int n = server ? SSL_accept(ssl_) : SSL_connect(ssl_);
    if (n == 1) return Status::Ok();
    const int error = SSL_get_error(ssl_, n);
    if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
      const long verified = SSL_get_verify_result(ssl_);
      std::string why = OpenSslReason(error == SSL_ERROR_SYSCALL || error == SSL_ERROR_ZERO_RETURN
                                          ? "the peer closed the connection"
                                          : "not a TLS peer");
      if (verified != X509_V_OK) why = X509_verify_cert_error_string(verified);
      return PermissionDenied("TLS handshake failed: " + why);
    }
    for (;;) {
      if (stop != nullptr && stop->stop_requested()) return Unavailable("stopping");
      const int left = MillisUntil(deadline);
      if (left == 0) return DeadlineExceeded("TLS handshake not finished in time");
      if (Wait(error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, std::min(left, kStopCheckMillis))) {
        break;
      }
    }
  }
}

Result<size_t> MllpStream::Read(char* buffer, size_t size, std::chrono::milliseconds wait) {
  const int chunk = static_cast<int>(std::min<size_t>(size, 1 << 30));
  const auto deadline = SteadyClock::now() + wait;
  for (;;) {
    if (ssl_ != nullptr) {
      ERR_clear_error();
      errno = 0;
      const int n = SSL_read(ssl_, buffer, chunk);
      if (n > 0) return static_cast<size_t>(n);
      const int error = SSL_get_error(ssl_, n);
      if (error == SSL_ERROR_ZERO_RETURN) return Unavailable("peer closed the connection");
      if (error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
        return Unavailable(errno == 0 ? "peer closed the connection"
                                      : std::string("read: ") + std::strerror(errno));
      }
      if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
        return Unavailable("read: " + OpenSslReason("TLS error"));
      }
      if (!Wait(error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, MillisUntil(deadline))) return 0;
      continue;
    }
    const ssize_t n = recv(fd_, buffer, static_cast<size_t>(chunk), 0);
    if (n > 0) return static_cast<size_t>(n);
    if (n == 0) return Unavailable("peer closed the connection");
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return Unavailable(std::string("read: ") + std::strerror(errno));
    }
    if (!Wait(POLLIN, MillisUntil(deadline))) return 0;
  }
}

Status MllpStream::WriteAll(std::string_view bytes, SteadyClock::time_point deadline,
                            const std::stop_token* stop) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    short want = POLLOUT;
    if (ssl_ != nullptr) {
      ERR_clear_error();
      const int n = SSL_write(ssl_, bytes.data() + sent,
                              static_cast<int>(std::min<size_t>(bytes.size() - sent, 1 << 30)));
      if (n > 0) {
        sent += static_cast<size_t>(n);
        continue;
      }
      const int error = SSL_get_error(ssl_, n);
      if (error == SSL_ERROR_WANT_READ) {
        want = POLLIN;
      } else if (error != SSL_ERROR_WANT_WRITE) {
        return Unavailable("write: " + OpenSslReason("TLS error"));
      }
    } else {
      const ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        return Unavailable(std::string("write: ") + std::strerror(errno));
      }
    }
    if (stop != nullptr && stop->stop_requested()) return Unavailable("write: stopping");
    const int left = MillisUntil(deadline);
    if (left == 0) return DeadlineExceeded("write: timed out");
    Wait(want, std::min(left, kStopCheckMillis));
  }
  return Status::Ok();
}

}  // namespace conduit
