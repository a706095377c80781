/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Syscall numbers for the raw syscall tracepoints (tp_btf/sys_enter, sys_exit) that the
 * fallback programs use on kernels that refuse trampoline programs (fentry/fexit). They are
 * per architecture; -1 where the architecture has no such call.
 */
#ifndef TRIPLINE_BPF_LIB_SYSCALLS_H
#define TRIPLINE_BPF_LIB_SYSCALLS_H

#include "common.h"

#define TL_O_WRONLY 01
#define TL_O_CREAT 0100
#define TL_O_TRUNC 01000
#define TL_EINPROGRESS 115

#if defined(__TARGET_ARCH_x86)
#define TL_NR_OPEN 2
#define TL_NR_CREAT 85
#define TL_NR_OPENAT 257
#define TL_NR_OPENAT2 437
#define TL_NR_WRITE 1
#define TL_NR_PWRITE64 18
#define TL_NR_CONNECT 42
#define TL_NR_ACCEPT 43
#define TL_NR_ACCEPT4 288
/* Syscall number of the pt_regs a sys_exit tracepoint gets. */
#define TL_SYSCALL_NR(regs) BPF_CORE_READ(regs, orig_ax)
#elif defined(__TARGET_ARCH_arm64)
#define TL_NR_OPEN -1
#define TL_NR_CREAT -1
#define TL_NR_OPENAT 56
#define TL_NR_OPENAT2 437
#define TL_NR_WRITE 64
#define TL_NR_PWRITE64 68
#define TL_NR_CONNECT 203
#define TL_NR_ACCEPT 202
#define TL_NR_ACCEPT4 242
/* CO-RE flavor of arm64's struct pt_regs: only the field we read. */
struct pt_regs___tl {
	int syscallno;
} __attribute__((preserve_access_index));
#define TL_SYSCALL_NR(regs) BPF_CORE_READ((struct pt_regs___tl *)(regs), syscallno)
#else
#error "syscall numbers for this architecture are missing in lib/syscalls.h"
#endif

#endif /* TRIPLINE_BPF_LIB_SYSCALLS_H */
