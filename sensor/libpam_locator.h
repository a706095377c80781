// Finding the libpam shared object that login daemons load, so the sensor can put uprobes on
// it without knowing which distribution it runs on.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tripline::sensor {

// The libpam the login daemons use, as a canonical path (symlinks resolved: uprobes attach
// to an inode). Tries, in order: `override_path` when not empty (an error if it is not a
// usable ELF object); the dynamic linker cache /etc/ld.so.cache; the standard library
// directories (multiarch, lib64, lib). Only objects of this process's ELF class and machine
// are taken. NotFound when there is none. The cache and the directories are looked up under
// `root` ("/" on a host; tests use a temporary tree), and so are the paths the cache lists;
// `override_path` is taken as given.
Result<std::string> LocateLibpam(std::string_view override_path = {},
                                 const std::string& root = "/");

// The paths that an ld.so.cache image (glibc "glibc-ld.so.cache1.1" format, with or without
// the old "ld.so-1.7.0" part in front) lists for `soname`, in cache order. Pure; for tests.
std::vector<std::string> LdCacheLookup(std::span<const uint8_t> cache, std::string_view soname);

}  // namespace tripline::sensor
