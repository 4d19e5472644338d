/* SPDX-License-Identifier: MIT */
/*
 * Workload: libqsbr's hash map (qsbr/hashmap.h) against liburcu's cds_lfht
 * in its QSBR flavour, both split-ordered lists that grow on their own, on
 * wl_hashset.c's mixes: keys in [0, keys), prefilled half full from empty
 * (so both have grown to their load first); each operation picks a random
 * key and looks it up, inserts it or removes it (lookup percentage 90:
 * 90/5/5, 50: 50/25/25), as one operation between two quiescent states.
 *
 * Compiled once per side, like the other workloads per backend:
 *   RC_BACKEND_QSBR  "hashmap/qsbr": qsbr_hashmap, which retires the nodes
 *                    it unlinks itself (through the thread's handle);
 *   RC_BACKEND_URCU  "hashmap/lfht": cds_lfht (auto-resize, accounting),
 *                    whose caller retires the node it deleted with call_rcu,
 *                    freed by liburcu's worker thread; lfht resizes in a
 *                    worker thread of its own.
 * Both hash with the same 64-bit mixer and allocate a node per insert.
 * Entries carry the key as value.  Reported besides ops/s: peak_pending and
 * peak_pending_bytes, the nodes removed and not yet freed and their bytes
 * (for the map, the domain's statistics, fed by the map's sized retires,
 * so its private node size is never written here; for lfht, the harness's
 * count times its node's size), and entries, the size at the end of the
 * run.
 */
#include "rc.h"

#include <errno.h>

#if defined(RC_BACKEND_QSBR)
#include <qsbr/hashmap.h>
#define MAP_NAME "qsbr"
#elif defined(RC_BACKEND_URCU)
#include <urcu/rculfhash.h>
#define MAP_NAME "lfht"
#else
#error "wl_hashmap.c: RC_BACKEND_QSBR or RC_BACKEND_URCU"
#endif

#define BATCH 1024

static const char owner[] = "hashmap/" MAP_NAME;
static rc_domain *dom;

#if defined(RC_BACKEND_QSBR)
/* ---- qsbr_hashmap ------------------------------------------------------ */

static qsbr_hashmap *map;
static _Atomic uint64_t peak, peak_bytes;

static void map_create(void)
{
	map = qsbr_hashmap_new(dom, 0, NULL, NULL, NULL);
	if (map == NULL)
		abort();
}

/* With no benchmark thread running. */
static void map_destroy(rc_thread *t)
{
	(void)t;
	qsbr_hashmap_delete(map, NULL, NULL);
	map = NULL;
}

static inline bool map_lookup(rc_thread *t, uint64_t key)
{
	void *v;

	return qsbr_hashmap_lookup(map, t->t, key, &v) == 0 && (uint64_t)(uintptr_t)v == key;
}

static inline void map_insert(rc_thread *t, uint64_t key)
{
	int rc = qsbr_hashmap_insert(map, t->t, key, (void *)(uintptr_t)key);

	if (rc != 0 && rc != EEXIST)
		abort();
}

static inline void map_remove(rc_thread *t, uint64_t key)
{
	qsbr_hashmap_remove(map, t->t, key, NULL);
}

static uint64_t map_size(void)
{
	return qsbr_hashmap_size(map);
}

static void raise_to(_Atomic uint64_t *p, uint64_t v)
{
	uint64_t old = atomic_load_explicit(p, memory_order_relaxed);

	while (v > old && !atomic_compare_exchange_weak_explicit(p, &old, v, memory_order_relaxed,
								 memory_order_relaxed))
		;
}

/* The map retires its nodes itself, each with its size: the domain counts
 * what is pending, objects and bytes. */
static void pending_sample(void)
{
	qsbr_stats s;

	qsbr_stats_get(dom, &s);
	raise_to(&peak, s.pending);
	raise_to(&peak_bytes, s.pending_bytes);
}

static void pending_reset(void)
{
	atomic_store_explicit(&peak, 0, memory_order_relaxed);
	atomic_store_explicit(&peak_bytes, 0, memory_order_relaxed);
}

static uint64_t pending_peak(void)
{
	return atomic_load_explicit(&peak, memory_order_relaxed);
}

static uint64_t pending_peak_bytes(void)
{
	return atomic_load_explicit(&peak_bytes, memory_order_relaxed);
}

#else
/* ---- cds_lfht ----------------------------------------------------------- */

struct lnode {
	rc_head h; /* first: retired through the harness (call_rcu) */
	struct cds_lfht_node ln;
	uint64_t key;
};

static struct cds_lfht *ht;

/* The map's mixer (MurmurHash3's fmix64), so both hash alike. */
static inline unsigned long mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return (unsigned long)x;
}

static int match(struct cds_lfht_node *ln, const void *key)
{
	return caa_container_of(ln, struct lnode, ln)->key == *(const uint64_t *)key;
}

static void map_create(void)
{
	ht = cds_lfht_new(1, 1, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
	if (ht == NULL)
		abort();
}

/* With no benchmark thread running; t is registered and online.  lfht's
 * resize worker may still walk the nodes: they are retired, not freed.
 * cds_lfht_destroy waits for that worker, which waits for a grace period:
 * the caller must be offline then, or the two wait for each other. */
static void map_destroy(rc_thread *t)
{
	struct cds_lfht_iter iter;
	struct lnode *n;

	rc_read_begin(t);
	cds_lfht_for_each_entry(ht, &iter, n, ln) {
		if (cds_lfht_del(ht, &n->ln) == 0)
			rc_retire(t, &n->h);
	}
	rc_read_end(t);
	rc_offline(t);
	if (cds_lfht_destroy(ht, NULL) != 0)
		abort();
	rc_online(t);
	ht = NULL;
}

static inline bool map_lookup(rc_thread *t, uint64_t key)
{
	struct cds_lfht_iter iter;

	(void)t;
	cds_lfht_lookup(ht, mix64(key), match, &key, &iter);
	return cds_lfht_iter_get_node(&iter) != NULL;
}

static inline void map_insert(rc_thread *t, uint64_t key)
{
	struct lnode *n = malloc(sizeof(*n));

	(void)t;
	if (n == NULL)
		abort();
	cds_lfht_node_init(&n->ln);
	n->key = key;
	if (cds_lfht_add_unique(ht, mix64(key), match, &key, &n->ln) != &n->ln)
		free(n); /* present: never published */
}

static inline void map_remove(rc_thread *t, uint64_t key)
{
	struct cds_lfht_iter iter;
	struct cds_lfht_node *ln;

	cds_lfht_lookup(ht, mix64(key), match, &key, &iter);
	ln = cds_lfht_iter_get_node(&iter);
	if (ln != NULL && cds_lfht_del(ht, ln) == 0)
		rc_retire(t, &caa_container_of(ln, struct lnode, ln)->h);
}

static uint64_t map_size(void)
{
	long before, after;
	unsigned long count;

	cds_lfht_count_nodes(ht, &before, &count, &after);
	return count;
}

static void pending_sample(void)
{
	bench_peak_sample();
}

static void pending_reset(void)
{
}

static uint64_t pending_peak(void)
{
	return bench_peak();
}

static uint64_t pending_peak_bytes(void)
{
	return bench_peak() * sizeof(struct lnode);
}
#endif

/* ---- The workload ------------------------------------------------------ */

static void cached_destroy(void)
{
	rc_thread t;

	rc_thread_init(&t, dom);
	map_destroy(&t);
	rc_thread_fini(&t);
	rc_drain(dom);
}

/* A map holding about half of [0, keys), grown to that from empty. */
static void setup(gb_state *st, void *arg)
{
	int64_t keys = gb_arg(st, 0);

	(void)arg;
	if (dom == NULL)
		dom = rc_domain_new();
	if (!bench_cache_hit(owner, keys)) {
		uint64_t seed = 42;
		rc_thread t;

		bench_cache_drop();
		map_create();
		rc_thread_init(&t, dom);
		for (int64_t k = 0; k < keys; k++) {
			rc_read_begin(&t);
			if (bench_rand(&seed) & 1)
				map_insert(&t, (uint64_t)k);
			rc_read_end(&t);
			rc_quiescent(&t);
		}
		rc_thread_fini(&t);
		bench_cache_store(owner, keys, cached_destroy);
	}
	pending_reset();
	bench_run_start(0); /* peak_pending_bytes: teardown reports it */
}

static void body(gb_state *st, void *arg)
{
	struct bench_mix mix;
	uint64_t ops = 0;
	rc_thread t;

	(void)arg;
	bench_mix_init(&mix, st);
	rc_thread_init(&t, dom);
	bench_loop_enter(st);
	while (rc_keep_running(st, &t, BATCH)) {
		for (int i = 0; i < BATCH; i++) {
			uint64_t key;
			enum bench_op op = bench_mix_next(&mix, &key);

			rc_read_begin(&t);
			if (op == BENCH_LOOKUP)
				(void)map_lookup(&t, key); /* a library call: not optimised out */
			else if (op == BENCH_INSERT)
				map_insert(&t, key);
			else
				map_remove(&t, key);
			rc_read_end(&t);
			rc_quiescent(&t);
		}
		ops += BATCH;
		pending_sample();
	}
	bench_loop_exit(st, ops);
	rc_thread_fini(&t);
}

static void teardown(gb_state *st, void *arg)
{
	rc_thread t;
	uint64_t entries;

	(void)arg;
	rc_thread_init(&t, dom); /* lfht counts from a registered reader */
	rc_read_begin(&t);
	entries = map_size();
	rc_read_end(&t);
	rc_thread_fini(&t);
	bench_run_report(st);
	gb_counter(st, "peak_pending", (double)pending_peak(), 0);
	gb_counter(st, "peak_pending_bytes", (double)pending_peak_bytes(), 0);
	gb_counter(st, "entries", (double)entries, 0);
	rc_drain(dom);
}

/* One family per key range, so the map is built once per range. */
void RC_SYM(wl_hashmap_register)(int64_t keys)
{
	gb_bench *b = bench_register("hashmap/" MAP_NAME, body, NULL, setup, teardown);

	bench_mix_args(b, keys);
	bench_thread_counts(b, true);
}
