// SPDX-License-Identifier: GPL-2.0
/* The one definition of every map and read-only global (see lib/maps.h). */
#define TL_DEFINE_MAPS
#include "lib/maps.h"

char LICENSE[] SEC("license") = "GPL";
