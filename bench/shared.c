/* SPDX-License-Identifier: MIT */
/*
 * Shared domains (qsbr/shared.h) against process-local ones, one process:
 *
 *   quiescent    qsbr_quiescent when the write sequence has not moved, and
 *                while another thread keeps advancing it (ns per call);
 *   retire       retire + reclaim per object, rounds of 4096 objects:
 *                qsbr_retire_node in a local domain, qsbr_shared_retire by
 *                offset in a shared one (ns per object; repetitions of the
 *                two interleaved);
 *   recovery     a forked child registers online and waits; we SIGKILL it
 *                and time from the kill to the end of a grace period that
 *                it held back (qsbr_synchronize), over --kills kills.
 *
 * Medians of --reps repetitions.  Usage: shared [--reps N] [--kills N]
 */
#define _GNU_SOURCE /* memfd_create */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <qsbr.h>
#include <qsbr/shared.h>

#include "harness.h" /* clocks, median */

#define MAX_REPS 101
#define OBJECTS 4096
#define THREADS 64

static int reps = 7, kills = 100;
static long iters = 20000000;

struct obj {
	qsbr_node node;          /* for the local domain */
	qsbr_shared_node snode;  /* for the shared one */
	uint64_t payload;
};

static void local_free(qsbr_node *n)
{
	((struct obj *)(void *)n)->payload++;
}

/* arg: the region's base in this process. */
static void shared_free(qsbr_domain *d, uint64_t off, unsigned flags, void *arg)
{
	(void)d;
	(void)flags;
	((struct obj *)(void *)((char *)arg + off - offsetof(struct obj, snode)))->payload++;
}

/* A region of `size` bytes in a memfd, mapped here. */
static void *region(size_t size)
{
	int fd = memfd_create("qsbr-bench", 0);
	void *mem;

	if (fd < 0 || ftruncate(fd, (off_t)size) != 0)
		abort();
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (mem == MAP_FAILED)
		abort();
	return mem;
}

static qsbr_options quiet(void)
{
	qsbr_options o;

	qsbr_options_init(&o);
	o.background = QSBR_BACKGROUND_OFF;
	return o;
}

static atomic_bool stop;

static void *advancer(void *arg)
{
	struct timespec ts = { 0, 10000 };

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		qsbr_advance(arg);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* Medians of ns per qsbr_quiescent in the local and the shared domain,
 * repetitions interleaved; moving: another thread advances both. */
static void time_quiescent(qsbr_domain *local, qsbr_domain *shared, bool moving, double out[2])
{
	qsbr_domain *ds[2] = { local, shared };
	double v[2][MAX_REPS];
	qsbr_thread *t[2] = { qsbr_register(local), qsbr_register(shared) };
	pthread_t adv[2];

	for (int k = 0; moving && k < 2; k++) {
		atomic_store(&stop, false);
		pthread_create(&adv[k], NULL, advancer, ds[k]);
	}
	for (int r = 0; r < reps; r++) {
		for (int k = 0; k < 2; k++) {
			uint64_t t0 = bench_now_ns();

			for (long i = 0; i < iters; i++)
				qsbr_quiescent(t[k]);
			v[k][r] = (double)(bench_now_ns() - t0) / (double)iters;
		}
	}
	atomic_store(&stop, true);
	for (int k = 0; moving && k < 2; k++)
		pthread_join(adv[k], NULL);
	for (int k = 0; k < 2; k++) {
		qsbr_unregister(t[k]);
		out[k] = bench_median(v[k], (size_t)reps);
	}
}

/* ns per object, one repetition: retire OBJECTS objects, then reclaim
 * them, 200 rounds. */
static double retire_once(qsbr_thread *t, struct obj *objs, char *base)
{
	const int rounds = 200;
	uint64_t t0 = bench_now_ns();

	for (int k = 0; k < rounds; k++) {
		for (int i = 0; i < OBJECTS; i++) {
			if (base != NULL)
				qsbr_shared_retire(t, (uint64_t)((char *)&objs[i].snode - base), 1);
			else
				qsbr_retire_node(t, &objs[i].node, local_free);
		}
		qsbr_quiescent(t);
		qsbr_reclaim(t);
	}
	qsbr_barrier(t);
	return (double)(bench_now_ns() - t0) / ((double)rounds * OBJECTS);
}

/* Medians of local and shared repetitions, interleaved (the machine's
 * noise hits both alike). */
static void time_retire(qsbr_domain *local, struct obj *local_objs, qsbr_domain *shared,
			struct obj *shared_objs, double out[2])
{
	double v[2][MAX_REPS];
	qsbr_thread *tl = qsbr_register(local), *ts = qsbr_register(shared);

	for (int r = 0; r < reps; r++) {
		v[0][r] = retire_once(tl, local_objs, NULL);
		v[1][r] = retire_once(ts, shared_objs, qsbr_shared_base(shared, NULL));
	}
	qsbr_unregister(tl);
	qsbr_unregister(ts);
	out[0] = bench_median(v[0], (size_t)reps);
	out[1] = bench_median(v[1], (size_t)reps);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* ms from SIGKILL of an online reader to a completed grace period. */
static void time_recovery(qsbr_domain *d, double *median, double *worst, double *p90)
{
	double *v = calloc((size_t)kills, sizeof(double));
	qsbr_thread *t = qsbr_register(d);

	for (int k = 0; k < kills; k++) {
		int p[2];
		char c;
		pid_t pid;
		uint64_t t0;

		if (pipe(p) != 0)
			abort();
		pid = fork();
		if (pid == 0) {
			qsbr_thread *ct = qsbr_register(d);

			if (ct == NULL || write(p[1], "r", 1) != 1)
				_exit(1);
			for (;;)
				pause(); /* online, never quiescent */
		}
		close(p[1]);
		if (read(p[0], &c, 1) != 1)
			abort();
		close(p[0]);
		qsbr_quiescent(t);
		t0 = bench_now_ns();
		kill(pid, SIGKILL);
		qsbr_synchronize(t); /* held back by the child until it is found dead */
		v[k] = (double)(bench_now_ns() - t0) / 1e6;
		waitpid(pid, NULL, 0);
	}
	qsbr_unregister(t);
	qsort(v, (size_t)kills, sizeof(double), cmp_double);
	*median = v[kills / 2];
	*p90 = v[kills * 9 / 10];
	*worst = v[kills - 1];
	free(v);
}

int main(int argc, char **argv)
{
	qsbr_options o = quiet();
	size_t lib = qsbr_shared_size(THREADS), size = lib + OBJECTS * sizeof(struct obj) + 4096;
	void *mem = region(size);
	qsbr_domain *local = qsbr_domain_new(&o), *shared;
	struct obj *local_objs = calloc(OBJECTS, sizeof(struct obj)), *shared_objs;
	double q[2], qm[2], r[2], med, worst, p90;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (strcmp(argv[i], "--kills") == 0 && i + 1 < argc)
			kills = atoi(argv[++i]);
		else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
			iters = atol(argv[++i]);
	}
	if (reps < 1 || reps > MAX_REPS || kills < 1) {
		fprintf(stderr, "usage: shared [--reps 1..%d] [--kills N] [--iters N]\n", MAX_REPS);
		return 2;
	}
	shared = qsbr_domain_create_shared(mem, size, THREADS, &o);
	if (local == NULL || shared == NULL || local_objs == NULL)
		return 1;
	qsbr_shared_kind(shared, 1, shared_free, mem);
	shared_objs = (struct obj *)(void *)((char *)mem + lib);

	time_quiescent(local, shared, false, q);
	time_quiescent(local, shared, true, qm);
	time_retire(local, local_objs, shared, shared_objs, r);
	time_recovery(shared, &med, &worst, &p90);

	printf("| measure | process-local | shared | ratio |\n| --- | --- | --- | --- |\n");
	printf("| quiescent, wr_seq still (ns) | %.2f | %.2f | %.2f |\n", q[0], q[1], q[1] / q[0]);
	printf("| quiescent, wr_seq advancing every 10 us (ns) | %.2f | %.2f | %.2f |\n", qm[0], qm[1],
	       qm[1] / qm[0]);
	printf("| retire + reclaim per object (ns) | %.2f | %.2f | %.2f |\n", r[0], r[1], r[1] / r[0]);
	printf("\nrecovery over %d kills of an online reader (ms, SIGKILL to the end of a grace period "
	       "it held): median %.2f, 90th percentile %.2f, worst %.2f\n",
	       kills, med, p90, worst);
	qsbr_domain_delete(shared);
	qsbr_domain_delete(local);
	free(local_objs);
	return 0;
}
