#include "reference_tool/segmentation.h"

#include <cstddef>

namespace conduit::tools {

std::vector<uint8_t> LabelSlice(std::span<const int16_t> values, int rows, int cols,
                                const Thresholds& thresholds) {
  const size_t n = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  std::vector<uint8_t> outside(n, 0);
  std::vector<size_t> stack;
  auto seed = [&](size_t i) {
    if (outside[i] == 0 && values[i] <= thresholds.tissue_above) {
      outside[i] = 1;
      stack.push_back(i);
    }
  };
  for (int c = 0; c < cols; ++c) {
    seed(static_cast<size_t>(c));
    seed(static_cast<size_t>(rows - 1) * cols + c);
  }
  for (int r = 0; r < rows; ++r) {
    seed(static_cast<size_t>(r) * cols);
    seed(static_cast<size_t>(r) * cols + cols - 1);
  }
  while (!stack.empty()) {
    size_t i = stack.back();
    stack.pop_back();
    size_t r = i / cols;
    size_t c = i % cols;
    if (r > 0) seed(i - cols);
    if (r + 1 < static_cast<size_t>(rows)) seed(i + cols);
    if (c > 0) seed(i - 1);
    if (c + 1 < static_cast<size_t>(cols)) seed(i + 1);
  }
  std::vector<uint8_t> labels(n, 0);
  for (size_t i = 0; i < n; ++i) {
    if (outside[i] != 0) continue;
    labels[i] = kBodyLabel;
    if (values[i] < thresholds.air_below) labels[i] |= kLungLabel;
  }
  return labels;
}

void Histogram::Add(std::span<const int16_t> values) {
  for (int16_t v : values) ++counts_[static_cast<size_t>(static_cast<int>(v) + 32768)];
  total_ += values.size();
}

int Histogram::OtsuThreshold() const {
  double sum_all = 0;
  for (size_t i = 0; i < counts_.size(); ++i) sum_all += static_cast<double>(i) * counts_[i];
  double weight_low = 0;
  double sum_low = 0;
  double best_variance = -1;
  size_t best = 0;
  bool seen_any = false;
  const double total = static_cast<double>(total_);
  for (size_t t = 0; t < counts_.size(); ++t) {
    if (counts_[t] == 0 && !seen_any) continue;
    if (!seen_any) best = t;  // the minimum value: the answer when all values are equal
    seen_any = true;
    weight_low += static_cast<double>(counts_[t]);
    sum_low += static_cast<double>(t) * counts_[t];
    double weight_high = total - weight_low;
    if (weight_high <= 0) break;
    double mean_low = sum_low / weight_low;
    double mean_high = (sum_all - sum_low) / weight_high;
    double variance = weight_low * weight_high * (mean_low - mean_high) * (mean_low - mean_high);
    if (variance > best_variance) {
      best_variance = variance;
      best = t;
    }
  }
  return static_cast<int>(best) - 32768;
}

void LabelCounts::Add(std::span<const uint8_t> labels) {
  for (uint8_t l : labels) {
    body += (l & kBodyLabel) != 0;
    lung += (l & kLungLabel) != 0;
  }
}

}  // namespace conduit::tools
