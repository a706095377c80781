/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rebuilding the absolute path of a (dentry, vfsmount) pair from its dentries, where
 * bpf_d_path is not allowed (syscall tracepoints, io_uring completions). Part of the file
 * family: compiled in both of its flavours (lib/kptr.h).
 */
#ifndef TRIPLINE_BPF_LIB_PATH_BUILD_H
#define TRIPLINE_BPF_LIB_PATH_BUILD_H

#include "kptr.h"
#include "state.h"

/* Components plus mount crossings walked before giving up. */
#define TL_BUILD_STEPS 40

/* A path being built right to left in scratch, one bpf_loop step per component. */
struct tl_build {
	char *scratch;	 /* 2 * TL_PATH_LEN bytes; the path is scratch[pos, TL_PATH_LEN - 1) */
	struct {	 /* the walk's state, opaque to the verifier (TL_OPAQUE) */
		__u64 d; /* the component to prepend next (struct dentry *) */
		__u64 m; /* the mount d is in (struct mount *) */
		__u32 pos;
		int result; /* 0: walking, 1: the root was reached, -1: too long or unreadable */
	} v;
};

/*
 * One step towards the root: prepends "/name" of b->d, or crosses from a mount's root to its
 * mount point. bpf_loop keeps verification linear in the code, not in the steps: an
 * open-coded loop of this shape is verified once per iteration and per state.
 */
static long tl_build_step(__u32 i, void *ctx)
{
	struct tl_build *b = ctx;
	struct dentry *d = TL_KPTR(dentry, b->v.d);
	struct mount *m = TL_KPTR(mount, b->v.m);
	struct dentry *mnt_root = TL_KLOAD(m, mnt.mnt_root);
	struct dentry *parent = TL_KLOAD(d, d_parent);
	__u32 pos = b->v.pos, name_len;

	if (d == mnt_root || d == parent) {
		struct mount *up = TL_KLOAD(m, mnt_parent);

		if (d != mnt_root || up == m || !up) {
			b->v.result = 1; /* the root of the tree */
			return 1;
		}
		b->v.d = (__u64)TL_KLOAD(m, mnt_mountpoint);
		b->v.m = (__u64)up;
		return 0;
	}
	name_len = TL_KLOAD(d, d_name.len);
	if (name_len == 0 || name_len + 1 > pos) {
		b->v.result = -1;
		return 1;
	}
	pos -= name_len;
	pos &= TL_PATH_LEN - 1;
	name_len &= TL_PATH_LEN - 1;
	if (bpf_probe_read_kernel(&b->scratch[pos], name_len, TL_KLOAD(d, d_name.name))) {
		b->v.result = -1;
		return 1;
	}
	pos = (pos - 1) & (TL_PATH_LEN - 1);
	b->scratch[pos] = '/';
	b->v.pos = pos;
	b->v.d = (__u64)parent;
	return 0;
}

/*
 * Writes the absolute path of (dentry, vfsmnt) into out->data (NUL-terminated), walking
 * dentries up to the root of the task's mount tree, at most TL_BUILD_STEPS components and
 * mount crossings; `scratch` needs 2 * TL_PATH_LEN bytes. Returns the length, or -1 when the
 * path does not fit or is deeper. Like d_path relative to the namespace root, but does not
 * stop at a chroot.
 */
static __always_inline long tl_path_build(struct dentry *dentry, struct vfsmount *vfsmnt,
					  struct tl_path_key *out, char *scratch)
{
	struct tl_build b = {.scratch = scratch};
	long len;

	b.v.d = (__u64)dentry;
	b.v.m = (__u64)vfsmnt - bpf_core_field_offset(struct mount, mnt);
	b.v.pos = TL_PATH_LEN - 1;
	b.v.result = 0;
	TL_OPAQUE(b.v);
	scratch[TL_PATH_LEN - 1] = 0;
	bpf_loop(TL_BUILD_STEPS, tl_build_step, &b, 0);
	if (b.v.result != 1)
		return -1;
	if (b.v.pos >= TL_PATH_LEN - 1) {
		out->data[0] = '/';
		out->data[1] = 0;
		return 1;
	}
	len = TL_PATH_LEN - 1 - b.v.pos;
	TL_BARRIER_VAR(len);
	if (len <= 0 || len >= TL_PATH_LEN)
		return -1;
	if (bpf_probe_read_kernel(out->data, len + 1, &scratch[b.v.pos & (TL_PATH_LEN - 1)]))
		return -1;
	return len;
}

/* The absolute path of `file`, as tl_path_build. */
static __always_inline long tl_file_path(struct file *file, struct tl_path_key *out, char *scratch)
{
	return tl_path_build(BPF_CORE_READ(file, f_path.dentry), BPF_CORE_READ(file, f_path.mnt),
			     out, scratch);
}

#endif /* TRIPLINE_BPF_LIB_PATH_BUILD_H */
