/* SPDX-License-Identifier: MIT */
/*
 * Workload 6, stalled reader: two threads run the Treiber stack workload
 * while a third is online and stops reporting (libqsbr, liburcu: no
 * quiescent state; ck_epoch: inside a section), as a reader blocked on I/O
 * would.  After stall_seconds it resumes, reporting every millisecond, for a
 * fifth of that time.  Thread 0, the reader, samples what the backend holds
 * every tenth of the stall: counters held_00 .. held_12 (objects), and
 * stall_seconds.  One repetition: the result is a time series.
 */
#include "rc.h"
#include "ds_stack.h"

#include <stdio.h>
#include <time.h>

#if RC_MULTI

#define BATCH 256
#define SAMPLES 13 /* 0, 0.1, ... 1.2 stall */

static rc_domain *dom;
static struct stack stk;
static atomic_bool stop;

static void setup(gb_state *st, void *arg)
{
	(void)st;
	(void)arg;
	atomic_store(&stop, false);
	stack_run_start(&dom, &stk);
}

static void sleep_until(double t)
{
	double left = t - bench_now();

	if (left > 0) {
		struct timespec ts = { (time_t)left, (long)((left - (double)(time_t)left) * 1e9) };

		nanosleep(&ts, NULL);
	}
}

static void reader(gb_state *st)
{
	const double stall = bench_cfg.stall_seconds, step = stall / 10;
	uint64_t held[SAMPLES] = { 0 };
	double t0;
	char name[16];
	rc_thread t;

	rc_thread_init(&t, dom);
	bench_loop_enter(st);
	while (rc_keep_running(st, &t, 1)) {
		t0 = bench_now();
		rc_read_begin(&t);
		for (int k = 0; k <= 10; k++) {
			sleep_until(t0 + k * step);
			held[k] = bench_pending();
		}
		rc_read_end(&t);
		rc_quiescent(&t);
		/* Resumed: an ordinary slow reader, one report per ms. */
		for (int k = 11; k < SAMPLES; k++) {
			while (bench_now() < t0 + k * step) {
				struct timespec ms = { 0, 1000000 };

				nanosleep(&ms, NULL);
				rc_read_begin(&t);
				rc_read_end(&t);
				rc_quiescent(&t);
			}
			held[k] = bench_pending();
		}
		/* Relaxed: a flag; the updaters' results are read after joins. */
		atomic_store_explicit(&stop, true, memory_order_relaxed);
	}
	bench_loop_exit(st, 0);
	rc_thread_fini(&t);
	for (int k = 0; k < SAMPLES; k++) {
		snprintf(name, sizeof(name), "held_%02d", k);
		gb_counter(st, name, (double)held[k], 0);
	}
	gb_counter(st, "stall_seconds", stall, 0);
}

static void updater(gb_state *st)
{
	uint64_t pairs = 0;
	rc_thread t;

	rc_thread_init(&t, dom);
	bench_loop_enter(st);
	while (rc_keep_running(st, &t, 1)) {
		while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
			for (int i = 0; i < BATCH; i++)
				stack_push_pop(&stk, &t, pairs + (uint64_t)i);
			pairs += BATCH;
			bench_peak_sample();
		}
	}
	bench_loop_exit(st, 2 * pairs);
	rc_thread_fini(&t);
}

static void body(gb_state *st, void *arg)
{
	(void)arg;
	if (gb_thread_index(st) == 0)
		reader(st);
	else
		updater(st);
}

static void teardown(gb_state *st, void *arg)
{
	(void)arg;
	stack_run_end(st, dom, &stk, "stall/" RC_NAME);
}

void RC_SYM(wl_stall_register)(void)
{
	gb_bench *b = gb_register("stall/" RC_NAME, body, NULL);

	gb_setup(b, setup);
	gb_teardown(b, teardown);
	gb_fixed_iterations(b, 1);
	gb_repetitions(b, 1);
	gb_real_time(b);
	gb_threads(b, 3);
}

#else

void RC_SYM(wl_stall_register)(void)
{
}

#endif
