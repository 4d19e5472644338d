/* SPDX-License-Identifier: MIT */
/*
 * Stress test of the intrusive calls of qsbr/hashmap.h, with the map set to
 * shrink (load 1), so that it grows and shrinks during the run.
 *
 * Keys 0..K-1; key k belongs to thread k mod N, which alone adds, replaces
 * and removes it, and so knows at every moment which node holds it (or that
 * none does).  Every object carries its key, a version and a magic word
 * that its retire callback overwrites before freeing it.  Each thread runs
 * a random mix: lookups of any key, updates of its own keys (add_unique,
 * add_replace, replace, remove_match with a stale version then the right
 * one, del), and now and then a walk of the whole map; its target of own
 * keys present moves between 2% and 98% so that the map fills and empties.
 * Checked during the run:
 *   - an update of an own key returns exactly what the thread's record says
 *     (the node present, the node replaced, NULL, ENOENT);
 *   - a lookup of an own key finds exactly the recorded node; of any key, a
 *     node that holds that key and is not freed (magic);
 *   - a walk returns every own key present (present for the whole walk:
 *     only this thread changes it) exactly once, and nodes that are not
 *     freed, of keys below K, a key again only at a newer version (a
 *     replace puts the new node after the old one): never a node twice;
 * and at the end: each own key's node is found, the size equals the keys
 * present, and a walk returns them all once.
 *
 * --grow G: instead, N threads add G keys together (G / N each, distinct)
 * to an empty map of 8 buckets, then check that every key is found once,
 * the size, and that the map grew to its load (the growth test of 4M keys:
 * --grow 4194304).
 *
 * Usage: stress_hashmap_nodes [--threads N] [--seconds S] [--seed X]
 *                             [--keys K] [--grow G]
 */
#include <qsbr/hashmap.h>

#include "hashmap_obj.h"
#include "stress_common.h"

struct worker {
	struct stress_thread st;
	unsigned id;
	struct obj **mine; /* [K]: the node holding own key k, or NULL */
	uint64_t present, target, version;
	uint64_t walks, replaced, found;
};

static qsbr_domain *dom;
static qsbr_hashmap *map;
static uint64_t nkeys;
static unsigned nthreads;
static atomic_ulong freed;
static atomic_size_t buckets_min = SIZE_MAX, buckets_max;

static struct obj *obj_new(uint64_t key, uint64_t version)
{
	struct obj *o = malloc(sizeof(*o));

	if (o == NULL) {
		perror("malloc");
		exit(1);
	}
	o->key = key;
	o->version = version;
	atomic_store_explicit(&o->magic, OBJ_ALIVE, memory_order_relaxed);
	return o;
}

/* The retire callback: marks the object, then frees it. */
static void obj_free(qsbr_node *qn)
{
	struct obj *o = obj_of_retire(qn);

	atomic_store_explicit(&o->magic, OBJ_DEAD, memory_order_relaxed);
	free(o);
	atomic_fetch_add_explicit(&freed, 1, memory_order_relaxed);
}

static void check_alive(const qsbr_hashmap_node *n, const char *what)
{
	uint64_t magic = atomic_load_explicit(&obj_of(n)->magic, memory_order_relaxed);

	CHECK(magic == OBJ_ALIVE, "%s returned a node whose magic is %#" PRIx64, what, magic);
}

static void retire(struct worker *w, struct obj *o)
{
	qsbr_retire_node(w->st.t, &o->node.retire, obj_free);
}

/* An update of own key k. */
static void update(struct worker *w, uint64_t k)
{
	qsbr_thread *t = w->st.t;
	struct obj *cur = w->mine[k];
	uint64_t r = stress_rand(&w->st.rng) % 8;

	if (cur == NULL || (w->present < w->target && r < 4)) {
		struct obj *o = obj_new(k, ++w->version);
		qsbr_hashmap_node *got;

		if (r % 2 == 0) {
			got = qsbr_hashmap_add_unique(map, t, hash_of(k), match_key, &k, &o->node);
			CHECK(got == (cur != NULL ? &cur->node : &o->node), "add_unique of key %" PRIu64
			      " returned %p, record %p", k, (void *)got, (void *)cur);
			if (got != &o->node) {
				free(o); /* never published */
				return;
			}
		} else {
			got = qsbr_hashmap_add_replace(map, t, hash_of(k), match_key, &k, &o->node);
			CHECK(got == (cur != NULL ? &cur->node : NULL), "add_replace of key %" PRIu64
			      " returned %p, record %p", k, (void *)got, (void *)cur);
			if (cur != NULL) {
				retire(w, cur);
				w->replaced++;
			}
		}
		w->present += cur == NULL;
		w->mine[k] = o;
	} else if (r < 6) {
		struct obj *o = obj_new(k, ++w->version);
		qsbr_hashmap_node *got = qsbr_hashmap_replace(map, t, hash_of(k), match_key, &k, &o->node);

		CHECK(got == &cur->node, "replace of key %" PRIu64 " returned %p, record %p", k,
		      (void *)got, (void *)cur);
		retire(w, cur);
		w->mine[k] = o;
		w->replaced++;
	} else {
		if (r == 6) {
			struct kv stale = { k, cur->version - 1 }, right = { k, cur->version };

			CHECK(qsbr_hashmap_remove_match(map, t, hash_of(k), match_version, &stale) == NULL,
			      "remove_match of a stale version of key %" PRIu64 " removed it", k);
			CHECK(qsbr_hashmap_remove_match(map, t, hash_of(k), match_version, &right) ==
				      &cur->node,
			      "remove_match of key %" PRIu64 " did not return its node", k);
		} else {
			CHECK(qsbr_hashmap_del(map, t, &cur->node) == 0, "del of key %" PRIu64 " failed", k);
			CHECK(qsbr_hashmap_del(map, t, &cur->node) == ENOENT,
			      "second del of key %" PRIu64 " did not fail", k);
		}
		retire(w, cur);
		w->mine[k] = NULL;
		w->present--;
	}
}

static void lookup(struct worker *w, uint64_t k)
{
	qsbr_hashmap_node *n = qsbr_hashmap_find(map, w->st.t, hash_of(k), match_key, &k);

	if (k % nthreads == w->id)
		CHECK(n == (w->mine[k] != NULL ? &w->mine[k]->node : NULL),
		      "find of own key %" PRIu64 " returned %p, record %p", k, (void *)n,
		      (void *)w->mine[k]);
	if (n != NULL) {
		check_alive(n, "find");
		CHECK(obj_of(n)->key == k, "find of key %" PRIu64 " returned key %" PRIu64, k,
		      obj_of(n)->key);
		w->found++;
	}
}

/* The range of bucket counts seen, for the closing line. */
static void note_buckets(void)
{
	size_t b = qsbr_hashmap_buckets(map), old = atomic_load(&buckets_min);

	while (b < old && !atomic_compare_exchange_weak(&buckets_min, &old, b))
		;
	old = atomic_load(&buckets_max);
	while (b > old && !atomic_compare_exchange_weak(&buckets_max, &old, b))
		;
}

/* A walk of the whole map (seen: K counters, zeroed here). */
static void walk(struct worker *w, uint8_t *seen, uint64_t *last)
{
	uint64_t own = 0;

	memset(seen, 0, nkeys);
	for (qsbr_hashmap_node *n = qsbr_hashmap_first(map, w->st.t); n != NULL;
	     n = qsbr_hashmap_next(map, w->st.t, n)) {
		uint64_t k = obj_of(n)->key;

		check_alive(n, "a walk");
		if (k >= nkeys) {
			stress_fail("a walk returned key %" PRIu64, k);
			continue;
		}
		/* A replace puts the new node after the old one: a walk on
		 * the old one goes on to it.  So a key may come again, but
		 * only as a newer version: never the same node twice. */
		CHECK(seen[k] == 0 || obj_of(n)->version > last[k], "a walk returned key %" PRIu64
		      " at version %" PRIu64 " after version %" PRIu64, k, obj_of(n)->version, last[k]);
		seen[k] += seen[k] < 255;
		last[k] = obj_of(n)->version;
	}
	for (uint64_t k = w->id; k < nkeys; k += nthreads) {
		CHECK(seen[k] == (w->mine[k] != NULL), "a walk returned own key %" PRIu64
		      " %u times, record %d", k, seen[k], w->mine[k] != NULL);
		own += seen[k];
	}
	CHECK(own == w->present, "a walk saw %" PRIu64 " own keys, %" PRIu64 " present", own, w->present);
	w->walks++;
	note_buckets();
}

static void *run(void *arg)
{
	struct worker *w = arg;
	uint8_t *seen = malloc(nkeys);
	uint64_t *last = malloc(nkeys * sizeof(*last));
	uint64_t own = (nkeys + nthreads - 1 - w->id) / nthreads;

	if (seen == NULL || last == NULL) {
		perror("malloc");
		exit(1);
	}
	stress_thread_init(&w->st, dom, w->st.rng);
	w->target = own / 2;
	while (stress_running()) {
		uint64_t r = stress_rand(&w->st.rng);

		if (r % 20000 == 0) /* fill or empty toward a new target */
			w->target = (r >> 32) % 2 ? own / 50 : own - own / 50;
		if (r % 1000 == 1 && nkeys <= 65536) {
			walk(w, seen, last);
		} else if (r % 100 < 40) {
			lookup(w, (r >> 16) % nkeys);
		} else {
			uint64_t k = (r >> 16) % own * nthreads + w->id;

			if (w->present > w->target && w->mine[k] == NULL) /* emptying: remove */
				for (uint64_t i = 0; i < own && w->mine[k] == NULL; i++)
					k = (k + nthreads) % (own * nthreads);
			update(w, k);
		}
		stress_after_op(&w->st);
	}
	walk(w, seen, last);
	free(seen);
	free(last);
	stress_thread_fini(&w->st);
	return NULL;
}

/* --grow: thread i adds keys i, i + N, i + 2N, ... below G, from objects
 * of its own array. */
struct grower {
	struct stress_thread st;
	unsigned id;
	uint64_t count;
	struct obj *objs;
};

static void *grow(void *arg)
{
	struct grower *g = arg;

	stress_thread_init(&g->st, dom, g->id + 1);
	for (uint64_t k = g->id, i = 0; k < g->count; k += nthreads, i++) {
		struct obj *o = &g->objs[i];

		o->key = k;
		atomic_store_explicit(&o->magic, OBJ_ALIVE, memory_order_relaxed);
		CHECK(qsbr_hashmap_add_unique(map, g->st.t, hash_of(k), match_key, &k, &o->node) ==
			      &o->node,
		      "add_unique of new key %" PRIu64 " failed", k);
		if ((i & 255) == 0)
			qsbr_quiescent(g->st.t);
	}
	stress_thread_fini(&g->st);
	return NULL;
}

/* The end of either mode: main's handle, the map (each entry left to fn),
 * the domain. */
static void teardown(struct stress_thread *st, void (*fn)(qsbr_hashmap_node *n, void *arg))
{
	stress_thread_fini(st);
	qsbr_hashmap_delete_nodes(map, fn, NULL);
	if (qsbr_domain_delete(dom) != 0)
		stress_fail("qsbr_domain_delete failed");
}

static int grow_main(const struct stress_cfg *c, uint64_t count)
{
	static struct grower g[MAX_THREADS];
	pthread_t th[MAX_THREADS];
	struct stress_thread st;
	uint64_t seen = 0;
	size_t size, buckets;
	char summary[200];

	for (unsigned i = 0; i < nthreads; i++) {
		g[i].id = i;
		g[i].count = count;
		g[i].objs = calloc(count / nthreads + 1, sizeof(struct obj));
		if (g[i].objs == NULL) {
			perror("calloc");
			return 2;
		}
	}
	for (unsigned i = 0; i < nthreads; i++)
		if (pthread_create(&th[i], NULL, grow, &g[i]) != 0) {
			perror("pthread_create");
			return 2;
		}
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	stress_thread_init(&st, dom, 1);
	for (uint64_t k = 0; k < count; k++) {
		qsbr_hashmap_node *n = qsbr_hashmap_find(map, st.t, hash_of(k), match_key, &k);

		CHECK(n == &g[k % nthreads].objs[k / nthreads].node, "key %" PRIu64 " not found", k);
		if (k % 4096 == 0)
			qsbr_quiescent(st.t);
	}
	for (qsbr_hashmap_node *n = qsbr_hashmap_first(map, st.t); n != NULL; n = qsbr_hashmap_next(map, st.t, n))
		seen++;
	size = qsbr_hashmap_size(map);
	buckets = qsbr_hashmap_buckets(map);
	CHECK(seen == count, "a walk returned %" PRIu64 " entries of %" PRIu64, seen, count);
	CHECK(size == count, "size %zu after %" PRIu64 " adds", size, count);
	CHECK(buckets * 2 * 2 >= count, "%zu buckets for %" PRIu64 " entries at load 2", buckets, count);
	snprintf(summary, sizeof(summary), "grow=%" PRIu64 " buckets=%zu memory=%zu", count, buckets,
		 qsbr_hashmap_memory(map));
	teardown(&st, NULL); /* the objects are in the arrays */
	for (unsigned i = 0; i < nthreads; i++)
		free(g[i].objs);
	return stress_finish(c, summary);
}

static void free_left(qsbr_hashmap_node *n, void *arg)
{
	(void)arg;
	free(obj_of(n));
}

int main(int argc, char **argv)
{
	struct stress_cfg c = { "ds-stress-hashmap-nodes", 4, 2.0, 0x5eed };
	static struct worker w[MAX_THREADS];
	struct stress_thread st;
	uint64_t grow_keys = 0, present = 0, ops = 0, walks = 0, replaced = 0;
	uint8_t *seen;
	size_t size;
	char summary[300];

	nkeys = 4096;
	for (int i = 1; i < argc; i++) {
		int rc = stress_common_arg(&c, argc, argv, &i);

		if (rc == -1 && (strcmp(argv[i], "--keys") == 0 || strcmp(argv[i], "--grow") == 0) &&
		    i + 1 < argc) {
			uint64_t v = strtoull(argv[i + 1], NULL, 0);

			if (strcmp(argv[i], "--keys") == 0)
				nkeys = v;
			else
				grow_keys = v;
			i++;
			rc = 1;
		}
		if (rc != 1) {
			fprintf(stderr, "usage: %s [--threads N] [--seconds S] [--seed X] [--keys K] [--grow G]\n",
				argv[0]);
			return 2;
		}
	}
	nthreads = c.threads;
	if (nkeys < nthreads || nkeys > (UINT64_C(1) << 26) || grow_keys > (UINT64_C(1) << 30)) {
		fprintf(stderr, "%s: --keys between the threads and 2^26, --grow at most 2^30\n", c.name);
		return 2;
	}
	dom = qsbr_domain_new(NULL);
	map = dom != NULL ? qsbr_hashmap_new_intrusive(dom, 0) : NULL;
	if (map == NULL) {
		perror("setup");
		return 2;
	}
	if (grow_keys != 0)
		return grow_main(&c, grow_keys);
	qsbr_hashmap_resize_policy(map, 1, 0, 0, true);
	seen = malloc(nkeys);
	if (seen == NULL) {
		perror("malloc");
		return 2;
	}
	for (unsigned i = 0; i < nthreads; i++) {
		w[i].id = i;
		w[i].st.rng = c.seed * 0x9e3779b97f4a7c15u + i + 1;
		w[i].mine = calloc(nkeys, sizeof(*w[i].mine));
		if (w[i].mine == NULL) {
			perror("calloc");
			return 2;
		}
	}
	stress_run(&c, run, w, sizeof(w[0]));

	/* Every update is done: the records are the truth. */
	stress_thread_init(&st, dom, 1);
	for (uint64_t k = 0; k < nkeys; k++) {
		qsbr_hashmap_node *n = qsbr_hashmap_find(map, st.t, hash_of(k), match_key, &k);
		struct obj *want = w[k % nthreads].mine[k];

		CHECK(n == (want != NULL ? &want->node : NULL), "key %" PRIu64 " finds %p, record %p", k,
		      (void *)n, (void *)want);
		present += want != NULL;
	}
	memset(seen, 0, nkeys);
	for (qsbr_hashmap_node *n = qsbr_hashmap_first(map, st.t); n != NULL; n = qsbr_hashmap_next(map, st.t, n))
		if (obj_of(n)->key < nkeys)
			CHECK(++seen[obj_of(n)->key] == 1, "the last walk returned key %" PRIu64 " twice",
			      obj_of(n)->key);
	size = qsbr_hashmap_size(map);
	CHECK(size == present, "size %zu, but %" PRIu64 " keys present", size, present);
	for (unsigned i = 0; i < nthreads; i++) {
		ops += w[i].st.ops;
		walks += w[i].walks;
		replaced += w[i].replaced;
	}
	snprintf(summary, sizeof(summary),
		 "keys=%" PRIu64 " ops=%" PRIu64 " walks=%" PRIu64 " replaced=%" PRIu64 " present=%" PRIu64
		 " buckets=%zu (seen %zu..%zu) freed=%lu", nkeys, ops, walks, replaced, present,
		 qsbr_hashmap_buckets(map), atomic_load(&buckets_min), atomic_load(&buckets_max),
		 (unsigned long)atomic_load(&freed));
	teardown(&st, free_left);
	for (unsigned i = 0; i < nthreads; i++)
		free(w[i].mine);
	free(seen);
	return stress_finish(&c, summary);
}
