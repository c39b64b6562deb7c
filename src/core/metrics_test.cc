#include "core/metrics.h"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace conduit {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Every sample line is `name{labels} value` as format 0.0.4 defines it.
void ExpectValidExposition(const std::string& text) {
  // name{label="value",...} value, values escaped as format 0.0.4 requires.
  static const std::string kLabel = R"re([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")re";
  static const std::regex kSample("^[a-zA-Z_:][a-zA-Z0-9_:]*(\\{" + kLabel + "(," + kLabel +
                                  ")*\\})? ([-+]?[0-9.eE+-]+|NaN|[+-]Inf)$");
  static const std::regex kComment(
      "^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|"
      "TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped))$");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  for (const std::string& line : Lines(text)) {
    if (line.starts_with("#")) {
      EXPECT_TRUE(std::regex_match(line, kComment)) << line;
    } else {
      EXPECT_TRUE(std::regex_match(line, kSample)) << line;
    }
  }
}

TEST(MetricsTest, CounterRendersHelpTypeAndValue) {
  Metrics m;
  m.Describe("conduit_instances_received_total", "counter", "Instances received.");
  m.Add("conduit_instances_received_total", 1);
  m.Add("conduit_instances_received_total", 2);
  EXPECT_EQ(m.RenderPrometheus(),
            "# HELP conduit_instances_received_total Instances received.\n"
            "# TYPE conduit_instances_received_total counter\n"
            "conduit_instances_received_total 3\n");
  EXPECT_EQ(m.Value("conduit_instances_received_total"), 3);
}

TEST(MetricsTest, GaugeSetReplacesTheValue) {
  Metrics m;
  m.Describe("conduit_jobs", "gauge", "Jobs by state.");
  m.Set("conduit_jobs", 5, R"(state="queued")");
  m.Set("conduit_jobs", 2, R"(state="queued")");
  m.Set("conduit_jobs", 1.5, R"(state="done")");
  EXPECT_EQ(m.RenderPrometheus(),
            "# HELP conduit_jobs Jobs by state.\n"
            "# TYPE conduit_jobs gauge\n"
            "conduit_jobs{state=\"done\"} 1.5\n"
            "conduit_jobs{state=\"queued\"} 2\n");
  EXPECT_EQ(m.Value("conduit_jobs", R"(state="queued")"), 2);
}

TEST(MetricsTest, LabelOrderDoesNotMakeANewSeries) {
  Metrics m;
  m.Add("x_total", 1, R"(tool="a",route="r")");
  m.Add("x_total", 1, R"(route="r", tool="a")");
  m.Add("x_total", 1, R"({route="r",tool="a"})");
  EXPECT_EQ(m.Value("x_total", R"(tool="a",route="r")"), 3);
  EXPECT_EQ(m.RenderPrometheus(), "# TYPE x_total untyped\nx_total{route=\"r\",tool=\"a\"} 3\n");
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  struct Case {
    std::string labels;
    std::string rendered;
  };
  const std::vector<Case> cases = {
      // Already escaped as Prometheus writes it: kept as is.
      {R"(ae="A\"B")", R"(ae="A\"B")"},
      {R"(path="C:\\tmp")", R"(path="C:\\tmp")"},
      {R"(msg="one\ntwo")", R"(msg="one\ntwo")"},
      // Interpolated raw: escaped on the way out.
      {"ae=\"A\"B\"", R"(ae="A\"B")"},
      {"msg=\"one\ntwo\"", R"(msg="one\ntwo")"},
      {R"(path="C:\tmp")", R"(path="C:\\tmp")"},
      {R"(a="x",b="say "hi", ok")", R"(a="x",b="say \"hi\", ok")"},
      // Not a label list: kept whole, escaped, as one label.
      {"garbage", R"(labels="garbage")"},
      {R"(tool=unquoted)", R"(labels="tool=unquoted")"},
      // Bad label names are made valid.
      {R"(bad-name="v")", R"(bad_name="v")"},
  };
  for (const Case& c : cases) {
    Metrics m;
    m.Set("g", 1, c.labels);
    std::string text = m.RenderPrometheus();
    EXPECT_NE(text.find("g{" + c.rendered + "} 1\n"), std::string::npos)
        << "labels: " << c.labels << "\nrendered:\n"
        << text;
    ExpectValidExposition(text);
  }
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Metrics m;
  m.Describe("conduit_step_seconds", "histogram", "Step duration.");
  m.Observe("conduit_step_seconds", 0.00390625);  // binary fractions: an exact _sum
  m.Observe("conduit_step_seconds", 0.125);
  m.Observe("conduit_step_seconds", 0.25);
  m.Observe("conduit_step_seconds", 700);
  std::string text = m.RenderPrometheus();
  ExpectValidExposition(text);
  EXPECT_NE(text.find("# TYPE conduit_step_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("conduit_step_seconds_bucket{le=\"0.005\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("conduit_step_seconds_bucket{le=\"0.1\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("conduit_step_seconds_bucket{le=\"0.25\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("conduit_step_seconds_bucket{le=\"600\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("conduit_step_seconds_bucket{le=\"+Inf\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("conduit_step_seconds_sum 700.37890625\n"), std::string::npos) << text;
  EXPECT_NE(text.find("conduit_step_seconds_count 4\n"), std::string::npos);
  EXPECT_EQ(m.Value("conduit_step_seconds"), 4);

  // Buckets never decrease and +Inf comes last.
  std::regex bucket(R"re(conduit_step_seconds_bucket\{le="([^"]+)"\} (\d+))re");
  uint64_t previous = 0;
  std::string last_le;
  for (const std::string& line : Lines(text)) {
    std::smatch match;
    if (!std::regex_match(line, match, bucket)) continue;
    uint64_t n = std::stoull(match[2]);
    EXPECT_GE(n, previous) << line;
    previous = n;
    last_le = match[1];
  }
  EXPECT_EQ(last_le, "+Inf");
}

TEST(MetricsTest, HistogramLabelsComeBeforeLe) {
  Metrics m;
  m.Observe("conduit_dispatch_seconds", 1, R"(tool="ref")");
  std::string text = m.RenderPrometheus();
  ExpectValidExposition(text);
  EXPECT_NE(text.find("conduit_dispatch_seconds_bucket{tool=\"ref\",le=\"1\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("conduit_dispatch_seconds_sum{tool=\"ref\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("conduit_dispatch_seconds_count{tool=\"ref\"} 1\n"), std::string::npos);
  // Observed without a Describe: still typed as a histogram.
  EXPECT_NE(text.find("# TYPE conduit_dispatch_seconds histogram\n"), std::string::npos);
}

TEST(MetricsTest, UndescribedIsUntypedAndDescribedWithoutSamplesHasOnlyComments) {
  Metrics m;
  m.Add("plain", 1);
  m.Describe("conduit_idle_total", "counter", "Never incremented.");
  m.Describe("odd", "bogus-type", "");
  EXPECT_EQ(m.RenderPrometheus(),
            "# HELP conduit_idle_total Never incremented.\n"
            "# TYPE conduit_idle_total counter\n"
            "# TYPE odd untyped\n"
            "# TYPE plain untyped\n"
            "plain 1\n");
}

TEST(MetricsTest, HelpTextAndNamesCannotBreakTheFormat) {
  Metrics m;
  m.Describe("conduit-bad name", "gauge", "line one\nline two \\ end");
  m.Set("conduit-bad name", 1);
  std::string text = m.RenderPrometheus();
  ExpectValidExposition(text);
  EXPECT_NE(text.find("# HELP conduit_bad_name line one\\nline two \\\\ end\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("conduit_bad_name 1\n"), std::string::npos);
}

TEST(MetricsTest, NonFiniteValuesUsePrometheusSpelling) {
  Metrics m;
  m.Set("a", std::numeric_limits<double>::infinity());
  m.Set("b", -std::numeric_limits<double>::infinity());
  m.Set("c", std::numeric_limits<double>::quiet_NaN());
  m.Observe("d", std::numeric_limits<double>::quiet_NaN());  // ignored
  std::string text = m.RenderPrometheus();
  ExpectValidExposition(text);
  EXPECT_NE(text.find("a +Inf\n"), std::string::npos);
  EXPECT_NE(text.find("b -Inf\n"), std::string::npos);
  EXPECT_NE(text.find("c NaN\n"), std::string::npos);
  EXPECT_EQ(text.find("d_"), std::string::npos);
}

TEST(MetricsTest, RenderingIsDeterministicWhateverTheInsertionOrder) {
  Metrics a;
  a.Add("z_total", 1, R"(k="2")");
  a.Add("z_total", 1, R"(k="1")");
  a.Set("m", 3);
  a.Observe("h_seconds", 0.5, R"(t="y")");
  a.Observe("h_seconds", 0.5, R"(t="x")");
  Metrics b;
  b.Observe("h_seconds", 0.5, R"(t="x")");
  b.Set("m", 3);
  b.Observe("h_seconds", 0.5, R"(t="y")");
  b.Add("z_total", 1, R"(k="1")");
  b.Add("z_total", 1, R"(k="2")");
  EXPECT_EQ(a.RenderPrometheus(), b.RenderPrometheus());
  EXPECT_EQ(a.RenderPrometheus(), a.RenderPrometheus());
  ExpectValidExposition(a.RenderPrometheus());
}

TEST(MetricsTest, ValueOfUnknownSeriesIsZero) {
  Metrics m;
  m.Add("x_total", 1, R"(a="1")");
  EXPECT_EQ(m.Value("x_total", R"(a="2")"), 0);
  EXPECT_EQ(m.Value("nothing"), 0);
}

TEST(MetricsTest, ConcurrentUpdatesAreAllCountedWhileRendering) {
  Metrics m;
  m.Describe("c_total", "counter", "c");
  constexpr int kThreads = 8;
  constexpr int kPerThread = 5000;
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&m, t] {
        std::string labels = "worker=\"" + std::to_string(t % 2) + "\"";
        for (int i = 0; i < kPerThread; ++i) {
          m.Add("c_total", 1, labels);
          m.Observe("h_seconds", 0.01 * (i % 7), labels);
          m.Set("g", i, labels);
        }
      });
    }
    threads.emplace_back([&m] {
      for (int i = 0; i < 200; ++i) {
        std::string text = m.RenderPrometheus();
        ASSERT_FALSE(text.empty());
      }
    });
  }
  EXPECT_EQ(m.Value("c_total", R"(worker="0")") + m.Value("c_total", R"(worker="1")"),
            kThreads * kPerThread);
  EXPECT_EQ(m.Value("h_seconds", R"(worker="0")") + m.Value("h_seconds", R"(worker="1")"),
            kThreads * kPerThread);
  ExpectValidExposition(m.RenderPrometheus());
}

}  // namespace
}  // namespace conduit
