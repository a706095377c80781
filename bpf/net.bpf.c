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
 * Fallback for kernels that refuse fentry/fexit: tl_sys_exit_net, tail-called by the
 * tp_btf/sys_exit dispatcher (sys_exit.bpf.c), handles connect (success or EINPROGRESS: the source
 * port is bound by then) and accept/accept4, the socket found through the fd (lib/net_hooks.h).
 * Connections made by the kernel itself or through io_uring are not seen.
 */
#include "lib/net_hooks.h"

char LICENSE[] SEC("license") = "GPL";

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
 * the return value follows the arguments, so its slot depends on the signature. The slot is
 * read with a helper: a load from ctx at an offset chosen at run time (as clang compiles
 * the choice of ctx[2] or ctx[4]) is refused ("dereference of modified ctx ptr").
 */
SEC("fexit/inet_csk_accept")
int tl_accept_exit(unsigned long long *ctx)
{
	__u32 slot = bpf_core_type_exists(struct proto_accept_arg) ? 2 : 4;
	struct sock *newsk = NULL;

	if (bpf_probe_read_kernel(&newsk, sizeof(newsk), &ctx[slot]) != 0)
		tl_count_helper_error();
	tl_on_accept(newsk);
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

/* The fallback: tail-called by tl_sys_exit for connect, accept and accept4. */
SEC("tp_btf/sys_exit")
int BPF_PROG(tl_sys_exit_net, struct pt_regs *regs, long ret)
{
	tl_net_sys_exit(regs, TL_SYSCALL_NR(regs), ret);
	return 0;
}
