/* SPDX-License-Identifier: Apache-2.0 */
/*
 * From a file descriptor of the current task to its struct file, its path and its socket.
 * Used by the syscall-tracepoint programs, where neither the struct file nor bpf_d_path is
 * available.
 */
#ifndef TRIPLINE_BPF_LIB_FD_H
#define TRIPLINE_BPF_LIB_FD_H

#include "common.h"

#define TL_S_IFMT 00170000
#define TL_S_IFSOCK 0140000
#define TL_MAX_PATH_COMPONENTS 32

/* Reads a kernel object through a BTF-typed, read-only pointer (Linux 6.2+). */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/*
 * The address of the struct file behind descriptor `fd` of `task` (the current task, from
 * bpf_get_current_task_btf()), or 0. A plain number, as global functions take them. One
 * helper call, for the fd slot (an index into an array the verifier cannot bound).
 */
static __always_inline __u64 tl_fd_file_addr(struct task_struct *task, long fd)
{
	struct files_struct *files = task->files;
	struct fdtable *fdt;
	__u64 file = 0;

	if (!files)
		return 0;
	fdt = files->fdt;
	if (!fdt || fd < 0 || fd >= fdt->max_fds)
		return 0;
	if (bpf_probe_read_kernel(&file, sizeof(file),
				  (void *)((unsigned long)fdt->fd + fd * sizeof(file))) != 0)
		return 0;
	return file;
}

/* The same as a read-only BTF pointer: its fields are plain loads, not helper calls. */
static __always_inline struct file *tl_fd_file(struct task_struct *task, long fd)
{
	__u64 file = tl_fd_file_addr(task, fd);

	return file ? bpf_rdonly_cast((void *)file, bpf_core_type_id_kernel(struct file)) : NULL;
}

/* The TCP socket behind `file`, or NULL. */
static __always_inline struct sock *tl_file_tcp_sock(struct file *file)
{
	struct socket *sock;
	struct sock *sk;

	if (!file || (BPF_CORE_READ(file, f_inode, i_mode) & TL_S_IFMT) != TL_S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != TL_IPPROTO_TCP)
		return NULL;
	return sk;
}

/*
 * Writes the absolute path of (dentry, vfsmnt) into out->data (NUL-terminated) by walking
 * dentries up to the root of the task's mount tree, at most TL_MAX_PATH_COMPONENTS deep;
 * `scratch` needs 2 * TL_PATH_LEN bytes. Returns the length, or -1 when the path does not
 * fit or is deeper. Like d_path relative to the namespace root, but does not stop at a
 * chroot.
 */
static __always_inline long tl_path_build(struct dentry *dentry_in, struct vfsmount *vfsmnt_in,
					  struct tl_path_key *out, char *scratch)
{
	/* Read-only BTF pointers: plain loads instead of a helper call per field. */
	struct dentry *dentry = bpf_rdonly_cast(dentry_in, bpf_core_type_id_kernel(struct dentry));
	struct mount *mnt =
	    bpf_rdonly_cast((void *)vfsmnt_in - bpf_core_field_offset(struct mount, mnt),
			    bpf_core_type_id_kernel(struct mount));
	__u32 pos = TL_PATH_LEN - 1;
	long len;

	scratch[TL_PATH_LEN - 1] = 0;
	for (int i = 0; i < TL_MAX_PATH_COMPONENTS; i++) {
		struct dentry *mnt_root = mnt->mnt.mnt_root;
		struct dentry *parent = dentry->d_parent;
		__u32 name_len;

		if (dentry == mnt_root || dentry == parent) {
			struct mount *up = mnt->mnt_parent;

			if (dentry != mnt_root || up == mnt || !up)
				goto done; /* the root of the tree */
			dentry = mnt->mnt_mountpoint;
			mnt = up;
			continue;
		}
		name_len = dentry->d_name.len;
		if (name_len == 0 || name_len + 1 > pos)
			return -1;
		pos -= name_len;
		TL_BARRIER_VAR(pos);
		pos &= TL_PATH_LEN - 1;
		name_len &= TL_PATH_LEN - 1;
		if (bpf_probe_read_kernel(&scratch[pos], name_len, dentry->d_name.name))
			return -1;
		pos -= 1;
		pos &= TL_PATH_LEN - 1;
		scratch[pos] = '/';
		dentry = parent;
	}
	return -1; /* deeper than we walk */
done:
	if (pos == TL_PATH_LEN - 1) {
		out->data[0] = '/';
		out->data[1] = 0;
		return 1;
	}
	len = TL_PATH_LEN - 1 - pos;
	TL_BARRIER_VAR(len);
	if (len <= 0 || len >= TL_PATH_LEN)
		return -1;
	if (bpf_probe_read_kernel(out->data, len + 1, &scratch[pos & (TL_PATH_LEN - 1)]))
		return -1;
	return len;
}

/* The absolute path of `file`, as tl_path_build. */
static __always_inline long tl_file_path(struct file *file, struct tl_path_key *out, char *scratch)
{
	return tl_path_build(BPF_CORE_READ(file, f_path.dentry), BPF_CORE_READ(file, f_path.mnt),
			     out, scratch);
}

#endif /* TRIPLINE_BPF_LIB_FD_H */
