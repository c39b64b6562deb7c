#include "dicomweb_tool_sim/study_inbox.h"

#include <charconv>
#include <optional>
#include <system_error>

#include "common/uid.h"

namespace conduit::tools {
namespace {

std::optional<int> ParsePositive(std::string_view text) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 1) return std::nullopt;
  return value;
}

std::string KeyOf(const DeliveryHeaders& headers, std::string_view study_uid) {
  return headers.job.empty() ? "study:" + std::string(study_uid) : "job:" + headers.job;
}

}  // namespace

Result<std::pair<int, int>> ParseChunk(std::string_view value) {
  size_t slash = value.find('/');
  if (slash == std::string_view::npos) {
    return InvalidArgument("Conduit-Chunk: expected i/n, got no '/'");
  }
  std::optional<int> index = ParsePositive(value.substr(0, slash));
  std::optional<int> count = ParsePositive(value.substr(slash + 1));
  if (!index || !count) return InvalidArgument("Conduit-Chunk: i and n must be positive integers");
  if (*index > *count) return InvalidArgument("Conduit-Chunk: i is greater than n");
  return std::make_pair(*index, *count);
}

StudyInbox::StudyInbox(std::filesystem::path root, const Clock& clock, Millis quiet)
    : root_(std::move(root)), clock_(clock), quiet_(quiet) {}

StudyInbox::Group& StudyInbox::GroupForLocked(const std::string& key,
                                              const DeliveryHeaders& headers,
                                              std::string_view study_uid) {
  auto it = groups_.find(key);
  if (it == groups_.end()) {
    Group group;
    group.job = headers.job;
    group.study_uid = std::string(study_uid);
    group.log_name = headers.job.empty() ? "study " + LogRef(study_uid) : "job " + headers.job;
    // Folder names carry no identifier: a reference to the key and a sequence number.
    group.dir = root_ / (LogRef(key) + "." + std::to_string(next_folder_++));
    group.last_seen = clock_.Now();
    it = groups_.emplace(key, std::move(group)).first;
  }
  Group& group = it->second;
  if (!headers.results_url.empty()) group.results_url = headers.results_url;
  if (!headers.results_token.empty()) group.results_token = headers.results_token;
  if (group.study_uid.empty()) group.study_uid = std::string(study_uid);
  return group;
}

Result<InstanceInfo> StudyInbox::Add(const DeliveryHeaders& headers, InstanceInfo info,
                                     const std::filesystem::path& received, RequestKeys& keys) {
  const std::string key = KeyOf(headers, info.study_uid);
  std::lock_guard lock(mu_);
  Group& group = GroupForLocked(key, headers, info.study_uid);
  std::error_code ec;
  std::filesystem::create_directories(group.dir, ec);
  if (ec) return Internal("inbox folder " + group.dir.string() + ": " + ec.message());
  std::filesystem::path target = group.dir / (LogRef(info.sop_instance_uid) + ".dcm");
  std::filesystem::rename(received, target, ec);
  if (ec) return Internal("inbox move into " + group.dir.string() + ": " + ec.message());
  info.path = target;
  group.instances[info.sop_instance_uid] = info;
  group.last_seen = clock_.Now();
  if (keys.insert(key).second) ++group.in_flight;
  return info;
}

std::vector<CompletedStudy> StudyInbox::EndRequest(const DeliveryHeaders& headers,
                                                   const RequestKeys& keys) {
  std::lock_guard lock(mu_);
  std::set<std::string> affected = keys;
  if (headers.chunk_count > 0 && !headers.job.empty()) {
    const std::string key = KeyOf(headers, "");
    if (!keys.contains(key)) GroupForLocked(key, headers, "");
    affected.insert(key);
  }
  std::vector<CompletedStudy> done;
  for (const std::string& key : affected) {
    auto it = groups_.find(key);
    if (it == groups_.end()) continue;
    Group& group = it->second;
    if (keys.contains(key)) --group.in_flight;
    if (headers.chunk_count > 0) {
      group.chunk_count = headers.chunk_count;
      group.chunks_seen.insert(headers.chunk_index);
    }
    const bool all_chunks = group.chunk_count > 0 &&
                            static_cast<int>(group.chunks_seen.size()) >= group.chunk_count &&
                            *group.chunks_seen.rbegin() <= group.chunk_count;
    if (all_chunks && group.in_flight == 0) {
      done.push_back(Complete(group));
      groups_.erase(it);
    }
  }
  return done;
}

std::vector<CompletedStudy> StudyInbox::TakeQuiet() {
  std::lock_guard lock(mu_);
  const TimePoint now = clock_.Now();
  std::vector<CompletedStudy> done;
  for (auto it = groups_.begin(); it != groups_.end();) {
    Group& group = it->second;
    if (group.chunk_count == 0 && group.in_flight == 0 && !group.instances.empty() &&
        now - group.last_seen >= quiet_) {
      done.push_back(Complete(group));
      it = groups_.erase(it);
    } else {
      ++it;
    }
  }
  return done;
}

size_t StudyInbox::pending() const {
  std::lock_guard lock(mu_);
  return groups_.size();
}

CompletedStudy StudyInbox::Complete(Group& group) {
  CompletedStudy study;
  study.log_name = group.log_name;
  study.job = group.job;
  study.study_uid = group.study_uid;
  study.results_url = group.results_url;
  study.results_token = group.results_token;
  study.dir = group.dir;
  for (auto& [uid, info] : group.instances) study.instances.push_back(std::move(info));
  return study;
}

}  // namespace conduit::tools
