#include "governance/dpia.h"

#include <sstream>
#include <string_view>

#include "core/iso_time.h"
#include "deid/profile.h"

namespace conduit {
namespace {

constexpr std::string_view kToComplete = "**To complete.**";

std::string JoinOr(const std::vector<std::string>& items, std::string_view none) {
  if (items.empty()) return std::string(none);
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::string OrToComplete(const std::string& value) {
  return value.empty() ? std::string(kToComplete) : value;
}

// Markdown table cells hold one line and no bars.
std::string Cell(std::string text) {
  for (char& c : text) {
    if (c == '|' || c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

std::string OutputMeaning(const std::string& output) {
  if (output == "sr") return "structured report (findings, measurements)";
  if (output == "seg") return "segmentation";
  if (output == "gsps") return "annotations on the images (presentation state)";
  if (output == "kos") return "key images selection";
  if (output == "sc") return "secondary capture image";
  if (output == "parametric_map") return "parametric map";
  if (output == "triage_score") return "triage priority score";
  return output;
}

// What keeping an option's attributes lets through, in a sentence.
std::string_view WhatItKeeps(ProfileOption option) {
  switch (option) {
    case ProfileOption::kRetainSafePrivate:
      return "private attributes the policy lists as safe are kept";
    case ProfileOption::kRetainUids:
      return "the original UIDs are kept: the trust's own records can be linked to the data";
    case ProfileOption::kRetainDeviceIdentity:
      return "device serial numbers, station names and similar are kept";
    case ProfileOption::kRetainInstitutionIdentity:
      return "the names and addresses of the institution and department are kept";
    case ProfileOption::kRetainPatientCharacteristics:
      return "age, sex, size, weight and similar characteristics of the patient are kept";
    case ProfileOption::kRetainLongitudinalFullDates:
      return "the real dates and times of the study are kept";
    case ProfileOption::kRetainLongitudinalModifiedDates:
      return "dates are kept, each patient's moved back by the same number of days";
    case ProfileOption::kCleanDescriptors:
      return "descriptions are kept, cleaned of identifying text";
    case ProfileOption::kCleanStructuredContent:
      return "structured report content is kept, cleaned of identifying text";
    case ProfileOption::kCleanGraphics:
      return "graphic annotations are kept, cleaned of identifying text";
  }
  return "";
}

struct Risk {
  std::string what, why, measure, to_do;
};

std::vector<Risk> RisksOf(const Policy& policy, const DpiaTool& tool, const DeidSettings& deid,
                          bool leaves_trust) {
  std::vector<Risk> risks;
  const ToolConfig& t = tool.settings;
  if (!leaves_trust) {
    risks.push_back({"Identifiable images processed by the tool",
                     "the tool runs on the gateway's host, inside the trust, on the images as "
                     "received",
                     "nothing leaves the trust; results are validated before they reach PACS",
                     "confirm who may administer the gateway's host and read its data folder"});
  } else {
    risks.push_back(
        {"Re-identification of the data sent",
         "images and their attributes leave the trust for " + t.hosting_region,
         "DICOM PS3.15 de-identification and keyed pseudonymisation before every transfer; the "
         "key and the pseudonym-to-original crosswalk stay in the trust",
         "assess the options in section 2 that keep attributes"});
    if (deid.options.Has(ProfileOption::kRetainUids)) {
      risks.push_back({"Linkage by UID", "the tool is sent the original UIDs (Retain UIDs)",
                       "none beyond the contract with the vendor",
                       "state why the tool needs original UIDs"});
    }
    if (deid.options.Has(ProfileOption::kRetainLongitudinalFullDates)) {
      risks.push_back({"Identification by dates", "real study dates are sent",
                       "none: dates are not shifted", "state why shifted dates would not do"});
    }
    if (deid.options.Has(ProfileOption::kRetainPatientCharacteristics)) {
      risks.push_back({"Identification by characteristics", "age, sex, size and weight are sent",
                       "the rest of the profile applies",
                       "state which characteristics the tool needs"});
    }
    std::vector<std::string> allowed_kinds;
    if (deid.burned_in.allow_ultrasound) allowed_kinds.push_back("ultrasound");
    if (deid.burned_in.allow_secondary_capture) allowed_kinds.push_back("secondary capture");
    if (deid.burned_in.allow_scanned_documents) allowed_kinds.push_back("scanned documents");
    if (!allowed_kinds.empty() || !deid.burned_in.refuse_burned_in_annotation) {
      std::string why = allowed_kinds.empty()
                            ? std::string("instances marked Burned In Annotation YES are sent")
                            : "the policy lets " + JoinOr(allowed_kinds, "") +
                                  " through, which may carry names in the pixels";
      risks.push_back({"Identifying text in the pixels", why,
                       deid.burned_in.cleaning.empty()
                           ? std::string("none: no pixel regions are blanked")
                           : std::to_string(deid.burned_in.cleaning.size()) +
                                 " pixel-cleaning rule(s) blank known regions",
                       "check samples of what these devices produce"});
    }
    if (!tool.endpoint.starts_with("https://") && t.kind == ToolKind::kDicomweb) {
      risks.push_back({"Data readable on the network", "the tool's URL is plain http",
                       "none in transit", "have the vendor offer https"});
    }
    if (t.kind == ToolKind::kDimse && !t.tls.enabled) {
      risks.push_back({"Data readable on the network",
                       "the tool is reached by DICOM, and TLS is the trust's setting (`tls:` "
                       "beside the tool in the gateway's config), not the manifest's",
                       "DICOM TLS, once set", "set `tls:`, or record why the network is trusted"});
    }
    if (t.hosting_region != "UK" && t.hosting_region != "uk") {
      risks.push_back({"Transfer outside the UK", "the tool is hosted in " + t.hosting_region,
                       "the policy allows that region",
                       "record the transfer mechanism (adequacy or safeguards)"});
    }
  }
  if (tool.regulatory.empty()) {
    risks.push_back({"A tool without medical device marking",
                     "the manifest declares no UKCA or CE marking",
                     "its results are validated and labelled like any other",
                     "state whether the use is clinical, research or evaluation"});
  }
  if (policy.retention.crosswalk > policy.retention.spool && leaves_trust) {
    risks.push_back({"Re-identification of returned results",
                     "the crosswalk is kept " + std::to_string(policy.retention.crosswalk.count()) +
                         " days, longer than the images (" +
                         std::to_string(policy.retention.spool.count()) + " days)",
                     "it never leaves the trust's index",
                     "confirm the crosswalk's retention period"});
  }
  return risks;
}

// "Modality matches `CT` or `MR`; and BodyPartExamined matches neither `HEAD`": a route's
// conditions in words.
std::string ConditionsText(const RouteConfig& route) {
  if (route.when.empty()) return "every study received";
  std::string text;
  for (const RouteCondition& condition : route.when) {
    std::vector<std::string> wanted, refused;
    for (const std::string& pattern : condition.patterns) {
      if (!pattern.empty() && pattern[0] == '!') {
        refused.push_back("`" + pattern.substr(1) + "`");
      } else {
        wanted.push_back("`" + pattern + "`");
      }
    }
    auto any_of = [](const std::vector<std::string>& patterns) {
      std::string out;
      for (const std::string& p : patterns) out += (out.empty() ? "" : " or ") + p;
      return out;
    };
    std::string part = condition.attribute;
    if (!wanted.empty()) part += " matches " + any_of(wanted);
    if (!refused.empty()) {
      part += (wanted.empty() ? " matches neither " : ", but neither ") + any_of(refused);
    }
    text += (text.empty() ? "" : "; and ") + part;
  }
  return text;
}

// "pacs (C-STORE to PACS at pacs.trust.nhs.uk:104, DICOM over TLS)".
std::string DestinationText(const Config& gateway, const std::string& name) {
  const DestinationConfig* dest = gateway.FindDestination(name);
  if (dest == nullptr) return name + " (not in the configuration)";
  if (dest->stow()) return name + " (STOW-RS to " + dest->dicomweb_url + ")";
  return name + " (C-STORE to " + dest->ae_title.str() + " at " + dest->host + ":" +
         std::to_string(dest->port) + (dest->tls.enabled ? ", DICOM over TLS" : "") + ")";
}

// The routes of `gateway` that send studies to `tool`, one bullet each; empty when none.
std::string RoutesText(const Config& gateway, const std::string& tool) {
  std::string text;
  for (const RouteConfig& route : gateway.routes) {
    if (route.tool != tool) continue;
    text += "- route `" + route.name +
            "`: " + (route.select == RouteScope::kSeries ? "the matching series of " : "") +
            ConditionsText(route) + "; results to ";
    if (route.shadow) {
      text += "nowhere (shadow: an evaluation, nothing is delivered or reported)";
    } else {
      std::vector<std::string> destinations;
      for (const std::string& name : route.results_to) {
        destinations.push_back(DestinationText(gateway, name));
      }
      text += JoinOr(destinations, "nowhere");
    }
    text += "\n";
  }
  return text;
}

}  // namespace

Result<std::string> RenderDpia(const Policy& policy, const DpiaTool& tool,
                               const DpiaContext& context) {
  Config one;
  one.tools.push_back(tool.settings);
  RETURN_IF_ERROR(CheckToolsAgainstPolicy(policy, one));

  const ToolConfig& t = tool.settings;
  const bool leaves_trust = t.IsRemote();
  const bool deidentified = t.Deidentified();
  const DeidSettings deid = SettingsForTool(policy, t);
  std::ostringstream md;

  md << "# Data protection impact assessment: " << tool.name << " " << tool.version
     << " (draft)\n\n"
     << "Pre-filled by Conduit from the trust's information-governance policy and the tool's "
        "manifest. What it states is what Conduit enforces or what the vendor declared; "
        "every part marked "
     << kToComplete
     << " needs the judgement of the IG lead and the data protection officer. Make it again "
        "when the policy or the manifest changes: the hashes below name the versions it was "
        "made from.\n\n"
     << "| | |\n|---|---|\n"
     << "| Organisation | " << Cell(OrToComplete(context.organisation)) << " |\n"
     << "| Tool | " << Cell(tool.name + " " + tool.version) << " |\n"
     << "| Vendor | " << Cell(OrToComplete(tool.vendor)) << " |\n"
     << "| Vendor support | " << Cell(OrToComplete(tool.support)) << " |\n"
     << "| Manifest SHA-256 | `" << tool.manifest_hash << "` |\n"
     << "| Policy | " << Cell(policy.name + ", version " + policy.version) << " |\n"
     << "| Policy SHA-256 | `" << policy.hash << "` |\n"
     << "| Generated | " << FormatIsoTime(context.generated_at) << " |\n\n";

  md << "## 1. The processing\n\n### What the tool does\n\n"
     << OrToComplete(tool.description) << "\n\n"
     << "- Intended use: " << OrToComplete(tool.condition)
     << "; population: " << OrToComplete(tool.population)
     << "; setting: " << OrToComplete(tool.setting) << "; user: " << OrToComplete(tool.user)
     << ".\n"
     << "- Regulatory status: "
     << (tool.regulatory.empty() ? "no medical device marking declared" : tool.regulatory)
     << ".\n- It returns:";
  for (const std::string& output : tool.outputs) md << " " << OutputMeaning(output) << ";";
  md << " each result is checked (IHE AI Results) before it reaches PACS, and one that fails "
        "is quarantined, never delivered.\n\n";

  md << "### Which data\n\n"
     << "Only studies that the gateway's routes send to this tool, and of those what the tool "
        "reads:\n\n"
     << "- modalities: " << JoinOr(tool.modalities, "any") << "\n"
     << "- body parts: " << JoinOr(tool.body_parts, "any") << "\n"
     << "- SOP classes: " << JoinOr(tool.sop_classes, "any image") << "\n"
     << "- minimum series: " << (tool.minimum_series.empty() ? "none" : tool.minimum_series)
     << "\n\n";
  const std::string routes =
      context.gateway != nullptr ? RoutesText(*context.gateway, tool.name) : "";
  if (!routes.empty()) {
    md << "The gateway's routes that send studies to it (its configuration when this draft was "
          "made):\n\n"
       << routes << "\n";
  } else if (context.gateway != nullptr) {
    md << "No route of the gateway's configuration sends studies to it yet: " << kToComplete
       << " List the routes it will have.\n\n";
  } else {
    md << "The routes (which studies, from which modalities) are in the gateway's "
          "configuration: "
       << kToComplete << " List them here.\n\n";
  }

  md << "### Where the data goes\n\n";
  if (!leaves_trust) {
    md << "The tool runs on the gateway's own host (" << tool.protocol << ": " << tool.endpoint
       << "), inside the trust. Nothing is sent outside the trust.";
    md << (deidentified ? " The images are de-identified anyway, as in section 2, before the "
                          "tool reads them.\n\n"
                        : " The tool reads the images as received, with the patient's "
                          "identity.\n\n");
  } else {
    md << "The tool is reached by " << tool.protocol << " at `" << tool.endpoint
       << "` and is hosted in **" << t.hosting_region
       << "**. The policy allows hosting in: " << JoinOr(policy.allowed_hosting_regions, "none")
       << "; Conduit refuses to start with a tool hosted elsewhere. Every transfer leaves the "
          "trust de-identified as in section 2, and is recorded in the audit trail with the "
          "policy's hash.\n\n";
  }
  md << "Results come back to the gateway, are checked, "
     << (deidentified ? "re-identified inside the trust with the crosswalk, " : "")
     << "and are stored to PACS"
     << (routes.empty() ? "" : " (the destinations of the routes above)") << ".\n\n";

  md << "### How long it is kept (policy)\n\n"
     << "- images and results in the gateway's spool: " << policy.retention.spool.count()
     << " days\n"
     << "- pseudonym-to-original crosswalk: " << policy.retention.crosswalk.count() << " days\n"
     << "- audit trail: " << policy.retention.audit.count() << " days\n"
     << "- at the vendor: " << kToComplete << " (the contract's terms)\n\n";

  md << "## 2. De-identification applied\n\n";
  if (!deidentified) {
    md << "None: the tool runs inside the trust on identifiable data.\n\n";
  } else {
    md << "DICOM PS3.15 Annex E, Basic Application Level Confidentiality Profile, on every "
          "attribute of Table E.1-1 (edition 2024b), at every depth of nested sequences; private "
          "attributes and attributes unknown to the data dictionary are removed unless kept "
          "below.\n\n";
    const std::vector<ProfileOption> options = deid.options.List();
    if (options.empty()) {
      md << "Options: none (the Basic Profile alone).\n\n";
    } else {
      md << "Options in force for this tool:\n\n";
      for (ProfileOption option : options) {
        bool asked = false;
        for (const std::string& name : t.retain) asked = asked || OptionName(option) == name;
        md << "- " << OptionCodeMeaning(option) << " (" << OptionName(option) << ", "
           << (asked ? "asked for by the tool, allowed for its category '" + t.category + "'"
                     : std::string("the policy's baseline"))
           << "): " << WhatItKeeps(option);
        if (option == ProfileOption::kRetainLongitudinalModifiedDates) {
          md << " (between " << deid.date_shift_min_days << " and " << deid.date_shift_max_days
             << " days)";
        }
        if (option == ProfileOption::kRetainSafePrivate) {
          md << " (" << deid.safe_private.size() << " listed)";
        }
        md << ".\n";
      }
      md << "\n";
    }
    md << "Pseudonymisation: Patient ID, Accession Number and names are replaced by pseudonyms "
          "derived with HMAC-SHA256 under a key held in the trust"
       << (deid.options.Has(ProfileOption::kRetainUids)
               ? ""
               : "; every UID is replaced by a UID derived the same way (2.25), so references "
                 "stay consistent")
       << ". The key never leaves the trust and is never logged.\n\n"
       << "Text in the pixels: instances marked Burned In Annotation YES are "
       << (deid.burned_in.refuse_burned_in_annotation ? "refused" : "sent") << "; ultrasound is "
       << (deid.burned_in.allow_ultrasound ? "sent" : "refused") << "; secondary capture is "
       << (deid.burned_in.allow_secondary_capture ? "sent" : "refused")
       << "; scanned documents are "
       << (deid.burned_in.allow_scanned_documents ? "sent" : "refused") << "; "
       << deid.burned_in.cleaning.size()
       << " pixel-cleaning rule(s). A refused instance is reported and audited, never sent.\n\n";
  }

  md << "## 3. Necessity and proportionality\n\n"
     << "- Lawful basis (UK GDPR Article 6) and condition for health data (Article 9): "
     << kToComplete << "\n"
     << "- Why this tool, and what it adds to the pathway: " << kToComplete << "\n";
  if (!t.retain.empty()) {
    md << "- The tool asks to keep " << JoinOr(t.retain, "") << ": " << kToComplete
       << " Why it needs them.\n";
  }
  md << "- How patients are told: " << kToComplete << "\n";
  if (leaves_trust) {
    md << "- Contract with the vendor as processor (security, sub-processors, deletion, "
          "breach notice): "
       << kToComplete << "\n";
  }
  md << "\n## 4. Risks seen in this configuration\n\n"
     << "| Risk | Why | What Conduit does | To do |\n|---|---|---|---|\n";
  for (const Risk& r : RisksOf(policy, tool, deid, leaves_trust)) {
    md << "| " << Cell(r.what) << " | " << Cell(r.why) << " | " << Cell(r.measure) << " | "
       << Cell(r.to_do) << " |\n";
  }
  md << "\nOther risks (the vendor's security, access by its staff, model errors and their "
        "clinical effect): "
     << kToComplete << "\n\n";

  md << "## 5. Measures Conduit enforces\n\n"
     << "- Every transfer passes this policy; a tool hosted in a region the policy does not "
        "allow is refused at start-up.\n"
     << "- Every receipt, transfer, result and delivery is audited, each entry with the "
        "policy's hash; the audit trail is kept "
     << policy.retention.audit.count() << " days.\n"
     << "- Results are re-identified only inside the trust; a result that refers to images the "
        "trust did not send is quarantined.\n"
     << "- Patient identifiers and keys never appear in the gateway's logs.\n\n";

  md << "## 6. Sign-off\n\n| Item | Name and date | Notes |\n|---|---|---|\n"
     << "| Measures approved by | | |\n| Residual risks approved by | | |\n"
     << "| DPO advice given | | |\n| Next review | | |\n";
  return md.str();
}

}  // namespace conduit
