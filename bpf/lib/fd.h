/* SPDX-License-Identifier: Apache-2.0 */
/*
 * From a file descriptor of the current task to its struct file and its socket. Used by the
 * syscall-tracepoint programs, where the hooked function's arguments are not at hand.
 */
#ifndef TRIPLINE_BPF_LIB_FD_H
#define TRIPLINE_BPF_LIB_FD_H

#include "common.h"

#define TL_S_IFMT 00170000
#define TL_S_IFSOCK 0140000

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

/* The same as a pointer to read with BPF_CORE_READ, or NULL. */
static __always_inline struct file *tl_fd_file(struct task_struct *task, long fd)
{
	return (struct file *)tl_fd_file_addr(task, fd);
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

#endif /* TRIPLINE_BPF_LIB_FD_H */
