#include "dicomweb_tool_sim/multipart_files.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "dicomweb_tool_sim/stow_sender.h"
#include "http/multipart.h"

namespace conduit::tools {
namespace {

TEST(MultipartFileBodyTest, ConduitsReaderGetsTheFilesBackWhateverTheReadSizes) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("dwsim-multipart-" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  std::vector<std::string> contents = {std::string(300'000, 'a'), "", "small\r\n--not-a-boundary"};
  std::vector<std::filesystem::path> files;
  for (size_t i = 0; i < contents.size(); ++i) {
    files.push_back(dir / (std::to_string(i) + ".dcm"));
    std::ofstream(files.back(), std::ios::binary) << contents[i];
  }
  for (size_t read_size : {size_t{1}, size_t{7}, size_t{65536}, size_t{1} << 20}) {
    Result<MultipartFileBody> body = MultipartFileBody::FromFiles(files);
    ASSERT_TRUE(body.ok()) << body.status().ToString();
    Result<MediaType> media = ParseMediaType(body->content_type());
    ASSERT_TRUE(media.ok());
    EXPECT_EQ(media->Parameter("type"), "application/dicom");
    std::vector<std::string> parts;
    MultipartCallbacks callbacks;
    callbacks.on_part_begin = [&](const std::vector<HeaderField>& headers) {
      EXPECT_EQ(FindHeader(headers, "content-type"), "application/dicom");
      parts.emplace_back();
      return Status::Ok();
    };
    callbacks.on_part_data = [&](std::string_view bytes) {
      parts.back().append(bytes);
      return Status::Ok();
    };
    MultipartReader reader(std::string(*media->Parameter("boundary")), callbacks);
    size_t offset = 0;
    while (offset < body->size()) {
      size_t before = offset;
      ASSERT_TRUE(body->Read(offset, read_size,
                             [&](std::string_view bytes) {
                               offset += bytes.size();
                               ASSERT_TRUE(reader.Feed(bytes).ok());
                             })
                      .ok());
      ASSERT_GT(offset, before) << "Read must make progress";
    }
    EXPECT_EQ(offset, body->size());
    ASSERT_TRUE(reader.Finish().ok());
    EXPECT_EQ(parts, contents) << "read size " << read_size;
  }
  std::filesystem::remove_all(dir);
}

TEST(MultipartFileBodyTest, MissingFileIsNotFound) {
  Result<MultipartFileBody> body = MultipartFileBody::FromFiles({"/nonexistent/dwsim/x.dcm"});
  ASSERT_FALSE(body.ok());
  EXPECT_EQ(body.status().code(), StatusCode::kNotFound);
}

TEST(SplitUrlTest, SplitsHostAndPrefix) {
  struct Case {
    const char* url;
    const char* host;
    const char* path;
  };
  for (const Case& c : {Case{"http://127.0.0.1:8080/jobs/7/", "http://127.0.0.1:8080", "/jobs/7"},
                        Case{"https://gw.nhs.uk", "https://gw.nhs.uk", ""},
                        Case{"http://h:1/", "http://h:1", ""}}) {
    Result<std::pair<std::string, std::string>> split = SplitUrl(c.url);
    ASSERT_TRUE(split.ok()) << c.url;
    EXPECT_EQ(split->first, c.host) << c.url;
    EXPECT_EQ(split->second, c.path) << c.url;
  }
  for (const char* bad : {"", "127.0.0.1:8080/x", "ftp://h/x", "http:///x"}) {
    EXPECT_FALSE(SplitUrl(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace conduit::tools
