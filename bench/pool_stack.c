/* SPDX-License-Identifier: MIT */
/*
 * pool-stack: the cost of a node's life in a Treiber stack, three ways
 * (issue 13):
 *
 *   malloc-free-now   push a malloc'd node, pop one, free it at once (the
 *                     reference: unsafe with concurrent poppers)
 *   retire-free       push a malloc'd node, pop one, qsbr_retire_node it
 *                     with a callback that frees it (today's way)
 *   pool              push a qsbr_pool_alloc'd node, pop one,
 *                     qsbr_pool_retire it
 *   ds-stack          the library's qsbr_stack (qsbr/stack.h), whose nodes
 *                     come from its own pool: qsbr_stack_push, then
 *                     qsbr_stack_pop
 *   ck                ck_epoch: each push/pop pair in ck_epoch_begin/end,
 *                     then ck_epoch_call with a callback that frees and
 *                     ck_epoch_poll (the ck_epoch_call(3) example)
 *   urcu              liburcu's QSBR flavour, inlined (_LGPL_SOURCE): the
 *                     pair in rcu_read_lock/unlock, call_rcu with a
 *                     callback that frees (liburcu's default worker
 *                     thread), rcu_quiescent_state
 *
 * 1 thread, and 2 and 4 for the others (freeing at once is unsafe with two).
 * Run it under LD_PRELOAD=libmimalloc.so or libjemalloc.so for the rows with
 * another allocator (docs/benchmarks.md).
 * Each thread reports a quiescent state after every push/pop pair.  The
 * stack starts with 1000 nodes.  An operation is a push or a pop; the
 * counter "ops" is operations per wall-clock second, all threads together;
 * "cpu_ns" the CPU time of a thread per operation, averaged over the
 * threads (what a loaded machine disturbs least).
 */
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define _LGPL_SOURCE
#include <ck_epoch.h>
#include <urcu-qsbr.h>

#include <qsbr.h>
#include <qsbr/pool.h>
#include <qsbr/stack.h>

#include "gbench.h"
#include "pool_bench.h"

#define BATCH 1024
#define PREFILL 1000

struct snode {
	union { /* the retire header of each way: 16 bytes in all three */
		qsbr_node qn;
		struct rcu_head rh;
		ck_epoch_entry_t ce;
	} h;
	struct snode *next;
	uint64_t value;
};

struct stack {
	alignas(64) _Atomic(struct snode *) top;
};

enum how { MALLOC_FREE_NOW, RETIRE_FREE, POOL, DS_STACK, CK, URCU };

static qsbr_domain *dom;
static qsbr_pool *pool;
static struct stack stk;
static qsbr_stack *ds;

static void push(struct snode *n)
{
	struct snode *old = atomic_load_explicit(&stk.top, memory_order_relaxed);

	do
		n->next = old;
	while (!atomic_compare_exchange_weak_explicit(&stk.top, &old, n, memory_order_release,
						      memory_order_relaxed));
}

static struct snode *pop(void)
{
	struct snode *n = atomic_load_explicit(&stk.top, memory_order_acquire);

	while (n != NULL && !atomic_compare_exchange_weak_explicit(&stk.top, &n, n->next,
								   memory_order_acquire,
								   memory_order_acquire))
		;
	return n;
}

static ck_epoch_t epoch;

static void node_free(qsbr_node *n)
{
	free(n);
}

static void node_free_ck(ck_epoch_entry_t *e)
{
	free(e);
}

static void node_free_urcu(struct rcu_head *h)
{
	free(h);
}

/* A ck_epoch record: a free one, or a new one (records are never freed). */
static ck_epoch_record_t *ck_record(void)
{
	ck_epoch_record_t *r = ck_epoch_recycle(&epoch, NULL);

	if (r == NULL) {
		r = aligned_alloc(64, (sizeof(*r) + 63) / 64 * 64);
		if (r == NULL)
			abort();
		ck_epoch_register(&epoch, r, NULL);
	}
	return r;
}

/* The peers' loop: the same operations in their read sections, then
 * their retire calls. */
static uint64_t body_peer(gb_state *st, enum how how)
{
	ck_epoch_record_t *r = how == CK ? ck_record() : NULL;
	uint64_t pairs = 0;

	if (how == URCU)
		rcu_register_thread();
	for (;;) {
		bool more;

		if (how == URCU)
			rcu_thread_offline(); /* as pool_keep_running */
		more = gb_keep_running_batch(st, BATCH);
		if (how == URCU)
			rcu_thread_online();
		if (!more)
			break;
		for (int i = 0; i < BATCH; i++) {
			struct snode *n = malloc(sizeof(*n));

			if (n == NULL)
				abort();
			n->value = pairs + (uint64_t)i;
			if (how == CK)
				ck_epoch_begin(r, NULL);
			else
				rcu_read_lock();
			push(n);
			n = pop();
			if (how == CK) {
				ck_epoch_end(r, NULL);
				ck_epoch_call(r, &n->h.ce, node_free_ck);
				ck_epoch_poll(r);
			} else {
				rcu_read_unlock();
				call_rcu(&n->h.rh, node_free_urcu);
				rcu_quiescent_state();
			}
		}
		pairs += BATCH;
	}
	if (how == CK) {
		ck_epoch_barrier(r);
		ck_epoch_unregister(r);
	} else {
		rcu_unregister_thread();
	}
	return pairs;
}

static struct snode *node_new(qsbr_thread *t, enum how how)
{
	return how == POOL ? qsbr_pool_alloc(t, pool) : malloc(sizeof(struct snode));
}

/* The domain, the pool and the library's stack are made once and kept
 * across runs, as malloc keeps its heap: a run does not pay for a pool's
 * first slabs (fresh pages) when the reference reuses its warm arenas. */
static void setup(gb_state *st, void *arg)
{
	enum how how = (enum how)(intptr_t)arg;
	qsbr_thread *t;

	(void)st;
	if (dom == NULL) {
		ck_epoch_init(&epoch);
		dom = qsbr_domain_new(NULL);
		pool = dom != NULL ? qsbr_pool_new(dom, sizeof(struct snode), alignof(struct snode)) : NULL;
		ds = dom != NULL ? qsbr_stack_new(dom) : NULL;
		if (pool == NULL || ds == NULL)
			abort();
	}
	t = qsbr_register(dom);
	for (int i = 0; i < PREFILL; i++) {
		if (how == DS_STACK)
			qsbr_stack_push(ds, NULL);
		else
			push(node_new(t, how));
	}
	qsbr_unregister(t);
}

static void teardown(gb_state *st, void *arg)
{
	enum how how = (enum how)(intptr_t)arg;
	qsbr_thread *t = qsbr_register(dom);
	struct snode *n;

	(void)st;
	while (how == DS_STACK && qsbr_stack_pop(ds, t, NULL) == 0)
		;
	while ((n = pop()) != NULL) {
		if (how == POOL)
			qsbr_pool_free(t, pool, n);
		else
			free(n);
	}
	qsbr_unregister(t);
}

static double thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void body(gb_state *st, void *arg)
{
	enum how how = (enum how)(intptr_t)arg;
	qsbr_thread *t;
	uint64_t pairs = 0;
	double cpu = thread_cpu_ns();

	if (how == CK || how == URCU) {
		pairs = body_peer(st, how);
		gb_counter(st, "ops", (double)(2 * pairs), GB_RATE);
		gb_counter(st, "cpu_ns", (thread_cpu_ns() - cpu) / (double)(2 * pairs + 1),
			   GB_AVG_THREADS);
		return;
	}
	t = qsbr_register(dom);
	while (pool_keep_running(st, t, BATCH)) {
		for (int i = 0; how == DS_STACK && i < BATCH; i++) {
			void *v;

			qsbr_stack_push(ds, (void *)(uintptr_t)i);
			qsbr_stack_pop(ds, t, &v);
			qsbr_quiescent(t);
		}
		for (int i = 0; how != DS_STACK && i < BATCH; i++) {
			struct snode *n = node_new(t, how);

			if (n == NULL) {
				gb_skip(st, "out of memory");
				break;
			}
			n->value = pairs + (uint64_t)i;
			push(n);
			n = pop();
			switch (how) {
			case MALLOC_FREE_NOW:
				free(n);
				break;
			case RETIRE_FREE:
				qsbr_retire_node(t, &n->h.qn, node_free);
				break;
			case POOL:
				qsbr_pool_retire(t, pool, n);
				break;
			case DS_STACK:
			case CK:
			case URCU:
				break;
			}
			qsbr_quiescent(t);
		}
		pairs += BATCH;
	}
	gb_counter(st, "ops", (double)(2 * pairs), GB_RATE);
	gb_counter(st, "cpu_ns", (thread_cpu_ns() - cpu) / (double)(2 * pairs + 1), GB_AVG_THREADS);
	qsbr_unregister(t);
}

int main(int argc, char **argv)
{
	static const char *const names[] = { /* in the order of enum how */
		"pool-stack/malloc-free-now",
		"pool-stack/retire-free",
		"pool-stack/pool",
		"pool-stack/ds-stack",
		"pool-stack/ck",
		"pool-stack/urcu",
	};

	pool_bench_register(names, sizeof(names) / sizeof(names[0]), body, setup, teardown);
	int rc = gb_run(argc, argv);

	rcu_barrier(); /* call_rcu's last callbacks, before the leak checkers look */
	if (dom != NULL && (qsbr_stack_delete(ds, NULL, NULL) != 0 || qsbr_pool_delete(pool) != 0 ||
			    qsbr_domain_delete(dom) != 0))
		fprintf(stderr, "pool-stack: cleanup failed\n");
	return rc;
}
