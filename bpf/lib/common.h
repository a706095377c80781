/* SPDX-License-Identifier: Apache-2.0 */
/* Includes and constants every Tripline BPF program needs. */
#ifndef TRIPLINE_BPF_LIB_COMMON_H
#define TRIPLINE_BPF_LIB_COMMON_H

#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "events.h"

/* UAPI constants that vmlinux.h (BTF) does not carry. */
#define TL_AF_INET 2
#define TL_AF_INET6 10
#define TL_IPPROTO_TCP 6
#define TL_ENAMETOOLONG 36

/*
 * Makes the bytes of `x` (on the BPF stack) unknown to the verifier and keeps their values:
 * the state a bpf_loop callback works on must not look constant. Verifiers before 6.7 check
 * a callback once, with the state of its first call, and hard-wire the branches that state
 * decides (a walk would then stop after one step on those kernels); newer ones track exact
 * values and check the callback once per value. Pointers do not survive it.
 */
#define TL_OPAQUE(x) bpf_probe_read_kernel(&(x), sizeof(x), &(x))

/* Keeps clang from folding a bounds check the verifier needs to see. */
#define TL_BARRIER_VAR(var) asm volatile("" : "+r"(var))

#endif /* TRIPLINE_BPF_LIB_COMMON_H */
