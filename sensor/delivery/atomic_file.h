// Small file-system steps the spool needs to be crash-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace tripline::delivery {

// Replaces dir/name with `contents` so that after a crash the file holds either the old or
// the new contents, never a mix: writes dir/name.tmp, fdatasyncs it, renames it over
// dir/name and fsyncs the directory.
Status WriteFileAtomically(const std::string& dir, std::string_view name,
                           std::string_view contents);

// The whole file; NotFound when it does not exist.
Result<std::string> ReadWholeFile(const std::string& path);

// fsync of a directory, so that created, renamed and removed entries survive a crash.
Status SyncDirectory(const std::string& dir);

}  // namespace tripline::delivery
