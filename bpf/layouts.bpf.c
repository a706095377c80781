// SPDX-License-Identifier: GPL-2.0
/*
 * Not a program and never loaded. Compiled by the same rule and with the same includes as
 * the programs, it puts every struct of include/events.h into its BTF as the BPF compiler
 * lays it out (clang emits BTF only for types that globals, maps or functions use, and the
 * programs use most records as locals only). tests/bpf/record_layout_test compares that
 * BTF, member by member, with the layouts the sensor's decoder is compiled with.
 */
#include "lib/common.h"

struct tl_layouts {
	struct tl_header header;
	struct tl_endpoints endpoints;
	struct tl_login_record login;
	struct tl_file_open_record file_open;
	struct tl_exec_record exec;
	struct tl_net_record net;
	struct tl_utmp utmp;
	struct tl_utmp_record utmp_record;
	struct tl_path_key path_key;
	struct tl_path_rule path_rule;
	struct tl_name_key name_key;
	struct tl_path_filter path_filter;
	struct tl_file_id file_id;
	struct tl_counters counters;
};

struct tl_layouts *tl_layouts __attribute__((used));
