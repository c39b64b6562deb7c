#include "evidence/tool_manifest.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>

#include "core/sha256.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// A complete DIMSE manifest; line numbers below refer to it.
constexpr const char* kDimse = R"(name: acme-chest-ct
vendor: Acme Imaging Ltd
version: 2.3.1
description: Lung nodules.
regulatory:
  marking: UKCA
  class: IIa
  notified_body: "0000 Example Body"
  certificate: UKCA-1
intended_use:
  condition: pulmonary nodules
  body_parts: [CHEST]
  population: adults
  setting: secondary care
  user: radiologist
inputs:
  modalities: [CT]
  body_parts: [CHEST, THORAX]
  sop_classes: [1.2.840.10008.5.1.4.1.1.2]
  min_series:
    slices: 80
    slice_thickness_max_mm: 2.5
outputs: [sr, seg, gsps, kos, sc, parametric_map, triage_score]
protocol: dimse
endpoint:
  ae_title: ACMECHEST
  host: ai.acme.example
  port: 11112
hosting_region: UK
category: triage
retain: [retain_patient_characteristics]
expected_turnaround: 10m
support:
  name: Acme desk
  email: support@acme.example
  phone: "+44 20 7946 0000"
)";

// Replaces the first occurrence of `from` (a whole line's text) in `text`.
std::string With(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

std::string Error(const std::string& yaml) {
  auto m = ParseToolManifest(yaml, "m.yaml");
  EXPECT_FALSE(m.ok()) << yaml;
  if (m.ok()) return "";
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  return m.status().message();
}

TEST(ToolManifestTest, ReadsEveryField) {
  auto parsed = ParseToolManifest(kDimse, "m.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const ToolManifest& m = *parsed;
  EXPECT_EQ(m.name, "acme-chest-ct");
  EXPECT_EQ(m.vendor, "Acme Imaging Ltd");
  EXPECT_EQ(m.version, "2.3.1");
  EXPECT_EQ(m.description, "Lung nodules.");
  EXPECT_EQ(m.regulatory.marking, RegulatoryMarking::kUkca);
  EXPECT_EQ(m.regulatory.device_class, "IIa");
  EXPECT_EQ(m.regulatory.notified_body, "0000 Example Body");
  EXPECT_EQ(m.regulatory.certificate, "UKCA-1");
  EXPECT_EQ(m.intended_use.condition, "pulmonary nodules");
  EXPECT_EQ(m.intended_use.body_parts, std::vector<std::string>{"CHEST"});
  EXPECT_EQ(m.intended_use.population, "adults");
  EXPECT_EQ(m.intended_use.setting, "secondary care");
  EXPECT_EQ(m.intended_use.user, "radiologist");
  EXPECT_EQ(m.inputs.modalities, std::vector<std::string>{"CT"});
  EXPECT_EQ(m.inputs.body_parts, (std::vector<std::string>{"CHEST", "THORAX"}));
  EXPECT_EQ(m.inputs.sop_classes, std::vector<std::string>{"1.2.840.10008.5.1.4.1.1.2"});
  EXPECT_EQ(m.inputs.min_series.slices, 80);
  EXPECT_DOUBLE_EQ(m.inputs.min_series.slice_thickness_max_mm, 2.5);
  EXPECT_EQ(m.outputs, (std::vector<ToolOutput>{
                           ToolOutput::kSr, ToolOutput::kSeg, ToolOutput::kGsps, ToolOutput::kKos,
                           ToolOutput::kSc, ToolOutput::kParametricMap, ToolOutput::kTriageScore}));
  EXPECT_EQ(m.protocol, ToolProtocol::kDimse);
  EXPECT_EQ(m.endpoint.ae_title, "ACMECHEST");
  EXPECT_EQ(m.endpoint.host, "ai.acme.example");
  EXPECT_EQ(m.endpoint.port, 11112);
  EXPECT_EQ(m.hosting_region, "UK");
  EXPECT_EQ(m.category, "triage");
  EXPECT_EQ(m.retain, std::vector<std::string>{"retain_patient_characteristics"});
  EXPECT_TRUE(m.deidentify) << "a tool outside the trust is always de-identified";
  EXPECT_EQ(m.expected_turnaround, milliseconds(600'000));
  EXPECT_FALSE(m.timeout.has_value());
  EXPECT_EQ(m.support.name, "Acme desk");
  EXPECT_EQ(m.support.email, "support@acme.example");
  EXPECT_EQ(m.support.phone, "+44 20 7946 0000");
  EXPECT_EQ(m.hash, Sha256Hex(kDimse));
}

TEST(ToolManifestTest, ErrorsNameTheLineAndTheKey) {
  struct Case {
    std::string yaml;
    std::string message;
  };
  const std::string d = kDimse;
  const std::vector<Case> cases = {
      {With(d, "vendor: Acme Imaging Ltd\n", "vendor: Acme\nsupplier: x\n"),
       "m.yaml:3: supplier: unknown key"},
      {With(d, "name: acme-chest-ct\n", ""), "m.yaml:1: name: is required"},
      {With(d, "name: acme-chest-ct", "name: acme chest"), "m.yaml:1: name: 'acme chest' must be"},
      {With(d, "version: 2.3.1", "version: \"\""), "m.yaml:3: version: is required"},
      {With(d, "version: 2.3.1", "version: 2/3"), "m.yaml:3: version: '2/3' must be"},
      {With(d, "  marking: UKCA", "  marking: FDA"),
       "m.yaml:6: regulatory.marking: unknown value 'FDA' (expected one of: CE, UKCA, none)"},
      {With(d, "  class: IIa", "  class: IIc"), "m.yaml:7: regulatory.class: unknown class 'IIc'"},
      {With(d, "  class: IIa\n", ""), "m.yaml:6: regulatory.class: is required for a marked"},
      {With(d, "  notified_body: \"0000 Example Body\"\n", ""),
       "m.yaml:6: regulatory.notified_body: is required for class IIa"},
      {With(d, "  condition: pulmonary nodules\n", ""),
       "m.yaml:11: intended_use.condition: is required"},
      {With(d, "  body_parts: [CHEST]", "  body_parts: []"),
       "m.yaml:12: intended_use.body_parts: needs at least one item"},
      {With(d, "  user: radiologist\n", "  user: radiologist\n  age: 3\n"),
       "m.yaml:16: intended_use.age: unknown key"},
      {With(d, "  modalities: [CT]", "  modalities: [ct]"),
       "m.yaml:17: inputs.modalities[0]: 'ct' is not a DICOM modality"},
      {With(d, "  sop_classes: [1.2.840.10008.5.1.4.1.1.2]", "  sop_classes: [CT Image]"),
       "m.yaml:19: inputs.sop_classes[0]: 'CT Image' is not a DICOM UID"},
      {With(d, "    slices: 80", "    slices: many"),
       "m.yaml:21: inputs.min_series.slices: expected a whole number"},
      {With(d, "    slice_thickness_max_mm: 2.5", "    slice_thickness_max_mm: -1"),
       "m.yaml:22: inputs.min_series.slice_thickness_max_mm: out of range"},
      {With(d, "outputs: [sr, seg, gsps, kos, sc, parametric_map, triage_score]",
            "outputs: [sr, pdf]"),
       "m.yaml:23: outputs[1]: unknown output 'pdf'"},
      {With(d, "outputs: [sr, seg, gsps, kos, sc, parametric_map, triage_score]",
            "outputs: [sr, sr]"),
       "m.yaml:23: outputs[1]: 'sr' given twice"},
      {With(d, "outputs: [sr, seg, gsps, kos, sc, parametric_map, triage_score]\n", ""),
       "m.yaml:1: outputs: is required"},
      {With(d, "protocol: dimse", "protocol: ftp"),
       "m.yaml:24: protocol: unknown value 'ftp' (expected one of: aiw-i, dicomweb, dimse, "
       "executable, ups-rs)"},
      {With(d, "  ae_title: ACMECHEST", "  ae_title: ACME-CHEST-TOOL-NODE-1"),
       "m.yaml:26: endpoint.ae_title: an AE title has 1 to 16 characters"},
      {With(d, "  port: 11112", "  port: 70000"), "m.yaml:28: endpoint.port: out of range"},
      {With(d, "  port: 11112", "  url: https://x"),
       "m.yaml:28: endpoint.url: unknown key (expected one of: ae_title, host, port)"},
      {With(d, "hosting_region: UK\n", ""),
       "m.yaml:1: hosting_region: is required: a dimse tool runs outside the trust"},
      {With(d, "retain: [retain_patient_characteristics]", "retain: retain_everything"),
       "m.yaml:31: retain: expected a list"},
      {With(d, "expected_turnaround: 10m", "expected_turnaround: soon"),
       "m.yaml:32: expected_turnaround: 'soon' is not a duration"},
      {With(d, "expected_turnaround: 10m\n", "expected_turnaround: 10m\ntimeout: 1m\n"),
       "m.yaml:33: timeout: is shorter than expected_turnaround"},
      {With(d, "expected_turnaround: 10m\n", "expected_turnaround: 10m\ndeidentify: false\n"),
       "m.yaml:33: deidentify: a tool outside the trust is always de-identified"},
      {With(d, "  email: support@acme.example", "  email: support"),
       "m.yaml:35: support.email: 'support' is not an email address"},
      {With(d, "  email: support@acme.example\n  phone: \"+44 20 7946 0000\"\n", ""),
       "m.yaml:34: support: needs an email or a phone number"},
      {"name: [unclosed", "m.yaml:1: end of sequence flow not found"},
      {"", "m.yaml: the manifest is empty"},
      {"- a\n- b\n", "m.yaml:1: (top level): expected a mapping"},
  };
  for (const Case& c : cases) {
    const std::string message = Error(c.yaml);
    EXPECT_EQ(message.rfind(c.message, 0), 0u) << "got: " << message << "\nwant: " << c.message;
  }
}

TEST(ToolManifestTest, MarkingNoneTakesNoClassOrBody) {
  const std::string none =
      With(With(With(With(kDimse, "  marking: UKCA", "  marking: none"), "  class: IIa\n", ""),
                "  notified_body: \"0000 Example Body\"\n", ""),
           "  certificate: UKCA-1\n", "");
  auto m = ParseToolManifest(none, "m.yaml");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->regulatory.marking, RegulatoryMarking::kNone);
  EXPECT_EQ(Error(With(none, "  marking: none", "  marking: none\n  class: I")),
            "m.yaml:7: regulatory.class: given for a tool with marking 'none'");
  // Class I (self-certified) needs no notified body.
  auto class_one = ParseToolManifest(With(With(kDimse, "  class: IIa", "  class: I"),
                                          "  notified_body: \"0000 Example Body\"\n", ""),
                                     "m.yaml");
  EXPECT_TRUE(class_one.ok()) << class_one.status().ToString();
}

ToolManifest MustParse(const std::string& yaml) {
  auto m = ParseToolManifest(yaml, "m.yaml");
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : ToolManifest{};
}

std::string Executable() {
  return With(With(With(kDimse, "protocol: dimse", "protocol: executable"),
                   "  ae_title: ACMECHEST\n  host: ai.acme.example\n  port: 11112\n",
                   "  command: [/opt/acme/run, --fast]\n"),
              "hosting_region: UK\n", "");
}

TEST(ToolManifestTest, ToToolConfigPerProtocol) {
  auto dimse = ToToolConfig(MustParse(kDimse));
  ASSERT_TRUE(dimse.ok()) << dimse.status().ToString();
  EXPECT_EQ(dimse->name, "acme-chest-ct");
  EXPECT_EQ(dimse->kind, ToolKind::kDimse);
  EXPECT_EQ(dimse->ae_title.str(), "ACMECHEST");
  EXPECT_EQ(dimse->host, "ai.acme.example");
  EXPECT_EQ(dimse->port, 11112);
  EXPECT_EQ(dimse->timeout, milliseconds(1'200'000)) << "twice the expected turnaround";
  EXPECT_EQ(dimse->expected_turnaround, milliseconds(600'000)) << "alerts past it";
  EXPECT_EQ(dimse->hosting_region, "UK");
  EXPECT_EQ(dimse->category, "triage");
  EXPECT_EQ(dimse->retain, std::vector<std::string>{"retain_patient_characteristics"});
  EXPECT_TRUE(dimse->Deidentified());

  auto exe = ToToolConfig(MustParse(With(Executable(), "expected_turnaround: 10m",
                                         "expected_turnaround: 1m\n"
                                         "timeout: 3m")));
  ASSERT_TRUE(exe.ok()) << exe.status().ToString();
  EXPECT_EQ(exe->kind, ToolKind::kExecutable);
  EXPECT_EQ(exe->command, (std::vector<std::string>{"/opt/acme/run", "--fast"}));
  EXPECT_EQ(exe->timeout, milliseconds(180'000));
  EXPECT_FALSE(exe->deidentify) << "a local tool sees identified data unless it asks";
  auto exe_deid = ToToolConfig(MustParse(With(Executable(), "category: triage",
                                              "deidentify: true\n"
                                              "category: triage")));
  ASSERT_TRUE(exe_deid.ok());
  EXPECT_TRUE(exe_deid->deidentify);

  for (const char* protocol : {"dicomweb", "aiw-i", "ups-rs"}) {
    const std::string yaml =
        With(With(kDimse, "protocol: dimse", std::string("protocol: ") + protocol),
             "  ae_title: ACMECHEST\n  host: ai.acme.example\n  port: 11112\n",
             "  url: https://ai.acme.example/dicom-web\n");
    ToolManifest m = MustParse(yaml);
    EXPECT_EQ(m.endpoint.url, "https://ai.acme.example/dicom-web");
    EXPECT_EQ(Error(With(yaml, "  url: https://ai.acme.example/dicom-web", "  url: ftp://x")),
              "m.yaml:26: endpoint.url: expected an http:// or https:// URL");
    EXPECT_EQ(Error(With(yaml, "  url: https://ai.acme.example/dicom-web",
                         "  url: https://ai.acme.example:0/x")),
              "m.yaml:26: endpoint.url: URL 'https://ai.acme.example:0/x': the port must be a "
              "number in 1..65535");
  }

  const std::string web_yaml =
      With(With(kDimse, "protocol: dimse", "protocol: dicomweb"),
           "  ae_title: ACMECHEST\n  host: ai.acme.example\n  port: 11112\n",
           "  url: https://ai.acme.example/dicom-web/\n");
  auto web = ToToolConfig(MustParse(web_yaml));
  ASSERT_TRUE(web.ok()) << web.status().ToString();
  EXPECT_EQ(web->kind, ToolKind::kDicomweb);
  EXPECT_EQ(web->url, "https://ai.acme.example/dicom-web");
  EXPECT_TRUE(web->auth_token_file.empty()) << "the trust's config supplies the token";
  EXPECT_EQ(web->poll_interval.count(), 0);
  EXPECT_EQ(web->timeout, milliseconds(1'200'000));
  EXPECT_TRUE(web->Deidentified());

  auto aiw = ToToolConfig(MustParse(With(web_yaml, "protocol: dicomweb", "protocol: aiw-i")));
  ASSERT_TRUE(aiw.ok()) << aiw.status().ToString();
  EXPECT_EQ(aiw->kind, ToolKind::kWorklist);
  EXPECT_TRUE(aiw->Deidentified());
  EXPECT_TRUE(aiw->auth_token_file.empty()) << "the trust's config supplies the token";

  // A pull-model tool needs no endpoint: its performer comes to Conduit.
  const std::string pull_yaml =
      With(With(kDimse, "protocol: dimse", "protocol: ups-rs"),
           "endpoint:\n  ae_title: ACMECHEST\n  host: ai.acme.example\n  port: 11112\n", "");
  ToolManifest pull = MustParse(pull_yaml);
  EXPECT_EQ(pull.protocol, ToolProtocol::kAiwI);
  EXPECT_STREQ(ToolProtocolName(pull.protocol), "ups-rs");
  EXPECT_EQ(nlohmann::json::parse(ToolManifestJson(pull))["protocol"], "ups-rs");
  auto pull_tool = ToToolConfig(pull);
  ASSERT_TRUE(pull_tool.ok()) << pull_tool.status().ToString();
  EXPECT_EQ(pull_tool->kind, ToolKind::kWorklist);
  EXPECT_EQ(pull_tool->expected_turnaround, pull.expected_turnaround);
}

TEST(ToolManifestTest, CanonicalJsonAndHashAreStable) {
  ToolManifest a = MustParse(kDimse);
  ToolManifest b = MustParse(kDimse);
  EXPECT_EQ(a.hash, b.hash);
  EXPECT_EQ(ToolManifestJson(a), ToolManifestJson(b));
  // Any byte changes the hash (a comment too), not the canonical form.
  ToolManifest c = MustParse(std::string(kDimse) + "# reviewed\n");
  EXPECT_NE(c.hash, a.hash);
  auto ja = nlohmann::json::parse(ToolManifestJson(a));
  auto jc = nlohmann::json::parse(ToolManifestJson(c));
  ja.erase("hash");
  jc.erase("hash");
  EXPECT_EQ(ja, jc);

  EXPECT_EQ(ja["protocol"], "dimse");
  EXPECT_EQ(ja["endpoint"]["ae_title"], "ACMECHEST");
  EXPECT_EQ(ja["regulatory"]["class"], "IIa");
  EXPECT_EQ(ja["inputs"]["min_series"]["slices"], 80);
  EXPECT_EQ(ja["outputs"].size(), 7u);
  EXPECT_EQ(ja["expected_turnaround_ms"], 600000);
  EXPECT_TRUE(ja["timeout_ms"].is_null());
  EXPECT_EQ(ja["support"]["phone"], "+44 20 7946 0000");
}

// The registry keeps the canonical JSON form; the DPIA of a registered tool is made from the
// manifest read back from it, which must be the manifest that was registered.
TEST(ToolManifestTest, TheCanonicalJsonReadsBackAsTheSameManifest) {
  const std::string executable_with_priors =
      With(Executable(), "expected_turnaround: 10m\n",
           "expected_turnaround: 10m\ntimeout: 25m\npriors:\n  count: 2\n  max_age: 720h\n"
           "  comparable: {same_modality: false, same_body_part: true, study_description: "
           "\"*CHEST*\"}\n  time_limit: 90s\n  on_missing: wait\n");
  std::vector<std::string> texts = {
      kDimse, executable_with_priors,
      With(With(kDimse, "protocol: dimse", "protocol: ups-rs"),
           "endpoint:\n  ae_title: ACMECHEST\n  host: ai.acme.example\n  port: 11112\n", ""),
      With(With(kDimse,
                "marking: UKCA\n  class: IIa\n  notified_body: \"0000 Example Body\"\n"
                "  certificate: UKCA-1\n",
                "marking: none\n"),
           "category: triage\n", "category: triage\ndeidentify: true\n")};
  for (const auto& entry :
       fs::directory_iterator(fs::path(CONDUIT_SOURCE_DIR) / "examples" / "tools")) {
    std::ifstream in(entry.path());
    texts.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  for (const std::string& text : texts) {
    const ToolManifest parsed = MustParse(text);
    const std::string canonical = ToolManifestJson(parsed);
    auto back = ToolManifestFromJson(canonical);
    ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << canonical;
    EXPECT_EQ(ToolManifestJson(*back), canonical);
    EXPECT_EQ(back->hash, parsed.hash);
    EXPECT_EQ(back->timeout, parsed.timeout);
    EXPECT_EQ(back->priors.on_missing, parsed.priors.on_missing);
    EXPECT_EQ(back->endpoint.command, parsed.endpoint.command);
  }
  const ToolManifest with_priors =
      *ToolManifestFromJson(ToolManifestJson(MustParse(executable_with_priors)));
  EXPECT_EQ(with_priors.priors.count, 2);
  EXPECT_EQ(with_priors.priors.max_age, std::chrono::hours(720));
  EXPECT_FALSE(with_priors.priors.same_modality);
  EXPECT_EQ(with_priors.priors.study_description, "*CHEST*");
  EXPECT_EQ(with_priors.priors.on_missing, PriorsOnMissing::kWait);
  EXPECT_EQ(with_priors.timeout, std::chrono::minutes(25));

  // A damaged registry row is an internal error that says so, never a half-read manifest.
  auto damaged = nlohmann::json::parse(ToolManifestJson(MustParse(kDimse)));
  damaged["protocol"] = "carrier-pigeon";
  for (const std::string& bad :
       {std::string("not json"), std::string("{}"), damaged.dump(),
        With(ToolManifestJson(MustParse(kDimse)), "\"slices\":80", "\"slices\":\"80\"")}) {
    auto read = ToolManifestFromJson(bad);
    ASSERT_FALSE(read.ok()) << bad;
    EXPECT_EQ(read.status().code(), StatusCode::kInternal);
    EXPECT_NE(read.status().message().find("not in canonical form"), std::string::npos);
  }
}

TEST(ToolManifestTest, PolicyChecksRegionAndRetainOptions) {
  auto policy = ParsePolicy(R"(policy: {name: test, version: "1"}
tool_categories:
  triage: [retain_patient_characteristics]
hosting: {allowed_regions: [UK]}
)",
                            "p.yaml");
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  EXPECT_TRUE(CheckManifestAgainstPolicy(*policy, MustParse(kDimse)).ok());

  Status abroad = CheckManifestAgainstPolicy(
      *policy, MustParse(With(kDimse, "hosting_region: UK", "hosting_region: US")));
  EXPECT_EQ(abroad.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(abroad.message().find("hosted in 'US'"), std::string::npos) << abroad.message();

  Status too_much = CheckManifestAgainstPolicy(
      *policy, MustParse(With(kDimse, "retain: [retain_patient_characteristics]",
                              "retain: [retain_device_identity]")));
  EXPECT_EQ(too_much.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(too_much.message().find("retain_device_identity"), std::string::npos);

  // A local executable has no hosting region to check.
  EXPECT_TRUE(CheckManifestAgainstPolicy(*policy, MustParse(Executable())).ok());
  // The built-in policy grants no category anything.
  EXPECT_EQ(CheckManifestAgainstPolicy(BuiltInPolicy(), MustParse(kDimse)).code(),
            StatusCode::kFailedPrecondition);
}

TEST(ToolManifestTest, ShippedExamplesParse) {
  const fs::path dir = fs::path(CONDUIT_SOURCE_DIR) / "examples" / "tools";
  auto reference = LoadToolManifestFile(dir / "reference-ct.yaml");
  ASSERT_TRUE(reference.ok()) << reference.status().ToString();
  EXPECT_EQ(reference->name, "reference");
  EXPECT_EQ(reference->protocol, ToolProtocol::kExecutable);
  EXPECT_EQ(reference->regulatory.marking, RegulatoryMarking::kNone);
  EXPECT_TRUE(ToToolConfig(*reference).ok());
  EXPECT_TRUE(CheckManifestAgainstPolicy(BuiltInPolicy(), *reference).ok());

  auto acme = LoadToolManifestFile(dir / "acme-chest-dimse.yaml");
  ASSERT_TRUE(acme.ok()) << acme.status().ToString();
  EXPECT_EQ(acme->protocol, ToolProtocol::kDimse);
  EXPECT_EQ(acme->regulatory.marking, RegulatoryMarking::kUkca);
  auto acme_tool = ToToolConfig(*acme);
  ASSERT_TRUE(acme_tool.ok());
  EXPECT_EQ(acme_tool->kind, ToolKind::kDimse);
  auto example_policy = LoadPolicyFile(fs::path(CONDUIT_SOURCE_DIR) / "examples" / "policy.yaml");
  ASSERT_TRUE(example_policy.ok()) << example_policy.status().ToString();
  Status checked = CheckManifestAgainstPolicy(*example_policy, *acme);
  EXPECT_TRUE(checked.ok()) << checked.ToString();

  EXPECT_EQ(LoadToolManifestFile(dir / "no-such.yaml").status().code(), StatusCode::kNotFound);
}

class ResolveToolManifestsTest : public testing::Test {
 protected:
  ResolveToolManifestsTest() {
    std::random_device rd;
    dir_ = fs::temp_directory_path() /
           ("conduit-manifest-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    fs::create_directories(dir_);
  }
  ~ResolveToolManifestsTest() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return dir_ / name;
  }
  fs::path dir_;
};

TEST_F(ResolveToolManifestsTest, AConfigToolNamedByItsManifestIsFilledFromIt) {
  Write("acme.yaml", kDimse);
  const fs::path config_file = Write("conduit.yaml", R"(tools:
  - manifest: acme.yaml
  - {name: local, manifest: acme.yaml}
routes:
  - {name: chest, tool: acme-chest-ct}
  - {name: other, tool: local}
)");
  auto config = LoadConfigFile(config_file);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_EQ(config->tools.size(), 2u);
  EXPECT_EQ(config->tools[0].manifest_file, dir_ / "acme.yaml") << "relative to the config";
  Status resolved = ResolveToolManifests(*config, config_file.string());
  ASSERT_TRUE(resolved.ok()) << resolved.ToString();
  EXPECT_EQ(config->tools[0].name, "acme-chest-ct");
  EXPECT_EQ(config->tools[0].kind, ToolKind::kDimse);
  EXPECT_EQ(config->tools[0].ae_title.str(), "ACMECHEST");
  EXPECT_EQ(config->tools[1].name, "local") << "the entry's name wins";
  EXPECT_EQ(config->tools[1].port, 11112);
  Status again = ResolveToolManifests(*config, config_file.string());
  EXPECT_TRUE(again.ok()) << again.ToString();
  EXPECT_EQ(config->tools[0].name, "acme-chest-ct");
}

TEST_F(ResolveToolManifestsTest, ARouteToAToolNoManifestNamesIsRefusedOnceResolved) {
  Write("acme.yaml", kDimse);
  const fs::path config_file = Write("conduit.yaml", R"(tools:
  - manifest: acme.yaml
routes:
  - {name: chest, tool: acme-chest}
)");
  auto config = LoadConfigFile(config_file);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  Status resolved = ResolveToolManifests(*config, config_file.string());
  EXPECT_EQ(resolved.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(resolved.message().find("names tool 'acme-chest'"), std::string::npos)
      << resolved.message();
}

TEST_F(ResolveToolManifestsTest, ABadManifestIsReportedWithItsOwnLine) {
  Write("bad.yaml", With(kDimse, "protocol: dimse", "protocol: carrier-pigeon"));
  const fs::path config_file = Write("conduit.yaml", "tools:\n  - manifest: bad.yaml\n");
  auto config = LoadConfigFile(config_file);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  Status resolved = ResolveToolManifests(*config, config_file.string());
  EXPECT_EQ(resolved.message().rfind((dir_ / "bad.yaml").string() + ":24: protocol:", 0), 0u)
      << resolved.message();
}

TEST_F(ResolveToolManifestsTest, ADicomwebManifestKeepsTheTrustsDicomwebSettings) {
  Write("web.yaml", With(With(kDimse, "protocol: dimse", "protocol: dicomweb"),
                         "  ae_title: ACMECHEST\n  host: ai.acme.example\n  port: 11112\n",
                         "  url: https://ai.acme.example/dicom-web\n"));
  const fs::path config_file = Write("conduit.yaml", R"(tools:
  - manifest: web.yaml
    dicomweb: {auth_token_file: secrets/acme.token, chunk_bytes: 1048576, poll_interval: 1m}
  - {name: plain, manifest: web.yaml}
)");
  auto config = LoadConfigFile(config_file);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  Status resolved = ResolveToolManifests(*config, config_file.string());
  ASSERT_TRUE(resolved.ok()) << resolved.ToString();
  const ToolConfig& acme = config->tools[0];
  EXPECT_EQ(acme.kind, ToolKind::kDicomweb);
  EXPECT_EQ(acme.url, "https://ai.acme.example/dicom-web");
  EXPECT_EQ(acme.auth_token_file, dir_ / "secrets" / "acme.token") << "relative to the config";
  EXPECT_EQ(acme.chunk_bytes, 1048576u);
  EXPECT_EQ(acme.poll_interval, std::chrono::minutes(1));
  EXPECT_TRUE(config->tools[1].auth_token_file.empty());
  EXPECT_EQ(config->tools[1].chunk_bytes, ToolConfig{}.chunk_bytes);
  ASSERT_TRUE(ResolveToolManifests(*config, config_file.string()).ok());
  EXPECT_EQ(config->tools[0].poll_interval, std::chrono::minutes(1)) << "idempotent";
}

TEST_F(ResolveToolManifestsTest, TheTrustsTlsSettingsGoWithAnHttpsEndpointOnly) {
  const std::string web = With(kDimse, "protocol: dimse", "protocol: dicomweb");
  const std::string dimse_endpoint =
      "  ae_title: ACMECHEST\n  host: ai.acme.example\n  port: 11112\n";
  Write("https.yaml", With(web, dimse_endpoint, "  url: https://ai.acme.example/dicom-web\n"));
  Write("http.yaml", With(web, dimse_endpoint, "  url: http://ai.acme.example/dicom-web\n"));
  const fs::path config_file = Write("conduit.yaml", R"(tools:
  - manifest: https.yaml
    dicomweb: {tls: {ca_file: certs/acme-ca.pem}}
)");
  auto config = LoadConfigFile(config_file);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_TRUE(ResolveToolManifests(*config, config_file.string()).ok());
  EXPECT_EQ(config->tools[0].tls.ca_file, dir_ / "certs" / "acme-ca.pem");

  const fs::path plain = Write(
      "plain.yaml", "tools:\n  - {manifest: http.yaml, dicomweb: {tls: {ca_file: ca.pem}}}\n");
  auto loaded = LoadConfigFile(plain);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  Status resolved = ResolveToolManifests(*loaded, plain.string());
  EXPECT_EQ(resolved.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(resolved.message().find("dicomweb.tls applies to an https url"), std::string::npos)
      << resolved.message();
}

TEST_F(ResolveToolManifestsTest, ADimseManifestTakesTheTrustsDicomTls) {
  Write("acme.yaml", kDimse);
  const fs::path config_file = Write(
      "conduit.yaml", "tools:\n  - {manifest: acme.yaml, tls: {ca_file: certs/acme-ca.pem}}\n");
  auto config = LoadConfigFile(config_file);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_TRUE(ResolveToolManifests(*config, config_file.string()).ok());
  EXPECT_EQ(config->tools[0].kind, ToolKind::kDimse);
  EXPECT_TRUE(config->tools[0].tls.enabled);
  EXPECT_EQ(config->tools[0].tls.ca_file, dir_ / "certs" / "acme-ca.pem");

  const std::string pull = With(With(kDimse, "protocol: dimse", "protocol: ups-rs"),
                                "endpoint:\n  ae_title: ACMECHEST\n  host: ai.acme.example\n"
                                "  port: 11112\n",
                                "");
  Write("pull.yaml", pull);
  const fs::path bad = Write("bad.yaml",
                             "tools:\n  - {manifest: pull.yaml, tls: {},\n"
                             "     worklist: {auth_token_file: t}}\n");
  auto loaded = LoadConfigFile(bad);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  Status resolved = ResolveToolManifests(*loaded, bad.string());
  EXPECT_EQ(resolved.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(resolved.message().find("tls is for dimse tools"), std::string::npos)
      << resolved.message();
}

TEST_F(ResolveToolManifestsTest, ADicomwebSectionNeedsADicomwebManifest) {
  Write("acme.yaml", kDimse);
  const fs::path config_file =
      Write("conduit.yaml", "tools:\n  - {manifest: acme.yaml, dicomweb: {poll_interval: 1m}}\n");
  auto config = LoadConfigFile(config_file);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  Status resolved = ResolveToolManifests(*config, config_file.string());
  EXPECT_EQ(resolved.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(resolved.message().find("says protocol dimse"), std::string::npos)
      << resolved.message();

  const fs::path with_url =
      Write("conduit2.yaml", "tools:\n  - manifest: acme.yaml\n    dicomweb: {url: 'http://x'}\n");
  auto refused = LoadConfigFile(with_url);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find(":3: tools[0].dicomweb.url: comes from the manifest"),
            std::string::npos)
      << refused.status().message();
}

TEST_F(ResolveToolManifestsTest, AUpsRsManifestTakesTheTrustsWorklistSettings) {
  const std::string pull = With(With(kDimse, "protocol: dimse", "protocol: ups-rs"),
                                "endpoint:\n  ae_title: ACMECHEST\n  host: ai.acme.example\n"
                                "  port: 11112\n",
                                "");
  Write("pull.yaml", pull);
  Write("acme.yaml", kDimse);
  const fs::path config_file = Write("conduit.yaml", R"(tools:
  - manifest: pull.yaml
    worklist: {auth_token_file: secrets/pull.token, priority: LOW}
)");
  auto config = LoadConfigFile(config_file);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_TRUE(ResolveToolManifests(*config, config_file.string()).ok());
  const ToolConfig& tool = config->tools[0];
  EXPECT_EQ(tool.kind, ToolKind::kWorklist);
  EXPECT_EQ(tool.auth_token_file, dir_ / "secrets" / "pull.token");
  EXPECT_EQ(tool.priority, "LOW");
  ASSERT_TRUE(ResolveToolManifests(*config, config_file.string()).ok());
  EXPECT_EQ(config->tools[0].priority, "LOW") << "idempotent";

  for (const auto& [entry, error] : std::vector<std::pair<std::string, std::string>>{
           {"{manifest: pull.yaml}", "needs a worklist section"},
           {"{manifest: acme.yaml, worklist: {auth_token_file: t}}", "says protocol dimse"}}) {
    const fs::path bad = Write("bad.yaml", "tools:\n  - " + entry + "\n");
    auto loaded = LoadConfigFile(bad);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    Status resolved = ResolveToolManifests(*loaded, bad.string());
    EXPECT_EQ(resolved.code(), StatusCode::kInvalidArgument) << entry;
    EXPECT_NE(resolved.message().find(error), std::string::npos) << resolved.message();
  }
}

TEST_F(ResolveToolManifestsTest, AManifestEntryTakesNoInlineSettings) {
  const fs::path config_file =
      Write("conduit.yaml", "tools:\n  - manifest: acme.yaml\n    port: 104\n");
  auto config = LoadConfigFile(config_file);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message().rfind(config_file.string() + ":3: tools[0].port: comes from "
                                                                   "the manifest",
                                            0),
            0u)
      << config.status().message();
}

}  // namespace
}  // namespace conduit
