/* SPDX-License-Identifier: MIT */
/* Sequential semantics of qsbr/hashmap.h: against a reference, growth, key
 * functions, collisions, errors and allocation failures. */
#include <stdio.h>

#include <qsbr/hashmap.h>

#define KEYED qsbr_hashmap
#define KEYED_NEW(d) qsbr_hashmap_new(d, 0, NULL, NULL, NULL)
#define KEYED_NEW_ALLOCS 3 /* the header, the first bucket segment, the pool */
#define KEYED_INSERT_ALLOCS 0 /* the node from the thread's cache of the pool */
#include "unit_keyed.h"

static bool int_equal(uint64_t a, uint64_t b, void *arg)
{
	(void)arg;
	return a == b;
}

static void test_basic(void **state)
{
	struct env *e = *state;
	qsbr_hashmap *m = qsbr_hashmap_new(e->d, 0, NULL, NULL, NULL);
	void *v = val(99);

	assert_non_null(m);
	assert_int_equal(qsbr_hashmap_size(m), 0);
	assert_int_equal(qsbr_hashmap_buckets(m), 8);
	assert_int_equal(qsbr_hashmap_lookup(m, e->t, 1, &v), ENOENT);
	assert_int_equal(qsbr_hashmap_remove(m, e->t, 1, &v), ENOENT);
	assert_ptr_equal(v, val(99));
	assert_int_equal(qsbr_hashmap_insert(m, e->t, 1, val(10)), 0);
	assert_int_equal(qsbr_hashmap_insert(m, e->t, 1, val(11)), EEXIST);
	assert_int_equal(qsbr_hashmap_size(m), 1);
	assert_int_equal(qsbr_hashmap_lookup(m, e->t, 1, &v), 0);
	assert_ptr_equal(v, val(10));
	assert_int_equal(qsbr_hashmap_insert(m, e->t, 0, NULL), 0);
	assert_int_equal(qsbr_hashmap_insert(m, e->t, UINT64_MAX, val(3)), 0);
	assert_int_equal(qsbr_hashmap_lookup(m, e->t, 0, &v), 0);
	assert_null(v);
	assert_int_equal(qsbr_hashmap_lookup(m, e->t, UINT64_MAX, &v), 0);
	assert_ptr_equal(v, val(3));
	assert_int_equal(qsbr_hashmap_size(m), 3);
	assert_int_equal(qsbr_hashmap_remove(m, e->t, 1, &v), 0);
	assert_ptr_equal(v, val(10));
	assert_int_equal(qsbr_hashmap_remove(m, e->t, 1, NULL), ENOENT);
	assert_int_equal(qsbr_hashmap_lookup(m, e->t, 1, NULL), ENOENT);
	assert_int_equal(qsbr_hashmap_size(m), 2);
	assert_int_equal(qsbr_hashmap_delete(m, NULL, NULL), 0);
}

static void test_einval(void **state)
{
	struct env *e = *state;
	qsbr_hashmap *m = qsbr_hashmap_new(e->d, 0, NULL, NULL, NULL);

	assert_errno(qsbr_hashmap_new(NULL, 0, NULL, NULL, NULL), EINVAL);
	assert_errno(qsbr_hashmap_new(e->d, 0, NULL, int_equal, NULL), EINVAL);
	keyed_einval(e, m);
	assert_errno(qsbr_hashmap_size(NULL), EINVAL);
	assert_errno(qsbr_hashmap_buckets(NULL), EINVAL);
	assert_errno(qsbr_hashmap_memory(NULL), EINVAL);
	assert_int_equal(qsbr_hashmap_size(m), 0);
	assert_int_equal(qsbr_hashmap_delete(m, NULL, NULL), 0);
}

static void test_size_hint(void **state)
{
	struct env *e = *state;
	size_t hints[] = { 1, 8, 9, 1000, 1 << 16 };

	for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++) {
		qsbr_hashmap *m = qsbr_hashmap_new(e->d, hints[i], NULL, NULL, NULL);
		size_t b = qsbr_hashmap_buckets(m);

		assert_true(b >= hints[i] && b >= 8 && (b & (b - 1)) == 0);
		assert_true(b < 2 * hints[i] || b == 8);
		assert_int_equal(qsbr_hashmap_delete(m, NULL, NULL), 0);
	}
}

/* Grows from 8 buckets to hold N keys; every key stays found, the size is
 * exact, removals keep the buckets. */
static void test_growth(void **state)
{
	struct env *e = *state;
	enum { N = 100000 };
	qsbr_hashmap *m = qsbr_hashmap_new(e->d, 0, NULL, NULL, NULL);
	size_t mem0 = qsbr_hashmap_memory(m), buckets;
	void *v;

	for (uint64_t k = 0; k < N; k++) {
		assert_int_equal(qsbr_hashmap_insert(m, e->t, k * 7919, val(k + 1)), 0);
		if (k % 4096 == 0)
			qsbr_quiescent(e->t);
	}
	buckets = qsbr_hashmap_buckets(m);
	assert_int_equal(qsbr_hashmap_size(m), N);
	/* At most two entries per bucket (the default load), give or take the
	 * 16-insert checks. */
	assert_true(2 * buckets + 16 >= N && buckets < 2 * N);
	assert_true(qsbr_hashmap_memory(m) >= mem0 + N * 32);
	for (uint64_t k = 0; k < N; k++) {
		assert_int_equal(qsbr_hashmap_lookup(m, e->t, k * 7919, &v), 0);
		assert_ptr_equal(v, val(k + 1));
		assert_int_equal(qsbr_hashmap_lookup(m, e->t, k * 7919 + 1, NULL), ENOENT);
	}
	for (uint64_t k = 0; k < N; k += 2)
		assert_int_equal(qsbr_hashmap_remove(m, e->t, k * 7919, NULL), 0);
	qsbr_quiescent(e->t);
	assert_int_equal(qsbr_hashmap_size(m), N / 2);
	assert_int_equal(qsbr_hashmap_buckets(m), buckets);
	for (uint64_t k = 0; k < N; k++)
		assert_int_equal(qsbr_hashmap_lookup(m, e->t, k * 7919, NULL), k % 2 ? 0 : ENOENT);
	assert_int_equal(qsbr_hashmap_delete(m, NULL, NULL), 0);
}

/* Random operations against a reference, with a small table that grows. */
static void test_reference(void **state)
{
	struct env *e = *state;
	enum { RANGE = 4096 };
	static bool ref[RANGE];
	qsbr_hashmap *m = qsbr_hashmap_new(e->d, 0, NULL, NULL, NULL);
	uint64_t n;

	memset(ref, 0, sizeof(ref));
	n = keyed_reference(e, m, qsbr_hashmap_size, ref, RANGE, 200000, 0x9e3779b97f4a7c15u);
	assert_int_equal(qsbr_hashmap_size(m), n);
	assert_true(qsbr_hashmap_buckets(m) > 8);
	assert_int_equal(qsbr_hashmap_delete(m, NULL, NULL), 0);
}

/* Keys that stand for strings: equal compares the text, so two pointers to
 * equal text are one key. */
static uint64_t str_hash(uint64_t key, void *arg)
{
	const unsigned char *s = (const unsigned char *)(uintptr_t)key;
	uint64_t h = 1469598103934665603u;

	assert_ptr_equal(arg, val(0xa5));
	while (*s)
		h = (h ^ *s++) * 1099511628211u;
	return h;
}

static bool str_equal(uint64_t a, uint64_t b, void *arg)
{
	assert_ptr_equal(arg, val(0xa5));
	return strcmp((const char *)(uintptr_t)a, (const char *)(uintptr_t)b) == 0;
}

static uint64_t key_of(const char *s)
{
	return (uint64_t)(uintptr_t)s;
}

static void test_string_keys(void **state)
{
	struct env *e = *state;
	qsbr_hashmap *m = qsbr_hashmap_new(e->d, 0, str_hash, str_equal, val(0xa5));
	char words[300][8], probe[8];
	void *v;

	for (int i = 0; i < 300; i++) {
		snprintf(words[i], sizeof(words[i]), "w%d", i);
		assert_int_equal(qsbr_hashmap_insert(m, e->t, key_of(words[i]), words[i]), 0);
	}
	for (int i = 0; i < 300; i++) {
		snprintf(probe, sizeof(probe), "w%d", i);
		assert_int_equal(qsbr_hashmap_insert(m, e->t, key_of(probe), NULL), EEXIST);
		assert_int_equal(qsbr_hashmap_lookup(m, e->t, key_of(probe), &v), 0);
		assert_ptr_equal(v, words[i]);
	}
	assert_int_equal(qsbr_hashmap_lookup(m, e->t, key_of("x1"), NULL), ENOENT);
	snprintf(probe, sizeof(probe), "w%d", 17);
	assert_int_equal(qsbr_hashmap_remove(m, e->t, key_of(probe), &v), 0);
	assert_ptr_equal(v, words[17]);
	assert_int_equal(qsbr_hashmap_lookup(m, e->t, key_of(words[17]), NULL), ENOENT);
	assert_int_equal(qsbr_hashmap_size(m), 299);
	assert_int_equal(qsbr_hashmap_delete(m, NULL, NULL), 0);
}

/* Every key has the same hash: one run of equal order keys, told apart by
 * equal alone (and without equal, by value). */
static uint64_t const_hash(uint64_t key, void *arg)
{
	(void)key;
	(void)arg;
	return 42;
}

static void test_collisions(void **state)
{
	struct env *e = *state;

	for (int with_equal = 0; with_equal < 2; with_equal++) {
		qsbr_hashmap *m = qsbr_hashmap_new(e->d, 0, const_hash,
						   with_equal ? int_equal : NULL, NULL);
		void *v;

		for (uint64_t k = 0; k < 500; k++)
			assert_int_equal(qsbr_hashmap_insert(m, e->t, k, val(k + 1)), 0);
		for (uint64_t k = 0; k < 500; k += 3)
			assert_int_equal(qsbr_hashmap_insert(m, e->t, k, NULL), EEXIST);
		for (uint64_t k = 0; k < 500; k += 2)
			assert_int_equal(qsbr_hashmap_remove(m, e->t, k, &v), 0);
		for (uint64_t k = 0; k < 500; k++) {
			int rc = qsbr_hashmap_lookup(m, e->t, k, &v);

			assert_int_equal(rc, k % 2 ? 0 : ENOENT);
			if (rc == 0)
				assert_ptr_equal(v, val(k + 1));
		}
		assert_int_equal(qsbr_hashmap_size(m), 250);
		assert_int_equal(qsbr_hashmap_delete(m, NULL, NULL), 0);
	}
}

/* A bucket segment that cannot be allocated costs a longer walk, from an
 * ancestor bucket: the insert or remove that needed it succeeds, and no
 * block is lost (env_teardown counts them).  The pool is filled first (keys
 * of segment 0's buckets inserted, removed and their grace period waited
 * for), so that the inserts below take their nodes without allocating:
 * every allocation they make is a segment's. */
static void test_segment_failures(void **state)
{
	struct env *e = *state;
	qsbr_hashmap *m = qsbr_hashmap_new(e->d, 1 << 16, NULL, NULL, NULL);
	uint64_t key = 1;

	assert_non_null(m);
	for (int pass = 0; pass < 2; pass++) {
		uint64_t k = UINT64_C(1) << 41;

		for (int n = 0; n < 1500; k++) {
			if ((qsbr_hashmap_hash64(k) & 0xffff) >= 64)
				continue;
			n++;
			if (pass == 0)
				assert_int_equal(qsbr_hashmap_insert(m, e->t, k, NULL), 0);
			else
				assert_int_equal(qsbr_hashmap_remove(m, e->t, k, NULL), 0);
		}
	}
	qsbr_barrier(e->t);
	assert_int_equal(qsbr_hashmap_insert(m, e->t, UINT64_C(1) << 40, val(1)), 0);
	/* Fail each of an insert's allocations in turn, then all of them, on
	 * keys in fresh buckets. */
	for (unsigned n = 1;; n++) {
		alloc_fail_nth(n);
		assert_int_equal(qsbr_hashmap_insert(m, e->t, key, val(key)), 0);
		key++;
		if (!alloc_failed())
			break;
	}
	/* Four levels more, whose segments cannot be allocated below. */
	assert_int_equal(qsbr_hashmap_resize_policy(m, 2, 1 << 20, 0, false), 0);
	alloc_fail_all(true);
	for (int i = 0; i < 1000; i++, key++)
		assert_int_equal(qsbr_hashmap_insert(m, e->t, key, val(key)), 0);
	alloc_fail_all(false);
	assert_int_equal(qsbr_hashmap_size(m), key);
	/* Removes that would allocate the segments still missing cannot. */
	alloc_count_take();
	alloc_fail_all(true);
	for (uint64_t k = 1; k < key; k += 2)
		assert_int_equal(qsbr_hashmap_remove(m, e->t, k, NULL), 0);
	alloc_fail_all(false);
	assert_true(alloc_count_take() > 0);
	for (uint64_t k = 1; k < key; k++) {
		void *v;

		assert_int_equal(qsbr_hashmap_lookup(m, e->t, k, &v), k % 2 ? ENOENT : 0);
		if (k % 2 == 0) {
			assert_ptr_equal(v, val(k));
			assert_int_equal(qsbr_hashmap_remove(m, e->t, k, NULL), 0); /* with segments */
		}
	}
	assert_int_equal(qsbr_hashmap_size(m), 1);
	assert_int_equal(qsbr_hashmap_delete(m, NULL, NULL), 0);
}

/* Lookups allocate nothing and store nothing, whatever state the buckets are
 * in: here most buckets of a large table have no dummy yet. */
static void test_lookup_allocates_nothing(void **state)
{
	struct env *e = *state;
	qsbr_hashmap *m = qsbr_hashmap_new(e->d, 0, NULL, NULL, NULL);

	for (uint64_t k = 0; k < 5000; k++)
		assert_int_equal(qsbr_hashmap_insert(m, e->t, k, val(k)), 0);
	alloc_count_take();
	alloc_fail_all(true);
	for (uint64_t k = 0; k < 10000; k++)
		assert_int_equal(qsbr_hashmap_lookup(m, e->t, k, NULL), k < 5000 ? 0 : ENOENT);
	alloc_fail_all(false);
	assert_int_equal(alloc_count_take(), 0);
	assert_int_equal(qsbr_hashmap_delete(m, NULL, NULL), 0);
}

struct tally {
	uint64_t n, sum;
};

static void count_entry(uint64_t key, void *value, void *arg)
{
	struct tally *t = arg;

	assert_ptr_equal(value, val(key + 5));
	t->n++;
	t->sum += key;
}

static void test_delete_visits_each_once(void **state)
{
	struct env *e = *state;
	qsbr_hashmap *m = qsbr_hashmap_new(e->d, 0, NULL, NULL, NULL);
	struct tally tally = { 0, 0 };
	qsbr_stats before;

	for (uint64_t k = 0; k < 1000; k++)
		assert_int_equal(qsbr_hashmap_insert(m, e->t, k, val(k + 5)), 0);
	before = stats_of(e->d);
	for (uint64_t k = 0; k < 1000; k += 2)
		assert_int_equal(qsbr_hashmap_remove(m, e->t, k, NULL), 0);
	/* Removed nodes went to the domain, through the pool's batches of 8
	 * (the last one still open). */
	assert_int_equal(stats_of(e->d).retired - before.retired, 500 / 8);
	assert_int_equal(qsbr_hashmap_delete(m, count_entry, &tally), 0);
	assert_int_equal(tally.n, 500);
	assert_int_equal(tally.sum, 500 * 500); /* 1 + 3 + ... + 999 */
}

/* A keyed map deleted from a retire callback: EDEADLK, nothing changed
 * (fn not called); from outside, the delete hands every entry to fn. */
static qsbr_hashmap *deadlk_map;
static int deadlk_rc = -1;
static unsigned deadlk_entries;

static void deadlk_entry(uint64_t key, void *value, void *arg)
{
	(void)key;
	(void)value;
	(void)arg;
	deadlk_entries++;
}

static void deadlk_cb(qsbr_node *n)
{
	deadlk_rc = qsbr_hashmap_delete(deadlk_map, deadlk_entry, NULL);
	free(n);
}

static void test_delete_from_callback(void **state)
{
	struct env *e = *state;
	qsbr_node *n = malloc(sizeof(*n));

	assert_non_null(n);
	deadlk_map = qsbr_hashmap_new(e->d, 0, NULL, NULL, NULL);
	for (uint64_t k = 0; k < 20; k++)
		assert_int_equal(qsbr_hashmap_insert(deadlk_map, e->t, k, NULL), 0);
	for (uint64_t k = 0; k < 3; k++)
		assert_int_equal(qsbr_hashmap_remove(deadlk_map, e->t, k, NULL), 0);
	qsbr_retire_node(e->t, n, deadlk_cb);
	qsbr_barrier(e->t);
	assert_int_equal(deadlk_rc, EDEADLK);
	assert_int_equal(deadlk_entries, 0);
	assert_int_equal(qsbr_hashmap_insert(deadlk_map, e->t, 1, NULL), 0); /* still usable */
	assert_int_equal(qsbr_hashmap_delete(deadlk_map, deadlk_entry, NULL), 0);
	assert_int_equal(deadlk_entries, 18);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_basic),
		TEST(test_einval),
		TEST(test_size_hint),
		TEST(test_growth),
		TEST(test_reference),
		TEST(test_string_keys),
		TEST(test_collisions),
		KEYED_TESTS,
		TEST(test_segment_failures),
		TEST(test_lookup_allocates_nothing),
		TEST(test_delete_visits_each_once),
		TEST(test_delete_from_callback),
	};

	return cmocka_run_group_tests_name("ds-hashmap", tests, NULL, NULL);
}
