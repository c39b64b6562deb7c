// CommitmentWaiters: joins a Storage Commitment report, which the DIMSE listener receives on
// an association the PACS opens, to the delivery that asked for it and waits for it.
// Thread safety: every member may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "dicom/storage_commitment.h"

namespace conduit {

class CommitmentWaiters {
  struct Slot;

 public:
  // One expected report; unregistered when destroyed.
  class Ticket {
   public:
    Ticket(CommitmentWaiters& owner, std::string transaction_uid, std::shared_ptr<Slot> slot);
    ~Ticket();
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    // The report, once it came; nullopt when `timeout` passed first or Shutdown() was called.
    std::optional<CommitmentReport> Wait(std::chrono::milliseconds timeout);

   private:
    CommitmentWaiters& owner_;
    std::string transaction_uid_;
    std::shared_ptr<Slot> slot_;
  };

  // Registers `transaction_uid` before its request is sent (the report may come before the
  // request's own answer).
  std::unique_ptr<Ticket> Expect(const std::string& transaction_uid);

  // Hands a report to its waiter. False if nobody waits for its transaction (a report that
  // came after its wait ended, or one never asked for).
  bool Deliver(const CommitmentReport& report);

  // Ends every wait now and every later one at once (the gateway is stopping).
  void Shutdown();
  bool shut_down() const;

 private:
  struct Slot {
    std::optional<CommitmentReport> report;
  };
  void Forget(const std::string& transaction_uid);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool shut_down_ = false;
  std::map<std::string, std::shared_ptr<Slot>> waiting_;
};

}  // namespace conduit
