#include "http/dicomweb_request.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>

namespace conduit {
namespace {

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<JobId> ParseJobIdSegment(std::string_view text) {
  int64_t id = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || id <= 0) {
    return std::nullopt;
  }
  return JobId{id};
}

std::string BearerToken(const httplib::Request& req) {
  const std::string field = req.get_header_value("Authorization");
  std::string_view value = TrimSpaces(field);
  constexpr std::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size()) return {};
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) != kScheme[i]) return {};
  }
  return std::string(TrimSpaces(value.substr(kScheme.size())));
}

bool MayActOnJob(DicomwebContext& ctx, JobId job, std::string_view token) {
  if (token.empty()) return false;
  if (ctx.tokens.Verify(job, token)) return true;
  if (ctx.worklist_tokens == nullptr) return false;
  const std::optional<std::string> tool = ctx.worklist_tokens->ToolOf(token);
  if (!tool) return false;
  Result<std::optional<JobRecord>> record = ctx.index.GetJob(job);
  return record.ok() && record->has_value() && (*record)->tool == *tool;
}

std::string RequestBaseUrl(const Config& config, const httplib::Request& req) {
  std::string base = config.http.public_url;
  if (base.empty()) {
    std::string host = req.get_header_value("Host");
    const bool host_ok =
        !host.empty() && host.size() <= 255 && std::all_of(host.begin(), host.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
                 c == '[' || c == ']';
        });
    if (!host_ok) host = config.http.bind + ":" + std::to_string(config.http.port);
    base = std::string(config.http.tls() ? "https://" : "http://") + host;
  }
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base;
}

ClientAddress ClientOf(const httplib::Request& req,
                       const std::vector<AddressRange>& trusted_proxies) {
  if (trusted_proxies.empty()) return {req.remote_addr, ""};
  std::string forwarded_for;
  const size_t fields = req.get_header_value_count("X-Forwarded-For");
  for (size_t i = 0; i < fields; ++i) {
    if (i > 0) forwarded_for += ',';
    forwarded_for += req.get_header_value("X-Forwarded-For", i);
  }
  return ClientAddressOf(req.remote_addr, forwarded_for, trusted_proxies);
}

}  // namespace conduit
