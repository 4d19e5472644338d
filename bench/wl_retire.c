/* SPDX-License-Identifier: MIT */
/*
 * Workload 2, retire cost: one thread allocates a 32-byte object, retires
 * it and reports a quiescent state, over and over; the backend frees what
 * has become safe (amortized, inside retire, or in a worker thread).  So an
 * operation is malloc + retire + its share of reclamation and free.  The
 * free-now backend (malloc + free) is the reference: the difference is what
 * reclamation costs.  Two forms: intrusive (the header is in the object)
 * and pointer (the backend's plain-pointer call, or a wrapper where it has
 * none).  cpu_ns_per_op counts every thread of the process, so work moved
 * to liburcu's call_rcu worker is not hidden.
 */
#include "rc.h"

#define BATCH 1024

struct robj {
	rc_head h;
	uint64_t payload[2];
};

static rc_domain *dom;

static void setup(gb_state *st, void *arg)
{
	(void)st;
	(void)arg;
	if (dom == NULL)
		dom = rc_domain_new();
	bench_run_start(sizeof(struct robj));
}

static void body(gb_state *st, void *arg)
{
	const bool ptr_form = arg != NULL;
	uint64_t ops = 0;
	rc_thread t;

	rc_thread_init(&t, dom);
	bench_loop_enter(st);
	while (rc_keep_running(st, &t, BATCH)) {
		for (int i = 0; i < BATCH; i++) {
			struct robj *o = malloc(sizeof(*o));

			if (o == NULL)
				abort();
			o->payload[0] = ops + (uint64_t)i;
			if (ptr_form)
				rc_retire_ptr(&t, o);
			else
				rc_retire(&t, &o->h);
			rc_quiescent(&t);
		}
		ops += BATCH;
		bench_peak_sample();
	}
	bench_loop_exit(st, ops);
	rc_thread_fini(&t);
}

static void teardown(gb_state *st, void *arg)
{
	(void)arg;
	bench_run_report(st);
	rc_drain(dom);
	bench_check_drained("retire/" RC_NAME);
}

void RC_SYM(wl_retire_register)(void)
{
	static int ptr_form;

	bench_register("retire/node/" RC_NAME, body, NULL, setup, teardown);
	bench_register("retire/ptr/" RC_NAME, body, &ptr_form, setup, teardown);
}
