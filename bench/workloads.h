/* SPDX-License-Identifier: MIT */
/*
 * workloads.h: the registration function of every workload, once per
 * backend (each workload source is compiled once per backend; rc.h), for
 * reclaim (main.c) and waits (waits.c).
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

/* waits: blocking grace-period waits (wl_waits.c), libqsbr and liburcu. */
struct waits_case {
	const char *name; /* in tables: "1 caller, 2 readers" */
	const char *slug; /* in benchmark names: "1caller_2readers" */
	int callers;      /* registered threads waiting in a loop */
	int readers;      /* registered threads reporting quiescent states */
	int busy;         /* unregistered threads burning CPU */
};

void wl_waits_register_qsbr(const struct waits_case *c);
void wl_waits_register_urcu(const struct waits_case *c);

/* Each run's result, handed back to waits.c: the waits returned per
 * second, all callers together. */
void waits_record(const struct waits_case *c, const char *backend, const char *call,
		  double waits_per_s);

#endif /* BENCH_WORKLOADS_H */
