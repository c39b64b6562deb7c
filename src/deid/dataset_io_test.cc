#include "deid/dataset_io.h"

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmjpls/djencode.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "deid/deidentifier.h"
#include "dicom/test_support.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// What follows Pixel Data in a generated file.
enum class Trailing { kNone, kPadding, kPrivate };

struct ImageSpec {
  std::string name{};
  Uint16 rows = 64, columns = 64, bits = 16;
  E_TransferSyntax syntax = EXS_LittleEndianExplicit;
  Trailing trailing = Trailing::kNone;
  bool odd_length_value = false;  // the file's Pixel Data length is made odd (non-conformant)
  bool blank_region = false;      // the policy blanks a region, so the pixels change
  bool expect_copied = false;
};

std::string Bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A CT-like image with native pixel data of the spec's size, in the spec's transfer syntax.
void WriteImage(const fs::path& file, const ImageSpec& spec) {
  DcmFileFormat format;
  DcmDataset* d = format.getDataset();
  d->putAndInsertString(DCM_SOPClassUID, UID_CTImageStorage);
  d->putAndInsertString(DCM_SOPInstanceUID, "1.2.826.0.1.3680043.10.1137.7.1.1");
  d->putAndInsertString(DCM_StudyInstanceUID, "1.2.826.0.1.3680043.10.1137.7");
  d->putAndInsertString(DCM_SeriesInstanceUID, "1.2.826.0.1.3680043.10.1137.7.1");
  d->putAndInsertString(DCM_PatientName, "TEST^PATIENT");
  d->putAndInsertString(DCM_PatientID, "PID0007");
  d->putAndInsertString(DCM_AccessionNumber, "ACC0007");
  d->putAndInsertString(DCM_StudyDate, "20240102");
  d->putAndInsertString(DCM_Modality, "CT");
  d->putAndInsertString(DCM_InstitutionName, "ST ELSEWHERE");
  d->putAndInsertUint16(DCM_SamplesPerPixel, 1);
  d->putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
  d->putAndInsertUint16(DCM_Rows, spec.rows);
  d->putAndInsertUint16(DCM_Columns, spec.columns);
  d->putAndInsertUint16(DCM_BitsAllocated, spec.bits);
  d->putAndInsertUint16(DCM_BitsStored, spec.bits == 16 ? 12 : 8);
  d->putAndInsertUint16(DCM_HighBit, spec.bits == 16 ? 11 : 7);
  d->putAndInsertUint16(DCM_PixelRepresentation, 0);
  if (spec.blank_region) d->putAndInsertString(DCM_BurnedInAnnotation, "YES");
  const size_t count = size_t{spec.rows} * spec.columns;
  if (spec.bits == 16) {
    std::vector<Uint16> pixels(count);
    for (size_t i = 0; i < count; ++i) pixels[i] = static_cast<Uint16>((i * 13 + 7) % 4096);
    ASSERT_TRUE(d->putAndInsertUint16Array(DCM_PixelData, pixels.data(), count).good());
  } else {
    std::vector<Uint8> pixels(count);
    for (size_t i = 0; i < count; ++i) pixels[i] = static_cast<Uint8>((i * 29 + 3) % 251);
    ASSERT_TRUE(d->putAndInsertUint8Array(DCM_PixelData, pixels.data(), count).good());
  }
  if (spec.trailing == Trailing::kPadding) {
    std::vector<Uint8> zeros(6, 0);
    ASSERT_TRUE(
        d->putAndInsertUint8Array(DCM_DataSetTrailingPadding, zeros.data(), zeros.size()).good());
  } else if (spec.trailing == Trailing::kPrivate) {
    d->putAndInsertString(DcmTagKey(0x7FE1, 0x0010), "ACME 1.0");
    d->putAndInsertString(DcmTag(0x7FE1, 0x1001, EVR_LO), "PRIVATE AFTER PIXELS");
  }
  if (DcmXfer(spec.syntax).isEncapsulated()) {
    DJLSEncoderRegistration::registerCodecs();
    ASSERT_TRUE(d->chooseRepresentation(spec.syntax, nullptr).good());
  }
  const OFCondition saved = format.saveFile(file.c_str(), spec.syntax);
  ASSERT_TRUE(saved.good()) << file << ": " << saved.text();
  if (spec.odd_length_value) {
    // Pixel Data is last: drop the value's final byte and say so in its length field.
    ASSERT_EQ(spec.trailing, Trailing::kNone);
    std::string bytes = Bytes(file);
    const Uint32 length = static_cast<Uint32>(count + (count % 2));
    const size_t field = bytes.size() - length - 4;
    const Uint32 odd = length - 1;
    for (int i = 0; i < 4; ++i) bytes[field + i] = static_cast<char>((odd >> (8 * i)) & 0xFF);
    bytes.pop_back();
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
  }
}

PseudonymKey TestKey() {
  PseudonymKey key;
  key.bytes.assign(32, 5);
  key.id = "test-key-5";
  return key;
}

class PixelDataCopyTest : public ::testing::TestWithParam<ImageSpec> {
 protected:
  TempDir dir_;
};

// Both paths give the same bytes; the copy is taken exactly where it may be.
TEST_P(PixelDataCopyTest, CopiedOutputIsByteIdenticalToTheDcmtkOutput) {
  const ImageSpec& spec = GetParam();
  const fs::path in = dir_.path() / (spec.name + ".dcm");
  ASSERT_NO_FATAL_FAILURE(WriteImage(in, spec));
  DeidSettings settings;
  if (spec.blank_region) settings.burned_in.cleaning.push_back({"CT", "", "", {{0, 0, 8, 4}}});

  Deidentifier copying(settings, Pseudonymiser(TestKey()));
  const fs::path copied = dir_.path() / (spec.name + "-copied.dcm");
  auto fast = copying.DeidentifyFile(in, copied);
  ASSERT_TRUE(fast.ok()) << fast.status().ToString();
  ASSERT_FALSE(fast->refused) << fast->refusal;

  Deidentifier through_dcmtk(settings, Pseudonymiser(TestKey()));
  through_dcmtk.set_copy_pixel_data(false);
  const fs::path written = dir_.path() / (spec.name + "-dcmtk.dcm");
  auto slow = through_dcmtk.DeidentifyFile(in, written);
  ASSERT_TRUE(slow.ok()) << slow.status().ToString();
  EXPECT_FALSE(slow->pixel_data_copied);

  EXPECT_EQ(fast->pixel_data_copied, spec.expect_copied);
  const std::string a = Bytes(copied), b = Bytes(written);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_TRUE(a == b) << "outputs differ";
  EXPECT_EQ(fast->bytes_out, a.size());
  EXPECT_FALSE(fs::exists(copied.string() + ".part"));

  // The output reads back whole, and its pixels are the input's unless blanked.
  DcmFileFormat original, output;
  ASSERT_TRUE(original.loadFile(in.c_str()).good());
  ASSERT_TRUE(output.loadFile(copied.c_str()).good());
  EXPECT_FALSE(output.getDataset()->tagExists(DcmTagKey(0x7FE1, 0x1001)));
  if (!spec.blank_region && !DcmXfer(spec.syntax).isEncapsulated()) {
    const Uint8 *x = nullptr, *y = nullptr;
    unsigned long nx = 0, ny = 0;
    ASSERT_TRUE(original.getDataset()->findAndGetUint8Array(DCM_PixelData, x, &nx).good());
    ASSERT_TRUE(output.getDataset()->findAndGetUint8Array(DCM_PixelData, y, &ny).good());
    ASSERT_EQ(nx, ny);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(x), nx),
              std::string(reinterpret_cast<const char*>(y), ny));
  }
}

ImageSpec Spec(std::string name, ImageSpec spec) {
  spec.name = std::move(name);
  return spec;
}

INSTANTIATE_TEST_SUITE_P(
    Images, PixelDataCopyTest,
    ::testing::Values(
        Spec("explicit_ow", {.expect_copied = true}),
        Spec("implicit_ow", {.syntax = EXS_LittleEndianImplicit, .expect_copied = true}),
        Spec("explicit_ob_odd_pixel_count",
             {.rows = 67, .columns = 67, .bits = 8, .expect_copied = true}),
        Spec("implicit_ob_odd_pixel_count", {.rows = 67,
                                             .columns = 67,
                                             .bits = 8,
                                             .syntax = EXS_LittleEndianImplicit,
                                             .expect_copied = true}),
        Spec("explicit_512x512", {.rows = 512, .columns = 512, .expect_copied = true}),
        Spec("explicit_odd_length_value",
             {.rows = 67, .columns = 67, .bits = 8, .odd_length_value = true}),
        Spec("explicit_trailing_padding", {.trailing = Trailing::kPadding}),
        Spec("explicit_trailing_private", {.trailing = Trailing::kPrivate}),
        Spec("implicit_trailing_private",
             {.syntax = EXS_LittleEndianImplicit, .trailing = Trailing::kPrivate}),
        Spec("small_value_in_memory", {.rows = 16, .columns = 16}),
        Spec("blanked_region", {.blank_region = true}),
        Spec("deflated", {.syntax = EXS_DeflatedLittleEndianExplicit}),
        Spec("jpeg_ls_encapsulated", {.syntax = EXS_JPEGLSLossless})),
    [](const ::testing::TestParamInfo<ImageSpec>& image) { return image.param.name; });

class SaveCopyingPixelDataTest : public ::testing::Test {
 protected:
  fs::path Image(const ImageSpec& spec) {
    const fs::path file = dir_.path() / "in.dcm";
    WriteImage(file, spec);
    fs::copy_file(file, dir_.path() / "reference.dcm");
    return file;
  }
  // What DCMTK alone writes for the image as first written.
  std::string ThroughDcmtk() {
    auto loaded = deid_io::LoadLazily(dir_.path() / "reference.dcm");
    EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
    if (!loaded.ok()) return "";
    const fs::path out = dir_.path() / "reference-out.dcm";
    auto path = deid_io::SaveAtomicallyCopyingPixelData(**loaded, (*loaded)->xfer, out,
                                                        /*zero_preamble=*/false,
                                                        /*allow_copy=*/false);
    EXPECT_TRUE(path.ok()) << path.status().ToString();
    return Bytes(out);
  }
  TempDir dir_;
};

TEST_F(SaveCopyingPixelDataTest, NeverLoadsThePixelDataIntoMemory) {
  auto loaded = deid_io::LoadLazily(Image({.rows = 256, .columns = 256}));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_TRUE((*loaded)->pixel_data_last);
  const fs::path out = dir_.path() / "out.dcm";
  auto path = deid_io::SaveAtomicallyCopyingPixelData(**loaded, (*loaded)->xfer, out,
                                                      /*zero_preamble=*/false);
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  EXPECT_EQ(*path, deid_io::PixelDataWrite::kCopiedFromInput);
  DcmElement* pixels = nullptr;
  ASSERT_TRUE((*loaded)->dataset().findAndGetElement(DCM_PixelData, pixels).good());
  EXPECT_FALSE(pixels->valueLoaded());
  EXPECT_TRUE(Bytes(out) == ThroughDcmtk());
}

TEST_F(SaveCopyingPixelDataTest, FallsBackWhenTheInputNoLongerEndsWithThePixelData) {
  const fs::path in = Image({});
  auto loaded = deid_io::LoadLazily(in);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  std::ofstream(in, std::ios::binary | std::ios::app) << std::string(16, '\0');
  const fs::path out = dir_.path() / "out.dcm";
  auto path = deid_io::SaveAtomicallyCopyingPixelData(**loaded, (*loaded)->xfer, out,
                                                      /*zero_preamble=*/false);
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  EXPECT_EQ(*path, deid_io::PixelDataWrite::kThroughDcmtk);
  EXPECT_TRUE(Bytes(out) == ThroughDcmtk());
}

// copy_file_range refuses to copy between file systems (EXDEV); sendfile does it instead.
TEST_F(SaveCopyingPixelDataTest, CopiesBetweenFileSystems) {
  const fs::path shm = "/dev/shm";
  struct stat here {
  }, there{};
  if (::stat(dir_.path().c_str(), &here) != 0 || ::stat(shm.c_str(), &there) != 0 ||
      here.st_dev == there.st_dev)
    GTEST_SKIP() << "needs /dev/shm on a file system other than " << dir_.path();
  auto loaded = deid_io::LoadLazily(Image({.rows = 256, .columns = 256}));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const fs::path out = shm / ("conduit-dataset-io-test-" + std::to_string(::getpid()) + "-" +
                              dir_.path().filename().string() + ".dcm");
  auto path = deid_io::SaveAtomicallyCopyingPixelData(**loaded, (*loaded)->xfer, out,
                                                      /*zero_preamble=*/false);
  const std::string copied = Bytes(out);
  std::error_code ec;
  fs::remove(out, ec);
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  EXPECT_EQ(*path, deid_io::PixelDataWrite::kCopiedFromInput);
  EXPECT_TRUE(copied == ThroughDcmtk());
}

}  // namespace
}  // namespace conduit
