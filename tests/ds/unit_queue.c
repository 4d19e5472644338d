/* SPDX-License-Identifier: MIT */
/* Sequential semantics of qsbr/queue.h: order, errors, memory. */
#include <qsbr/queue.h>

#include "unit_common.h"

static void test_fifo(void **state)
{
	struct env *e = *state;
	qsbr_queue *q = qsbr_queue_new(e->d);
	void *v = val(99);

	assert_non_null(q);
	assert_int_equal(qsbr_queue_dequeue(q, e->t, &v), ENOENT);
	assert_ptr_equal(v, val(99));
	/* Interleaved, so the queue empties and refills through its dummy. */
	for (int round = 0; round < 3; round++) {
		for (uintptr_t i = 1; i <= 100; i++)
			assert_int_equal(qsbr_queue_enqueue(q, e->t, val(i)), 0);
		for (uintptr_t i = 1; i <= 100; i++) {
			assert_int_equal(qsbr_queue_dequeue(q, e->t, &v), 0);
			assert_ptr_equal(v, val(i));
		}
		assert_int_equal(qsbr_queue_dequeue(q, e->t, &v), ENOENT);
	}
	assert_int_equal(qsbr_queue_enqueue(q, e->t, NULL), 0);
	assert_int_equal(qsbr_queue_enqueue(q, e->t, val(5)), 0);
	v = val(1);
	assert_int_equal(qsbr_queue_dequeue(q, e->t, &v), 0);
	assert_null(v);
	assert_int_equal(qsbr_queue_dequeue(q, e->t, NULL), 0);
	assert_int_equal(qsbr_queue_dequeue(q, e->t, NULL), ENOENT);
	assert_int_equal(qsbr_queue_delete(q, NULL, NULL), 0);
}

static void test_einval(void **state)
{
	struct env *e = *state;
	qsbr_queue *q = qsbr_queue_new(e->d);

	errno = 0;
	assert_null(qsbr_queue_new(NULL));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(qsbr_queue_enqueue(NULL, e->t, NULL), EINVAL);
	assert_int_equal(qsbr_queue_enqueue(q, NULL, NULL), EINVAL);
	assert_int_equal(qsbr_queue_dequeue(NULL, e->t, NULL), EINVAL);
	assert_int_equal(qsbr_queue_dequeue(q, NULL, NULL), EINVAL);
	assert_int_equal(qsbr_queue_delete(NULL, NULL, NULL), EINVAL);
	assert_int_equal(qsbr_queue_dequeue(q, e->t, NULL), ENOENT);
	assert_int_equal(qsbr_queue_delete(q, NULL, NULL), 0);
}

static void test_enomem(void **state)
{
	struct env *e = *state;
	qsbr_queue *q;
	void *v;

	/* The header, then the first dummy. */
	for (unsigned n = 1; n <= 2; n++) {
		alloc_fail_nth(n);
		errno = 0;
		assert_null(qsbr_queue_new(e->d));
		assert_int_equal(errno, ENOMEM);
	}
	alloc_fail_nth(0);
	q = qsbr_queue_new(e->d);
	assert_non_null(q);
	assert_int_equal(qsbr_queue_enqueue(q, e->t, val(1)), 0);
	alloc_fail_nth(1);
	assert_int_equal(qsbr_queue_enqueue(q, e->t, val(2)), ENOMEM);
	assert_true(alloc_failed());
	assert_int_equal(qsbr_queue_enqueue(q, e->t, val(3)), 0);
	assert_int_equal(qsbr_queue_dequeue(q, e->t, &v), 0);
	assert_ptr_equal(v, val(1));
	assert_int_equal(qsbr_queue_dequeue(q, e->t, &v), 0);
	assert_ptr_equal(v, val(3));
	assert_int_equal(qsbr_queue_dequeue(q, e->t, &v), ENOENT);
	assert_int_equal(qsbr_queue_delete(q, NULL, NULL), 0);
}

static void test_dequeue_allocates_nothing_and_retires(void **state)
{
	struct env *e = *state;
	qsbr_queue *q = qsbr_queue_new(e->d);
	qsbr_stats before, after;

	for (uintptr_t i = 0; i < 10; i++)
		assert_int_equal(qsbr_queue_enqueue(q, e->t, val(i)), 0);
	before = stats_of(e->d);
	alloc_fail_all(true);
	for (int i = 0; i < 10; i++)
		assert_int_equal(qsbr_queue_dequeue(q, e->t, NULL), 0);
	alloc_fail_all(false);
	after = stats_of(e->d);
	/* One node retired per dequeue: the old dummy. */
	assert_int_equal(after.retired - before.retired, 10);
	qsbr_barrier(e->t);
	assert_int_equal(stats_of(e->d).pending, 0);
	assert_int_equal(qsbr_queue_delete(q, NULL, NULL), 0);
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

static void test_delete_visits_oldest_first(void **state)
{
	struct env *e = *state;
	qsbr_queue *q = qsbr_queue_new(e->d);
	struct seen seen = { { 0 }, 0 };

	for (uintptr_t i = 1; i <= 5; i++)
		assert_int_equal(qsbr_queue_enqueue(q, e->t, val(i)), 0);
	assert_int_equal(qsbr_queue_dequeue(q, e->t, NULL), 0); /* 1: not visited */
	assert_int_equal(qsbr_queue_delete(q, record, &seen), 0);
	assert_int_equal(seen.n, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(seen.v[i], i + 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_fifo),
		TEST(test_einval),
		TEST(test_enomem),
		TEST(test_dequeue_allocates_nothing_and_retires),
		TEST(test_delete_visits_oldest_first),
	};

	return cmocka_run_group_tests_name("ds-queue", tests, NULL, NULL);
}
