// MoveInbox: where instances a PACS sends on our C-MOVE for a prior (C-STORE sub-operations on
// associations the PACS opens to our listener) are taken aside instead of being ingested as a
// new study. A retrieve registers the study it asked for (Expect) and its folder; the ingest
// path offers every received instance (Take) first. An instance is taken when its study is
// expected and it comes from the PACS's AE title or names us as its move originator. One that
// names us as move originator but that no retrieve expects, or that comes from the PACS for a
// study whose retrieve ended in the last `linger` (it came too late), is refused: it must not
// be routed as a new study.
// Thread safety: all methods may be called concurrently.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include "core/ids.h"
#include "core/status.h"
#include "dicom/dimse_listener.h"

namespace conduit {

class MoveInbox {
 public:
  // `our_ae`: the AE title C-MOVEs name as destination (dicom.ae_title).
  explicit MoveInbox(AeTitle our_ae,
                     std::chrono::steady_clock::duration linger = std::chrono::minutes(10))
      : our_ae_(std::move(our_ae)), linger_(linger) {}

  // One retrieve in progress; unregistered when destroyed.
  class Expectation {
   public:
    ~Expectation();
    Expectation(const Expectation&) = delete;
    Expectation& operator=(const Expectation&) = delete;
    // The files taken so far, in order of arrival.
    std::vector<std::filesystem::path> files() const;

   private:
    friend class MoveInbox;
    Expectation(MoveInbox& inbox, uint64_t id) : inbox_(inbox), id_(id) {}
    MoveInbox& inbox_;
    uint64_t id_;
  };

  // Expects instances of `study` from `source_ae` (the PACS), moved into `dir` (which must exist,
  // on the file system of the listener's incoming files). Two jobs may retrieve one study at
  // once: the PACS then sends it twice, and each retrieve gets one copy of every instance.
  std::unique_ptr<Expectation> Expect(const StudyUid& study, const AeTitle& source_ae,
                                      const std::filesystem::path& dir);

  // For an instance a retrieve expects: moves its file into the folder of the first retrieve
  // of its study that lacks it, and returns OK (or the error of the move); a further copy that
  // none lacks is dropped (OK). For one naming us as move originator that none expects, or
  // from the PACS for a study whose retrieve ended within `linger`: removes the file and
  // returns kFailedPrecondition. Otherwise nullopt: ingest it as usual.
  std::optional<Status> Take(const ReceivedInstance& instance);

 private:
  struct Pending {
    StudyUid study;
    AeTitle source_ae;
    std::filesystem::path dir;
    std::vector<std::filesystem::path> files;
    std::set<SopInstanceUid> instances;  // of `files`
  };

  // A retrieve that ended: late copies from its PACS are refused until `until`.
  struct Ended {
    AeTitle source_ae;
    std::chrono::steady_clock::time_point until;
  };

  const AeTitle our_ae_;
  const std::chrono::steady_clock::duration linger_;
  mutable std::mutex mu_;
  std::map<uint64_t, Pending> pending_;  // guarded by mu_
  std::map<StudyUid, Ended> ended_;      // guarded by mu_; pruned when one is added
  uint64_t next_id_ = 1;                 // guarded by mu_
};

}  // namespace conduit
