// SPDX-License-Identifier: GPL-2.0
/*
 * The tp_btf/sys_exit dispatcher, for kernels that refuse trampoline programs.
 *
 * A raw syscall tracepoint runs on every system call of the host, so its fixed cost is what
 * matters: one attached program (not one per hook family) and no sys_enter program at all.
 * Every argument a handler needs is still in the saved registers at exit, and the outcome is
 * known there. The dispatcher only sorts the call by number, drops what no handler can want
 * (a failed open that was not refused, a write of no whole utmp record), and tail-calls the
 * family's handler from tl_sys_exit_handlers:
 *
 * - open, creat, openat, openat2: tl_sys_exit_file (file.bpf.c)
 * - write, pwrite64: tl_sys_exit_utmp (login.bpf.c)
 * - connect, accept, accept4: tl_sys_exit_net (net.bpf.c)
 *
 * Each handler is its own program, verified on its own: one that a kernel refuses leaves its
 * slot empty and its family off (or on another variant), and the others run.
 */
#include "lib/maps.h"
#include "lib/syscalls.h"

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sys_exit")
int BPF_PROG(tl_sys_exit, struct pt_regs *regs, long ret)
{
	long nr = TL_SYSCALL_NR(regs);
	__u32 slot;

	if (nr == TL_NR_OPENAT || nr == TL_NR_OPEN || nr == TL_NR_OPENAT2 || nr == TL_NR_CREAT) {
		if (ret < 0 && ret != -TL_EACCES && ret != -TL_EPERM)
			return 0;
		slot = TL_SYSX_SLOT_FILE;
	} else if (nr == TL_NR_WRITE || nr == TL_NR_PWRITE64) {
		if (ret <= 0 || TL_SYSCALL_ARG3(regs) % sizeof(struct tl_utmp) != 0)
			return 0;
		slot = TL_SYSX_SLOT_UTMP;
	} else if (nr == TL_NR_CONNECT || nr == TL_NR_ACCEPT || nr == TL_NR_ACCEPT4) {
		slot = TL_SYSX_SLOT_NET;
	} else {
		return 0;
	}
	bpf_tail_call(ctx, &tl_sys_exit_handlers, slot);
	return 0;
}
