/* SPDX-License-Identifier: MIT */
/* Unit tests: every call, every error path, goal semantics, orphans. */
#include <errno.h>
#include <sched.h>

#include "fixture.h"
#include "puppet.h"

/* ---- helpers ---------------------------------------------------------- */

/* These tests check which call runs which callback, so their domains start
 * no helper thread (QSBR_BACKGROUND_OFF); tests/health.c and tests/client.c
 * cover the helper. */
static qsbr_domain *domain_with(uint32_t batch, uint32_t deferred, qsbr_seq start)
{
	return domain_make(batch, deferred, QSBR_BACKGROUND_OFF, start);
}

static qsbr_domain *domain_off(void)
{
	return domain_with(32, 127, 0);
}

/* Reports and reclaims until nothing is pending (bounded: other threads may
 * hold goals back); returns how many callbacks ran. */
static size_t reclaim_all(qsbr_thread *t, qsbr_domain *d)
{
	size_t total = 0;

	for (int i = 0; i < 100 && stats_of(d).pending != 0; i++) {
		qsbr_quiescent(t);
		total += qsbr_reclaim(t);
	}
	return total;
}

/* ---- library and options ---------------------------------------------- */

static void test_version(void **state)
{
	(void)state;
	assert_string_equal(qsbr_version(), QSBR_VERSION_STRING);
	assert_string_equal(qsbr_version(), PROJECT_VERSION);
	assert_int_equal(QSBR_VERSION_NUMBER,
			 QSBR_VERSION_MAJOR * 10000 + QSBR_VERSION_MINOR * 100 + QSBR_VERSION_PATCH);
}

static void test_options(void **state)
{
	qsbr_options o;

	(void)state;
	assert_int_equal(qsbr_options_init(NULL), EINVAL);
	assert_int_equal(qsbr_options_init(&o), 0);
	assert_int_equal(o.deferred_count, 127);
	assert_int_equal(o.deferred_bytes, 1 << 20);
	assert_int_equal(o.batch_size, 32);
	assert_int_equal(o.initial_seq, 0);

	o.batch_size = 0;
	errno = 0;
	assert_null(qsbr_domain_new(&o));
	assert_int_equal(errno, EINVAL);
	o.batch_size = 4097;
	errno = 0;
	assert_null(qsbr_domain_new(&o));
	assert_int_equal(errno, EINVAL);
	qsbr_options_init(&o);
	o.initial_seq = 42; /* even */
	errno = 0;
	assert_null(qsbr_domain_new(&o));
	assert_int_equal(errno, EINVAL);
}

static void test_domain_new_delete(void **state)
{
	qsbr_domain *d = domain_off();
	qsbr_stats s;

	(void)state;
	assert_non_null(d);
	s = stats_of(d);
	assert_int_equal(s.threads, 0);
	assert_int_equal(s.retired, 0);
	assert_int_equal(qsbr_domain_delete(d), 0);
	assert_int_equal(qsbr_domain_delete(NULL), EINVAL);
}

/* ---- NULL and bad input ------------------------------------------------- */

static void test_null_handles(void **state)
{
	qsbr_domain *d = domain_off();
	qsbr_thread *t = qsbr_register(d);
	struct obj o = { .id = 0 };
	qsbr_stats s;

	(void)state;
	errno = 0;
	assert_null(qsbr_register(NULL));
	assert_int_equal(errno, EINVAL);

#define EXPECT_EINVAL(call)                      \
	do {                                     \
		errno = 0;                       \
		call;                            \
		assert_int_equal(errno, EINVAL); \
	} while (0)
	EXPECT_EINVAL(qsbr_unregister(NULL));
	EXPECT_EINVAL(qsbr_quiescent(NULL));
	EXPECT_EINVAL(qsbr_attach(NULL));
	EXPECT_EINVAL(qsbr_detach(NULL));
	EXPECT_EINVAL(assert_int_equal(qsbr_advance(NULL), 0));
	EXPECT_EINVAL(assert_int_equal(qsbr_deferred_advance(NULL), 0));
	EXPECT_EINVAL(assert_false(qsbr_poll(NULL, 3)));
	EXPECT_EINVAL(assert_false(qsbr_poll(t, 2)));
	EXPECT_EINVAL(assert_false(qsbr_poll(t, 0)));
	EXPECT_EINVAL(assert_int_equal(qsbr_reclaim(NULL), 0));
	EXPECT_EINVAL(qsbr_synchronize(NULL));
	EXPECT_EINVAL(qsbr_barrier(NULL));

	/* A refused retire leaves the node untouched and the caller's. */
	o.node.next = (qsbr_node *)&o;
	o.node.fn = NULL;
	EXPECT_EINVAL(qsbr_retire_node(NULL, &o.node, obj_free));
	EXPECT_EINVAL(qsbr_retire_node(t, NULL, obj_free));
	EXPECT_EINVAL(qsbr_retire_node(t, &o.node, NULL));
	EXPECT_EINVAL(qsbr_retire_node_sized(t, &o.node, NULL, 8));
	assert_ptr_equal(o.node.next, &o.node);
	assert_null(o.node.fn);
#undef EXPECT_EINVAL

	assert_int_equal(qsbr_retire(NULL, &o, free), EINVAL);
	assert_int_equal(qsbr_retire(t, NULL, free), EINVAL);
	assert_int_equal(qsbr_retire(t, &o, NULL), EINVAL);
	assert_int_equal(qsbr_retire_sized(t, &o, NULL, 1), EINVAL);
	assert_int_equal(qsbr_stats_get(NULL, &s), EINVAL);
	assert_int_equal(qsbr_stats_get(d, NULL), EINVAL);

	s = stats_of(d);
	assert_int_equal(s.retired, 0);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* ---- sequences and goals ------------------------------------------------ */

static void test_seq_compare(void **state)
{
	(void)state;
	assert_true(qsbr_seq_lt(1, 3));
	assert_false(qsbr_seq_lt(3, 3));
	assert_true(qsbr_seq_leq(3, 3));
	assert_false(qsbr_seq_leq(5, 3));
	/* Across the wrap: UINT64_MAX precedes 1. */
	assert_true(qsbr_seq_lt(UINT64_MAX, 1));
	assert_true(qsbr_seq_lt(UINT64_MAX - 2, UINT64_MAX));
	assert_false(qsbr_seq_lt(1, UINT64_MAX));
	assert_true(qsbr_seq_leq(UINT64_MAX - 4, 3));
}

static void test_advance(void **state)
{
	qsbr_domain *d = domain_with(32, 127, 1);
	qsbr_seq a, b;

	(void)state;
	a = qsbr_advance(d);
	assert_int_equal(a, 3); /* the new value, not the old */
	b = qsbr_advance(d);
	assert_int_equal(b, 5);
	assert_int_equal(stats_of(d).advances, 2);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

static void test_deferred_advance(void **state)
{
	qsbr_domain *d = domain_with(32, 4, 1);
	qsbr_thread *t = qsbr_register(d);

	(void)state;
	/* Below the limit: wr_seq + 2 and no write. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(qsbr_deferred_advance(t), 3);
		assert_int_equal(stats_of(d).advances, 0);
	}
	/* The fourth deferral reaches the limit: a real advance. */
	assert_int_equal(qsbr_deferred_advance(t), 3);
	assert_int_equal(stats_of(d).advances, 1);
	assert_int_equal(qsbr_deferred_advance(t), 5);
	assert_int_equal(stats_of(d).advances, 1);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

static void test_poll_single_thread(void **state)
{
	qsbr_domain *d = domain_off();
	qsbr_thread *t = qsbr_register(d);
	qsbr_seq g;

	(void)state;
	assert_true(qsbr_poll(t, 1)); /* the initial sequence is passed */
	g = qsbr_advance(d);
	assert_false(qsbr_poll(t, g)); /* we have not reported yet */
	qsbr_quiescent(t);
	assert_true(qsbr_poll(t, g));
	/* A deferred goal is not reached until somebody advances. */
	g = qsbr_deferred_advance(t);
	qsbr_quiescent(t);
	assert_false(qsbr_poll(t, g));
	assert_int_equal(qsbr_advance(d), g);
	assert_false(qsbr_poll(t, g));
	qsbr_quiescent(t);
	assert_true(qsbr_poll(t, g));
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

static void test_poll_waits_for_other_thread(void **state)
{
	qsbr_domain *d = domain_off();
	qsbr_thread *t = qsbr_register(d);
	struct puppet p;
	qsbr_seq g;

	(void)state;
	puppet_start(&p, d);
	g = qsbr_advance(d);
	qsbr_quiescent(t);
	assert_false(qsbr_poll(t, g));
	assert_false(qsbr_poll(t, g)); /* still behind: scans again */
	puppet_do(&p, puppet_quiescent, NULL);
	assert_true(qsbr_poll(t, g));
	assert_true(stats_of(d).scans >= 2);
	puppet_stop(&p);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

static void test_offline_does_not_block(void **state)
{
	qsbr_domain *d = domain_off();
	qsbr_thread *t = qsbr_register(d);
	struct puppet p;
	qsbr_seq g;

	(void)state;
	puppet_start(&p, d);
	assert_int_equal(stats_of(d).online, 2);
	puppet_do(&p, puppet_detach, NULL);
	puppet_do(&p, puppet_detach, NULL); /* idempotent */
	assert_int_equal(stats_of(d).online, 1);
	g = qsbr_advance(d);
	qsbr_quiescent(t);
	assert_true(qsbr_poll(t, g));

	/* Attached again, it holds back goals from now on. */
	puppet_do(&p, puppet_attach, NULL);
	puppet_do(&p, puppet_attach, NULL); /* idempotent */
	g = qsbr_advance(d);
	qsbr_quiescent(t);
	assert_false(qsbr_poll(t, g));
	puppet_do(&p, puppet_quiescent, NULL);
	assert_true(qsbr_poll(t, g));

	/* The caller itself offline: only the puppet counts. */
	qsbr_detach(t);
	g = qsbr_advance(d);
	puppet_do(&p, puppet_quiescent, NULL);
	qsbr_attach(t); /* publishes the current wr_seq: g */
	assert_true(qsbr_poll(t, g));
	puppet_stop(&p);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* ---- retire and reclaim -------------------------------------------------- */

static void test_reclaim_waits_for_goal(void **state)
{
	qsbr_domain *d = domain_with(4, 127, 1);
	qsbr_thread *t = qsbr_register(d);
	struct puppet p;

	(void)state;
	reset_runs();
	puppet_start(&p, d);
	retire_ids(t, 0, 10);
	qsbr_quiescent(t);
	assert_int_equal(qsbr_reclaim(t), 0); /* the puppet has not reported */
	assert_int_equal(qsbr_reclaim(t), 0);
	assert_int_equal(runs(), 0);
	assert_int_equal(stats_of(d).pending, 10);

	puppet_do(&p, puppet_quiescent, NULL);
	qsbr_quiescent(t);
	assert_int_equal(qsbr_reclaim(t), 10);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(run_order[i], i); /* retire order */
		assert_int_equal(times_run(i), 1);
	}
	assert_int_equal(qsbr_reclaim(t), 0);
	assert_int_equal(stats_of(d).freed, 10);
	assert_int_equal(stats_of(d).pending, 0);
	puppet_stop(&p);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

static void test_fifo_across_batches(void **state)
{
	qsbr_domain *d = domain_with(3, 5, 1);
	qsbr_thread *t = qsbr_register(d);

	(void)state;
	reset_runs();
	for (int i = 0; i < 200; i++) {
		qsbr_retire_node(t, &obj_new(i)->node, obj_free);
		if (i % 7 == 0)
			qsbr_quiescent(t);
	}
	reclaim_all(t, d);
	assert_int_equal(runs(), 200);
	for (int i = 0; i < 200; i++) {
		assert_int_equal(run_order[i], i);
		assert_int_equal(times_run(i), 1);
	}
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* Retired objects beyond the ring's batches merge; nothing is lost. */
static void test_ring_merge(void **state)
{
	qsbr_domain *d = domain_with(1, 1000000, 1);
	qsbr_thread *t = qsbr_register(d);
	struct puppet p;

	(void)state;
	reset_runs();
	puppet_start(&p, d); /* never reports: every batch stays pending */
	retire_ids(t, 0, 100);
	assert_int_equal(stats_of(d).pending, 100);
	assert_int_equal(runs(), 0);
	puppet_do(&p, puppet_quiescent, NULL);
	qsbr_quiescent(t);
	qsbr_reclaim(t); /* advances past the deferred goals */
	puppet_do(&p, puppet_quiescent, NULL);
	reclaim_all(t, d);
	assert_int_equal(runs(), 100);
	for (int i = 0; i < 100; i++)
		assert_int_equal(run_order[i], i);
	puppet_stop(&p);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

static int ptr_frees;
static void counting_free(void *p)
{
	ptr_frees++;
	free(p);
}

static void test_retire_pointer(void **state)
{
	qsbr_domain *d = domain_with(8, 127, 1);
	qsbr_thread *t = qsbr_register(d);

	(void)state;
	ptr_frees = 0;
	for (int i = 0; i < 1000; i++) {
		void *p = malloc(16);

		assert_non_null(p);
		assert_int_equal(qsbr_retire_sized(t, p, counting_free, 16), 0);
		qsbr_quiescent(t);
	}
	reclaim_all(t, d);
	assert_int_equal(ptr_frees, 1000);
	assert_int_equal(stats_of(d).pending_bytes, 0);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* A thread that only retires and reports stays bounded by itself. */
static void test_retire_amortizes(void **state)
{
	qsbr_domain *d = domain_with(16, 64, 1);
	qsbr_thread *t = qsbr_register(d);
	uint64_t peak = 0;

	(void)state;
	reset_runs();
	for (int i = 0; i < 100000; i++) {
		struct obj *o = calloc(1, sizeof(*o));

		assert_non_null(o);
		o->id = 0;
		qsbr_retire_node(t, &o->node, obj_free);
		qsbr_quiescent(t);
		if (i % 97 == 0) {
			uint64_t pending = stats_of(d).pending;

			peak = pending > peak ? pending : peak;
		}
	}
	/* One deferral window plus a batch, with slack for the goal lag. */
	assert_true(peak <= 4 * (64 + 16));
	assert_true(stats_of(d).freed > 99000);
	reclaim_all(t, d);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* Byte limit: sized retires past deferred_bytes force advances. */
static void test_byte_limit(void **state)
{
	qsbr_options o;
	qsbr_domain *d;
	qsbr_thread *t;

	(void)state;
	qsbr_options_init(&o);
	o.deferred_count = 1000000;
	o.deferred_bytes = 4096;
	d = qsbr_domain_new(&o);
	t = qsbr_register(d);
	ptr_frees = 0;
	for (int i = 0; i < 10; i++) {
		assert_int_equal(qsbr_retire_sized(t, malloc(8), counting_free, 4096), 0);
		qsbr_quiescent(t);
	}
	assert_true(stats_of(d).advances >= 9);
	assert_true(ptr_frees >= 8); /* freed as it went */
	reclaim_all(t, d);
	assert_int_equal(ptr_frees, 10);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* Callbacks retire again through the thread that runs them. */
static qsbr_thread *reentrant_t;
static int reentrant_depth;
static size_t nested_reclaim_result;

static void reentrant_free(qsbr_node *n)
{
	struct obj *o = (struct obj *)((char *)n - offsetof(struct obj, node));

	if (o->id < 50) {
		/* Each of the first 50 retires a successor id + 100. */
		struct obj *child = obj_new(o->id + 100);

		qsbr_retire_node(reentrant_t, &child->node, reentrant_free);
		nested_reclaim_result += qsbr_reclaim(reentrant_t);
		reentrant_depth++;
	}
	obj_free(n);
}

static void test_reentrant_retire(void **state)
{
	qsbr_domain *d = domain_with(4, 8, 1);
	qsbr_thread *t = qsbr_register(d);

	(void)state;
	reset_runs();
	reentrant_t = t;
	nested_reclaim_result = 0;
	for (int i = 0; i < 50; i++)
		qsbr_retire_node(t, &obj_new(i)->node, reentrant_free);
	reclaim_all(t, d);
	assert_int_equal(runs(), 100);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(times_run(i), 1);
		assert_int_equal(times_run(i + 100), 1);
	}
	assert_int_equal(reentrant_depth, 50);
	assert_int_equal(nested_reclaim_result, 0); /* nested reclaim runs nothing */
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* ---- orphans, delete ------------------------------------------------------ */

static void retire_ten(struct puppet *p, void *arg)
{
	int *base = arg;

	retire_ids(p->t, *base, *base + 10);
}

static void retire_one(struct puppet *p, void *arg)
{
	int *id = arg;

	retire_ids(p->t, *id, *id + 1);
}

static void test_orphan_handoff(void **state)
{
	qsbr_domain *d = domain_off();
	qsbr_thread *t = qsbr_register(d);
	struct puppet p;
	int base = 0;

	(void)state;
	reset_runs();
	puppet_start(&p, d);
	puppet_do(&p, retire_ten, &base);
	puppet_do(&p, puppet_unregister, NULL); /* we are behind: all orphaned */
	puppet_stop(&p);
	assert_int_equal(runs(), 0);
	assert_int_equal(stats_of(d).pending, 10);
	assert_int_equal(stats_of(d).threads, 1);
	reclaim_all(t, d);
	assert_int_equal(runs(), 10);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(run_order[i], i);
		assert_int_equal(times_run(i), 1);
	}
	assert_int_equal(stats_of(d).pending, 0);
	assert_int_equal(stats_of(d).freed, 10);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
	assert_int_equal(runs(), 10); /* nothing ran twice */
}

static void test_delete_busy_then_runs_pending(void **state)
{
	qsbr_domain *d = domain_off();
	qsbr_thread *t = qsbr_register(d);
	struct puppet p;
	int base = 20;

	(void)state;
	reset_runs();
	puppet_start(&p, d);
	retire_ids(t, 0, 10);
	puppet_do(&p, retire_ten, &base);
	assert_int_equal(qsbr_domain_delete(d), EBUSY);
	assert_int_equal(runs(), 0); /* nothing freed */
	puppet_do(&p, puppet_unregister, NULL);
	puppet_stop(&p);
	assert_int_equal(qsbr_domain_delete(d), EBUSY);
	qsbr_unregister(t); /* t is behind the puppet's goals: hands over */
	assert_int_equal(qsbr_domain_delete(d), 0);
	assert_int_equal(runs(), 20);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(times_run(i), 1);
		assert_int_equal(times_run(i + 20), 1);
	}
}

/* Orphan ring overflow merges batches; all still run once. */
static void test_many_orphans(void **state)
{
	qsbr_domain *d = domain_with(1, 1000000, 1);
	qsbr_thread *t = qsbr_register(d);
	int base;

	(void)state;
	reset_runs();
	for (int k = 0; k < 100; k++) {
		struct puppet p;

		base = k * 10;
		puppet_start(&p, d);
		puppet_do(&p, retire_ten, &base);
		puppet_do(&p, puppet_unregister, NULL);
		puppet_stop(&p);
	}
	assert_int_equal(stats_of(d).pending, 1000);
	qsbr_barrier(t);
	assert_int_equal(runs(), 1000);
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(run_order[i], i);
		assert_int_equal(times_run(i), 1);
	}
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* A merge into a full orphan ring never lowers the tail's goal: batches
 * from different threads have unordered goals. */
static void test_orphan_merge_keeps_later_goal(void **state)
{
	qsbr_domain *d = domain_with(1, 1, 1);
	qsbr_thread *t = qsbr_register(d);
	struct puppet slow, b, mid;
	int base;

	(void)state;
	reset_runs();
	puppet_start(&slow, d); /* holds every orphan back for now */
	puppet_start(&b, d);
	base = 0;
	puppet_do(&b, retire_one, &base); /* a low goal */
	for (int k = 1; k <= 64; k++) {
		struct puppet a;

		if (k == 64)
			puppet_start(&mid, d); /* seq past goals 1..63, before 64's */
		base = k;
		puppet_start(&a, d);
		puppet_do(&a, retire_one, &base);
		puppet_do(&a, puppet_unregister, NULL);
		puppet_stop(&a);
	}
	puppet_do(&b, puppet_unregister, NULL); /* ring full: merges into 64's */
	puppet_stop(&b);
	puppet_do(&slow, puppet_detach, NULL);
	qsbr_quiescent(t);
	qsbr_reclaim(t);
	for (int k = 1; k < 64; k++)
		assert_int_equal(times_run(k), 1);
	assert_int_equal(times_run(64), 0); /* mid has not passed its goal */
	assert_int_equal(times_run(0), 0);  /* merged behind it */
	puppet_do(&mid, puppet_quiescent, NULL);
	reclaim_all(t, d);
	assert_int_equal(times_run(64), 1);
	assert_int_equal(times_run(0), 1);
	puppet_stop(&mid);
	puppet_stop(&slow);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* Goals from qsbr_deferred_advance are advanced to by reclaim and barrier. */
static void test_deferred_goal_reached_by_reclaim(void **state)
{
	qsbr_domain *d = domain_off();
	qsbr_thread *t = qsbr_register(d);
	qsbr_seq g;
	int i;

	(void)state;
	g = qsbr_deferred_advance(t);
	for (i = 0; i < 3 && !qsbr_poll(t, g); i++) {
		qsbr_reclaim(t);
		qsbr_quiescent(t);
	}
	assert_true(qsbr_poll(t, g));
	g = qsbr_deferred_advance(t);
	qsbr_barrier(t);
	qsbr_quiescent(t);
	assert_true(qsbr_poll(t, g));
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

static void test_slot_reuse(void **state)
{
	qsbr_domain *d = domain_off();
	qsbr_thread *t[40];

	(void)state;
	for (int i = 0; i < 40; i++) /* grows several blocks */
		t[i] = qsbr_register(d);
	for (int i = 0; i < 40; i++)
		for (int j = i + 1; j < 40; j++)
			assert_ptr_not_equal(t[i], t[j]);
	assert_int_equal(stats_of(d).threads, 40);
	qsbr_thread *freed = t[17];
	qsbr_unregister(t[17]);
	t[17] = qsbr_register(d);
	assert_ptr_equal(t[17], freed); /* freed slots are reused */
	for (int i = 0; i < 40; i++)
		qsbr_unregister(t[i]);
	assert_int_equal(stats_of(d).threads, 0);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* Scans skip offline slots by the online masks and group counts: every
 * online slot, wherever it sits, must still hold goals back. */
static void test_large_registry(void **state)
{
	enum { N = 3000 }; /* several blocks, groups and mask words */
	static qsbr_thread *h[N];
	static const int probes[] = { 0, 7, 8, 63, 64, 511, 512, 1015, 1016, 2039, 2040, N - 1 };
	qsbr_domain *d = domain_off();
	qsbr_thread *t = qsbr_register(d);

	(void)state;
	for (int i = 0; i < N; i++)
		h[i] = qsbr_register(d);
	for (int i = 0; i < N; i++)
		qsbr_detach(h[i]);
	assert_int_equal(stats_of(d).online, 1);
	for (size_t k = 0; k < sizeof(probes) / sizeof(probes[0]); k++) {
		qsbr_thread *p = h[probes[k]];
		qsbr_seq g;

		qsbr_attach(p);
		g = qsbr_advance(d);
		qsbr_quiescent(t);
		assert_false(qsbr_poll(t, g)); /* full scan finds p */
		assert_false(qsbr_poll(t, g)); /* the blocker shortcut */
		qsbr_quiescent(p);
		assert_true(qsbr_poll(t, g));
		/* Offline again: no longer holds anything back. */
		g = qsbr_advance(d);
		qsbr_detach(p);
		qsbr_quiescent(t);
		assert_true(qsbr_poll(t, g));
	}
	/* Two online in one group, one behind: the group is not skipped. */
	qsbr_attach(h[600]);
	qsbr_attach(h[601]);
	qsbr_seq g = qsbr_advance(d);
	qsbr_quiescent(t);
	qsbr_quiescent(h[601]);
	assert_false(qsbr_poll(t, g));
	qsbr_quiescent(h[600]);
	assert_true(qsbr_poll(t, g));
	for (int i = 0; i < N; i++) {
		qsbr_attach(h[i]);
		qsbr_unregister(h[i]);
	}
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* ---- synchronize and barrier ---------------------------------------------- */

struct sync_arg {
	qsbr_domain *d;
	int started, done, seen;
};

static int reported_flag; /* set by the puppet before each quiescent state */

static void *sync_thread(void *arg)
{
	struct sync_arg *a = arg;
	qsbr_thread *t = qsbr_register(a->d);

	__atomic_store_n(&a->started, 1, __ATOMIC_RELEASE);
	qsbr_synchronize(t);
	/* The puppet was online all along: it must have reported. */
	a->seen = __atomic_load_n(&reported_flag, __ATOMIC_ACQUIRE);
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	qsbr_unregister(t);
	return NULL;
}

static void report_until_done(struct puppet *p, void *arg)
{
	struct sync_arg *a = arg;
	struct timespec ts = { 0, 100000 };

	while (!__atomic_load_n(&a->done, __ATOMIC_ACQUIRE)) {
		__atomic_store_n(&reported_flag, 1, __ATOMIC_RELEASE);
		qsbr_quiescent(p->t);
		nanosleep(&ts, NULL);
	}
}

static void test_synchronize(void **state)
{
	qsbr_domain *d = domain_off();
	struct puppet p;
	struct sync_arg a = { d, 0, 0, 0 };
	struct timespec ts = { 0, 20000000 };
	pthread_t th;

	(void)state;
	reported_flag = 0;
	puppet_start(&p, d);
	pthread_create(&th, NULL, sync_thread, &a);
	while (!__atomic_load_n(&a.started, __ATOMIC_ACQUIRE))
		sched_yield();
	nanosleep(&ts, NULL); /* let it block; correctness does not depend on it */
	assert_int_equal(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE), 0);
	puppet_do(&p, report_until_done, &a);
	pthread_join(th, NULL);
	assert_int_equal(a.seen, 1);
	puppet_stop(&p);

	/* Alone, synchronize returns at once: the caller counts as quiescent. */
	qsbr_thread *t = qsbr_register(d);
	qsbr_synchronize(t);
	qsbr_detach(t);
	qsbr_synchronize(t); /* offline caller */
	qsbr_attach(t);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

static void test_barrier(void **state)
{
	qsbr_domain *d = domain_with(32, 127, 1);
	qsbr_thread *t = qsbr_register(d);

	(void)state;
	reset_runs();
	retire_ids(t, 0, 5); /* below a batch and the deferral limit */
	qsbr_barrier(t);
	assert_int_equal(runs(), 5);
	assert_int_equal(stats_of(d).pending, 0);
	qsbr_barrier(t); /* nothing pending: returns */
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* ---- wraparound ------------------------------------------------------------ */

static void test_wraparound(void **state)
{
	qsbr_seq start = UINT64_MAX - 6; /* odd */
	qsbr_domain *d = domain_with(2, 1, start);
	qsbr_thread *t = qsbr_register(d);
	struct puppet p;
	qsbr_seq g = 0;

	(void)state;
	reset_runs();
	puppet_start(&p, d);
	for (int i = 0; i < 20; i++) {
		g = qsbr_advance(d);
		assert_true(g & 1);
		assert_true(g != 0);
		qsbr_quiescent(t);
		assert_false(qsbr_poll(t, g));
		puppet_do(&p, puppet_quiescent, NULL);
		assert_true(qsbr_poll(t, g));
	}
	assert_int_equal(g, start + 40); /* wrapped: 33 */
	assert_int_equal(stats_of(d).advances, 20);

	retire_ids(t, 0, 64);
	qsbr_quiescent(t);
	assert_int_equal(qsbr_reclaim(t), 0);
	puppet_do(&p, puppet_quiescent, NULL);
	reclaim_all(t, d);
	assert_int_equal(runs(), 64);
	puppet_stop(&p);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* The first goals straddle the wrap while an object waits. */
static void test_wraparound_pending(void **state)
{
	qsbr_domain *d = domain_with(1, 1, UINT64_MAX);
	qsbr_thread *t = qsbr_register(d);
	struct puppet p;

	(void)state;
	reset_runs();
	puppet_start(&p, d);
	retire_ids(t, 0, 3); /* goals 1, 3, 5: past the wrap */
	qsbr_quiescent(t);
	assert_int_equal(qsbr_reclaim(t), 0);
	puppet_do(&p, puppet_quiescent, NULL);
	qsbr_quiescent(t);
	assert_int_equal(qsbr_reclaim(t), 3);
	puppet_stop(&p);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_domain_new_delete),
		cmocka_unit_test(test_null_handles),
		cmocka_unit_test(test_seq_compare),
		cmocka_unit_test(test_advance),
		cmocka_unit_test(test_deferred_advance),
		cmocka_unit_test(test_poll_single_thread),
		cmocka_unit_test(test_poll_waits_for_other_thread),
		cmocka_unit_test(test_offline_does_not_block),
		cmocka_unit_test(test_reclaim_waits_for_goal),
		cmocka_unit_test(test_fifo_across_batches),
		cmocka_unit_test(test_ring_merge),
		cmocka_unit_test(test_retire_pointer),
		cmocka_unit_test(test_retire_amortizes),
		cmocka_unit_test(test_byte_limit),
		cmocka_unit_test(test_reentrant_retire),
		cmocka_unit_test(test_orphan_handoff),
		cmocka_unit_test(test_delete_busy_then_runs_pending),
		cmocka_unit_test(test_many_orphans),
		cmocka_unit_test(test_orphan_merge_keeps_later_goal),
		cmocka_unit_test(test_deferred_goal_reached_by_reclaim),
		cmocka_unit_test(test_slot_reuse),
		cmocka_unit_test(test_large_registry),
		cmocka_unit_test(test_synchronize),
		cmocka_unit_test(test_barrier),
		cmocka_unit_test(test_wraparound),
		cmocka_unit_test(test_wraparound_pending),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
