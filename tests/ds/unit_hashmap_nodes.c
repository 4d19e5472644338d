/* SPDX-License-Identifier: MIT */
/* Sequential semantics of the intrusive calls of qsbr/hashmap.h: adds that
 * never allocate, replace, conditional remove, iteration, the resize policy
 * (shrinking gives bucket memory back), errors and allocation failures. */
#include <stdatomic.h>
#include <stdio.h>

#include <qsbr/hashmap.h>

#include "hashmap_obj.h"
#include "unit_common.h"

static atomic_long objs_freed; /* callbacks may run on the helper thread */

static struct obj *obj_new(uint64_t key, uint64_t version)
{
	struct obj *o = calloc(1, sizeof(*o));

	assert_non_null(o);
	o->key = key;
	o->version = version;
	return o;
}

/* One retire frees node and object. */
static void obj_free(qsbr_node *qn)
{
	free(obj_of_retire(qn));
	atomic_fetch_add(&objs_freed, 1);
}

static void obj_retire(struct env *e, qsbr_hashmap_node *n)
{
	qsbr_retire_node(e->t, &n->retire, obj_free);
}

static qsbr_hashmap_node *add(qsbr_hashmap *m, struct env *e, struct obj *o)
{
	return qsbr_hashmap_add_unique(m, e->t, hash_of(o->key), match_key, &o->key, &o->node);
}

static struct obj *find(qsbr_hashmap *m, struct env *e, uint64_t key)
{
	qsbr_hashmap_node *n = qsbr_hashmap_find(m, e->t, hash_of(key), match_key, &key);

	return n != NULL ? obj_of(n) : NULL;
}

static void free_node(qsbr_hashmap_node *n, void *arg)
{
	(*(long *)arg)++;
	free(obj_of(n));
}

/* Deletes m, freeing the objects still in it; returns how many. */
static long delete_all(qsbr_hashmap *m)
{
	long n = 0;

	assert_int_equal(qsbr_hashmap_delete_nodes(m, free_node, &n), 0);
	return n;
}

static void test_basic(void **state)
{
	struct env *e = *state;
	qsbr_hashmap *m = qsbr_hashmap_new_intrusive(e->d, 0);
	struct obj *a = obj_new(1, 0), *b = obj_new(1, 1), *c = obj_new(2, 0);
	uint64_t k = 1;
	qsbr_stats before = stats_of(e->d);

	atomic_store(&objs_freed, 0);
	assert_non_null(m);
	assert_null(find(m, e, 1));
	assert_ptr_equal(add(m, e, a), &a->node);
	assert_ptr_equal(add(m, e, b), &a->node); /* present: b stays ours */
	assert_ptr_equal(add(m, e, c), &c->node);
	assert_int_equal(qsbr_hashmap_size(m), 2);
	assert_ptr_equal(find(m, e, 1), a);
	assert_ptr_equal(find(m, e, 2), c);
	assert_null(find(m, e, 3));
	/* Delete of a given node; a second one is ENOENT. */
	assert_int_equal(qsbr_hashmap_del(m, e->t, &c->node), 0);
	assert_int_equal(qsbr_hashmap_del(m, e->t, &c->node), ENOENT);
	assert_null(find(m, e, 2));
	obj_retire(e, &c->node);
	/* Remove by key. */
	assert_ptr_equal(qsbr_hashmap_remove_match(m, e->t, hash_of(1), match_key, &k), &a->node);
	assert_null(qsbr_hashmap_remove_match(m, e->t, hash_of(1), match_key, &k));
	obj_retire(e, &a->node);
	assert_ptr_equal(add(m, e, b), &b->node);
	assert_int_equal(qsbr_hashmap_size(m), 1);
	qsbr_barrier(e->t);
	assert_int_equal(atomic_load(&objs_freed), 2);
	assert_int_equal(stats_of(e->d).retired - before.retired, 2); /* the caller's two */
	assert_int_equal(delete_all(m), 1);
}

/* replace and add_replace: the old node comes back, the new one is found,
 * the size stays. */
static void test_replace(void **state)
{
	struct env *e = *state;
	qsbr_hashmap *m = qsbr_hashmap_new_intrusive(e->d, 0);
	struct obj *v0 = obj_new(7, 0), *v1 = obj_new(7, 1), *v2 = obj_new(7, 2), *w = obj_new(8, 0);
	uint64_t k = 7;

	errno = 0;
	assert_null(qsbr_hashmap_replace(m, e->t, hash_of(7), match_key, &k, &v1->node));
	assert_int_equal(errno, ENOENT);
	assert_null(find(m, e, 7)); /* replace adds nothing */
	assert_null(qsbr_hashmap_add_replace(m, e->t, hash_of(7), match_key, &k, &v0->node));
	assert_ptr_equal(find(m, e, 7), v0);
	assert_ptr_equal(qsbr_hashmap_replace(m, e->t, hash_of(7), match_key, &k, &v1->node), &v0->node);
	obj_retire(e, &v0->node);
	assert_ptr_equal(find(m, e, 7), v1);
	assert_ptr_equal(qsbr_hashmap_add_replace(m, e->t, hash_of(7), match_key, &k, &v2->node),
			 &v1->node);
	obj_retire(e, &v1->node);
	assert_ptr_equal(find(m, e, 7), v2);
	/* The replaced node is out: deleting it again is ENOENT. */
	assert_int_equal(qsbr_hashmap_del(m, e->t, &v1->node), ENOENT);
	assert_ptr_equal(add(m, e, w), &w->node);
	assert_int_equal(qsbr_hashmap_size(m), 2);
	assert_int_equal(delete_all(m), 2);
}

/* remove_match with a match that tests a version: a stale version removes
 * nothing. */
static void test_conditional_remove(void **state)
{
	struct env *e = *state;
	qsbr_hashmap *m = qsbr_hashmap_new_intrusive(e->d, 0);
	struct obj *o = obj_new(5, 3);
	struct kv stale = { 5, 2 }, current = { 5, 3 };

	assert_ptr_equal(add(m, e, o), &o->node);
	assert_null(qsbr_hashmap_remove_match(m, e->t, hash_of(5), match_version, &stale));
	assert_ptr_equal(find(m, e, 5), o);
	assert_ptr_equal(qsbr_hashmap_remove_match(m, e->t, hash_of(5), match_version, &current),
			 &o->node);
	assert_null(find(m, e, 5));
	obj_retire(e, &o->node);
	assert_int_equal(delete_all(m), 0);
}

/* Every key with the same hash: one run, told apart by match; replace and
 * delete inside it. */
static void test_one_run(void **state)
{
	struct env *e = *state;
	enum { N = 300 };
	qsbr_hashmap *m = qsbr_hashmap_new_intrusive(e->d, 0);
	struct obj *o[N];

	for (uint64_t i = 0; i < N; i++) {
		o[i] = obj_new(i, 0);
		assert_ptr_equal(qsbr_hashmap_add_unique(m, e->t, 42, match_key, &o[i]->key, &o[i]->node),
				 &o[i]->node);
	}
	for (uint64_t i = 0; i < N; i += 3) {
		struct obj *r = obj_new(i, 1);

		assert_ptr_equal(qsbr_hashmap_replace(m, e->t, 42, match_key, &r->key, &r->node),
				 &o[i]->node);
		obj_retire(e, &o[i]->node);
		o[i] = r;
	}
	for (uint64_t i = 1; i < N; i += 3) {
		assert_int_equal(qsbr_hashmap_del(m, e->t, &o[i]->node), 0);
		obj_retire(e, &o[i]->node);
	}
	for (uint64_t i = 0; i < N; i++) {
		qsbr_hashmap_node *n = qsbr_hashmap_find(m, e->t, 42, match_key, &i);

		if (i % 3 == 1) {
			assert_null(n);
		} else {
			assert_ptr_equal(n, &o[i]->node);
			assert_int_equal(obj_of(n)->version, i % 3 == 0);
		}
	}
	assert_int_equal(qsbr_hashmap_size(m), N - N / 3);
	assert_int_equal(delete_all(m), N - N / 3);
}

/* Adds never allocate an entry and never fail: with every allocation
 * failing, the map cannot get bucket segments, and works from its ancestor
 * buckets; lookups and removes too.  Nothing is lost (teardown). */
static void test_adds_never_fail(void **state)
{
	struct env *e = *state;
	enum { N = 5000 };
	qsbr_hashmap *m = qsbr_hashmap_new_intrusive(e->d, 0);
	static struct obj *o[N];

	for (uint64_t i = 0; i < N; i++)
		o[i] = obj_new(i, 0);
	alloc_count_take();
	alloc_fail_all(true);
	for (uint64_t i = 0; i < N; i++)
		assert_ptr_equal(add(m, e, o[i]), &o[i]->node);
	assert_true(alloc_count_take() > 0); /* segments asked for, refused */
	assert_true(qsbr_hashmap_buckets(m) > 64);
	for (uint64_t i = 0; i < N; i++)
		assert_ptr_equal(find(m, e, i), o[i]);
	for (uint64_t i = 0; i < N; i += 2) {
		assert_int_equal(qsbr_hashmap_del(m, e->t, &o[i]->node), 0);
		free(o[i]); /* never retired: no other thread could have seen it */
	}
	alloc_fail_all(false);
	for (uint64_t i = 0; i < N; i++)
		assert_true((find(m, e, i) != NULL) == (i % 2 == 1));
	assert_int_equal(delete_all(m), N / 2);
}

/* Lookups and iteration allocate nothing and write nothing the allocator
 * sees. */
static void test_reads_allocate_nothing(void **state)
{
	struct env *e = *state;
	qsbr_hashmap *m = qsbr_hashmap_new_intrusive(e->d, 0);
	size_t seen = 0;

	for (uint64_t i = 0; i < 3000; i++)
		add(m, e, obj_new(i, 0));
	alloc_count_take();
	alloc_fail_all(true);
	for (uint64_t i = 0; i < 6000; i++)
		assert_true((find(m, e, i) != NULL) == (i < 3000));
	for (qsbr_hashmap_node *n = qsbr_hashmap_first(m, e->t); n != NULL; n = qsbr_hashmap_next(m, e->t, n))
		seen++;
	alloc_fail_all(false);
	assert_int_equal(alloc_count_take(), 0);
	assert_int_equal(seen, 3000);
	assert_int_equal(delete_all(m), 3000);
}

/* Iteration returns each entry once; the node it stands on may be removed
 * (and retired) before going on, and entries removed ahead are not
 * returned. */
static void test_iteration(void **state)
{
	struct env *e = *state;
	enum { N = 2000 };
	qsbr_hashmap *m = qsbr_hashmap_new_intrusive(e->d, 0);
	static unsigned char seen[N];
	static struct obj *o[N];
	size_t count = 0;

	memset(seen, 0, sizeof(seen));
	assert_null(qsbr_hashmap_first(m, e->t));
	for (uint64_t i = 0; i < N; i++) {
		o[i] = obj_new(i, 0);
		add(m, e, o[i]);
	}
	/* Keys 1 mod 4 leave before the walk reaches them (it may have passed
	 * some: those are counted below); the walk takes out each key 0 mod
	 * 4 it stands on. */
	for (qsbr_hashmap_node *n = qsbr_hashmap_first(m, e->t); n != NULL;) {
		uint64_t key = obj_of(n)->key;
		qsbr_hashmap_node *next;

		seen[key]++;
		count++;
		if (count == N / 4) {
			for (uint64_t i = 1; i < N; i += 4) {
				assert_int_equal(qsbr_hashmap_del(m, e->t, &o[i]->node), 0);
				obj_retire(e, &o[i]->node);
			}
		}
		if (key % 4 == 0) {
			assert_int_equal(qsbr_hashmap_del(m, e->t, n), 0);
			obj_retire(e, n);
		}
		next = qsbr_hashmap_next(m, e->t, n); /* n retired: still valid */
		n = next;
	}
	for (uint64_t i = 0; i < N; i++) {
		assert_true(seen[i] <= 1);
		if (i % 4 != 1)
			assert_int_equal(seen[i], 1); /* present for the whole walk */
	}
	qsbr_quiescent(e->t);
	count = 0;
	for (qsbr_hashmap_node *n = qsbr_hashmap_first(m, e->t); n != NULL; n = qsbr_hashmap_next(m, e->t, n)) {
		assert_true(obj_of(n)->key % 4 >= 2);
		count++;
	}
	assert_int_equal(count, N / 2);
	assert_int_equal(delete_all(m), N / 2);
}

/* Takes the entries of keys [key, key + 16) out (retired), reports a
 * quiescent state, and adds new objects for them: 16 removes make a resize
 * check (every 16 updates of a counter). */
static void churn16(qsbr_hashmap *m, struct env *e, uint64_t key)
{
	for (uint64_t k = key; k < key + 16; k++) {
		struct obj *o = find(m, e, k);

		assert_non_null(o);
		assert_int_equal(qsbr_hashmap_del(m, e->t, &o->node), 0);
		obj_retire(e, &o->node);
	}
	qsbr_quiescent(e->t);
	for (uint64_t k = key; k < key + 16; k++) {
		struct obj *fresh = obj_new(k, 0);

		assert_ptr_equal(add(m, e, fresh), &fresh->node);
	}
}

/* The resize policy: load, bounds, and shrinking that gives the segments
 * back after a grace period, without oscillating at the threshold. */
static void test_resize_policy(void **state)
{
	struct env *e = *state;
	enum { N = 1 << 15, LEFT = 100 };
	qsbr_hashmap *m = qsbr_hashmap_new_intrusive(e->d, 0);
	size_t mem0 = qsbr_hashmap_memory(m), buckets;
	long live0 = alloc_live();

	assert_int_equal(qsbr_hashmap_buckets(m), 8);
	assert_int_equal(qsbr_hashmap_resize_policy(m, 4, 64, 1 << 12, true), 0);
	assert_int_equal(qsbr_hashmap_buckets(m), 64); /* the minimum, at once */
	for (uint64_t i = 0; i < N; i++)
		add(m, e, obj_new(i, 0));
	assert_int_equal(qsbr_hashmap_buckets(m), 1 << 12); /* the maximum */
	assert_int_equal(qsbr_hashmap_resize_policy(m, 1, 64, 0, true), 0);
	assert_true(qsbr_hashmap_buckets(m) >= N); /* load 1, at once */
	/* Remove all but LEFT, with quiescent states: the map halves as it
	 * empties, while fewer than a quarter of its buckets' load remain:
	 * 256 buckets for 100 entries (512 / 4 > 100 >= 256 / 4). */
	for (uint64_t i = 0; i < N - LEFT; i++) {
		struct obj *o = find(m, e, i);

		assert_int_equal(qsbr_hashmap_del(m, e->t, &o->node), 0);
		obj_retire(e, &o->node);
		if (i % 64 == 0)
			qsbr_quiescent(e->t);
	}
	for (int i = 0; i < 4; i++) /* checks, after quiescent states */
		churn16(m, e, N - 16);
	buckets = qsbr_hashmap_buckets(m);
	assert_int_equal(buckets, 256);
	assert_true(qsbr_hashmap_memory(m) < mem0 + 256 * 16 + 512);
	/* The segments went back to the allocator through grace periods. */
	qsbr_barrier(e->t);
	assert_true(alloc_live() - live0 < 16);
	for (uint64_t i = N - LEFT; i < N; i++)
		assert_non_null(find(m, e, i));
	/* At the threshold, adds and removes do not resize back and forth. */
	for (int round = 0; round < 50; round++) {
		churn16(m, e, N - 16);
		assert_int_equal(qsbr_hashmap_buckets(m), buckets);
	}
	assert_int_equal(delete_all(m), LEFT);
}

/* Growing again after a shrink reuses nothing stale: every key is found
 * through rounds of filling and emptying. */
static void test_shrink_grow_rounds(void **state)
{
	struct env *e = *state;
	enum { N = 5000 };
	qsbr_hashmap *m = qsbr_hashmap_new_intrusive(e->d, 0);
	static struct obj *o[N];

	assert_int_equal(qsbr_hashmap_resize_policy(m, 1, 0, 0, true), 0);
	for (int round = 0; round < 4; round++) {
		for (uint64_t i = 0; i < N; i++) {
			o[i] = obj_new(i, (uint64_t)round);
			assert_ptr_equal(add(m, e, o[i]), &o[i]->node);
		}
		assert_true(qsbr_hashmap_buckets(m) >= N / 2);
		for (uint64_t i = 0; i < N; i++)
			assert_ptr_equal(find(m, e, i), o[i]);
		for (uint64_t i = 0; i < N; i++) {
			assert_int_equal(qsbr_hashmap_del(m, e->t, &o[i]->node), 0);
			obj_retire(e, &o[i]->node);
			if (i % 100 == 0)
				qsbr_quiescent(e->t);
		}
		assert_null(qsbr_hashmap_first(m, e->t));
		assert_int_equal(qsbr_hashmap_size(m), 0);
		assert_true(qsbr_hashmap_buckets(m) < N / 4);
	}
	assert_int_equal(delete_all(m), 0);
}

static void test_einval(void **state)
{
	struct env *e = *state;
	qsbr_hashmap *m = qsbr_hashmap_new_intrusive(e->d, 0);
	qsbr_hashmap *keyed = qsbr_hashmap_new(e->d, 0, NULL, NULL, NULL);
	struct obj *o = obj_new(1, 0);
	uint64_t k = 1;

	assert_errno(qsbr_hashmap_new_intrusive(NULL, 0), EINVAL);
	assert_errno(qsbr_hashmap_add_unique(NULL, e->t, 1, match_key, &k, &o->node), EINVAL);
	assert_errno(qsbr_hashmap_add_unique(m, NULL, 1, match_key, &k, &o->node), EINVAL);
	assert_errno(qsbr_hashmap_add_unique(m, e->t, 1, NULL, &k, &o->node), EINVAL);
	assert_errno(qsbr_hashmap_add_unique(m, e->t, 1, match_key, &k, NULL), EINVAL);
	assert_errno(qsbr_hashmap_add_unique(keyed, e->t, 1, match_key, &k, &o->node), EINVAL);
	assert_errno(qsbr_hashmap_add_replace(m, e->t, 1, NULL, &k, &o->node), EINVAL);
	assert_errno(qsbr_hashmap_add_replace(keyed, e->t, 1, match_key, &k, &o->node), EINVAL);
	assert_errno(qsbr_hashmap_replace(m, e->t, 1, match_key, &k, NULL), EINVAL);
	assert_errno(qsbr_hashmap_replace(NULL, e->t, 1, match_key, &k, &o->node), EINVAL);
	assert_errno(qsbr_hashmap_find(m, NULL, 1, match_key, &k), EINVAL);
	assert_errno(qsbr_hashmap_find(keyed, e->t, 1, match_key, &k), EINVAL);
	assert_errno(qsbr_hashmap_remove_match(m, e->t, 1, NULL, &k), EINVAL);
	assert_errno(qsbr_hashmap_remove_match(keyed, e->t, 1, match_key, &k), EINVAL);
	assert_errno(qsbr_hashmap_first(NULL, e->t), EINVAL);
	assert_errno(qsbr_hashmap_first(keyed, e->t), EINVAL);
	assert_errno(qsbr_hashmap_next(m, e->t, NULL), EINVAL);
	assert_errno(qsbr_hashmap_next(m, NULL, &o->node), EINVAL);
	assert_int_equal(qsbr_hashmap_del(NULL, e->t, &o->node), EINVAL);
	assert_int_equal(qsbr_hashmap_del(m, NULL, &o->node), EINVAL);
	assert_int_equal(qsbr_hashmap_del(m, e->t, NULL), EINVAL);
	assert_int_equal(qsbr_hashmap_del(keyed, e->t, &o->node), EINVAL);
	assert_int_equal(qsbr_hashmap_resize_policy(NULL, 2, 0, 0, false), EINVAL);
	assert_int_equal(qsbr_hashmap_resize_policy(m, 0, 0, 0, false), EINVAL);
	assert_int_equal(qsbr_hashmap_resize_policy(m, 65, 0, 0, false), EINVAL);
	assert_int_equal(qsbr_hashmap_resize_policy(m, 2, 1024, 512, false), EINVAL);
	/* The keyed calls refuse an intrusive map, and the other way round. */
	assert_int_equal(qsbr_hashmap_insert(m, e->t, 1, NULL), EINVAL);
	assert_int_equal(qsbr_hashmap_remove(m, e->t, 1, NULL), EINVAL);
	assert_int_equal(qsbr_hashmap_lookup(m, e->t, 1, NULL), EINVAL);
	assert_int_equal(qsbr_hashmap_delete(m, NULL, NULL), EINVAL);
	assert_int_equal(qsbr_hashmap_delete_nodes(keyed, NULL, NULL), EINVAL);
	assert_int_equal(qsbr_hashmap_delete_nodes(NULL, NULL, NULL), EINVAL);
	/* Nothing changed. */
	assert_int_equal(qsbr_hashmap_size(m), 0);
	assert_int_equal(qsbr_hashmap_buckets(m), 8);
	assert_null(qsbr_hashmap_first(m, e->t));
	free(o);
	assert_int_equal(qsbr_hashmap_delete(keyed, NULL, NULL), 0);
	assert_int_equal(delete_all(m), 0);
}

static void *new_intrusive(qsbr_domain *d)
{
	return qsbr_hashmap_new_intrusive(d, 0);
}

/* qsbr_hashmap_new_intrusive's two allocations (header, first segment)
 * fail in turn: ENOMEM, nothing kept. */
static void test_new_enomem(void **state)
{
	struct env *e = *state;
	qsbr_hashmap *m = fail_each_new_alloc(e, new_intrusive, 2);

	assert_int_equal(delete_all(m), 0);
}

/* delete_nodes hands every entry back once. */
static void test_delete_nodes(void **state)
{
	struct env *e = *state;
	qsbr_hashmap *m = qsbr_hashmap_new_intrusive(e->d, 0);

	for (uint64_t i = 0; i < 1000; i++)
		add(m, e, obj_new(i, 0));
	assert_int_equal(delete_all(m), 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_basic),
		TEST(test_replace),
		TEST(test_conditional_remove),
		TEST(test_one_run),
		TEST(test_adds_never_fail),
		TEST(test_reads_allocate_nothing),
		TEST(test_iteration),
		TEST(test_resize_policy),
		TEST(test_shrink_grow_rounds),
		TEST(test_einval),
		TEST(test_new_enomem),
		TEST(test_delete_nodes),
	};

	(void)val; /* unit_common.h's, unused here */
	return cmocka_run_group_tests_name("ds-hashmap-nodes", tests, NULL, NULL);
}
