/* SPDX-License-Identifier: MIT */
/*
 * Grace-period detection cost against registry size, with R registered
 * handles of which O are online; the other R - O are held, detached, by the
 * measuring thread (a thread may hold several handles in a domain).
 *
 * scan (default): the cost of the poll that finds a goal reached, after an
 *   advance and once every online thread has reported: a full scan.  O - 1
 *   online handles belong to reporter threads calling qsbr_quiescent, so the
 *   lines a scan reads were just written by other cores, as in real use; the
 *   measuring thread's own handle is the O-th.  Each sample times one poll.
 * --miss: the cost of a poll that fails because an online thread (one of the
 *   measuring thread's, never reporting) is behind.  Samples time runs of
 *   1000 polls.
 *
 * Usage: scaling [--miss] [--reps N] [--max-registered N] [--max-online N]
 * Prints: registered, online, median ns per poll.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qsbr.h>

#include "harness.h" /* clocks, median */

#define POLLS 1000 /* polls per sample */

static bool miss;

struct reporter {
	pthread_t th;
	qsbr_domain *d;
	atomic_int *stop;
	atomic_int ready;
};

static void *report(void *arg)
{
	struct reporter *r = arg;
	qsbr_thread *t = qsbr_register(r->d);
	unsigned n = 0;

	atomic_store_explicit(&r->ready, 1, memory_order_release);
	while (!atomic_load_explicit(r->stop, memory_order_relaxed)) {
		qsbr_quiescent(t);
		if ((++n & 1023) == 0)
			sched_yield();
	}
	qsbr_unregister(t);
	return NULL;
}

/* Median ns per poll with `reg` handles, `online` of them online. */
static double measure(int reg, int online, int reps, double *samples)
{
	qsbr_domain *d = qsbr_domain_new(NULL);
	int nrep = online - 1, own = reg - nrep;
	qsbr_thread **h = malloc((size_t)own * sizeof(*h));
	struct reporter *rep = calloc((size_t)nrep + 1, sizeof(*rep));
	atomic_int stop = 0;

	if (d == NULL || h == NULL || rep == NULL) {
		fprintf(stderr, "scaling: out of memory\n");
		exit(1);
	}
	/* Spread the online handles over the registry; ours is the last. */
	for (int i = 0, r = 0, k = 0; i < reg; i++) {
		bool on = (long)i * online / reg != (long)(i + 1) * online / reg;

		if (on && r < nrep) {
			rep[r].d = d;
			rep[r].stop = &stop;
			pthread_create(&rep[r].th, NULL, report, &rep[r]);
			while (!atomic_load_explicit(&rep[r].ready, memory_order_acquire))
				sched_yield();
			r++;
			continue;
		}
		h[k] = qsbr_register(d);
		if (h[k] == NULL) {
			fprintf(stderr, "scaling: register failed\n");
			exit(1);
		}
		if (!on)
			qsbr_detach(h[k]);
		k++;
	}
	for (int r = 0; r < reps; r++) {
		qsbr_seq goal = qsbr_advance(d);

		if (miss) {
			/* Our online handle does not report: every poll fails. */
			uint64_t t0 = bench_now_ns();

			for (int k = 0; k < POLLS; k++)
				if (qsbr_poll(h[own - 1], goal))
					exit(1);
			samples[r] = (double)(bench_now_ns() - t0) / POLLS;
			continue;
		}
		qsbr_quiescent(h[own - 1]);
		for (;;) {
			uint64_t t0 = bench_now_ns();
			bool ok = qsbr_poll(h[own - 1], goal);

			samples[r] = (double)(bench_now_ns() - t0);
			if (ok)
				break;
			sched_yield();
		}
	}
	atomic_store(&stop, 1);
	for (int r = 0; r < nrep; r++)
		pthread_join(rep[r].th, NULL);
	for (int i = 0; i < own; i++) {
		qsbr_attach(h[i]);
		qsbr_unregister(h[i]);
	}
	free(h);
	free(rep);
	qsbr_domain_delete(d);
	return bench_median(samples, (size_t)reps);
}

int main(int argc, char **argv)
{
	int reps = 501, max_reg = 16384, max_online = 256;
	double *samples;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--miss"))
			miss = true;
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--max-registered") && i + 1 < argc)
			max_reg = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--max-online") && i + 1 < argc)
			max_online = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: %s [--miss] [--reps N] [--max-registered N] [--max-online N]\n",
				argv[0]);
			return 2;
		}
	}
	if (reps < 1 || max_reg < 1 || max_online < 1) {
		fprintf(stderr, "scaling: arguments must be positive\n");
		return 2;
	}
	samples = malloc((size_t)reps * sizeof(*samples));
	if (samples == NULL)
		return 1;
	printf("libqsbr %s: ns per %s (median of %d)\n", qsbr_version(),
	       miss ? "failing poll, one online thread behind" : "poll that scans and succeeds", reps);
	printf("%10s %8s %10s\n", "registered", "online", "ns/poll");
	for (int online = 1; online <= max_online; online *= 4)
		for (int reg = online; reg <= max_reg; reg *= 4)
			printf("%10d %8d %10.1f\n", reg, online, measure(reg, online, reps, samples));
	free(samples);
	return 0;
}
