/* SPDX-License-Identifier: MIT */
/*
 * Robustness: threads that exit without unregistering, fork(), stall
 * reports, the memory cap, allocation failure, statistics, and waiters that
 * share grace periods.
 */
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "puppet.h"

/* ---- thread exit ------------------------------------------------------- */

struct exiter {
	qsbr_domain *d;
	int base;
};

static void *exit_without_unregister(void *arg)
{
	struct exiter *e = arg;
	qsbr_thread *t = qsbr_register(e->d);
	qsbr_thread *t2 = qsbr_register(e->d); /* two handles: both go */

	for (int i = 0; i < 50; i++)
		retire_id(i % 2 ? t : t2, e->base + i);
	return NULL; /* no qsbr_unregister */
}

static void test_thread_exit_unregisters(void **state)
{
	qsbr_domain *d = qsbr_domain_new(NULL);
	struct exiter e = { d, 0 };
	pthread_t th;

	(void)state;
	reset_runs();
	pthread_create(&th, NULL, exit_without_unregister, &e);
	pthread_join(th, NULL);
	assert_int_equal(stats_of(d).threads, 0);
	assert_int_equal(qsbr_domain_delete(d), 0);
	assert_int_equal(runs(), 50);
	assert_each_ran_once(0, 50);
}

/* ---- fork ---------------------------------------------------------------- */

static int child_work(qsbr_domain *d, qsbr_thread *t)
{
	/* The puppet did not come along: it must not hold anything back. */
	int base = 1000;

	if (stats_of(d).threads != 1)
		return 10;
	for (int i = 0; i < 100; i++)
		retire_id(t, base + i);
	qsbr_synchronize(t);
	qsbr_barrier(t);
	for (int i = 0; i < 100; i++)
		if (times_run(base + i) != 1)
			return 11;
	for (int i = 0; i < 10; i++) /* the puppet's objects never run here */
		if (times_run(i) != 0)
			return 12;
	qsbr_unregister(t);
	if (qsbr_domain_delete(d) != 0)
		return 13;
	for (int i = 0; i < 10; i++)
		if (times_run(i) != 0)
			return 14;
	return 0;
}

static void retire_ten(struct puppet *p, void *arg)
{
	(void)arg;
	for (int i = 0; i < 10; i++)
		retire_id(p->t, i);
}

/* With no helper thread, so that it runs under ThreadSanitizer too (which
 * cannot start threads in the child); tests/edges.c forks in every mode. */
static void test_fork_child_keeps_working(void **state)
{
	qsbr_domain *d = domain_with_opts(32, 127, QSBR_BACKGROUND_OFF);
	qsbr_thread *t = qsbr_register(d);
	struct puppet p;
	int status;
	pid_t pid;

	(void)state;
	reset_runs();
	puppet_start(&p, d); /* online, never reports until the end */
	puppet_do(&p, retire_ten, NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_work(d, t));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The parent is untouched: the puppet still holds goals back. */
	assert_int_equal(stats_of(d).threads, 2);
	puppet_do(&p, puppet_quiescent, NULL);
	puppet_stop(&p);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
	assert_each_ran_once(0, 10);
}

/* ---- stall reports ---------------------------------------------------------- */

static int stall_calls;
static qsbr_stall_info last_stall;
static char last_name[32];

static void on_stall(const qsbr_stall_info *info, void *arg)
{
	*(int *)arg += 1;
	last_stall = *info;
	strncpy(last_name, info->name, sizeof(last_name) - 1);
}

static void name_puppet(struct puppet *p, void *arg)
{
	assert_int_equal(qsbr_thread_set_name(p->t, arg), 0);
}

static void test_stall_reported(void **state)
{
	qsbr_options o;
	qsbr_domain *d;
	qsbr_thread *t;
	struct puppet p;
	qsbr_seq g;

	(void)state;
	qsbr_options_init(&o);
	o.stall_ms = 20;
	o.on_stall = on_stall;
	o.stall_arg = &stall_calls;
	stall_calls = 0;
	d = qsbr_domain_new(&o);
	t = qsbr_register(d);
	puppet_start(&p, d);
	puppet_do(&p, name_puppet, "stuck-worker");
	g = qsbr_advance(d);
	qsbr_quiescent(t);
	for (int i = 0; i < 8; i++) { /* 8 x 20 ms: at most 8 reports */
		assert_false(qsbr_poll(t, g));
		sleep_ms(20);
	}
	assert_false(qsbr_poll(t, g));
	assert_true(stall_calls >= 1);
	assert_true(stall_calls <= 8); /* rate-limited to one per stall_ms */
	assert_int_equal(last_stall.thread_id, qsbr_thread_id(p.t));
	assert_string_equal(last_name, "stuck-worker");
	assert_true(last_stall.stalled_ms >= 20);
	assert_int_equal(last_stall.periods, 1);
	assert_int_equal(stats_of(d).stalls, (uint64_t)stall_calls);
	puppet_do(&p, puppet_quiescent, NULL);
	assert_true(qsbr_poll(t, g));
	puppet_stop(&p);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);

	/* Bad input. */
	qsbr_options_init(&o);
	o.stall_ms = 10; /* no callback */
	errno = 0;
	assert_null(qsbr_domain_new(&o));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(qsbr_thread_set_name(NULL, "x"), EINVAL);
}

/* ---- memory cap ----------------------------------------------------------- */

static int pressure_calls;

static void on_pressure(qsbr_pressure why, const qsbr_stats *now, void *arg)
{
	assert_int_equal(why, QSBR_PRESSURE_CAP);
	assert_non_null(now);
	*(int *)arg += 1;
}

/* Alone, with advances deferred as long as possible: without the cap
 * pending would reach 20000; with it, it stays near the cap. */
static void test_cap_bounds_pending(void **state)
{
	qsbr_options o;
	qsbr_domain *d;
	qsbr_thread *t;

	(void)state;
	reset_runs();
	qsbr_options_init(&o);
	o.deferred_count = 1000000;
	o.batch_size = 16;
	o.max_pending = 256;
	o.on_pressure = on_pressure;
	o.pressure_arg = &pressure_calls;
	pressure_calls = 0;
	d = qsbr_domain_new(&o);
	t = qsbr_register(d);
	for (int i = 0; i < 20000; i++) {
		retire_id(t, i);
		qsbr_quiescent(t);
	}
	assert_true(stats_of(d).peak_pending <= 256 + 16);
	assert_true(stats_of(d).cap_waits > 0);
	assert_true(pressure_calls >= 1);
	qsbr_barrier(t);
	assert_each_ran_once(0, 20000);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* A stalled reader: the cap's wait gives up after stall_ms, never hangs. */
static void test_cap_with_stalled_reader(void **state)
{
	qsbr_options o;
	qsbr_domain *d;
	qsbr_thread *t;
	struct puppet p;
	int calls = 0;

	(void)state;
	reset_runs();
	qsbr_options_init(&o);
	o.max_pending = 64;
	o.stall_ms = 5;
	o.on_stall = on_stall;
	o.stall_arg = &calls;
	d = qsbr_domain_new(&o);
	t = qsbr_register(d);
	puppet_start(&p, d);
	for (int i = 0; i < 500; i++) {
		retire_id(t, i);
		qsbr_quiescent(t);
	}
	assert_int_equal(runs(), 0); /* nothing could be freed */
	assert_true(stats_of(d).cap_waits > 0);
	puppet_do(&p, puppet_quiescent, NULL);
	puppet_stop(&p);
	qsbr_barrier(t);
	assert_each_ran_once(0, 500);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* ---- allocation failure ------------------------------------------------------ */

/* The hooks are called from any thread (the helper's too): atomic builtins. */
static int alloc_countdown; /* fail when it reaches 0; negative: never */
static int live_allocs;

static void *failing_alloc(size_t size, size_t align, void *arg)
{
	void *p;

	(void)arg;
	if (__atomic_load_n(&alloc_countdown, __ATOMIC_RELAXED) >= 0 &&
	    __atomic_fetch_sub(&alloc_countdown, 1, __ATOMIC_RELAXED) == 0)
		return NULL;
	if (posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size) != 0)
		return NULL;
	__atomic_fetch_add(&live_allocs, 1, __ATOMIC_RELAXED);
	return p;
}

static void counting_free(void *p, void *arg)
{
	(void)arg;
	__atomic_fetch_sub(&live_allocs, 1, __ATOMIC_RELAXED);
	free(p);
}

static int ptr_frees; /* callbacks may run on the helper thread: atomic builtins */
static void free_ptr(void *p)
{
	__atomic_fetch_add(&ptr_frees, 1, __ATOMIC_RELAXED);
	free(p);
}

/* Every allocation the library makes, failed in turn: each call reports its
 * documented error, nothing is lost or freed twice, nothing leaks. */
static void test_allocation_failure(void **state)
{
	(void)state;
	for (int n = 0; n < 40; n++) {
		qsbr_options o;
		qsbr_domain *d;
		qsbr_thread *h[12] = { 0 };
		int retired = 0, kept = 0, attempts = 0;

		qsbr_options_init(&o);
		o.alloc = failing_alloc;
		o.free = counting_free;
		o.batch_size = 4;
		__atomic_store_n(&alloc_countdown, n, __ATOMIC_RELAXED);
		__atomic_store_n(&live_allocs, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&ptr_frees, 0, __ATOMIC_RELAXED);
		errno = 0;
		d = qsbr_domain_new(&o);
		if (d == NULL) {
			assert_int_equal(errno, ENOMEM);
			assert_int_equal(__atomic_load_n(&live_allocs, __ATOMIC_RELAXED), 0);
			continue;
		}
		for (int i = 0; i < 12; i++) { /* 12 handles: 2 blocks */
			errno = 0;
			h[i] = qsbr_register(d);
			if (h[i] == NULL)
				assert_int_equal(errno, ENOMEM);
		}
		for (int i = 0; i < 300; i++) {
			qsbr_thread *t = h[i % 12];
			void *p;
			int rc;

			if (t == NULL)
				continue;
			attempts++;
			p = malloc(8);
			assert_non_null(p);
			rc = qsbr_retire(t, p, free_ptr);
			if (rc == ENOMEM) {
				free(p); /* still ours */
				kept++;
			} else {
				assert_int_equal(rc, 0);
				retired++;
			}
			qsbr_quiescent(t);
		}
		for (int i = 0; i < 12; i++)
			if (h[i] != NULL)
				qsbr_unregister(h[i]);
		assert_int_equal(qsbr_domain_delete(d), 0);
		assert_int_equal(__atomic_load_n(&ptr_frees, __ATOMIC_RELAXED), retired);
		assert_int_equal(__atomic_load_n(&live_allocs, __ATOMIC_RELAXED), 0);
		assert_int_equal(retired + kept, attempts);
	}
	/* Hooks come in pairs. */
	qsbr_options o;

	qsbr_options_init(&o);
	o.alloc = failing_alloc;
	errno = 0;
	assert_null(qsbr_domain_new(&o));
	assert_int_equal(errno, EINVAL);
}

/* ---- synchronize shared by concurrent callers ------------------------------ */

static void *sync_many(void *arg)
{
	qsbr_domain *d = arg;
	qsbr_thread *t = qsbr_register(d);

	for (int i = 0; i < 200; i++)
		qsbr_synchronize(t);
	qsbr_unregister(t);
	return NULL;
}

static void test_synchronize_concurrent(void **state)
{
	qsbr_domain *d = qsbr_domain_new(NULL);
	pthread_t th[4];

	(void)state;
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, sync_many, d);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	/* Each call needs one advance at most; shared ones need fewer. */
	assert_true(stats_of(d).advances <= 800);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* ---- background reclaimer ----------------------------------------------------- */

static pthread_t callback_thread;
static int callbacks_elsewhere, callbacks_run;
static pthread_t forbidden[2];

static void bg_free(qsbr_node *n)
{
	pthread_t self = pthread_self();

	if (!pthread_equal(self, forbidden[0]) && !pthread_equal(self, forbidden[1]))
		callbacks_elsewhere++;
	callback_thread = self;
	callbacks_run++;
	obj_free(n);
}

static void retire_hundred_bg(struct puppet *p, void *arg)
{
	(void)arg;
	forbidden[1] = pthread_self();
	for (int i = 100; i < 200; i++) {
		struct obj *o = calloc(1, sizeof(*o));

		assert_non_null(o);
		o->id = i;
		qsbr_retire_node(p->t, &o->node, bg_free);
		qsbr_quiescent(p->t);
	}
}

/* Callbacks run on the domain's reclaimer thread, never on the retiring
 * ones, and qsbr_barrier covers batches other threads closed. */
static void test_background_reclaimer(void **state)
{
	qsbr_options o;
	qsbr_domain *d;
	qsbr_thread *t;
	struct puppet p;

	(void)state;
	reset_runs();
	callbacks_elsewhere = callbacks_run = 0;
	qsbr_options_init(&o);
	o.background = 1;
	o.batch_size = 10;
	d = qsbr_domain_new(&o);
	t = qsbr_register(d);
	forbidden[0] = pthread_self();
	puppet_start(&p, d);
	puppet_do(&p, retire_hundred_bg, NULL);
	for (int i = 0; i < 100; i++) {
		struct obj *ob = calloc(1, sizeof(*ob));

		assert_non_null(ob);
		ob->id = i;
		qsbr_retire_node(t, &ob->node, bg_free);
		assert_int_equal(qsbr_reclaim(t), 0); /* the reclaimer's work */
		qsbr_quiescent(t);
	}
	puppet_do(&p, puppet_quiescent, NULL);
	qsbr_barrier(t); /* ours and the puppet's closed batches */
	for (int i = 0; i < 200; i++)
		assert_int_equal(times_run(i), 1);
	assert_int_equal(callbacks_run, 200);
	assert_int_equal(callbacks_elsewhere, 200);
	assert_int_equal(stats_of(d).pending, 0);
	puppet_stop(&p);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* ---- statistics -------------------------------------------------------------- */

static void test_stats_peaks(void **state)
{
	qsbr_options o;
	qsbr_domain *d;
	qsbr_thread *t;
	struct puppet p;

	(void)state;
	reset_runs();
	qsbr_options_init(&o);
	o.batch_size = 10;
	d = qsbr_domain_new(&o);
	t = qsbr_register(d);
	puppet_start(&p, d);
	for (int i = 0; i < 100; i++)
		qsbr_retire_node_sized(t, &((struct obj *)calloc(1, sizeof(struct obj)))->node,
				       obj_free, 64);
	assert_int_equal(stats_of(d).peak_pending, 100);
	assert_int_equal(stats_of(d).peak_pending_bytes, 6400);
	assert_int_equal(stats_of(d).pending_bytes, 6400);
	assert_true(qsbr_thread_id(t) != qsbr_thread_id(p.t));
	puppet_stop(&p);
	qsbr_barrier(t);
	assert_int_equal(stats_of(d).pending, 0);
	assert_int_equal(stats_of(d).pending_bytes, 0);
	assert_int_equal(stats_of(d).peak_pending, 100);
	errno = 0;
	assert_int_equal(qsbr_thread_id(NULL), 0);
	assert_int_equal(errno, EINVAL);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thread_exit_unregisters),
		cmocka_unit_test(test_fork_child_keeps_working),
		cmocka_unit_test(test_stall_reported),
		cmocka_unit_test(test_cap_bounds_pending),
		cmocka_unit_test(test_cap_with_stalled_reader),
		cmocka_unit_test(test_allocation_failure),
		cmocka_unit_test(test_synchronize_concurrent),
		cmocka_unit_test(test_background_reclaimer),
		cmocka_unit_test(test_stats_peaks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
