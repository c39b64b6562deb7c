#include "results/commitment_waiters.h"

#include <utility>

namespace conduit {

CommitmentWaiters::Ticket::Ticket(CommitmentWaiters& owner, std::string transaction_uid,
                                  std::shared_ptr<Slot> slot)
    : owner_(owner), transaction_uid_(std::move(transaction_uid)), slot_(std::move(slot)) {}

CommitmentWaiters::Ticket::~Ticket() { owner_.Forget(transaction_uid_); }

std::optional<CommitmentReport> CommitmentWaiters::Ticket::Wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(owner_.mu_);
  owner_.cv_.wait_for(lock, timeout,
                      [this] { return slot_->report.has_value() || owner_.shut_down_; });
  return slot_->report;
}

std::unique_ptr<CommitmentWaiters::Ticket> CommitmentWaiters::Expect(
    const std::string& transaction_uid) {
  auto slot = std::make_shared<Slot>();
  {
    std::lock_guard lock(mu_);
    waiting_[transaction_uid] = slot;
  }
  return std::make_unique<Ticket>(*this, transaction_uid, std::move(slot));
}

bool CommitmentWaiters::Deliver(const CommitmentReport& report) {
  {
    std::lock_guard lock(mu_);
    auto it = waiting_.find(report.transaction_uid);
    if (it == waiting_.end() || it->second->report.has_value()) return false;
    it->second->report = report;
  }
  cv_.notify_all();
  return true;
}

void CommitmentWaiters::Shutdown() {
  {
    std::lock_guard lock(mu_);
    shut_down_ = true;
  }
  cv_.notify_all();
}

bool CommitmentWaiters::shut_down() const {
  std::lock_guard lock(mu_);
  return shut_down_;
}

void CommitmentWaiters::Forget(const std::string& transaction_uid) {
  std::lock_guard lock(mu_);
  waiting_.erase(transaction_uid);
}

}  // namespace conduit
