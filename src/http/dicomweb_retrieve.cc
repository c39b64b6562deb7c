// WADO-RS (PS3.18 §10.4): instances, metadata and frames, streamed with chunked transfer
// coding so that memory stays bounded whatever the size of the study: one 256 KiB buffer of
// file bytes, one instance's metadata or one 1 MiB chunk of a frame at a time.
// Transfer syntaxes are served as stored; there is no transcoding.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>

#include "dicom/instance_content.h"
#include "http/dicomweb_read_internal.h"
#include "http/multipart.h"

namespace conduit {
namespace {

constexpr size_t kFileChunkBytes = 256 * 1024;
constexpr size_t kMaxFramesPerRequest = 10'000;

// One media range of an Accept field.
struct MediaRange {
  MediaType type;
  bool rejected = false;  // q=0
};

// Splits an Accept value at commas outside quoted strings and parses each range; ranges
// that do not parse are skipped. An empty field gives */*.
std::vector<MediaRange> ParseAccept(std::string_view accept) {
  std::vector<MediaRange> out;
  std::vector<std::string> pieces(1);
  bool quoted = false, escaped = false;
  for (char c : accept) {
    if (escaped) {
      escaped = false;
    } else if (quoted && c == '\\') {
      escaped = true;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      pieces.emplace_back();
      continue;
    }
    pieces.back() += c;
  }
  for (const std::string& piece : pieces) {
    if (piece.find_first_not_of(" \t") == std::string::npos) continue;
    Result<MediaType> type = ParseMediaType(piece);
    if (!type.ok()) continue;
    MediaRange range{std::move(type).value()};
    if (auto q = range.type.Parameter("q")) {
      range.rejected = q->find_first_not_of("0.") == std::string_view::npos;
    }
    out.push_back(std::move(range));
  }
  if (out.empty() && accept.find_first_not_of(" \t") == std::string_view::npos) {
    out.push_back({MediaType{"*", "*", {}}});
  }
  return out;
}

bool IsWildcard(const MediaType& t) { return t.type == "*" && t.subtype == "*"; }

// True if some range admits multipart/related; type=`part_type` in `syntaxes` (every part's
// transfer syntax). A range without type= or transfer-syntax= admits any.
bool AcceptsMultipart(std::string_view accept, std::string_view part_type,
                      const std::set<std::string>& syntaxes) {
  for (const MediaRange& r : ParseAccept(accept)) {
    if (r.rejected) continue;
    if (IsWildcard(r.type) || (r.type.type == "multipart" && r.type.subtype == "*")) return true;
    if (r.type.type != "multipart" || r.type.subtype != "related") continue;
    auto type = r.type.Parameter("type");
    if (type && !(*type == part_type || *type == "*/*")) continue;
    auto syntax = r.type.Parameter("transfer-syntax");
    if (!syntax || *syntax == "*") return true;
    if (syntaxes.size() == 1 && *syntaxes.begin() == *syntax) return true;
  }
  return false;
}

// Streams parts one after the other; each part's header and body come from `next`, which
// writes them through `write` or names a file whose bytes follow. Lives in the provider.
class PartStream {
 public:
  using Write = std::function<Status(std::string_view bytes)>;
  using NextPart = std::function<Status(size_t index, MultipartWriter& writer, const Write& write,
                                        std::filesystem::path& file)>;

  PartStream(size_t parts, std::string related_type, NextPart next)
      : parts_(parts), related_type_(std::move(related_type)), next_(std::move(next)) {}

  std::string ContentType() const { return writer_.ContentType(related_type_); }

  // One step of the chunked provider: one file chunk, or one part's header (and body).
  bool Step(httplib::DataSink& sink) {
    if (file_.is_open()) {
      file_.read(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
      const std::streamsize n = file_.gcount();
      if (n > 0 && !sink.write(buffer_.data(), static_cast<size_t>(n))) return false;
      if (file_.eof()) {
        file_.close();
      } else if (!file_) {
        spdlog::warn("dicomweb: reading an instance file failed mid-response");
        return false;
      }
      return true;
    }
    if (index_ == parts_) {
      const std::string close = writer_.Close();
      if (!sink.write(close.data(), close.size())) return false;
      sink.done();
      return true;
    }
    std::filesystem::path file;
    const Write write = [&sink](std::string_view bytes) {
      return sink.write(bytes.data(), bytes.size()) ? Status::Ok()
                                                    : Unavailable("client went away");
    };
    Status st = next_(index_++, writer_, write, file);
    if (!st.ok()) {
      // Headers are gone: closing the connection is how the client learns the body is cut.
      if (st.code() != StatusCode::kUnavailable) {
        spdlog::warn("dicomweb: a part failed mid-response ({}); closing the connection",
                     StatusCodeName(st.code()));
      }
      return false;
    }
    if (!file.empty()) {
      file_.open(file, std::ios::binary);
      if (!file_) {
        spdlog::warn("dicomweb: an instance file vanished mid-response");
        return false;
      }
      buffer_.resize(kFileChunkBytes);
    }
    return true;
  }

 private:
  const size_t parts_;
  const std::string related_type_;
  NextPart next_;
  MultipartWriter writer_;
  size_t index_ = 0;
  std::ifstream file_;
  std::string buffer_;
};

void Stream(httplib::Response& res, std::shared_ptr<PartStream> stream) {
  res.status = 200;
  const std::string content_type = stream->ContentType();
  res.set_chunked_content_provider(
      content_type, [stream](size_t, httplib::DataSink& sink) { return stream->Step(sink); });
}

std::set<std::string> SyntaxesOf(const std::vector<StoredInstance>& instances) {
  std::set<std::string> out;
  for (const StoredInstance& i : instances) out.insert(i.transfer_syntax_uid);
  return out;
}

// The media type of frames stored in `syntax` (PS3.18 §8.7.3.5.3); nullopt if unsupported.
std::optional<std::string> FrameMediaType(const std::string& syntax, bool encapsulated) {
  if (!encapsulated) return "application/octet-stream";
  static const std::pair<const char*, const char*> kTypes[] = {
      {"1.2.840.10008.1.2.4.50", "image/jpeg"},  {"1.2.840.10008.1.2.4.51", "image/jpeg"},
      {"1.2.840.10008.1.2.4.57", "image/jpeg"},  {"1.2.840.10008.1.2.4.70", "image/jpeg"},
      {"1.2.840.10008.1.2.4.80", "image/jls"},   {"1.2.840.10008.1.2.4.81", "image/jls"},
      {"1.2.840.10008.1.2.4.90", "image/jp2"},   {"1.2.840.10008.1.2.4.91", "image/jp2"},
      {"1.2.840.10008.1.2.4.92", "image/jpx"},   {"1.2.840.10008.1.2.4.93", "image/jpx"},
      {"1.2.840.10008.1.2.4.201", "image/jphc"}, {"1.2.840.10008.1.2.4.202", "image/jphc"},
      {"1.2.840.10008.1.2.4.203", "image/jphc"}, {"1.2.840.10008.1.2.5", "image/dicom-rle"},
  };
  for (const auto& [uid, type] : kTypes) {
    if (syntax == uid) return std::string(type);
  }
  return std::nullopt;
}

// "1,3,5" -> {1, 3, 5}; errors name the problem.
Result<std::vector<int>> ParseFrameList(std::string_view list) {
  std::vector<int> frames;
  if (list.empty()) return InvalidArgument("frame list: empty");
  for (;;) {
    const size_t comma = list.find(',');
    const std::string_view item = list.substr(0, comma);
    int n = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), n);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || n < 1) {
      return InvalidArgument("frame list: each frame number must be a positive integer");
    }
    frames.push_back(n);
    if (frames.size() > kMaxFramesPerRequest) {
      return InvalidArgument("frame list: more than " + std::to_string(kMaxFramesPerRequest) +
                             " frames");
    }
    if (comma == std::string_view::npos) return frames;
    list.remove_prefix(comma + 1);
  }
}

bool FilesPresent(const std::vector<StoredInstance>& instances, httplib::Response& res) {
  for (const StoredInstance& i : instances) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(i.path, ec)) {
      spdlog::warn("dicomweb: an instance to retrieve has no file");
      SendDicomwebError(res, 500, "an instance file is missing");
      return false;
    }
  }
  return true;
}

}  // namespace

void RetrieveInstances(std::vector<StoredInstance> instances, const httplib::Request& req,
                       httplib::Response& res) {
  if (!AcceptsMultipart(req.get_header_value("Accept"), "application/dicom",
                        SyntaxesOf(instances))) {
    SendDicomwebError(res, 406,
                      "instances are returned as multipart/related; type=\"application/dicom\" "
                      "in the transfer syntax they were stored in (no transcoding)");
    return;
  }
  if (!FilesPresent(instances, res)) return;
  const size_t parts = instances.size();
  Stream(res, std::make_shared<PartStream>(
                  parts, "application/dicom",
                  [instances = std::move(instances)](size_t index, MultipartWriter& writer,
                                                     const PartStream::Write& write,
                                                     std::filesystem::path& file) -> Status {
                    const StoredInstance& i = instances[index];
                    file = i.path;
                    return write(writer.PartHeader("application/dicom; transfer-syntax=" +
                                                   i.transfer_syntax_uid));
                  }));
}

void RetrieveMetadata(std::vector<StoredInstance> instances, const httplib::Request& req,
                      httplib::Response& res) {
  if (!AcceptsDicomJson(req.get_header_value("Accept"))) {
    SendDicomwebError(res, 406, "metadata is application/dicom+json only");
    return;
  }
  if (!FilesPresent(instances, res)) return;
  struct State {
    std::vector<StoredInstance> instances;
    size_t next = 0;
  };
  auto state = std::make_shared<State>(State{std::move(instances)});
  res.status = 200;
  res.set_chunked_content_provider(
      "application/dicom+json", [state](size_t, httplib::DataSink& sink) {
        if (state->next == state->instances.size()) {
          const char* end = state->instances.empty() ? "[]" : "]";
          if (!sink.write(end, std::strlen(end))) return false;
          sink.done();
          return true;
        }
        const size_t index = state->next++;
        Result<std::string> json = InstanceJson(state->instances[index].path);
        if (!json.ok()) {
          spdlog::warn(
              "dicomweb: metadata of an instance failed mid-response ({}); closing "
              "the connection",
              StatusCodeName(json.status().code()));
          return false;
        }
        std::string chunk = (index == 0 ? "[" : ",") + *json;
        return sink.write(chunk.data(), chunk.size());
      });
}

void RetrieveFrames(const StoredInstance& instance, std::string_view frame_list,
                    const httplib::Request& req, httplib::Response& res) {
  Result<std::vector<int>> frames = ParseFrameList(frame_list);
  if (!frames.ok()) {
    SendDicomwebError(res, 400, frames.status().message());
    return;
  }
  Result<std::unique_ptr<FrameReader>> opened = FrameReader::Open(instance.path);
  if (!opened.ok()) {
    switch (opened.status().code()) {
      case StatusCode::kNotFound:
        spdlog::warn("dicomweb: an instance to retrieve has no file");
        SendDicomwebError(res, 500, "the instance file is missing");
        return;
      case StatusCode::kFailedPrecondition:
        SendDicomwebError(res, 406,
                          "the frames of this instance cannot be separated without decoding "
                          "it, and this server does not transcode");
        return;
      default:
        SendDicomwebError(res, 400, "the instance has no retrievable pixel data frames");
        return;
    }
  }
  std::shared_ptr<FrameReader> reader = std::move(opened).value();
  for (int n : *frames) {
    if (n > reader->frame_count()) {
      SendDicomwebError(res, 404,
                        "frame " + std::to_string(n) +
                            " does not exist (the instance "
                            "has " +
                            std::to_string(reader->frame_count()) + ")");
      return;
    }
  }
  const std::optional<std::string> media_type =
      FrameMediaType(reader->transfer_syntax_uid(), reader->encapsulated());
  if (!media_type) {
    SendDicomwebError(res, 406, "frames in this instance's transfer syntax are not served");
    return;
  }
  // Native frames are sent little endian whatever the stored syntax: Explicit VR Little
  // Endian, the default of application/octet-stream.
  const std::string syntax =
      reader->encapsulated() ? reader->transfer_syntax_uid() : "1.2.840.10008.1.2.1";
  if (!AcceptsMultipart(req.get_header_value("Accept"), *media_type, {syntax})) {
    SendDicomwebError(res, 406,
                      "frames of this instance are multipart/related; type=\"" + *media_type +
                          "\"; transfer-syntax=" + syntax + " (no transcoding)");
    return;
  }
  const std::string part_type = *media_type + "; transfer-syntax=" + syntax;
  const size_t parts = frames->size();
  Stream(res, std::make_shared<PartStream>(
                  parts, *media_type,
                  [reader, part_type, frames = std::move(frames).value()](
                      size_t index, MultipartWriter& writer, const PartStream::Write& write,
                      std::filesystem::path&) -> Status {
                    RETURN_IF_ERROR(write(writer.PartHeader(part_type)));
                    return reader->ReadFrame(frames[index], write);
                  }));
}

}  // namespace conduit
