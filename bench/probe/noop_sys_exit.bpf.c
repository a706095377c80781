// SPDX-License-Identifier: GPL-2.0
/*
 * The floor of the syscall-tracepoint fallback: a tp_btf/sys_exit program that does
 * nothing. What it costs is what attaching any program there costs on this kernel (the
 * slow syscall-exit path for every task, the tracepoint dispatch); probe_overhead measures
 * it beside Tripline's own program.
 */
#include "lib/common.h"  // vmlinux.h, then the libbpf headers, in that order

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sys_exit")
int BPF_PROG(tl_bench_noop_sys_exit, struct pt_regs* regs, long ret) { return 0; }
