/* SPDX-License-Identifier: MIT */
/*
 * workloads.h: the registration function of every workload, once per
 * backend (each workload source is compiled once per backend; rc.h).
 */
#ifndef BENCH_WORKLOADS_H
#define BENCH_WORKLOADS_H

#include <stdint.h>

#define BENCH_DECLARE(sfx)                                   \
	void wl_quiescent_register##sfx(void);               \
	void wl_retire_register##sfx(void);                  \
	void wl_stack_register##sfx(void);                   \
	void wl_hashset_register##sfx(int64_t keys);         \
	void wl_detect_register##sfx(void);                  \
	void wl_stall_register##sfx(void);

BENCH_DECLARE(_qsbr)
BENCH_DECLARE(_qsbr_cap)
BENCH_DECLARE(_urcu)
BENCH_DECLARE(_urcu_defer)
BENCH_DECLARE(_ck)
BENCH_DECLARE(_ck_batch)
BENCH_DECLARE(_leak)
BENCH_DECLARE(_freenow)

#endif /* BENCH_WORKLOADS_H */
