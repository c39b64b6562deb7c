#include "store/spool_check.h"

#include <system_error>

namespace conduit {
namespace fs = std::filesystem;

const char* SpoolProblemName(SpoolProblem::Kind kind) {
  switch (kind) {
    case SpoolProblem::Kind::kUnrecorded:
      return "unrecorded";
    case SpoolProblem::Kind::kMissing:
      return "missing";
    case SpoolProblem::Kind::kSizeDiffers:
      return "size_differs";
    case SpoolProblem::Kind::kStray:
      return "stray";
    case SpoolProblem::Kind::kStaleWorkFolder:
      return "stale_work_folder";
  }
  return "unknown";
}

namespace {

// The bucket a well-formed key lives in (its first two hex digits), or -1.
int BucketOf(const std::string& key) {
  return IsSpoolKey(key) ? std::stoi(key.substr(0, 2), nullptr, 16) : -1;
}

// Walks the buckets in step with the index's rows, both in key order. The rows of one key
// (several results may name one file) are gathered, then settled against the file cursor.
class Walk {
 public:
  Walk(Spool& spool, const SpoolCheckOptions& options) : spool_(spool), options_(options) {}

  Status OnRecord(const SpoolFileRecord& record) {
    ++report_.records;
    if (!group_.empty() && record.spool_key == group_.front().spool_key) {
      group_.push_back(record);
      return Status::Ok();
    }
    RETURN_IF_ERROR(SettleGroup());
    group_.push_back(record);
    return Status::Ok();
  }

  Result<SpoolCheckReport> Finish(Index& index) {
    RETURN_IF_ERROR(SettleGroup());
    RETURN_IF_ERROR(AdvanceTo(256));
    RETURN_IF_ERROR(CheckWorkFolders(index));
    return std::move(report_);
  }

 private:
  Status SettleGroup() {
    if (group_.empty()) return Status::Ok();
    const SpoolFileRecord& first = group_.front();
    const int bucket = BucketOf(first.spool_key);
    if (bucket < 0) {
      // No file can be under a malformed key: the row's file is missing.
      Note(Problem(SpoolProblem::Kind::kMissing, first));
      ++report_.missing;
      group_.clear();
      return Status::Ok();
    }
    RETURN_IF_ERROR(AdvanceTo(bucket));
    while (cursor_ < keys_.size() && keys_[cursor_] < first.spool_key) {
      RETURN_IF_ERROR(Unrecorded(keys_[cursor_++]));
    }
    if (cursor_ < keys_.size() && keys_[cursor_] == first.spool_key) {
      ++cursor_;
      RETURN_IF_ERROR(CheckSize());
    } else {
      Note(Problem(SpoolProblem::Kind::kMissing, first));
      ++report_.missing;
    }
    group_.clear();
    return Status::Ok();
  }

  // A work folder is stale once its job has ended and its study is gone from the index (or the
  // job itself is unknown): only a retention sweep stopped midway leaves one.
  Status CheckWorkFolders(Index& index) {
    ASSIGN_OR_RETURN(std::vector<int64_t> ids, spool_.ListJobDirs());
    for (int64_t id : ids) {
      ASSIGN_OR_RETURN(std::optional<JobRecord> job, index.GetJob(JobId{id}));
      SpoolProblem p;
      if (job) {
        if (!IsTerminal(job->state)) continue;
        ASSIGN_OR_RETURN(std::optional<StudySummary> study, index.GetStudy(job->study_uid));
        if (study) continue;
        p.study_ref = StudyRef(job->study_uid);
      }
      p.kind = SpoolProblem::Kind::kStaleWorkFolder;
      p.path = spool_.root() / "jobs" / std::to_string(id);
      ++report_.stale_work_folders;
      if (options_.remove_unrecorded) {
        ASSIGN_OR_RETURN(bool removed, spool_.RemoveJobDir(id));
        p.removed = removed;
        ++report_.work_folders_removed;
      }
      Note(std::move(p));
    }
    return Status::Ok();
  }

  Status CheckSize() {
    const SpoolFileRecord& first = group_.front();
    std::error_code ec;
    const uint64_t size = fs::file_size(spool_.PathOf(first.spool_key), ec);
    if (ec) return ErrnoStatus(ec.value(), "spool check: size of " + first.spool_key);
    for (const SpoolFileRecord& r : group_) {
      if (r.size_bytes == size) return Status::Ok();
    }
    SpoolProblem p = Problem(SpoolProblem::Kind::kSizeDiffers, first);
    p.file_bytes = size;
    Note(std::move(p));
    ++report_.size_differs;
    return Status::Ok();
  }

  // Finishes the loaded bucket (its files past the cursor are unrecorded) and every bucket
  // before `bucket`, then loads `bucket` (256: none).
  Status AdvanceTo(int bucket) {
    while (loaded_ < bucket) {
      if (loaded_ >= 0) {
        while (cursor_ < keys_.size()) RETURN_IF_ERROR(Unrecorded(keys_[cursor_++]));
        // The removals are durable before the report says they were made.
        if (!removed_from_.empty()) RETURN_IF_ERROR(FsyncDirectory(removed_from_));
      }
      ++loaded_;
      keys_.clear();
      cursor_ = 0;
      removed_from_.clear();
      if (loaded_ > 255) break;
      std::vector<fs::path> strays;
      RETURN_IF_ERROR(spool_.ListBucket(loaded_, &keys_, &strays));
      report_.files += static_cast<int64_t>(keys_.size());
      for (const fs::path& stray : strays) {
        SpoolProblem p;
        p.kind = SpoolProblem::Kind::kStray;
        p.path = stray;
        Note(std::move(p));
        ++report_.strays;
      }
    }
    return Status::Ok();
  }

  Status Unrecorded(const std::string& key) {
    SpoolProblem p;
    p.kind = SpoolProblem::Kind::kUnrecorded;
    p.key = key;
    p.path = spool_.PathOf(key);
    std::error_code ec;
    p.file_bytes = fs::file_size(p.path, ec);
    if (ec) return ErrnoStatus(ec.value(), "spool check: size of " + key);
    ++report_.unrecorded;
    report_.unrecorded_bytes += p.file_bytes;
    if (options_.remove_unrecorded) {
      RETURN_IF_ERROR(spool_.Remove(key).WithContext("spool check"));
      p.removed = true;
      removed_from_ = p.path.parent_path();
      ++report_.removed;
    }
    Note(std::move(p));
    return Status::Ok();
  }

  SpoolProblem Problem(SpoolProblem::Kind kind, const SpoolFileRecord& record) const {
    SpoolProblem p;
    p.kind = kind;
    p.key = record.spool_key;
    p.study_ref = StudyRef(record.study_uid);
    p.recorded_bytes = record.size_bytes;
    p.path = spool_.PathOf(record.spool_key);
    return p;
  }

  void Note(SpoolProblem problem) {
    if (report_.problems.size() < options_.max_listed) {
      report_.problems.push_back(std::move(problem));
    }
  }

  Spool& spool_;
  const SpoolCheckOptions options_;
  SpoolCheckReport report_;
  std::vector<SpoolFileRecord> group_;  // the rows of one key, not settled yet
  int loaded_ = -1;                     // the bucket whose keys are in keys_
  std::vector<std::string> keys_;       // its files' keys, sorted
  size_t cursor_ = 0;                   // the first of keys_ not settled yet
  fs::path removed_from_;               // the loaded bucket, once a file was removed from it
};

}  // namespace

Result<SpoolCheckReport> CheckSpool(Spool& spool, Index& index, const SpoolCheckOptions& options) {
  Walk walk(spool, options);
  RETURN_IF_ERROR(
      index.ScanSpoolFiles([&walk](const SpoolFileRecord& record) { return walk.OnRecord(record); })
          .WithContext("spool check"));
  return walk.Finish(index);
}

}  // namespace conduit
