/* SPDX-License-Identifier: MIT */
/*
 * header_calls.h: what header_c.c (C11) and header_cpp.cpp (C++11, C++17)
 * run once they have included the public data-structure headers: every
 * call of each header, in the language both accept.  hash and equal go to
 * qsbr_hashmap_new.  Returns 0 when each call did what it should.
 */
#ifndef QSBR_TEST_HEADER_CALLS_H
#define QSBR_TEST_HEADER_CALLS_H

static int header_calls(qsbr_hashmap_hash_fn *hash, qsbr_hashmap_equal_fn *equal)
{
	qsbr_domain *d = qsbr_domain_new(NULL);
	qsbr_thread *t = qsbr_register(d);
	qsbr_stack *s = qsbr_stack_new(d);
	qsbr_queue *q = qsbr_queue_new(d);
	qsbr_set *o = qsbr_set_new(d);
	qsbr_hashmap *m = qsbr_hashmap_new(d, 16, hash, equal, NULL);
	int x = 0;
	void *v = NULL;
	uint64_t k = 0;
	int bad = 0;

	bad |= qsbr_stack_push(s, &x) != 0 || qsbr_stack_pop(s, t, &v) != 0 || v != &x;
	bad |= qsbr_queue_enqueue(q, t, &x) != 0 || qsbr_queue_dequeue(q, t, &v) != 0 || v != &x;
	bad |= qsbr_set_insert(o, t, 1, &x) != 0 || qsbr_set_lookup(o, t, 1, &v) != 0 || v != &x;
	bad |= qsbr_set_seek(o, t, 0, &k, &v) != 0 || k != 1 || qsbr_set_remove(o, t, 1, NULL) != 0;
	bad |= qsbr_hashmap_insert(m, t, 1, &x) != 0 || qsbr_hashmap_lookup(m, t, 1, &v) != 0 || v != &x;
	bad |= qsbr_hashmap_size(m) != 1 || qsbr_hashmap_buckets(m) < 16 || qsbr_hashmap_memory(m) == 0;
	bad |= qsbr_hashmap_remove(m, t, 1, &v) != 0 || v != &x;
	bad |= qsbr_stack_delete(s, NULL, NULL) != 0 || qsbr_queue_delete(q, NULL, NULL) != 0;
	bad |= qsbr_set_delete(o, NULL, NULL) != 0 || qsbr_hashmap_delete(m, NULL, NULL) != 0;
	qsbr_unregister(t);
	return bad | qsbr_domain_delete(d);
}

#endif /* QSBR_TEST_HEADER_CALLS_H */
