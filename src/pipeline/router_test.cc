#include "pipeline/router.h"

#include <gtest/gtest.h>

namespace conduit {
namespace {

struct GlobCase {
  std::string pattern;
  std::string text;
  bool match;
};

TEST(GlobMatchTest, Table) {
  const std::vector<GlobCase> cases = {
      {"CT", "CT", true},
      {"ct", "CT", true},
      {"CT", "ct", true},
      {"CT", "MR", false},
      {"CT", "CTA", false},
      {"*", "", true},
      {"*", "anything", true},
      {"", "", true},
      {"", "x", false},
      {"?", "", false},
      {"?", "x", true},
      {"C?", "CT", true},
      {"C?", "C", false},
      {"*CHEST*", "CT CHEST W/O", true},
      {"*chest*", "CT Chest", true},
      {"*CHEST*", "ABDOMEN", false},
      {"CT*", "CT", true},
      {"*T", "CT", true},
      {"a*b*c", "aXXbYYc", true},
      {"a*b*c", "aXXbYY", false},
      {"a*b?c", "abbbxc", true},
      {"**", "x", true},
      {"*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
      {"1.2.840.*", "1.2.840.10008.5.1.4.1.1.2", true},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(GlobMatch(c.pattern, c.text), c.match)
        << "pattern '" << c.pattern << "' text '" << c.text << "'";
  }
}

RouteConfig Route(std::string name, std::vector<RouteCondition> when) {
  RouteConfig r;
  r.name = std::move(name);
  r.when = std::move(when);
  r.tool = "tool";
  return r;
}

struct RouteCase {
  std::string label;
  std::vector<RouteCondition> when;
  AttributeMap attributes;
  bool match;
};

TEST(RouterTest, ConditionsTable) {
  const std::vector<RouteCase> cases = {
      {"single value", {{"Modality", {"CT"}}}, {{"Modality", "CT"}}, true},
      {"single value, other", {{"Modality", {"CT"}}}, {{"Modality", "MR"}}, false},
      {"list: any pattern", {{"Modality", {"CT", "MR"}}}, {{"Modality", "MR"}}, true},
      {"list: none", {{"Modality", {"CT", "MR"}}}, {{"Modality", "US"}}, false},
      {"glob", {{"StudyDescription", {"*chest*"}}}, {{"StudyDescription", "CT CHEST"}}, true},
      {"negation holds", {{"BodyPartExamined", {"!HEAD"}}}, {{"BodyPartExamined", "CHEST"}}, true},
      {"negation fails", {{"BodyPartExamined", {"!HEAD"}}}, {{"BodyPartExamined", "head"}}, false},
      {"negation with positive",
       {{"StudyDescription", {"*CHEST*", "!*PAED*"}}},
       {{"StudyDescription", "CHEST PAED"}},
       false},
      {"positive and unrelated negation",
       {{"StudyDescription", {"*CHEST*", "!*PAED*"}}},
       {{"StudyDescription", "CHEST ADULT"}},
       true},
      {"missing attribute", {{"Modality", {"CT"}}}, {}, false},
      {"missing attribute, wildcard", {{"Modality", {"*"}}}, {}, false},
      {"missing attribute, negation only", {{"BodyPartExamined", {"!HEAD"}}}, {}, true},
      {"missing attribute, negation and positive",
       {{"BodyPartExamined", {"CHEST", "!HEAD"}}},
       {},
       false},
      {"multi-valued: any value",
       {{"ImageType", {"AXIAL"}}},
       {{"ImageType", "ORIGINAL\\PRIMARY\\AXIAL"}},
       true},
      {"multi-valued: no value",
       {{"ImageType", {"LOCALIZER"}}},
       {{"ImageType", "ORIGINAL\\PRIMARY\\AXIAL"}},
       false},
      {"multi-valued: negated value excludes",
       {{"ImageType", {"!LOCALIZER"}}},
       {{"ImageType", "ORIGINAL\\PRIMARY\\LOCALIZER"}},
       false},
      {"multi-valued: padded value",
       {{"ImageType", {"AXIAL"}}},
       {{"ImageType", "ORIGINAL\\PRIMARY\\AXIAL "}},
       true},
      {"calling AE", {{"CallingAE", {"CT_*"}}}, {{"CallingAE", "CT_SCANNER1"}}, true},
      {"calling AE, other", {{"CallingAE", {"CT_*"}}}, {{"CallingAE", "MR_SCANNER1"}}, false},
      {"all conditions must hold",
       {{"Modality", {"CT"}}, {"CallingAE", {"CT_*"}}},
       {{"Modality", "CT"}, {"CallingAE", "MR_1"}},
       false},
      {"all conditions hold",
       {{"Modality", {"CT"}}, {"CallingAE", {"CT_*"}}},
       {{"Modality", "CT"}, {"CallingAE", "CT_1"}},
       true},
      {"no conditions", {}, {{"Modality", "CT"}}, true},
      {"keyword case", {{"modality", {"CT"}}}, {{"Modality", "CT"}}, true},
  };
  for (const auto& c : cases) {
    Router router({Route("r", c.when)});
    EXPECT_EQ(router.Match(c.attributes).size(), c.match ? 1u : 0u) << c.label;
    auto decisions = router.Explain(c.attributes);
    ASSERT_EQ(decisions.size(), 1u) << c.label;
    EXPECT_EQ(decisions[0].matched, c.match) << c.label;
  }
}

TEST(RouterTest, MatchReturnsRoutesInConfigOrder) {
  Router router(
      {Route("ct", {{"Modality", {"CT"}}}), Route("mr", {{"Modality", {"MR"}}}), Route("any", {})});
  auto matched = router.Match({{"Modality", "CT"}});
  ASSERT_EQ(matched.size(), 2u);
  EXPECT_EQ(matched[0]->name, "ct");
  EXPECT_EQ(matched[1]->name, "any");
}

TEST(RouterTest, ExplainGivesOneReasonPerCondition) {
  Router router({Route("chest-ct", {{"Modality", {"CT"}},
                                    {"StudyDescription", {"*CHEST*"}},
                                    {"BodyPartExamined", {"!HEAD"}},
                                    {"CallingAE", {"CT_*"}}}),
                 Route("mr", {{"Modality", {"MR", "PT"}}})});
  auto decisions = router.Explain(
      {{"Modality", "CT"}, {"StudyDescription", "CT ABDOMEN"}, {"BodyPartExamined", "HEAD"}});
  ASSERT_EQ(decisions.size(), 2u);
  EXPECT_EQ(decisions[0].route->name, "chest-ct");
  EXPECT_FALSE(decisions[0].matched);
  const std::vector<std::string> expected = {
      "Modality=CT matches CT",
      "StudyDescription=CT ABDOMEN does not match *CHEST*",
      "BodyPartExamined=HEAD is excluded by !HEAD",
      "CallingAE is missing",
  };
  EXPECT_EQ(decisions[0].reasons, expected);
  EXPECT_FALSE(decisions[1].matched);
  EXPECT_EQ(decisions[1].reasons, std::vector<std::string>{"Modality=CT does not match MR, PT"});
}

TEST(RouterTest, ExplainNegationReasons) {
  Router router({Route("r", {{"BodyPartExamined", {"!HEAD", "!BRAIN"}}})});
  auto present = router.Explain({{"BodyPartExamined", "CHEST"}});
  EXPECT_TRUE(present[0].matched);
  EXPECT_EQ(present[0].reasons,
            std::vector<std::string>{"BodyPartExamined=CHEST is not excluded by !HEAD, !BRAIN"});
  auto missing = router.Explain({});
  EXPECT_TRUE(missing[0].matched);
  EXPECT_EQ(
      missing[0].reasons,
      std::vector<std::string>{"BodyPartExamined is missing, so not excluded by !HEAD, !BRAIN"});
}

}  // namespace
}  // namespace conduit
