#include "common/config_file.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/message.h>
#include <google/protobuf/text_format.h>

#include <fstream>
#include <sstream>

namespace tripline {
namespace {

constexpr size_t kMaxConfigBytes = 4 << 20;

class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (!has_error_) {
      has_error_ = true;
      // The parser counts from zero; people count from one.
      where_ = std::to_string(line + 1) + ":" + std::to_string(column + 1);
      message_ = message;
    }
  }
  void AddWarning(int, google::protobuf::io::ColumnNumber, const std::string&) override {}
  bool has_error() const { return has_error_; }
  std::string Describe(const std::string& name) const {
    return name + ":" + where_ + ": " + message_;
  }

 private:
  bool has_error_ = false;
  std::string where_;
  std::string message_;
};

}  // namespace

Status ParseTextConfig(const std::string& text, const std::string& name,
                       google::protobuf::Message* out) {
  if (text.size() > kMaxConfigBytes) {
    return Status::InvalidArgument(name + ": configuration larger than 4 MiB");
  }
  google::protobuf::TextFormat::Parser parser;
  FirstErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  parser.AllowUnknownField(false);
  if (!parser.ParseFromString(text, out) || errors.has_error()) {
    return Status::InvalidArgument(errors.has_error() ? errors.Describe(name)
                                                      : name + ": cannot parse configuration");
  }
  return Status::Ok();
}

Status LoadTextConfigFile(const std::string& path, google::protobuf::Message* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open configuration file " + path);
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return Status::IoError("cannot read configuration file " + path);
  return ParseTextConfig(buf.str(), path, out);
}

}  // namespace tripline
