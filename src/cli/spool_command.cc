#include "cli/spool_command.h"

#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/clock.h"
#include "store/spool_check.h"
#include "store/sqlite_index.h"

namespace conduit::cli {
namespace {

using json = nlohmann::json;

json CountsOf(const SpoolCheckReport& r) {
  return {{"files", r.files},
          {"records", r.records},
          {"unrecorded", r.unrecorded},
          {"unrecorded_bytes", r.unrecorded_bytes},
          {"removed", r.removed},
          {"missing", r.missing},
          {"size_differs", r.size_differs},
          {"strays", r.strays},
          {"stale_work_folders", r.stale_work_folders},
          {"work_folders_removed", r.work_folders_removed}};
}

json ProblemOf(const SpoolProblem& p) {
  json j = {{"kind", SpoolProblemName(p.kind)}, {"path", p.path.string()}};
  if (!p.key.empty()) j["key"] = p.key;
  if (!p.study_ref.empty()) j["study"] = p.study_ref;
  if (p.kind == SpoolProblem::Kind::kMissing || p.kind == SpoolProblem::Kind::kSizeDiffers) {
    j["recorded_bytes"] = p.recorded_bytes;
  }
  if (p.kind == SpoolProblem::Kind::kUnrecorded || p.kind == SpoolProblem::Kind::kSizeDiffers) {
    j["file_bytes"] = p.file_bytes;
  }
  if (p.kind == SpoolProblem::Kind::kUnrecorded || p.kind == SpoolProblem::Kind::kStaleWorkFolder) {
    j["removed"] = p.removed;
  }
  return j;
}

void PrintIndex(const std::vector<std::string>& problems, const std::filesystem::path& index,
                bool removal_asked) {
  if (problems.empty()) {
    std::cout << "index " << index.string() << ": sound (SQLite quick_check)\n";
    return;
  }
  std::cout << "index " << index.string() << ": DAMAGED (SQLite quick_check):\n";
  for (const std::string& problem : problems) {
    std::istringstream lines(problem);  // quick_check may put several lines in one row
    for (std::string line; std::getline(lines, line);) std::cout << "  " << line << "\n";
  }
  std::cout << "  - restore the index from its backup (docs/operations.md, \"Disk\")"
            << (removal_asked ? "; no file was removed, since the index cannot say which are "
                                "unrecorded"
                              : "")
            << "\n";
}

void PrintText(const SpoolCheckReport& r, const std::filesystem::path& spool, bool index_sound) {
  std::cout << "spool " << spool.string() << ": " << r.files << " instance file(s), " << r.records
            << " index row(s) naming a file\n"
            << "  unrecorded files (no row names them):  " << r.unrecorded << " ("
            << r.unrecorded_bytes << " bytes), removed " << r.removed << "\n"
            << "  missing files (a row names them):      " << r.missing << "\n"
            << "  files of another size than recorded:   " << r.size_differs << "\n"
            << "  stray entries (not the spool's names): " << r.strays << "\n"
            << "  work folders of expired studies' jobs: " << r.stale_work_folders << ", removed "
            << r.work_folders_removed << "\n";
  if (!r.problems.empty()) {
    const int64_t total =
        r.unrecorded + r.missing + r.size_differs + r.strays + r.stale_work_folders;
    std::cout << (static_cast<int64_t>(r.problems.size()) < total ? "the first problems:\n"
                                                                  : "problems:\n");
  }
  for (const SpoolProblem& p : r.problems) {
    std::cout << "  " << SpoolProblemName(p.kind) << " " << p.path.string();
    if (!p.study_ref.empty()) std::cout << " study " << p.study_ref;
    switch (p.kind) {
      case SpoolProblem::Kind::kUnrecorded:
        std::cout << " " << p.file_bytes << " bytes" << (p.removed ? ", removed" : "");
        break;
      case SpoolProblem::Kind::kMissing:
        std::cout << " recorded " << p.recorded_bytes << " bytes";
        break;
      case SpoolProblem::Kind::kSizeDiffers:
        std::cout << " recorded " << p.recorded_bytes << " bytes, file " << p.file_bytes;
        break;
      case SpoolProblem::Kind::kStray:
        break;
      case SpoolProblem::Kind::kStaleWorkFolder:
        if (p.removed) std::cout << ", removed";
        break;
    }
    std::cout << "\n";
  }
  if (r.consistent() && index_sound) {
    std::cout << "consistent\n";
    return;
  }
  std::cout << "NOT consistent:\n";
  if (!index_sound) std::cout << "  - the index is damaged (above)\n";
  if (r.unrecorded > r.removed && index_sound) {
    std::cout << "  - run again with --remove-unrecorded to delete the unrecorded files\n";
  }
  if (r.stale_work_folders > r.work_folders_removed && index_sound) {
    std::cout << "  - run again with --remove-unrecorded to delete the stale work folders\n";
  }
  if (r.missing > 0 || r.size_differs > 0) {
    std::cout << "  - missing or damaged instances must be sent again from their source"
                 " (docs/operations.md, \"After a power failure\")\n";
  }
  if (r.strays > 0) std::cout << "  - stray entries were not made by Conduit: look at them\n";
}

}  // namespace

int SpoolCheck(const Config& config, bool remove_unrecorded, bool json_out) {
  const std::filesystem::path spool_root = config.node.data_dir / "spool";
  const std::filesystem::path index_path = config.node.data_dir / "index.sqlite";
  if (!std::filesystem::exists(index_path)) {
    std::cerr << "conduit: no index at " << index_path.string()
              << " (has conduit serve run with this config?)\n";
    return 1;
  }
  // Holding the spool's lock keeps the gateway out for the duration of the check.
  auto spool = Spool::Open(SpoolOptions{spool_root, 0});
  if (!spool.ok()) {
    std::cerr << "conduit: " << spool.status().message();
    if (spool.status().code() == StatusCode::kFailedPrecondition) {
      std::cerr << "; stop the gateway first: the check compares files and index while"
                   " neither changes";
    }
    std::cerr << "\n";
    return 1;
  }
  auto index = OpenSqliteIndex(index_path);
  if (!index.ok()) {
    std::cerr << "conduit: " << index.status().message() << "\n";
    return 1;
  }
  // A damaged index cannot say which files are unrecorded: then nothing is removed.
  auto integrity = (*index)->CheckIntegrity(20);
  std::vector<std::string> index_problems =
      integrity.ok() ? std::move(integrity).value()
                     : std::vector<std::string>{integrity.status().message()};
  const bool index_sound = index_problems.empty();
  auto report =
      CheckSpool(**spool, **index, SpoolCheckOptions{remove_unrecorded && index_sound, 100});
  const bool consistent = index_sound && report.ok() && report->consistent();

  if (json_out) {
    json out = {{"spool", spool_root.string()},
                {"consistent", consistent},
                {"index", {{"sound", index_sound}, {"problems", index_problems}}}};
    if (report.ok()) {
      json problems = json::array();
      for (const SpoolProblem& p : report->problems) problems.push_back(ProblemOf(p));
      out["counts"] = CountsOf(*report);
      out["problems"] = problems;
    } else {
      out["error"] = report.status().message();
    }
    std::cout << out.dump(2) << "\n";
  } else {
    PrintIndex(index_problems, index_path, remove_unrecorded);
    if (report.ok()) PrintText(*report, spool_root, index_sound);
  }

  AuditEvent audit;
  audit.at = SystemClock().Now();
  audit.action = "spool_check";
  audit.actor = "cli";
  audit.outcome = consistent ? "success" : "failure";
  json detail = report.ok() ? CountsOf(*report) : json{{"error", report.status().message()}};
  detail["index_sound"] = index_sound;
  audit.detail = detail.dump();
  // After the report, so that an index too damaged to take the row does not hide the report.
  if (Status st = (*index)->AppendAudit(audit); !st.ok()) {
    std::cerr << "conduit: spool check: cannot audit this check: " << st.message() << "\n";
    return 1;
  }
  if (!report.ok()) std::cerr << "conduit: " << report.status().message() << "\n";
  return consistent ? 0 : 1;
}

}  // namespace conduit::cli
