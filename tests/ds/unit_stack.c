/* SPDX-License-Identifier: MIT */
/* Sequential semantics of qsbr/stack.h: order, errors, memory. */
#include <pthread.h>

#include <qsbr/stack.h>

#include "unit_common.h"

static void test_lifo(void **state)
{
	struct env *e = *state;
	qsbr_stack *s = qsbr_stack_new(e->d);
	void *v = val(99);

	assert_non_null(s);
	assert_int_equal(qsbr_stack_pop(s, e->t, &v), ENOENT);
	assert_ptr_equal(v, val(99)); /* untouched on ENOENT */
	for (uintptr_t i = 1; i <= 100; i++)
		assert_int_equal(qsbr_stack_push(s, val(i)), 0);
	for (uintptr_t i = 100; i >= 1; i--) {
		assert_int_equal(qsbr_stack_pop(s, e->t, &v), 0);
		assert_ptr_equal(v, val(i));
	}
	assert_int_equal(qsbr_stack_pop(s, e->t, &v), ENOENT);
	/* NULL is a value like any other; a NULL out-pointer drops it. */
	assert_int_equal(qsbr_stack_push(s, NULL), 0);
	assert_int_equal(qsbr_stack_push(s, val(7)), 0);
	assert_int_equal(qsbr_stack_pop(s, e->t, NULL), 0);
	assert_int_equal(qsbr_stack_pop(s, e->t, &v), 0);
	assert_null(v);
	assert_int_equal(qsbr_stack_delete(s, NULL, NULL), 0);
}

static void test_einval(void **state)
{
	struct env *e = *state;
	qsbr_stack *s = qsbr_stack_new(e->d);

	errno = 0;
	assert_null(qsbr_stack_new(NULL));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(qsbr_stack_push(NULL, val(1)), EINVAL);
	assert_int_equal(qsbr_stack_pop(NULL, e->t, NULL), EINVAL);
	assert_int_equal(qsbr_stack_push(s, val(1)), 0);
	assert_int_equal(qsbr_stack_pop(s, NULL, NULL), EINVAL);
	assert_int_equal(qsbr_stack_delete(NULL, NULL, NULL), EINVAL);
	assert_int_equal(qsbr_stack_pop(s, e->t, NULL), 0); /* still there */
	assert_int_equal(qsbr_stack_delete(s, NULL, NULL), 0);
}

static void test_enomem(void **state)
{
	struct env *e = *state;
	qsbr_stack *s;
	void *v;

	alloc_fail_nth(1);
	errno = 0;
	assert_null(qsbr_stack_new(e->d));
	assert_int_equal(errno, ENOMEM);
	s = qsbr_stack_new(e->d);
	assert_non_null(s);
	assert_int_equal(qsbr_stack_push(s, val(1)), 0);
	alloc_fail_nth(1);
	assert_int_equal(qsbr_stack_push(s, val(2)), ENOMEM);
	assert_true(alloc_failed());
	/* Unchanged: only the first value is there. */
	assert_int_equal(qsbr_stack_pop(s, e->t, &v), 0);
	assert_ptr_equal(v, val(1));
	assert_int_equal(qsbr_stack_pop(s, e->t, &v), ENOENT);
	assert_int_equal(qsbr_stack_delete(s, NULL, NULL), 0);
}

static void test_pop_allocates_nothing(void **state)
{
	struct env *e = *state;
	qsbr_stack *s = qsbr_stack_new(e->d);

	for (uintptr_t i = 0; i < 1000; i++)
		assert_int_equal(qsbr_stack_push(s, val(i)), 0);
	alloc_fail_all(true);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(qsbr_stack_pop(s, e->t, NULL), 0);
	alloc_fail_all(false);
	assert_int_equal(qsbr_stack_delete(s, NULL, NULL), 0);
}

/* Popped nodes go to the domain (retired with their size), not to free(). */
static void test_pop_retires(void **state)
{
	struct env *e = *state;
	qsbr_stack *s = qsbr_stack_new(e->d);
	qsbr_stats before, after;

	for (uintptr_t i = 0; i < 10; i++)
		assert_int_equal(qsbr_stack_push(s, val(i)), 0);
	before = stats_of(e->d);
	for (int i = 0; i < 10; i++)
		assert_int_equal(qsbr_stack_pop(s, e->t, NULL), 0);
	after = stats_of(e->d);
	assert_int_equal(after.retired - before.retired, 10);
	assert_true(after.pending_bytes >= before.pending_bytes + 10 * 32);
	qsbr_barrier(e->t);
	after = stats_of(e->d);
	assert_int_equal(after.pending, 0);
	assert_int_equal(qsbr_stack_delete(s, NULL, NULL), 0);
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

static void test_delete_visits_top_first(void **state)
{
	struct env *e = *state;
	qsbr_stack *s = qsbr_stack_new(e->d);
	struct seen seen = { { 0 }, 0 };

	for (uintptr_t i = 1; i <= 5; i++)
		assert_int_equal(qsbr_stack_push(s, val(i)), 0);
	assert_int_equal(qsbr_stack_pop(s, e->t, NULL), 0); /* 5, retired: not visited */
	assert_int_equal(qsbr_stack_delete(s, record, &seen), 0);
	assert_int_equal(seen.n, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(seen.v[i], 4 - i);
}

/* A push needs no handle: a thread that never registered pushes. */
static void *unregistered_pusher(void *arg)
{
	for (uintptr_t i = 1; i <= 100; i++)
		if (qsbr_stack_push(arg, val(i)) != 0)
			return arg;
	return NULL;
}

static void test_push_unregistered(void **state)
{
	struct env *e = *state;
	qsbr_stack *s = qsbr_stack_new(e->d);
	pthread_t th;
	void *res = s;
	void *v;

	assert_int_equal(pthread_create(&th, NULL, unregistered_pusher, s), 0);
	assert_int_equal(pthread_join(th, &res), 0);
	assert_null(res);
	for (uintptr_t i = 100; i >= 1; i--) {
		assert_int_equal(qsbr_stack_pop(s, e->t, &v), 0);
		assert_ptr_equal(v, val(i));
	}
	assert_int_equal(qsbr_stack_delete(s, NULL, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_lifo),
		TEST(test_einval),
		TEST(test_enomem),
		TEST(test_pop_allocates_nothing),
		TEST(test_pop_retires),
		TEST(test_delete_visits_top_first),
		TEST(test_push_unregistered),
	};

	return cmocka_run_group_tests_name("ds-stack", tests, NULL, NULL);
}
