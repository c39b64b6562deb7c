#include "cli/deid_command.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "deid/deidentifier.h"
#include "governance/policy.h"

namespace conduit::cli {
namespace {

namespace fs = std::filesystem;

struct FileResult {
  fs::path relative;
  bool refused = false;
  std::string problem;  // refusal reason or error; empty when de-identified
  std::map<std::string, int64_t> actions;
  uint64_t bytes_in = 0, bytes_out = 0;
};

Result<std::vector<fs::path>> ListFiles(const fs::path& root) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec)) files.push_back(fs::relative(it->path(), root, ec));
  }
  if (ec) return ErrnoStatus(ec.value(), "listing " + root.string());
  std::sort(files.begin(), files.end());
  return files;
}

void ShowProgress(size_t done, size_t total, uint64_t bytes, double seconds) {
  constexpr int kWidth = 30;
  const int filled = total == 0 ? kWidth : static_cast<int>(kWidth * done / total);
  const double mbps = seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0;
  std::fprintf(stderr, "\r[%s%s] %zu/%zu files, %.0f MB/s ", std::string(filled, '#').c_str(),
               std::string(kWidth - filled, '.').c_str(), done, total, mbps);
  std::fflush(stderr);
}

}  // namespace

int KeyGen(const fs::path& file) {
  Status st = WriteNewKeyFile(file);
  if (!st.ok()) {
    std::cerr << "conduit keygen: " << st.message() << "\n";
    return 2;
  }
  std::cout << "wrote a new 32-byte key to " << file.string()
            << " (mode 0600). Keep it inside the trust and back it up: without it, new"
               " pseudonyms will not match earlier ones.\n";
  return 0;
}

int PolicyShow(const std::optional<fs::path>& file) {
  auto policy = file ? LoadPolicyFile(*file) : Result<Policy>(BuiltInPolicy());
  if (!policy.ok()) {
    std::cerr << "conduit policy show: " << policy.status().message() << "\n";
    return 2;
  }
  std::cout << "# policy: " << policy->name << " " << policy->version
            << "\n# sha256: " << policy->hash << "\n";
  if (file) {
    std::ifstream in(*file, std::ios::binary);
    std::cout << in.rdbuf();
  } else {
    std::cout << BuiltInPolicyText();
  }
  return 0;
}

int Deidentify(const DeidCommand& command) {
  auto policy = command.policy ? LoadPolicyFile(*command.policy) : Result<Policy>(BuiltInPolicy());
  if (!policy.ok()) {
    std::cerr << "conduit deid: " << policy.status().message() << "\n";
    return 2;
  }
  auto key = LoadKeyFile(command.key_file);
  if (!key.ok()) {
    std::cerr << "conduit deid: " << key.status().message() << "\n";
    return 2;
  }
  std::error_code ec;
  if (!fs::is_directory(command.in, ec)) {
    std::cerr << "conduit deid: --in " << command.in.string() << " is not a folder\n";
    return 2;
  }
  if (fs::exists(command.out, ec) && fs::equivalent(command.in, command.out, ec)) {
    std::cerr << "conduit deid: --out must differ from --in\n";
    return 2;
  }
  auto files = ListFiles(command.in);
  if (!files.ok()) {
    std::cerr << "conduit deid: " << files.status().message() << "\n";
    return 2;
  }
  fs::create_directories(command.out, ec);
  if (ec) {
    std::cerr << "conduit deid: cannot create " << command.out.string() << ": " << ec.message()
              << "\n";
    return 2;
  }

  const std::string key_id = key->id;
  const Deidentifier deidentifier(policy->deid, Pseudonymiser(std::move(*key)));
  const int jobs =
      command.jobs > 0 ? command.jobs : std::max(1u, std::thread::hardware_concurrency());
  std::vector<FileResult> results(files->size());
  std::atomic<size_t> next{0}, done{0};
  std::atomic<uint64_t> bytes{0};
  const auto start = std::chrono::steady_clock::now();
  const bool progress = command.progress && ::isatty(STDERR_FILENO);

  auto work = [&] {
    for (size_t i = next++; i < files->size(); i = next++) {
      FileResult& r = results[i];
      r.relative = (*files)[i];
      const fs::path target = command.out / r.relative;
      std::error_code dir_ec;
      fs::create_directories(target.parent_path(), dir_ec);
      auto outcome = deidentifier.DeidentifyFile(command.in / r.relative, target);
      if (!outcome.ok()) {
        r.problem = outcome.status().message();
      } else if (outcome->refused) {
        r.refused = true;
        r.problem = outcome->refusal;
      } else {
        r.actions = std::move(outcome->actions);
        r.bytes_in = outcome->bytes_in;
        r.bytes_out = outcome->bytes_out;
        bytes += r.bytes_in;
      }
      ++done;
    }
  };
  std::vector<std::jthread> workers;
  for (int i = 0; i < jobs; ++i) workers.emplace_back(work);
  if (progress) {
    while (done < files->size()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      ShowProgress(done, files->size(), bytes,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  }
  workers.clear();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (progress) {
    ShowProgress(done, files->size(), bytes, seconds);
    std::fputc('\n', stderr);
  }

  nlohmann::json report;
  report["policy"] = {{"name", policy->name + " " + policy->version}, {"hash", policy->hash}};
  report["key_id"] = key_id;
  nlohmann::json refused = nlohmann::json::array(), failed = nlohmann::json::array();
  std::map<std::string, int64_t> actions;
  uint64_t bytes_in = 0, bytes_out = 0;
  size_t ok = 0;
  for (const auto& r : results) {
    if (r.refused) {
      refused.push_back({{"file", r.relative.string()}, {"reason", r.problem}});
    } else if (!r.problem.empty()) {
      failed.push_back({{"file", r.relative.string()}, {"error", r.problem}});
    } else {
      ++ok;
      for (const auto& [action, n] : r.actions) actions[action] += n;
      bytes_in += r.bytes_in;
      bytes_out += r.bytes_out;
    }
  }
  report["files"] = {{"processed", results.size()},
                     {"deidentified", ok},
                     {"refused", refused.size()},
                     {"failed", failed.size()}};
  report["refused"] = refused;
  report["failed"] = failed;
  report["actions"] = actions;
  report["bytes_in"] = bytes_in;
  report["bytes_out"] = bytes_out;
  report["seconds"] = seconds;
  if (command.report) {
    std::ofstream out(*command.report);
    out << report.dump(2) << "\n";
    if (!out) {
      std::cerr << "conduit deid: cannot write the report " << command.report->string() << "\n";
      return 1;
    }
  }
  std::cerr << "conduit deid: " << ok << " of " << results.size() << " files de-identified, "
            << refused.size() << " refused, " << failed.size() << " failed ("
            << static_cast<int>(seconds * 1000) << " ms)\n";
  return refused.empty() && failed.empty() ? 0 : 1;
}

}  // namespace conduit::cli
