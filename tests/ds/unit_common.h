/* SPDX-License-Identifier: MIT */
/*
 * unit_common.h: what the data-structure unit tests share: a domain and the
 * main thread's handle per test, retire accounting through qsbr_stats, and
 * the allocation failures of alloc_fail.h, through the domain's allocator.
 */
#ifndef QSBR_TEST_UNIT_COMMON_H
#define QSBR_TEST_UNIT_COMMON_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <qsbr.h>
#include <qsbr/pool.h>

#include "alloc_fail.h"

struct env {
	qsbr_domain *d;
	qsbr_thread *t;
};

static int env_setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	qsbr_options o;

	if (e == NULL || qsbr_options_init(&o) != 0)
		return -1;
	alloc_fail_options(&o);
	e->d = qsbr_domain_new(&o);
	e->t = e->d != NULL ? qsbr_register(e->d) : NULL;
	if (e->t == NULL)
		return -1;
	*state = e;
	return 0;
}

/* Unregisters and deletes the domain: every node a test retired is freed
 * here at the latest, so ASan reports one that is freed twice, and the hook
 * one that is never freed or freed around it. */
static int env_teardown(void **state)
{
	struct env *e = *state;

	alloc_fail_nth(0);
	alloc_fail_all(false);
	qsbr_unregister(e->t);
	if (qsbr_domain_delete(e->d) != 0)
		return -1;
	free(e);
	if (alloc_live() != 0) {
		print_error("%ld blocks from the domain's allocator not given back\n", alloc_live());
		return -1;
	}
	return 0;
}

static inline qsbr_stats stats_of(qsbr_domain *d)
{
	qsbr_stats s;

	assert_int_equal(qsbr_stats_get(d, &s), 0);
	return s;
}

static void *val(uintptr_t v)
{
	return (void *)v;
}

/*
 * Fails each allocation call(e, arg) makes, in turn: runs it with the n-th
 * allocation of this thread failing, for n = 1, 2, ... until a run in which
 * none fails.  Each failed run must return ENOMEM and leave as many blocks
 * allocated as before (it kept none, freed none of what was there); the
 * last run must return 0.  Returns how many allocations the last run made.
 */
static unsigned long fail_each_alloc(struct env *e, int (*call)(struct env *e, void *arg), void *arg)
{
	for (unsigned n = 1;; n++) {
		long live = alloc_live();
		int rc;

		alloc_count_take();
		alloc_fail_nth(n);
		rc = call(e, arg);
		if (!alloc_failed()) {
			alloc_fail_nth(0);
			assert_int_equal(rc, 0);
			return alloc_count_take();
		}
		assert_int_equal(rc, ENOMEM);
		assert_int_equal(alloc_live(), live);
	}
}

/*
 * For the structures on a pool: with every allocation failing, calls
 * put(e, arg, i) for i = 1, 2, ... until one fails.  The first ones take
 * the pool's free nodes; then put must fail with ENOMEM, holding no more
 * blocks than before.  Returns how many succeeded (at least min).
 */
static inline uintptr_t fill_until_enomem(struct env *e, int (*put)(struct env *e, void *arg, uintptr_t i),
					  void *arg, uintptr_t min)
{
	long live = alloc_live();
	uintptr_t n = 0;
	int rc;

	alloc_fail_all(true);
	while ((rc = put(e, arg, n + 1)) == 0 && n < 1000000)
		n++;
	alloc_fail_all(false);
	assert_int_equal(rc, ENOMEM);
	assert_int_equal(alloc_live(), live);
	assert_true(n >= min);
	return n;
}

/* The nodes of a structure's pool: in use, cached, waiting. */
static inline qsbr_pool_stats pool_stats_of(qsbr_pool *p)
{
	qsbr_pool_stats s;

	assert_non_null(p);
	assert_int_equal(qsbr_pool_stats_get(p, &s), 0);
	return s;
}

struct new_call {
	void *(*make)(qsbr_domain *d);
	void *made;
};

static int new_call(struct env *e, void *arg)
{
	struct new_call *c = arg;

	c->made = c->make(e->d);
	return c->made != NULL ? 0 : errno;
}

/* fail_each_alloc for a _new call, make(d), that must make allocs
 * allocations; returns what it made. */
static void *fail_each_new_alloc(struct env *e, void *(*make)(qsbr_domain *d), unsigned long allocs)
{
	struct new_call c = { make, NULL };

	assert_int_equal(fail_each_alloc(e, new_call, &c), allocs);
	return c.made;
}

/* expr, a call that fails by returning NULL or 0, fails with errno err. */
#define assert_errno(expr, err)              \
	do {                                 \
		errno = 0;                   \
		assert_true(!(expr));        \
		assert_int_equal(errno, err); \
	} while (0)

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, env_setup, env_teardown)

#endif /* QSBR_TEST_UNIT_COMMON_H */
