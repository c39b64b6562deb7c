#include "store/file_system.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <system_error>

namespace conduit {
namespace {

// The block device's kernel name from sysfs, or "" (btrfs and tmpfs have anonymous devices).
std::string DeviceName(dev_t dev, const KernelViews& views) {
  const std::filesystem::path uevent =
      views.sys / "dev" / "block" /
      (std::to_string(major(dev)) + ":" + std::to_string(minor(dev))) / "uevent";
  std::ifstream in(uevent);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("DEVNAME=", 0) == 0) return line.substr(8);
  }
  return "";
}

// jbd2 lists each journal it runs as "<device>-<journal inode>".
bool HasJournal(const std::string& device, const KernelViews& views) {
  if (device.empty()) return false;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(views.proc / "fs" / "jbd2", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > device.size() + 1 && name.compare(0, device.size(), device) == 0 &&
        name[device.size()] == '-' &&
        name.find_first_not_of("0123456789", device.size() + 1) == std::string::npos) {
      return true;
    }
  }
  return false;
}

std::string Hex(unsigned long magic) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%lx", magic);
  return buf;
}

}  // namespace

std::string_view DurabilityName(Durability durability) {
  switch (durability) {
    case Durability::kJournaling:
      return "journaling";
    case Durability::kNoJournal:
      return "no-journal";
    case Durability::kVolatile:
      return "volatile";
    case Durability::kNetwork:
      return "network";
    case Durability::kUnknown:
      break;
  }
  return "unknown";
}

FileSystemFacts ClassifyFileSystem(unsigned long magic, std::string device, bool has_journal) {
  struct Kind {
    unsigned long magic;
    const char* type;
    Durability durability;
  };
  static constexpr Kind kKinds[] = {
      {XFS_SUPER_MAGIC, "xfs", Durability::kJournaling},
      {BTRFS_SUPER_MAGIC, "btrfs", Durability::kJournaling},
      {F2FS_SUPER_MAGIC, "f2fs", Durability::kJournaling},
      {TMPFS_MAGIC, "tmpfs", Durability::kVolatile},
      {RAMFS_MAGIC, "ramfs", Durability::kVolatile},
      {NFS_SUPER_MAGIC, "nfs", Durability::kNetwork},
      {CIFS_SUPER_MAGIC, "smb", Durability::kNetwork},
      {SMB2_SUPER_MAGIC, "smb", Durability::kNetwork},
      {FUSE_SUPER_MAGIC, "fuse", Durability::kNetwork},
      {OVERLAYFS_SUPER_MAGIC, "overlay", Durability::kUnknown},
  };
  FileSystemFacts facts;
  facts.device = std::move(device);
  if (magic == EXT4_SUPER_MAGIC) {  // ext2, ext3 and ext4 share it
    facts.type = "ext2/3/4";
    facts.durability = has_journal ? Durability::kJournaling : Durability::kNoJournal;
    return facts;
  }
  for (const Kind& kind : kKinds) {
    if (kind.magic == magic) {
      facts.type = kind.type;
      facts.durability = kind.durability;
      return facts;
    }
  }
  facts.type = Hex(magic);
  return facts;
}

std::string DurabilityAdvice(const FileSystemFacts& facts) {
  switch (facts.durability) {
    case Durability::kJournaling:
      return "";
    case Durability::kNoJournal:
      return "ext file system without a journal (none listed for " +
             (facts.device.empty() ? std::string("its device") : facts.device) +
             " under /proc/fs/jbd2): acknowledged instances survive a crash, but the file system "
             "may need fsck after one and every stored file costs more; put data_dir on ext4 "
             "with its journal or XFS";
    case Durability::kVolatile:
      return facts.type +
             " keeps everything in memory: every acknowledged instance, job and audit record "
             "is lost at the next reboot; put data_dir on a disk";
    case Durability::kNetwork:
      return facts.type +
             (facts.type == "fuse" ? " is a user-space file system: whether an fsync reaches a "
                                     "disk is up to its daemon"
                                   : " is a network file system: whether an fsync reaches a "
                                     "disk is up to its server") +
             ", so an acknowledged instance may be lost; put data_dir on a local disk";
    case Durability::kUnknown:
      break;
  }
  if (facts.type == "overlay") {
    return "overlay file system (a container's writable layer?): it may not outlive the "
           "container; mount a volume at data_dir";
  }
  return "file system " + facts.type +
         " is not one Conduit knows to keep an fsync'd file across a power failure; put "
         "data_dir on ext4 with its journal or XFS";
}

Result<FileSystemFacts> InspectFileSystem(const std::filesystem::path& dir,
                                          const KernelViews& views) {
  struct statfs fs {};
  if (::statfs(dir.c_str(), &fs) != 0) {
    return ErrnoStatus(errno, "statfs " + dir.string());
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    return ErrnoStatus(errno, "stat " + dir.string());
  }
  const auto magic = static_cast<unsigned long>(fs.f_type);
  std::string device = DeviceName(st.st_dev, views);
  const bool journal = magic == EXT4_SUPER_MAGIC && HasJournal(device, views);
  return ClassifyFileSystem(magic, std::move(device), journal);
}

}  // namespace conduit
