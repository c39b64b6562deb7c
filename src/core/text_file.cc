#include "core/text_file.h"

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

}  // namespace conduit
