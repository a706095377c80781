/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Syscall numbers and registers for the raw syscall tracepoint (tp_btf/sys_exit) that the
 * fallback program uses on kernels that refuse trampoline programs (fentry/fexit). They are
 * per architecture; -1 where the architecture has no such call.
 */
#ifndef TRIPLINE_BPF_LIB_SYSCALLS_H
#define TRIPLINE_BPF_LIB_SYSCALLS_H

#include "common.h"

#define TL_O_WRONLY 01
#define TL_O_CREAT 0100
#define TL_O_TRUNC 01000
#define TL_EINPROGRESS 115
#define TL_EPERM 1
#define TL_EACCES 13

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
/*
 * Syscall number and arguments from the pt_regs a tp_btf/sys_exit program gets. Direct loads
 * (regs is a BTF pointer there), so no helper call on the path every syscall takes. The
 * argument registers still hold the caller's values at exit; the result is in ax.
 */
#define TL_SYSCALL_NR(regs) ((long)(regs)->orig_ax)
#define TL_SYSCALL_ARG1(regs) ((regs)->di)
#define TL_SYSCALL_ARG2(regs) ((regs)->si)
#define TL_SYSCALL_ARG3(regs) ((regs)->dx)
#define TL_SYSCALL_ARG4(regs) ((regs)->r10)
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
/* CO-RE flavor of arm64's struct pt_regs: only the fields we read. At exit x0 holds the
 * result; the first argument is kept in orig_x0. */
struct pt_regs___tl {
	__u64 regs[31];
	__u64 orig_x0;
	int syscallno;
} __attribute__((preserve_access_index));
#define TL_REGS___TL(regs) ((struct pt_regs___tl *)(regs))
#define TL_SYSCALL_NR(regs) ((long)TL_REGS___TL(regs)->syscallno)
#define TL_SYSCALL_ARG1(regs) (TL_REGS___TL(regs)->orig_x0)
#define TL_SYSCALL_ARG2(regs) (TL_REGS___TL(regs)->regs[1])
#define TL_SYSCALL_ARG3(regs) (TL_REGS___TL(regs)->regs[2])
#define TL_SYSCALL_ARG4(regs) (TL_REGS___TL(regs)->regs[3])
#else
#error "syscall numbers for this architecture are missing in lib/syscalls.h"
#endif

#endif /* TRIPLINE_BPF_LIB_SYSCALLS_H */
