#include "app/outbound_tokens.h"

#include <optional>
#include <string>

#include "adapters/dicomweb_http.h"
#include "core/text_file.h"

namespace conduit {
namespace {

// kInvalidArgument when the token in `file` (if readable) is one of `api_tokens`.
Status CheckOne(const std::filesystem::path& file, const std::string& who,
                const std::string& setting, const ApiTokens& api_tokens) {
  if (file.empty()) return Status::Ok();
  WarnIfOpenToOthers(file, who + ": " + setting);
  Result<std::optional<std::string>> token = ReadBearerTokenFile(file, who, setting);
  if (!token.ok() || !token->has_value() || !api_tokens.Accepts(**token)) return Status::Ok();
  return InvalidArgument(who + ": the bearer token in " + setting + " " + file.string() +
                         " is also an API token of this gateway (http.api_token_file): whoever "
                         "receives it could use the admin API and read original studies; give "
                         "each its own token (openssl rand -hex 32)");
}

}  // namespace

Status CheckApiTokensNotSentOut(const Config& config, const ApiTokens& api_tokens) {
  for (const ToolConfig& tool : config.tools) {
    if (tool.kind != ToolKind::kDicomweb) continue;
    RETURN_IF_ERROR(CheckOne(tool.auth_token_file, "tool '" + tool.name + "'",
                             "dicomweb.auth_token_file", api_tokens));
  }
  if (config.priors_source.kind == PriorsSourceKind::kDicomweb) {
    RETURN_IF_ERROR(CheckOne(config.priors_source.auth_token_file, "priors_source",
                             "priors_source.auth_token_file", api_tokens));
  }
  return Status::Ok();
}

}  // namespace conduit
