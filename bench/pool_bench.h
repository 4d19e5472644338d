/* SPDX-License-Identifier: MIT */
/*
 * pool_bench.h: what pool-stack and pool-hashset share.  Each compares
 * variants of one workload, the first of them freeing at once (unsafe with
 * a second thread).
 */
#ifndef BENCH_POOL_BENCH_H
#define BENCH_POOL_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <qsbr.h>

#include "gbench.h"

/* gb_keep_running_batch, offline: at a run's end a thread that is done
 * waits there for the others, and an online thread that waits holds
 * every grace period back (the others' retires would pile up until they
 * finish too).  The reclaim suite's harness does the same (rc.h). */
static inline bool pool_keep_running(gb_state *st, qsbr_thread *t, int64_t n)
{
	bool more;

	qsbr_detach(t);
	more = gb_keep_running_batch(st, n);
	qsbr_attach(t);
	return more;
}

/* Registers variant i of names[0..n-1] with (void *)i as the argument of
 * body, setup and teardown: variant 0 with 1 thread, the others with 1, 2
 * and 4; rates per wall-clock second, all threads together; one run each
 * (for medians, repeat the program, interleaved with the others). */
static inline void pool_bench_register(const char *const *names, size_t n, gb_fn *body,
				       gb_fn *setup, gb_fn *teardown)
{
	for (size_t i = 0; i < n; i++) {
		gb_bench *b = gb_register(names[i], body, (void *)(intptr_t)i);

		gb_setup(b, setup);
		gb_teardown(b, teardown);
		gb_threads(b, 1);
		if (i != 0) {
			gb_threads(b, 2);
			gb_threads(b, 4);
		}
		gb_real_time(b);
		gb_min_time(b, 0.5);
	}
}

#endif /* BENCH_POOL_BENCH_H */
