/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Matching a path against the sensitive-path table in the kernel, so that opens of other
 * files never reach the ring buffer.
 *
 * Two LPM tries keyed by path bytes: one holds exact rules (with their NUL, so they only
 * match a path that ends there) and prefix rules; the other holds suffix rules reversed and
 * is looked up with the reversed path. A lookup costs two trie walks and one bounded copy,
 * independent of the number of rules.
 */
#ifndef TRIPLINE_BPF_LIB_PATH_MATCH_H
#define TRIPLINE_BPF_LIB_PATH_MATCH_H

#include "maps.h"

/* Reverses len bytes of `in` into `out`, one bpf_loop step per byte. */
struct tl_reverse {
	const __u8 *in;
	__u8 *out;
	__u32 len;
};

static long tl_reverse_step(__u32 i, void *ctx)
{
	struct tl_reverse *r = ctx;

	if (i >= r->len)
		return 1;
	r->out[i & (TL_PATH_LEN - 1)] = r->in[(r->len - 1 - i) & (TL_PATH_LEN - 1)];
	return 0;
}

/*
 * `path->data` holds `len` bytes then a NUL (len < TL_PATH_LEN). `rev` is scratch space.
 * Returns the matching rule or NULL. Bytes after the NUL do not matter: no rule has a NUL
 * before its end, so a rule longer than the path fails on the path's NUL.
 */
static __always_inline struct tl_path_rule *tl_match_path(struct tl_path_key *path,
							  struct tl_path_key *rev, __u32 len)
{
	struct tl_reverse r = {.in = path->data, .out = rev->data, .len = len};
	struct tl_path_rule *rule;

	if (len == 0 || len >= TL_PATH_LEN)
		return NULL;
	path->prefixlen = TL_PATH_LEN * 8;
	rule = bpf_map_lookup_elem(&tl_path_prefix, path);
	if (rule)
		return rule;

	bpf_loop(TL_PATH_LEN - 1, tl_reverse_step, &r, 0);
	/* Older verifiers (6.1) forget len's bound across the call, and clang drops the mask it
	 * knows to be redundant: make it keep it. */
	TL_BARRIER_VAR(len);
	rev->data[len & (TL_PATH_LEN - 1)] = 0;
	rev->prefixlen = TL_PATH_LEN * 8;
	return bpf_map_lookup_elem(&tl_path_suffix, rev);
}

#endif /* TRIPLINE_BPF_LIB_PATH_MATCH_H */
