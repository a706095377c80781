/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a TCP socket's addresses. */
#ifndef TRIPLINE_BPF_LIB_SOCK_H
#define TRIPLINE_BPF_LIB_SOCK_H

#include "common.h"

/* Copies family, addresses and ports of `sk` (local = this host's end) into `ep`. */
static __always_inline void tl_read_endpoints(struct sock *sk, struct tl_endpoints *ep)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	ep->family = family;
	ep->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	ep->remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == TL_AF_INET) {
		__u32 saddr = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 daddr = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memcpy(ep->local_addr, &saddr, 4);
		__builtin_memcpy(ep->remote_addr, &daddr, 4);
	} else if (family == TL_AF_INET6) {
		BPF_CORE_READ_INTO(&ep->local_addr, sk,
				   __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&ep->remote_addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
}

/* The connection the current process accepted or inherited, if any (see tl_peer_by_tgid). */
static __always_inline void tl_copy_peer(__u32 tgid, struct tl_endpoints *out)
{
	struct tl_endpoints *peer = bpf_map_lookup_elem(&tl_peer_by_tgid, &tgid);

	if (peer)
		__builtin_memcpy(out, peer, sizeof(*out));
}

#endif /* TRIPLINE_BPF_LIB_SOCK_H */
