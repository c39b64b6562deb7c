// The file system under the data directory, and what an fsync on it promises: checked once at
// start, so that a data_dir on tmpfs, a network share or an ext4 without a journal is named in
// the log, in /api/health and in /metrics before a power failure finds it out.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "core/status.h"

namespace conduit {

enum class Durability {
  kJournaling,  // ext3/ext4 with a journal, XFS, btrfs, F2FS: what Conduit is built for
  kNoJournal,   // ext2/ext4 without a journal: fsync holds, but a crash needs fsck and files cost
                // more
  kVolatile,    // tmpfs, ramfs: everything is gone after a reboot, fsync or not
  kNetwork,     // NFS, SMB, FUSE: whether fsync reaches a disk is up to a server or daemon
  kUnknown,     // anything else, overlayfs (a container's writable layer) included
};

struct FileSystemFacts {
  std::string type;    // "ext2/3/4", "xfs", "tmpfs", ..., or the statfs magic as "0x…"
  std::string device;  // the block device's kernel name ("vda", "dm-0"), empty if none
  Durability durability = Durability::kUnknown;
};

std::string_view DurabilityName(Durability durability);  // "journaling", "no-journal", ...

// Empty for kJournaling; otherwise one sentence for the operator: what it risks, what to do.
std::string DurabilityAdvice(const FileSystemFacts& facts);

// Where the kernel's views are read from; tests point them at fixtures.
struct KernelViews {
  std::filesystem::path proc = "/proc";  // proc/fs/jbd2/<device>-<inode>: one per ext journal
  std::filesystem::path sys = "/sys";    // sys/dev/block/<major>:<minor>/uevent: DEVNAME
};

// statfs(2) and stat(2) of `dir`, then the journal list for ext file systems.
Result<FileSystemFacts> InspectFileSystem(const std::filesystem::path& dir,
                                          const KernelViews& views = {});

// The classification alone, from the statfs magic and, for ext, whether a journal was found.
FileSystemFacts ClassifyFileSystem(unsigned long magic, std::string device, bool has_journal);

}  // namespace conduit
