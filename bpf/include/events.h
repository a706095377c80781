/* SPDX-License-Identifier: Apache-2.0 */
/*
 * events.h: the wire contract between Tripline's BPF programs and the sensor.
 *
 * Plain C, included by the BPF programs (with vmlinux.h providing the __u* types) and by the
 * C++ sensor (with <linux/types.h>). Every record written to a ring buffer starts with a
 * struct tl_header; `size` is the total record size and equals sizeof() of the record struct
 * for `version`. Layouts only grow by adding a new version or a new type: type numbers are
 * never reused. All multi-byte integers are in host byte order unless a field says otherwise.
 * Strings are NUL-terminated within their array unless the record's flags say they were cut.
 */
#ifndef TRIPLINE_BPF_EVENTS_H
#define TRIPLINE_BPF_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#ifdef __cplusplus
#define TL_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define TL_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

/* Current layout version of every record type. */
#define TL_RECORD_VERSION 1

/* Record types. Never reuse a number; retire it instead. */
enum tl_record_type {
	TL_REC_LOGIN = 1,	/* PAM call returned (struct tl_login_record) */
	TL_REC_FILE_OPEN = 2,	/* open of a sensitive path (struct tl_file_open_record) */
	TL_REC_EXEC = 3,	/* execve completed (struct tl_exec_record) */
	TL_REC_NET_CONNECT = 4, /* TCP connect or accept (struct tl_net_record) */
	TL_REC_LOGIN_UTMP = 5,	/* utmp record written to btmp/wtmp (struct tl_utmp_record) */
};
/* One past the largest type number; sizes the per-type drop counters. */
#define TL_REC_TYPE_SLOTS 8

#define TL_COMM_LEN 16
#define TL_PATH_LEN 256	     /* sensitive path buffer; also the path-table key length */
#define TL_FILENAME_LEN 256  /* exec filename */
#define TL_ARGS_LEN 1024     /* exec argument bytes (NUL-separated) */
#define TL_MAX_ARGS_LIMIT 64 /* largest exec_max_args the loader accepts */
#define TL_SERVICE_LEN 64
#define TL_USER_LEN 64
#define TL_RHOST_LEN 256
#define TL_TTY_LEN 32

/* Common header of every record: who did it, when, where. 72 bytes. */
struct tl_header {
	__u16 type;		/* enum tl_record_type */
	__u16 version;		/* TL_RECORD_VERSION */
	__u32 size;		/* total record bytes, header included */
	__u64 ktime_ns;		/* bpf_ktime_get_boot_ns(): CLOCK_BOOTTIME, includes suspend */
	__u32 pid;		/* thread id (kernel pid) */
	__u32 tgid;		/* process id (kernel tgid) */
	__u32 ppid;		/* tgid of real_parent */
	__u32 uid;		/* real uid */
	__u32 gid;		/* real gid */
	__u32 login_uid;	/* audit login uid (task->loginuid), 0xffffffff when unset */
	__u32 session_id;	/* audit session id (task->sessionid), 0xffffffff when unset */
	__u32 uts_inum;		/* inode number of the task's UTS namespace */
	__u64 cgroup_id;	/* cgroup v2 id of the task */
	char comm[TL_COMM_LEN]; /* task comm, NUL-terminated */
};
TL_STATIC_ASSERT(sizeof(struct tl_header) == 72, "tl_header size");

/* Addresses of a TCP connection. 40 bytes. */
struct tl_endpoints {
	__u8 local_addr[16];  /* network byte order; IPv4 uses the first 4 bytes */
	__u8 remote_addr[16]; /* network byte order; IPv4 uses the first 4 bytes */
	__u16 local_port;     /* host byte order */
	__u16 remote_port;    /* host byte order */
	__u16 family;	      /* AF_INET (2), AF_INET6 (10), 0 when unknown */
	__u16 _pad;
};
TL_STATIC_ASSERT(sizeof(struct tl_endpoints) == 40, "tl_endpoints size");

/* PAM stages, in tl_login_record.stage. Values match tripline::LoginStage. */
enum tl_login_stage {
	TL_STAGE_AUTHENTICATE = 1,  /* pam_authenticate returned */
	TL_STAGE_ACCOUNT = 2,	    /* pam_acct_mgmt returned */
	TL_STAGE_SESSION_OPEN = 3,  /* pam_open_session returned */
	TL_STAGE_SESSION_CLOSE = 4, /* pam_close_session returned */
};

/* TL_REC_LOGIN: a PAM call returned. 544 bytes. */
struct tl_login_record {
	struct tl_header hdr;
	struct tl_endpoints peer; /* connection the authenticating process inherited from an
				     accept (sshd), family 0 when none is known */
	__s32 pam_code;		  /* return value; PAM_SUCCESS (0) or a PAM error code */
	__u32 auth_pid;		  /* tgid of the process that called libpam */
	__u8 stage;		  /* enum tl_login_stage */
	__u8 _pad[7];
	char service[TL_SERVICE_LEN]; /* pam_start service name */
	char user[TL_USER_LEN];	      /* PAM_USER (pam_start or pam_set_item) */
	char rhost[TL_RHOST_LEN];     /* PAM_RHOST, "" when never set */
	char tty[TL_TTY_LEN];	      /* PAM_TTY, "" when never set */
};
TL_STATIC_ASSERT(sizeof(struct tl_login_record) == 544, "tl_login_record size");

/* Which sensitive-path rule kind matched, in tl_file_open_record.match. */
enum tl_path_match {
	TL_MATCH_EXACT = 1,
	TL_MATCH_PREFIX = 2,
	TL_MATCH_SUFFIX = 3,
};

/* Where tl_file_open_record.path came from. */
enum tl_path_source {
	TL_PATH_CANONICAL = 1, /* bpf_d_path of the opened file (symlinks and ".." resolved) */
	TL_PATH_ARGUMENT = 2,  /* the path argument as the process passed it */
	/* a relative argument joined to the directory it is relative to (working directory
	 * or dirfd), "." and ".." resolved lexically (symlinks are not) */
	TL_PATH_JOINED = 3,
};

/* TL_REC_FILE_OPEN: open(at)/openat2 of a path in the sensitive table. 352 bytes. */
struct tl_file_open_record {
	struct tl_header hdr;
	__s32 result;	     /* 0 when the open succeeded, else -errno */
	__u32 flags;	     /* open flags (O_ACCMODE, O_CREAT, O_TRUNC, ...) */
	__u32 mode;	     /* create mode argument */
	__u32 rule_id;	     /* id the loader gave the matching rule (1-based) */
	__u8 match;	     /* enum tl_path_match */
	__u8 path_source;    /* enum tl_path_source */
	__u16 path_len;	     /* bytes of path before its NUL */
	__u8 path_truncated; /* 1 when the real path was longer than path[] */
	__u8 _pad[3];
	char path[TL_PATH_LEN];
};
TL_STATIC_ASSERT(sizeof(struct tl_file_open_record) == 352, "tl_file_open_record size");

#define TL_EXEC_FILENAME_TRUNCATED 0x1 /* filename did not fit */
#define TL_EXEC_ARGS_TRUNCATED 0x2     /* the argument block did not fit in args[] */

/* TL_REC_EXEC: a task finished execve. 1384 bytes. */
struct tl_exec_record {
	struct tl_header hdr; /* describes the task after exec */
	__u32 argc;	      /* argument count of the new image (bprm->argc) */
	__u32 args_len;	      /* bytes copied into args[] */
	__u32 args_total;     /* bytes of the whole argument block (arg_end - arg_start) */
	__u16 max_args;	      /* configured cap on arguments to report (exec_max_args) */
	__u8 flags;	      /* TL_EXEC_* */
	__u8 _pad;
	char parent_comm[TL_COMM_LEN];	/* comm of real_parent */
	char filename[TL_FILENAME_LEN]; /* bprm->filename as passed to execve */
	char args[TL_ARGS_LEN];		/* argv strings, each NUL-terminated, back to back */
};
TL_STATIC_ASSERT(sizeof(struct tl_exec_record) == 1384, "tl_exec_record size");

enum tl_net_direction {
	TL_NET_OUTBOUND = 1, /* tcp_connect: this process connected out */
	TL_NET_ACCEPTED = 2, /* inet_csk_accept: this process accepted a connection */
};

/* TL_REC_NET_CONNECT: a TCP connection was started or accepted. 120 bytes. */
struct tl_net_record {
	struct tl_header hdr;
	struct tl_endpoints conn; /* local = this host's end */
	__u8 direction;		  /* enum tl_net_direction */
	__u8 protocol;		  /* IPPROTO_TCP (6) */
	__u8 _pad[6];
};
TL_STATIC_ASSERT(sizeof(struct tl_net_record) == 120, "tl_net_record size");

/*
 * glibc's struct utmp on 64-bit Linux (x86_64, aarch64), as login daemons write it to
 * /var/log/wtmp and /var/log/btmp. 384 bytes. Copied verbatim from the write buffer.
 */
struct tl_utmp {
	__s16 ut_type; /* 7 USER_PROCESS, 8 DEAD_PROCESS, 6 LOGIN_PROCESS, ... */
	__s16 _pad0;
	__s32 ut_pid;	   /* pid of the login process */
	char ut_line[32];  /* tty name ("pts/3", "ssh:notty") */
	char ut_id[4];	   /* terminal suffix or inittab id */
	char ut_user[32];  /* user name, not necessarily NUL-terminated */
	char ut_host[256]; /* remote host name or address, not necessarily NUL-terminated */
	__s16 ut_exit_termination;
	__s16 ut_exit_exit;
	__s32 ut_session; /* session id (getsid) */
	__s32 ut_tv_sec;  /* wall time of the entry */
	__s32 ut_tv_usec;
	__u32 ut_addr_v6[4]; /* remote address, network byte order; IPv4 in [0] */
	__u8 _reserved[20];
};
TL_STATIC_ASSERT(sizeof(struct tl_utmp) == 384, "tl_utmp size");

enum tl_utmp_file {
	TL_UTMP_BTMP = 1, /* /var/log/btmp: failed logins */
	TL_UTMP_WTMP = 2, /* /var/log/wtmp: sessions opened and closed */
};

/* TL_REC_LOGIN_UTMP: a utmp entry written to btmp or wtmp. 504 bytes. */
struct tl_utmp_record {
	struct tl_header hdr;	  /* the writing process */
	struct tl_endpoints peer; /* connection the writer inherited from an accept, if any */
	__u8 file;		  /* enum tl_utmp_file */
	__u8 _pad[3];
	__u32 write_len; /* count passed to write(); the record needs 384 */
	struct tl_utmp ut;
};
TL_STATIC_ASSERT(sizeof(struct tl_utmp_record) == 504, "tl_utmp_record size");

/* ---- maps shared with the loader ---- */

/*
 * Key of the sensitive-path LPM tries. Exact rules are stored with their NUL (so they only
 * match a string that ends there), prefix rules without it; suffix rules live reversed in a
 * second trie that is looked up with the reversed path.
 */
struct tl_path_key {
	__u32 prefixlen; /* bits */
	__u8 data[TL_PATH_LEN];
};

struct tl_path_rule {
	__u32 rule_id; /* reported in tl_file_open_record.rule_id */
	__u32 match;   /* enum tl_path_match */
};

/* Slots of tl_sys_exit_handlers: the family handler the sys_exit dispatcher tail-calls. */
#define TL_SYSX_SLOT_FILE 0 /* open, creat, openat, openat2 */
#define TL_SYSX_SLOT_UTMP 1 /* write, pwrite64 */
#define TL_SYSX_SLOT_NET 2  /* connect, accept, accept4 */
#define TL_SYSX_SLOTS 3

/*
 * Prefilter in front of the path tries, so that opens of files that cannot match any rule
 * cost a few pointer loads and one or two hash lookups instead of rebuilding the path. The
 * loader derives "triggers" from the rules: the name a matching file must have
 * (depth 0: exact rules and suffix rules give the file's own name) or the name of the
 * directory a matching file must lie under, at its depth from the root (prefix rules:
 * "/etc/pam.d/" gives "pam.d" at depth 2). An open whose names hit no trigger cannot match;
 * one that does is matched against the tries as before. Rules that give no trigger (a suffix
 * without '/', a prefix ending inside the first component) switch the prefilter off.
 */
#define TL_NAME_HEAD 16 /* bytes of a name in a trigger key: up to 15 and a NUL */
#define TL_TRIGGER_MAX_DEPTH 31

struct tl_name_key {
	__u32 depth; /* 0: the file's own name; d > 0: the directory d components below "/" */
	__u32 len;   /* the whole name's length */
	char head[TL_NAME_HEAD]; /* its first min(len, 15) bytes, zero-filled */
};

/* The prefilter's settings, at key 0 of tl_path_filter. */
struct tl_path_filter {
	__u32 match_all;  /* 1: every open goes to the tries (some rule gives no trigger) */
	__u32 depth_mask; /* bit d set: some directory trigger has depth d */
	/* Bit min(len, 63) set: some trigger name has that length. A name of another length
	 * is no trigger, which saves reading it: the common case costs one load. */
	__u64 file_len_mask; /* depth 0 */
	__u64 dir_len_mask;  /* depth > 0 */
};
#define TL_LEN_BIT(len) ((len) < 63 ? (len) : 63)

/* Key of the utmp-file table: the file's inode as the kernel names it. */
struct tl_file_id {
	__u64 dev; /* kernel dev_t of the superblock: (major << 20) | minor */
	__u64 ino;
};

/* Per-CPU counters; the loader sums the CPUs. */
struct tl_counters {
	__u64 ringbuf_drops[TL_REC_TYPE_SLOTS]; /* reservation failures, by record type */
	__u64 helper_errors;			/* failed bpf_probe_read*, bpf_d_path, ... */
	__u64 state_errors;			/* per-task/per-call state map full */
};

#endif /* TRIPLINE_BPF_EVENTS_H */
