/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Relative path arguments of refused opens ("cd /etc; cat shadow" as a user who may not):
 * the open never resolved, so there is no file to take the canonical path from. The
 * argument is joined to the directory it is relative to (the working directory, or the
 * dirfd of openat) and "." and ".." are resolved lexically, as the kernel would have walked
 * them without symlinks. The result is matched against the same tries.
 */
#ifndef TRIPLINE_BPF_LIB_PATH_JOIN_H
#define TRIPLINE_BPF_LIB_PATH_JOIN_H

#include "fd.h"
#include "path_build.h"
#include "state.h"

#define TL_AT_FDCWD -100

/* Lexical normalization, one input byte per bpf_loop step (see tl_normalize). */
struct tl_norm {
	char *in;  /* joined path, in_len bytes */
	char *out; /* TL_PATH_LEN bytes */
	struct {   /* the state, opaque to the verifier (TL_OPAQUE) */
		__u32 in_len;
		__u32 o;	/* bytes written to out */
		__u32 depth;	/* components kept */
		__u32 comp_len; /* bytes of the component being copied */
		__u32 dots;	/* the component so far is all '.' */
		__u32 failed;
		__u16 starts[TL_JOIN_MAX_DEPTH]; /* out offset of each kept component's '/' */
	} v;
};

static long tl_norm_step(__u32 i, void *ctx)
{
	struct tl_norm *n = ctx;
	char c = i < n->v.in_len ? n->in[i & (2 * TL_PATH_LEN - 1)] : '/';

	if (c != '/') {
		if (n->v.o + 2 >= TL_PATH_LEN) {
			n->v.failed = 1;
			return 1;
		}
		if (n->v.comp_len == 0) {
			n->v.starts[n->v.depth & (TL_JOIN_MAX_DEPTH - 1)] = n->v.o;
			n->out[n->v.o & (TL_PATH_LEN - 1)] = '/';
			n->v.o++;
			n->v.dots = 1;
		}
		n->out[n->v.o & (TL_PATH_LEN - 1)] = c;
		n->v.o++;
		n->v.comp_len++;
		n->v.dots = n->v.dots && c == '.';
		return 0;
	}
	if (n->v.comp_len == 0)
		return 0; /* "//" or a leading '/' */
	if (n->v.dots && n->v.comp_len <= 2) {
		/* "." is dropped; ".." drops itself and the component before (none at "/"). */
		n->v.o = n->v.starts[n->v.depth & (TL_JOIN_MAX_DEPTH - 1)];
		if (n->v.comp_len == 2 && n->v.depth > 0) {
			n->v.depth--;
			n->v.o = n->v.starts[n->v.depth & (TL_JOIN_MAX_DEPTH - 1)];
		}
	} else if (++n->v.depth >= TL_JOIN_MAX_DEPTH) {
		n->v.failed = 1;
		return 1;
	}
	n->v.comp_len = 0;
	return 0;
}

/*
 * Joins the relative path in st->raw (raw_len bytes) to directory `dfd` of `task` and
 * normalizes it into st->canon. Returns the length, or -1 when the directory cannot be
 * found or the result does not fit.
 */
static __always_inline long tl_join_relative(struct tl_open_state *st, struct task_struct *task,
					     long dfd, __u32 raw_len)
{
	struct tl_norm n = {};
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	long base;

	if (dfd == TL_AT_FDCWD) {
		dentry = BPF_CORE_READ(task, fs, pwd.dentry);
		vfsmnt = BPF_CORE_READ(task, fs, pwd.mnt);
	} else {
		struct file *dir = tl_fd_file(task, dfd);

		if (!dir)
			return -1;
		dentry = BPF_CORE_READ(dir, f_path.dentry);
		vfsmnt = BPF_CORE_READ(dir, f_path.mnt);
	}
	if (!dentry || !vfsmnt)
		return -1;
	base = tl_path_build(dentry, vfsmnt, &st->canon, st->scratch);
	if (base <= 0 || raw_len == 0 || raw_len >= TL_PATH_LEN)
		return -1;
	/* scratch = base "/" raw: at most 255 + 1 + 255 bytes of its 512. */
	base &= TL_PATH_LEN - 1;
	if (bpf_probe_read_kernel(st->scratch, base, st->canon.data))
		return -1;
	st->scratch[base] = '/';
	if (bpf_probe_read_kernel(&st->scratch[base + 1], raw_len & (TL_PATH_LEN - 1),
				  st->raw.data))
		return -1;
	n.in = st->scratch;
	n.out = (char *)st->canon.data;
	n.v.in_len = base + 1 + raw_len;
	TL_OPAQUE(n.v);
	bpf_loop(2 * TL_PATH_LEN, tl_norm_step, &n, 0);
	if (n.v.failed)
		return -1;
	if (n.v.o == 0) {
		st->canon.data[0] = '/';
		n.v.o = 1;
	}
	st->canon.data[n.v.o & (TL_PATH_LEN - 1)] = 0;
	return n.v.o;
}

#endif /* TRIPLINE_BPF_LIB_PATH_JOIN_H */
