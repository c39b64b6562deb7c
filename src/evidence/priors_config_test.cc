// The `priors:` section (tool manifest and inline tool entry) and the config's priors_source.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/config.h"
#include "evidence/tool_manifest.h"

namespace conduit {
namespace {

constexpr const char* kManifest = R"(name: acme-chest-compare
vendor: Acme Imaging Ltd
version: 1.0.0
regulatory: {marking: none}
intended_use:
  condition: interval change of lung nodules
  body_parts: [CHEST]
  population: adults
  setting: secondary care
  user: radiologist
inputs: {modalities: [CT]}
outputs: [sr]
protocol: dicomweb
endpoint: {url: "https://ai.acme.example/dicom-web"}
hosting_region: UK
expected_turnaround: 10m
support: {name: Acme desk, email: support@acme.example}
priors:
  count: 2
  max_age: 5y
  comparable:
    same_body_part: true
    study_description: "*CHEST*"
  time_limit: 90s
  on_missing: wait
)";

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(PriorsManifestTest, ReadsThePriorsSectionIntoTheToolConfig) {
  auto m = ParseToolManifest(kManifest, "m.yaml");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  auto tool = ToToolConfig(*m);
  ASSERT_TRUE(tool.ok());
  const PriorsConfig& p = tool->priors;
  EXPECT_EQ(p.count, 2);
  EXPECT_EQ(p.max_age, std::chrono::hours(24 * 365 * 5));
  EXPECT_TRUE(p.same_modality);
  EXPECT_TRUE(p.same_body_part);
  EXPECT_EQ(p.study_description, "*CHEST*");
  EXPECT_EQ(p.time_limit, std::chrono::seconds(90));
  EXPECT_EQ(p.on_missing, PriorsOnMissing::kWait);
  EXPECT_NE(ToolManifestJson(*m).find("\"on_missing\":\"wait\""), std::string::npos);
}

TEST(PriorsManifestTest, NoPriorsSectionAsksForNone) {
  const std::string yaml = std::string(kManifest).substr(0, std::string(kManifest).find("priors:"));
  auto m = ParseToolManifest(yaml, "m.yaml");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->priors.count, 0);
}

TEST(PriorsManifestTest, ErrorsNameTheLineAndTheKey) {
  struct Case {
    std::string yaml;
    std::string message;
  };
  const std::string m = kManifest;
  const std::vector<Case> cases = {
      {Replace(m, "  count: 2\n", ""), "m.yaml:19: priors.count: is required"},
      {Replace(m, "  count: 2", "  count: 0"), "m.yaml:19: priors.count: out of range [1, 20]"},
      {Replace(m, "  max_age: 5y", "  max_age: 5 years"),
       "m.yaml:20: priors.max_age: '5 years': unknown unit"},
      {Replace(m, "  max_age: 5y", "  max_age: 0s"), "m.yaml:20: priors.max_age: must be positive"},
      {Replace(m, "    same_body_part: true", "    same_organ: true"),
       "m.yaml:22: priors.comparable.same_organ: unknown key"},
      {Replace(m, "    same_body_part: true", "    same_body_part: often"),
       "m.yaml:22: priors.comparable.same_body_part: expected true or false"},
      {Replace(m, "  time_limit: 90s", "  time_limit: 100ms"),
       "m.yaml:24: priors.time_limit: expected at least 1s"},
      {Replace(m, "  on_missing: wait", "  on_missing: retry"),
       "m.yaml:25: priors.on_missing: unknown value 'retry' (expected proceed or wait)"},
      {Replace(m, "  on_missing: wait", "  when: always"), "m.yaml:25: priors.when: unknown key"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseToolManifest(c.yaml, "m.yaml");
    ASSERT_FALSE(parsed.ok()) << c.message;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(parsed.status().message().rfind(c.message, 0), 0u)
        << "got: " << parsed.status().message() << "\nwant: " << c.message;
  }
}

constexpr const char* kConfig = R"(node: {name: trust}
priors_source:
  kind: dimse
  ae_title: PACS
  host: pacs.trust.example
  port: 104
  timeout: 20s
tools:
  - name: compare
    kind: executable
    command: [/opt/compare]
    priors: {count: 1, max_age: 2y, on_missing: proceed}
)";

TEST(PriorsConfigTest, ParsesAnInlineToolsPriorsAndADimseSource) {
  auto c = ParseConfig(kConfig, "c.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->priors_source.kind, PriorsSourceKind::kDimse);
  EXPECT_EQ(c->priors_source.ae_title.str(), "PACS");
  EXPECT_EQ(c->priors_source.host, "pacs.trust.example");
  EXPECT_EQ(c->priors_source.port, 104);
  EXPECT_EQ(c->priors_source.timeout, std::chrono::seconds(20));
  ASSERT_EQ(c->tools.size(), 1u);
  EXPECT_EQ(c->tools[0].priors.count, 1);
  EXPECT_EQ(c->tools[0].priors.max_age, std::chrono::hours(24 * 365 * 2));
  EXPECT_EQ(c->tools[0].priors.on_missing, PriorsOnMissing::kProceed);
}

TEST(PriorsConfigTest, ParsesADicomwebSource) {
  auto c = ParseConfig(R"(priors_source:
  kind: dicomweb
  url: http://pacs:8042/dicom-web/
  auth_token_file: keys/pacs.token
)",
                       "c.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->priors_source.kind, PriorsSourceKind::kDicomweb);
  EXPECT_EQ(c->priors_source.url, "http://pacs:8042/dicom-web");
  EXPECT_EQ(c->priors_source.auth_token_file, "keys/pacs.token");
}

TEST(PriorsConfigTest, ErrorsNameTheLineAndTheKey) {
  struct Case {
    std::string yaml;
    std::string message;
  };
  const std::string c = kConfig;
  const std::vector<Case> cases = {
      {Replace(c, "  kind: dimse", "  kind: hl7"),
       "c.yaml:3: priors_source.kind: expected 'dimse' or 'dicomweb'"},
      {Replace(c, "  host: pacs.trust.example\n", ""), "c.yaml:3: priors_source.host: is required"},
      {Replace(c, "  port: 104", "  url: http://pacs/dicom-web"),
       "c.yaml:6: priors_source.url: only for kind dicomweb"},
      {Replace(c, "  ae_title: PACS", "  ae_title: A_TITLE_THAT_IS_TOO_LONG"),
       "c.yaml:4: priors_source.ae_title: an AE title has 1 to 16 characters"},
      {Replace(c, "    priors: {count: 1, max_age: 2y, on_missing: proceed}",
               "    priors: {count: 1, on_missing: later}"),
       "c.yaml:12: tools[0].priors.on_missing: unknown value 'later'"},
      {Replace(c,
               "priors_source:\n  kind: dimse\n  ae_title: PACS\n  host: pacs.trust.example\n"
               "  port: 104\n  timeout: 20s\n",
               ""),
       "c.yaml: tool 'compare' asks for 1 prior(s), but no priors_source says where"},
  };
  for (const Case& k : cases) {
    auto parsed = ParseConfig(k.yaml, "c.yaml");
    ASSERT_FALSE(parsed.ok()) << k.message;
    EXPECT_EQ(parsed.status().message().rfind(k.message, 0), 0u)
        << "got: " << parsed.status().message() << "\nwant: " << k.message;
  }
}

}  // namespace
}  // namespace conduit
