/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sensitive-file opens: the record, matching what an open named or returned, and the
 * handler of the tp_btf/sys_exit fallback. The file family's code, compiled in both of its
 * flavours (lib/kptr.h).
 */
#ifndef TRIPLINE_BPF_LIB_FILE_OPEN_H
#define TRIPLINE_BPF_LIB_FILE_OPEN_H

#include "fd.h"
#include "file_record.h"
#include "maps.h"
#include "path_build.h"
#include "path_filter.h"
#include "path_join.h"
#include "path_match.h"
#include "record.h"
#include "syscalls.h"

/* The current task's per-open scratch state, created on first use; NULL (counted) if full. */
static __always_inline struct tl_open_state *tl_open_state_get(struct task_struct *task)
{
	struct tl_open_state *st;

	st = bpf_task_storage_get(&tl_open_states, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st)
		tl_count_state_error();
	return st;
}

/*
 * Matches the path argument (`upath`, a user pointer) of an open by the current task and
 * reports the open when a rule matches. An absolute argument is matched as passed; a
 * relative one is first joined to directory `dfd` (lib/path_join.h).
 *
 * Global functions, here and below: the verifier checks each once, whatever state its
 * callers are in, so the path walks cost the budget once per program and not once per
 * caller path.
 */
__noinline int TL_FN(tl_report_argument)(long dfd, __u64 upath, __u64 flags, __u32 mode, long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct tl_open_state *st = tl_open_state_get(task);
	struct tl_path_rule *rule;
	long n;

	if (!st)
		return 0;
	n = bpf_probe_read_user_str(st->raw.data, TL_PATH_LEN, (void *)upath);
	if (n <= 1) {
		if (n < 0)
			tl_count_helper_error();
		return 0;
	}
	if (st->raw.data[0] != '/') {
		n = tl_join_relative(st, task, dfd, n - 1);
		if (n <= 0)
			return 0;
		rule = tl_match_path(&st->canon, &st->rev, n);
		if (rule)
			tl_emit_file_open(flags, mode, ret, &st->canon, n, rule->rule_id,
					  rule->match, TL_PATH_JOINED, 0);
		return 0;
	}
	rule = tl_match_path(&st->raw, &st->rev, n - 1);
	if (rule)
		tl_emit_file_open(flags, mode, ret, &st->raw, n - 1, rule->rule_id, rule->match,
				  TL_PATH_ARGUMENT, n == TL_PATH_LEN);
	return 0;
}

/*
 * Matches the canonical path of the struct file at `file_addr`, which an open by the
 * current task just returned, and reports the open when a rule matches. 0 when the path
 * could not be rebuilt (too long or too deep), 1 otherwise.
 */
__noinline int TL_FN(tl_report_opened_file)(__u64 file_addr, __u64 flags, __u32 mode, long ret)
{
	struct tl_open_state *st = tl_open_state_get(bpf_get_current_task_btf());
	struct tl_path_rule *rule;
	long n;

	if (!st)
		return 1; /* counted; the argument would need the same state */
	n = tl_file_path((struct file *)file_addr, &st->canon, st->scratch);
	if (n <= 0)
		return 0;
	rule = tl_match_path(&st->canon, &st->rev, n);
	if (rule)
		tl_emit_file_open(flags, mode, ret, &st->canon, n, rule->rule_id, rule->match,
				  TL_PATH_CANONICAL, 0);
	return 1;
}

/*
 * tp_btf/sys_exit of open, creat, openat and openat2 (`nr`, result `ret`). A successful open
 * is matched on the canonical path of the new descriptor's file, after the prefilter; a
 * refused one (EACCES, EPERM) on the path argument (relative ones joined to their
 * directory). Other failures (no such file, bad arguments, ...) are not reported.
 */
static __always_inline void tl_file_sys_exit(struct pt_regs *regs, long nr, long ret)
{
	struct task_struct *task;
	__u64 file_addr = 0, upath, flags;
	long dfd = TL_AT_FDCWD;
	__u32 mode;

	if (ret < 0 && !tl_open_denied(ret))
		return;
	task = bpf_get_current_task_btf();
	if (!tl_in_scope(task, task->tgid)) /* a plain load, not a helper call */
		return;
	if (ret >= 0) {
		file_addr = tl_fd_file_addr(task, ret);
		if (!file_addr || !TL_FN(tl_open_maybe_sensitive)(file_addr))
			return;
	}
	/* From here on the open is (probably) reported: read its arguments. */
	if (nr == TL_NR_OPENAT || nr == TL_NR_OPENAT2) {
		dfd = (int)TL_SYSCALL_ARG1(regs);
		upath = TL_SYSCALL_ARG2(regs);
		flags = TL_SYSCALL_ARG3(regs);
		mode = (__u32)TL_SYSCALL_ARG4(regs);
		if (nr == TL_NR_OPENAT2) {
			struct open_how how = {};

			if (bpf_probe_read_user(&how, sizeof(how), (void *)flags) != 0)
				tl_count_helper_error();
			flags = how.flags;
			mode = (__u32)how.mode;
		}
	} else if (nr == TL_NR_CREAT) {
		upath = TL_SYSCALL_ARG1(regs);
		flags = TL_O_CREAT | TL_O_WRONLY | TL_O_TRUNC;
		mode = (__u32)TL_SYSCALL_ARG2(regs);
	} else {
		upath = TL_SYSCALL_ARG1(regs);
		flags = TL_SYSCALL_ARG2(regs);
		mode = (__u32)TL_SYSCALL_ARG3(regs);
	}
	/* A path too long or too deep to rebuild: the argument may still match. */
	if (file_addr && TL_FN(tl_report_opened_file)(file_addr, flags, mode, ret))
		return;
	TL_FN(tl_report_argument)(dfd, upath, flags, mode, ret);
}

#endif /* TRIPLINE_BPF_LIB_FILE_OPEN_H */
