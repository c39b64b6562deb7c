// WADO-RS rendered and thumbnail resources against a real SQLite index and spool behind a real
// httplib server. The images returned are decoded by an independent reader (PIL under
// /usr/bin/python3); compressed instances are made with DCMTK's dcmcrle and dcmcjpls.
#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "core/metrics.h"
#include "dicom/instance_meta.h"
#include "dicom/test_support.h"
#include "http/dicomweb_read.h"
#include "http/http_test_support.h"
#include "store/received_instance.h"
#include "store/sqlite_index.h"
#include "testing/testing.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kStudy = "1.2.826.0.1.3680043.10.1137.500";
constexpr const char* kSeries = "1.2.826.0.1.3680043.10.1137.500.1";

enum class Kind { kCt, kRgb, kNoPixels };

struct Spec {
  std::string sop;
  int instance_number = 1;
  Kind kind = Kind::kCt;
  int frames = 1;
  uint16_t rows = 48;
  uint16_t columns = 64;
  bool stored_window = false;  // WindowCenter/WindowWidth below
  std::string window_center = "2000";
  std::string window_width = "4000";
};

// A Part 10 file in explicit VR little endian. CT: 16-bit MONOCHROME2 with a horizontal ramp
// (column x holds x * 64) plus 1000 per frame number above 1; RGB: 8-bit, red ramp.
void WriteInstance(const fs::path& file, const Spec& s) {
  DcmFileFormat format;
  DcmDataset* d = format.getDataset();
  const bool image = s.kind != Kind::kNoPixels;
  d->putAndInsertString(DCM_SOPClassUID,
                        image ? "1.2.840.10008.5.1.4.1.1.2" : "1.2.840.10008.5.1.4.1.1.88.22");
  d->putAndInsertString(DCM_SOPInstanceUID, s.sop.c_str());
  d->putAndInsertString(DCM_StudyInstanceUID, kStudy);
  d->putAndInsertString(DCM_SeriesInstanceUID, kSeries);
  d->putAndInsertString(DCM_PatientName, "DOE^JANE");
  d->putAndInsertString(DCM_PatientID, "PID-R");
  d->putAndInsertString(DCM_StudyDate, "20240115");
  d->putAndInsertString(DCM_Modality, image ? "CT" : "SR");
  d->putAndInsertString(DCM_SeriesNumber, "1");
  d->putAndInsertString(DCM_InstanceNumber, std::to_string(s.instance_number).c_str());
  if (image) {
    d->putAndInsertString(DCM_NumberOfFrames, std::to_string(s.frames).c_str());
    d->putAndInsertUint16(DCM_Rows, s.rows);
    d->putAndInsertUint16(DCM_Columns, s.columns);
  }
  const size_t per_frame = size_t{s.rows} * s.columns;
  if (s.kind == Kind::kCt) {
    d->putAndInsertUint16(DCM_SamplesPerPixel, 1);
    d->putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
    d->putAndInsertUint16(DCM_BitsAllocated, 16);
    d->putAndInsertUint16(DCM_BitsStored, 16);
    d->putAndInsertUint16(DCM_HighBit, 15);
    d->putAndInsertUint16(DCM_PixelRepresentation, 0);
    if (s.stored_window) {
      d->putAndInsertString(DCM_WindowCenter, s.window_center.c_str());
      d->putAndInsertString(DCM_WindowWidth, s.window_width.c_str());
    }
    std::vector<Uint16> pixels(per_frame * s.frames);
    for (int f = 0; f < s.frames; ++f) {
      for (size_t i = 0; i < per_frame; ++i) {
        pixels[f * per_frame + i] = static_cast<Uint16>((i % s.columns) * 64 + 1000 * f);
      }
    }
    ASSERT_TRUE(d->putAndInsertUint16Array(DCM_PixelData, pixels.data(), pixels.size()).good());
  } else if (s.kind == Kind::kRgb) {
    d->putAndInsertUint16(DCM_SamplesPerPixel, 3);
    d->putAndInsertString(DCM_PhotometricInterpretation, "RGB");
    d->putAndInsertUint16(DCM_PlanarConfiguration, 0);
    d->putAndInsertUint16(DCM_BitsAllocated, 8);
    d->putAndInsertUint16(DCM_BitsStored, 8);
    d->putAndInsertUint16(DCM_HighBit, 7);
    d->putAndInsertUint16(DCM_PixelRepresentation, 0);
    std::vector<Uint8> pixels(per_frame * 3 * s.frames);
    for (size_t i = 0; i < per_frame * s.frames; ++i) {
      pixels[3 * i] = static_cast<Uint8>((i % s.columns) * 255 / s.columns);
      pixels[3 * i + 1] = 0;
      pixels[3 * i + 2] = 40;
    }
    ASSERT_TRUE(d->putAndInsertUint8Array(DCM_PixelData, pixels.data(), pixels.size()).good());
  }
  ASSERT_TRUE(format.saveFile(file.c_str(), EXS_LittleEndianExplicit).good()) << file;
}

// Decodes an image with PIL; prints its format, size, mode, mean of the first band and the
// first band's values at the left and right ends of the top row.
constexpr const char* kPilProbe = R"py(
import json, sys
from PIL import Image, ImageStat
im = Image.open(sys.argv[1])
im.load()
band = im.getchannel(0)
print(json.dumps({'format': im.format, 'width': im.width, 'height': im.height, 'mode': im.mode,
                  'mean': ImageStat.Stat(band).mean[0],
                  'left': band.getpixel((0, 0)), 'right': band.getpixel((im.width - 1, 0))}))
)py";

class DicomwebRenderedTest : public testing::DicomwebReadFixture {
 protected:
  static std::string Sop(int n) { return std::string(kSeries) + "." + std::to_string(n); }

  fs::path Generate(const Spec& s) {
    const fs::path file = tmp_.path() / "gen" / (s.sop + ".dcm");
    fs::create_directories(file.parent_path());
    WriteInstance(file, s);
    return file;
  }

  void Ingest(const Spec& s) { IngestFile(Generate(s)); }

  std::string Url(int n, const std::string& rest) {
    return std::string("/dicom-web/studies/") + kStudy + "/series/" + kSeries + "/instances/" +
           Sop(n) + rest;
  }

  // GETs `path`, expects 200 with `content_type`, and decodes the body with PIL.
  json Image(const std::string& path, const std::string& content_type = "image/jpeg",
             const httplib::Headers& headers = {}) {
    auto res = Get(path, headers);
    EXPECT_TRUE(res) << path;
    if (!res) return json();
    EXPECT_EQ(res->status, 200) << path << ": " << res->body.substr(0, 300);
    EXPECT_EQ(res->get_header_value("Content-Type"), content_type) << path;
    const fs::path body = tmp_.path() / "image.bin";
    std::ofstream(body, std::ios::binary) << res->body;
    const fs::path script = tmp_.path() / "probe.py";
    std::ofstream(script) << kPilProbe;
    const std::string command = "/usr/bin/python3 " + script.string() + " " + body.string();
    std::string out;
    if (FILE* pipe = popen(command.c_str(), "r")) {
      char buffer[4096];
      for (size_t n; (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) out.append(buffer, n);
      pclose(pipe);
    }
    json probe = json::parse(out, nullptr, false);
    EXPECT_TRUE(probe.is_object()) << path << ": PIL could not decode it: " << out;
    return probe.is_object() ? probe : json::object();
  }

  int StatusOf(const std::string& path, const httplib::Headers& headers = {}) {
    auto res = Get(path, headers);
    if (!res) return -1;
    if (res->status >= 400) {
      EXPECT_EQ(res->get_header_value("Content-Type"), "application/json") << path;
      EXPECT_FALSE(json::parse(res->body, nullptr, false).is_discarded()) << path;
    }
    return res->status;
  }
};

TEST_F(DicomwebRenderedTest, NativeMonochromeRendersAsJpegByDefault) {
  Ingest({Sop(1)});
  for (const char* accept : {"", "*/*", "image/*", "image/jpeg"}) {
    json img = Image(Url(1, "/rendered"), "image/jpeg", {{"Accept", accept}});
    EXPECT_EQ(img["format"], "JPEG") << accept;
    EXPECT_EQ(img["width"], 64);
    EXPECT_EQ(img["height"], 48);
    EXPECT_EQ(img["mode"], "L") << "grayscale";
    EXPECT_LT(img["left"].get<int>(), 30) << "min/max window: the ramp starts dark";
    EXPECT_GT(img["right"].get<int>(), 225) << "and ends bright";
  }
}

TEST_F(DicomwebRenderedTest, PngWhenAcceptOrTheAcceptParameterAsksForIt) {
  Ingest({Sop(1)});
  for (const char* accept : {"image/png", "image/jpeg;q=0.5, image/png", "image/*, image/png"}) {
    json img = Image(Url(1, "/rendered"), "image/png", {{"Accept", accept}});
    EXPECT_EQ(img["format"], "PNG") << accept;
    EXPECT_EQ(img["width"], 64);
    EXPECT_EQ(img["height"], 48);
    EXPECT_EQ(img["left"], 0) << "PNG is lossless: the ramp's minimum is black";
    EXPECT_EQ(img["right"], 255);
  }
  json img =
      Image(Url(1, "/rendered?accept=image%2Fpng"), "image/png", {{"Accept", "application/dicom"}});
  EXPECT_EQ(img["format"], "PNG") << "the accept query parameter overrides the header";
}

TEST_F(DicomwebRenderedTest, UnsupportedMediaTypesGet406) {
  Ingest({Sop(1)});
  for (const char* accept :
       {"image/gif", "application/dicom", "image/jpeg;q=0, image/png;q=0", "video/mp4"}) {
    EXPECT_EQ(StatusOf(Url(1, "/rendered"), {{"Accept", accept}}), 406) << accept;
  }
}

TEST_F(DicomwebRenderedTest, ViewportScalesKeepingTheAspectRatioClipsAndFlips) {
  Ingest({Sop(1)});
  struct Case {
    std::string viewport;
    int width, height;
  };
  for (const Case& c : std::vector<Case>{{"32,32", 32, 24},
                                         {"128,200", 128, 96},
                                         {"640,96", 128, 96},
                                         {"10,10,0,0,32,48", 7, 10},
                                         {"16,16,16,8,16,16", 16, 16}}) {
    json img = Image(Url(1, "/rendered?viewport=" + c.viewport));
    EXPECT_EQ(img["width"], c.width) << c.viewport;
    EXPECT_EQ(img["height"], c.height) << c.viewport;
  }
  json plain =
      Image(Url(1, "/rendered?viewport=64,48,0,0,64,48"), "image/png", {{"Accept", "image/png"}});
  json flipped =
      Image(Url(1, "/rendered?viewport=64,48,64,0,-64,48"), "image/png", {{"Accept", "image/png"}});
  EXPECT_LT(plain["left"].get<int>(), plain["right"].get<int>());
  EXPECT_GT(flipped["left"].get<int>(), flipped["right"].get<int>()) << "negative sw flips";
}

TEST_F(DicomwebRenderedTest, WindowParameterChangesTheOutput) {
  Ingest({Sop(1)});
  const httplib::Headers png = {{"Accept", "image/png"}};
  // The ramp holds 0..4032.
  const double all = Image(Url(1, "/rendered"), "image/png", png)["mean"];
  const double high = Image(Url(1, "/rendered?window=10000,100,linear"), "image/png", png)["mean"];
  const double low = Image(Url(1, "/rendered?window=-5000,100"), "image/png", png)["mean"];
  const double exact =
      Image(Url(1, "/rendered?window=1000,500,linear-exact"), "image/png", png)["mean"];
  const double sigmoid =
      Image(Url(1, "/rendered?window=1000,500,sigmoid"), "image/png", png)["mean"];
  EXPECT_EQ(high, 0) << "everything below a window far above the values is black";
  EXPECT_EQ(low, 255) << "everything above a window far below the values is white";
  EXPECT_GT(exact, all) << "a window low in the range brightens the image";
  EXPECT_GT(sigmoid, all);
  EXPECT_NE(exact, sigmoid);
}

TEST_F(DicomwebRenderedTest, StoredWindowIsTheDefault) {
  Spec s{Sop(1)};
  s.stored_window = true;
  s.window_center = "1000";
  s.window_width = "500";
  Ingest(s);
  Ingest({Sop(2), 2});  // no stored window: min/max
  const httplib::Headers png = {{"Accept", "image/png"}};
  const double stored = Image(Url(1, "/rendered"), "image/png", png)["mean"];
  const double same = Image(Url(1, "/rendered?window=1000,500"), "image/png", png)["mean"];
  const double min_max = Image(Url(2, "/rendered"), "image/png", png)["mean"];
  EXPECT_EQ(stored, same);
  EXPECT_GT(stored, min_max + 50) << "the stored window is low in the ramp: brighter";
}

TEST_F(DicomwebRenderedTest, FrameOfAMultiFrameInstance) {
  Spec s{Sop(1)};
  s.frames = 3;
  s.stored_window = true;
  Ingest(s);
  const httplib::Headers png = {{"Accept", "image/png"}};
  const double f1 = Image(Url(1, "/frames/1/rendered"), "image/png", png)["mean"];
  const double f2 = Image(Url(1, "/frames/2/rendered"), "image/png", png)["mean"];
  const double f3 = Image(Url(1, "/frames/3/rendered"), "image/png", png)["mean"];
  const double instance = Image(Url(1, "/rendered"), "image/png", png)["mean"];
  EXPECT_LT(f1, f2) << "each frame is 1000 brighter than the one before";
  EXPECT_LT(f2, f3);
  EXPECT_EQ(instance, f1) << "the instance renders its first frame";
  EXPECT_EQ(StatusOf(Url(1, "/frames/4/rendered")), 404);
  EXPECT_EQ(StatusOf(Url(1, "/frames/1,2/rendered")), 400) << "one frame per rendered image";
}

// A 256-frame 512x512 16-bit CT (128 MiB of Pixel Data), written without ever holding its
// pixels: DCMTK writes the other attributes, then the Pixel Data element is appended frame by
// frame (frame f holds the value 100 * f everywhere).
void WriteLargeMultiFrame(const fs::path& file, const std::string& sop, int frames) {
  Spec s{sop};
  s.rows = 512;
  s.columns = 512;
  s.stored_window = true;
  s.window_center = "12800";
  s.window_width = "25600";
  WriteInstance(file, s);  // one frame, then replaced
  DcmFileFormat format;
  ASSERT_TRUE(format.loadFile(file.c_str()).good());
  DcmDataset* d = format.getDataset();
  delete d->remove(DCM_PixelData);
  d->putAndInsertString(DCM_NumberOfFrames, std::to_string(frames).c_str());
  ASSERT_TRUE(format.saveFile(file.c_str(), EXS_LittleEndianExplicit).good());
  const uint32_t frame_bytes = 512u * 512u * 2u;
  const uint32_t length = frame_bytes * static_cast<uint32_t>(frames);
  std::ofstream out(file, std::ios::binary | std::ios::app);
  const unsigned char header[12] = {0xE0,
                                    0x7F,
                                    0x10,
                                    0x00,
                                    'O',
                                    'W',
                                    0,
                                    0,
                                    static_cast<unsigned char>(length),
                                    static_cast<unsigned char>(length >> 8),
                                    static_cast<unsigned char>(length >> 16),
                                    static_cast<unsigned char>(length >> 24)};
  out.write(reinterpret_cast<const char*>(header), sizeof header);
  std::vector<Uint16> frame(frame_bytes / 2);
  for (int f = 0; f < frames; ++f) {
    std::fill(frame.begin(), frame.end(), static_cast<Uint16>(100 * f));
    out.write(reinterpret_cast<const char*>(frame.data()), frame_bytes);
  }
  ASSERT_TRUE(out.good());
}

TEST_F(DicomwebRenderedTest, AFrameOfALargeMultiFrameInstanceCostsAboutOneFrameOfMemory) {
  const fs::path file = tmp_.path() / "large.dcm";
  WriteLargeMultiFrame(file, Sop(1), 256);
  IngestFile(file);
  fs::remove(file);
  const int64_t before_kb = testing::PeakResidentKb();
  const httplib::Headers png = {{"Accept", "image/png"}};
  const double early = Image(Url(1, "/frames/10/rendered"), "image/png", png)["mean"];
  const double late = Image(Url(1, "/frames/250/rendered"), "image/png", png)["mean"];
  const int64_t growth_kb = testing::PeakResidentKb() - before_kb;
  EXPECT_LT(early, late) << "frame 250 is brighter than frame 10";
  // The Pixel Data is 128 MiB; a frame 512 KiB (plus DCMTK's rendering buffers).
  EXPECT_LT(growth_kb, 32 * 1024) << "peak memory grew by " << growth_kb << " KiB";
}

TEST_F(DicomwebRenderedTest, CompressedInstancesRender) {
  Spec s{Sop(1)};
  s.frames = 2;
  s.stored_window = true;
  struct Tool {
    std::string program;
    std::vector<std::string> options;
  };
  int n = 1;
  for (const Tool& tool :
       std::vector<Tool>{{"dcmcrle", {}}, {"dcmcjpls", {}}, {"dcmcjpeg", {"+e1"}}}) {
    ++n;
    Spec copy = s;
    copy.sop = Sop(n);
    copy.instance_number = n;
    const fs::path source = Generate(copy);
    const fs::path compressed = tmp_.path() / (tool.program + ".dcm");
    std::vector<std::string> argv = {tool.program};
    argv.insert(argv.end(), tool.options.begin(), tool.options.end());
    argv.push_back(source.string());
    argv.push_back(compressed.string());
    testing::CommandResult r = testing::RunCommand(argv);
    ASSERT_EQ(r.exit_code, 0) << tool.program << ": " << r.output;
    IngestFile(compressed);
    const json png = Image(Url(n, "/frames/2/rendered"), "image/png", {{"Accept", "image/png"}});
    EXPECT_EQ(png["width"], 64) << tool.program;
    EXPECT_EQ(png["height"], 48) << tool.program;
    EXPECT_LT(png["left"].get<int>(), png["right"].get<int>()) << tool.program;
    const json jpeg = Image(Url(n, "/rendered?viewport=32,32&quality=40"));
    EXPECT_EQ(jpeg["width"], 32) << tool.program;
    EXPECT_EQ(jpeg["height"], 24) << tool.program;
  }
}

TEST_F(DicomwebRenderedTest, ColourInstanceRendersInColour) {
  Spec s{Sop(1)};
  s.kind = Kind::kRgb;
  Ingest(s);
  json img = Image(Url(1, "/rendered"), "image/png", {{"Accept", "image/png"}});
  EXPECT_EQ(img["mode"], "RGB");
  EXPECT_LT(img["left"].get<int>(), 10) << "red ramp";
  EXPECT_GT(img["right"].get<int>(), 240);
  EXPECT_EQ(Image(Url(1, "/rendered?quality=75"))["mode"], "RGB");
}

TEST_F(DicomwebRenderedTest, ThumbnailsFitInASmallViewport) {
  Spec s1{Sop(1)};
  s1.rows = 300;
  s1.columns = 400;
  Ingest(s1);
  Spec s2 = s1;
  s2.sop = Sop(2);
  s2.instance_number = 2;
  Ingest(s2);
  json img = Image(Url(1, "/thumbnail"));
  EXPECT_EQ(img["width"], 128);
  EXPECT_EQ(img["height"], 96);
  img = Image(Url(2, "/frames/1/thumbnail?viewport=40,40"));
  EXPECT_EQ(img["width"], 40);
  EXPECT_EQ(img["height"], 30);
  img = Image(std::string("/dicom-web/studies/") + kStudy + "/thumbnail");
  EXPECT_EQ(img["width"], 128);
  img = Image(std::string("/dicom-web/studies/") + kStudy + "/series/" + kSeries + "/thumbnail");
  EXPECT_EQ(img["height"], 96);
}

TEST_F(DicomwebRenderedTest, BadParametersAre400) {
  Ingest({Sop(1)});
  for (const char* q : {"quality=0",
                        "quality=101",
                        "quality=abc",
                        "quality=50&quality=60",
                        "window=1",
                        "window=1,0",
                        "window=1,0.5,linear",
                        "window=1,2,cubic",
                        "window=nan,2",
                        "window=1,2,3,4",
                        "viewport=0,10",
                        "viewport=10",
                        "viewport=5000,10",
                        "viewport=10,10,0,0,0,5",
                        "viewport=10,10,0,0,1000,1000",
                        "viewport=10,10,-1,0,5,5",
                        "viewport=10,10,60,0,10,10",
                        "viewport=a,b",
                        "quality=%zz",
                        "window=%"}) {
    EXPECT_EQ(StatusOf(Url(1, std::string("/rendered?") + q)), 400) << q;
  }
  for (const char* frames : {"0", "a", "-1", "1,", "99999999999"}) {
    EXPECT_EQ(StatusOf(Url(1, std::string("/frames/") + frames + "/rendered")), 400) << frames;
  }
  EXPECT_EQ(StatusOf(Url(1, "/rendered?annotation=patient&charset=utf-8")), 200)
      << "unsupported parameters are ignored";
}

TEST_F(DicomwebRenderedTest, UnknownInstancesAndNonImagesAreRefused) {
  Spec sr{Sop(1)};
  sr.kind = Kind::kNoPixels;
  Ingest(sr);
  EXPECT_EQ(StatusOf(Url(1, "/rendered")), 406) << "no pixel data to render";
  EXPECT_EQ(StatusOf(Url(7, "/rendered")), 404);
  EXPECT_EQ(StatusOf(Url(7, "/frames/1/rendered")), 404);
  EXPECT_EQ(StatusOf(std::string("/dicom-web/studies/") + kStudy + "/rendered"), 404)
      << "study and series rendered resources are not served";
}

}  // namespace
}  // namespace conduit
