#include "testing/testing.h"

#include <arpa/inet.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

extern char** environ;

namespace conduit::testing {

namespace fs = std::filesystem;

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  path_ = fs::temp_directory_path() / ("conduit-test-" + std::to_string(::getpid()) + "-" +
                                       std::to_string(counter++) + "-" + std::to_string(rd()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

Status WriteTestDicom(const fs::path& file, const std::string& study_uid,
                      const std::string& series_uid, const std::string& sop_instance_uid,
                      const std::string& sop_class_uid) {
  DcmFileFormat format;
  DcmDataset* ds = format.getDataset();
  const bool is_ct = sop_class_uid == kCtImageStorage;
  ds->putAndInsertString(DCM_SOPClassUID, sop_class_uid.c_str());
  ds->putAndInsertString(DCM_SOPInstanceUID, sop_instance_uid.c_str());
  ds->putAndInsertString(DCM_StudyInstanceUID, study_uid.c_str());
  ds->putAndInsertString(DCM_SeriesInstanceUID, series_uid.c_str());
  ds->putAndInsertString(DCM_PatientName, "TEST^CONDUIT");
  ds->putAndInsertString(DCM_PatientID, "TEST0001");
  ds->putAndInsertString(DCM_Modality, is_ct ? "CT" : "OT");
  ds->putAndInsertString(DCM_SeriesNumber, "1");
  ds->putAndInsertString(DCM_InstanceNumber, "1");
  ds->putAndInsertUint16(DCM_SamplesPerPixel, 1);
  ds->putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
  ds->putAndInsertUint16(DCM_Rows, 4);
  ds->putAndInsertUint16(DCM_Columns, 4);
  ds->putAndInsertUint16(DCM_BitsAllocated, 8);
  ds->putAndInsertUint16(DCM_BitsStored, 8);
  ds->putAndInsertUint16(DCM_HighBit, 7);
  ds->putAndInsertUint16(DCM_PixelRepresentation, 0);
  Uint8 pixels[16];
  for (int i = 0; i < 16; ++i) pixels[i] = static_cast<Uint8>(i * 16);
  ds->putAndInsertUint8Array(DCM_PixelData, pixels, sizeof(pixels));
  const OFCondition cond = format.saveFile(file.c_str(), EXS_LittleEndianExplicit);
  if (cond.bad()) return Internal("write test dicom " + file.string() + ": " + cond.text());
  return Status::Ok();
}

Status PutTestInstance(Index& index, const std::string& study_uid, const std::string& series_uid,
                       const std::string& sop_instance_uid, TimePoint at,
                       const std::string& spool_key) {
  InstanceRecord r;
  r.study_uid = StudyUid(study_uid);
  r.series_uid = SeriesUid(series_uid);
  r.sop_instance_uid = SopInstanceUid(sop_instance_uid);
  r.sop_class_uid = SopClassUid(kCtImageStorage);
  r.spool_key = spool_key;
  r.received_at = at;
  r.modality = "CT";
  AuditEvent audit;
  audit.at = at;
  audit.action = "receive";
  audit.outcome = "success";
  audit.study_ref = StudyRef(r.study_uid);
  auto put = index.PutInstance(r, audit);
  return put.ok() ? Status::Ok() : put.status();
}

Result<JobRecord> CreateDeliveringJob(Index& index, const std::string& study_uid,
                                      std::vector<std::string> destinations, TimePoint at) {
  JobRecord job;
  job.study_uid = StudyUid(study_uid);
  job.route = "route";
  job.tool = "tool";
  job.destinations = std::move(destinations);
  job.state = JobState::kDelivering;
  job.created_at = at;
  job.updated_at = at;
  AuditEvent audit;
  audit.at = at;
  audit.action = "create";
  audit.outcome = "success";
  audit.actor = "test";
  audit.study_ref = StudyRef(job.study_uid);
  ASSIGN_OR_RETURN(job.id, index.CreateJob(job, audit));
  return job;
}

int CountAudited(Index& index, const std::string& action, const std::string& outcome) {
  auto audit = index.ListAudit(1000, 0);
  if (!audit.ok()) return -1;
  int n = 0;
  for (const AuditEvent& e : *audit) n += e.action == action && e.outcome == outcome ? 1 : 0;
  return n;
}

int64_t PeakResidentKb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmHWM:")) return std::stoll(line.substr(6));
  }
  return -1;
}

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    socklen_t len = sizeof(addr);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
  }
  ::close(fd);
  return port;
}

namespace {

bool Accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

void KillAndReap(pid_t pid) {
  ::kill(pid, SIGKILL);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

Result<std::unique_ptr<StorescpPeer>> StorescpPeer::Start(const fs::path& output_dir,
                                                          const std::string& ae_title,
                                                          std::vector<std::string> extra_args) {
  fs::create_directories(output_dir);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "TCP_NODELAY=", 12) != 0) env_strings.emplace_back(*e);
  }
  env_strings.emplace_back("TCP_NODELAY=1");
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  for (int attempt = 0; attempt < 5; ++attempt) {
    const int port = FreePort();
    std::vector<std::string> args = {"storescp", "--output-directory", output_dir.string(), "-aet",
                                     ae_title};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    args.push_back(std::to_string(port));
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    const int err = ::posix_spawnp(&pid, "storescp", &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (err != 0) return FailedPrecondition(std::string("spawn storescp: ") + std::strerror(err));

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    bool exited = false;
    while (std::chrono::steady_clock::now() < deadline) {
      int wstatus = 0;
      if (::waitpid(pid, &wstatus, WNOHANG) == pid) {
        exited = true;  // most likely the port was taken meanwhile: try another
        break;
      }
      if (Accepts(port))
        return std::unique_ptr<StorescpPeer>(new StorescpPeer(pid, port, output_dir));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!exited) {
      KillAndReap(pid);
      return DeadlineExceeded("storescp did not accept connections within 15 s");
    }
  }
  return Unavailable("storescp could not start on a free port");
}

StorescpPeer::~StorescpPeer() { Stop(); }

void StorescpPeer::Stop() {
  if (pid_ > 0) {
    KillAndReap(pid_);
    pid_ = -1;
  }
}

int StorescpPeer::ReceivedCount() const {
  int n = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(output_dir_, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->is_regular_file()) ++n;
  }
  return n;
}

int StorescpPeer::WaitForReceived(int n, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int count = ReceivedCount();
  while (count < n && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    count = ReceivedCount();
  }
  return count;
}

}  // namespace conduit::testing
