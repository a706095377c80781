/* SPDX-License-Identifier: Apache-2.0 */
/* utmp writes (btmp/wtmp): the record, and the handler of the tp_btf/sys_exit fallback. */
#ifndef TRIPLINE_BPF_LIB_UTMP_H
#define TRIPLINE_BPF_LIB_UTMP_H

#include "fd.h"
#include "maps.h"
#include "record.h"
#include "sock.h"
#include "syscalls.h"

static __always_inline void tl_utmp_write_common(struct file *file, const char *buf, __u64 count)
{
	struct tl_file_id id = {};
	struct tl_utmp_record *rec;
	__u32 *kind;
	__u32 tgid;

	if (!file)
		return;
	id.ino = BPF_CORE_READ(file, f_inode, i_ino);
	id.dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
	kind = bpf_map_lookup_elem(&tl_utmp_files, &id);
	if (!kind)
		return;
	if (count < sizeof(struct tl_utmp))
		return; /* not a whole utmp entry */
	tgid = bpf_get_current_pid_tgid() >> 32;
	if (!tl_current_in_scope())
		return;
	rec = tl_reserve(&tl_priority, sizeof(*rec), TL_REC_LOGIN_UTMP);
	if (!rec)
		return;
	tl_fill_header(&rec->hdr, TL_REC_LOGIN_UTMP, sizeof(*rec));
	tl_copy_peer(tgid, &rec->peer);
	rec->file = *kind;
	rec->write_len = count > 0xffffffffULL ? 0xffffffffU : (__u32)count;
	if (bpf_probe_read_user(&rec->ut, sizeof(rec->ut), buf) != 0)
		tl_count_helper_error();
	bpf_ringbuf_submit(rec, 0);
}

/* tp_btf/sys_exit of write(fd, buf, count) and pwrite64(fd, buf, count, off). */
static __always_inline void tl_utmp_sys_exit(struct pt_regs *regs, long ret)
{
	__u64 count = TL_SYSCALL_ARG3(regs);

	if (ret <= 0 || count == 0 || count % sizeof(struct tl_utmp) != 0)
		return;
	tl_utmp_write_common(tl_fd_file(bpf_get_current_task_btf(), TL_SYSCALL_ARG1(regs)),
			     (const char *)TL_SYSCALL_ARG2(regs), count);
}

#endif /* TRIPLINE_BPF_LIB_UTMP_H */
