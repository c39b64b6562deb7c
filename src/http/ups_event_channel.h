// UpsEventChannel: the UPS-RS event channel (IHE AIW-I RAD-109 "Open Event Channel", PS3.18
// §8.10.4 Open Notification Connection) and the notifications sent over it (RAD-87, PS3.18
// §8.10.5/§11.13 Send Event Report). A WebSocket server (Boost.Beast) on its own port, over
// TLS (wss://) when the options name a certificate:
//   GET /ws/subscribers/{AETitle}   (also /subscribers/{AETitle}), Upgrade: websocket
// with "Authorization: Bearer <token>" when an authorizer is set. Each Send() becomes one
// text frame holding the DICOM JSON of the N-EVENT-REPORT (EventReportJson) on every open
// connection of that AE title. Events for an AE without an open connection are dropped (the
// subscriber catches up by query, as PS3.4 CC.2.4.3 allows). Frames from the client are read
// and ignored (only close and ping matter).
// Back-pressure: each connection holds at most max_queued_events unsent events; one that
// falls further behind is closed (close code 1008, logged) and may reconnect and re-query.
// Threads: one io thread ("ups-events"), started by Start(), joined by Stop() within a second.
// Thread safety: Send(), ConnectionCount() and port() may be called from any thread;
// Start()/Stop() from one thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "adapters/ups_worklist.h"
#include "core/address_range.h"
#include "core/status.h"
#include "http/auth_refusals.h"
#include "http/worklist_tokens.h"

namespace conduit {

struct UpsEventChannelOptions {
  std::string bind = "127.0.0.1";
  int port = 0;                                         // 0 picks a free port (tests)
  size_t max_queued_events = 256;                       // per connection
  size_t max_connections = 256;                         // over all AE titles
  std::chrono::milliseconds handshake_timeout{10'000};  // TLS handshake and upgrade request
  // Both set: the channel speaks only TLS (wss://, TLS 1.2 at least), with this certificate
  // (PEM, with any intermediates) and unencrypted key; the HTTP front end's (http.tls).
  // Loaded by Start().
  std::filesystem::path certificate_file;
  std::filesystem::path key_file;
  // With TLS: only clients presenting a certificate that chains to a CA here and, with
  // crl_file, is not revoked (http.tls.ca_file, crl_file); others are refused at the handshake
  // and reported as "client_certificate" refusals.
  std::filesystem::path ca_file;
  std::filesystem::path crl_file;
  // http.trusted_proxies: an upgrade request from one is reported with the client its
  // X-Forwarded-For names (http/client_address.h).
  std::vector<AddressRange> trusted_proxies;
};

// What an authorizer decides for one upgrade request: open it; 401 (no or unknown token);
// 403 (a valid token, but not for this AE title); 503 (could not decide now).
enum class UpsChannelAccess { kGranted, kUnauthenticated, kForbidden, kUnavailable };
struct UpsChannelDecision {
  UpsChannelDecision(UpsChannelAccess a, std::string t = {}) : access(a), tool(std::move(t)) {}
  UpsChannelAccess access;
  // When granted: the tool whose events (UpsEvent::tool) the connection may carry; empty for
  // every tool's (the administrator).
  std::string tool;
};

class UpsEventChannel final : public UpsEventSink {
 public:
  // Whether the bearer `token` (empty if none was sent) may open the channel of `ae_title`.
  // Called on the io thread once per upgrade request: at most one short index read, never a
  // wait on the network. Null: every caller may.
  // An event whose tool is not the connection's is not sent on it (an AE title that changed
  // hands while a connection stayed open).
  using Authorizer =
      std::function<UpsChannelDecision(const std::string& ae_title, const std::string& token)>;

  // Called (on the io thread) for each upgrade refused for its token (401, 403) instead of
  // logging it, e.g. AuthRefusals::Report; null: a warning is logged for each.
  using RefusalReporter = std::function<void(const AuthRefusal&)>;

  UpsEventChannel(UpsEventChannelOptions options, Authorizer authorize,
                  RefusalReporter report_refusal = nullptr);
  ~UpsEventChannel() override;  // Stop()s

  // Loads the TLS certificate (if any), binds bind:port and starts the io thread. Errors:
  // kUnavailable if the port cannot be bound; kFailedPrecondition if already started or the
  // certificate or key cannot be used (named).
  Status Start();
  // Closes every connection (close frame, then the socket) and joins the io thread; at most
  // about a second. Idempotent.
  void Stop();
  int port() const;

  // Queues `event` for every open connection of `subscriber_ae`; never blocks.
  void Send(const std::string& subscriber_ae, const UpsEvent& event) override;

  // Open (handshake done) connections of `ae_title`.
  size_t ConnectionCount(const std::string& ae_title) const;

  // The Event Report of `event` as DICOM JSON text: Affected SOP Class UID (0000,0002) of the
  // UPS Event SOP Class (1.2.840.10008.5.1.4.34.6.4), Command Field (0000,0100) N-EVENT-REPORT-RQ,
  // Message ID (0000,0110), Affected SOP Instance UID (0000,1000) (the workitem, or the well-known
  // UPS instance 1.2.840.10008.5.1.4.34.5 for an SCP Status Change), Event Type ID (0000,1002),
  // then the event's attributes (an attributes text that is not a JSON object is left out).
  static std::string EventReportJson(const UpsEvent& event, uint16_t message_id);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The gateway's authorizer: a worklist tool's token opens the channel of an AE title only if
// that tool holds a subscription under it (RAD-86 first, then RAD-109), so no tool hears
// another's events; `admin_token` (when not empty) opens any. An index error is kUnavailable.
// `tokens` and `worklist` must outlive the channel.
UpsEventChannel::Authorizer WorklistChannelAuthorizer(const WorklistTokens& tokens,
                                                      Worklist& worklist, std::string admin_token);

}  // namespace conduit
