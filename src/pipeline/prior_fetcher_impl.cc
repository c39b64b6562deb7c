#include "pipeline/prior_fetcher_impl.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <system_error>

#include "adapters/dicomweb_client.h"
#include "core/glob.h"
#include "core/priors_yaml.h"
#include "dicom/dimse_query_retrieve.h"
#include "dicom/instance_meta.h"
#include "store/received_instance.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using std::chrono::steady_clock;

std::string JobName(const JobRecord& job) { return "job " + std::to_string(job.id.value); }

// YYYYMMDD as days since the epoch; nullopt for anything else.
std::optional<std::chrono::sys_days> DateOf(const std::string& text) {
  if (text.size() != 8) return std::nullopt;
  int v[3] = {0, 0, 0};
  const std::pair<int, int> parts[3] = {{0, 4}, {4, 2}, {6, 2}};
  for (int i = 0; i < 3; ++i) {
    const char* begin = text.data() + parts[i].first;
    auto [end, ec] = std::from_chars(begin, begin + parts[i].second, v[i]);
    if (ec != std::errc() || end != begin + parts[i].second) return std::nullopt;
  }
  const std::chrono::year_month_day ymd{std::chrono::year(v[0]),
                                        std::chrono::month(static_cast<unsigned>(v[1])),
                                        std::chrono::day(static_cast<unsigned>(v[2]))};
  if (!ymd.ok()) return std::nullopt;
  return std::chrono::sys_days(ymd);
}

bool SameText(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) ==
                  std::toupper(static_cast<unsigned char>(y));
         });
}

bool Overlap(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (const auto& x : a) {
    for (const auto& y : b) {
      if (SameText(x, y)) return true;
    }
  }
  return false;
}

void AddDistinct(std::vector<std::string>& values, const std::string& value) {
  if (value.empty()) return;
  if (std::find(values.begin(), values.end(), value) == values.end()) values.push_back(value);
}

// C-FIND, then C-GET, or with a move inbox C-MOVE to our own AE title.
class DimsePriorSource final : public PriorSource {
 public:
  DimsePriorSource(DicomPeer peer, MoveInbox* move_inbox)
      : peer_(std::move(peer)), move_inbox_(move_inbox) {}
  std::string Name() const override {
    return "DIMSE " + peer_.called_ae.str() + "@" + peer_.host + ":" + std::to_string(peer_.port) +
           (move_inbox_ != nullptr ? " (C-MOVE)" : "");
  }
  Result<std::vector<StudyMatch>> Find(const std::string& patient_id,
                                       steady_clock::time_point deadline,
                                       std::stop_token stop) override {
    return FindStudies(peer_, patient_id, deadline, std::move(stop));
  }
  Result<std::vector<fs::path>> Fetch(const StudyMatch& study, const fs::path& dir,
                                      steady_clock::time_point deadline,
                                      std::stop_token stop) override {
    if (move_inbox_ == nullptr) {
      return GetStudy(peer_, study.study_uid, study.sop_classes, dir, deadline, std::move(stop));
    }
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return ErrnoStatus(ec.value(), "C-MOVE: create " + dir.string());
    const std::unique_ptr<MoveInbox::Expectation> expected =
        move_inbox_->Expect(study.study_uid, peer_.called_ae, dir);
    ASSIGN_OR_RETURN(const int sent, MoveStudy(peer_, study.study_uid, peer_.calling_ae, deadline,
                                               std::move(stop)));
    std::vector<fs::path> files = expected->files();
    if (static_cast<int>(files.size()) < sent) {
      return Unavailable("C-MOVE from " + Name() + ": the PACS sent " + std::to_string(sent) +
                         " instance(s), " + std::to_string(files.size()) + " arrived here");
    }
    return files;
  }

 private:
  const DicomPeer peer_;
  MoveInbox* const move_inbox_;  // null: C-GET
};

class DicomwebPriorSource final : public PriorSource {
 public:
  explicit DicomwebPriorSource(DicomwebPeer peer) : peer_(std::move(peer)) {}
  std::string Name() const override { return "DICOMweb " + peer_.url; }
  Result<std::vector<StudyMatch>> Find(const std::string& patient_id,
                                       steady_clock::time_point deadline,
                                       std::stop_token stop) override {
    return SearchStudies(peer_, patient_id, deadline, std::move(stop));
  }
  Result<std::vector<fs::path>> Fetch(const StudyMatch& study, const fs::path& dir,
                                      steady_clock::time_point deadline,
                                      std::stop_token stop) override {
    return RetrieveStudy(peer_, study.study_uid, dir, deadline, std::move(stop));
  }

 private:
  const DicomwebPeer peer_;
};

// Removes a folder of fetched files when the fetch is over, whatever happened.
struct ScratchDir {
  fs::path path;
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

std::vector<StudyMatch> RankPriors(const CurrentStudy& current,
                                   const std::vector<StudyMatch>& candidates,
                                   const PriorsConfig& priors) {
  std::vector<StudyMatch> out;
  const auto current_date = DateOf(current.study_date);
  if (!current_date) return out;  // no date: no way to tell earlier from later
  const auto max_age_days = std::chrono::floor<std::chrono::days>(priors.max_age);
  for (const StudyMatch& c : candidates) {
    if (c.study_uid == current.study_uid || c.patient_id != current.patient_id) continue;
    const auto date = DateOf(c.study_date);
    if (!date || *date > *current_date) continue;
    if (priors.max_age.count() > 0 && *current_date - *date > max_age_days) continue;
    if (priors.same_modality && !c.modalities.empty() &&
        !Overlap(c.modalities, current.modalities)) {
      continue;
    }
    if (priors.same_body_part && !c.body_part.empty() &&
        !Overlap({c.body_part}, current.body_parts)) {
      continue;
    }
    if (!priors.study_description.empty() &&
        !GlobMatch(priors.study_description, c.study_description)) {
      continue;
    }
    out.push_back(c);
  }
  std::sort(out.begin(), out.end(), [](const StudyMatch& a, const StudyMatch& b) {
    if (a.study_date != b.study_date) return a.study_date > b.study_date;
    return a.study_uid.str() < b.study_uid.str();
  });
  return out;
}

bool Comparable(const CurrentStudy& current, const std::vector<std::string>& modalities,
                const std::vector<std::string>& body_parts, const PriorsConfig& priors) {
  if (priors.same_modality && !Overlap(modalities, current.modalities)) return false;
  if (priors.same_body_part && !Overlap(body_parts, current.body_parts)) return false;
  return true;
}

std::unique_ptr<PriorSource> MakePriorSource(const Config& config, MoveInbox* move_inbox) {
  const PriorsSourceConfig& s = config.priors_source;
  switch (s.kind) {
    case PriorsSourceKind::kNone:
      return nullptr;
    case PriorsSourceKind::kDimse:
      return std::make_unique<DimsePriorSource>(
          DicomPeer{config.dicom.ae_title, s.ae_title, s.host, s.port, s.timeout, s.tls},
          s.retrieve == PriorsRetrieve::kMove ? move_inbox : nullptr);
    case PriorsSourceKind::kDicomweb:
      return std::make_unique<DicomwebPriorSource>(
          DicomwebPeer{s.url, s.auth_token_file, s.tls, s.timeout});
  }
  return nullptr;
}

PriorFetcherImpl::PriorFetcherImpl(std::unique_ptr<PriorSource> source, Index& index, Spool& spool,
                                   const Clock& clock, Metrics& metrics)
    : source_(std::move(source)), index_(index), spool_(spool), clock_(clock), metrics_(metrics) {
  metrics_.Describe("conduit_priors_fetched_total", "counter",
                    "Prior studies sent with jobs, fetched from PACS or reused");
  metrics_.Describe("conduit_priors_missing_total", "counter",
                    "Prior studies that could not be found or fetched within the time limit");
}

Result<std::vector<fs::path>> PriorFetcherImpl::Gather(const JobRecord& job, const ToolConfig& tool,
                                                       std::stop_token stop) {
  std::vector<fs::path> files;
  const PriorsConfig& priors = tool.priors;
  if (priors.count <= 0) return files;
  const std::string what = JobName(job) + ": priors for tool " + tool.name;
  const auto deadline = steady_clock::now() + priors.time_limit;

  ASSIGN_OR_RETURN(std::vector<InstanceRecord> instances, index_.ListInstances(job.study_uid));
  CurrentStudy current;
  current.study_uid = job.study_uid;
  for (const InstanceRecord& i : instances) {
    if (current.patient_id.empty()) current.patient_id = i.patient_id;
    if (current.study_date.empty()) current.study_date = i.study_date;
    AddDistinct(current.modalities, i.modality);
    AddDistinct(current.body_parts, i.body_part);
  }
  if (current.patient_id.empty() || !DateOf(current.study_date)) {
    // Nothing to look for: this is not a prior that failed to arrive.
    spdlog::info("{}: study {} has no Patient ID or Study Date; sent without priors", what,
                 StudyRef(job.study_uid));
    return files;
  }

  int missing = 0;
  Status first_missing;
  auto missed = [&](const StudyUid* prior, const Status& why) {
    ++missing;
    if (first_missing.ok()) first_missing = why;
    ReportMissing(job, tool, prior, why);
  };

  Result<std::vector<StudyMatch>> found = source_->Find(current.patient_id, deadline, stop);
  if (stop.stop_requested()) return Unavailable(what + ": stopped (shutting down)");
  if (!found.ok()) {
    missed(nullptr, found.status());
  } else {
    const std::vector<StudyMatch> ranked = RankPriors(current, *found, priors);
    int taken = 0;
    for (const StudyMatch& prior : ranked) {
      if (taken >= priors.count) break;
      if (stop.stop_requested()) return Unavailable(what + ": stopped (shutting down)");
      Result<std::vector<fs::path>> reused = Reuse(current, prior, priors);
      if (reused.ok() && !reused->empty()) {
        files.insert(files.end(), reused->begin(), reused->end());
        ++taken;
        continue;
      }
      if (steady_clock::now() >= deadline) {
        missed(&prior.study_uid,
               DeadlineExceeded(what + ": the time limit passed before it was fetched"));
        ++taken;
        continue;
      }
      bool comparable = true;
      Result<std::vector<fs::path>> fetched =
          FetchAndStore(job, current, prior, priors, deadline, stop, comparable);
      if (stop.stop_requested()) return Unavailable(what + ": stopped (shutting down)");
      if (!fetched.ok()) {
        missed(&prior.study_uid, fetched.status());
        ++taken;
        continue;
      }
      if (!comparable) continue;  // its instances say otherwise: the next candidate instead
      files.insert(files.end(), fetched->begin(), fetched->end());
      ++taken;
    }
    metrics_.Add("conduit_priors_fetched_total", taken - missing);
    spdlog::info("{}: study {}: {} candidate(s) on {}, {} prior(s) sent, {} missing", what,
                 StudyRef(job.study_uid), ranked.size(), source_->Name(), taken - missing, missing);
  }
  if (missing > 0 && priors.on_missing == PriorsOnMissing::kWait) {
    return Unavailable(what + ": " + std::to_string(missing) +
                       " prior(s) could not be fetched; the tool waits for them (first: " +
                       first_missing.message() + ")");
  }
  return files;
}

Result<std::vector<fs::path>> PriorFetcherImpl::Reuse(const CurrentStudy& current,
                                                      const StudyMatch& prior,
                                                      const PriorsConfig& priors) {
  std::vector<fs::path> files;
  ASSIGN_OR_RETURN(std::vector<InstanceRecord> held, index_.ListInstances(prior.study_uid));
  if (held.empty()) return files;
  if (prior.instance_count >= 0 && static_cast<int64_t>(held.size()) < prior.instance_count) {
    return files;  // part of it only: fetch it whole
  }
  std::vector<std::string> modalities, body_parts;
  for (const InstanceRecord& i : held) {
    if (i.patient_id != current.patient_id) return files;
    AddDistinct(modalities, i.modality);
    AddDistinct(body_parts, i.body_part);
  }
  if (!Comparable(current, modalities, body_parts, priors)) return files;
  for (const InstanceRecord& i : held) {
    fs::path path = spool_.PathOf(i.spool_key);
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return std::vector<fs::path>{};  // expired meanwhile
    files.push_back(std::move(path));
  }
  return files;
}

Result<std::vector<fs::path>> PriorFetcherImpl::FetchAndStore(
    const JobRecord& job, const CurrentStudy& current, const StudyMatch& prior,
    const PriorsConfig& priors, steady_clock::time_point deadline, std::stop_token stop,
    bool& comparable) {
  comparable = true;
  const std::string what = "prior " + StudyRef(prior.study_uid) + " from " + source_->Name();
  // Under incoming/: whatever a crash leaves there is removed when the spool opens.
  ScratchDir scratch{spool_.NewIncomingPath()};
  ASSIGN_OR_RETURN(std::vector<fs::path> fetched,
                   source_->Fetch(prior, scratch.path, deadline, stop));
  if (fetched.empty()) return NotFound(what + ": the PACS sent no instances");

  std::vector<std::pair<fs::path, InstanceMeta>> instances;
  std::vector<std::string> modalities, body_parts;
  for (const fs::path& file : fetched) {
    Result<InstanceMeta> read = ReadInstanceMeta(file);
    if (!read.ok()) return read.status().WithContext(what);
    InstanceMeta meta = std::move(read).value();
    // Never another patient's data beside this patient's study.
    if (meta.study_uid != prior.study_uid || meta.patient_id != current.patient_id) {
      return InvalidArgument(what + ": an instance of another study or patient was received");
    }
    AddDistinct(modalities, meta.modality);
    AddDistinct(body_parts, meta.body_part);
    instances.emplace_back(file, std::move(meta));
  }
  if (!Comparable(current, modalities, body_parts, priors)) {
    comparable = false;
    spdlog::info("{}: {}: not comparable once fetched (modality or body part); skipped",
                 JobName(job), what);
    return std::vector<fs::path>{};
  }

  std::vector<fs::path> stored;
  for (const auto& [file, meta] : instances) {
    Receipt receipt;
    receipt.calling_ae = AeTitle(std::string(kPriorFetchedCaller));
    receipt.received_at = clock_.Now();
    receipt.action = "prior_fetched";
    receipt.actor = source_->Name();
    receipt.job_id = job.id;
    receipt.detail = {{"for_study", StudyRef(job.study_uid)}, {"tool", job.tool}};
    Result<DurableInstance> durable = StoreReceivedInstance(spool_, index_, file, meta, receipt);
    if (!durable.ok()) return durable.status().WithContext(what);
    stored.push_back(spool_.PathOf(durable->spool_key));
  }
  return stored;
}

void PriorFetcherImpl::ReportMissing(const JobRecord& job, const ToolConfig& tool,
                                     const StudyUid* prior, const Status& why) {
  metrics_.Add("conduit_priors_missing_total", 1);
  const std::string prior_ref = prior != nullptr ? StudyRef(*prior) : "";
  spdlog::warn("{}: tool {}: prior {} missing ({}): {}", JobName(job), tool.name,
               prior_ref.empty() ? "search" : prior_ref, StatusCodeName(why.code()), why.message());
  AuditEvent audit;
  audit.at = clock_.Now();
  audit.action = "prior_missing";
  audit.outcome = "failure";
  audit.actor = source_->Name();
  audit.study_ref = StudyRef(job.study_uid);
  audit.job_id = job.id;
  audit.detail = nlohmann::json{{"tool", tool.name},
                                {"prior", prior_ref.empty() ? nlohmann::json(nullptr)
                                                            : nlohmann::json(prior_ref)},
                                {"on_missing", PriorsOnMissingName(tool.priors.on_missing)},
                                {"reason", why.ToString()}}
                     .dump();
  Status st = index_.AppendAudit(audit);
  if (!st.ok()) spdlog::error("event=audit_failed error=\"{}\"", st.ToString());
}

}  // namespace conduit
