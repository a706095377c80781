/* SPDX-License-Identifier: Apache-2.0 */
/* Outbound connects and SSH accepts: the record, and the tp_btf/sys_exit fallback handler. */
#ifndef TRIPLINE_BPF_LIB_NET_HOOKS_H
#define TRIPLINE_BPF_LIB_NET_HOOKS_H

#include "fd.h"
#include "maps.h"
#include "record.h"
#include "sock.h"
#include "syscalls.h"

static __always_inline void tl_emit_net(struct sock *sk, __u8 direction, struct tl_endpoints *saved)
{
	struct tl_net_record *rec;

	rec = tl_reserve(&tl_priority, sizeof(*rec), TL_REC_NET_CONNECT);
	if (!rec)
		return;
	tl_fill_header(&rec->hdr, TL_REC_NET_CONNECT, sizeof(*rec));
	tl_read_endpoints(sk, &rec->conn);
	rec->direction = direction;
	rec->protocol = TL_IPPROTO_TCP;
	if (saved)
		__builtin_memcpy(saved, &rec->conn, sizeof(*saved));
	bpf_ringbuf_submit(rec, 0);
}

static __always_inline bool tl_is_ssh_listener(__u32 tgid)
{
	char comm[TL_COMM_LEN];

	bpf_get_current_comm(comm, sizeof(comm));
	if (comm[0] == 's' && comm[1] == 's' && comm[2] == 'h' && comm[3] == 'd')
		return true;
	return bpf_map_lookup_elem(&tl_listener_tgids, &tgid) != NULL;
}

static __always_inline void tl_on_accept(struct sock *newsk)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct tl_endpoints peer = {};

	if (!newsk || !tl_is_ssh_listener(tgid))
		return;
	tl_read_endpoints(newsk, &peer);
	bpf_map_update_elem(&tl_peer_by_tgid, &tgid, &peer, BPF_ANY);
	if (!tl_current_in_scope())
		return;
	tl_emit_net(newsk, TL_NET_ACCEPTED, NULL);
}

/* tp_btf/sys_exit of connect, accept and accept4 (`nr`, result `ret`). */
static __always_inline void tl_net_sys_exit(struct pt_regs *regs, long nr, long ret)
{
	struct task_struct *task;
	struct sock *sk;

	if (nr == TL_NR_CONNECT) {
		if (ret != 0 && ret != -TL_EINPROGRESS)
			return;
		if (!tl_current_in_scope())
			return;
		task = bpf_get_current_task_btf();
		sk = tl_file_tcp_sock(tl_fd_file(task, TL_SYSCALL_ARG1(regs)));
		if (sk)
			tl_emit_net(sk, TL_NET_OUTBOUND, NULL);
	} else if (ret >= 0) {
		task = bpf_get_current_task_btf();
		tl_on_accept(tl_file_tcp_sock(tl_fd_file(task, ret)));
	}
}

#endif /* TRIPLINE_BPF_LIB_NET_HOOKS_H */
