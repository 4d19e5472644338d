/* SPDX-License-Identifier: MIT */
/*
 * Workload 1, quiescent cost: what a reader pays at each operation
 * boundary, in a loop that does nothing else: rc_read_begin, rc_read_end,
 * rc_quiescent.  For libqsbr and liburcu that is the quiescent report (the
 * section calls are empty); for ck_epoch, the begin/end pair (it has no
 * quiescent report).  Two cases: idle (no grace period in progress), and
 * while another thread runs a grace period about every 10 us (it sleeps
 * between them), which makes the reader take its slow path now and then.
 */
#include "rc.h"

#include <pthread.h>
#include <time.h>

#if RC_GRACE

#define BATCH 4096

static rc_domain *dom;
static pthread_t adv_tid;
static atomic_bool adv_stop;
static _Atomic uint64_t adv_count;

static void *advancer(void *arg)
{
	struct timespec ts = { 0, 10000 };
	rc_thread t;

	(void)arg;
	rc_thread_init(&t, dom);
	rc_offline(&t);
	/* Relaxed: a flag with no data behind it; joined afterwards. */
	while (!atomic_load_explicit(&adv_stop, memory_order_relaxed)) {
		rc_synchronize(&t);
		atomic_fetch_add_explicit(&adv_count, 1, memory_order_relaxed);
		nanosleep(&ts, NULL);
	}
	rc_online(&t);
	rc_thread_fini(&t);
	return NULL;
}

static void setup(gb_state *st, void *arg)
{
	(void)st;
	if (dom == NULL)
		dom = rc_domain_new();
	bench_run_start(0);
	if (arg != NULL) {
		atomic_store(&adv_stop, false);
		atomic_store(&adv_count, 0);
		if (pthread_create(&adv_tid, NULL, advancer, NULL) != 0)
			abort();
	}
}

static void body(gb_state *st, void *arg)
{
	uint64_t ops = 0;
	rc_thread t;

	(void)arg;
	rc_thread_init(&t, dom);
	bench_loop_enter(st);
	while (rc_keep_running(st, &t, BATCH)) {
		for (int i = 0; i < BATCH; i++) {
			rc_read_begin(&t);
			rc_read_end(&t);
			rc_quiescent(&t);
		}
		ops += BATCH;
	}
	bench_loop_exit(st, ops);
	rc_thread_fini(&t);
}

static void teardown(gb_state *st, void *arg)
{
	if (arg != NULL) {
		atomic_store(&adv_stop, true);
		pthread_join(adv_tid, NULL);
		gb_counter(st, "grace_periods", (double)atomic_load(&adv_count), GB_RATE);
	}
	bench_run_report(st);
}

void RC_SYM(wl_quiescent_register)(void)
{
	static int advancing;

	bench_register("quiescent/idle/" RC_NAME, body, NULL, setup, teardown);
	bench_register("quiescent/advancing/" RC_NAME, body, &advancing, setup, teardown);
}

#else

void RC_SYM(wl_quiescent_register)(void)
{
}

#endif
