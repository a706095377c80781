// SPDX-License-Identifier: GPL-2.0
/*
 * exec: every completed execve.
 *
 * tp_btf/sched_process_exec fires once the new image is installed and before it runs: the
 * credentials, comm and mm (with the argument block at arg_start..arg_end) are those of the
 * new program, and the tracepoint is a stable ABI, unlike the exec internals.
 */
#include "lib/maps.h"
#include "lib/record.h"

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sched_process_exec")
int BPF_PROG(tl_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct tl_exec_record *rec;
	unsigned long arg_start, arg_end;
	__u64 total, len;
	long n;

	if (!tl_in_scope(p, BPF_CORE_READ(p, tgid)))
		return 0;
	/* filename is written whole by the string read (zeroed on failure) and only args_len
	 * bytes of args are read by the decoder: zero the fixed fields only. */
	rec = tl_reserve_part(&tl_events, sizeof(*rec),
			      __builtin_offsetof(struct tl_exec_record, filename), TL_REC_EXEC);
	if (!rec)
		return 0;
	tl_fill_header(&rec->hdr, TL_REC_EXEC, sizeof(*rec));
	rec->argc = BPF_CORE_READ(bprm, argc);
	rec->max_args = tl_exec_max_args;
	BPF_CORE_READ_STR_INTO(&rec->parent_comm, p, real_parent, comm);

	n = bpf_probe_read_kernel_str(rec->filename, sizeof(rec->filename),
				      BPF_CORE_READ(bprm, filename));
	if (n < 0)
		tl_count_helper_error();
	else if (n == sizeof(rec->filename))
		rec->flags |= TL_EXEC_FILENAME_TRUNCATED;

	/* One bounded copy of the argument block; the decoder splits it at the NULs. */
	arg_start = BPF_CORE_READ(p, mm, arg_start);
	arg_end = BPF_CORE_READ(p, mm, arg_end);
	total = arg_end > arg_start ? arg_end - arg_start : 0;
	len = total;
	if (len > TL_ARGS_LEN) {
		len = TL_ARGS_LEN;
		rec->flags |= TL_EXEC_ARGS_TRUNCATED;
	}
	TL_BARRIER_VAR(len);
	if (len > TL_ARGS_LEN)
		len = TL_ARGS_LEN;
	rec->args_total = total > 0xffffffffULL ? 0xffffffffU : (__u32)total;
	if (len > 0) {
		if (bpf_probe_read_user(rec->args, len, (const void *)arg_start) == 0) {
			rec->args_len = len;
		} else {
			tl_count_helper_error();
			rec->flags |= TL_EXEC_ARGS_TRUNCATED;
		}
	}
	bpf_ringbuf_submit(rec, 0);
	return 0;
}
