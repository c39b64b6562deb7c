#include "governance/dpia.h"

#include <gtest/gtest.h>

#include <string>

namespace conduit {
namespace {

const char* kPolicy = R"(
policy: {name: "test network policy", version: "7"}
deidentification:
  options: [clean_descriptors]
tool_categories:
  triage: [retain_patient_characteristics]
hosting:
  allowed_regions: [UK, EU]
retention: {spool: 14d, crosswalk: 400d, audit: 3000d}
)";

DpiaTool RemoteTool() {
  DpiaTool tool;
  tool.name = "ich-triage";
  tool.vendor = "Northwind | Diagnostics";
  tool.version = "1.4.0";
  tool.description = "Flags suspected haemorrhage.";
  tool.regulatory = "UKCA class IIa";
  tool.condition = "intracranial haemorrhage";
  tool.modalities = {"CT"};
  tool.outputs = {"sr", "triage_score"};
  tool.protocol = "dicomweb";
  tool.endpoint = "https://ich.example/dicom-web";
  tool.manifest_hash = "abc123";
  tool.settings.name = "ich-triage";
  tool.settings.kind = ToolKind::kDicomweb;
  tool.settings.url = tool.endpoint;
  tool.settings.hosting_region = "UK";
  tool.settings.category = "triage";
  return tool;
}

Policy TestPolicy() {
  auto policy = ParsePolicy(kPolicy, "test-policy.yaml");
  EXPECT_TRUE(policy.ok()) << policy.status().ToString();
  return policy.ok() ? *policy : Policy{};
}

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(DpiaTest, StatesWhatThePolicyMakesConduitDoForARemoteTool) {
  const Policy policy = TestPolicy();
  auto dpia = RenderDpia(policy, RemoteTool(), {"Example NHS Trust", TimePoint{}});
  ASSERT_TRUE(dpia.ok()) << dpia.status().ToString();
  const std::string& md = *dpia;
  EXPECT_TRUE(Has(md, "# Data protection impact assessment: ich-triage 1.4.0 (draft)"));
  EXPECT_TRUE(Has(md, "| Organisation | Example NHS Trust |"));
  EXPECT_TRUE(Has(md, "| Vendor | Northwind   Diagnostics |")) << "a bar would break the table";
  EXPECT_TRUE(Has(md, "| Policy SHA-256 | `" + policy.hash + "` |"));
  EXPECT_TRUE(Has(md, "| Manifest SHA-256 | `abc123` |"));
  EXPECT_TRUE(Has(md, "hosted in **UK**. The policy allows hosting in: UK, EU"));
  EXPECT_TRUE(Has(md, "spool: 14 days"));
  EXPECT_TRUE(Has(md, "crosswalk: 400 days"));
  EXPECT_TRUE(Has(md, "audit trail: 3000 days"));
  EXPECT_TRUE(Has(md, "Clean Descriptors Option (clean_descriptors, the policy's baseline)")) << md;
  EXPECT_TRUE(Has(md, "re-identified inside the trust"));
  EXPECT_TRUE(Has(md, "Re-identification of returned results")) << "crosswalk outlives images";
  EXPECT_FALSE(Has(md, "Transfer outside the UK"));
  EXPECT_FALSE(Has(md, "Data readable on the network"));
  EXPECT_FALSE(Has(md, "without medical device marking"));
  EXPECT_TRUE(Has(md, "## 6. Sign-off"));
}

TEST(DpiaTest, FlagsWhatLeavesMoreThanTheBasicProfile) {
  DpiaTool tool = RemoteTool();
  tool.settings.hosting_region = "EU";
  tool.endpoint = "http://ich.example/dicom-web";
  tool.settings.url = tool.endpoint;
  tool.settings.retain = {"retain_patient_characteristics"};
  tool.regulatory.clear();
  auto dpia = RenderDpia(TestPolicy(), tool, {"", TimePoint{}});
  ASSERT_TRUE(dpia.ok()) << dpia.status().ToString();
  const std::string& md = *dpia;
  EXPECT_TRUE(Has(md, "| Organisation | **To complete.** |"));
  EXPECT_TRUE(Has(md, "asked for by the tool, allowed for its category 'triage'")) << md;
  EXPECT_TRUE(Has(md, "| Identification by characteristics |"));
  EXPECT_TRUE(Has(md, "| Transfer outside the UK | the tool is hosted in EU |"));
  EXPECT_TRUE(Has(md, "| Data readable on the network | the tool's URL is plain http |"));
  EXPECT_TRUE(Has(md, "| A tool without medical device marking |"));
  EXPECT_TRUE(Has(md, "The tool asks to keep retain_patient_characteristics"));
}

TEST(DpiaTest, AToolThePolicyRefusesGetsNoDpia) {
  DpiaTool tool = RemoteTool();
  tool.settings.hosting_region = "US";
  auto dpia = RenderDpia(TestPolicy(), tool, {"", TimePoint{}});
  ASSERT_FALSE(dpia.ok());
  EXPECT_EQ(dpia.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Has(dpia.status().message(), "'US'")) << dpia.status().message();

  tool = RemoteTool();
  tool.settings.retain = {"retain_uids"};  // not allowed for triage
  EXPECT_EQ(RenderDpia(TestPolicy(), tool, {"", TimePoint{}}).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST(DpiaTest, ALocalExecutableKeepsEverythingInTheTrust) {
  DpiaTool tool = RemoteTool();
  tool.protocol = "executable";
  tool.endpoint = "/opt/tool/run";
  tool.settings.kind = ToolKind::kExecutable;
  tool.settings.hosting_region.clear();
  auto dpia = RenderDpia(BuiltInPolicy(), tool, {"", TimePoint{}});
  ASSERT_TRUE(dpia.ok()) << dpia.status().ToString();
  const std::string& md = *dpia;
  EXPECT_TRUE(Has(md, "inside the trust. Nothing is sent outside the trust."));
  EXPECT_TRUE(Has(md, "None: the tool runs inside the trust on identifiable data."));
  EXPECT_TRUE(Has(md, "| Identifiable images processed by the tool |"));
  EXPECT_FALSE(Has(md, "re-identified inside the trust"));

  tool.settings.deidentify = true;
  dpia = RenderDpia(BuiltInPolicy(), tool, {"", TimePoint{}});
  ASSERT_TRUE(dpia.ok());
  EXPECT_TRUE(Has(*dpia, "de-identified anyway"));
  EXPECT_TRUE(Has(*dpia, "Basic Application Level Confidentiality Profile"));
}

TEST(DpiaTest, ListsTheRoutesThatSendStudiesToTheToolAndWhereTheirResultsGo) {
  const Policy policy = TestPolicy();
  auto config = ParseConfig(R"(
tools:
  - {name: ich-triage, kind: dicomweb, dicomweb: {url: "https://ich.example/dicom-web"},
     hosting_region: UK}
  - {name: other-tool, kind: executable, command: [x]}
destinations:
  - {name: pacs, ae_title: PACS, host: pacs.trust.nhs.uk, port: 2762, tls: {}}
  - {name: cloud, dicomweb: {url: "https://vna.example.nhs.uk/dicom-web"}}
routes:
  - {name: head-ct, when: {Modality: CT, BodyPartExamined: [HEAD, "BRAIN*"]}, tool: ich-triage,
     results_to: [pacs, cloud]}
  - {name: trial, when: {Modality: CT, StudyDescription: "!*RESEARCH*"}, tool: ich-triage,
     shadow: true, select: series}
  - {name: chest, when: {Modality: CR}, tool: other-tool, results_to: [pacs]}
)",
                            "gateway.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  auto dpia = RenderDpia(policy, RemoteTool(), {"", TimePoint{}, &*config});
  ASSERT_TRUE(dpia.ok()) << dpia.status().ToString();
  const std::string& md = *dpia;
  EXPECT_TRUE(Has(md,
                  "- route `head-ct`: Modality matches `CT`; and BodyPartExamined matches "
                  "`HEAD` or `BRAIN*`; results to pacs (C-STORE to PACS at "
                  "pacs.trust.nhs.uk:2762, DICOM over TLS), cloud (STOW-RS to "
                  "https://vna.example.nhs.uk/dicom-web)\n"))
      << md;
  EXPECT_TRUE(Has(md,
                  "- route `trial`: the matching series of Modality matches `CT`; and "
                  "StudyDescription matches neither `*RESEARCH*`; results to nowhere "
                  "(shadow"))
      << md;
  EXPECT_FALSE(Has(md, "chest")) << "another tool's route";
  EXPECT_TRUE(Has(md, "are stored to PACS (the destinations of the routes above)."));
  EXPECT_FALSE(Has(md, "List them here"));

  config->routes.clear();
  dpia = RenderDpia(policy, RemoteTool(), {"", TimePoint{}, &*config});
  ASSERT_TRUE(dpia.ok());
  EXPECT_TRUE(Has(*dpia, "No route of the gateway's configuration sends studies to it yet"));
  dpia = RenderDpia(policy, RemoteTool(), {"", TimePoint{}});
  ASSERT_TRUE(dpia.ok());
  EXPECT_TRUE(Has(*dpia, "List them here"));
}

}  // namespace
}  // namespace conduit
