#include "app/api_token_setup.h"

#include <optional>
#include <string>

#include "core/text_file.h"
#include "dicom/dicomweb_http.h"

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

Result<std::unique_ptr<ApiTokens>> LoadApiTokensFor(const Config& config,
                                                    const WorklistTokens& worklist_tokens) {
  if (config.http.port == 0 || config.http.api_token_file.empty()) {
    return std::unique_ptr<ApiTokens>();
  }
  ASSIGN_OR_RETURN(ApiTokens api_tokens, ApiTokens::Load(config.http.api_token_file));
  if (std::optional<std::string> tool = api_tokens.SharedWith(worklist_tokens)) {
    return InvalidArgument("http.api_token_file " + config.http.api_token_file.string() +
                           ": a token in it is also the worklist token of tool '" + *tool +
                           "': API tokens must be used for nothing else");
  }
  RETURN_IF_ERROR(CheckApiTokensNotSentOut(config, api_tokens));
  return std::make_unique<ApiTokens>(std::move(api_tokens));
}

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
