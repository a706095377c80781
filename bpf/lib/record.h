/* SPDX-License-Identifier: Apache-2.0 */
/* Scope filter, common header fill, ring-buffer reservation and counters. */
#ifndef TRIPLINE_BPF_LIB_RECORD_H
#define TRIPLINE_BPF_LIB_RECORD_H

#include "maps.h"

static __always_inline struct tl_counters *tl_counters_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&tl_counters_map, &zero);
}

/* A bpf_probe_read*, bpf_d_path, ... failed where it should not have. */
static __always_inline void tl_count_helper_error(void)
{
	struct tl_counters *c = tl_counters_get();

	if (c)
		c->helper_errors++;
}

/* A state map was full (or task storage busy): an event may be missing fields or lost. */
static __always_inline void tl_count_state_error(void)
{
	struct tl_counters *c = tl_counters_get();

	if (c)
		c->state_errors++;
}

static __always_inline __u32 tl_task_uts_inum(struct task_struct *task)
{
	return BPF_CORE_READ(task, nsproxy, uts_ns, ns.inum);
}

/*
 * Whether events of `task` (the current task, tgid `tgid`) are reported: never the sensor's
 * own, and only the target UTS namespace's when one is set.
 */
static __always_inline bool tl_in_scope(struct task_struct *task, __u32 tgid)
{
	if (tgid == tl_self_tgid)
		return false;
	if (tl_target_uts_inum == 0)
		return true;
	return tl_task_uts_inum(task) == tl_target_uts_inum;
}

static __always_inline bool tl_current_in_scope(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return tl_in_scope(task, bpf_get_current_pid_tgid() >> 32);
}

/*
 * Reserves `size` bytes for a record of `type` in ring buffer `rb` and zeroes the first
 * `zero` of them (all fields but large buffers the program fills itself), so no stale field
 * reaches user space. Counts the drop when the ring is full.
 */
#define tl_reserve_part(rb, size, zero, type)                                                      \
	({                                                                                         \
		void *__rec = bpf_ringbuf_reserve((rb), (size), 0);                                \
		if (__rec) {                                                                       \
			__builtin_memset(__rec, 0, (zero));                                        \
		} else {                                                                           \
			struct tl_counters *__c = tl_counters_get();                               \
			if (__c)                                                                   \
				__c->ringbuf_drops[(type)]++;                                      \
		}                                                                                  \
		__rec;                                                                             \
	})

#define tl_reserve(rb, size, type) tl_reserve_part(rb, size, size, type)

/* Fills the common header from the current task. */
static __always_inline void tl_fill_header(struct tl_header *h, __u16 type, __u32 size)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();

	h->type = type;
	h->version = TL_RECORD_VERSION;
	h->size = size;
	h->ktime_ns = bpf_ktime_get_boot_ns();
	h->pid = (__u32)pid_tgid;
	h->tgid = pid_tgid >> 32;
	h->ppid = BPF_CORE_READ(task, real_parent, tgid);
	h->uid = (__u32)uid_gid;
	h->gid = uid_gid >> 32;
	/* loginuid and sessionid exist only with CONFIG_AUDIT. */
	if (bpf_core_field_exists(task->loginuid))
		h->login_uid = BPF_CORE_READ(task, loginuid.val);
	else
		h->login_uid = 0xffffffff;
	if (bpf_core_field_exists(task->sessionid))
		h->session_id = BPF_CORE_READ(task, sessionid);
	else
		h->session_id = 0xffffffff;
	h->uts_inum = tl_task_uts_inum(task);
	h->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

#endif /* TRIPLINE_BPF_LIB_RECORD_H */
