#include "dicom/instance_meta.h"

#include <gtest/gtest.h>

#include <fstream>

#include "dicom/test_support.h"

namespace conduit {
namespace {

using testing::CtSpec;
using testing::Syntax;
using testing::TempDir;
using testing::WriteCtImage;

class InstanceMetaTest : public ::testing::Test {
 protected:
  std::filesystem::path Write(const std::string& name, std::string_view bytes) {
    const auto file = dir_.path() / name;
    std::ofstream(file, std::ios::binary) << bytes;
    return file;
  }
  TempDir dir_;
};

TEST_F(InstanceMetaTest, ReadsIdentifyingAttributesOfAnExplicitLittleEndianImage) {
  const auto file = dir_.path() / "ct.dcm";
  CtSpec spec;
  spec.instance_number = 7;
  WriteCtImage(file, spec);

  Result<InstanceMeta> meta = ReadInstanceMeta(file);

  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_EQ(meta->study_uid.str(), spec.study_uid);
  EXPECT_EQ(meta->series_uid.str(), spec.series_uid);
  EXPECT_EQ(meta->sop_instance_uid.str(), spec.sop_instance_uid);
  EXPECT_EQ(meta->sop_class_uid.str(), "1.2.840.10008.5.1.4.1.1.2");
  EXPECT_EQ(meta->transfer_syntax_uid, "1.2.840.10008.1.2.1");
  EXPECT_EQ(meta->patient_id, "PID0001");
  EXPECT_EQ(meta->patient_name, "TEST^PATIENT");
  EXPECT_EQ(meta->accession_number, "ACC0001");
  EXPECT_EQ(meta->study_date, "20240102");
  EXPECT_EQ(meta->modality, "CT");
  EXPECT_EQ(meta->body_part, "CHEST");
  EXPECT_EQ(meta->study_description, "CT CHEST");
  EXPECT_EQ(meta->series_description, "AXIAL 1mm");
  EXPECT_EQ(meta->series_number, 3);
  EXPECT_EQ(meta->instance_number, 7);
}

TEST_F(InstanceMetaTest, AttributesHoldTopLevelTextElementsByKeyword) {
  const auto file = dir_.path() / "ct.dcm";
  WriteCtImage(file, CtSpec{});

  Result<InstanceMeta> meta = ReadInstanceMeta(file);

  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  const auto& a = meta->attributes;
  EXPECT_EQ(a.at("Modality"), "CT");
  EXPECT_EQ(a.at("SOPClassUID"), "1.2.840.10008.5.1.4.1.1.2");
  EXPECT_EQ(a.at("BodyPartExamined"), "CHEST");
  EXPECT_EQ(a.at("ImageType"), "ORIGINAL\\PRIMARY\\AXIAL");
  EXPECT_EQ(a.at("RescaleIntercept"), "-1024");
  EXPECT_EQ(a.at("Rows"), "16") << "binary numbers as decimal text (QIDO-RS returns Rows)";
  EXPECT_EQ(a.at("BitsAllocated"), "16");
  EXPECT_FALSE(a.contains("PixelData"));
}

TEST_F(InstanceMetaTest, ReadsImplicitLittleEndianDeflatedAndJpegLsFiles) {
  struct Case {
    Syntax syntax;
    std::string transfer_syntax_uid;
  };
  for (const Case& c : {Case{Syntax::kImplicitLittle, "1.2.840.10008.1.2"},
                        Case{Syntax::kDeflated, "1.2.840.10008.1.2.1.99"},
                        Case{Syntax::kJpegLsLossless, "1.2.840.10008.1.2.4.80"}}) {
    const auto file = dir_.path() / ("ct-" + c.transfer_syntax_uid + ".dcm");
    CtSpec spec;
    spec.syntax = c.syntax;
    WriteCtImage(file, spec);
    Result<InstanceMeta> meta = ReadInstanceMeta(file);
    ASSERT_TRUE(meta.ok()) << meta.status().ToString();
    EXPECT_EQ(meta->transfer_syntax_uid, c.transfer_syntax_uid);
    EXPECT_EQ(meta->sop_instance_uid.str(), spec.sop_instance_uid);
  }
}

TEST_F(InstanceMetaTest, MissingFileIsNotFound) {
  Result<InstanceMeta> meta = ReadInstanceMeta(dir_.path() / "absent.dcm");
  ASSERT_FALSE(meta.ok());
  EXPECT_EQ(meta.status().code(), StatusCode::kNotFound);
}

TEST_F(InstanceMetaTest, TextFileIsInvalidArgumentNamingTheFile) {
  const auto file = Write("notes.txt", "This is not a DICOM file, just some text.\n");
  Result<InstanceMeta> meta = ReadInstanceMeta(file);
  ASSERT_FALSE(meta.ok());
  EXPECT_EQ(meta.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(meta.status().message().find(file.string()), std::string::npos)
      << meta.status().message();
}

TEST_F(InstanceMetaTest, TruncatedFilesAreInvalidArgument) {
  const auto whole = dir_.path() / "whole.dcm";
  WriteCtImage(whole, CtSpec{});
  const auto size = std::filesystem::file_size(whole);
  // Cut inside the meta header, inside the identifying attributes, and inside pixel data.
  for (uintmax_t cut : {uintmax_t{200}, uintmax_t{400}, size - 100}) {
    const auto file = dir_.path() / ("cut-" + std::to_string(cut) + ".dcm");
    std::filesystem::copy_file(whole, file);
    std::filesystem::resize_file(file, cut);
    Result<InstanceMeta> meta = ReadInstanceMeta(file);
    ASSERT_FALSE(meta.ok()) << "cut at " << cut << " of " << size;
    EXPECT_EQ(meta.status().code(), StatusCode::kInvalidArgument) << meta.status().ToString();
  }
}

TEST_F(InstanceMetaTest, DatasetWithoutSopInstanceUidIsInvalidArgument) {
  const auto file = dir_.path() / "no-sop.dcm";
  CtSpec spec;
  spec.sop_instance_uid = "";
  WriteCtImage(file, spec);
  Result<InstanceMeta> meta = ReadInstanceMeta(file);
  ASSERT_FALSE(meta.ok());
  EXPECT_EQ(meta.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(meta.status().message().find("SOPInstanceUID"), std::string::npos)
      << meta.status().message();
}

TEST_F(InstanceMetaTest, ScanWalksDirectoriesAndReportsNonDicomFiles) {
  const auto files = testing::WriteCtSeries(dir_.path() / "study" / "series", 3, "1.2.3.4");
  Write("study/README", "not dicom");

  MetaScan scan = ScanInstanceMetas(dir_.path());

  ASSERT_EQ(scan.instances.size(), 3u);
  EXPECT_EQ(scan.instances[0].second.study_uid.str(), "1.2.3.4");
  ASSERT_EQ(scan.errors.size(), 1u);
  EXPECT_EQ(scan.errors[0].rfind((dir_.path() / "study" / "README").string() + ": ", 0), 0u)
      << scan.errors[0];

  MetaScan single = ScanInstanceMetas(files[0]);
  EXPECT_EQ(single.instances.size(), 1u);
  EXPECT_TRUE(single.errors.empty());
}

}  // namespace
}  // namespace conduit
