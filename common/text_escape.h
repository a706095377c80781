// Text that came from outside, made safe to keep and safe to show.
//
// Two rules, one for each problem:
//
// 1. Storage (EscapeInvalidUtf8). Protobuf `string` fields must hold valid UTF-8: a message
//    with any other bytes serializes but does not parse back, so an event carrying one
//    would be lost between the sensor's spool and the aggregator. Kernel strings (paths,
//    argv, comm, utmp names) are bytes, so every string that enters an event passes this
//    rule. Valid UTF-8 is left exactly as it is. A string with any byte that is not part
//    of a well-formed UTF-8 sequence is rewritten so that it can be read back exactly:
//    each such byte becomes the four characters `\xNN` (lower-case hex) and each backslash
//    already in the string becomes `\\`. The caller records that the string was rewritten
//    (Event::escaped_fields), so a reader knows to undo the escape (UnescapeInvalidUtf8).
//    Well-formed means RFC 3629: shortest form, no surrogates, at most U+10FFFF, which is
//    what protobuf checks.
//
// 2. Display (EscapeForDisplay). Anything printed for a person (triplinectl tables and
//    text, log lines, incident titles and explanations) must not be able to drive the
//    terminal or hide what it says. Escaped: C0 controls and DEL (`\n`, `\r`, `\t`, else
//    `\xNN`), C1 controls U+0080..U+009F and the bidirectional embeddings, overrides and
//    isolates U+202A..U+202E, U+2066..U+2069 (as `\u{NNNN}`), and any byte that is not
//    valid UTF-8 (`\xNN`). Everything else, including a literal backslash, is shown as it
//    is: this is for reading, the JSON output is the exact form.
//
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace tripline {

// True when `text` is well-formed UTF-8.
bool IsValidUtf8(std::string_view text);

// Rule 1. Returns false and leaves `text` alone when it is valid UTF-8; otherwise rewrites
// it as described above and returns true. The result is always valid UTF-8.
bool EscapeInvalidUtf8(std::string* text);

// The inverse of EscapeInvalidUtf8 on a string it rewrote: the original bytes.
std::string UnescapeInvalidUtf8(std::string_view escaped);

// Rule 2. Returns `text` unchanged when it holds nothing to escape.
std::string EscapeForDisplay(std::string_view text);

}  // namespace tripline
