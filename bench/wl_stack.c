/* SPDX-License-Identifier: MIT */
/*
 * Workload 3, Treiber stack: every thread pushes a fresh node, pops one and
 * retires it, and reports a quiescent state; 1..4 threads (4 oversubscribes
 * two cores).  An operation is a push or a pop.  The stack starts with 1000
 * nodes so pops rarely find it empty.
 */
#include "rc.h"
#include "ds_stack.h"

#define BATCH 1024 /* push/pop pairs between two peak samples */

static rc_domain *dom;
static struct stack stk;

static void setup(gb_state *st, void *arg)
{
	(void)st;
	(void)arg;
	stack_run_start(&dom, &stk);
}

static void body(gb_state *st, void *arg)
{
	uint64_t pairs = 0;
	rc_thread t;

	(void)arg;
	rc_thread_init(&t, dom);
	bench_loop_enter(st);
	while (rc_keep_running(st, &t, BATCH)) {
		for (int i = 0; i < BATCH; i++)
			stack_push_pop(&stk, &t, pairs + (uint64_t)i);
		pairs += BATCH;
		bench_peak_sample();
	}
	bench_loop_exit(st, 2 * pairs);
	rc_thread_fini(&t);
}

static void teardown(gb_state *st, void *arg)
{
	(void)arg;
	stack_run_end(st, dom, &stk, "stack/" RC_NAME);
}

void RC_SYM(wl_stack_register)(void)
{
	gb_bench *b = bench_register("stack/" RC_NAME, body, NULL, setup, teardown);

	bench_thread_counts(b, RC_MULTI);
}
