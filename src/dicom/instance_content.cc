#include "dicom/instance_content.h"

#include <dcmtk/config/osconfig.h>  // must come first among DCMTK headers
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfcache.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcjson.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcsequen.h>
#include <dcmtk/dcmdata/dcxfer.h>

#include <algorithm>
#include <sstream>
#include <vector>

#include "dicom/deflated_file.h"

namespace conduit {
namespace {

// Values over this are not loaded by the parser; they are read from the file when asked for.
constexpr Uint32 kMaxLoadedValueBytes = 4096;
constexpr uint32_t kChunkBytes = 1u << 20;

// A parsed file: the dataset, its transfer syntax, and the inflated copy a deflated file
// is parsed from (kept alive while values are read lazily from it).
struct LoadedFile {
  std::unique_ptr<InflatedDataset> inflated;
  DcmFileFormat format;
  std::string transfer_syntax_uid;
  E_TransferSyntax dataset_xfer = EXS_Unknown;  // of the bytes parsed (inflated: explicit LE)
};

Result<std::unique_ptr<LoadedFile>> Load(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return NotFound("no such file");
  auto loaded = std::make_unique<LoadedFile>();
  ASSIGN_OR_RETURN(loaded->inflated, InflateIfDeflated(file));
  OFCondition cond;
  if (loaded->inflated != nullptr) {
    cond = loaded->format.getDataset()->loadFile(loaded->inflated->path().c_str(),
                                                 EXS_LittleEndianExplicit, EGL_noChange,
                                                 kMaxLoadedValueBytes);
    OFString uid;
    loaded->inflated->meta().findAndGetOFString(DCM_TransferSyntaxUID, uid);
    loaded->transfer_syntax_uid = uid.c_str();
    loaded->dataset_xfer = EXS_LittleEndianExplicit;
  } else {
    cond = loaded->format.loadFile(file.c_str(), EXS_Unknown, EGL_noChange, kMaxLoadedValueBytes,
                                   ERM_autoDetect);
    loaded->dataset_xfer = loaded->format.getDataset()->getOriginalXfer();
    OFString uid;
    if (loaded->format.getMetaInfo()->findAndGetOFString(DCM_TransferSyntaxUID, uid).good()) {
      loaded->transfer_syntax_uid = uid.c_str();
    } else {
      loaded->transfer_syntax_uid = DcmXfer(loaded->dataset_xfer).getXferID();
    }
  }
  if (cond.bad()) return InvalidArgument(std::string("not DICOM or truncated: ") + cond.text());
  if (loaded->format.getDataset()->card() == 0) return InvalidArgument("not DICOM: empty dataset");
  return loaded;
}

bool IsBinaryVr(DcmEVR vr) {
  switch (vr) {
    case EVR_OB:
    case EVR_OD:
    case EVR_OF:
    case EVR_OL:
    case EVR_OV:
    case EVR_OW:
    case EVR_ox:
    case EVR_px:
    case EVR_UN:
    case EVR_UNKNOWN:
    case EVR_UNKNOWN2B:
      return true;
    default:
      return false;
  }
}

// Removes Pixel Data and binary values over kMaxInlineBinaryBytes from `item`, recursively.
void DropBulkData(DcmItem& item) {
  for (unsigned long i = item.card(); i-- > 0;) {
    DcmElement* element = item.getElement(i);
    if (element == nullptr) continue;
    const DcmTagKey key = element->getTag();
    if (key == DCM_PixelData || key == DCM_FloatPixelData || key == DCM_DoubleFloatPixelData ||
        (IsBinaryVr(element->ident()) && element->getLengthField() > kMaxInlineBinaryBytes) ||
        element->ident() == EVR_pixelSQ) {
      delete item.remove(element);
      continue;
    }
    if (element->ident() == EVR_SQ) {
      auto* sequence = static_cast<DcmSequenceOfItems*>(element);
      for (unsigned long j = 0; j < sequence->card(); ++j) DropBulkData(*sequence->getItem(j));
    }
  }
}

Result<uint32_t> US(DcmDataset& dataset, const DcmTagKey& key, const char* name, bool required,
                    uint32_t default_value) {
  Uint16 value = 0;
  if (dataset.findAndGetUint16(key, value).good()) return value;
  if (required) return InvalidArgument(std::string("no ") + name);
  return default_value;
}

class FrameReaderImpl final : public FrameReader {
 public:
  explicit FrameReaderImpl(std::unique_ptr<LoadedFile> file) : file_(std::move(file)) {}

  Status Init() {
    DcmDataset& dataset = *file_->format.getDataset();
    DcmElement* element = nullptr;
    if (dataset.findAndGetElement(DCM_PixelData, element).bad() || element == nullptr) {
      return InvalidArgument("no Pixel Data");
    }
    pixel_data_ = dynamic_cast<DcmPixelData*>(element);
    if (pixel_data_ == nullptr) return InvalidArgument("Pixel Data of an unexpected kind");
    Sint32 frames = 1;
    if (dataset.findAndGetSint32(DCM_NumberOfFrames, frames).bad() || frames < 1) frames = 1;
    frame_count_ = frames;

    const DcmXfer xfer(file_->dataset_xfer);
    encapsulated_ = xfer.isEncapsulated();
    if (!encapsulated_) return InitNative(dataset);
    return InitEncapsulated();
  }

  int frame_count() const override { return frame_count_; }
  bool encapsulated() const override { return encapsulated_; }
  const std::string& transfer_syntax_uid() const override { return file_->transfer_syntax_uid; }

  Status ReadFrame(int number, const std::function<Status(std::string_view bytes)>& sink) override {
    if (number < 1 || number > frame_count_) {
      return InvalidArgument("frame " + std::to_string(number) + " of " +
                             std::to_string(frame_count_));
    }
    const size_t index = static_cast<size_t>(number - 1);
    if (!encapsulated_) {
      return Stream(pixel_data_, index * frame_bytes_, frame_bytes_, sink, EBO_LittleEndian);
    }
    for (size_t item = frame_first_item_[index]; item < frame_first_item_[index + 1]; ++item) {
      DcmPixelItem* fragment = nullptr;
      if (sequence_->getItem(fragment, static_cast<unsigned long>(item)).bad() ||
          fragment == nullptr) {
        return DataLoss("fragment " + std::to_string(item) + " missing");
      }
      RETURN_IF_ERROR(Stream(fragment, 0, fragment->getLengthField(), sink, gLocalByteOrder));
    }
    return Status::Ok();
  }

 private:
  Status InitNative(DcmDataset& dataset) {
    ASSIGN_OR_RETURN(uint32_t rows, US(dataset, DCM_Rows, "Rows", true, 0));
    ASSIGN_OR_RETURN(uint32_t columns, US(dataset, DCM_Columns, "Columns", true, 0));
    ASSIGN_OR_RETURN(uint32_t samples, US(dataset, DCM_SamplesPerPixel, "", false, 1));
    ASSIGN_OR_RETURN(uint32_t bits, US(dataset, DCM_BitsAllocated, "BitsAllocated", true, 0));
    const uint64_t frame_bits = uint64_t{rows} * columns * samples * bits;
    if (frame_bits % 8 != 0 && frame_count_ > 1) {
      return FailedPrecondition("frames of " + std::to_string(frame_bits) +
                                " bits do not start on byte boundaries");
    }
    frame_bytes_ = (frame_bits + 7) / 8;
    const uint64_t length = pixel_data_->getLengthField();
    if (frame_bytes_ == 0 || frame_bytes_ * static_cast<uint64_t>(frame_count_) > length) {
      return InvalidArgument("Pixel Data holds " + std::to_string(length) + " bytes, not " +
                             std::to_string(frame_count_) + " frames of " +
                             std::to_string(frame_bytes_));
    }
    return Status::Ok();
  }

  Status InitEncapsulated() {
    // MPEG-2, MPEG-4 and HEVC (1.2.840.10008.1.2.4.100 to .108): one stream, not frames.
    if (file_->transfer_syntax_uid.rfind("1.2.840.10008.1.2.4.10", 0) == 0) {
      return FailedPrecondition("a video transfer syntax has no separable frames");
    }
    DcmPixelSequence* sequence = nullptr;
    if (pixel_data_->getEncapsulatedRepresentation(file_->dataset_xfer, nullptr, sequence).bad() ||
        sequence == nullptr || sequence->card() < 2) {
      return InvalidArgument("encapsulated Pixel Data without fragments");
    }
    sequence_ = sequence;
    const size_t fragments = sequence->card() - 1;  // item 0 is the Basic Offset Table
    frame_first_item_.clear();
    if (frame_count_ == 1) {
      frame_first_item_ = {1, fragments + 1};
      return Status::Ok();
    }
    ASSIGN_OR_RETURN(std::vector<uint32_t> offsets, OffsetTable());
    if (offsets.size() == static_cast<size_t>(frame_count_)) {
      // Map each offset (from the first fragment's item tag) to the fragment starting there.
      uint64_t position = 0;
      size_t next = 0;
      for (size_t item = 1; item <= fragments; ++item) {
        if (next < offsets.size() && offsets[next] == position) {
          frame_first_item_.push_back(item);
          ++next;
        }
        DcmPixelItem* fragment = nullptr;
        if (sequence->getItem(fragment, static_cast<unsigned long>(item)).bad()) break;
        position += 8 + uint64_t{fragment->getLengthField()};
      }
      if (next != offsets.size() || frame_first_item_.empty() || frame_first_item_[0] != 1) {
        return FailedPrecondition("the Basic Offset Table does not match the fragments");
      }
    } else if (fragments == static_cast<size_t>(frame_count_)) {
      for (size_t item = 1; item <= fragments; ++item) frame_first_item_.push_back(item);
    } else {
      return FailedPrecondition(std::to_string(frame_count_) + " frames in " +
                                std::to_string(fragments) +
                                " fragments without a Basic Offset Table");
    }
    frame_first_item_.push_back(fragments + 1);
    return Status::Ok();
  }

  Result<std::vector<uint32_t>> OffsetTable() {
    DcmPixelItem* table = nullptr;
    if (sequence_->getItem(table, 0).bad() || table == nullptr) return std::vector<uint32_t>();
    const Uint32 length = table->getLengthField();
    if (length == 0 || length % 4 != 0 || length > 4u * static_cast<Uint32>(frame_count_)) {
      return std::vector<uint32_t>();
    }
    std::vector<uint32_t> offsets(length / 4);
    if (table->getPartialValue(offsets.data(), 0, length, &cache_, EBO_LittleEndian).bad()) {
      return DataLoss("Basic Offset Table unreadable");
    }
    // Stored little endian: convert to this machine's order.
    for (uint32_t& o : offsets) {
      const auto* b = reinterpret_cast<const unsigned char*>(&o);
      o = uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
    }
    return offsets;
  }

  Status Stream(DcmElement* element, uint64_t offset, uint64_t length,
                const std::function<Status(std::string_view)>& sink, E_ByteOrder order) {
    std::string buffer;
    while (length > 0) {
      const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(length, kChunkBytes));
      buffer.resize(n);
      const OFCondition cond =
          element->getPartialValue(buffer.data(), static_cast<Uint32>(offset), n, &cache_, order);
      if (cond.bad()) return DataLoss(std::string("reading pixel data: ") + cond.text());
      RETURN_IF_ERROR(sink(buffer));
      offset += n;
      length -= n;
    }
    return Status::Ok();
  }

  std::unique_ptr<LoadedFile> file_;
  DcmFileCache cache_;
  DcmPixelData* pixel_data_ = nullptr;
  DcmPixelSequence* sequence_ = nullptr;
  int frame_count_ = 1;
  bool encapsulated_ = false;
  uint64_t frame_bytes_ = 0;
  // Encapsulated: frame i is items [frame_first_item_[i], frame_first_item_[i + 1]).
  std::vector<size_t> frame_first_item_;
};

}  // namespace

Result<std::string> InstanceJson(const std::filesystem::path& file) {
  Result<std::unique_ptr<LoadedFile>> loaded = Load(file);
  if (!loaded.ok()) return loaded.status().WithContext("instance json " + file.string());
  DcmDataset& dataset = *(*loaded)->format.getDataset();
  DropBulkData(dataset);
  // Best effort: a dataset whose character set iconv cannot convert is written as stored.
  (void)dataset.convertToUTF8();
  // DcmDataset::writeJson writes the members only (DcmFileFormat adds the braces).
  std::ostringstream out;
  out << '{';
  DcmJsonFormatCompact format(OFFalse);
  const OFCondition cond = dataset.writeJson(out, format);
  if (cond.bad()) {
    return InvalidArgument("instance json " + file.string() + ": " + cond.text());
  }
  out << '}';
  return out.str();
}

Result<std::unique_ptr<FrameReader>> FrameReader::Open(const std::filesystem::path& file) {
  Result<std::unique_ptr<LoadedFile>> loaded = Load(file);
  if (!loaded.ok()) return loaded.status().WithContext("frames " + file.string());
  auto reader = std::make_unique<FrameReaderImpl>(std::move(loaded).value());
  Status st = reader->Init();
  if (!st.ok()) return st.WithContext("frames " + file.string());
  return std::unique_ptr<FrameReader>(std::move(reader));
}

}  // namespace conduit
