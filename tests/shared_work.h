/* SPDX-License-Identifier: MIT */
/*
 * The multi-process stress of the `shared` suite: what its workers do, in
 * the forked children of tests/shared.c and in tests/shared_peer.c, a
 * separate program that maps the same memfd at another address.
 *
 * The caller's part of the region holds a Treiber stack linked by offsets,
 * a hash set (a table of offsets, one node per bucket), their nodes
 * (allocated once each, never reused: no ABA), and per node a state byte
 * and a freed bit.  A worker pushes a fresh node, pops one, checks its
 * canary, retires it by offset, and walks the top of the stack checking
 * canaries; then adds a fresh node to an empty bucket of the set, or
 * removes and retires a bucket's node, and looks a bucket up; the kind's callback kills the canary and sets the
 * freed bit, counting a bit found set (a second run without
 * QSBR_SHARED_RESUMED).  A canary found dead by a reader is an object
 * reclaimed while reachable.
 */
#ifndef QSBR_TEST_SHARED_WORK_H
#define QSBR_TEST_SHARED_WORK_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <qsbr.h>
#include <qsbr/shared.h>

#define WORK_MAGIC UINT64_C(0x4b524f5744455253)
#define WORK_KIND 7u
#define CANARY_LIVE UINT64_C(0x1111111111111111)
#define CANARY_DEAD UINT64_C(0xdeaddeaddeaddead)
#define WORK_SET 256

enum { ST_FREE = 0, ST_PUSHED = 1, ST_POPPED = 2, ST_RETIRED = 3 };

struct snode {
	qsbr_shared_node qn; /* first: the node's offset is the object's */
	_Atomic uint64_t next;
	_Atomic uint64_t canary;
	uint64_t id;
};

/* At the start of the caller's part of the region. */
struct work {
	uint64_t magic;
	uint64_t n_nodes, nodes_off, state_off, bits_off;
	_Atomic uint64_t head;       /* the stack's top node, by offset */
	_Atomic uint64_t next_node;  /* nodes handed out */
	_Atomic uint64_t stop;
	_Atomic uint64_t canary_bad, double_run, resumed_runs, pops, retires, kills;
	_Atomic uint64_t die_in_callback; /* a worker kills itself in its callback for this id + 1 */
	_Atomic uint64_t set[WORK_SET]; /* the hash set: a node's offset per bucket, or 0 */
};

static inline struct work *work_of(qsbr_domain *d)
{
	size_t size;
	char *base = qsbr_shared_base(d, &size);

	return (struct work *)(void *)(base + (qsbr_shared_size(64) + 63) / 64 * 64);
}

static inline char *work_base(qsbr_domain *d)
{
	return qsbr_shared_base(d, NULL);
}

static inline struct snode *work_node(qsbr_domain *d, uint64_t off)
{
	return (struct snode *)(void *)(work_base(d) + off);
}

static inline _Atomic uint8_t *work_state(qsbr_domain *d, uint64_t id)
{
	return (_Atomic uint8_t *)(void *)(work_base(d) + work_of(d)->state_off) + id;
}

static inline _Atomic uint64_t *work_bits(qsbr_domain *d, uint64_t id)
{
	return (_Atomic uint64_t *)(void *)(work_base(d) + work_of(d)->bits_off) + id / 64;
}

/* Bytes a region needs for n nodes (the library's part for 64 threads). */
static inline size_t work_region_size(uint64_t n)
{
	size_t lib = (qsbr_shared_size(64) + 63) / 64 * 64;

	return lib + 4096 + n * sizeof(struct snode) + n + n / 8 + 4096;
}

/* Lays the caller's part out (once, by the creator). */
static inline void work_init(qsbr_domain *d, uint64_t n)
{
	struct work *w = work_of(d);
	uint64_t at = (uint64_t)((char *)w - work_base(d)) + 4096;

	memset(w, 0, sizeof(*w));
	w->n_nodes = n;
	w->nodes_off = at;
	w->state_off = at + n * sizeof(struct snode);
	w->bits_off = (w->state_off + n + 63) / 64 * 64;
	w->magic = WORK_MAGIC;
}

static void work_kind(qsbr_domain *d, uint64_t off, unsigned flags, void *arg)
{
	struct work *w = work_of(d);
	struct snode *n = work_node(d, off);
	uint64_t bit = UINT64_C(1) << (n->id % 64);

	(void)arg;
	if (atomic_load(&w->die_in_callback) == n->id + 1 && !(flags & QSBR_SHARED_RESUMED)) {
		atomic_store(&n->canary, CANARY_DEAD);
		raise(SIGKILL); /* dies halfway: the bit is not set */
	}
	atomic_store(&n->canary, CANARY_DEAD);
	if (flags & QSBR_SHARED_RESUMED) {
		atomic_fetch_add(&w->resumed_runs, 1);
		atomic_fetch_or(work_bits(d, n->id), bit);
	} else if (atomic_fetch_or(work_bits(d, n->id), bit) & bit) {
		atomic_fetch_add(&w->double_run, 1);
	}
}

static inline void check_canary(struct work *w, struct snode *n)
{
	if (atomic_load_explicit(&n->canary, memory_order_relaxed) != CANARY_LIVE)
		atomic_fetch_add(&w->canary_bad, 1);
}

/* A fresh node (ST_PUSHED), or 0 when they ran out. */
static inline uint64_t work_fresh(qsbr_domain *d)
{
	struct work *w = work_of(d);
	uint64_t id = atomic_fetch_add(&w->next_node, 1), off;
	struct snode *n;

	if (id >= w->n_nodes)
		return 0;
	off = w->nodes_off + id * sizeof(struct snode);
	n = work_node(d, off);
	n->id = id;
	atomic_store_explicit(&n->canary, CANARY_LIVE, memory_order_relaxed);
	atomic_store_explicit(work_state(d, id), ST_PUSHED, memory_order_relaxed);
	return off;
}

/* Unlinked by us: retire it, marking its state around the call. */
static inline void work_retire(qsbr_domain *d, qsbr_thread *t, uint64_t off)
{
	struct work *w = work_of(d);
	uint64_t id = work_node(d, off)->id;

	atomic_store_explicit(work_state(d, id), ST_POPPED, memory_order_relaxed);
	atomic_fetch_add(&w->pops, 1);
	if (qsbr_shared_retire(t, off, WORK_KIND) == 0) {
		atomic_store_explicit(work_state(d, id), ST_RETIRED, memory_order_relaxed);
		atomic_fetch_add(&w->retires, 1);
	}
}

/* The set: add to an empty bucket, or remove a bucket's node; look one up. */
static inline void work_set_round(qsbr_domain *d, qsbr_thread *t, uint64_t r)
{
	struct work *w = work_of(d);
	_Atomic uint64_t *b = &w->set[r % WORK_SET];
	uint64_t cur = atomic_load_explicit(b, memory_order_acquire), off;

	if (cur == 0) {
		off = work_fresh(d);
		if (off != 0 && !atomic_compare_exchange_strong_explicit(b, &cur, off, memory_order_release,
									 memory_order_relaxed))
			work_retire(d, t, off); /* never published: retired all the same */
	} else {
		check_canary(w, work_node(d, cur));
		if (atomic_compare_exchange_strong_explicit(b, &cur, 0, memory_order_acquire,
							    memory_order_relaxed))
			work_retire(d, t, cur);
	}
	cur = atomic_load_explicit(&w->set[(r >> 16) % WORK_SET], memory_order_acquire);
	if (cur != 0)
		check_canary(w, work_node(d, cur));
}

/* One round: push a fresh node, pop one and retire it, read a few. */
static inline void work_round(qsbr_domain *d, qsbr_thread *t, uint64_t *rng)
{
	struct work *w = work_of(d);
	uint64_t off = work_fresh(d), top;

	if (off != 0) {
		struct snode *n = work_node(d, off);

		top = atomic_load_explicit(&w->head, memory_order_relaxed);
		do
			atomic_store_explicit(&n->next, top, memory_order_relaxed);
		while (!atomic_compare_exchange_weak_explicit(&w->head, &top, off, memory_order_release,
							      memory_order_relaxed));
	}
	top = atomic_load_explicit(&w->head, memory_order_acquire);
	while (top != 0) {
		struct snode *n = work_node(d, top);
		uint64_t next = atomic_load_explicit(&n->next, memory_order_relaxed);

		check_canary(w, n);
		if (atomic_compare_exchange_weak_explicit(&w->head, &top, next, memory_order_acquire,
							  memory_order_acquire)) {
			work_retire(d, t, top);
			break;
		}
	}
	/* Readers: walk a few nodes from the top. */
	*rng = *rng * 6364136223846793005u + 1442695040888963407u;
	top = atomic_load_explicit(&w->head, memory_order_acquire);
	for (int k = 0; k < (int)(*rng >> 61) && top != 0; k++) {
		struct snode *n = work_node(d, top);

		check_canary(w, n);
		top = atomic_load_explicit(&n->next, memory_order_acquire);
	}
	work_set_round(d, t, *rng >> 20);
}

/* A worker process's life: register, work until told to stop, leave. */
static inline int work_main(qsbr_domain *d, uint64_t seed)
{
	struct work *w = work_of(d);
	qsbr_thread *t;
	uint64_t rng = seed;

	if (w->magic != WORK_MAGIC || qsbr_shared_kind(d, WORK_KIND, work_kind, NULL) != 0)
		return 2;
	t = qsbr_register(d);
	if (t == NULL)
		return 3;
	while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
		for (int k = 0; k < 16; k++)
			work_round(d, t, &rng);
		qsbr_quiescent(t);
		usleep(300); /* nodes are not reused: make them last */
		if ((rng >> 40) % 64 == 0) {
			qsbr_detach(t); /* sometimes offline for a moment */
			qsbr_attach(t);
		}
	}
	qsbr_unregister(t);
	return 0;
}

#endif /* QSBR_TEST_SHARED_WORK_H */
