// Configuration files: protobuf text format checked against a schema message
// (proto/tripline/v1/config.proto). Unknown fields, type errors and syntax errors are
// reported with the file name, line and column.
#pragma once

#include <string>

#include "common/status.h"

namespace google::protobuf {
class Message;
}

namespace tripline {

// Parses `text` into `out`. `name` is used in error messages.
Status ParseTextConfig(const std::string& text, const std::string& name,
                       google::protobuf::Message* out);
// Reads and parses the file at `path`. Files over 4 MiB are refused.
Status LoadTextConfigFile(const std::string& path, google::protobuf::Message* out);

}  // namespace tripline
