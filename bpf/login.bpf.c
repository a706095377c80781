// SPDX-License-Identifier: GPL-2.0
/*
 * login: PAM transactions and the utmp records login daemons write.
 *
 * PAM (uprobes on libpam, attached by the loader to the library it found): pam_start gives
 * service and user, pam_set_item updates PAM_USER / PAM_TTY / PAM_RHOST, and the returns of
 * pam_authenticate, pam_acct_mgmt, pam_open_session and pam_close_session give one record
 * each with the PAM return code. State is kept per (tgid, pam handle) from pam_start to
 * pam_end. PAM uprobes are fragile (a statically linked or relocated libpam, a daemon that
 * does not use PAM), hence the second, PAM-independent signal:
 *
 * utmp (fentry/vfs_write): sshd, login and friends append a struct utmp to /var/log/btmp on
 * a failed login and to /var/log/wtmp when a session opens or closes. The loader puts those
 * files' inodes in tl_utmp_files; a write to one of them is copied out whole. The filter is
 * one hash lookup per write(2) on the host. Where fentry is refused the loader uses
 * tl_sys_exit_utmp, tail-called by the tp_btf/sys_exit dispatcher (sys_exit.bpf.c) for
 * write/pwrite64 instead: the buffer is still there at exit, the file is found through the
 * fd, and only writes of whole utmp records (a multiple of 384 bytes, as every utmp writer
 * makes) pay for that lookup.
 */
#include "lib/maps.h"
#include "lib/record.h"
#include "lib/sock.h"
#include "lib/utmp.h"

char LICENSE[] SEC("license") = "GPL";

#define TL_PAM_USER 2
#define TL_PAM_TTY 3
#define TL_PAM_RHOST 4

static __always_inline struct tl_pam_state *tl_pam_state_get(struct tl_pam_key *key, bool create)
{
	struct tl_pam_state *st = bpf_map_lookup_elem(&tl_pam_states, key);
	__u32 zero = 0;

	if (st || !create)
		return st;
	st = bpf_map_lookup_elem(&tl_pam_zero, &zero);
	if (!st)
		return NULL;
	if (bpf_map_update_elem(&tl_pam_states, key, st, BPF_NOEXIST) != 0 &&
	    !bpf_map_lookup_elem(&tl_pam_states, key)) {
		tl_count_state_error();
		return NULL;
	}
	return bpf_map_lookup_elem(&tl_pam_states, key);
}

static __always_inline int tl_pam_start_enter(const char *service, const char *user, void *pamh_out)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct tl_pam_start_args args = {
	    .service = (__u64)service,
	    .user = (__u64)user,
	    .pamh_out = (__u64)pamh_out,
	};

	if (!tl_current_in_scope())
		return 0;
	if (bpf_map_update_elem(&tl_pam_starts, &pid_tgid, &args, BPF_ANY) != 0)
		tl_count_state_error();
	return 0;
}

/* int pam_start(const char *service, const char *user, const struct pam_conv *, pam_handle_t **) */
SEC("uprobe")
int BPF_KPROBE(tl_pam_start, const char *service, const char *user, const void *conv,
	       void *pamh_out)
{
	return tl_pam_start_enter(service, user, pamh_out);
}

/* int pam_start_confdir(service, user, conv, const char *confdir, pam_handle_t **) */
SEC("uprobe")
int BPF_KPROBE(tl_pam_start_confdir, const char *service, const char *user, const void *conv,
	       const char *confdir, void *pamh_out)
{
	return tl_pam_start_enter(service, user, pamh_out);
}

/* Return of pam_start and pam_start_confdir: the handle now exists. */
SEC("uretprobe")
int BPF_KRETPROBE(tl_pam_start_ret, int rc)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct tl_pam_start_args *args;
	struct tl_pam_state *st;
	struct tl_pam_key key = {.tgid = pid_tgid >> 32};
	__u64 service, user, pamh_out;

	args = bpf_map_lookup_elem(&tl_pam_starts, &pid_tgid);
	if (!args)
		return 0;
	service = args->service;
	user = args->user;
	pamh_out = args->pamh_out;
	bpf_map_delete_elem(&tl_pam_starts, &pid_tgid);
	if (rc != 0 || !pamh_out)
		return 0;
	if (bpf_probe_read_user(&key.pamh, sizeof(key.pamh), (void *)pamh_out) != 0) {
		tl_count_helper_error();
		return 0;
	}
	/* A handle address can be reused after pam_end: start from a clean slate. */
	bpf_map_delete_elem(&tl_pam_states, &key);
	st = tl_pam_state_get(&key, true);
	if (!st)
		return 0;
	if (service)
		bpf_probe_read_user_str(st->service, sizeof(st->service), (void *)service);
	if (user)
		bpf_probe_read_user_str(st->user, sizeof(st->user), (void *)user);
	return 0;
}

/* int pam_set_item(pam_handle_t *, int item_type, const void *item) */
SEC("uprobe")
int BPF_KPROBE(tl_pam_set_item, void *pamh, int item_type, const char *item)
{
	struct tl_pam_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .pamh = (__u64)pamh};
	struct tl_pam_state *st;

	if (item_type != TL_PAM_USER && item_type != TL_PAM_TTY && item_type != TL_PAM_RHOST)
		return 0;
	if (!tl_current_in_scope())
		return 0;
	/* Create when missing: the transaction may have started before the sensor. */
	st = tl_pam_state_get(&key, true);
	if (!st)
		return 0;
	if (item_type == TL_PAM_USER) {
		st->user[0] = 0;
		if (item)
			bpf_probe_read_user_str(st->user, sizeof(st->user), item);
	} else if (item_type == TL_PAM_TTY) {
		st->tty[0] = 0;
		if (item)
			bpf_probe_read_user_str(st->tty, sizeof(st->tty), item);
	} else {
		st->rhost[0] = 0;
		if (item)
			bpf_probe_read_user_str(st->rhost, sizeof(st->rhost), item);
	}
	return 0;
}

static __always_inline int tl_pam_call_enter(void *pamh, __u8 stage)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct tl_pam_call call = {.pamh = (__u64)pamh, .stage = stage};

	if (!tl_current_in_scope())
		return 0;
	if (bpf_map_update_elem(&tl_pam_calls, &pid_tgid, &call, BPF_ANY) != 0)
		tl_count_state_error();
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(tl_pam_authenticate, void *pamh)
{
	return tl_pam_call_enter(pamh, TL_STAGE_AUTHENTICATE);
}

SEC("uprobe")
int BPF_KPROBE(tl_pam_acct_mgmt, void *pamh)
{
	return tl_pam_call_enter(pamh, TL_STAGE_ACCOUNT);
}

SEC("uprobe")
int BPF_KPROBE(tl_pam_open_session, void *pamh)
{
	return tl_pam_call_enter(pamh, TL_STAGE_SESSION_OPEN);
}

SEC("uprobe")
int BPF_KPROBE(tl_pam_close_session, void *pamh)
{
	return tl_pam_call_enter(pamh, TL_STAGE_SESSION_CLOSE);
}

/* Return of any of the four calls above: one login record with the PAM code. */
SEC("uretprobe")
int BPF_KRETPROBE(tl_pam_call_ret, int rc)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct tl_pam_key key = {.tgid = pid_tgid >> 32};
	struct tl_login_record *rec;
	struct tl_pam_state *st;
	struct tl_pam_call *call;
	__u8 stage;

	call = bpf_map_lookup_elem(&tl_pam_calls, &pid_tgid);
	if (!call)
		return 0;
	key.pamh = call->pamh;
	stage = call->stage;
	bpf_map_delete_elem(&tl_pam_calls, &pid_tgid);

	rec = tl_reserve(&tl_priority, sizeof(*rec), TL_REC_LOGIN);
	if (!rec)
		return 0;
	tl_fill_header(&rec->hdr, TL_REC_LOGIN, sizeof(*rec));
	tl_copy_peer(key.tgid, &rec->peer);
	rec->pam_code = rc;
	rec->auth_pid = key.tgid;
	rec->stage = stage;
	st = bpf_map_lookup_elem(&tl_pam_states, &key);
	if (st) {
		__builtin_memcpy(rec->service, st->service, sizeof(rec->service));
		__builtin_memcpy(rec->user, st->user, sizeof(rec->user));
		__builtin_memcpy(rec->rhost, st->rhost, sizeof(rec->rhost));
		__builtin_memcpy(rec->tty, st->tty, sizeof(rec->tty));
	}
	bpf_ringbuf_submit(rec, 0);
	return 0;
}

/* int pam_end(pam_handle_t *, int): the transaction is over. */
SEC("uprobe")
int BPF_KPROBE(tl_pam_end, void *pamh)
{
	struct tl_pam_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .pamh = (__u64)pamh};

	bpf_map_delete_elem(&tl_pam_states, &key);
	return 0;
}

/* ssize_t vfs_write(struct file *, const char __user *, size_t, loff_t *) */
SEC("fentry/vfs_write")
int BPF_PROG(tl_utmp_write, struct file *file, const char *buf, size_t count, loff_t *pos)
{
	tl_utmp_write_common(file, buf, count);
	return 0;
}

/* The fallback: tail-called by tl_sys_exit for write and pwrite64. */
SEC("tp_btf/sys_exit")
int BPF_PROG(tl_sys_exit_utmp, struct pt_regs *regs, long ret)
{
	tl_utmp_sys_exit(regs, ret);
	return 0;
}
