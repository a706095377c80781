/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every map and read-only global of the Tripline probe, declared once.
 *
 * Each <family>.bpf.c is compiled on its own and the objects are linked into one by
 * `bpftool gen object`. maps.bpf.c defines TL_DEFINE_MAPS and so holds the one definition of
 * each map; every other object sees the same definitions as `extern`, which the libbpf
 * linker resolves to that one map (the definitions must match, hence one macro for both).
 */
#ifndef TRIPLINE_BPF_LIB_MAPS_H
#define TRIPLINE_BPF_LIB_MAPS_H

#include "common.h"
#include "state.h"

#ifdef TL_DEFINE_MAPS
#define TL_MAP
#define TL_RODATA(type, name) const volatile type name = 0
#else
#define TL_MAP extern
#define TL_RODATA(type, name) extern const volatile type name
#endif

/* ---- configuration, set by the loader between open and load ---- */

/* UTS namespace inode to watch; 0 watches the whole host. */
TL_RODATA(__u32, tl_target_uts_inum);
/* The sensor's own tgid, never reported. */
TL_RODATA(__u32, tl_self_tgid);
/* Cap on exec arguments reported (the decoder applies it; bytes are capped here). */
TL_RODATA(__u32, tl_exec_max_args);
/* ---- output ---- */

/* Bulk records (file opens, execs). Size set by the loader (ProbeOptions::ringbuf_bytes). */
TL_MAP struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} tl_events SEC(".maps");

/*
 * Login, utmp and network records. A separate ring so that a storm of bulk records can never
 * take the space a login needs; the sensor drains it first.
 */
TL_MAP struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 2 << 20);
} tl_priority SEC(".maps");

/* Drop and error counters, one struct per CPU at key 0. */
TL_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tl_counters);
} tl_counters_map SEC(".maps");

/* ---- the tp_btf/sys_exit fallback ---- */

/*
 * The handlers tl_sys_exit (sys_exit.bpf.c) tail-calls, by TL_SYSX_SLOT_*: one program per
 * hook family that fell back to the syscall tracepoint, put here by the loader. An empty
 * slot (the family runs on its preferred hooks, or is off) costs the dispatcher nothing but
 * the failed tail call.
 */
TL_MAP struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, TL_SYSX_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} tl_sys_exit_handlers SEC(".maps");

/* ---- sensitive-path table, filled by the loader ---- */

/* Exact rules (stored with their NUL) and prefix rules, longest match wins. */
TL_MAP struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct tl_path_key);
	__type(value, struct tl_path_rule);
} tl_path_prefix SEC(".maps");

/* Suffix rules, reversed, looked up with the reversed path. */
TL_MAP struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct tl_path_key);
	__type(value, struct tl_path_rule);
} tl_path_suffix SEC(".maps");

/* Names that can make an open sensitive (see struct tl_name_key in events.h). */
TL_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct tl_name_key);
	__type(value, __u8);
} tl_name_triggers SEC(".maps");

/* The prefilter's settings, key 0. */
TL_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tl_path_filter);
} tl_path_filter SEC(".maps");

/* Opens in flight, per task. */
TL_MAP struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tl_open_state);
} tl_open_states SEC(".maps");

/* io_uring opens in flight on kernels without task storage (file_legacy.bpf.c), by filename. */
TL_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct tl_iou_open);
} tl_iou_opens SEC(".maps");

/* Their matches, from do_filp_open to the request's completion. */
TL_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, struct tl_iou_key);
	__type(value, struct tl_iou_match);
} tl_iou_matches SEC(".maps");

/* Per-CPU scratch of the legacy programs, key 0. */
TL_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tl_legacy_scratch);
} tl_legacy_scratch_map SEC(".maps");

/* ---- login ---- */

/* btmp/wtmp inodes -> enum tl_utmp_file, filled by the loader. */
TL_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct tl_file_id);
	__type(value, __u32);
} tl_utmp_files SEC(".maps");

/*
 * Connection a process got from an accept, or inherited through fork from the process that
 * accepted it (sshd's listener forks one child per connection). LRU: entries of processes
 * that exit unseen age out.
 */
TL_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct tl_endpoints);
} tl_peer_by_tgid SEC(".maps");

/* Extra listener tgids whose accepts are reported (beyond comm "sshd*"); loader-filled. */
TL_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u8);
} tl_listener_tgids SEC(".maps");

/* pam_start arguments between entry and return, per thread (pid_tgid). */
TL_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct tl_pam_start_args);
} tl_pam_starts SEC(".maps");

/* PAM calls in flight, per thread (pid_tgid). */
TL_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct tl_pam_call);
} tl_pam_calls SEC(".maps");

/* PAM transactions, per (tgid, handle), from pam_start to pam_end. */
TL_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct tl_pam_key);
	__type(value, struct tl_pam_state);
} tl_pam_states SEC(".maps");

/* A zeroed tl_pam_state to insert from (too big for the BPF stack). */
TL_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tl_pam_state);
} tl_pam_zero SEC(".maps");

#endif /* TRIPLINE_BPF_LIB_MAPS_H */
