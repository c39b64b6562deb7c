#include "reference_tool/source_series.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "make_study/study_writer.h"

namespace conduit::tools {
namespace {

namespace fs = std::filesystem;

class SourceSeriesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("conduit-source-series-" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const std::string& sub, StudyModality modality, int slices, int size,
             const std::string& study_uid) {
    StudySpec spec;
    spec.out_dir = dir_ / sub;
    spec.modality = modality;
    spec.slices = slices;
    spec.rows = size;
    spec.cols = size;
    spec.patient_id = "P1";
    spec.patient_name = "TEST^PATIENT";
    spec.accession = "A1";
    spec.study_uid = study_uid;
    ASSERT_TRUE(WriteStudy(spec).ok());
  }

  fs::path dir_;
};

TEST_F(SourceSeriesTest, PicksTheLargestSeriesAndOrdersSlicesAlongTheNormal) {
  Write("ct", StudyModality::kCt, 6, 32, "2.25.1");
  Write("mr", StudyModality::kMr, 4, 32, "2.25.1");
  Write("dx", StudyModality::kDx, 1, 40, "2.25.1");
  std::ofstream(dir_ / "notes.txt") << "not DICOM";
  ScanReport report;
  Result<SourceSeries> series = FindLargestConsistentSeries(dir_, &report);
  ASSERT_TRUE(series.ok()) << series.status().ToString();
  EXPECT_EQ(series->modality, "CT");
  EXPECT_EQ(series->slices.size(), 6u);
  EXPECT_EQ(report.files_seen, 12);
  EXPECT_EQ(report.dicom_files, 11);
  EXPECT_EQ(report.image_series, 2);
  EXPECT_NEAR(series->slice_spacing_mm, 2.5, 1e-6);
  for (size_t i = 1; i < series->slices.size(); ++i) {
    EXPECT_LT(series->slices[i - 1].along_normal_mm, series->slices[i].along_normal_mm);
  }
  ASSERT_NE(series->header, nullptr);
}

TEST_F(SourceSeriesTest, RejectsUnevenlySpacedSlices) {
  Write("ct", StudyModality::kCt, 5, 32, "2.25.2");
  fs::remove(dir_ / "ct" / "0003.dcm");
  Result<SourceSeries> series = FindLargestConsistentSeries(dir_, nullptr);
  ASSERT_FALSE(series.ok());
  EXPECT_EQ(series.status().code(), StatusCode::kNotFound);
  EXPECT_NE(series.status().message().find("unevenly spaced"), std::string::npos)
      << series.status().message();
}

TEST_F(SourceSeriesTest, CountsADuplicatedInstanceOnce) {
  Write("ct", StudyModality::kCt, 3, 32, "2.25.3");
  fs::copy_file(dir_ / "ct" / "0002.dcm", dir_ / "copy-of-2.dcm");
  Result<SourceSeries> series = FindLargestConsistentSeries(dir_, nullptr);
  ASSERT_TRUE(series.ok()) << series.status().ToString();
  EXPECT_EQ(series->slices.size(), 3u);
}

TEST_F(SourceSeriesTest, NoCrossSectionalSeriesIsNotFound) {
  Write("dx", StudyModality::kDx, 1, 40, "2.25.4");
  Result<SourceSeries> series = FindLargestConsistentSeries(dir_, nullptr);
  EXPECT_EQ(series.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(FindLargestConsistentSeries(dir_ / "missing", nullptr).status().code(),
            StatusCode::kNotFound);
}

}  // namespace
}  // namespace conduit::tools
