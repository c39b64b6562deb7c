#include "evidence/tool_dpia.h"

#include <sstream>
#include <string>

namespace conduit {
namespace {

std::string Regulatory(const RegulatoryInfo& r) {
  if (r.marking == RegulatoryMarking::kNone) return "";
  std::string text = std::string(RegulatoryMarkingName(r.marking));
  if (!r.device_class.empty()) text += " class " + r.device_class;
  std::string details;
  if (!r.notified_body.empty()) details += "approved or notified body " + r.notified_body;
  if (!r.certificate.empty())
    details += (details.empty() ? "" : ", ") + ("certificate " + r.certificate);
  return details.empty() ? text : text + " (" + details + ")";
}

std::string MinimumSeries(const MinSeriesCriteria& m) {
  std::ostringstream out;
  if (m.slices > 0) out << "at least " << m.slices << " slices";
  if (m.slice_thickness_max_mm > 0) {
    out << (m.slices > 0 ? ", " : "") << "slices at most " << m.slice_thickness_max_mm
        << " mm thick";
  }
  return out.str();
}

std::string Endpoint(const ToolManifest& m) {
  switch (m.protocol) {
    case ToolProtocol::kDimse:
      return m.endpoint.ae_title + "@" + m.endpoint.host + ":" + std::to_string(m.endpoint.port);
    case ToolProtocol::kExecutable: {
      std::string command;
      for (const std::string& arg : m.endpoint.command)
        command += (command.empty() ? "" : " ") + arg;
      return command;
    }
    case ToolProtocol::kDicomweb:
    case ToolProtocol::kAiwI:
      return m.endpoint.url.empty() ? "the gateway's UPS-RS worklist (the tool pulls its work)"
                                    : m.endpoint.url;
  }
  return "";
}

std::string Support(const SupportContact& s) {
  std::string out = s.name;
  for (const std::string* part : {&s.email, &s.phone}) {
    if (!part->empty()) out += (out.empty() ? "" : ", ") + *part;
  }
  return out;
}

}  // namespace

Result<DpiaTool> DpiaToolOf(const ToolManifest& manifest) {
  DpiaTool tool;
  ASSIGN_OR_RETURN(tool.settings, ToToolConfig(manifest));
  tool.name = manifest.name;
  tool.vendor = manifest.vendor;
  tool.version = manifest.version;
  tool.description = manifest.description;
  tool.regulatory = Regulatory(manifest.regulatory);
  tool.condition = manifest.intended_use.condition;
  tool.population = manifest.intended_use.population;
  tool.setting = manifest.intended_use.setting;
  tool.user = manifest.intended_use.user;
  tool.modalities = manifest.inputs.modalities;
  tool.body_parts = manifest.inputs.body_parts;
  tool.sop_classes = manifest.inputs.sop_classes;
  tool.minimum_series = MinimumSeries(manifest.inputs.min_series);
  for (ToolOutput output : manifest.outputs) tool.outputs.emplace_back(ToolOutputName(output));
  tool.protocol = ToolProtocolName(manifest.protocol);
  tool.endpoint = Endpoint(manifest);
  tool.support = Support(manifest.support);
  tool.manifest_hash = manifest.hash;
  return tool;
}

}  // namespace conduit
