#include "core/text_file.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

namespace conduit {

Result<std::string> ReadTextFile(const std::filesystem::path& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  const std::string name = std::string(what) + " " + path.string();
  if (!in) return NotFound(name + ": cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return NotFound(name + ": read failed");
  return text.str();
}

bool WarnIfOpenToOthers(const std::filesystem::path& path, std::string_view what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  return WarnIfModeOpenToOthers(st.st_mode, std::string(what) + " " + path.string());
}

bool WarnIfModeOpenToOthers(unsigned mode, std::string_view name) {
  if ((mode & (S_IRWXG | S_IRWXO)) == 0) return false;
  spdlog::warn("{}: readable by users other than its owner (mode {:o}); it should be 0600", name,
               mode & 07777);
  return true;
}

}  // namespace conduit
