#include "dicom/test_support.h"

#include <arpa/inet.h>
#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmjpls/djencode.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>

extern char** environ;

namespace conduit::testing {

void WriteCtImage(const std::filesystem::path& file, const CtSpec& spec) {
  DcmFileFormat format;
  DcmDataset* d = format.getDataset();
  d->putAndInsertString(DCM_SpecificCharacterSet, "ISO_IR 100");
  d->putAndInsertString(DCM_SOPClassUID, UID_CTImageStorage);
  d->putAndInsertString(DCM_SOPInstanceUID, spec.sop_instance_uid.c_str());
  d->putAndInsertString(DCM_StudyInstanceUID, spec.study_uid.c_str());
  d->putAndInsertString(DCM_SeriesInstanceUID, spec.series_uid.c_str());
  d->putAndInsertString(DCM_PatientName, "TEST^PATIENT");
  d->putAndInsertString(DCM_PatientID, "PID0001");
  d->putAndInsertString(DCM_AccessionNumber, "ACC0001");
  d->putAndInsertString(DCM_StudyDate, "20240102");
  d->putAndInsertString(DCM_StudyTime, "101500");
  d->putAndInsertString(DCM_Modality, "CT");
  d->putAndInsertString(DCM_BodyPartExamined, "CHEST");
  d->putAndInsertString(DCM_StudyDescription, "CT CHEST");
  d->putAndInsertString(DCM_SeriesDescription, "AXIAL 1mm");
  d->putAndInsertString(DCM_SeriesNumber, "3");
  d->putAndInsertString(DCM_InstanceNumber, std::to_string(spec.instance_number).c_str());
  d->putAndInsertString(DCM_ImageType, "ORIGINAL\\PRIMARY\\AXIAL");
  d->putAndInsertUint16(DCM_SamplesPerPixel, 1);
  d->putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
  d->putAndInsertUint16(DCM_Rows, 16);
  d->putAndInsertUint16(DCM_Columns, 16);
  d->putAndInsertUint16(DCM_BitsAllocated, 16);
  d->putAndInsertUint16(DCM_BitsStored, 12);
  d->putAndInsertUint16(DCM_HighBit, 11);
  d->putAndInsertUint16(DCM_PixelRepresentation, 0);
  d->putAndInsertString(DCM_RescaleIntercept, "-1024");
  d->putAndInsertString(DCM_RescaleSlope, "1");
  std::vector<Uint16> pixels(16 * 16);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<Uint16>((i * 13) % 4096);
  d->putAndInsertUint16Array(DCM_PixelData, pixels.data(), pixels.size());

  E_TransferSyntax syntax = EXS_LittleEndianExplicit;
  if (spec.syntax == Syntax::kImplicitLittle) syntax = EXS_LittleEndianImplicit;
  if (spec.syntax == Syntax::kDeflated) syntax = EXS_DeflatedLittleEndianExplicit;
  if (spec.syntax == Syntax::kJpegLsLossless) {
    DJLSEncoderRegistration::registerCodecs();
    syntax = EXS_JPEGLSLossless;
    ASSERT_TRUE(d->chooseRepresentation(syntax, nullptr).good());
    ASSERT_TRUE(d->canWriteXfer(syntax));
  }
  const OFCondition cond = format.saveFile(file.c_str(), syntax);
  ASSERT_TRUE(cond.good()) << file << ": " << cond.text();
}

std::vector<std::filesystem::path> WriteCtSeries(const std::filesystem::path& dir, int n,
                                                 const std::string& study_uid) {
  std::filesystem::create_directories(dir);
  std::vector<std::filesystem::path> files;
  for (int i = 1; i <= n; ++i) {
    CtSpec spec;
    spec.study_uid = study_uid;
    spec.series_uid = study_uid + ".1";
    spec.sop_instance_uid = study_uid + ".1." + std::to_string(i);
    spec.instance_number = i;
    spec.syntax = i % 2 == 1 ? Syntax::kExplicitLittle : Syntax::kImplicitLittle;
    files.push_back(dir / ("ct" + std::to_string(i) + ".dcm"));
    WriteCtImage(files.back(), spec);
  }
  return files;
}

CommittingSink::CommittingSink(std::filesystem::path root)
    : incoming_(root / "incoming"), committed_(root / "committed") {
  std::filesystem::create_directories(incoming_);
  std::filesystem::create_directories(committed_);
}

std::filesystem::path CommittingSink::NewIncomingPath() {
  return incoming_ / ("incoming-" + std::to_string(++next_) + ".part");
}

Status CommittingSink::CheckCapacity() {
  std::lock_guard lock(mu_);
  return capacity_;
}

Status CommittingSink::OnInstance(const ReceivedInstance& instance) {
  std::lock_guard lock(mu_);
  std::error_code ec;
  if (!instance_outcome_.ok()) {
    std::filesystem::remove(instance.file, ec);
    return instance_outcome_;
  }
  const auto target = committed_ / (instance.meta.sop_instance_uid.str() + ".dcm");
  std::filesystem::rename(instance.file, target, ec);
  if (ec) return Internal("commit " + target.string() + ": " + ec.message());
  ReceivedInstance committed = instance;
  committed.file = target;
  instances_.push_back(std::move(committed));
  return Status::Ok();
}

void CommittingSink::OnRejected(const AssociationInfo&, const Status& why) {
  std::lock_guard lock(mu_);
  rejected_.push_back(why);
}

Status CommittingSink::OnMpps(const MppsEvent& event) {
  std::lock_guard lock(mu_);
  mpps_.push_back(event);
  return Status::Ok();
}

Status CommittingSink::OnCommitmentReport(const CommitmentReport& report, const AssociationInfo&) {
  std::lock_guard lock(mu_);
  commitment_reports_.push_back(report);
  return Status::Ok();
}

std::vector<CommitmentReport> CommittingSink::commitment_reports() const {
  std::lock_guard lock(mu_);
  return commitment_reports_;
}

void CommittingSink::set_capacity(Status s) {
  std::lock_guard lock(mu_);
  capacity_ = std::move(s);
}

void CommittingSink::set_instance_outcome(Status s) {
  std::lock_guard lock(mu_);
  instance_outcome_ = std::move(s);
}

std::vector<ReceivedInstance> CommittingSink::instances() const {
  std::lock_guard lock(mu_);
  return instances_;
}

std::vector<Status> CommittingSink::rejected() const {
  std::lock_guard lock(mu_);
  return rejected_;
}

std::vector<MppsEvent> CommittingSink::mpps() const {
  std::lock_guard lock(mu_);
  return mpps_;
}

namespace {

std::vector<char*> Environment() {
  std::vector<char*> env;
  static std::string nodelay = "TCP_NODELAY=1";
  env.push_back(nodelay.data());
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).starts_with("TCP_NODELAY=")) continue;
    env.push_back(*e);
  }
  env.push_back(nullptr);
  return env;
}

pid_t Spawn(const std::vector<std::string>& argv, int output_fd) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (output_fd >= 0) {
    posix_spawn_file_actions_adddup2(&actions, output_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, output_fd, STDERR_FILENO);
  }
  std::vector<char*> env = Environment();
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

}  // namespace

CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  CommandResult result;
  TempDir dir;
  const auto log = dir.path() / "output.txt";
  const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const pid_t pid = Spawn(argv, fd);
  close(fd);
  if (pid < 0) {
    ADD_FAILURE() << "cannot run " << argv[0];
    return result;
  }
  int status = 0;
  const bool exited = Eventually([&] { return waitpid(pid, &status, WNOHANG) == pid; },
                                 std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    ADD_FAILURE() << argv[0] << " did not finish within " << timeout.count() << " s";
  }
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  result.output = text.str();
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

Process::Process(const std::vector<std::string>& argv) {
  const int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  pid_ = Spawn(argv, null_fd);
  close(null_fd);
  EXPECT_GT(pid_, 0) << "cannot start " << argv[0];
}

Process::~Process() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  int status = 0;
  if (!Eventually([&] { return waitpid(pid_, &status, WNOHANG) == pid_; },
                  std::chrono::seconds(5))) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }
}

bool WaitForPort(int port, std::chrono::seconds timeout) {
  return Eventually(
      [port] {
        const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(static_cast<uint16_t>(port));
        const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        close(fd);
        return ok;
      },
      std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
}

SilentPeer::SilentPeer(int port, const std::string& bytes, const std::string& source) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ >= 0 && !source.empty()) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (inet_pton(AF_INET, source.c_str(), &local.sin_addr) != 1 ||
        bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      close(fd_);
      fd_ = -1;
      return;
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (fd_ >= 0 && (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
                   (!bytes.empty() && send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) !=
                                          static_cast<ssize_t>(bytes.size())))) {
    close(fd_);
    fd_ = -1;
  }
}

SilentPeer::~SilentPeer() {
  dripper_ = {};  // stops and joins the dripping thread before the descriptor goes
  if (fd_ >= 0) close(fd_);
}

void SilentPeer::Drip(std::chrono::milliseconds interval) {
  if (fd_ < 0) return;
  dripper_ = std::jthread([fd = fd_, interval](std::stop_token stop) {
    const char byte = 0;
    while (!stop.stop_requested()) {
      std::this_thread::sleep_for(interval);
      if (send(fd, &byte, 1, MSG_NOSIGNAL) != 1) return;
    }
  });
}

bool SilentPeer::ClosedByPeer(std::chrono::seconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (fd_ >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd ready{fd_, POLLIN, 0};
    if (poll(&ready, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return true;
    // Anything the listener says first (an A-ABORT, a TLS alert) is read past.
  }
  return false;
}

}  // namespace conduit::testing
