#include "pipeline/move_inbox.h"

#include <cerrno>
#include <cstdio>
#include <map>
#include <string>
#include <system_error>

namespace conduit {

MoveInbox::Expectation::~Expectation() {
  std::lock_guard lock(inbox_.mu_);
  const auto it = inbox_.pending_.find(id_);
  if (it == inbox_.pending_.end()) return;
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(inbox_.ended_, [now](const auto& ended) { return ended.second.until <= now; });
  inbox_.ended_[it->second.study] = {it->second.source_ae, now + inbox_.linger_};
  inbox_.pending_.erase(it);
}

std::vector<std::filesystem::path> MoveInbox::Expectation::files() const {
  std::lock_guard lock(inbox_.mu_);
  const auto it = inbox_.pending_.find(id_);
  return it == inbox_.pending_.end() ? std::vector<std::filesystem::path>{} : it->second.files;
}

std::unique_ptr<MoveInbox::Expectation> MoveInbox::Expect(const StudyUid& study,
                                                          const AeTitle& source_ae,
                                                          const std::filesystem::path& dir) {
  std::lock_guard lock(mu_);
  const uint64_t id = next_id_++;
  pending_.emplace(id, Pending{study, source_ae, dir, {}, {}});
  return std::unique_ptr<Expectation>(new Expectation(*this, id));
}

std::optional<Status> MoveInbox::Take(const ReceivedInstance& instance) {
  const bool ours = !instance.move_originator.empty() && instance.move_originator == our_ae_;
  std::error_code ec;
  std::lock_guard lock(mu_);
  bool expected = false;
  for (auto& [id, pending] : pending_) {  // in order of Expect
    if (pending.study != instance.meta.study_uid) continue;
    if (!ours && pending.source_ae != instance.association.calling_ae) continue;
    expected = true;
    if (pending.instances.count(instance.meta.sop_instance_uid) != 0) continue;
    const std::filesystem::path target =
        pending.dir / (std::to_string(pending.files.size() + 1) + ".dcm");
    if (std::rename(instance.file.c_str(), target.c_str()) != 0) {
      const int error = errno;
      std::filesystem::remove(instance.file, ec);
      return ErrnoStatus(error, "retrieve: keep a moved instance in " + pending.dir.string());
    }
    pending.files.push_back(target);
    pending.instances.insert(instance.meta.sop_instance_uid);
    return Status::Ok();
  }
  if (expected) {  // a copy every retrieve of its study already holds
    std::filesystem::remove(instance.file, ec);
    return Status::Ok();
  }
  const auto ended = ended_.find(instance.meta.study_uid);
  const bool late =
      ours || (ended != ended_.end() && ended->second.until > std::chrono::steady_clock::now() &&
               ended->second.source_ae == instance.association.calling_ae);
  if (!late) return std::nullopt;
  std::filesystem::remove(instance.file, ec);
  return FailedPrecondition(
      "a C-MOVE sub-operation for us that no retrieve in progress expects (it came too late)");
}

}  // namespace conduit
