// Reading a whole (small) text file: a config, a policy, a tool manifest.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "core/status.h"

namespace conduit {

// The file's bytes. Errors: kNotFound "<what> <path>: cannot be read" (or "read failed").
Result<std::string> ReadTextFile(const std::filesystem::path& path, std::string_view what);

// For a file holding a secret (a token): logs a warning naming `what` and the path, never the
// content, when its mode lets its group or other users at it. True if it warned.
bool WarnIfOpenToOthers(const std::filesystem::path& path, std::string_view what);
// The same for a file already open and stat'ed: `mode` its st_mode, `name` what the warning
// calls it (e.g. "key file /etc/conduit/pseudonym.key").
bool WarnIfModeOpenToOthers(unsigned mode, std::string_view name);

}  // namespace conduit
