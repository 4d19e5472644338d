/* SPDX-License-Identifier: MIT */
/*
 * pool-rss: the memory a structure's pool holds after a burst (issue 13).
 *
 *   pool-rss [--threads N] [--objects M]
 *
 * N threads (default 1) push M values (default 1000000) in all on a
 * qsbr_stack, whose nodes come from its pool, then pop until it is empty:
 * every node is retired.  Each thread then hands its last retires over
 * (qsbr_pool_flush) and waits for a grace period (qsbr_barrier), and stays
 * registered, keeping its cache.  Then qsbr_pool_trim.  The resident set
 * size (/proc/self/statm) and the pool's own count of bytes held are
 * printed at each step, and the last line says whether the RSS after the
 * trim is within 1 MiB per thread of the start.  Memory the pool gives
 * back goes to the allocator: whether that returns it to the system at
 * once is the allocator's policy (glibc trims the top of its heaps, and
 * the rest at malloc_trim; jemalloc and mimalloc purge after a delay), so
 * the RSS is read again after a second, after glibc's malloc_trim, and
 * after the purge call of the allocator put in front with LD_PRELOAD, if
 * it has one (mimalloc's mi_collect, jemalloc's arena purge).
 */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include <dlfcn.h>
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <qsbr.h>
#include <qsbr/pool.h>
#include <qsbr/stack.h>

static qsbr_domain *dom;
static qsbr_stack *stk;
static pthread_barrier_t step;
static long objects = 1000000;
static int threads = 1;
static long start_kib;

static long rss_kib(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL || fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = -1;
	if (f != NULL)
		fclose(f);
	return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static uint64_t held_kib(void)
{
	qsbr_pool_stats s;

	if (qsbr_pool_stats_get(qsbr_stack_pool(stk), &s) != 0)
		abort();
	return s.bytes_held / 1024;
}

static void report(const char *what, long start)
{
	long now = rss_kib();

	printf("%-34s rss %8ld KiB (%+8ld)  pool holds %8llu KiB\n", what, now, now - start,
	       (unsigned long long)held_kib());
}

/* The preloaded allocator's own purge, found by name; reports what it
 * did when report is set.  mimalloc's collects the calling thread's heap
 * only: every thread calls it. */
static void allocator_purge(bool report_it)
{
	void (*mi_collect)(bool) = NULL;
	int (*mallctl)(const char *, void *, size_t *, void *, size_t) = NULL;
	void *sym;

	/* memcpy: ISO C has no cast from an object pointer to a function's. */
	if ((sym = dlsym(RTLD_DEFAULT, "mi_collect")) != NULL)
		memcpy(&mi_collect, &sym, sizeof(sym));
	if ((sym = dlsym(RTLD_DEFAULT, "mallctl")) != NULL)
		memcpy(&mallctl, &sym, sizeof(sym));

	if (mi_collect != NULL) {
		mi_collect(true);
		if (report_it)
			report("after mi_collect(true), every thread", start_kib);
	} else if (mallctl != NULL) {
		/* 4096: MALLCTL_ARENAS_ALL */
		if (mallctl("arena.4096.purge", NULL, NULL, NULL, 0) == 0 && report_it)
			report("after jemalloc's arena purge", start_kib);
	}
}

/* A registered thread waits for the others offline: online, it would hold
 * their grace periods back. */
static void wait_step(qsbr_thread *t)
{
	qsbr_detach(t);
	pthread_barrier_wait(&step);
	qsbr_attach(t);
}

/* Each worker: register, push its share, wait; pop until empty, flush and
 * barrier, wait; wait again for the main thread's report, then
 * unregister. */
static void *worker(void *arg)
{
	long share = objects / threads + ((long)(intptr_t)arg < objects % threads);
	qsbr_thread *t = qsbr_register(dom);

	if (t == NULL)
		abort();
	wait_step(t); /* registered */
	wait_step(t); /* the main thread has read the start */
	for (long i = 0; i < share; i++) {
		if (qsbr_stack_push(stk, (void *)(intptr_t)i) != 0)
			abort();
		if ((i & 63) == 0)
			qsbr_quiescent(t);
	}
	wait_step(t); /* pushed */
	for (long i = 0; qsbr_stack_pop(stk, t, NULL) == 0; i++)
		if ((i & 63) == 0)
			qsbr_quiescent(t);
	qsbr_pool_flush(t, qsbr_stack_pool(stk));
	qsbr_barrier(t);
	wait_step(t); /* popped, grace periods over */
	wait_step(t); /* the main thread has trimmed and reported */
	allocator_purge(false);
	wait_step(t); /* purged */
	qsbr_unregister(t);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[64];
	long start;
	size_t trimmed;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--threads") == 0)
			threads = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--objects") == 0)
			objects = atol(argv[i + 1]);
	}
	if (threads < 1 || threads > 64 || objects < 1) {
		fprintf(stderr, "usage: pool-rss [--threads 1..64] [--objects M]\n");
		return 2;
	}
	dom = qsbr_domain_new(NULL);
	stk = dom != NULL ? qsbr_stack_new(dom) : NULL;
	if (stk == NULL || pthread_barrier_init(&step, NULL, (unsigned)threads + 1) != 0)
		return 1;
	for (int i = 0; i < threads; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i) != 0)
			return 1;
	pthread_barrier_wait(&step);
	start = start_kib = rss_kib();
	printf("%d threads, %ld objects\n", threads, objects);
	report("start (threads registered)", start);
	pthread_barrier_wait(&step);
	pthread_barrier_wait(&step);
	report("pushed", start);
	pthread_barrier_wait(&step);
	report("popped, grace periods over", start);
	trimmed = qsbr_pool_trim(qsbr_stack_pool(stk));
	printf("qsbr_pool_trim gave back %zu KiB\n", trimmed / 1024);
	report("after trim", start);
	sleep(1);
	report("after trim, 1 s later", start);
#ifdef __GLIBC__
	/* glibc returns free memory inside its heaps only on request (one
	 * block still in use above it pins the rest); a no-op for the pages
	 * of another allocator put in front with LD_PRELOAD. */
	malloc_trim(0);
	report("after malloc_trim(0)", start);
#endif
	pthread_barrier_wait(&step); /* the workers purge, then leave */
	pthread_barrier_wait(&step);
	allocator_purge(true);
	{
		long grew = rss_kib() - start;

		printf("pool holds within 1 MiB per thread of the start: %s (%llu KiB)\n",
		       held_kib() <= 1024u * (unsigned)threads ? "yes" : "no",
		       (unsigned long long)held_kib());
		printf("rss within 1 MiB per thread of the start: %s (%+ld KiB, limit %d KiB)\n",
		       grew <= 1024L * threads ? "yes" : "no", grew, 1024 * threads);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	if (qsbr_stack_delete(stk, NULL, NULL) != 0 || qsbr_domain_delete(dom) != 0)
		return 1;
	return 0;
}
