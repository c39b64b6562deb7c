// The gateway's API tokens must open nothing but the gateway: none may also be a bearer token
// Conduit sends out (to a DICOMweb AI tool or to the priors PACS), whose holder could then use
// the admin API and read the original, identified studies.
#pragma once

#include "core/config.h"
#include "core/status.h"
#include "http/api_tokens.h"

namespace conduit {

// Reads every outbound token file of `config` (never logging a token) and warns about any that
// other users may read. Errors: kInvalidArgument naming the tool or the priors source whose
// token is also an API token. An outbound token file that cannot be read is not an error here:
// its sender reports it at each use.
Status CheckApiTokensNotSentOut(const Config& config, const ApiTokens& api_tokens);

}  // namespace conduit
