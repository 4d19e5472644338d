/* SPDX-License-Identifier: MIT */
/*
 * What the cmocka suites (unit, health, edges) share: objects that record
 * which callback ran, how often and in which order; domains built from a few
 * options; statistics; sleeping.  Callbacks may run on any thread (the helper
 * thread included), so the records are kept with atomic builtins.
 */
#ifndef QSBR_TEST_FIXTURE_H
#define QSBR_TEST_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <qsbr.h>

#define MAX_IDS 100000

struct obj {
	qsbr_node node;
	int id;
};

static int run_order[MAX_IDS];       /* ids in the order their callbacks ran */
static int run_count;                /* callbacks run */
static unsigned char run_times[MAX_IDS]; /* how often each id's callback ran */

static inline void reset_runs(void)
{
	__atomic_store_n(&run_count, 0, __ATOMIC_RELAXED);
	for (int i = 0; i < MAX_IDS; i++)
		__atomic_store_n(&run_times[i], 0, __ATOMIC_RELAXED);
}

static inline int runs(void)
{
	return __atomic_load_n(&run_count, __ATOMIC_ACQUIRE);
}

static inline int times_run(int id)
{
	return __atomic_load_n(&run_times[id], __ATOMIC_ACQUIRE);
}

static void obj_free(qsbr_node *n)
{
	struct obj *o = (struct obj *)((char *)n - offsetof(struct obj, node));
	int k = __atomic_fetch_add(&run_count, 1, __ATOMIC_RELEASE);

	__atomic_fetch_add(&run_times[o->id], 1, __ATOMIC_RELEASE);
	if (k < MAX_IDS)
		run_order[k] = o->id;
	free(o);
}

static inline struct obj *obj_new(int id)
{
	struct obj *o = calloc(1, sizeof(*o));

	assert_non_null(o);
	o->id = id;
	return o;
}

static inline void retire_ids(qsbr_thread *t, int from, int to)
{
	for (int i = from; i < to; i++)
		qsbr_retire_node(t, &obj_new(i)->node, obj_free);
}

static inline void retire_id(qsbr_thread *t, int id)
{
	retire_ids(t, id, id + 1);
}

static inline void assert_each_ran_once(int from, int to)
{
	for (int i = from; i < to; i++)
		assert_int_equal(times_run(i), 1);
}

static inline qsbr_stats stats_of(qsbr_domain *d)
{
	qsbr_stats s;

	assert_int_equal(qsbr_stats_get(d, &s), 0);
	return s;
}

static inline void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* A domain with these options changed from the defaults (start 0: the
 * build's first sequence). */
static inline qsbr_domain *domain_make(uint32_t batch, uint32_t deferred, uint32_t background,
				       qsbr_seq start)
{
	qsbr_options o;
	qsbr_domain *d;

	assert_int_equal(qsbr_options_init(&o), 0);
	o.batch_size = batch;
	o.deferred_count = deferred;
	o.background = background;
	o.initial_seq = start;
	d = qsbr_domain_new(&o);
	assert_non_null(d);
	return d;
}

static inline qsbr_domain *domain_with_opts(uint32_t batch, uint32_t deferred, uint32_t background)
{
	return domain_make(batch, deferred, background, 0);
}

#endif /* QSBR_TEST_FIXTURE_H */
