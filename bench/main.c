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
#include <string.h>

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

/* reclaim's own fields of bench_cfg, for the variant bench_variant_args
 * chose. */
static void configure(void)
{
	static const int64_t registered[] = { 1, 4, 16, 64, 256, 1024, 4096 };
	struct bench_cfg *c = &bench_cfg;
	const bool long_run = strcmp(c->variant, "long") == 0;

	c->stall_seconds = long_run ? 5.0 : 1.0;
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
	int n, rc;

	n = bench_variant_args(argc, argv, "reclaim");
	if (n < 0)
		return 2;
	configure();
	bench_context("reclaim");
	{
		char names[128] = "";
#define NAME(sfx) strcat(strcat(names, names[0] ? " " : ""), #sfx + 1);
		FOR_EACH_BACKEND(NAME)
		gb_context("backends", names);
	}
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
