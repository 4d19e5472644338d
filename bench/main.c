/* SPDX-License-Identifier: MIT */
/*
 * reclaim: libqsbr side by side with liburcu (QSBR flavour, call_rcu and
 * defer_rcu), ck_epoch, and the leak and free-now baselines, on six
 * workloads (wl_*.c), through Google Benchmark (gbench.h).
 *
 * Usage: reclaim [--variant short|long] [--min-time S] [--reps N]
 *                [--benchmark_* flags]
 *   short (default, or QSBR_BENCH_VARIANT=short): a few minutes on 2 cores.
 *   long: the numbers to publish; tens of minutes.
 *   --min-time, --reps: override the variant's seconds per repetition and
 *   repetitions (Google Benchmark's own flags do not override them).
 * Write JSON with --benchmark_out=FILE --benchmark_out_format=json;
 * bench/plot.py turns it into plots and tables.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qsbr.h>

#include "harness.h"
#include "workloads.h"

/* Backends in result order.  HAVE_URCU and HAVE_CK come from meson. */
#if HAVE_URCU
#define URCU_BACKENDS(X) X(_urcu) X(_urcu_defer)
#else
#define URCU_BACKENDS(X)
#endif
#if HAVE_CK
#define CK_BACKENDS(X) X(_ck) X(_ck_batch)
#else
#define CK_BACKENDS(X)
#endif
#define FOR_EACH_BACKEND(X) X(_qsbr) X(_qsbr_cap) URCU_BACKENDS(X) CK_BACKENDS(X) X(_leak) X(_freenow)

static void configure(const char *variant)
{
	static const int64_t keys[] = { 1024, 65536, 1048576 };
	static const int64_t registered[] = { 1, 4, 16, 64, 256, 1024, 4096 };
	static const int threads[] = { 1, 2, 3, 4 };
	struct bench_cfg *c = &bench_cfg;
	const bool long_run = strcmp(variant, "long") == 0;

	c->variant = long_run ? "long" : "short";
	c->min_time = long_run ? 1.0 : 0.1;
	c->reps = long_run ? 5 : 3;
	c->stall_seconds = long_run ? 5.0 : 1.0;
	c->n_threads = 4;
	memcpy(c->threads, threads, sizeof(threads));
	c->n_keys = 3;
	memcpy(c->keys, keys, sizeof(keys));
	c->n_registered = 7;
	memcpy(c->registered, registered, sizeof(registered));
}

static void register_all(void)
{
#define QUIESCENT(sfx) wl_quiescent_register##sfx();
#define RETIRE(sfx) wl_retire_register##sfx();
#define STACK(sfx) wl_stack_register##sfx();
#define HASHSET(sfx) wl_hashset_register##sfx(bench_cfg.keys[k]);
#define DETECT(sfx) wl_detect_register##sfx();
#define STALL(sfx) wl_stall_register##sfx();
	FOR_EACH_BACKEND(QUIESCENT)
	FOR_EACH_BACKEND(RETIRE)
	FOR_EACH_BACKEND(STACK)
	for (int k = 0; k < bench_cfg.n_keys; k++) {
		FOR_EACH_BACKEND(HASHSET)
	}
	FOR_EACH_BACKEND(STALL)
	FOR_EACH_BACKEND(DETECT)
}

static void *noop_thread(void *arg)
{
	return arg;
}

int main(int argc, char **argv)
{
	const char *variant = getenv("QSBR_BENCH_VARIANT");
	double min_time = 0;
	int n = 1, rc, reps = 0;

	/* Take our flag out; Google Benchmark rejects flags it does not know. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--variant") == 0 && i + 1 < argc)
			variant = argv[++i];
		else if (strncmp(argv[i], "--variant=", 10) == 0)
			variant = argv[i] + 10;
		else if (strcmp(argv[i], "--min-time") == 0 && i + 1 < argc)
			min_time = atof(argv[++i]);
		else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
			reps = atoi(argv[++i]);
		else
			argv[n++] = argv[i];
	}
	argv[n] = NULL;
	if (variant == NULL)
		variant = "short";
	if (strcmp(variant, "short") != 0 && strcmp(variant, "long") != 0) {
		fprintf(stderr, "reclaim: --variant short|long\n");
		return 2;
	}
	configure(variant);
	if (min_time > 0)
		bench_cfg.min_time = min_time;
	if (reps > 0)
		bench_cfg.reps = reps;
	gb_context("variant", bench_cfg.variant);
	gb_context("libqsbr", qsbr_version());
	{
		char names[128] = "";
#define NAME(sfx) strcat(strcat(names, names[0] ? " " : ""), #sfx + 1);
		FOR_EACH_BACKEND(NAME)
		gb_context("backends", names);
	}
#ifndef NDEBUG
	gb_context("warning", "built without NDEBUG: libqsbr's inline path has debug checks");
	fprintf(stderr, "reclaim: built without NDEBUG; use --buildtype=release for numbers\n");
#endif
	/* Every run happens in a multi-threaded process, as in any program that
	 * needs reclamation: glibc's malloc takes atomic paths once a second
	 * thread has existed, and would otherwise change mode mid-run. */
	{
		pthread_t th;

		if (pthread_create(&th, NULL, noop_thread, NULL) != 0 || pthread_join(th, NULL) != 0)
			return 1;
	}
	register_all();
	rc = gb_run(n, argv);
	bench_cache_drop();
	return rc;
}
