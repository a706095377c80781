// SPDX-License-Identifier: GPL-2.0
/*
 * The file family for kernels with trampolines but without task storage (5.11), bpf_loop
 * (5.17) and bpf_get_current_task_btf (5.11): Debian 11's 5.10. The loader picks it only
 * when neither flavour of file.bpf.c can run; its records are the same, field by field.
 *
 * One program, fexit do_sys_openat2: every open(2), openat(2), creat(2) and openat2(2)
 * passes there with its arguments and its outcome. A successful open is matched on the
 * canonical path of the new descriptor's file, rebuilt from its dentries up to the root of
 * the mount namespace as the syscall-tracepoint fallback does (bpf_d_path is not allowed
 * there); a refused one (EACCES, EPERM), or one whose path is too long or too deep to
 * rebuild, on the path argument, joined to its directory when relative. There is no
 * prefilter: every successful open in scope pays the rebuild and the trie lookups, where
 * the other flavours skip files whose names no rule can match.
 *
 * One program per traced function, on purpose: 5.10 waits for an RCU-tasks grace period at
 * every change of a function's trampoline, one after the other for the programs on the same
 * function, and the sensor must stop within two seconds (an fentry/fexit pair on
 * do_sys_openat2 and another on io_openat2 made a stop under load take up to 2.7 s in the
 * VM).
 *
 * 5.10 has bounded loops but no bpf_loop: the walk up the dentries (40 steps) and the lexical
 * normalization of joined paths (512 steps) are loops whose state lives in per-CPU map memory
 * (volatile, so that clang keeps none of it in registers the verifier would track), each step
 * a global function that the verifier checks once, with unknown values, and that costs each
 * iteration a call. Kernel objects are read with bpf_probe_read_kernel.
 */
#include "lib/file_record.h"
#include "lib/maps.h"
#include "lib/net_hooks.h"

char LICENSE[] SEC("license") = "GPL";

#define TL_AT_FDCWD_LEGACY -100
#define TL_BUILD_STEPS_LEGACY 40 /* components plus mount crossings, as lib/path_build.h */

static __always_inline struct tl_legacy_scratch *tl_legacy_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&tl_legacy_scratch_map, &zero);
}

/*
 * Matches the first `len` bytes of the scratch's canon (NUL-terminated) against the tries.
 * Returns rule_id << 32 | match of the rule, 0 when none matches (rule ids start at 1).
 */
__noinline long tl_match_legacy(__u32 len)
{
	struct tl_legacy_scratch *s = tl_legacy_scratch();
	struct tl_path_rule *rule;
	__u32 i;

	if (!s || len == 0 || len >= TL_PATH_LEN)
		return 0;
	s->canon.prefixlen = TL_PATH_LEN * 8;
	rule = bpf_map_lookup_elem(&tl_path_prefix, &s->canon);
	if (!rule) {
		/* The whole buffer, whatever len is: no branch on it, one pass for the
		 * verifier. Bytes after the NUL do not matter (lib/path_match.h). */
#pragma clang loop unroll(disable)
		for (i = 0; i < TL_PATH_LEN - 1; i++)
			s->rev.data[i] = s->canon.data[(len - 1 - i) & (TL_PATH_LEN - 1)];
		s->rev.data[len & (TL_PATH_LEN - 1)] = 0;
		s->rev.prefixlen = TL_PATH_LEN * 8;
		rule = bpf_map_lookup_elem(&tl_path_suffix, &s->rev);
		if (!rule)
			return 0;
	}
	return ((long)rule->rule_id << 32) | rule->match;
}

/*
 * One step of tl_build_legacy towards the root, as tl_build_step (lib/path_build.h); none
 * once the walk has ended. A global function, verified once.
 */
__noinline int tl_build_step_legacy(void)
{
	struct tl_legacy_scratch *s = tl_legacy_scratch();
	struct dentry *d, *mnt_root, *parent;
	struct mount *m;
	__u32 pos, name_len;

	if (!s || s->result != 0)
		return 0;
	d = (struct dentry *)s->d;
	m = (struct mount *)s->m;
	mnt_root = BPF_CORE_READ(m, mnt.mnt_root);
	parent = BPF_CORE_READ(d, d_parent);
	pos = s->pos;

	if (d == mnt_root || d == parent) {
		struct mount *up = BPF_CORE_READ(m, mnt_parent);

		if (d != mnt_root || up == m || !up) {
			s->result = 1; /* the root of the tree */
			return 0;
		}
		s->d = (__u64)BPF_CORE_READ(m, mnt_mountpoint);
		s->m = (__u64)up;
		return 0;
	}
	name_len = BPF_CORE_READ(d, d_name.len);
	if (name_len == 0 || name_len + 1 > pos) {
		s->result = -1;
		return 0;
	}
	pos -= name_len;
	pos &= TL_PATH_LEN - 1;
	name_len &= TL_PATH_LEN - 1;
	if (bpf_probe_read_kernel(&s->buf[pos], name_len, BPF_CORE_READ(d, d_name.name))) {
		s->result = -1;
		return 0;
	}
	pos = (pos - 1) & (TL_PATH_LEN - 1);
	s->buf[pos] = '/';
	s->pos = pos;
	s->d = (__u64)parent;
	return 0;
}

/*
 * The absolute path of (dentry, vfsmnt) into the scratch's canon, as tl_path_build
 * (lib/path_build.h). Returns its length, or -1 when it does not fit or is deeper.
 */
__noinline long tl_build_legacy(__u64 dentry, __u64 vfsmnt)
{
	struct tl_legacy_scratch *s = tl_legacy_scratch();
	__u32 i, pos, n;

	if (!s || !dentry || !vfsmnt)
		return -1;
	s->d = dentry;
	s->m = vfsmnt - bpf_core_field_offset(struct mount, mnt);
	s->pos = TL_PATH_LEN - 1;
	s->result = 0;
	s->buf[TL_PATH_LEN - 1] = 0;
#pragma clang loop unroll(disable)
	for (i = 0; i < TL_BUILD_STEPS_LEGACY; i++)
		tl_build_step_legacy();
	if (s->result != 1)
		return -1;
	pos = s->pos;
	if (pos >= TL_PATH_LEN - 1) {
		s->canon.data[0] = '/';
		s->canon.data[1] = 0;
		return 1;
	}
	n = TL_PATH_LEN - pos; /* with the NUL: 2..256 */
	TL_BARRIER_VAR(n);
	if (n < 2 || n > TL_PATH_LEN)
		return -1;
	if (bpf_probe_read_kernel(s->canon.data, n, &s->buf[pos & (TL_PATH_LEN - 1)]))
		return -1;
	return n - 1;
}

/*
 * Input byte `i` of the lexical normalization, as tl_norm_step (lib/path_join.h). A global
 * function: the verifier checks it once, and each of the loop's 512 steps costs it a call.
 */
__noinline int tl_norm_step_legacy(__u32 i)
{
	struct tl_legacy_scratch *s = tl_legacy_scratch();
	__u32 o, depth;
	char c;

	if (!s || s->failed)
		return 0;
	c = i < s->in_len ? s->buf[i & (2 * TL_PATH_LEN - 1)] : '/';
	if (c != '/') {
		o = s->o;
		if (o + 2 >= TL_PATH_LEN) {
			s->failed = 1;
			return 0;
		}
		if (s->comp_len == 0) {
			s->starts[s->depth & (TL_JOIN_MAX_DEPTH - 1)] = o;
			s->canon.data[o & (TL_PATH_LEN - 1)] = '/';
			o++;
			s->dots = 1;
		}
		s->canon.data[o & (TL_PATH_LEN - 1)] = c;
		s->o = o + 1;
		s->comp_len++;
		s->dots = s->dots && c == '.';
		return 0;
	}
	if (s->comp_len == 0)
		return 0; /* "//" or a leading '/' */
	if (s->dots && s->comp_len <= 2) {
		/* "." is dropped; ".." drops itself and the component before (none at "/"). */
		depth = s->depth;
		s->o = s->starts[depth & (TL_JOIN_MAX_DEPTH - 1)];
		if (s->comp_len == 2 && depth > 0) {
			depth--;
			s->depth = depth;
			s->o = s->starts[depth & (TL_JOIN_MAX_DEPTH - 1)];
		}
	} else {
		depth = s->depth + 1;
		s->depth = depth;
		if (depth >= TL_JOIN_MAX_DEPTH) {
			s->failed = 1;
			return 0;
		}
	}
	s->comp_len = 0;
	return 0;
}

/* The address of the struct file behind descriptor `fd` of `task`, or 0 (probe reads). */
static __always_inline __u64 tl_fd_file_legacy(struct task_struct *task, long fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	__u64 file = 0;

	if (!fdt || fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]))
		return 0;
	return file;
}

/*
 * Joins the relative path in the scratch's raw (raw_len bytes) to directory `dfd` of the
 * current task and normalizes it into canon, as tl_join_relative (lib/path_join.h). Returns
 * the length, or -1.
 */
__noinline long tl_join_legacy(long dfd, __u32 raw_len)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct tl_legacy_scratch *s;
	__u64 dentry, vfsmnt;
	long base;
	__u32 i, o;

	if (dfd == TL_AT_FDCWD_LEGACY) {
		dentry = (__u64)BPF_CORE_READ(task, fs, pwd.dentry);
		vfsmnt = (__u64)BPF_CORE_READ(task, fs, pwd.mnt);
	} else {
		struct file *dir = (struct file *)tl_fd_file_legacy(task, dfd);

		if (!dir)
			return -1;
		dentry = (__u64)BPF_CORE_READ(dir, f_path.dentry);
		vfsmnt = (__u64)BPF_CORE_READ(dir, f_path.mnt);
	}
	base = tl_build_legacy(dentry, vfsmnt);
	s = tl_legacy_scratch();
	if (!s || base <= 0 || raw_len == 0 || raw_len >= TL_PATH_LEN)
		return -1;
	/* buf = base "/" raw: at most 255 + 1 + 255 bytes of its 512. */
	base &= TL_PATH_LEN - 1;
	if (bpf_probe_read_kernel(s->buf, base, s->canon.data))
		return -1;
	s->buf[base] = '/';
	/* clang drops a mask it knows to be redundant; the verifier needs it. */
	TL_BARRIER_VAR(raw_len);
	raw_len &= TL_PATH_LEN - 1;
	if (bpf_probe_read_kernel(&s->buf[base + 1], raw_len, s->raw.data))
		return -1;
	s->in_len = base + 1 + raw_len;
	s->o = 0;
	s->depth = 0;
	s->comp_len = 0;
	s->dots = 0;
	s->failed = 0;
#pragma clang loop unroll(disable)
	for (i = 0; i < 2 * TL_PATH_LEN; i++)
		tl_norm_step_legacy(i);
	if (s->failed)
		return -1;
	o = s->o & (TL_PATH_LEN - 1);
	if (o == 0) {
		s->canon.data[0] = '/';
		o = 1;
	}
	s->canon.data[o] = 0;
	return o;
}

/*
 * Matches the path argument (`upath`, a user pointer) of an open by the current thread and
 * reports the open when a rule matches, as tl_report_argument (lib/file_open.h).
 */
__noinline int tl_report_argument_legacy(long dfd, __u64 upath, __u64 flags, __u32 mode, long ret)
{
	struct tl_legacy_scratch *s = tl_legacy_scratch();
	__u8 source = TL_PATH_ARGUMENT, truncated = 0;
	long n, len, hit;

	if (!s)
		return 0;
	n = bpf_probe_read_user_str(s->canon.data, TL_PATH_LEN, (void *)upath);
	if (n <= 1) {
		if (n < 0)
			tl_count_helper_error();
		return 0;
	}
	if (s->canon.data[0] != '/') {
		if (bpf_probe_read_kernel(s->raw.data, TL_PATH_LEN, s->canon.data))
			return 0;
		len = tl_join_legacy(dfd, n - 1);
		if (len <= 0)
			return 0;
		source = TL_PATH_JOINED;
	} else {
		len = n - 1;
		truncated = n == TL_PATH_LEN;
	}
	hit = tl_match_legacy(len);
	if (hit)
		tl_emit_file_open(flags, mode, ret, &s->canon, len, hit >> 32, (__u32)hit, source,
				  truncated);
	return 0;
}

/*
 * Matches the canonical path of descriptor `fd` of the current task, just opened, and
 * reports the open when a rule matches. 0 when the path could not be rebuilt (too long or
 * too deep), 1 otherwise.
 */
__noinline int tl_report_opened_legacy(long fd, __u64 flags, __u32 mode)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *file = (struct file *)tl_fd_file_legacy(task, fd);
	struct tl_legacy_scratch *s;
	long len, hit;

	if (!file)
		return 1;
	len = tl_build_legacy((__u64)BPF_CORE_READ(file, f_path.dentry),
			      (__u64)BPF_CORE_READ(file, f_path.mnt));
	if (len <= 0)
		return 0;
	hit = tl_match_legacy(len);
	s = tl_legacy_scratch();
	if (hit && s)
		tl_emit_file_open(flags, mode, fd, &s->canon, len, hit >> 32, (__u32)hit,
				  TL_PATH_CANONICAL, 0);
	return 1;
}

SEC("fexit/do_sys_openat2")
int BPF_PROG(tl_openat_exit_legacy, int dfd, const char *filename, struct open_how *how, long ret)
{
	__u64 flags;
	__u32 mode;

	if (ret < 0 && !tl_open_denied(ret))
		return 0;
	if (!tl_current_in_scope())
		return 0;
	flags = BPF_CORE_READ(how, flags);
	mode = BPF_CORE_READ(how, mode);
	/* A path too long or too deep to rebuild: the argument may still match. */
	if (ret >= 0 && tl_report_opened_legacy(ret, flags, mode))
		return 0;
	tl_report_argument_legacy(dfd, (__u64)filename, flags, mode, ret);
	return 0;
}

/* ---- io_uring: opens that never pass through a syscall ---- */

/*
 * Debian's 5.10 carries the io_uring of 5.15: io-wq workers are threads of the submitting
 * process, but the io_uring_complete tracepoint is passed no request (its arguments are ctx,
 * user_data, res, cflags), which file.bpf.c's hook needs. So the open is followed through:
 * - fentry io_openat2 notes the open's flags, mode and request (ring, user_data) under the
 *   request's struct filename *, the name do_filp_open is then passed;
 * - fexit do_filp_open with that name has the opened file: its canonical path is rebuilt and
 *   matched, and a match waits under (ring, user_data) for the completion;
 * - the io_uring_complete tracepoint with that (ring, user_data) gives the result (the
 *   descriptor), posted by the io-wq worker inside io_openat2 or later by the submitter
 *   (a deferred completion): the open is reported then, as file.bpf.c does.
 * Opens into a fixed-file slot and refused ones are not reported, as in file.bpf.c. A
 * nonblocking attempt that gives up (-EAGAIN) leaves its note to the io-wq worker's attempt,
 * which has the same name. io_uring connects reach tcp_connect, which the net family hooks
 * with fentry on every kernel this runs on (this variant needs trampolines too).
 */
struct io_kiocb___legacy {
	union {
		struct file *file;
		struct io_open open;
	};
	struct io_ring_ctx *ctx;
	__u64 user_data;
} __attribute__((preserve_access_index));

SEC("fentry/io_openat2")
int BPF_PROG(tl_io_openat_enter_legacy, void *req_ptr)
{
	struct io_kiocb___legacy *req = req_ptr;
	struct tl_iou_open st = {};
	__u64 name;

	/* Not this kernel's layout: the loader picks another variant there. */
	if (!bpf_core_field_exists(req->open))
		return 0;
	if (!tl_current_in_scope() || BPF_CORE_READ(req, open.file_slot) != 0)
		return 0;
	name = (__u64)BPF_CORE_READ(req, open.filename);
	st.flags = BPF_CORE_READ(req, open.how.flags);
	st.mode = BPF_CORE_READ(req, open.how.mode);
	st.ctx = (__u64)BPF_CORE_READ(req, ctx);
	st.user_data = BPF_CORE_READ(req, user_data);
	st.tgid = bpf_get_current_pid_tgid() >> 32;
	if (bpf_map_update_elem(&tl_iou_opens, &name, &st, BPF_ANY) != 0)
		tl_count_state_error();
	return 0;
}

SEC("fexit/do_filp_open")
int BPF_PROG(tl_filp_open_exit_legacy, int dfd, struct filename *pathname, void *op,
	     struct file *ret)
{
	__u64 name = (__u64)pathname, file = (__u64)ret;
	struct tl_legacy_scratch *s;
	struct tl_iou_open *st;
	struct tl_iou_key key;
	long len, hit;

	st = bpf_map_lookup_elem(&tl_iou_opens, &name);
	/* A note left by a request that never reached do_filp_open (cancelled) must not be
	 * taken for another process's open whose name reuses its memory. */
	if (!st || st->tgid != bpf_get_current_pid_tgid() >> 32)
		return 0;
	s = tl_legacy_scratch();
	if (!s)
		return 0;
	key.ctx = st->ctx;
	key.user_data = st->user_data;
	s->iou.flags = st->flags;
	s->iou.mode = st->mode;
	bpf_map_delete_elem(&tl_iou_opens, &name);
	if (file >= (__u64)-4095) /* an error pointer */
		return 0;
	len = tl_build_legacy((__u64)BPF_CORE_READ(ret, f_path.dentry),
			      (__u64)BPF_CORE_READ(ret, f_path.mnt));
	if (len <= 0)
		return 0;
	hit = tl_match_legacy(len);
	if (!hit)
		return 0;
	s->iou.rule_id = hit >> 32;
	s->iou.match = (__u32)hit;
	s->iou.len = len;
	__builtin_memcpy(&s->iou.path, &s->canon, sizeof(s->iou.path));
	if (bpf_map_update_elem(&tl_iou_matches, &key, &s->iou, BPF_ANY) != 0)
		tl_count_state_error();
	return 0;
}

SEC("tp_btf/io_uring_complete")
int BPF_PROG(tl_io_uring_complete_legacy, void *ring, __u64 user_data, int res)
{
	struct tl_iou_key key = {.ctx = (__u64)ring, .user_data = user_data};
	struct tl_iou_match *m;

	m = bpf_map_lookup_elem(&tl_iou_matches, &key);
	if (!m)
		return 0;
	if (res >= 0)
		tl_emit_file_open(m->flags, m->mode, res, &m->path, m->len, m->rule_id, m->match,
				  TL_PATH_CANONICAL, 0);
	bpf_map_delete_elem(&tl_iou_matches, &key);
	return 0;
}
