/* SPDX-License-Identifier: MIT */
/* Sequential semantics of qsbr/queue.h: order, errors, memory (the tests of
 * unit_bag.h). */
#include <qsbr/queue.h>

#include "unit_common.h"

/* Its calls for unit_bag.h. */
static void *bag_new(qsbr_domain *d)
{
	return qsbr_queue_new(d);
}

static int bag_delete(void *q, void (*fn)(void *, void *), void *arg)
{
	return qsbr_queue_delete(q, fn, arg);
}

static int bag_put(void *q, qsbr_thread *t, void *value)
{
	return qsbr_queue_enqueue(q, t, value);
}

static int bag_take(void *q, qsbr_thread *t, void **value)
{
	return qsbr_queue_dequeue(q, t, value);
}

static qsbr_pool *bag_pool(void *q)
{
	return qsbr_queue_pool(q);
}

/* The tests of unit_bag.h. */
#define BAG_LIFO false
#define BAG_PUT_HANDLE true
#define BAG_NEW_ALLOCS 3 /* the header, the pool, a slab for the first dummy */
#include "unit_bag.h"

int main(void)
{
	const struct CMUnitTest tests[] = { BAG_TESTS };

	return cmocka_run_group_tests_name("ds-queue", tests, NULL, NULL);
}
