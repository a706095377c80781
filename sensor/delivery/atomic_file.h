// Small file-system steps the spool needs to be crash-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace tripline::delivery {

// Replaces dir/name with `contents` so that after a crash the file holds either the old or
// the new contents, never a mix: writes dir/name.tmp, fdatasyncs it, renames it over
// dir/name and fsyncs the directory. A leftover dir/name.tmp (a crash, or a link someone
// planted) is removed first and the new one created with O_EXCL|O_NOFOLLOW, so the write
// never goes through a symbolic link.
Status WriteFileAtomically(const std::string& dir, std::string_view name,
                           std::string_view contents);

// The whole file; NotFound when it does not exist. Follows links: for configured files
// such as certificates (a Kubernetes secret volume is made of links).
Result<std::string> ReadWholeFile(const std::string& path);

// A file of the sensor's own directory: like ReadWholeFile, but a symbolic link or anything
// that is not a regular file is refused (PermissionDenied) rather than followed or waited on.
Result<std::string> ReadOwnFile(const std::string& path);

// The spool directory: created with mode 0700 when missing (with its parents), then checked
// to be a directory, not a symbolic link, owned by this process's user and not writable by
// group or others. It holds the events not yet delivered and the acknowledged sequence;
// anyone else who could write there could replace them or plant links. PermissionDenied
// says what is wrong and how to fix it.
Status PrepareOwnDirectory(const std::string& dir);

// fsync of a directory, so that created, renamed and removed entries survive a crash.
Status SyncDirectory(const std::string& dir);

}  // namespace tripline::delivery
