#include "governance/policy.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <fstream>

namespace conduit {
namespace {

// Independent SHA-256 for the hash checks (OpenSSL's one-shot API, not the code under test).
std::string ReferenceSha256(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  char hex[3];
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(hex, sizeof(hex), "%02x", md[i]);
    out += hex;
  }
  return out;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

const std::filesystem::path kExample =
    std::filesystem::path(CONDUIT_SOURCE_DIR) / "examples" / "policy.yaml";

TEST(PolicyTest, ParsesTheShippedExample) {
  auto policy = LoadPolicyFile(kExample);
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  EXPECT_EQ(policy->name, "NHS imaging AI national policy");
  EXPECT_EQ(policy->version, "2026.1");
  EXPECT_EQ(policy->hash, ReferenceSha256(ReadFile(kExample)));
  EXPECT_EQ(policy->deid.policy_name, "NHS imaging AI national policy 2026.1");
  EXPECT_EQ(policy->deid.policy_hash, policy->hash);
  EXPECT_EQ(policy->deid.options,
            (ProfileOptions{ProfileOption::kCleanDescriptors,
                            ProfileOption::kRetainLongitudinalModifiedDates}));
  ASSERT_EQ(policy->deid.safe_private.size(), 2u);
  EXPECT_EQ(policy->deid.safe_private[0].group, 0x0029);
  EXPECT_EQ(policy->deid.safe_private[0].creator, "SIEMENS CSA HEADER");
  EXPECT_EQ(policy->deid.safe_private[0].element, 0x08);
  EXPECT_EQ(policy->deid.safe_private[1].element, 0x9e);
  EXPECT_EQ(policy->deid.date_shift_min_days, 1);
  EXPECT_EQ(policy->deid.date_shift_max_days, 365);
  const BurnedInTextRules& burned = policy->deid.burned_in;
  EXPECT_TRUE(burned.refuse_burned_in_annotation);
  EXPECT_FALSE(burned.allow_ultrasound);
  ASSERT_EQ(burned.cleaning.size(), 2u);
  EXPECT_EQ(burned.cleaning[0].modality, "US");
  EXPECT_EQ(burned.cleaning[0].manufacturer, "ACME*");
  ASSERT_EQ(burned.cleaning[0].regions.size(), 1u);
  EXPECT_EQ(burned.cleaning[0].regions[0].width, 640);
  EXPECT_EQ(burned.cleaning[0].regions[0].height, 40);
  ASSERT_EQ(burned.cleaning[1].regions.size(), 2u);
  EXPECT_EQ(burned.cleaning[1].regions[1].y, 712);
  ASSERT_EQ(policy->category_allowances.count("triage"), 1u);
  EXPECT_EQ(policy->category_allowances.at("triage"),
            ProfileOptions{ProfileOption::kRetainPatientCharacteristics});
  EXPECT_EQ(policy->category_allowances.at("research"), ProfileOptions{});
  EXPECT_EQ(policy->allowed_hosting_regions, std::vector<std::string>{"UK"});
  EXPECT_EQ(policy->retention.spool, std::chrono::days(30));
  EXPECT_EQ(policy->retention.crosswalk, std::chrono::days(3650));
}

TEST(PolicyTest, BuiltInPolicyIsTheBasicProfileUkOnlyAndNamedByItsTextsHash) {
  Policy policy = BuiltInPolicy();
  EXPECT_EQ(policy.hash, ReferenceSha256(BuiltInPolicyText()));
  EXPECT_EQ(policy.hash, BuiltInPolicy().hash) << "stable from one call to the next";
  EXPECT_EQ(policy.deid.policy_hash, policy.hash);
  EXPECT_EQ(policy.deid.policy_name, "built-in national default 1");
  EXPECT_EQ(policy.deid.options, ProfileOptions{});
  EXPECT_TRUE(policy.deid.safe_private.empty());
  EXPECT_TRUE(policy.deid.burned_in.refuse_burned_in_annotation);
  EXPECT_FALSE(policy.deid.burned_in.allow_ultrasound);
  EXPECT_FALSE(policy.deid.burned_in.allow_secondary_capture);
  EXPECT_FALSE(policy.deid.burned_in.allow_scanned_documents);
  EXPECT_TRUE(policy.deid.burned_in.cleaning.empty());
  EXPECT_TRUE(policy.category_allowances.empty());
  EXPECT_EQ(policy.allowed_hosting_regions, std::vector<std::string>{"UK"});
  const RetentionPolicy defaults;
  EXPECT_EQ(policy.retention.spool, defaults.spool);
  EXPECT_EQ(policy.retention.crosswalk, defaults.crosswalk);
  EXPECT_EQ(policy.retention.audit, defaults.audit);
}

TEST(PolicyTest, BuiltInPolicyHashIsPinned) {
  EXPECT_EQ(BuiltInPolicy().hash,
            "5cb1d24aa58ebe4c825dd243b9406b1726b79668fb105ced321ff9b661b18d5d")
      << "the built-in text changed: audits name policies by this hash, so a new text is a new "
         "policy; bump its version and update this value";
}

TEST(PolicyTest, HashChangesWithAnyByteEvenAComment) {
  const std::string text = "policy: {name: p, version: '1'}\n";
  auto a = ParsePolicy(text, "a.yaml");
  auto b = ParsePolicy(text + "# reviewed\n", "b.yaml");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->hash, b->hash);
  EXPECT_EQ(a->hash, ReferenceSha256(text));
}

TEST(PolicyTest, MinimalPolicyTakesTheDefaults) {
  auto policy = ParsePolicy("policy: {name: Local, version: 3}\n", "p.yaml");
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  EXPECT_EQ(policy->deid.policy_name, "Local 3");
  EXPECT_EQ(policy->allowed_hosting_regions, std::vector<std::string>{"UK"});
  EXPECT_EQ(policy->deid.date_shift_max_days, 365);
  EXPECT_TRUE(policy->deid.burned_in.refuse_burned_in_annotation);
}

TEST(PolicyTest, AllowKindsAndDecimalNumbers) {
  auto policy = ParsePolicy(R"(policy: {name: p, version: 1}
deidentification:
  safe_private: [{group: 41, creator: "X", element: 16}]
  date_shift_days: {min: 7, max: 7}
burned_in_text:
  refuse_burned_in_annotation: false
  allow: [ultrasound, secondary_capture, scanned_documents]
hosting: {allowed_regions: []}
)",
                            "p.yaml");
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  EXPECT_EQ(policy->deid.safe_private[0].group, 41);
  EXPECT_EQ(policy->deid.safe_private[0].element, 16);
  EXPECT_EQ(policy->deid.date_shift_min_days, 7);
  EXPECT_FALSE(policy->deid.burned_in.refuse_burned_in_annotation);
  EXPECT_TRUE(policy->deid.burned_in.allow_ultrasound);
  EXPECT_TRUE(policy->deid.burned_in.allow_secondary_capture);
  EXPECT_TRUE(policy->deid.burned_in.allow_scanned_documents);
  EXPECT_TRUE(policy->allowed_hosting_regions.empty());
}

TEST(PolicyTest, PolicyWithoutNameAndVersionIsRefused) {
  auto policy = ParsePolicy("# a trust's rules\nhosting: {allowed_regions: [UK]}\n", "bad.yaml");
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(policy.status().message(), "bad.yaml:2: policy: is required (name, version)");
  auto empty = ParsePolicy("", "empty.yaml");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("empty.yaml: the policy is empty"), std::string::npos);
}

TEST(PolicyTest, MissingFileIsNotFound) {
  auto policy = LoadPolicyFile("/nonexistent/policy.yaml");
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.status().code(), StatusCode::kNotFound);
}

struct BadPolicy {
  const char* name;
  const char* yaml;      // after a first line "policy: {name: P, version: 1}" unless it has one
  const char* expected;  // substring of the error
};

class PolicyErrorTest : public ::testing::TestWithParam<BadPolicy> {};

TEST_P(PolicyErrorTest, IsRefusedWithFileLineAndKey) {
  std::string yaml = GetParam().yaml;
  if (yaml.rfind("policy:", 0) != 0) yaml = "policy: {name: P, version: 1}\n" + yaml;
  auto policy = ParsePolicy(yaml, "bad.yaml");
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(policy.status().message().find(GetParam().expected), std::string::npos)
      << policy.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PolicyErrorTest,
    ::testing::Values(
        BadPolicy{"unknown_top_key", "hostng: {allowed_regions: [UK]}\n",
                  "bad.yaml:2: hostng: unknown key"},
        BadPolicy{"unknown_nested_key", "retention:\n  spool: 30d\n  backups: 7d\n",
                  "bad.yaml:4: retention.backups: unknown key"},
        BadPolicy{"duplicate_key", "hosting: {allowed_regions: [UK]}\nhosting: {}\n",
                  "bad.yaml:3: hosting: given twice"},
        BadPolicy{"missing_version", "policy: {name: P}\n",
                  "bad.yaml:1: policy.version: is required"},
        BadPolicy{"empty", "policy:\n", "policy: is required"},
        BadPolicy{"options_not_a_list", "deidentification:\n  options: retain_uids\n",
                  "bad.yaml:3: deidentification.options: expected a list"},
        BadPolicy{"unknown_option", "deidentification:\n  options: [clean_descriptors, keep_all]\n",
                  "bad.yaml:3: deidentification.options[1]: unknown profile option 'keep_all'"},
        BadPolicy{"both_longitudinal",
                  "deidentification:\n"
                  "  options: [retain_long_full_dates, retain_long_modified_dates]\n",
                  "bad.yaml:3: deidentification.options: retain_long_full_dates and"},
        BadPolicy{"min_above_max", "deidentification:\n  date_shift_days: {min: 30, max: 10}\n",
                  "bad.yaml:3: deidentification.date_shift_days: min (30) is greater than max"},
        BadPolicy{"min_below_one", "deidentification:\n  date_shift_days:\n    min: 0\n",
                  "bad.yaml:4: deidentification.date_shift_days.min: must be at least 1"},
        BadPolicy{"shift_not_a_number", "deidentification:\n  date_shift_days: {max: year}\n",
                  "bad.yaml:3: deidentification.date_shift_days.max: expected a whole number"},
        BadPolicy{"even_group",
                  "deidentification:\n  safe_private:\n"
                  "    - {group: 0x0028, creator: X, element: 0x10}\n",
                  "bad.yaml:4: deidentification.safe_private[0].group: must be odd"},
        BadPolicy{"element_too_big",
                  "deidentification:\n  safe_private:\n"
                  "    - {group: 0x0029, creator: X, element: 0x1008}\n",
                  "bad.yaml:4: deidentification.safe_private[0].element: expected the element's"},
        BadPolicy{"element_negative",
                  "deidentification:\n  safe_private:\n"
                  "    - {group: 0x0029, creator: X, element: -1}\n",
                  "deidentification.safe_private[0].element: expected the element's"},
        BadPolicy{"missing_creator",
                  "deidentification:\n  safe_private:\n    - {group: 0x0029, element: 0x08}\n",
                  "bad.yaml:4: deidentification.safe_private[0].creator: is required"},
        BadPolicy{"group_text",
                  "deidentification:\n  safe_private:\n"
                  "    - {group: siemens, creator: X, element: 8}\n",
                  "safe_private[0].group: expected a whole number"},
        BadPolicy{"refuse_not_bool", "burned_in_text: {refuse_burned_in_annotation: maybe}\n",
                  "bad.yaml:2: burned_in_text.refuse_burned_in_annotation: expected true or false"},
        BadPolicy{"unknown_kind", "burned_in_text:\n  allow: [ultrasound, photos]\n",
                  "bad.yaml:3: burned_in_text.allow[1]: unknown kind 'photos'"},
        BadPolicy{"empty_regions",
                  "burned_in_text:\n  clean_regions:\n    - {modality: US, regions: []}\n",
                  "bad.yaml:4: burned_in_text.clean_regions[0].regions: is empty"},
        BadPolicy{"missing_regions", "burned_in_text:\n  clean_regions:\n    - {modality: US}\n",
                  "bad.yaml:4: burned_in_text.clean_regions[0].regions: is required"},
        BadPolicy{
            "negative_width",
            "burned_in_text:\n  clean_regions:\n"
            "    - modality: US\n      regions:\n        - [0, 0, -5, 40]\n",
            "bad.yaml:6: burned_in_text.clean_regions[0].regions[0]: width must be at least 1"},
        BadPolicy{"negative_x",
                  "burned_in_text:\n  clean_regions:\n    - {regions: [[-1, 0, 5, 5]]}\n",
                  "bad.yaml:4: burned_in_text.clean_regions[0].regions[0]: x is negative"},
        BadPolicy{"three_numbers",
                  "burned_in_text:\n  clean_regions:\n    - {regions: [[0, 0, 5]]}\n",
                  "regions[0]: expected [x, y, width, height]"},
        BadPolicy{"category_unknown_option",
                  "tool_categories:\n  triage: [retain_patient_characteristics]\n"
                  "  research: [retain_everything]\n",
                  "bad.yaml:4: tool_categories.research[0]: unknown profile option"},
        BadPolicy{"category_not_a_list", "tool_categories:\n  triage: retain_uids\n",
                  "bad.yaml:3: tool_categories.triage: expected a list"},
        BadPolicy{"regions_not_a_list", "hosting: {allowed_regions: UK}\n",
                  "bad.yaml:2: hosting.allowed_regions: expected a list"},
        BadPolicy{"retention_without_unit", "retention: {spool: 30}\n",
                  "bad.yaml:2: retention.spool: '30' is not a number of days"},
        BadPolicy{"retention_zero", "retention: {audit: 0d}\n",
                  "bad.yaml:2: retention.audit: expected 1d to 100000d"},
        BadPolicy{"section_not_a_map", "deidentification: [retain_uids]\n",
                  "bad.yaml:2: deidentification: expected a mapping"},
        BadPolicy{"syntax", "hosting: {allowed_regions: [UK\n", "bad.yaml:"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

// A policy for the tool checks: UK and IE hosting, triage may keep patient characteristics.
Policy TestPolicy() {
  auto policy = ParsePolicy(R"(policy: {name: X, version: 1}
deidentification: {options: [clean_descriptors]}
tool_categories:
  triage: [retain_patient_characteristics]
  research: []
hosting: {allowed_regions: [UK, IE]}
)",
                            "x.yaml");
  EXPECT_TRUE(policy.ok()) << policy.status().ToString();
  return std::move(policy).value();
}

ToolConfig RemoteTool(std::string name, std::string region) {
  ToolConfig tool;
  tool.name = std::move(name);
  tool.kind = ToolKind::kDimse;
  tool.ae_title = AeTitle("AITOOL");
  tool.host = "127.0.0.1";
  tool.hosting_region = std::move(region);
  return tool;
}

ToolConfig LocalTool(std::string name) {
  ToolConfig tool;
  tool.name = std::move(name);
  tool.kind = ToolKind::kExecutable;
  tool.command = {"/bin/true"};
  return tool;
}

Status Check(const Policy& policy, std::vector<ToolConfig> tools) {
  Config config;
  config.tools = std::move(tools);
  return CheckToolsAgainstPolicy(policy, config);
}

TEST(CheckToolsAgainstPolicyTest, RemoteToolInAnAllowedRegionPassesCaseInsensitively) {
  const Policy policy = TestPolicy();
  Status st = Check(policy, {RemoteTool("acme-cxr", "uk"), RemoteTool("eire", "IE")});
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST(CheckToolsAgainstPolicyTest, RemoteToolElsewhereIsRefusedNamingToolRegionAndPolicy) {
  Status st = Check(TestPolicy(), {RemoteTool("acme-cxr", "US")});
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(st.message(),
            "tool 'acme-cxr' is hosted in 'US' but the policy 'X 1' allows only "
            "UK, IE");
}

TEST(CheckToolsAgainstPolicyTest, RemoteToolWithoutRegionIsRefused) {
  Status st = Check(TestPolicy(), {RemoteTool("acme-cxr", "")});
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("tool 'acme-cxr' runs outside the trust but declares no "
                              "hosting_region"),
            std::string::npos)
      << st.message();
}

TEST(CheckToolsAgainstPolicyTest, LocalToolNeedsNoRegion) {
  Status st = Check(BuiltInPolicy(), {LocalTool("reference")});
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST(CheckToolsAgainstPolicyTest, PolicyWithNoRegionsRefusesEveryRemoteTool) {
  auto policy =
      ParsePolicy("policy: {name: Closed, version: 2}\nhosting: {allowed_regions: []}\n", "c.yaml");
  ASSERT_TRUE(policy.ok());
  Status st = Check(*policy, {RemoteTool("acme-cxr", "UK")});
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("allows no hosting outside the trust"), std::string::npos)
      << st.message();
}

TEST(CheckToolsAgainstPolicyTest, RetainWithinTheCategoryAllowancePasses) {
  ToolConfig tool = RemoteTool("triage-ai", "UK");
  tool.category = "triage";
  tool.retain = {"retain_patient_characteristics"};
  Status st = Check(TestPolicy(), {tool});
  EXPECT_TRUE(st.ok()) << st.ToString();
}

struct RetainCase {
  const char* name;
  const char* category;
  const char* retain;
  const char* expected;
};

class RetainRefusedTest : public ::testing::TestWithParam<RetainCase> {};

TEST_P(RetainRefusedTest, IsAFailedPreconditionNamingTheTool) {
  ToolConfig tool = LocalTool("tool-a");
  tool.category = GetParam().category;
  tool.retain = {GetParam().retain};
  Status st = Check(TestPolicy(), {LocalTool("fine"), tool});
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find(GetParam().expected), std::string::npos) << st.message();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RetainRefusedTest,
    ::testing::Values(
        RetainCase{"unknown_option", "triage", "retain_everything",
                   "tool 'tool-a' asks to retain 'retain_everything', which is not a profile "
                   "option"},
        RetainCase{"outside_allowance", "triage", "retain_uids",
                   "tool 'tool-a' asks for retain_uids but the policy 'X 1' allows category "
                   "'triage' only retain_patient_characteristics"},
        RetainCase{"empty_allowance", "research", "retain_uids",
                   "allows category 'research' no extra options"},
        RetainCase{"no_category", "", "retain_patient_characteristics",
                   "tool 'tool-a' asks for retain_patient_characteristics but has no category"},
        RetainCase{"unknown_category", "screening", "retain_patient_characteristics",
                   "category 'screening', which the policy 'X 1' does not define"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(SettingsForToolTest, AddsTheToolsRetainOptionsToThePolicys) {
  const Policy policy = TestPolicy();
  ToolConfig tool = RemoteTool("triage-ai", "UK");
  tool.category = "triage";
  tool.retain = {"retain_patient_characteristics"};
  DeidSettings settings = SettingsForTool(policy, tool);
  EXPECT_EQ(settings.options, (ProfileOptions{ProfileOption::kCleanDescriptors,
                                              ProfileOption::kRetainPatientCharacteristics}));
  EXPECT_EQ(settings.policy_name, "X 1");
  EXPECT_EQ(settings.policy_hash, policy.hash);
  EXPECT_EQ(policy.deid.options, ProfileOptions{ProfileOption::kCleanDescriptors})
      << "the policy itself is unchanged";
}

TEST(SettingsForToolTest, ToolWithoutRetainGetsThePolicySettings) {
  auto policy = LoadPolicyFile(kExample);
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  DeidSettings settings = SettingsForTool(*policy, LocalTool("reference"));
  EXPECT_EQ(settings.options, policy->deid.options);
  EXPECT_EQ(settings.safe_private.size(), 2u);
  EXPECT_EQ(settings.burned_in.cleaning.size(), 2u);
  EXPECT_EQ(settings.policy_name, "NHS imaging AI national policy 2026.1");
}

}  // namespace
}  // namespace conduit
