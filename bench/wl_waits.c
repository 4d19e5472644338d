/* SPDX-License-Identifier: MIT */
/*
 * Blocking grace-period waits, for the waits program (waits.c): how many
 * waits return per second, and whether a run now and then collapses.
 *
 * A case (struct waits_case) has three kinds of threads:
 *   callers  registered, then offline, calling rc_synchronize in a loop:
 *            libqsbr's qsbr_synchronize(t) (RC_SYNC_CALL says which call),
 *            liburcu's synchronize_rcu().  Offline so that the same loop is
 *            right for any call: liburcu's goes offline itself, libqsbr's
 *            handle-based one treats the caller as quiescent, and its
 *            domain-level one (rc_qsbr.h) takes no handle to report for.
 *   readers  registered and online, reporting quiescent states in a tight
 *            loop (qsbr_quiescent(t), rcu_quiescent_state()): every wait
 *            has to see each of them pass one.
 *   busy     not registered: a plain loop, load on the machine.
 * Google Benchmark runs one iteration per run.  The run lasts
 * bench_cfg.min_time: when the threads are released, caller 0 starts a
 * timer thread; each caller stops after the wait in progress when it fires,
 * and readers and busy threads once the last caller has stopped.
 *
 * Counters: waits_per_s (each caller's waits over its own time, summed over
 * the callers; concurrent callers may share one grace period, so it counts
 * waits served, not distinct grace periods), reports_per_s (quiescent
 * reports of all readers together).  Each run goes to waits_record() too.
 */
#include "rc.h"
#include "workloads.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#define MAX_CALLERS 16
#define REPORTS 64 /* quiescent reports between two looks at the stop flag */

static rc_domain *dom;
static pthread_t timer;
static bool timer_started;        /* by caller 0, joined by teardown */
static uint64_t deadline_ns;      /* written before the timer starts */
static atomic_bool times_up;      /* the timer fired: callers stop */
static atomic_int callers_left;   /* callers still waiting in this run */
static atomic_bool stop;          /* the last caller stopped: everyone stops */
static _Atomic uint64_t reports;  /* readers' reports in this run */

/* Each caller's result, written by its owner before it leaves the body and
 * read by teardown after every thread has left (gbench.cpp's gate). */
static struct {
	uint64_t waits;
	double seconds;
} result[MAX_CALLERS];

static void *timer_main(void *arg)
{
	struct timespec ts = { (time_t)(deadline_ns / 1000000000u),
			       (long)(deadline_ns % 1000000000u) };

	(void)arg;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
	/* Relaxed: a flag with no data behind it. */
	atomic_store_explicit(&times_up, true, memory_order_relaxed);
	return NULL;
}

static void setup(gb_state *st, void *arg)
{
	const struct waits_case *c = arg;

	(void)st;
	if (dom == NULL)
		dom = rc_domain_new();
	atomic_store(&times_up, false);
	atomic_store(&callers_left, c->callers);
	atomic_store(&stop, false);
	atomic_store(&reports, 0);
	for (int i = 0; i < c->callers; i++)
		result[i].waits = 0, result[i].seconds = 0;
}

static void caller(gb_state *st, rc_thread *t, int i)
{
	uint64_t n = 0, t0 = 0, t1 = 0;

	while (rc_keep_running(st, t, 1)) {
		rc_offline(t);
		t0 = bench_now_ns();
		if (i == 0) {
			deadline_ns = t0 + (uint64_t)(bench_cfg.min_time * 1e9);
			if (pthread_create(&timer, NULL, timer_main, NULL) != 0)
				abort();
			timer_started = true;
		}
		while (!atomic_load_explicit(&times_up, memory_order_relaxed)) {
			rc_synchronize(t);
			n++;
		}
		t1 = bench_now_ns();
		if (atomic_fetch_sub_explicit(&callers_left, 1, memory_order_relaxed) == 1)
			atomic_store_explicit(&stop, true, memory_order_relaxed);
		rc_online(t);
	}
	result[i].waits = n;
	result[i].seconds = (double)(t1 - t0) * 1e-9;
}

static void reader(gb_state *st, rc_thread *t)
{
	uint64_t n = 0;

	while (rc_keep_running(st, t, 1)) {
		while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
			for (int k = 0; k < REPORTS; k++)
				rc_quiescent(t);
			n += REPORTS;
		}
	}
	atomic_fetch_add_explicit(&reports, n, memory_order_relaxed);
}

static void busy(gb_state *st)
{
	volatile uint64_t spins = 0;

	while (gb_keep_running_batch(st, 1))
		while (!atomic_load_explicit(&stop, memory_order_relaxed))
			spins = spins + 1;
}

static void body(gb_state *st, void *arg)
{
	const struct waits_case *c = arg;
	const int i = gb_thread_index(st);
	rc_thread t;

	if (i >= c->callers + c->readers) {
		busy(st);
		return;
	}
	rc_thread_init(&t, dom);
	if (i < c->callers)
		caller(st, &t, i);
	else
		reader(st, &t);
	rc_thread_fini(&t);
}

static void teardown(gb_state *st, void *arg)
{
	const struct waits_case *c = arg;
	double total = 0, longest = 0;

	if (timer_started)
		pthread_join(timer, NULL);
	timer_started = false;
	for (int i = 0; i < c->callers; i++) {
		if (result[i].seconds <= 0)
			continue;
		total += (double)result[i].waits / result[i].seconds;
		if (result[i].seconds > longest)
			longest = result[i].seconds;
	}
	gb_counter(st, "waits_per_s", total, 0);
	if (c->readers > 0 && longest > 0)
		gb_counter(st, "reports_per_s", (double)atomic_load(&reports) / longest, 0);
	waits_record(c, RC_NAME, RC_SYNC_CALL, total);
}

void RC_SYM(wl_waits_register)(const struct waits_case *c)
{
	static bool named;
	char name[96];
	gb_bench *b;

	if (c->callers < 1 || c->callers > MAX_CALLERS) {
		fprintf(stderr, "waits: %s: 1 to %d callers\n", c->name, MAX_CALLERS);
		abort();
	}
	if (!named) {
		gb_context("call " RC_NAME, RC_SYNC_CALL);
		named = true;
	}
	snprintf(name, sizeof(name), "waits/%s/%s", c->slug, RC_NAME);
	b = gb_register(name, body, (void *)c);
	gb_setup(b, setup);
	gb_teardown(b, teardown);
	gb_fixed_iterations(b, 1);
	gb_repetitions(b, bench_cfg.reps);
	gb_real_time(b);
	gb_statistic_min(b);
	gb_threads(b, c->callers + c->readers + c->busy);
}
