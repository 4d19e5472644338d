/* SPDX-License-Identifier: MIT */
/*
 * unit_bag.h: the tests the stack and the queue share.  Both are bags of
 * void * values that hand them back one at a time, newest first (stack)
 * or oldest first (queue).  The including file defines, before including:
 *
 *   bag_new, bag_delete, bag_put, bag_take, bag_pool   its calls behind one signature
 *   BAG_LIFO        true for newest first
 *   BAG_PUT_HANDLE  true when a put needs the caller's handle
 *   BAG_NEW_ALLOCS  the allocations its _new makes
 *
 * Both take their nodes from a pool of their own (bag_pool).
 *
 * and lists BAG_TESTS in its main, with tests of its own.
 */
#ifndef QSBR_TEST_UNIT_BAG_H
#define QSBR_TEST_UNIT_BAG_H

#include "unit_common.h"

/* Position i (from 1) of n values 1..n put in order, as the bag hands it back. */
static uintptr_t bag_nth(uintptr_t i, uintptr_t n)
{
	return BAG_LIFO ? n + 1 - i : i;
}

static void test_order(void **state)
{
	struct env *e = *state;
	void *b = bag_new(e->d);
	void *v = val(99);

	assert_non_null(b);
	assert_int_equal(bag_take(b, e->t, &v), ENOENT);
	assert_ptr_equal(v, val(99)); /* untouched on ENOENT */
	/* Rounds that empty it and fill it again (the queue through its dummy). */
	for (int round = 0; round < 3; round++) {
		for (uintptr_t i = 1; i <= 100; i++)
			assert_int_equal(bag_put(b, e->t, val(i)), 0);
		for (uintptr_t i = 1; i <= 100; i++) {
			assert_int_equal(bag_take(b, e->t, &v), 0);
			assert_ptr_equal(v, val(bag_nth(i, 100)));
		}
		assert_int_equal(bag_take(b, e->t, &v), ENOENT);
	}
	/* NULL is a value like any other; a NULL out-pointer drops one. */
	assert_int_equal(bag_put(b, e->t, NULL), 0);
	assert_int_equal(bag_take(b, e->t, &v), 0);
	assert_null(v);
	assert_int_equal(bag_put(b, e->t, val(7)), 0);
	assert_int_equal(bag_take(b, e->t, NULL), 0);
	assert_int_equal(bag_take(b, e->t, &v), ENOENT);
	assert_int_equal(bag_delete(b, NULL, NULL), 0);
}

static void test_einval(void **state)
{
	struct env *e = *state;
	void *b = bag_new(e->d);

	assert_errno(bag_new(NULL), EINVAL);
	assert_int_equal(bag_put(NULL, e->t, val(1)), EINVAL);
	assert_int_equal(bag_put(b, NULL, val(2)), BAG_PUT_HANDLE ? EINVAL : 0);
	assert_int_equal(bag_take(NULL, e->t, NULL), EINVAL);
	assert_int_equal(bag_take(b, NULL, NULL), EINVAL);
	assert_int_equal(bag_delete(NULL, NULL, NULL), EINVAL);
	/* Only a put without a handle where none is needed went in. */
	assert_int_equal(bag_take(b, e->t, NULL), BAG_PUT_HANDLE ? ENOENT : 0);
	assert_int_equal(bag_take(b, e->t, NULL), ENOENT);
	assert_int_equal(bag_delete(b, NULL, NULL), 0);
}

static int bag_put_call(struct env *e, void *arg)
{
	return bag_put(arg, e->t, val(2));
}

static int bag_put_nth(struct env *e, void *arg, uintptr_t i)
{
	return bag_put(arg, e->t, val(i));
}

/* Every allocation of _new fails in turn, each with ENOMEM and nothing
 * changed.  Then puts with every allocation failing: they use the pool's
 * free nodes (a slab holds hundreds) until a put needs a slab and fails
 * with ENOMEM, changing nothing; once allocations work, puts go on, and
 * every value comes back in order. */
static void test_enomem(void **state)
{
	struct env *e = *state;
	void *b = fail_each_new_alloc(e, bag_new, BAG_NEW_ALLOCS);
	uintptr_t n;
	void *v;

	assert_int_equal(bag_put(b, e->t, val(1)), 0);
	assert_int_equal(bag_take(b, e->t, &v), 0);
	n = fill_until_enomem(e, bag_put_nth, b, 64);
	assert_int_equal(pool_stats_of(bag_pool(b)).allocated, n + (BAG_LIFO ? 0 : 1));
	assert_int_equal(fail_each_alloc(e, bag_put_call, b), 1); /* a slab */
	for (uintptr_t i = 1; i <= n + 1; i++) {
		assert_int_equal(bag_take(b, e->t, &v), 0);
		assert_ptr_equal(v, val(BAG_LIFO ? (i == 1 ? 2 : n + 2 - i) : (i <= n ? i : 2)));
	}
	assert_int_equal(bag_take(b, e->t, &v), ENOENT);
	assert_int_equal(bag_delete(b, NULL, NULL), 0);
}

/* A take allocates nothing, and its node goes back to the pool, waiting
 * for a grace period, not to the allocator; after it, the node is free in
 * the pool, and puts reuse it without an allocation. */
static void test_take_retires(void **state)
{
	struct env *e = *state;
	void *b = bag_new(e->d);
	qsbr_pool *p = bag_pool(b);
	qsbr_pool_stats before, after;
	long live;

	for (uintptr_t i = 0; i < 10; i++)
		assert_int_equal(bag_put(b, e->t, val(i)), 0);
	before = pool_stats_of(p);
	live = alloc_live();
	alloc_count_take();
	alloc_fail_all(true);
	for (int i = 0; i < 10; i++)
		assert_int_equal(bag_take(b, e->t, NULL), 0);
	alloc_fail_all(false);
	assert_int_equal(alloc_count_take(), 0);
	after = pool_stats_of(p);
	assert_int_equal(before.allocated - after.allocated, 10);
	assert_int_equal(after.waiting - before.waiting, 10); /* no quiescent state yet */
	qsbr_pool_flush(e->t, p);
	qsbr_barrier(e->t);
	after = pool_stats_of(p);
	assert_int_equal(after.waiting, 0);
	assert_true(after.cached >= before.cached + 10);
	assert_int_equal(alloc_live(), live); /* nothing went back to the allocator */
	alloc_fail_all(true);
	for (uintptr_t i = 0; i < 10; i++)
		assert_int_equal(bag_put(b, e->t, val(i)), 0);
	alloc_fail_all(false);
	assert_int_equal(bag_delete(b, NULL, NULL), 0);
}

struct seen {
	uintptr_t v[16];
	int n;
};

static void record(void *value, void *arg)
{
	struct seen *s = arg;

	s->v[s->n++] = (uintptr_t)value;
}

/* The delete callback sees the values still in, in the order takes would. */
static void test_delete_visits_in_order(void **state)
{
	struct env *e = *state;
	void *b = bag_new(e->d);
	struct seen seen = { { 0 }, 0 };
	void *v;

	for (uintptr_t i = 1; i <= 5; i++)
		assert_int_equal(bag_put(b, e->t, val(i)), 0);
	assert_int_equal(bag_take(b, e->t, &v), 0); /* retired: not visited */
	assert_ptr_equal(v, val(bag_nth(1, 5)));
	assert_int_equal(bag_delete(b, record, &seen), 0);
	assert_int_equal(seen.n, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(seen.v[i], bag_nth((uintptr_t)i + 2, 5));
}

#define BAG_TESTS                                                                      \
	TEST(test_order), TEST(test_einval), TEST(test_enomem), TEST(test_take_retires), \
		TEST(test_delete_visits_in_order)

#endif /* QSBR_TEST_UNIT_BAG_H */
