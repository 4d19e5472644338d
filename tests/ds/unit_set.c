/* SPDX-License-Identifier: MIT */
/* Sequential semantics of qsbr/set.h: against a reference, order, errors. */
#include <qsbr/set.h>

#define KEYED qsbr_set
#define KEYED_NEW(d) qsbr_set_new(d)
#define KEYED_NEW_ALLOCS 2 /* the header, the pool */
#define KEYED_INSERT_ALLOCS 0 /* after the first: the entry from the pool */
#include "unit_keyed.h"

static void test_basic(void **state)
{
	struct env *e = *state;
	qsbr_set *s = qsbr_set_new(e->d);
	void *v = val(99);
	uint64_t k = 7;

	assert_non_null(s);
	assert_int_equal(qsbr_set_lookup(s, e->t, 1, &v), ENOENT);
	assert_int_equal(qsbr_set_remove(s, e->t, 1, &v), ENOENT);
	assert_int_equal(qsbr_set_seek(s, e->t, 0, &k, &v), ENOENT);
	assert_ptr_equal(v, val(99));
	assert_int_equal(k, 7);
	assert_int_equal(qsbr_set_insert(s, e->t, 5, val(50)), 0);
	assert_int_equal(qsbr_set_insert(s, e->t, 5, val(51)), EEXIST);
	assert_int_equal(qsbr_set_lookup(s, e->t, 5, &v), 0);
	assert_ptr_equal(v, val(50)); /* EEXIST left the first value */
	assert_int_equal(qsbr_set_lookup(s, e->t, 5, NULL), 0);
	assert_int_equal(qsbr_set_lookup(s, e->t, 4, NULL), ENOENT);
	assert_int_equal(qsbr_set_lookup(s, e->t, 6, NULL), ENOENT);
	assert_int_equal(qsbr_set_remove(s, e->t, 5, &v), 0);
	assert_ptr_equal(v, val(50));
	assert_int_equal(qsbr_set_remove(s, e->t, 5, &v), ENOENT);
	assert_int_equal(qsbr_set_lookup(s, e->t, 5, NULL), ENOENT);
	/* The extreme keys, and NULL values. */
	assert_int_equal(qsbr_set_insert(s, e->t, 0, NULL), 0);
	assert_int_equal(qsbr_set_insert(s, e->t, UINT64_MAX, val(1)), 0);
	assert_int_equal(qsbr_set_lookup(s, e->t, 0, &v), 0);
	assert_null(v);
	assert_int_equal(qsbr_set_seek(s, e->t, 1, &k, &v), 0);
	assert_int_equal(k, UINT64_MAX);
	assert_ptr_equal(v, val(1));
	assert_int_equal(qsbr_set_seek(s, e->t, 0, &k, NULL), 0);
	assert_int_equal(k, 0);
	assert_int_equal(qsbr_set_remove(s, e->t, UINT64_MAX, NULL), 0);
	assert_int_equal(qsbr_set_seek(s, e->t, 1, &k, NULL), ENOENT);
	assert_int_equal(qsbr_set_delete(s, NULL, NULL), 0);
}

static void test_einval(void **state)
{
	struct env *e = *state;
	qsbr_set *s = qsbr_set_new(e->d);

	assert_errno(qsbr_set_new(NULL), EINVAL);
	keyed_einval(e, s);
	assert_int_equal(qsbr_set_seek(NULL, e->t, 1, NULL, NULL), EINVAL);
	assert_int_equal(qsbr_set_seek(s, NULL, 1, NULL, NULL), EINVAL);
	assert_int_equal(qsbr_set_delete(s, NULL, NULL), 0);
}

/* Random operations on keys 0..RANGE-1 against a reference; then a walk by
 * seek sees exactly the keys present, in order, allocating nothing. */
#define RANGE 512

static void test_reference(void **state)
{
	struct env *e = *state;
	qsbr_set *s = qsbr_set_new(e->d);
	static bool ref[RANGE];
	uint64_t k, next, n;
	void *v;

	memset(ref, 0, sizeof(ref));
	n = keyed_reference(e, s, NULL, ref, RANGE, 20000, 88172645463325252u);
	alloc_count_take();
	for (next = 0; qsbr_set_seek(s, e->t, next, &k, &v) == 0; next = k + 1) {
		for (uint64_t j = next; j < k; j++)
			assert_false(ref[j]);
		assert_true(ref[k]);
		assert_ptr_equal(v, kval(k));
		n--;
	}
	assert_int_equal(alloc_count_take(), 0);
	for (uint64_t j = next; j < RANGE; j++)
		assert_false(ref[j]);
	assert_int_equal(n, 0);
	assert_int_equal(qsbr_set_delete(s, NULL, NULL), 0);
}

struct seen {
	uint64_t keys[64];
	int n;
};

static void record(uint64_t key, void *value, void *arg)
{
	struct seen *s = arg;

	assert_ptr_equal(value, val(key + 1));
	s->keys[s->n++] = key;
}

static int insert_nth(struct env *e, void *arg, uintptr_t i)
{
	return qsbr_set_insert(arg, e->t, i, val(i + 1));
}

/* Inserts with every allocation failing take the pool's free entries
 * until one needs a slab: ENOMEM, the set unchanged; every key is there. */
static void test_enomem_pool(void **state)
{
	struct env *e = *state;
	qsbr_set *s = qsbr_set_new(e->d);
	uintptr_t n;
	void *v;

	assert_int_equal(qsbr_set_insert(s, e->t, 0, val(1)), 0);
	n = fill_until_enomem(e, insert_nth, s, 64);
	assert_int_equal(pool_stats_of(qsbr_set_pool(s)).allocated, n + 1);
	assert_int_equal(qsbr_set_lookup(s, e->t, n + 1, NULL), ENOENT);
	for (uintptr_t k = 0; k <= n; k++) {
		assert_int_equal(qsbr_set_remove(s, e->t, k, &v), 0);
		assert_ptr_equal(v, val(k + 1));
	}
	assert_int_equal(qsbr_set_seek(s, e->t, 0, NULL, NULL), ENOENT);
	assert_int_equal(qsbr_set_delete(s, NULL, NULL), 0);
}

static void test_delete_visits_in_order(void **state)
{
	struct env *e = *state;
	qsbr_set *s = qsbr_set_new(e->d);
	struct seen seen = { { 0 }, 0 };
	qsbr_pool_stats before;

	for (uint64_t k = 40; k > 0; k -= 2)
		assert_int_equal(qsbr_set_insert(s, e->t, k, val(k + 1)), 0);
	before = pool_stats_of(qsbr_set_pool(s));
	for (uint64_t k = 4; k <= 40; k += 4)
		assert_int_equal(qsbr_set_remove(s, e->t, k, NULL), 0);
	assert_int_equal(pool_stats_of(qsbr_set_pool(s)).waiting - before.waiting, 10);
	assert_int_equal(qsbr_set_delete(s, record, &seen), 0);
	assert_int_equal(seen.n, 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(seen.keys[i], 2 + 4 * (uint64_t)i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_basic),
		TEST(test_einval),
		KEYED_TESTS,
		TEST(test_reference),
		TEST(test_delete_visits_in_order),
		TEST(test_enomem_pool),
	};

	return cmocka_run_group_tests_name("ds-set", tests, NULL, NULL);
}
