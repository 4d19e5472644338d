/* SPDX-License-Identifier: MIT */
/*
 * ds_hashset.h: Michael's lock-free hash set (SPAA 2002): a fixed array of
 * buckets, each a Harris-Michael sorted list.  A delete first marks the
 * node's next link (the low bit), then unlinks it; a search that meets a
 * marked node unlinks it too.  Whoever unlinks a node retires it, after the
 * operation (struct bench_rbuf): liburcu's defer_rcu may wait for a grace
 * period, which must not happen inside one.
 *
 * Memory safety comes from the reclamation backend, not from the list: a
 * node read during an operation stays allocated until the operation ends
 * (QSBR: the thread's next quiescent state; ck_epoch: the section's end).
 * Lookups walk without helping and without restarting.
 *
 * Include after rc.h.
 */
#ifndef BENCH_DS_HASHSET_H
#define BENCH_DS_HASHSET_H

#define HS_MARK ((uintptr_t)1)

struct hnode {
	rc_head h; /* first: the object starts at its header */
	uint64_t key;
	_Atomic uintptr_t next; /* struct hnode *, low bit: deleted */
};

struct hashset {
	uint64_t mask;
	_Atomic uintptr_t *buckets;
};

static inline _Atomic uintptr_t *hs_bucket(const struct hashset *s, uint64_t key)
{
	return &s->buckets[((key * 0x9e3779b97f4a7c15ull) >> 32) & s->mask];
}

static inline struct hnode *hs_ptr(uintptr_t v)
{
	return (struct hnode *)(v & ~HS_MARK);
}

/* Acquire on every link: pairs with the release CAS that published the node
 * it points to, so its key is visible. */
static inline uintptr_t hs_load(_Atomic uintptr_t *p)
{
	return atomic_load_explicit(p, memory_order_acquire);
}

static inline bool hs_cas(_Atomic uintptr_t *p, uintptr_t old, uintptr_t new_)
{
	/* Release publishes a new node's fields; acquire for the next load. */
	return atomic_compare_exchange_strong_explicit(p, &old, new_, memory_order_acq_rel,
						       memory_order_acquire);
}

/*
 * Michael's search: on return *pprev is the unmarked link that held *pcur,
 * and *pcur the first node with key >= key, or NULL.  True if its key is
 * key.  Unlinks the marked nodes it passes and queues them on rb.
 */
static inline bool hs_find(struct hashset *s, uint64_t key, _Atomic uintptr_t **pprev,
			   struct hnode **pcur, struct bench_rbuf *rb)
{
	_Atomic uintptr_t *prev;
	struct hnode *cur;

again:
	prev = hs_bucket(s, key);
	cur = hs_ptr(hs_load(prev));
	for (;;) {
		uintptr_t next;
		uint64_t ckey;

		if (cur == NULL)
			break;
		next = hs_load(&cur->next);
		ckey = cur->key;
		if (hs_load(prev) != (uintptr_t)cur)
			goto again; /* prev changed or was marked */
		if ((next & HS_MARK) == 0) {
			if (ckey >= key) {
				*pprev = prev;
				*pcur = cur;
				return ckey == key;
			}
			prev = &cur->next;
		} else {
			if (!hs_cas(prev, (uintptr_t)cur, next & ~HS_MARK))
				goto again;
			bench_rbuf_push(rb, cur);
		}
		cur = hs_ptr(next);
	}
	*pprev = prev;
	*pcur = NULL;
	return false;
}

static inline bool hs_lookup(struct hashset *s, uint64_t key)
{
	struct hnode *cur = hs_ptr(hs_load(hs_bucket(s, key)));

	while (cur != NULL) {
		uintptr_t next = hs_load(&cur->next);

		if (cur->key >= key)
			return cur->key == key && (next & HS_MARK) == 0;
		cur = hs_ptr(next);
	}
	return false;
}

/* Where nodes come from: malloc, unless the including file says otherwise
 * (pool-hashset: a qsbr_pool).  HS_NODE_DROP gives back a node that was
 * never published, or one still linked when the set is destroyed. */
#ifndef HS_NODE_NEW
#define HS_NODE_NEW() ((struct hnode *)malloc(sizeof(struct hnode)))
#define HS_NODE_DROP(n) free(n)
#endif

static inline bool hs_insert(struct hashset *s, uint64_t key, struct bench_rbuf *rb)
{
	struct hnode *n = NULL, *cur;
	_Atomic uintptr_t *prev;

	for (;;) {
		if (hs_find(s, key, &prev, &cur, rb)) {
			if (n != NULL)
				HS_NODE_DROP(n); /* never published */
			return false;
		}
		if (n == NULL) {
			n = HS_NODE_NEW();
			if (n == NULL)
				abort();
			n->key = key;
		}
		atomic_store_explicit(&n->next, (uintptr_t)cur, memory_order_relaxed);
		if (hs_cas(prev, (uintptr_t)cur, (uintptr_t)n))
			return true;
	}
}

static inline bool hs_delete(struct hashset *s, uint64_t key, struct bench_rbuf *rb)
{
	struct hnode *cur;
	_Atomic uintptr_t *prev;

	for (;;) {
		uintptr_t next;

		if (!hs_find(s, key, &prev, &cur, rb))
			return false;
		next = hs_load(&cur->next);
		if (next & HS_MARK)
			continue; /* another delete won: find unlinks it */
		if (!hs_cas(&cur->next, next, next | HS_MARK))
			continue;
		if (hs_cas(prev, (uintptr_t)cur, next))
			bench_rbuf_push(rb, cur);
		else
			hs_find(s, key, &prev, &cur, rb); /* unlinks it */
		return true;
	}
}

/* A set for keys in [0, range), about half of them present.  Inserted in a
 * random order, so that where the nodes land in memory does not depend on
 * what the allocator holds from earlier runs (in key order, a table built
 * from a freed table's chunks packed whole buckets together). */
static inline void hs_init(struct hashset *s, uint64_t range, uint64_t seed)
{
	struct bench_rbuf rb = { 0 };
	uint64_t n = 1, count = 0;
	uint64_t *keys = malloc(range * sizeof(*keys));

	while (n < range / 2)
		n *= 2;
	s->mask = n - 1;
	s->buckets = calloc(n, sizeof(*s->buckets));
	if (s->buckets == NULL || keys == NULL)
		abort();
	for (uint64_t k = 0; k < range; k++)
		if (bench_rand(&seed) & 1)
			keys[count++] = k;
	for (uint64_t i = count; i > 1; i--) { /* Fisher-Yates */
		uint64_t j = bench_rand(&seed) % i, t = keys[i - 1];

		keys[i - 1] = keys[j];
		keys[j] = t;
	}
	for (uint64_t i = 0; i < count; i++)
		hs_insert(s, keys[i], &rb);
	free(keys);
	free(rb.v);
}

/* With no thread running: frees every node still linked (none of them was
 * retired: a node is retired only by whoever unlinked it). */
static inline void hs_destroy(struct hashset *s)
{
	for (uint64_t i = 0; i <= s->mask; i++) {
		struct hnode *n = hs_ptr(atomic_load_explicit(&s->buckets[i], memory_order_relaxed));

		while (n != NULL) {
			struct hnode *next = hs_ptr(atomic_load_explicit(&n->next,
									 memory_order_relaxed));

			HS_NODE_DROP(n);
			n = next;
		}
	}
	free(s->buckets);
	s->buckets = NULL;
}

#endif /* BENCH_DS_HASHSET_H */
