// SPDX-License-Identifier: GPL-2.0
/*
 * file: opens of sensitive paths, with their outcome.
 *
 * Why these hooks:
 * - fentry/fexit do_sys_openat2: every open(2), openat(2), creat(2) and openat2(2) passes
 *   through it, with the flags on entry and the fd or -errno on exit, so each open gives
 *   exactly one record carrying its outcome (a refused attempt is a record too).
 * - fentry security_file_open: runs inside that open once the path is resolved, and is one
 *   of the few functions where bpf_d_path is allowed. The canonical path it gives defeats
 *   relative paths, "..", "//" and symlinks ("cd /etc; cat shadow", "ln -s /etc/shadow x").
 *   It is not reached when the lookup or the permission check fails; failed opens are then
 *   matched on the path argument as passed, when that is absolute.
 * Per-open state lives in task storage: no hash insert on the hot path, freed with the task.
 * Non-matching opens cost a task-storage lookup, one d_path, a user-string read and up to
 * four trie walks, and never touch the ring buffer.
 *
 * Fallback for kernels that refuse trampoline programs (fentry/fexit/lsm: EPERM under some
 * sandboxes and hardened kernels), chosen by the loader: the raw syscall tracepoints
 * tp_btf/sys_enter and sys_exit for open, creat, openat and openat2. The canonical path of
 * a successful open is rebuilt from the new fd's dentries (tl_file_path); failed opens are
 * matched on the argument as above. Costs a syscall-number compare on every syscall.
 */
#include "lib/fd.h"
#include "lib/maps.h"
#include "lib/path_match.h"
#include "lib/record.h"
#include "lib/syscalls.h"

char LICENSE[] SEC("license") = "GPL";

static __always_inline void tl_emit_file_open(struct tl_open_state *st, long ret,
					      struct tl_path_key *path, __u32 len, __u32 rule_id,
					      __u32 match, __u8 source, __u8 truncated)
{
	struct tl_file_open_record *rec;

	rec = tl_reserve(&tl_events, sizeof(*rec), TL_REC_FILE_OPEN);
	if (!rec)
		return;
	tl_fill_header(&rec->hdr, TL_REC_FILE_OPEN, sizeof(*rec));
	rec->result = ret < 0 ? (__s32)ret : 0;
	rec->flags = (__u32)st->flags;
	rec->mode = st->mode;
	rec->rule_id = rule_id;
	rec->match = match;
	rec->path_source = source;
	rec->path_len = len;
	rec->path_truncated = truncated;
	__builtin_memcpy(rec->path, path->data, TL_PATH_LEN);
	rec->path[TL_PATH_LEN - 1] = 0;
	bpf_ringbuf_submit(rec, 0);
}

SEC("fentry/do_sys_openat2")
int BPF_PROG(tl_openat_enter, int dfd, const char *filename, struct open_how *how)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct tl_open_state *st;

	if (!tl_in_scope(task, bpf_get_current_pid_tgid() >> 32))
		return 0;
	st = bpf_task_storage_get(&tl_open_states, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st) {
		tl_count_state_error();
		return 0;
	}
	st->flags = BPF_CORE_READ(how, flags);
	st->mode = BPF_CORE_READ(how, mode);
	st->canon_hit = 0;
	st->active = 1;
	return 0;
}

SEC("fentry/security_file_open")
int BPF_PROG(tl_file_open_check, struct file *file)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct tl_open_state *st;
	struct tl_path_rule *rule;
	long n;

	st = bpf_task_storage_get(&tl_open_states, task, 0, 0);
	if (!st || !st->active || st->canon_hit)
		return 0;
	n = bpf_d_path((struct path *)&file->f_path, (char *)st->canon.data, TL_PATH_LEN);
	if (n <= 1) {
		/* Longer than the key: prefix rules could still match its start, but d_path
		 * gives nothing on overflow. Such paths are matched on the argument. */
		if (n != -TL_ENAMETOOLONG)
			tl_count_helper_error();
		return 0;
	}
	rule = tl_match_path(&st->canon, &st->rev, n - 1);
	if (!rule)
		return 0;
	st->canon_hit = 1;
	st->canon_len = n - 1;
	st->rule_id = rule->rule_id;
	st->match = rule->match;
	return 0;
}

SEC("fexit/do_sys_openat2")
int BPF_PROG(tl_openat_exit, int dfd, const char *filename, struct open_how *how, long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct tl_open_state *st;
	struct tl_path_rule *rule;
	long n;

	st = bpf_task_storage_get(&tl_open_states, task, 0, 0);
	if (!st || !st->active)
		return 0;
	st->active = 0;
	if (st->canon_hit) {
		tl_emit_file_open(st, ret, &st->canon, st->canon_len, st->rule_id, st->match,
				  TL_PATH_CANONICAL, 0);
		return 0;
	}
	/* No canonical match: the open failed before security_file_open, or the file is not
	 * sensitive. Try the argument as passed; relative ones cannot be resolved here. */
	n = bpf_probe_read_user_str(st->raw.data, TL_PATH_LEN, filename);
	if (n <= 1) {
		if (n < 0)
			tl_count_helper_error();
		return 0;
	}
	if (st->raw.data[0] != '/')
		return 0;
	rule = tl_match_path(&st->raw, &st->rev, n - 1);
	if (!rule)
		return 0;
	tl_emit_file_open(st, ret, &st->raw, n - 1, rule->rule_id, rule->match, TL_PATH_ARGUMENT,
			  n == TL_PATH_LEN);
	return 0;
}

/* ---- fallback: raw syscall tracepoints ---- */

SEC("tp_btf/sys_enter")
int BPF_PROG(tl_file_sys_enter, struct pt_regs *regs, long id)
{
	struct task_struct *task;
	struct tl_open_state *st;
	__u64 path, flags = 0, mode = 0;

	if (id == TL_NR_OPENAT) {
		path = PT_REGS_PARM2_CORE_SYSCALL(regs);
		flags = PT_REGS_PARM3_CORE_SYSCALL(regs);
		mode = PT_REGS_PARM4_CORE_SYSCALL(regs);
	} else if (id == TL_NR_OPENAT2) {
		struct open_how how = {};

		path = PT_REGS_PARM2_CORE_SYSCALL(regs);
		if (bpf_probe_read_user(&how, sizeof(how),
					(void *)PT_REGS_PARM3_CORE_SYSCALL(regs)))
			return 0; /* the call fails with EFAULT */
		flags = how.flags;
		mode = how.mode;
	} else if (id == TL_NR_OPEN) {
		path = PT_REGS_PARM1_CORE_SYSCALL(regs);
		flags = PT_REGS_PARM2_CORE_SYSCALL(regs);
		mode = PT_REGS_PARM3_CORE_SYSCALL(regs);
	} else if (id == TL_NR_CREAT) {
		path = PT_REGS_PARM1_CORE_SYSCALL(regs);
		flags = TL_O_CREAT | TL_O_WRONLY | TL_O_TRUNC;
		mode = PT_REGS_PARM2_CORE_SYSCALL(regs);
	} else {
		return 0;
	}
	task = bpf_get_current_task_btf();
	if (!tl_in_scope(task, bpf_get_current_pid_tgid() >> 32))
		return 0;
	st = bpf_task_storage_get(&tl_open_states, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st) {
		tl_count_state_error();
		return 0;
	}
	st->flags = flags;
	st->mode = (__u32)mode;
	st->user_path = path;
	st->canon_hit = 0;
	st->active = 1;
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(tl_file_sys_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *task;
	struct tl_open_state *st;
	struct tl_path_rule *rule;
	long nr = TL_SYSCALL_NR(regs);
	long n;

	if (nr != TL_NR_OPENAT && nr != TL_NR_OPENAT2 && nr != TL_NR_OPEN && nr != TL_NR_CREAT)
		return 0;
	task = bpf_get_current_task_btf();
	st = bpf_task_storage_get(&tl_open_states, task, 0, 0);
	if (!st || !st->active)
		return 0;
	st->active = 0;
	if (ret >= 0) {
		struct file *file = tl_fd_file(task, ret);

		n = file ? tl_file_path(file, &st->canon, st->scratch) : -1;
		if (n > 0) {
			rule = tl_match_path(&st->canon, &st->rev, n);
			if (rule) {
				tl_emit_file_open(st, ret, &st->canon, n, rule->rule_id,
						  rule->match, TL_PATH_CANONICAL, 0);
				return 0;
			}
		}
	}
	n = bpf_probe_read_user_str(st->raw.data, TL_PATH_LEN, (void *)st->user_path);
	if (n <= 1 || st->raw.data[0] != '/')
		return 0;
	rule = tl_match_path(&st->raw, &st->rev, n - 1);
	if (!rule)
		return 0;
	tl_emit_file_open(st, ret, &st->raw, n - 1, rule->rule_id, rule->match, TL_PATH_ARGUMENT,
			  n == TL_PATH_LEN);
	return 0;
}
