#include "core/http_url.h"

#include <gtest/gtest.h>

namespace conduit {
namespace {

TEST(HttpUrlTest, ParsesSchemeHostPortAndPath) {
  struct Case {
    const char* text;
    const char* origin;
    const char* path;
  };
  const Case cases[] = {
      {"http://tool.example", "http://tool.example:80", ""},
      {"https://tool.example", "https://tool.example:443", ""},
      {"http://127.0.0.1:8042/dicom-web/", "http://127.0.0.1:8042", "/dicom-web"},
      {"https://ai.vendor.example:8443/a/b", "https://ai.vendor.example:8443", "/a/b"},
      {"http://[::1]:9000/wado", "http://[::1]:9000", "/wado"},
  };
  for (const Case& c : cases) {
    auto url = ParseHttpUrl(c.text);
    ASSERT_TRUE(url.ok()) << c.text << ": " << url.status().ToString();
    EXPECT_EQ(url->Origin(), c.origin) << c.text;
    EXPECT_EQ(url->path, c.path) << c.text;
  }
}

TEST(HttpUrlTest, RefusesWhatIsNotABaseUrl) {
  const char* cases[] = {"ftp://host/x",      "http://",           "http://:80/x",
                         "http://host:0",     "http://host:65536", "http://host:8o",
                         "http://u:p@host/",  "http://host/a?b=1", "http://host/a#b",
                         "http://ho st/",     "http://host:",      "http://[zz]/",
                         "tool.example:8080", "http://h%41st/"};
  for (const char* text : cases) {
    auto url = ParseHttpUrl(text);
    EXPECT_FALSE(url.ok()) << text;
    if (!url.ok()) {
      EXPECT_EQ(url.status().code(), StatusCode::kInvalidArgument) << text;
    }
  }
}

}  // namespace
}  // namespace conduit
