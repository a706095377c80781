// LogImporter: reads an auth log, parses it (auth_log_parser.h) and sends the events through
// the aggregator's ingest API, the same gRPC stream the sensors use.
//
// Exactly once across re-imports: the import speaks as a sensor of its own, whose id is
// derived from the host name, the format and the file's first lines (ImportSensorId), and
// numbers the events 1, 2, 3, ... in the order the parser produces them, which is
// deterministic. The aggregator drops sequence numbers it already holds, so importing the
// same file again stores nothing new, an interrupted import resumes where the aggregator's
// durable sequence number says, and a log that has grown since (same first lines, more at
// the end) adds only its new events. The hello's ack tells the importer what is durable;
// what is below it is not even sent.
//
// Threading: one import per call; not thread-safe with itself.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "tools/import/auth_log_parser.h"

namespace grpc {
class Channel;
}

namespace tripline::import {

struct ImportOptions {
  std::string path;
  AuthLogOptions parse;                       // format, host, year, offset
  uint32_t batch_events = 512;                // events per EventBatch
  uint32_t max_in_flight = 8;                 // batches written before their acks are read
  int64_t timeout_ns = 60 * kNanosPerSecond;  // the whole stream, per no-progress interval
  size_t max_examples = 5;                    // example lines kept per kind of problem
};

struct LineExample {
  size_t line = 0;
  std::string text;  // cut to 200 bytes, made printable
  std::string why;
};

struct ImportReport {
  std::string sensor_id;
  uint64_t lines = 0;
  uint64_t lines_with_events = 0;
  uint64_t lines_no_event = 0;
  uint64_t lines_other_program = 0;
  uint64_t lines_unrecognized = 0;
  uint64_t lines_malformed = 0;
  uint64_t lines_empty = 0;
  uint64_t events = 0;                  // events the file yields
  uint64_t already_durable = 0;         // of which the aggregator held before this import
  uint64_t sent = 0;                    // sent in this import
  uint64_t stored = 0;                  // newly durable by this import (from the acks)
  uint64_t rejected = 0;                // refused by the aggregator (acks with an error)
  std::vector<std::string> rejections;  // their errors, first few
  uint64_t durable_seq = 0;             // the aggregator's last word
  std::vector<LineExample> unrecognized_examples;
  std::vector<LineExample> malformed_examples;
  int64_t elapsed_ns = 0;
};

// "import-" + 32 hex digits of a hash of (format, host, the first 8 lines or 4 KiB of the
// file, whichever is shorter, complete lines only). Stable under renames and appends.
std::string ImportSensorId(LogFormat format, std::string_view host, std::string_view head);

// Parses every line of options.path; with a channel, sends the events (dry run without).
// `progress` (nullptr for none) gets a line rewritten in place with lines, events/s and
// time left, for a terminal. Errors: InvalidArgument / IoError when the file cannot be
// read, Unavailable / DeadlineExceeded when the aggregator cannot be reached or stops
// answering (what was acknowledged stays; running the import again resumes). The report
// is filled as far as the import got, also on error.
Status RunImport(const ImportOptions& options, const std::shared_ptr<grpc::Channel>& channel,
                 std::ostream* progress, const Clock& clock, ImportReport* report);

// The summary a person reads after an import.
void PrintImportReport(const ImportReport& report, const ImportOptions& options, bool dry_run,
                       std::ostream& out);
// The same as one JSON object (the names of ImportReport's fields, plus "file", "host",
// "format" and "dry_run"; examples as {"line", "text", "why"}).
std::string ImportReportJson(const ImportReport& report, const ImportOptions& options,
                             bool dry_run);

}  // namespace tripline::import
