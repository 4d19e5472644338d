/* SPDX-License-Identifier: MIT */
/*
 * unit_keyed.h: the tests the ordered set and the hash map share.  Both
 * have insert, remove, lookup and delete calls of one form, named after
 * their type: the including file defines KEYED as qsbr_set or
 * qsbr_hashmap, and keyed(insert) is then qsbr_set_insert or
 * qsbr_hashmap_insert.  It also defines KEYED_NEW(d), a new empty one, and
 * KEYED_NEW_ALLOCS, the allocations that makes (and KEYED_INSERT_ALLOCS,
 * an insert's after the first, when not 1), and lists KEYED_TESTS in its
 * main, with tests of its own.
 */
#ifndef QSBR_TEST_UNIT_KEYED_H
#define QSBR_TEST_UNIT_KEYED_H

#include <stdbool.h>

#include "unit_common.h"

#ifndef KEYED_INSERT_ALLOCS
#define KEYED_INSERT_ALLOCS 1 /* an insert's: its entry */
#endif

#define KEYED_CALL2(type, call) type##_##call
#define KEYED_CALL1(type, call) KEYED_CALL2(type, call)
#define keyed(call) KEYED_CALL1(KEYED, call)

/* xorshift64: the tests' reproducible keys. */
static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* The value the tests store with key. */
static void *kval(uint64_t key)
{
	return val(key * 3 + 1);
}

/* Every call with a NULL structure or handle is EINVAL; c is empty. */
static void keyed_einval(struct env *e, KEYED *c)
{
	assert_int_equal(keyed(insert)(NULL, e->t, 1, NULL), EINVAL);
	assert_int_equal(keyed(insert)(c, NULL, 1, NULL), EINVAL);
	assert_int_equal(keyed(remove)(NULL, e->t, 1, NULL), EINVAL);
	assert_int_equal(keyed(remove)(c, NULL, 1, NULL), EINVAL);
	assert_int_equal(keyed(lookup)(NULL, e->t, 1, NULL), EINVAL);
	assert_int_equal(keyed(lookup)(c, NULL, 1, NULL), EINVAL);
	assert_int_equal(keyed(delete)(NULL, NULL, NULL), EINVAL);
	assert_int_equal(keyed(lookup)(c, e->t, 1, NULL), ENOENT); /* nothing inserted */
}

static int keyed_insert_5(struct env *e, void *arg)
{
	return keyed(insert)(arg, e->t, 5, kval(5));
}

static void *keyed_new(qsbr_domain *d)
{
	return KEYED_NEW(d);
}

/* Every allocation of a _new fails in turn, then an insert's, its entry:
 * each gives ENOMEM and changes nothing.  (The hash map's bucket segments
 * do not fail a call; a new map's few buckets need no more.) */
static void test_enomem(void **state)
{
	struct env *e = *state;
	KEYED *c = fail_each_new_alloc(e, keyed_new, KEYED_NEW_ALLOCS);
	void *v;

	assert_int_equal(keyed(insert)(c, e->t, 10, kval(10)), 0);
	assert_int_equal(fail_each_alloc(e, keyed_insert_5, c), KEYED_INSERT_ALLOCS);
	/* 10, and 5 from the insert that succeeded: nothing else. */
	assert_int_equal(keyed(remove)(c, e->t, 10, &v), 0);
	assert_ptr_equal(v, kval(10));
	assert_int_equal(keyed(remove)(c, e->t, 5, &v), 0);
	assert_ptr_equal(v, kval(5));
	for (uint64_t k = 0; k < 16; k++)
		assert_int_equal(keyed(lookup)(c, e->t, k, NULL), ENOENT);
	assert_int_equal(keyed(delete)(c, NULL, NULL), 0);
}

/*
 * ops random inserts, removes and lookups on c of keys below range, each
 * checked against ref (range flags, all false at first), with a quiescent
 * state every 1024 (and then, when size is not NULL, a check of the size).
 * Lookups allocate nothing.  Returns how many keys are present.
 */
static uint64_t keyed_reference(struct env *e, KEYED *c, size_t (*size)(const KEYED *c),
				bool *ref, uint64_t range, int ops, uint64_t seed)
{
	uint64_t x = seed, n = 0;

	for (int i = 0; i < ops; i++) {
		uint64_t key = rnd(&x) % range;
		unsigned op = (unsigned)(rnd(&x) % 3);
		void *v = NULL;
		int rc;

		if (op == 0) {
			rc = keyed(insert)(c, e->t, key, kval(key));
			assert_int_equal(rc, ref[key] ? EEXIST : 0);
			n += !ref[key];
			ref[key] = true;
		} else if (op == 1) {
			rc = keyed(remove)(c, e->t, key, &v);
			assert_int_equal(rc, ref[key] ? 0 : ENOENT);
			n -= ref[key];
			ref[key] = false;
		} else {
			alloc_count_take();
			rc = keyed(lookup)(c, e->t, key, &v);
			assert_int_equal(alloc_count_take(), 0);
			assert_int_equal(rc, ref[key] ? 0 : ENOENT);
		}
		if (rc == 0 && op != 0)
			assert_ptr_equal(v, kval(key));
		if (i % 1024 == 0) {
			qsbr_quiescent(e->t);
			if (size != NULL)
				assert_int_equal(size(c), n);
		}
	}
	return n;
}

#define KEYED_TESTS TEST(test_enomem)

#endif /* QSBR_TEST_UNIT_KEYED_H */
