/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kernel-private state kept between hooks. Not part of the wire contract: user space never
 * reads these structs (events.h holds everything it does read).
 */
#ifndef TRIPLINE_BPF_LIB_STATE_H
#define TRIPLINE_BPF_LIB_STATE_H

#include "common.h"

/*
 * One open in flight on a task, from do_sys_openat2 entry to exit. Lives in task storage, so
 * the hot path costs no hash-map insert and the state dies with the task.
 */
struct tl_open_state {
	__u64 flags;	      /* open_how.flags */
	__u32 mode;	      /* open_how.mode */
	__u8 active;	      /* between entry and exit of do_sys_openat2, in scope */
	__u8 canon_hit;	      /* security_file_open matched the canonical path */
	__u8 canon_truncated; /* d_path did not fit TL_PATH_LEN: match the argument */
	__u8 _pad;
	__u32 rule_id;	 /* rule that matched the canonical path */
	__u32 match;	 /* its enum tl_path_match */
	__u32 canon_len; /* bytes of canon.data before the NUL */
	__u32 _pad2;
	struct tl_path_key canon;      /* canonical path; its header doubles as the LPM key */
	struct tl_path_key raw;	       /* path argument as passed */
	struct tl_path_key rev;	       /* scratch: reversed path for the suffix trie */
	char scratch[2 * TL_PATH_LEN]; /* syscall fallback: path built from dentries */
};

/*
 * io_uring opens on kernels without task storage and bpf_loop (file_legacy.bpf.c). From
 * io_openat2 to do_filp_open, keyed by the request's struct filename * (the one argument
 * both see): the open's arguments and the request's identity.
 */
struct tl_iou_open {
	__u64 flags;	 /* open_how.flags */
	__u64 ctx;	 /* struct io_ring_ctx * */
	__u64 user_data; /* the request's */
	__u32 mode;	 /* open_how.mode */
	__u32 tgid;	 /* the submitting process (io-wq workers are its threads) */
};

/* From do_filp_open to the request's completion: (ring, user_data) of the request. */
struct tl_iou_key {
	__u64 ctx;
	__u64 user_data;
};

/* An io_uring open whose canonical path matched a rule, waiting for its completion. */
struct tl_iou_match {
	__u64 flags;
	__u32 mode;
	__u32 rule_id;
	__u32 match;
	__u32 len;
	struct tl_path_key path;
};

#define TL_JOIN_MAX_DEPTH 32 /* components kept while normalizing a joined path */

/*
 * Per-CPU scratch of file_legacy.bpf.c, for the duration of one program run (trampoline
 * programs run with migration disabled). Loop state lives here, in map memory, and not in
 * registers: the verifier then sees every value as unknown, and the paths through one step
 * of a bounded loop meet again at the loop's head with equal states.
 */
struct tl_legacy_scratch {
	struct tl_path_key canon;  /* the opened file's path, or the joined argument */
	struct tl_path_key raw;	   /* the path argument as passed */
	struct tl_path_key rev;	   /* reversed path for the suffix trie */
	char buf[2 * TL_PATH_LEN]; /* path built right to left, then directory "/" argument */
	/* dentry walk; volatile: every access a load or store, never a value in a register */
	volatile __u64 d; /* the component to prepend next (struct dentry *) */
	volatile __u64 m; /* the mount d is in (struct mount *) */
	volatile __u32 pos;
	volatile int result; /* 0: walking, 1: the root was reached, -1: too long or unreadable */
	/* lexical normalization */
	volatile __u32 in_len;
	volatile __u32 o;	 /* bytes written to canon.data */
	volatile __u32 depth;	 /* components kept */
	volatile __u32 comp_len; /* bytes of the component being copied */
	volatile __u32 dots;	 /* the component so far is all '.' */
	volatile __u32 failed;
	volatile __u16 starts[TL_JOIN_MAX_DEPTH]; /* canon offset of each kept component's '/' */
	struct tl_iou_match iou;		  /* an io_uring match, to insert from */
};

/* pam_start arguments, from entry to return, per thread. */
struct tl_pam_start_args {
	__u64 service;	/* const char * */
	__u64 user;	/* const char * */
	__u64 pamh_out; /* pam_handle_t ** */
};

/* A PAM call in flight (pam_authenticate, ...), per thread. */
struct tl_pam_call {
	__u64 pamh;
	__u8 stage; /* enum tl_login_stage */
	__u8 _pad[7];
};

/* What a PAM transaction told us so far, per (process, handle). */
struct tl_pam_key {
	__u32 tgid;
	__u32 _pad;
	__u64 pamh;
};

struct tl_pam_state {
	char service[TL_SERVICE_LEN];
	char user[TL_USER_LEN];
	char rhost[TL_RHOST_LEN];
	char tty[TL_TTY_LEN];
};

#endif /* TRIPLINE_BPF_LIB_STATE_H */
