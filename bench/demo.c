/* SPDX-License-Identifier: MIT */
/*
 * demo: a lock-free Treiber stack whose nodes libqsbr reclaims.
 *
 * Updater threads push fresh nodes and pop nodes; reader threads walk the top
 * few nodes.  A popped node is retired, not freed: libqsbr frees it once every
 * thread has passed a quiescent state (here: between two operations, when it
 * holds no node).  So whoever still holds a popped node reads valid memory,
 * and the node's address cannot come back from malloc to fool a CAS (no use
 * after free, no ABA).  Every half second the main thread prints throughput
 * and the memory waiting for a grace period.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qsbr.h"

#define MAX_THREADS 256
#define INITIAL_NODES 1000
#define WALK_DEPTH 8
#define TICK_NS 500000000L /* report every 0.5 s */

struct node {
	qsbr_node qn;      /* retire header */
	struct node *next; /* fixed once the node is pushed */
	uint64_t value;
};

struct worker {
	pthread_t tid;
	bool reader;
	uint64_t rng;
	_Atomic uint64_t ops; /* written by the worker, sampled by main */
	uint64_t sum;         /* keeps a reader's walk from being optimised out */
};

static qsbr_domain *dom;
static _Atomic(struct node *) top;
static atomic_bool stop;

static void push(struct node *n)
{
	/* Acquire pairs with the push that stored old: whoever reaches old
	 * through n->next must see its fields. */
	struct node *old = atomic_load_explicit(&top, memory_order_acquire);

	do
		n->next = old;
	/* Release publishes n's fields to the acquire loads of top. */
	while (!atomic_compare_exchange_weak_explicit(&top, &old, n, memory_order_release,
						      memory_order_acquire));
}

/* The caller is online: the nodes it loads stay allocated until its next
 * quiescent state, so reading n->next is safe even if n was just popped.
 * Acquire pairs with the release CAS in push. */
static struct node *pop(void)
{
	struct node *n = atomic_load_explicit(&top, memory_order_acquire);

	/* acq_rel: the next loader of top sees the new top's fields too. */
	while (n != NULL && !atomic_compare_exchange_weak_explicit(&top, &n, n->next,
								   memory_order_acq_rel,
								   memory_order_acquire))
		;
	return n;
}

static void node_free(qsbr_node *qn)
{
	free(qn); /* qn is the first member of struct node */
}

static void update_once(struct worker *w, qsbr_thread *t)
{
	w->rng = w->rng * 6364136223846793005u + 1442695040888963407u; /* LCG */
	if (w->rng >> 63) {
		struct node *n = malloc(sizeof(*n));

		if (n == NULL)
			return;
		n->value = w->rng;
		push(n);
	} else {
		struct node *n = pop();

		/* Unlinked, but others may still hold it: retire, do not free. */
		if (n != NULL)
			qsbr_retire_node_sized(t, &n->qn, node_free, sizeof(*n));
	}
}

static void read_once(struct worker *w)
{
	const struct node *n = atomic_load_explicit(&top, memory_order_acquire);

	/* Acquire above pairs with push's release: the walked nodes are visible. */
	for (int i = 0; i < WALK_DEPTH && n != NULL; i++) {
		w->sum += n->value;
		n = n->next;
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
		if (w->reader)
			read_once(w);
		else
			update_once(w, t);
		/* Only this thread writes ops; main samples it. */
		atomic_store_explicit(&w->ops, ++ops, memory_order_relaxed);
		qsbr_quiescent(t); /* between operations we hold no node */
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

/* Prints a line every TICK_NS until the time is up; tracks the peaks. */
static void monitor(uint64_t *peak_objs, uint64_t *peak_bytes)
{
	struct timespec tick = start;
	uint64_t last_ops = 0;
	double last_t = 0;

	printf("%6s %14s %14s %14s\n", "time", "ops/s", "pending objs", "pending bytes");
	for (unsigned k = 0; k < seconds * 2; k++) {
		uint64_t ops;
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
		*peak_objs = s.pending > *peak_objs ? s.pending : *peak_objs;
		*peak_bytes = s.pending_bytes > *peak_bytes ? s.pending_bytes : *peak_bytes;
		printf("%5.1fs %14.0f %14" PRIu64 " %14" PRIu64 "\n", t,
		       (double)(ops - last_ops) / (t - last_t), s.pending, s.pending_bytes);
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

int main(int argc, char **argv)
{
	uint64_t peak_objs = 0, peak_bytes = 0;
	unsigned readers;
	qsbr_stats s;
	double secs;

	if (!parse_args(argc, argv)) {
		fprintf(stderr, "usage: demo [--threads N] [--seconds S]\n");
		return 2;
	}
	readers = nthreads >= 2 ? (nthreads + 3) / 4 : 0;
	dom = qsbr_domain_new(NULL);
	if (dom == NULL) {
		perror("demo: qsbr_domain_new");
		return 1;
	}
	for (int i = 0; i < INITIAL_NODES; i++) {
		struct node *n = calloc(1, sizeof(*n));

		if (n != NULL)
			push(n);
	}
	printf("demo: libqsbr %s, Treiber stack, threads: %u updating, %u reading; %u s\n",
	       qsbr_version(), nthreads - readers, readers, seconds);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (unsigned i = 0; i < nthreads; i++) {
		ws[i].reader = i < readers;
		ws[i].rng = 0x9e3779b97f4a7c15u * (i + 1);
		if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) != 0) {
			fprintf(stderr, "demo: pthread_create failed\n");
			return 1;
		}
	}
	monitor(&peak_objs, &peak_bytes);
	atomic_store_explicit(&stop, true, memory_order_relaxed);
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(ws[i].tid, NULL);
	secs = elapsed();
	qsbr_stats_get(dom, &s);
	/* Every thread is gone: what is left on the stack is ours to free. */
	for (struct node *n = atomic_load_explicit(&top, memory_order_relaxed), *next; n; n = next) {
		next = n->next;
		free(n);
	}
	/* Runs the callbacks still pending (handed over at unregister). */
	if (qsbr_domain_delete(dom) != 0) {
		fprintf(stderr, "demo: qsbr_domain_delete failed\n");
		return 1;
	}
	printf("total: %" PRIu64 " ops in %.1f s, %.0f ops/s; peak pending %" PRIu64
	       " objects, %" PRIu64 " bytes; %" PRIu64 " grace periods\n",
	       total_ops(), secs, (double)total_ops() / secs, peak_objs, peak_bytes, s.advances);
	return 0;
}
