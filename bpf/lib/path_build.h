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
	struct dentry *d; /* the component to prepend next */
	struct mount *m;  /* the mount d is in */
	char *scratch;	  /* 2 * TL_PATH_LEN bytes; the path is scratch[pos, TL_PATH_LEN - 1) */
	__u32 pos;
	int result; /* 0: walking, 1: the root was reached, -1: too long or unreadable */
};

/*
 * One step towards the root: prepends "/name" of b->d, or crosses from a mount's root to its
 * mount point. bpf_loop keeps verification linear in the code, not in the steps: an
 * open-coded loop of this shape is verified once per iteration and per state.
 */
static long tl_build_step(__u32 i, void *ctx)
{
	struct tl_build *b = ctx;
	struct dentry *d = TL_KPTR(dentry, b->d);
	struct mount *m = TL_KPTR(mount, b->m);
	struct dentry *mnt_root = TL_KLOAD(m, mnt.mnt_root);
	struct dentry *parent = TL_KLOAD(d, d_parent);
	__u32 pos = b->pos, name_len;

	if (d == mnt_root || d == parent) {
		struct mount *up = TL_KLOAD(m, mnt_parent);

		if (d != mnt_root || up == m || !up) {
			b->result = 1; /* the root of the tree */
			return 1;
		}
		b->d = TL_KLOAD(m, mnt_mountpoint);
		b->m = up;
		return 0;
	}
	name_len = TL_KLOAD(d, d_name.len);
	if (name_len == 0 || name_len + 1 > pos) {
		b->result = -1;
		return 1;
	}
	pos -= name_len;
	pos &= TL_PATH_LEN - 1;
	name_len &= TL_PATH_LEN - 1;
	if (bpf_probe_read_kernel(&b->scratch[pos], name_len, TL_KLOAD(d, d_name.name))) {
		b->result = -1;
		return 1;
	}
	pos = (pos - 1) & (TL_PATH_LEN - 1);
	b->scratch[pos] = '/';
	b->pos = pos;
	b->d = parent;
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
	struct tl_build b = {
	    .d = dentry,
	    .m = (struct mount *)((void *)vfsmnt - bpf_core_field_offset(struct mount, mnt)),
	    .scratch = scratch,
	    .pos = TL_PATH_LEN - 1,
	};
	long len;

	scratch[TL_PATH_LEN - 1] = 0;
	bpf_loop(TL_BUILD_STEPS, tl_build_step, &b, 0);
	if (b.result != 1)
		return -1;
	if (b.pos >= TL_PATH_LEN - 1) {
		out->data[0] = '/';
		out->data[1] = 0;
		return 1;
	}
	len = TL_PATH_LEN - 1 - b.pos;
	TL_BARRIER_VAR(len);
	if (len <= 0 || len >= TL_PATH_LEN)
		return -1;
	if (bpf_probe_read_kernel(out->data, len + 1, &scratch[b.pos & (TL_PATH_LEN - 1)]))
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
