/* SPDX-License-Identifier: MIT */
/*
 * Fast-path costs: qsbr_quiescent when the write sequence has not moved and
 * while another thread keeps advancing it, and qsbr_retire_node (the
 * thread-local push, then with amortized reclamation), and a retire by an
 * offline thread against the attach + retire + detach it replaces.  Median
 * of repetitions, in ns per call.  Built twice (fastpath, fastpath-ndebug):
 * the inline path must cost the same whatever the consumer's NDEBUG.
 *
 * Usage: fastpath [--reps N] [--iters N]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <qsbr.h>

#include "harness.h" /* clocks, median */

static int reps = 7;
static long iters = 20000000;

static double time_quiescent(qsbr_thread *t)
{
	uint64_t t0 = bench_now_ns();

	for (long i = 0; i < iters; i++)
		qsbr_quiescent(t);
	return (double)(bench_now_ns() - t0) / (double)iters;
}

static atomic_bool stop;

static void *advancer(void *arg)
{
	qsbr_domain *d = arg;
	struct timespec ts = { 0, 10000 }; /* 10 us between advances */

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		qsbr_advance(d);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void noop(qsbr_node *n)
{
	(void)n;
}

enum retire_how { ONLINE, OFFLINE, ATTACH_DETACH };

/* ns per retire: rounds of `count` cache-resident nodes in one domain;
 * between rounds (not timed) a barrier frees every node, so the next round
 * can retire them again. */
static double time_retire(const qsbr_options *o, qsbr_node *nodes, long count, enum retire_how how)
{
	uint64_t total = 0;
	long rounds = iters / 4 / count + 1;
	qsbr_domain *d = qsbr_domain_new(o);
	qsbr_thread *t = qsbr_register(d);

	if (how != ONLINE)
		qsbr_detach(t);
	for (long r = 0; r < rounds; r++) {
		uint64_t t0 = bench_now_ns();

		for (long i = 0; i < count; i++) {
			if (how == ATTACH_DETACH)
				qsbr_attach(t);
			qsbr_retire_node(t, &nodes[i], noop);
			if (how == ATTACH_DETACH)
				qsbr_detach(t);
			else if (how == ONLINE && (i & 63) == 0)
				qsbr_quiescent(t);
		}
		total += bench_now_ns() - t0;
		qsbr_barrier_domain(d);
	}
	qsbr_unregister(t);
	qsbr_domain_delete(d);
	return (double)total / (double)(rounds * count);
}

static void report(const char *name, double *v)
{
	printf("%-48s %8.3f ns/op  (median of %d)\n", name, bench_median(v, (size_t)reps), reps);
}

int main(int argc, char **argv)
{
	double v[64];
	qsbr_options o;
	qsbr_domain *d;
	qsbr_thread *t;
	qsbr_node *nodes;
	long nretire;
	pthread_t th;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
			iters = atol(argv[++i]);
		else {
			fprintf(stderr, "usage: %s [--reps N] [--iters N]\n", argv[0]);
			return 2;
		}
	}
	if (reps < 1 || reps > 64 || iters < 1) {
		fprintf(stderr, "fastpath: --reps 1..64, --iters >= 1\n");
		return 2;
	}
#ifdef NDEBUG
	printf("libqsbr %s fast paths, consumer built with NDEBUG\n", qsbr_version());
#else
	printf("libqsbr %s fast paths, consumer built without NDEBUG\n", qsbr_version());
#endif

	d = qsbr_domain_new(NULL);
	t = qsbr_register(d);
	for (int r = 0; r < reps; r++)
		v[r] = time_quiescent(t);
	report("quiescent, wr_seq unchanged", v);

	atomic_store(&stop, false);
	pthread_create(&th, NULL, advancer, d);
	for (int r = 0; r < reps; r++)
		v[r] = time_quiescent(t);
	atomic_store(&stop, true);
	pthread_join(th, NULL);
	report("quiescent, another thread advancing every 10us", v);
	qsbr_unregister(t);
	qsbr_domain_delete(d);

	/* Retire: 64K nodes (1 MiB) stay in cache across rounds. */
	nretire = 65536;
	nodes = calloc((size_t)nretire, sizeof(*nodes));
	if (nodes == NULL)
		return 1;
	/* No helper thread: the push itself, not a thread start per round. */
	qsbr_options_init(&o);
	o.batch_size = 4096;
	o.deferred_count = UINT32_MAX;
	o.deferred_bytes = 0;
	o.background = QSBR_BACKGROUND_OFF;
	for (int r = 0; r < reps; r++)
		v[r] = time_retire(&o, nodes, nretire, ONLINE);
	report("retire_node, push path (batch 4096)", v);
	for (int r = 0; r < reps; r++)
		v[r] = time_retire(NULL, nodes, nretire, ONLINE);
	report("retire_node + amortized reclaim (defaults)", v);
	/* Offline: each retire hands over at once; smaller rounds. */
	nretire = 4096;
	for (int r = 0; r < reps; r++)
		v[r] = time_retire(NULL, nodes, nretire, OFFLINE);
	report("retire_node while offline (defaults)", v);
	for (int r = 0; r < reps; r++)
		v[r] = time_retire(NULL, nodes, nretire, ATTACH_DETACH);
	report("attach + retire_node + detach (defaults)", v);
	free(nodes);
	return 0;
}
