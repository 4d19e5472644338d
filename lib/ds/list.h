/* SPDX-License-Identifier: MIT */
/*
 * list.h: the lock-free sorted list under the ordered set (set.c) and the
 * hash map (hashmap.c): Harris's list with logical deletion, in the form
 * Michael gave it for manual reclamation, here reclaimed through libqsbr.
 *
 * Nodes are sorted by so, an unsigned 64-bit order key.  Nodes with equal so
 * form a run, in no particular order, told apart by key (hash map entries
 * whose hashes collide; the set's runs hold one node).  A node is removed in
 * two steps: the mark bit goes into its own next link (logical deletion, where
 * a remove takes effect), then the link that points to it is swung past it
 * (unlinking):
 *
 *   start --> [so 3] --> [so 5]x--> [so 5] --> [so 9] --> NULL
 *                            ^ marked: deleted, not yet unlinked
 *
 * Rules; each atomic below names the rule it implements.
 *
 *  L1 Publication.  A node's fields (so, key, value, next) are written before
 *     the release CAS that links it, and every load of a link is acquire: a
 *     thread that reaches a node sees its fields.  Every later write of a
 *     link is a release CAS too, or the mark, an RMW that continues the
 *     release sequence of the write before it; so a link read at any time
 *     carries that visibility.
 *  L2 Frozen links.  A CAS on a link expects an unmarked value, so once a
 *     node's next is marked it never changes again: nothing is inserted after
 *     a deleted node, and an unlinked node is never linked again.  A node
 *     that is not marked is reachable from start.
 *  L3 Reclamation.  Only the thread whose CAS unlinks a node retires it, once,
 *     after the CAS: no walk that starts later can reach it.  Walks that
 *     already hold it are online, between two quiescent states, so the
 *     node's callback waits for them.  The frozen next of an unlinked node
 *     leads to nodes unlinked no earlier (their own predecessor link was
 *     frozen first), so a walk may follow it.
 *  L4 Readers write nothing.  Lookups and seeks walk past marked nodes through
 *     their frozen links (which lead to equal or larger so), never help
 *     unlink and never start over.  They compare a key (the user's equal)
 *     only on a node whose next they read unmarked during the call: the key
 *     of a removed entry is compared only by calls that overlap its removal,
 *     so its owner may retire what the key points to once remove returns.
 *  L5 Values are written once.  An entry's value is stored before the CAS
 *     that links it (L1) and never again until the pool hands the entry out
 *     anew, after its grace period: a call that reached the entry through
 *     an acquire load of a link reads it relaxed.
 *
 * Inserting into a run: every insert of a node with order key s goes in front
 * of the run of s (after the last node with a smaller so), by a CAS on that
 * node's link that expects the run's first node.  Two inserts of one key
 * cannot both succeed: the first changes the link the second expects, and the
 * second searches again.  Dummy nodes (the hash map's bucket heads) are bare
 * list_nodes with so values no entry has; they are never deleted.
 */
#ifndef QSBR_DS_LIST_H
#define QSBR_DS_LIST_H

#include "ds.h"

#define LIST_MARK ((uintptr_t)1)

struct list_node {
	auptr next;  /* the next node's address | LIST_MARK once this node is deleted */
	uint64_t so; /* order key */
};

struct list_entry {
	struct list_node node;
	uint64_t key;
	aptr value;   /* the user's value (L5) */
};

typedef bool list_equal_fn(uint64_t a, uint64_t b, void *arg);

/* What a structure passes to every list operation. */
struct list_ctx {
	list_equal_fn *equal; /* NULL: keys are equal when their values are */
	void *arg;
	qsbr_domain *domain; /* whose handles the calls take */
	qsbr_pool *pool;     /* the entries come from it and go back to it */
};

/* Where a node of some order key goes: cur, the first unmarked node at or
 * past it (or NULL), and prev, the unmarked link that held cur. */
struct list_pos {
	auptr *prev;
	struct list_node *cur;
};

static inline struct list_node *list_ptr(uintptr_t v)
{
	return (struct list_node *)(v & ~LIST_MARK);
}

static inline struct list_entry *list_entry_of(const struct list_node *n)
{
	return ds_container_of(n, struct list_entry, node);
}

static inline bool list_key_equal(const struct list_node *n, uint64_t key, const struct list_ctx *c)
{
	const struct list_entry *e = list_entry_of(n);

	return c->equal != NULL ? c->equal(e->key, key, c->arg) : e->key == key;
}

/* e (NULL or fresh memory) as a new entry, not yet linked. */
static inline struct list_entry *list_entry_init(struct list_entry *e, uint64_t so, uint64_t key,
						 void *value)
{
	if (e != NULL) {
		e->node.so = so;
		e->key = key;
		/* Relaxed: published by the CAS that links e (L1). */
		store_relaxed(&e->value, value);
	}
	return e;
}

/* L3: called once per entry, by the thread whose CAS unlinked it. */
static inline void list_retire(qsbr_thread *t, struct list_node *n, const struct list_ctx *c)
{
	qsbr_pool_retire(t, c->pool, list_entry_of(n)); /* reused after its grace period */
}

/*
 * Michael's search.  Walks from start (the link of a node never deleted) to
 * the run of so, unlinking and retiring the deleted nodes it passes, and
 * starts over when such a CAS fails.  want_key: looks for the entry with key
 * in the run; else for the node whose so is so (a dummy).  Returns the node
 * found or NULL; either way *pos is where a node of so goes (in front of its
 * run).
 */
static inline struct list_node *list_find(auptr *start, uint64_t so, bool want_key, uint64_t key,
					  const struct list_ctx *c, qsbr_thread *t,
					  struct list_pos *pos)
{
	auptr *prev, *run_prev;
	struct list_node *cur, *run_cur;
	uintptr_t v;

retry:
	prev = start;
	run_prev = NULL;
	run_cur = NULL;
	/* L1: acquire, pairs with the release CAS that linked the first node. */
	v = load_acquire(prev);
	for (;;) {
		uintptr_t next;

		cur = list_ptr(v);
		if (cur == NULL)
			break;
		/* L1: acquire, pairs with the release CAS that last wrote
		 * cur->next (the mark continues its release sequence). */
		next = load_acquire(&cur->next);
		if (next & LIST_MARK) {
			uintptr_t expected = (uintptr_t)cur;

			/* L1, L3: unlink cur.  Release: the successor's fields,
			 * visible to us through the acquire above, become
			 * visible to whoever loads *prev next; pairs with the
			 * acquire loads of links.  Failure: *prev moved or got
			 * marked; start over. */
			if (!cas_strong_release_relaxed(prev, &expected, next & ~LIST_MARK))
				goto retry;
			list_retire(t, cur, c);
			v = next & ~LIST_MARK;
			continue;
		}
		if (cur->so > so)
			break;
		if (cur->so == so) {
			if (run_prev == NULL) {
				run_prev = prev;
				run_cur = cur;
			}
			if (!want_key || list_key_equal(cur, key, c)) {
				pos->prev = prev;
				pos->cur = cur;
				return cur;
			}
		}
		prev = &cur->next;
		v = next;
	}
	pos->prev = run_prev != NULL ? run_prev : prev;
	pos->cur = run_prev != NULL ? run_cur : cur;
	return NULL;
}

/*
 * Links n (its so, and for an entry its key and value, already written) in
 * front of the run of its so, unless the run holds a match: the entry with
 * key (want_key), or a node with the same so (a dummy).  Returns NULL once n
 * is linked, else the match; n then stays the caller's, never published.
 */
static inline struct list_node *list_insert(auptr *start, struct list_node *n, bool want_key,
					    uint64_t key, const struct list_ctx *c, qsbr_thread *t)
{
	for (;;) {
		struct list_pos pos;
		struct list_node *found = list_find(start, n->so, want_key, key, c, t, &pos);
		uintptr_t expected = (uintptr_t)pos.cur;

		if (found != NULL)
			return found;
		/* Relaxed: n is not published yet; the CAS below does that. */
		store_relaxed(&n->next, (uintptr_t)pos.cur);
		/* L1: release publishes n's fields; pairs with the acquire
		 * loads of links.  Failure: the run's front changed; search
		 * again. */
		if (cas_strong_release_relaxed(pos.prev, &expected, (uintptr_t)n))
			return NULL;
	}
}

/*
 * Deletes the entry with key from the run of so: marks it (the remove takes
 * effect), then unlinks and retires it, or leaves that to a search.  Returns
 * whether it found the entry, and its value in *value.
 */
static inline bool list_remove(auptr *start, uint64_t so, uint64_t key, const struct list_ctx *c,
			       qsbr_thread *t, void **value)
{
	for (;;) {
		struct list_pos pos;
		struct list_node *cur = list_find(start, so, true, key, c, t, &pos);
		uintptr_t next;

		if (cur == NULL)
			return false;
		/* L5: relaxed; the user's value if the mark below succeeds. */
		*value = load_relaxed(&list_entry_of(cur)->value);
		/* L1: acquire, pairs with the release CAS that wrote cur->next. */
		next = load_acquire(&cur->next);
		while (!(next & LIST_MARK)) {
			/* L2: the mark freezes cur->next.  Acquire, on failure
			 * too: we go on with the value read, and publish it
			 * in prev below (L1).  Weak: a spurious failure tries
			 * again with the same value. */
			if (cas_weak_acquire(&cur->next, &next, next | LIST_MARK)) {
				uintptr_t expected = (uintptr_t)cur;

				/* L1, L3: unlink, as in list_find. */
				if (cas_strong_release_relaxed(pos.prev, &expected, next))
					list_retire(t, cur, c);
				else /* prev moved: a search unlinks cur */
					list_find(start, so, true, key, c, t, &pos);
				return true;
			}
		}
		/* Another remove marked it first; the search unlinks it. */
	}
}

/* L4: whether the entry with key is in the run of so, present at some moment
 * during the call; its value then in *value.  Reads only.  An entry's so:
 * never a dummy's. */
static inline bool list_lookup(const auptr *start, uint64_t so, uint64_t key,
			       const struct list_ctx *c, void **value)
{
	/* L1: acquire, pairs with the release CAS that linked the node. */
	uintptr_t v = load_acquire(start);

	for (;;) {
		const struct list_node *cur = list_ptr(v);
		uintptr_t next;
		void *val = NULL;

		if (cur == NULL || cur->so > so)
			return false;
		/* L5: relaxed, as the key. */
		if (cur->so == so)
			val = load_relaxed(&list_entry_of(cur)->value);
		/* L1: as above, for the node after cur. */
		next = load_acquire(&cur->next);
		if (cur->so == so && !(next & LIST_MARK) && list_key_equal(cur, key, c)) {
			*value = val;
			return true;
		}
		v = next;
	}
}

/* L4: whether an entry has an order key at or above so; the first such,
 * present at some moment during the call, then in *key and *value.  Reads
 * only; the set's (no dummies). */
static inline bool list_seek(const auptr *start, uint64_t so, uint64_t *key, void **value)
{
	/* L1: acquire, pairs with the release CAS that linked the node. */
	uintptr_t v = load_acquire(start);

	for (;;) {
		const struct list_node *cur = list_ptr(v);
		uintptr_t next;
		void *val = NULL;

		if (cur == NULL)
			return false;
		/* L5: relaxed, as in list_lookup. */
		if (cur->so >= so)
			val = load_relaxed(&list_entry_of(cur)->value);
		/* L1: as above. */
		next = load_acquire(&cur->next);
		if (cur->so >= so && !(next & LIST_MARK)) {
			*key = list_entry_of(cur)->key;
			*value = val;
			return true;
		}
		v = next;
	}
}

#endif /* QSBR_DS_LIST_H */
