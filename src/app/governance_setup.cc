#include "app/governance_setup.h"

#include <spdlog/spdlog.h>

#include <system_error>

namespace conduit {

Result<Policy> LoadPolicyFor(const Config& config) {
  Result<Policy> policy = config.governance.policy_file.empty()
                              ? Result<Policy>(BuiltInPolicy())
                              : LoadPolicyFile(config.governance.policy_file);
  if (!policy.ok()) return policy.status();
  RETURN_IF_ERROR(CheckToolsAgainstPolicy(*policy, config));
  return policy;
}

Result<PseudonymKey> LoadOrCreateKey(const Config& config) {
  std::filesystem::path path = config.governance.key_file;
  if (path.empty()) {
    path = config.node.data_dir / "keys" / "pseudonym.key";
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      std::filesystem::create_directories(path.parent_path(), ec);
      if (ec) return ErrnoStatus(ec.value(), "creating " + path.parent_path().string());
      std::filesystem::permissions(path.parent_path(), std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::replace, ec);
      RETURN_IF_ERROR(WriteNewKeyFile(path));
      spdlog::warn(
          "created a new pseudonymisation key at {}: back it up; pseudonyms made "
          "with another key will not match",
          path.string());
    }
  }
  return LoadKeyFile(path);
}

}  // namespace conduit
