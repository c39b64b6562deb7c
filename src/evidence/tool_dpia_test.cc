#include "evidence/tool_dpia.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace conduit {
namespace {

namespace fs = std::filesystem;

TEST(ToolDpiaTest, TheShippedExampleManifestsMakeADpiaUnderTheExamplePolicy) {
  auto policy = LoadPolicyFile(fs::path(CONDUIT_SOURCE_DIR) / "examples" / "policy.yaml");
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  int made = 0;
  for (const auto& entry :
       fs::directory_iterator(fs::path(CONDUIT_SOURCE_DIR) / "examples" / "tools")) {
    auto manifest = LoadToolManifestFile(entry.path());
    ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
    auto tool = DpiaToolOf(*manifest);
    ASSERT_TRUE(tool.ok()) << tool.status().ToString();
    auto dpia = RenderDpia(*policy, *tool, {"Example NHS Trust", TimePoint{}});
    ASSERT_TRUE(dpia.ok()) << entry.path() << ": " << dpia.status().ToString();
    EXPECT_NE(dpia->find("| Manifest SHA-256 | `" + manifest->hash + "` |"), std::string::npos);
    ++made;
  }
  EXPECT_GE(made, 3);
}

TEST(ToolDpiaTest, CarriesWhatTheVendorDeclared) {
  auto manifest = LoadToolManifestFile(fs::path(CONDUIT_SOURCE_DIR) / "examples" / "tools" /
                                       "northwind-triage-dicomweb.yaml");
  ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
  auto tool = DpiaToolOf(*manifest);
  ASSERT_TRUE(tool.ok()) << tool.status().ToString();
  EXPECT_EQ(tool->name, "northwind-ich-triage");
  EXPECT_EQ(tool->vendor, "Northwind Diagnostics Ltd");
  EXPECT_EQ(tool->regulatory,
            "UKCA class IIa (approved or notified body 0000 Example Approved Body, certificate "
            "UKCA-EXAMPLE-2025-0107)");
  EXPECT_EQ(tool->condition, "intracranial haemorrhage");
  EXPECT_EQ(tool->modalities, (std::vector<std::string>{"CT"}));
  EXPECT_EQ(tool->minimum_series, "at least 20 slices");
  EXPECT_EQ(tool->outputs, (std::vector<std::string>{"sr", "kos", "triage_score"}));
  EXPECT_EQ(tool->protocol, "dicomweb");
  EXPECT_EQ(tool->endpoint, "https://ich.northwind-diagnostics.example/dicom-web");
  EXPECT_EQ(tool->support, "Northwind service desk, support@northwind-diagnostics.example");
  EXPECT_EQ(tool->settings.hosting_region, "UK");
  EXPECT_EQ(tool->settings.category, "triage");
}

}  // namespace
}  // namespace conduit
