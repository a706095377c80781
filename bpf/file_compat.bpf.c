// SPDX-License-Identifier: GPL-2.0
/*
 * The file family again, for kernels without the bpf_rdonly_cast kfunc (before 6.2):
 * file.bpf.c with every kernel object read through bpf_probe_read_kernel, and every program
 * and global function named with the suffix "_compat" (lib/kptr.h).
 */
#define TL_COMPAT 1
#include "file.bpf.c"
