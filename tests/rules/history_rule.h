// SigmaHQ's "History File Deletion" (a Linux process_creation rule of ../shared/data/sigma),
// written by the end-to-end tests into their own rule directory where the reference rules
// are not at hand: rm, unlink or shred of a shell history file.
#pragma once

namespace tripline::testing {

inline constexpr const char* kHistoryRule = R"(title: History File Deletion
id: 1182f3b3-e716-4efa-99ab-d2685d04360f
level: high
tags:
    - attack.impact
    - attack.t1565.001
logsource:
    product: linux
    category: process_creation
detection:
    selection:
        Image|endswith:
            - '/rm'
            - '/unlink'
            - '/shred'
    selection_history:
        - CommandLine|contains:
              - '/.bash_history'
              - '/.zsh_history'
        - CommandLine|endswith:
              - '_history'
              - '.history'
              - 'zhistory'
    condition: all of selection*
)";

}  // namespace tripline::testing
