/* SPDX-License-Identifier: MIT */
/*
 * demo: threads on libqsbr's lock-free hash map (qsbr/hashmap.h), which
 * grows while they use it.
 *
 * The map starts empty, with 8 buckets, over keys 0..2^20-1.  Updater threads
 * look up, insert and remove random keys (50/25/25); reader threads only look
 * up.  Each value is a small object holding its key: a reader checks that key,
 * so it dereferences what it found while updaters remove and retire it.  A
 * removed entry is retired, not freed: its node by the map, its object by the
 * remover (qsbr_retire_node_sized), and libqsbr frees both once every thread
 * has passed a quiescent state (here: between two operations, when it holds
 * nothing).  The map doubles its buckets as it fills, without stopping or
 * slowing the readers.  Every half second the main thread prints throughput,
 * the entries and buckets, and the memory held: the map and its objects, and
 * what waits for a grace period.
 *
 * Usage: demo [--threads N] [--seconds S]
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <qsbr.h>
#include <qsbr/hashmap.h>

#define MAX_THREADS 256
#define KEYS (UINT64_C(1) << 20)
#define TICK_NS 500000000L /* report every 0.5 s */

struct item {
	qsbr_node qn; /* retire header */
	uint64_t key; /* what a reader checks */
	uint64_t payload;
};

struct worker {
	pthread_t tid;
	bool reader;
	uint64_t rng;
	_Atomic uint64_t ops; /* written by the worker, sampled by main */
	uint64_t sum, bad;    /* reads seen, and reads that found a wrong key */
};

static qsbr_domain *dom;
static qsbr_hashmap *map;
static atomic_bool stop;

static uint64_t next_rand(uint64_t *s)
{
	*s = *s * 6364136223846793005u + 1442695040888963407u; /* LCG */
	return *s >> 11;
}

static void item_free(qsbr_node *qn)
{
	free((char *)qn - offsetof(struct item, qn));
}

static void lookup_once(struct worker *w, qsbr_thread *t, uint64_t key)
{
	void *v;

	if (qsbr_hashmap_lookup(map, t, key, &v) == 0) {
		const struct item *it = v; /* valid until our next quiescent state */

		w->bad += it->key != key;
		w->sum += it->payload;
	}
}

static void update_once(struct worker *w, qsbr_thread *t, uint64_t r)
{
	uint64_t key = r % KEYS;
	unsigned pct = (unsigned)((r >> 40) % 100);
	void *v;

	if (pct < 50) {
		lookup_once(w, t, key);
	} else if (pct < 75) {
		struct item *it = malloc(sizeof(*it));

		if (it == NULL)
			return;
		it->key = key;
		it->payload = r;
		if (qsbr_hashmap_insert(map, t, key, it) != 0)
			free(it); /* present already (or no memory): never published */
	} else if (qsbr_hashmap_remove(map, t, key, &v) == 0) {
		/* Unlinked, but readers may still hold it: retire, do not free. */
		struct item *it = v;

		qsbr_retire_node_sized(t, &it->qn, item_free, sizeof(*it));
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	qsbr_thread *t = qsbr_register(dom);
	uint64_t ops = 0;

	if (t == NULL) {
		perror("demo: qsbr_register");
		exit(1);
	}
	/* Relaxed: the flag carries no data; results are read after the join. */
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		uint64_t r = next_rand(&w->rng);

		if (w->reader)
			lookup_once(w, t, r % KEYS);
		else
			update_once(w, t, r);
		/* Only this thread writes ops; main samples it. */
		atomic_store_explicit(&w->ops, ++ops, memory_order_relaxed);
		qsbr_quiescent(t); /* between operations we hold nothing */
	}
	qsbr_unregister(t); /* what we still hold is freed by others, or at delete */
	return NULL;
}

static struct worker ws[MAX_THREADS];
static unsigned nthreads = 4, seconds = 3;
static struct timespec start;

static double elapsed(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) * 1e-9;
}

static uint64_t total_ops(void)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < nthreads; i++)
		sum += atomic_load_explicit(&ws[i].ops, memory_order_relaxed);
	return sum;
}

/* The map's own bytes and its entries' objects. */
static uint64_t map_bytes(void)
{
	return qsbr_hashmap_memory(map) + qsbr_hashmap_size(map) * sizeof(struct item);
}

/* Prints a line every TICK_NS until the time is up; tracks the peaks. */
static void monitor(uint64_t *peak_held, uint64_t *peak_pending)
{
	struct timespec tick = start;
	uint64_t last_ops = 0;
	double last_t = 0;

	printf("%6s %14s %10s %10s %14s %14s\n", "time", "ops/s", "entries", "buckets",
	       "map bytes", "pending bytes");
	for (unsigned k = 0; k < seconds * 2; k++) {
		uint64_t ops, held;
		qsbr_stats s;
		double t;

		tick.tv_nsec += TICK_NS;
		tick.tv_sec += tick.tv_nsec / 1000000000L;
		tick.tv_nsec %= 1000000000L;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &tick, NULL) == EINTR)
			;
		t = elapsed();
		ops = total_ops();
		qsbr_stats_get(dom, &s);
		held = map_bytes();
		*peak_held = held + s.pending_bytes > *peak_held ? held + s.pending_bytes : *peak_held;
		*peak_pending = s.pending_bytes > *peak_pending ? s.pending_bytes : *peak_pending;
		printf("%5.1fs %14.0f %10zu %10zu %14" PRIu64 " %14" PRIu64 "\n", t,
		       (double)(ops - last_ops) / (t - last_t), qsbr_hashmap_size(map),
		       qsbr_hashmap_buckets(map), held, s.pending_bytes);
		fflush(stdout);
		last_ops = ops;
		last_t = t;
	}
}

static bool parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i += 2) {
		char *end = NULL;
		long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;

		if (end == NULL || end == argv[i + 1] || *end != '\0')
			return false;
		if (strcmp(argv[i], "--threads") == 0 && v >= 1 && v <= MAX_THREADS)
			nthreads = (unsigned)v;
		else if (strcmp(argv[i], "--seconds") == 0 && v >= 1 && v <= 3600)
			seconds = (unsigned)v;
		else
			return false;
	}
	return true;
}

static void free_item(uint64_t key, void *value, void *arg)
{
	(void)key;
	(void)arg;
	free(value);
}

int main(int argc, char **argv)
{
	uint64_t peak_held = 0, peak_pending = 0, bad = 0;
	size_t buckets0;
	unsigned readers;
	qsbr_stats s;
	double secs;

	if (!parse_args(argc, argv)) {
		fprintf(stderr, "usage: demo [--threads N] [--seconds S]\n");
		return 2;
	}
	readers = nthreads >= 2 ? (nthreads + 3) / 4 : 0;
	dom = qsbr_domain_new(NULL);
	map = dom != NULL ? qsbr_hashmap_new(dom, 0, NULL, NULL, NULL) : NULL;
	if (map == NULL) {
		perror("demo: creating the domain and the map");
		return 1;
	}
	buckets0 = qsbr_hashmap_buckets(map);
	printf("demo: libqsbr %s, hash map over %" PRIu64 " keys, threads: %u updating "
	       "(50/25/25 lookup/insert/remove), %u reading; %u s\n",
	       qsbr_version(), KEYS, nthreads - readers, readers, seconds);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (unsigned i = 0; i < nthreads; i++) {
		ws[i].reader = i < readers;
		ws[i].rng = 0x9e3779b97f4a7c15u * (i + 1);
		if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) != 0) {
			fprintf(stderr, "demo: pthread_create failed\n");
			return 1;
		}
	}
	monitor(&peak_held, &peak_pending);
	atomic_store_explicit(&stop, true, memory_order_relaxed);
	for (unsigned i = 0; i < nthreads; i++) {
		pthread_join(ws[i].tid, NULL);
		bad += ws[i].bad;
	}
	secs = elapsed();
	qsbr_stats_get(dom, &s);
	printf("total: %" PRIu64 " ops in %.1f s, %.0f ops/s; %zu entries, buckets %zu -> %zu; "
	       "peak memory held %" PRIu64 " bytes, peak waiting for a grace period %" PRIu64
	       " bytes; %" PRIu64 " grace periods\n",
	       total_ops(), secs, (double)total_ops() / secs, qsbr_hashmap_size(map), buckets0,
	       qsbr_hashmap_buckets(map), peak_held, peak_pending, s.advances);
	/* Every thread is gone: the entries left are ours to free. */
	if (qsbr_hashmap_delete(map, free_item, NULL) != 0 || qsbr_domain_delete(dom) != 0) {
		fprintf(stderr, "demo: deleting the map or the domain failed\n");
		return 1;
	}
	if (bad != 0) {
		fprintf(stderr, "demo: %" PRIu64 " lookups found an object with the wrong key\n", bad);
		return 1;
	}
	return 0;
}
