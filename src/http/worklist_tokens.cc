#include "http/worklist_tokens.h"

#include <fstream>
#include <sstream>

#include "core/text_file.h"

namespace conduit {
namespace {

std::string Trim(std::string s) {
  const char* ws = " \t\r\n";
  const size_t first = s.find_first_not_of(ws);
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(ws) - first + 1);
}

}  // namespace

Result<WorklistTokens> WorklistTokens::FromTokens(
    const std::vector<std::pair<std::string, std::string>>& tool_tokens) {
  WorklistTokens out;
  for (const auto& [tool, token] : tool_tokens) {
    if (token.empty()) return InvalidArgument("tool '" + tool + "': its worklist token is empty");
    const TokenDigest digest = DigestOfToken(token);
    for (const Entry& e : out.entries_) {
      if (SameDigest(e.digest, digest)) {
        return InvalidArgument("tools '" + e.tool + "' and '" + tool +
                               "' have the same worklist token: each needs its own");
      }
    }
    out.entries_.push_back({tool, digest});
  }
  return out;
}

Result<WorklistTokens> WorklistTokens::Load(const Config& config) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const ToolConfig& tool : config.tools) {
    if (tool.kind != ToolKind::kWorklist) continue;
    const std::string where =
        "tool '" + tool.name + "': auth_token_file " + tool.auth_token_file.string();
    if (tool.auth_token_file.empty())
      return InvalidArgument("tool '" + tool.name + "': worklist needs auth_token_file");
    std::ifstream in(tool.auth_token_file, std::ios::binary);
    if (!in) return InvalidArgument(where + ": cannot be read");
    std::stringstream text;
    text << in.rdbuf();
    if (in.bad()) return InvalidArgument(where + ": read failed");
    std::string token = Trim(text.str());
    if (token.empty()) return InvalidArgument(where + ": is empty");
    WarnIfOpenToOthers(tool.auth_token_file, "tool '" + tool.name + "': auth_token_file");
    pairs.emplace_back(tool.name, std::move(token));
  }
  return FromTokens(pairs);
}

std::optional<std::string> WorklistTokens::ToolOf(std::string_view token) const {
  if (token.empty()) return std::nullopt;
  return ToolOfDigest(DigestOfToken(token));
}

std::optional<std::string> WorklistTokens::ToolOfDigest(const TokenDigest& digest) const {
  std::optional<std::string> found;
  for (const Entry& e : entries_) {  // every entry, whatever matches: no early exit
    if (SameDigest(e.digest, digest)) found = e.tool;
  }
  return found;
}

}  // namespace conduit
