// SPDX-License-Identifier: GPL-2.0
/*
 * net: outbound TCP connections and the connections SSH daemons accept.
 *
 * - fentry/tcp_connect: called for every active TCP open (IPv4 and IPv6) after the route and
 *   the source port are chosen (inet_hash_connect ran), so the 5-tuple is complete, and in
 *   the context of the connecting process.
 * - fexit/inet_csk_accept: returns the new socket in the accepting process's context, with
 *   both ends known. Reported for processes whose comm starts with "sshd" (sshd,
 *   sshd-session) or whose tgid the loader put in tl_listener_tgids; the peer is also kept
 *   per tgid and handed down through fork (sshd forks one child per connection and PAM runs
 *   in that child), so login records can carry the remote port.
 * - tp_btf/sched_process_fork and sched_process_exit: propagate and free that per-tgid peer.
 *
 * Fallback for kernels that refuse fentry/fexit: tp_btf/sys_exit of connect (success or
 * EINPROGRESS: the source port is bound by then) and of accept/accept4, the socket found
 * through the fd. Connections made by the kernel itself or through io_uring are not seen.
 */
#include "lib/fd.h"
#include "lib/maps.h"
#include "lib/record.h"
#include "lib/sock.h"
#include "lib/syscalls.h"

char LICENSE[] SEC("license") = "GPL";

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

SEC("fentry/tcp_connect")
int BPF_PROG(tl_tcp_connect, struct sock *sk)
{
	if (!tl_current_in_scope())
		return 0;
	tl_emit_net(sk, TL_NET_OUTBOUND, NULL);
	return 0;
}

/*
 * inet_csk_accept(sk, arg) since Linux 6.10, inet_csk_accept(sk, flags, err, kern) before:
 * the return value follows the arguments, so its slot depends on the signature.
 */
SEC("fexit/inet_csk_accept")
int tl_accept_exit(unsigned long long *ctx)
{
	struct sock *newsk;

	if (bpf_core_type_exists(struct proto_accept_arg))
		newsk = (struct sock *)ctx[2];
	else
		newsk = (struct sock *)ctx[4];
	tl_on_accept(newsk);
	return 0;
}

/* Fallback for connect and accept: see the top of this file. */
SEC("tp_btf/sys_exit")
int BPF_PROG(tl_net_sys_exit, struct pt_regs *regs, long ret)
{
	long nr = TL_SYSCALL_NR(regs);
	struct task_struct *task;
	struct sock *sk;

	if (nr == TL_NR_CONNECT) {
		if (ret != 0 && ret != -TL_EINPROGRESS)
			return 0;
		if (!tl_current_in_scope())
			return 0;
		task = bpf_get_current_task_btf();
		sk = tl_file_tcp_sock(tl_fd_file(task, PT_REGS_PARM1_CORE_SYSCALL(regs)));
		if (sk)
			tl_emit_net(sk, TL_NET_OUTBOUND, NULL);
	} else if (nr == TL_NR_ACCEPT || nr == TL_NR_ACCEPT4) {
		if (ret < 0)
			return 0;
		task = bpf_get_current_task_btf();
		tl_on_accept(tl_file_tcp_sock(tl_fd_file(task, ret)));
	}
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(tl_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 parent_tgid = BPF_CORE_READ(parent, tgid);
	__u32 child_tgid = BPF_CORE_READ(child, tgid);
	struct tl_endpoints *peer;

	if (parent_tgid == child_tgid)
		return 0; /* a thread */
	peer = bpf_map_lookup_elem(&tl_peer_by_tgid, &parent_tgid);
	if (peer && bpf_map_update_elem(&tl_peer_by_tgid, &child_tgid, peer, BPF_ANY) != 0)
		tl_count_state_error();
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(tl_exit, struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);

	if (BPF_CORE_READ(p, pid) == tgid)
		bpf_map_delete_elem(&tl_peer_by_tgid, &tgid);
	return 0;
}
