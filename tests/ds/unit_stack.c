/* SPDX-License-Identifier: MIT */
/* Sequential semantics of qsbr/stack.h: order, errors, memory (the tests of
 * unit_bag.h), and pushes from a thread that never registered. */
#include <pthread.h>

#include <qsbr/stack.h>

#include "unit_common.h"

/* Its calls for unit_bag.h. */
static void *bag_new(qsbr_domain *d)
{
	return qsbr_stack_new(d);
}

static int bag_delete(void *s, void (*fn)(void *, void *), void *arg)
{
	return qsbr_stack_delete(s, fn, arg);
}

static int bag_put(void *s, qsbr_thread *t, void *value)
{
	(void)t;
	return qsbr_stack_push(s, value);
}

static int bag_take(void *s, qsbr_thread *t, void **value)
{
	return qsbr_stack_pop(s, t, value);
}

static qsbr_pool *bag_pool(void *s)
{
	return qsbr_stack_pool(s);
}

/* The tests of unit_bag.h. */
#define BAG_LIFO true
#define BAG_PUT_HANDLE false
#define BAG_NEW_ALLOCS 2 /* the header, the pool */
#include "unit_bag.h"

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

/* A delete from a retire callback, while popped nodes wait, would wait on
 * that callback: EDEADLK, and the stack is still whole. */
static qsbr_stack *in_callback_stack;
static int in_callback_err;

static void delete_from_callback(qsbr_node *n)
{
	(void)n;
	in_callback_err = qsbr_stack_delete(in_callback_stack, NULL, NULL);
}

static void test_delete_in_callback(void **state)
{
	struct env *e = *state;
	qsbr_node node;
	void *v;

	in_callback_stack = qsbr_stack_new(e->d);
	in_callback_err = -1;
	assert_int_equal(qsbr_stack_push(in_callback_stack, val(1)), 0);
	assert_int_equal(qsbr_stack_push(in_callback_stack, val(2)), 0);
	assert_int_equal(qsbr_stack_pop(in_callback_stack, e->t, NULL), 0); /* waits */
	qsbr_retire_node(e->t, &node, delete_from_callback);
	qsbr_barrier(e->t);
	assert_int_equal(in_callback_err, EDEADLK);
	assert_int_equal(qsbr_stack_pop(in_callback_stack, e->t, &v), 0);
	assert_ptr_equal(v, val(1));
	assert_int_equal(qsbr_stack_delete(in_callback_stack, NULL, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = { BAG_TESTS, TEST(test_push_unregistered),
					    TEST(test_delete_in_callback) };

	return cmocka_run_group_tests_name("ds-stack", tests, NULL, NULL);
}
