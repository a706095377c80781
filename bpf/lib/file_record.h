/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The file-open record, shared by every flavour of the file family (lib/file_open.h,
 * file_legacy.bpf.c): the same layout and meaning whichever hooks produced it.
 */
#ifndef TRIPLINE_BPF_LIB_FILE_RECORD_H
#define TRIPLINE_BPF_LIB_FILE_RECORD_H

#include "record.h"
#include "syscalls.h"

static __always_inline void tl_emit_file_open(__u64 flags, __u32 mode, long ret,
					      struct tl_path_key *path, __u32 len, __u32 rule_id,
					      __u32 match, __u8 source, __u8 truncated)
{
	struct tl_file_open_record *rec;

	rec = tl_reserve(&tl_events, sizeof(*rec), TL_REC_FILE_OPEN);
	if (!rec)
		return;
	tl_fill_header(&rec->hdr, TL_REC_FILE_OPEN, sizeof(*rec));
	rec->result = ret < 0 ? (__s32)ret : 0;
	rec->flags = (__u32)flags;
	rec->mode = mode;
	rec->rule_id = rule_id;
	rec->match = match;
	rec->path_source = source;
	rec->path_len = len;
	rec->path_truncated = truncated;
	__builtin_memcpy(rec->path, path->data, TL_PATH_LEN);
	rec->path[TL_PATH_LEN - 1] = 0;
	bpf_ringbuf_submit(rec, 0);
}

/* A refused attempt worth reporting: the caller was not allowed to open the file. */
static __always_inline bool tl_open_denied(long ret)
{
	return ret == -TL_EACCES || ret == -TL_EPERM;
}

#endif /* TRIPLINE_BPF_LIB_FILE_RECORD_H */
