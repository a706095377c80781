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
 *   It is not reached when the lookup or the permission check fails; refused opens (EACCES,
 *   EPERM) are then matched on the path argument: as passed when absolute, joined to its
 *   directory and resolved lexically when relative (lib/path_join.h). Other failures (no
 *   such file, bad arguments) are not reported.
 * Per-open state lives in task storage: no hash insert on the hot path, freed with the task.
 * A non-matching open costs a task-storage lookup and the prefilter (lib/path_filter.h): a
 * name lookup or two, no d_path, no user-memory read.
 *
 * Fallback for kernels that refuse trampoline programs (fentry/fexit/lsm: EPERM under some
 * sandboxes and hardened kernels), chosen by the loader: tl_sys_exit_file, which the
 * tp_btf/sys_exit dispatcher (sys_exit.bpf.c) tail-calls for open, creat, openat and
 * openat2. It reads the arguments at exit, finds the new descriptor's file, and rebuilds the
 * canonical path from its dentries only when the prefilter lets it through.
 *
 * Every program here exists in two flavours (lib/kptr.h): this file as it is, for kernels
 * with bpf_rdonly_cast (6.2+), and file_compat.bpf.c, the same source with TL_COMPAT. Kernels
 * without task storage and bpf_loop (5.10) run file_legacy.bpf.c, with the same records.
 */
#include "lib/file_open.h"
#include "lib/net_hooks.h"

char LICENSE[] SEC("license") = "GPL";

SEC("fentry/do_sys_openat2")
int TL_PROG(TL_FN(tl_openat_enter), int dfd, const char *filename, struct open_how *how)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct tl_open_state *st;

	if (!tl_in_scope(task, bpf_get_current_pid_tgid() >> 32))
		return 0;
	st = tl_open_state_get(task);
	if (!st)
		return 0;
	st->flags = BPF_CORE_READ(how, flags);
	st->mode = BPF_CORE_READ(how, mode);
	st->canon_hit = 0;
	st->canon_truncated = 0;
	st->active = 1;
	return 0;
}

SEC("fentry/security_file_open")
int TL_PROG(TL_FN(tl_file_open_check), struct file *file)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct tl_open_state *st;
	struct tl_path_rule *rule;
	__u64 file_addr = 0;
	long n;

	st = bpf_task_storage_get(&tl_open_states, task, 0, 0);
	if (!st || !st->active || st->canon_hit)
		return 0;
	/* The prefilter takes the address as a number (it is a global function). */
	bpf_probe_read_kernel(&file_addr, sizeof(file_addr), &ctx[0]);
	if (!TL_FN(tl_open_maybe_sensitive)(file_addr))
		return 0;
	n = bpf_d_path((struct path *)&file->f_path, (char *)st->canon.data, TL_PATH_LEN);
	if (n <= 1) {
		/* Longer than the key: prefix rules could still match its start, but d_path
		 * gives nothing on overflow. Such paths are matched on the argument. */
		if (n != -TL_ENAMETOOLONG)
			tl_count_helper_error();
		st->canon_truncated = 1;
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
int TL_PROG(TL_FN(tl_openat_exit), int dfd, const char *filename, struct open_how *how, long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct tl_open_state *st;

	st = bpf_task_storage_get(&tl_open_states, task, 0, 0);
	if (!st || !st->active)
		return 0;
	st->active = 0;
	if (st->canon_hit) {
		tl_emit_file_open(st->flags, st->mode, ret, &st->canon, st->canon_len, st->rule_id,
				  st->match, TL_PATH_CANONICAL, 0);
		return 0;
	}
	/* No canonical match. A refused open never reached security_file_open, and a path
	 * too long for d_path was not matched there: try the argument as passed. */
	if (tl_open_denied(ret) || st->canon_truncated)
		TL_FN(tl_report_argument)(dfd, (__u64)filename, st->flags, st->mode, ret);
	return 0;
}

/* The fallback: tail-called by tl_sys_exit for open, creat, openat and openat2. */
SEC("tp_btf/sys_exit")
int TL_PROG(TL_FN(tl_sys_exit_file), struct pt_regs *regs, long ret)
{
	tl_file_sys_exit(regs, TL_SYSCALL_NR(regs), ret);
	return 0;
}

/* ---- io_uring: opens and connects that never pass through a syscall ---- */

/*
 * IORING_OP_OPENAT/OPENAT2 and IORING_OP_CONNECT run inside io_uring (at submission or in
 * an io-wq worker of the same process), so neither the syscall hooks nor do_sys_openat2
 * see them. Every completion passes the io_uring_complete tracepoint with its request:
 * a successful open's result is the new descriptor in the submitter's file table (the
 * workers share it), matched like any other open; a connect's request holds the socket.
 * Opens into a fixed-file slot (no descriptor) and refused io_uring opens (the name is
 * freed by then) are not seen.
 */
#define TL_IORING_OP_CONNECT 16
#define TL_IORING_OP_OPENAT 18
#define TL_IORING_OP_OPENAT2 28

/*
 * The tracepoint's arguments after the request differ by kernel: (user_data, res, cflags,
 * extra1, extra2) up to 6.14 or so, a struct io_uring_cqe * since. Only the first two are
 * read; the result is taken from the request's own completion (req->cqe), which the
 * tracepoint is fed from in both.
 */
SEC("tp_btf/io_uring_complete")
int TL_PROG(TL_FN(tl_io_uring_complete), void *ring, void *req_ptr)
{
	struct io_kiocb *req = TL_KPTR(io_kiocb, req_ptr);
	struct task_struct *task;
	struct io_open *open;
	__u64 file_addr;
	long res;
	__u8 op;

	if (!req)
		return 0; /* an overflow entry posted without its request */
	op = TL_KLOAD(req, opcode);
	if (op != TL_IORING_OP_OPENAT && op != TL_IORING_OP_OPENAT2 && op != TL_IORING_OP_CONNECT)
		return 0;
	res = TL_KLOAD(req, cqe.res);
	task = bpf_get_current_task_btf();
	if (!tl_in_scope(task, task->tgid))
		return 0;
	if (op == TL_IORING_OP_CONNECT) {
		struct sock *sk;

		if (res != 0 && res != -TL_EINPROGRESS)
			return 0;
		sk = tl_file_tcp_sock(TL_KLOAD(req, file));
		if (sk)
			tl_emit_net(sk, TL_NET_OUTBOUND, NULL);
		return 0;
	}
	open = (struct io_open *)((void *)req + bpf_core_field_offset(struct io_kiocb, cmd));
	if (res < 0 || TL_KLOAD(open, file_slot) != 0)
		return 0;
	file_addr = tl_fd_file_addr(task, res);
	if (!file_addr || !TL_FN(tl_open_maybe_sensitive)(file_addr))
		return 0;
	TL_FN(tl_report_opened_file)
	(file_addr, TL_KLOAD(open, how.flags), (__u32)TL_KLOAD(open, how.mode), res);
	return 0;
}
