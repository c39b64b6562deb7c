// The query parameters, Accept choice and frame list of the rendered resources, table-driven.
#include "http/rendered_params.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace conduit {
namespace {

TEST(RenderedParamsTest, AcceptChoosesJpegOrPngByQualityThenSpecificity) {
  struct Case {
    std::string accept;
    std::optional<RenderedFormat> format;
  };
  for (const Case& c : std::vector<Case>{
           {"", RenderedFormat::kJpeg},
           {"  ", RenderedFormat::kJpeg},
           {"*/*", RenderedFormat::kJpeg},
           {"image/*", RenderedFormat::kJpeg},
           {"image/png", RenderedFormat::kPng},
           {"IMAGE/PNG", RenderedFormat::kPng},
           {"image/jpeg, image/png", RenderedFormat::kJpeg},
           {"image/jpeg;q=0.4, image/png;q=0.8", RenderedFormat::kPng},
           {"image/*, image/png", RenderedFormat::kPng},
           {"*/*;q=0.1, image/png;q=0.1", RenderedFormat::kPng},
           {"image/png;q=0, */*", RenderedFormat::kJpeg},
           {"image/jpeg;q=0, image/*", RenderedFormat::kPng},
           {"image/gif", std::nullopt},
           {"application/dicom", std::nullopt},
           {"image/jpeg;q=0", std::nullopt},
           {"image/jpeg;q=2", std::nullopt},
           {"image/jpeg;q=abc", std::nullopt},
           {";;;,,,", std::nullopt},
       }) {
    EXPECT_EQ(ChooseRenderedFormat(c.accept), c.format) << "'" << c.accept << "'";
  }
}

TEST(RenderedParamsTest, QueryParametersParseWithinBounds) {
  Result<RenderedQuery> q = ParseRenderedQuery(
      "quality=75&window=40.5,%2B400,sigmoid&viewport=512,256,10,20,-100,50&accept=image%2Fpng"
      "&annotation=patient");
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->options.quality, 75);
  ASSERT_TRUE(q->options.window);
  EXPECT_EQ(q->options.window->center, 40.5);
  EXPECT_EQ(q->options.window->width, 400);
  EXPECT_EQ(q->options.window->function, VoiFunction::kSigmoid);
  ASSERT_TRUE(q->options.viewport);
  EXPECT_EQ(q->options.viewport->width, 512);
  EXPECT_EQ(q->options.viewport->height, 256);
  EXPECT_TRUE(q->options.viewport->has_region);
  EXPECT_EQ(q->options.viewport->sw, -100);
  EXPECT_EQ(q->accept, "image/png");

  Result<RenderedQuery> empty = ParseRenderedQuery("");
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->options.window);
  EXPECT_FALSE(empty->options.viewport);
  EXPECT_FALSE(empty->accept);

  Result<RenderedQuery> window = ParseRenderedQuery("window=-600,1500");
  ASSERT_TRUE(window.ok());
  EXPECT_EQ(window->options.window->function, VoiFunction::kLinear);
  ASSERT_TRUE(ParseRenderedQuery("window=0,0.5,linear-exact").ok());

  for (const std::string& bad :
       std::vector<std::string>{"quality=",
                                "quality=0",
                                "quality=101",
                                "quality=1.5",
                                "quality=50&quality=50",
                                "window=1",
                                "window=,",
                                "window=1,0",
                                "window=1,0.9",
                                "window=1,0,sigmoid",
                                "window=1,2,LINEAR",
                                "window=inf,2",
                                "window=1,1e300",
                                "viewport=1,",
                                "viewport=1,2,3",
                                "viewport=4097,1",
                                "viewport=1,1,0,0,0,1",
                                "viewport=1,1,-1,0,1,1",
                                "viewport=1,1,0,0,99999999,1",
                                "viewport=1,1&viewport=2,2",
                                "accept=a&accept=b",
                                "quality=%4",
                                "%G0=1",
                                std::string(kMaxRenderedQueryBytes + 1, 'a')}) {
    Result<RenderedQuery> r = ParseRenderedQuery(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    }
  }
}

TEST(RenderedParamsTest, FrameListIsOneFrame) {
  EXPECT_EQ(ParseRenderedFrame("1").value(), 1);
  EXPECT_EQ(ParseRenderedFrame("42").value(), 42);
  for (const char* bad : {"", "0", "-1", "+1", " 1", "1,2", "a", "1.0", "99999999999"}) {
    EXPECT_FALSE(ParseRenderedFrame(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace conduit
