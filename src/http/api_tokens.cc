#include "http/api_tokens.h"

#include "core/text_file.h"

namespace conduit {
namespace {

std::string_view TrimSpaces(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r";
  const size_t first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kSpace) - first + 1);
}

bool PrintableAsciiWithoutSpaces(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
  }
  return true;
}

}  // namespace

Result<ApiTokens> ApiTokens::Parse(std::string_view text, std::string_view source) {
  ApiTokens out;
  size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const size_t end = text.find('\n');
    const std::string_view line = TrimSpaces(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.empty() || line.front() == '#') continue;
    const std::string where = std::string(source) + ":" + std::to_string(line_number) + ": ";
    if (!PrintableAsciiWithoutSpaces(line)) {
      return InvalidArgument(where +
                             "a token is one word of printable ASCII characters (no spaces)");
    }
    if (line.size() < kMinLength) {
      return InvalidArgument(where + "token too short (" + std::to_string(line.size()) +
                             " characters; at least " + std::to_string(kMinLength) +
                             "): generate one with `openssl rand -hex 32`");
    }
    out.digests_.push_back(DigestOfToken(line));
  }
  if (out.digests_.empty()) {
    return InvalidArgument(std::string(source) +
                           ": holds no token (blank lines and # comments only)");
  }
  return out;
}

Result<ApiTokens> ApiTokens::Load(const std::filesystem::path& path) {
  const std::string source = "http.api_token_file " + path.string();
  Result<std::string> text = ReadTextFile(path, "http.api_token_file");
  if (!text.ok()) return InvalidArgument(text.status().message());
  WarnIfOpenToOthers(path, "http.api_token_file");
  return Parse(*text, source);
}

bool ApiTokens::Accepts(std::string_view token) const {
  if (token.empty()) return false;
  const TokenDigest digest = DigestOfToken(token);
  bool found = false;
  for (const TokenDigest& d : digests_) found = SameDigest(d, digest) || found;  // no early exit
  return found;
}

std::optional<std::string> ApiTokens::SharedWith(const WorklistTokens& worklist) const {
  for (const TokenDigest& d : digests_) {
    if (std::optional<std::string> tool = worklist.ToolOfDigest(d)) return tool;
  }
  return std::nullopt;
}

}  // namespace conduit
