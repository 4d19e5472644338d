/* SPDX-License-Identifier: MIT */
/*
 * Workload 4, hash set: Michael's hash set (ds_hashset.h) over keys in
 * [0, keys), prefilled half full; each operation picks a random key and
 * looks it up, inserts it or deletes it (lookup percentage 90: 90/5/5,
 * 50: 50/25/25), as one operation between two quiescent states.  Inserts
 * and deletes balance, so the set stays about half full.  The prefilled set
 * is built once per backend and key range and reused across thread counts,
 * mixes and repetitions.
 */
#include "rc.h"
#include "ds_hashset.h"

#define BATCH 1024

static rc_domain *dom;
static struct hashset set;
static const char owner[] = "hashset/" RC_NAME;

static void set_destroy(void)
{
	hs_destroy(&set);
}

static void setup(gb_state *st, void *arg)
{
	int64_t keys = gb_arg(st, 0);

	(void)arg;
	if (dom == NULL)
		dom = rc_domain_new();
	if (!bench_cache_hit(owner, keys)) {
		bench_cache_drop();
		hs_init(&set, (uint64_t)keys, 42);
		bench_cache_store(owner, keys, set_destroy);
	}
	bench_run_start(sizeof(struct hnode));
}

static void body(gb_state *st, void *arg)
{
	struct bench_mix mix;
	struct bench_rbuf rb = { 0 };
	uint64_t ops = 0;
	rc_thread t;

	(void)arg;
	bench_mix_init(&mix, st);
	rc_thread_init(&t, dom);
	bench_loop_enter(st);
	while (rc_keep_running(st, &t, BATCH)) {
		for (int i = 0; i < BATCH; i++) {
			uint64_t key;
			enum bench_op op = bench_mix_next(&mix, &key);

			rc_read_begin(&t);
			if (op == BENCH_LOOKUP)
				hs_lookup(&set, key);
			else if (op == BENCH_INSERT)
				hs_insert(&set, key, &rb);
			else
				hs_delete(&set, key, &rb);
			rc_read_end(&t);
			for (size_t j = 0; j < rb.n; j++)
				rc_retire(&t, rb.v[j]);
			rb.n = 0;
			rc_quiescent(&t);
		}
		ops += BATCH;
		bench_peak_sample();
	}
	bench_loop_exit(st, ops);
	rc_thread_fini(&t);
	free(rb.v);
}

static void teardown(gb_state *st, void *arg)
{
	(void)arg;
	bench_run_report(st);
	rc_drain(dom);
	bench_check_drained(owner);
}

/* One family per key range, so the set is built once per range. */
void RC_SYM(wl_hashset_register)(int64_t keys)
{
	gb_bench *b = bench_register("hashset/" RC_NAME, body, NULL, setup, teardown);

	bench_mix_args(b, keys);
	bench_thread_counts(b, RC_MULTI);
}
