/* SPDX-License-Identifier: MIT */
/*
 * pool-hashset: Michael's hash set (ds_hashset.h) over 64Ki keys, half
 * present, 80% lookups and 10% each inserts and removes (issue 13), with
 * its nodes three ways:
 *
 *   malloc-free-now   malloc, and free at once when removed (the
 *                     reference: unsafe with a second thread)
 *   retire-free       malloc, and qsbr_retire_node with a callback that
 *                     frees
 *   pool              qsbr_pool_alloc, and qsbr_pool_retire
 *   malloc-wide       malloc-free-now with 40 more bytes per node (the
 *                     pool's hidden head): what the pool's footprint costs
 *                     the lookups, with malloc's speed (1 thread)
 *
 * 1 thread, and 2 and 4 for the last two.  Every operation is followed by
 * a quiescent state.  The counter "ops" is operations per wall-clock
 * second, all threads together.  Run it under LD_PRELOAD for other
 * allocators (docs/benchmarks.md).
 */
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <qsbr.h>
#include <qsbr/pool.h>

#include "harness.h"
#include "pool_bench.h"

typedef qsbr_node rc_head; /* what ds_hashset.h puts first in a node */

enum how { MALLOC_FREE_NOW, RETIRE_FREE, POOL, MALLOC_WIDE };

#define WIDE 40 /* bytes: the pool's head per object (a stride of 72, not 48) */

static enum how mode;
static qsbr_pool *pool;
static _Thread_local qsbr_thread *self; /* the calling thread's handle */

static void *node_new(size_t size)
{
	if (mode == POOL)
		return qsbr_pool_alloc(self, pool);
	return malloc(mode == MALLOC_WIDE ? size + WIDE : size);
}

static void node_drop(void *n)
{
	if (mode == POOL)
		qsbr_pool_free(self, pool, n);
	else
		free(n);
}

#define HS_NODE_NEW() ((struct hnode *)node_new(sizeof(struct hnode)))
#define HS_NODE_DROP(n) node_drop(n)
#include "ds_hashset.h"

#define BATCH 1024
#define KEYS 65536
#define LOOKUP 80

static qsbr_domain *dom;
static struct hashset set;

static void node_free(qsbr_node *n)
{
	free(n);
}

/* The domain and the pool are made once and kept across runs, as malloc
 * keeps its heap (pool-stack says why). */
static void setup(gb_state *st, void *arg)
{
	(void)st;
	mode = (enum how)(intptr_t)arg;
	if (dom == NULL) {
		dom = qsbr_domain_new(NULL);
		pool = dom != NULL ? qsbr_pool_new(dom, sizeof(struct hnode), alignof(struct hnode))
				   : NULL;
	}
	self = pool != NULL ? qsbr_register(dom) : NULL;
	if (self == NULL)
		abort();
	hs_init(&set, KEYS, 42);
	qsbr_unregister(self);
}

static void teardown(gb_state *st, void *arg)
{
	(void)st;
	(void)arg;
	self = qsbr_register(dom);
	hs_destroy(&set);
	qsbr_unregister(self);
}

static void body(gb_state *st, void *arg)
{
	struct bench_rbuf rb = { 0 };
	uint64_t ops = 0, seed = bench_seed(gb_thread_index(st)) ^ (uintptr_t)&rb;

	(void)arg;
	self = qsbr_register(dom);
	while (pool_keep_running(st, self, BATCH)) {
		for (int i = 0; i < BATCH; i++) {
			uint64_t r = bench_rand(&seed), key = (r >> 32) % KEYS;
			uint64_t pct = ((r & 0xffffffffu) * 100) >> 32;

			if (pct < LOOKUP)
				hs_lookup(&set, key);
			else if (pct < LOOKUP + (100 - LOOKUP) / 2)
				hs_insert(&set, key, &rb);
			else
				hs_delete(&set, key, &rb);
			for (size_t j = 0; j < rb.n; j++) {
				if (mode == MALLOC_FREE_NOW || mode == MALLOC_WIDE)
					free(rb.v[j]);
				else if (mode == RETIRE_FREE)
					qsbr_retire_node(self, rb.v[j], node_free);
				else
					qsbr_pool_retire(self, pool, rb.v[j]);
			}
			rb.n = 0;
			qsbr_quiescent(self);
		}
		ops += BATCH;
	}
	gb_counter(st, "ops", (double)ops, GB_RATE);
	qsbr_unregister(self);
	free(rb.v);
}

int main(int argc, char **argv)
{
	static const char *const names[] = { /* in the order of enum how */
		"pool-hashset/malloc-free-now",
		"pool-hashset/retire-free",
		"pool-hashset/pool",
	};

	pool_bench_register(names, sizeof(names) / sizeof(names[0]), body, setup, teardown);
	gb_bench *wide = gb_register("pool-hashset/malloc-wide", body, (void *)(intptr_t)MALLOC_WIDE);

	gb_setup(wide, setup);
	gb_teardown(wide, teardown);
	gb_threads(wide, 1);
	gb_real_time(wide);
	gb_min_time(wide, 0.5);
	int rc = gb_run(argc, argv);

	if (dom != NULL && (qsbr_pool_delete(pool) != 0 || qsbr_domain_delete(dom) != 0))
		fprintf(stderr, "pool-hashset: cleanup failed\n");
	return rc;
}
