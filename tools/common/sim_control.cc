#include "common/sim_control.h"

#include <nlohmann/json.hpp>

namespace conduit::tools {

std::optional<ModeRequest> ParseModeRequest(const std::string& body, std::string& error) {
  const nlohmann::json json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json.contains("mode") || !json["mode"].is_string()) {
    error = "expected a JSON object {\"mode\": \"...\", \"count\": N}";
    return std::nullopt;
  }
  ModeRequest request;
  request.mode = json["mode"].get<std::string>();
  if (json.contains("count") && !json["count"].is_null()) {
    if (!json["count"].is_number_integer()) {
      error = "count must be an integer";
      return std::nullopt;
    }
    request.count = json["count"].get<int>();
  }
  return request;
}

}  // namespace conduit::tools
