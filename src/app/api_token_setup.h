// The gateway's API tokens, loaded at start-up (and by `conduit config check`) with the checks
// that keep them opening nothing but the gateway: none may also be a worklist tool's token, nor
// a bearer token Conduit sends out (to a DICOMweb AI tool or to the priors PACS), whose holder
// could then use the admin API and read the original, identified studies.
#pragma once

#include <memory>

#include "core/config.h"
#include "core/status.h"
#include "http/api_tokens.h"
#include "http/worklist_tokens.h"

namespace conduit {

// The tokens of http.api_token_file; null when the HTTP port is off or no file is set. Reads
// every token file involved (never logging a token) and warns about any that other users may
// read. Errors: the file's own (kInvalidArgument); kInvalidArgument naming the worklist tool,
// DICOMweb tool or priors source that shares a token with it.
Result<std::unique_ptr<ApiTokens>> LoadApiTokensFor(const Config& config,
                                                    const WorklistTokens& worklist_tokens);

// The outbound part of the check above. An outbound token file that cannot be read is not an
// error here: its sender reports it at each use.
Status CheckApiTokensNotSentOut(const Config& config, const ApiTokens& api_tokens);

}  // namespace conduit
