/* SPDX-License-Identifier: MIT */
/*
 * Workload: libqsbr's hash map (qsbr/hashmap.h, its intrusive API) against
 * liburcu's cds_lfht in its QSBR flavour and Concurrency Kit's ck_hs, on
 * wl_hashset.c's mixes: keys in [0, keys), prefilled half full from empty
 * (so each has grown to its load first); each operation picks a random key
 * and looks it up, inserts it or removes it (lookup percentage 90: 90/5/5,
 * 50: 50/25/25), as one operation between two quiescent states.
 *
 * Every entry is a user object, as a cds_lfht user has: the key, a value
 * and the map's node, allocated with malloc by the insert and retired by the
 * remove that took it out (freed by bench_obj_free once safe).  A lookup
 * reads the value from the object.  Compiled once per side:
 *   RC_BACKEND_QSBR  "hashmap/qsbr": qsbr_hashmap_new_intrusive, the node
 *                    embedded (48-byte object), retired through its node's
 *                    header with qsbr_retire_node;
 *   RC_BACKEND_URCU  "hashmap/lfht": cds_lfht (auto-resize, accounting),
 *                    rc_head and cds_lfht_node embedded (48 bytes), retired
 *                    with call_rcu, freed by liburcu's worker thread; lfht
 *                    resizes in a worker thread of its own;
 *   RC_BACKEND_CK    "hashmap/ck_hs": ck_hs (SPMC, object mode) holding
 *                    pointers to the objects (32 bytes: ck_epoch's entry,
 *                    key, value), writers under one mutex as ck_hs requires,
 *                    retired with ck_epoch_call (ck_epoch_poll after each),
 *                    readers in ck_epoch sections; ck_hs grows (doubling,
 *                    in the writer under the lock) and frees its old array
 *                    through ck_epoch.
 * All hash with the same 64-bit mixer (qsbr_hashmap_hash64).  Reported
 * besides ops/s: peak_pending and peak_pending_bytes, the objects removed
 * and not yet freed and their bytes (the harness's count times the object's
 * size), and entries, the size at the end of the run.
 */
#include "rc.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

#include <qsbr/hashmap.h> /* qsbr_hashmap_hash64 for every side */

#if defined(RC_BACKEND_QSBR)
#define MAP_NAME "qsbr"
#elif defined(RC_BACKEND_URCU)
#include <urcu/rculfhash.h>
#define MAP_NAME "lfht"
#elif defined(RC_BACKEND_CK)
#include <ck_hs.h>
#define MAP_NAME "ck_hs"
#else
#error "wl_hashmap.c: RC_BACKEND_QSBR, RC_BACKEND_URCU or RC_BACKEND_CK"
#endif

#define BATCH 1024

static const char owner[] = "hashmap/" MAP_NAME;
static rc_domain *dom;

static inline uint64_t hash_of(uint64_t key)
{
	return qsbr_hashmap_hash64(key);
}

#if defined(RC_BACKEND_QSBR)
/* ---- qsbr_hashmap, intrusive --------------------------------------------- */

struct uobj {
	qsbr_hashmap_node node; /* its retire header frees the object */
	uint64_t key, value;
};

static qsbr_hashmap *map;

static bool match(const qsbr_hashmap_node *n, const void *key)
{
	return ((const struct uobj *)(const void *)n)->key == *(const uint64_t *)key;
}

static void uobj_free(qsbr_node *r)
{
	bench_obj_free((char *)r - offsetof(struct uobj, node.retire));
}

static void map_create(void)
{
	map = qsbr_hashmap_new_intrusive(dom, 0);
	if (map == NULL)
		abort();
}

static void free_entry(qsbr_hashmap_node *n, void *arg)
{
	(void)arg;
	free(n);
}

/* With no benchmark thread running. */
static void map_destroy(rc_thread *t)
{
	(void)t;
	qsbr_hashmap_delete_nodes(map, free_entry, NULL);
	map = NULL;
}

static inline bool map_lookup(rc_thread *t, uint64_t key)
{
	qsbr_hashmap_node *n = qsbr_hashmap_find(map, t->t, hash_of(key), match, &key);

	return n != NULL && ((struct uobj *)(void *)n)->value == key;
}

static inline void map_insert(rc_thread *t, uint64_t key)
{
	struct uobj *o = malloc(sizeof(*o));

	if (o == NULL)
		abort();
	o->key = o->value = key;
	if (qsbr_hashmap_add_unique(map, t->t, hash_of(key), match, &key, &o->node) != &o->node)
		free(o); /* present: never published */
}

static inline void map_remove(rc_thread *t, uint64_t key)
{
	qsbr_hashmap_node *n = qsbr_hashmap_remove_match(map, t->t, hash_of(key), match, &key);

	if (n != NULL) {
		bench_count_retired();
		qsbr_retire_node(t->t, &n->retire, uobj_free);
	}
}

static uint64_t map_size(void)
{
	return qsbr_hashmap_size(map);
}

#elif defined(RC_BACKEND_URCU)
/* ---- cds_lfht ----------------------------------------------------------- */

struct uobj {
	rc_head h; /* first: retired through the harness (call_rcu) */
	struct cds_lfht_node ln;
	uint64_t key, value;
};

static struct cds_lfht *ht;

static int match(struct cds_lfht_node *ln, const void *key)
{
	return caa_container_of(ln, struct uobj, ln)->key == *(const uint64_t *)key;
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
	struct uobj *n;

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
	struct cds_lfht_node *ln;

	(void)t;
	cds_lfht_lookup(ht, (unsigned long)hash_of(key), match, &key, &iter);
	ln = cds_lfht_iter_get_node(&iter);
	return ln != NULL && caa_container_of(ln, struct uobj, ln)->value == key;
}

static inline void map_insert(rc_thread *t, uint64_t key)
{
	struct uobj *n = malloc(sizeof(*n));

	(void)t;
	if (n == NULL)
		abort();
	cds_lfht_node_init(&n->ln);
	n->key = n->value = key;
	if (cds_lfht_add_unique(ht, (unsigned long)hash_of(key), match, &key, &n->ln) != &n->ln)
		free(n); /* present: never published */
}

static inline void map_remove(rc_thread *t, uint64_t key)
{
	struct cds_lfht_iter iter;
	struct cds_lfht_node *ln;

	cds_lfht_lookup(ht, (unsigned long)hash_of(key), match, &key, &iter);
	ln = cds_lfht_iter_get_node(&iter);
	if (ln != NULL && cds_lfht_del(ht, ln) == 0)
		rc_retire(t, &caa_container_of(ln, struct uobj, ln)->h);
}

static uint64_t map_size(void)
{
	long before, after;
	unsigned long count;

	cds_lfht_count_nodes(ht, &before, &count, &after);
	return count;
}

#else
/* ---- ck_hs ---------------------------------------------------------- */

struct uobj {
	rc_head h; /* first: retired through the harness (ck_epoch_call) */
	uint64_t key, value;
};

static ck_hs_t hs;
static pthread_mutex_t hs_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local rc_thread *hs_thread; /* the writer, for deferred frees */

static unsigned long hs_hash(const void *obj, unsigned long seed)
{
	(void)seed;
	return (unsigned long)hash_of(((const struct uobj *)obj)->key);
}

/* Object mode: the table holds objects, and every call passes one (a
 * probe on the stack for lookups and removes). */
static bool hs_compare(const void *a, const void *b)
{
	return ((const struct uobj *)a)->key == ((const struct uobj *)b)->key;
}

struct deferred {
	ck_epoch_entry_t e;
	void *p;
};

static void deferred_free(ck_epoch_entry_t *e)
{
	free(((struct deferred *)(void *)e)->p);
	free(e);
}

static void *hs_malloc(size_t n)
{
	return malloc(n);
}

/* ck_hs frees an old array with defer set: readers may still be in it. */
static void hs_free(void *p, size_t n, bool defer)
{
	struct deferred *d;

	(void)n;
	if (!defer || hs_thread == NULL) {
		free(p);
		return;
	}
	d = malloc(sizeof(*d));
	if (d == NULL)
		abort();
	d->p = p;
	ck_epoch_call(hs_thread->r, &d->e, deferred_free);
}

static struct ck_malloc hs_alloc = { .malloc = hs_malloc, .free = hs_free };

static void map_create(void)
{
	if (!ck_hs_init(&hs, CK_HS_MODE_SPMC | CK_HS_MODE_OBJECT, hs_hash, hs_compare, &hs_alloc, 8,
			0))
		abort();
}

static void map_destroy(rc_thread *t)
{
	ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
	void *o;

	(void)t;
	while (ck_hs_next(&hs, &it, &o))
		free(o);
	ck_hs_destroy(&hs);
}

static inline bool map_lookup(rc_thread *t, uint64_t key)
{
	struct uobj probe = { .key = key };
	struct uobj *o = ck_hs_get(&hs, CK_HS_HASH(&hs, hs_hash, &probe), &probe);

	(void)t;
	return o != NULL && o->value == key;
}

static inline void map_insert(rc_thread *t, uint64_t key)
{
	struct uobj *o = malloc(sizeof(*o));
	bool added;

	if (o == NULL)
		abort();
	o->key = o->value = key;
	pthread_mutex_lock(&hs_lock);
	hs_thread = t;
	added = ck_hs_put_unique(&hs, CK_HS_HASH(&hs, hs_hash, o), o);
	pthread_mutex_unlock(&hs_lock);
	if (!added)
		free(o); /* present (or no memory): never published */
}

static inline void map_remove(rc_thread *t, uint64_t key)
{
	struct uobj probe = { .key = key }, *o;

	pthread_mutex_lock(&hs_lock);
	o = ck_hs_remove(&hs, CK_HS_HASH(&hs, hs_hash, &probe), &probe);
	pthread_mutex_unlock(&hs_lock);
	if (o != NULL)
		rc_retire(t, &o->h);
}

static uint64_t map_size(void)
{
	return ck_hs_count(&hs);
}
#endif

/* The harness counts retires and frees: the pending objects and bytes. */
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
	return bench_peak() * sizeof(struct uobj);
}

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

/* ---- Growth (hashmap-grow) ------------------------------------------------ */

struct grower {
	uint64_t keys;
	unsigned id, threads;
};

/* Thread id adds keys id, id + threads, ... below keys, one operation
 * between two quiescent states as above. */
static void *grow_thread(void *arg)
{
	const struct grower *g = arg;
	rc_thread t;

	rc_thread_init(&t, dom);
	for (uint64_t k = g->id; k < g->keys; k += g->threads) {
		rc_read_begin(&t);
		map_insert(&t, k);
		rc_read_end(&t);
		rc_quiescent(&t);
	}
	rc_thread_fini(&t);
	return NULL;
}

/* Grows an empty map to keys entries with threads threads (at most 64);
 * returns the seconds it took and the entries counted after.  The map is
 * left for the process's exit. */
double RC_SYM(wl_hashmap_grow)(uint64_t keys, unsigned threads, uint64_t *entries)
{
	struct grower g[64];
	pthread_t th[64];
	struct timespec a, b;
	rc_thread t;

	dom = rc_domain_new();
	map_create();
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (unsigned i = 0; i < threads; i++) {
		g[i] = (struct grower){ keys, i, threads };
		if (pthread_create(&th[i], NULL, grow_thread, &g[i]) != 0)
			abort();
	}
	for (unsigned i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	rc_thread_init(&t, dom); /* lfht counts from a registered reader */
	rc_read_begin(&t);
	*entries = map_size();
	rc_read_end(&t);
	rc_thread_fini(&t);
	return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
}
