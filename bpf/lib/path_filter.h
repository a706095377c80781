/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The prefilter in front of the sensitive-path tries (struct tl_name_key in events.h).
 *
 * An open of a file that no rule can match should cost as little as possible: it is the
 * common case by far. Rebuilding the path (one or two helper calls per component), reversing
 * it and walking two tries costs about a microsecond; the prefilter instead
 *  1. looks the file's own name up in tl_name_triggers (exact and suffix rules), and
 *  2. when some prefix rule exists, walks up to the root with plain loads to learn the
 *     file's depth, then looks up only the names of the ancestors at the depths prefix rules
 *     name (usually one: "/etc/pam.d/" is depth 2).
 * A name whose length no trigger has is not even read (tl_path_filter's length masks), and
 * the second walk only runs when an ancestor at a trigger depth has a trigger's length.
 * Both are necessary conditions of a match, so a miss is exact; a hit is confirmed by the
 * tries. The walk follows tl_file_path: across mount points, up to the root of the mount
 * namespace, not stopping at a chroot.
 */
#ifndef TRIPLINE_BPF_LIB_PATH_FILTER_H
#define TRIPLINE_BPF_LIB_PATH_FILTER_H

#include "kptr.h"
#include "maps.h"

/* Components plus mount crossings walked before giving up (and matching the slow way). */
#define TL_WALK_STEPS 40

/* The struct mount that embeds `vfsmnt`, as a read-only BTF pointer. */
static __always_inline struct mount *tl_real_mount(struct vfsmount *vfsmnt)
{
	return TL_KPTR(mount, (void *)vfsmnt - bpf_core_field_offset(struct mount, mnt));
}

/*
 * Whether name `d` at `depth` (0: the file itself) is a trigger; `len_mask` holds the
 * lengths trigger names have at such depths. Unreadable names are triggers.
 */
static __always_inline bool tl_name_hits(struct dentry *d, __u32 depth, __u64 len_mask)
{
	struct tl_name_key key = {};

	key.len = TL_KLOAD(d, d_name.len);
	if (!((len_mask >> TL_LEN_BIT(key.len)) & 1))
		return false;
	key.depth = depth;
	if (bpf_probe_read_kernel_str(key.head, sizeof(key.head), TL_KLOAD(d, d_name.name)) < 0)
		return true;
	return bpf_map_lookup_elem(&tl_name_triggers, &key) != NULL;
}

/*
 * A walk from a file towards the root, one bpf_loop step at a time. bpf_loop (inlined by the
 * verifier) keeps verification linear: an open-coded loop of this shape is verified once per
 * iteration and path, which exceeds the verifier's budget well before 40 steps.
 */
struct tl_walk {
	struct dentry *d; /* current component */
	struct mount *m;  /* the mount d is in */
	int level;	  /* depth of d (second pass) or components seen (first pass) */
	__u32 depth_mask; /* second pass: depths to check */
	__u64 len_mask;	  /* lengths of directory trigger names */
	__u64 cand;	  /* first pass: ancestors of such a length, bit i: i components up */
	int result;	  /* 1: finished (root reached), 2: trigger hit */
};

/*
 * Moves w->d, w->m one step towards the root. Returns 1 after moving to the parent component,
 * 0 after crossing from a mount's root to its mount point (no component), -1 at the root.
 */
static __always_inline int tl_walk_up(struct tl_walk *w)
{
	struct dentry *d = TL_KPTR(dentry, w->d);
	struct mount *m = TL_KPTR(mount, w->m);
	struct dentry *parent = TL_KLOAD(d, d_parent);
	struct dentry *mnt_root = TL_KLOAD(m, mnt.mnt_root);
	struct mount *up;

	if (d != mnt_root && d != parent) {
		w->d = parent;
		return 1;
	}
	if (d != mnt_root)
		return -1; /* the root of a tree that is not mounted (pipes, sockets, ...) */
	up = TL_KLOAD(m, mnt_parent);
	if (!up || up == m)
		return -1; /* the root of the namespace */
	w->d = TL_KLOAD(m, mnt_mountpoint);
	w->m = up;
	return 0;
}

/*
 * First pass: counts components (as tl_file_path does) in w->level, and marks in w->cand the
 * ancestors whose name length some directory trigger has (bit i: i components up).
 */
static long tl_count_step(__u32 i, void *ctx)
{
	struct tl_walk *w = ctx;
	int step = tl_walk_up(w);
	struct dentry *d;

	if (step < 0) {
		w->result = 1;
		return 1;
	}
	if (step == 0)
		return 0;
	w->level++;
	d = TL_KPTR(dentry, w->d);
	/* level < TL_WALK_STEPS < 64. No test of it against a constant here: the verifier
	 * would then track its exact value and check this step once per value. */
	if ((w->len_mask >> TL_LEN_BIT(TL_KLOAD(d, d_name.len))) & 1)
		w->cand |= 1ULL << (w->level & 63);
	return 0;
}

/* Second pass: w->level starts at the file's depth; checks ancestors at depth_mask depths. */
static long tl_trigger_step(__u32 i, void *ctx)
{
	struct tl_walk *w = ctx;
	int step = tl_walk_up(w);
	int level;

	if (step < 0) {
		w->result = 1;
		return 1;
	}
	if (step == 0)
		return 0;
	level = --w->level;
	if (level <= 0) {
		w->result = 1;
		return 1;
	}
	if (level <= TL_TRIGGER_MAX_DEPTH && ((w->depth_mask >> level) & 1) &&
	    tl_name_hits(TL_KPTR(dentry, w->d), level, w->len_mask)) {
		w->result = 2;
		return 1;
	}
	return 0;
}

/* `v` with its 64 bits in reverse order. */
static __always_inline __u64 tl_bit_reverse(__u64 v)
{
	v = ((v >> 1) & 0x5555555555555555ULL) | ((v & 0x5555555555555555ULL) << 1);
	v = ((v >> 2) & 0x3333333333333333ULL) | ((v & 0x3333333333333333ULL) << 2);
	v = ((v >> 4) & 0x0f0f0f0f0f0f0f0fULL) | ((v & 0x0f0f0f0f0f0f0f0fULL) << 4);
	v = ((v >> 8) & 0x00ff00ff00ff00ffULL) | ((v & 0x00ff00ff00ff00ffULL) << 8);
	v = ((v >> 16) & 0x0000ffff0000ffffULL) | ((v & 0x0000ffff0000ffffULL) << 16);
	return (v >> 32) | (v << 32);
}

/*
 * Whether an ancestor marked in `cand` (bit i: i components up, 1 <= i <= depth) of a path
 * of `depth` components is at a depth from the root (depth - i, at least 1) that
 * `depth_mask` names. Bit arithmetic, no branch on `depth`: a branch the verifier can decide
 * makes it track `depth` exactly, and with it the walk that counted it, step by step.
 */
static __always_inline bool tl_candidate_at_depth(__u64 cand, int depth, __u32 depth_mask)
{
	__u64 from_root = tl_bit_reverse(cand) >> ((63 - depth) & 63);

	return (from_root & depth_mask & ~1ULL) != 0;
}

/* Starts a walk at the file itself. */
static __always_inline void tl_walk_start(struct tl_walk *w, struct file *file)
{
	w->d = TL_KLOAD(file, f_path.dentry);
	w->m = tl_real_mount(TL_KLOAD(file, f_path.mnt));
	w->level = 0;
	w->result = 0;
	w->cand = 0;
}

/*
 * 1 when a sensitive-path rule may match the path of the struct file at `file_addr`, 0 when
 * none can. A global function: the verifier checks it once, not once per caller state (the
 * two walks would otherwise multiply with the states of the path rebuild that follows).
 */
__noinline int TL_FN(tl_open_maybe_sensitive)(__u64 file_addr)
{
	struct file *file = TL_KPTR(file, file_addr);
	struct tl_path_filter *pf;
	struct tl_walk w = {};
	__u32 zero = 0, unknown_zero;
	int depth;

	if (!file)
		return 0;
	pf = bpf_map_lookup_elem(&tl_path_filter, &zero);
	if (!pf || pf->match_all)
		return 1;
	if (tl_name_hits(TL_KLOAD(file, f_path.dentry), 0, pf->file_len_mask))
		return 1;
	if (!pf->depth_mask)
		return 0;
	/* Its depth first; a path too deep to walk is left to the full match. The counters
	 * start from a zero the verifier cannot see as one, a fresh load of match_all (0 here),
	 * so that they look unknown as TL_OPAQUE makes them, without its helper call on the
	 * path every open takes. The dentry and mount are pointers, not constants. */
	tl_walk_start(&w, file);
	unknown_zero = *(volatile __u32 *)&pf->match_all;
	w.level = unknown_zero;
	w.result = unknown_zero;
	w.cand = unknown_zero;
	w.len_mask = pf->dir_len_mask;
	bpf_loop(TL_WALK_STEPS, tl_count_step, &w, 0);
	if (w.result != 1)
		return 1;
	depth = w.level;
	if (!tl_candidate_at_depth(w.cand, depth, pf->depth_mask))
		return 0;
	/* Then the names of the ancestors at the depths some prefix rule names. */
	tl_walk_start(&w, file);
	w.level = depth;
	w.depth_mask = pf->depth_mask;
	TL_OPAQUE(w);
	bpf_loop(TL_WALK_STEPS, tl_trigger_step, &w, 0);
	return w.result == 1 ? 0 : 1;
}

#endif /* TRIPLINE_BPF_LIB_PATH_FILTER_H */
