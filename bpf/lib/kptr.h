/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading kernel objects reached through a plain address: the struct file behind a
 * descriptor, a dentry's parent, the mount a path is on.
 *
 * Linux 6.2 and later have the bpf_rdonly_cast kfunc, which turns an address into a
 * read-only BTF pointer whose fields are plain loads: the path prefilter walks a dozen of
 * them on every open, and a helper call per field would cost several times the whole walk.
 * Older kernels (Debian 12's 6.1) lack it, and the kernel refuses every program that calls
 * a kfunc it does not have. So the programs that need it are compiled twice from the same
 * source: as written (this header with TL_COMPAT unset), and again with TL_COMPAT defined,
 * where every field is read with bpf_probe_read_kernel and every program and global function
 * carries the suffix "_compat". The extern is __weak so that an object holding both loads on
 * any kernel; the loader loads the first flavour only where the kernel's BTF has the kfunc.
 *
 * TL_KPTR(type, addr): `struct type *` for an address.
 * TL_KLOAD(ptr, field): one field (or a dotted path inside one struct) of such a pointer.
 * TL_FN(name): the name of a program or global function in this flavour.
 * TL_PROG(name, args...): BPF_PROG for a TL_FN name (BPF_PROG pastes its name unexpanded).
 */
#ifndef TRIPLINE_BPF_LIB_KPTR_H
#define TRIPLINE_BPF_LIB_KPTR_H

#include "common.h"

#ifdef TL_COMPAT
#define TL_KPTR(type, addr) ((struct type *)(unsigned long)(addr))
#define TL_KLOAD(ptr, field) BPF_CORE_READ(ptr, field)
#define TL_FN(name) name##_compat
#else
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;
#define TL_KPTR(type, addr)                                                                        \
	((struct type *)bpf_rdonly_cast((void *)(unsigned long)(addr),                             \
					bpf_core_type_id_kernel(struct type)))
#define TL_KLOAD(ptr, field) ((ptr)->field)
#define TL_FN(name) name
#endif

#define TL_PROG(name, args...) BPF_PROG(name, ##args)

#endif /* TRIPLINE_BPF_LIB_KPTR_H */
