/* SPDX-License-Identifier: MIT */
/*
 * Pools (qsbr/pool.h): every call and error path, allocation failures
 * injected through the domain's allocator, reuse only after the goal,
 * objects crossing threads, threads that leave, delete and trim, a stress
 * run with canaries (every build), and a deliberately buggy reader that
 * AddressSanitizer must report (ASan build only).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "puppet.h"

#include <qsbr/pool.h>

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

#ifndef LIB_ASSERTS
#define LIB_ASSERTS 1
#endif

static qsbr_pool_stats pool_stats(qsbr_pool *p)
{
	qsbr_pool_stats s;

	assert_int_equal(qsbr_pool_stats_get(p, &s), 0);
	return s;
}

static uint64_t per_slab(qsbr_pool *p)
{
	qsbr_pool_stats s = pool_stats(p);

	return s.slabs == 0 ? 0 : (s.cached + s.allocated + s.waiting) / s.slabs;
}

static void test_new_errors(void **state)
{
	qsbr_domain *d = domain_with_opts(32, 127, QSBR_BACKGROUND_OFF);
	qsbr_pool *p;

	(void)state;
	errno = 0;
	assert_null(qsbr_pool_new(NULL, 16, 8));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(qsbr_pool_new(d, 0, 8));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(qsbr_pool_new(d, QSBR_POOL_SIZE_MAX + 1, 8));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(qsbr_pool_new(d, 16, 24));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(qsbr_pool_new(d, 16, QSBR_POOL_ALIGN_MAX * 2));
	assert_int_equal(errno, EINVAL);
	p = qsbr_pool_new(d, QSBR_POOL_SIZE_MAX, QSBR_POOL_ALIGN_MAX);
	assert_non_null(p);
	assert_int_equal(qsbr_pool_delete(p), 0);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* Objects are distinct, aligned, writable; stats follow them. */
static void test_alloc_free(void **state)
{
	static const size_t aligns[] = { 0, 1, 8, 64, 256, 4096 };
	qsbr_domain *d = domain_with_opts(32, 127, QSBR_BACKGROUND_OFF);
	qsbr_thread *t = qsbr_register(d);

	(void)state;
	for (size_t a = 0; a < sizeof(aligns) / sizeof(aligns[0]); a++) {
		size_t align = aligns[a] ? aligns[a] : _Alignof(max_align_t);
		qsbr_pool *p = qsbr_pool_new(d, 40, aligns[a]);
		enum { N = 3000 };
		static unsigned char *objs[N];
		qsbr_pool_stats s;

		assert_non_null(p);
		for (int i = 0; i < N; i++) {
			objs[i] = qsbr_pool_alloc(t, p);
			assert_non_null(objs[i]);
			assert_int_equal((uintptr_t)objs[i] % align, 0);
			memset(objs[i], i & 0xff, 40);
		}
		for (int i = 0; i < N; i++)
			for (int k = 0; k < 40; k++)
				assert_int_equal(objs[i][k], i & 0xff);
		s = pool_stats(p);
		assert_int_equal(s.allocated, N);
		assert_int_equal(s.waiting, 0);
		assert_int_equal(s.object_size, 40);
		assert_true(s.stride >= 40 + 32);
		assert_int_equal(s.bytes_held % s.slabs, 0);
		assert_int_equal(s.cached + s.allocated, s.slabs * per_slab(p));
		assert_int_equal(qsbr_pool_delete(p), EBUSY);
		for (int i = 0; i < N; i++)
			qsbr_pool_free(t, p, objs[i]);
		s = pool_stats(p);
		assert_int_equal(s.allocated, 0);
		assert_int_equal(s.cached, s.slabs * per_slab(p));
		assert_true(s.thread_cached > 0 && s.thread_cached <= s.cache_max);
		assert_int_equal(qsbr_pool_delete(p), 0);
	}
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

static void test_null_and_foreign(void **state)
{
	qsbr_domain *d = domain_with_opts(32, 127, QSBR_BACKGROUND_OFF);
	qsbr_domain *d2 = domain_with_opts(32, 127, QSBR_BACKGROUND_OFF);
	qsbr_thread *t = qsbr_register(d), *t2 = qsbr_register(d2);
	qsbr_pool *p = qsbr_pool_new(d, 16, 0);
	qsbr_pool_stats s;
	void *o;

	(void)state;
	errno = 0;
	assert_null(qsbr_pool_alloc(NULL, p));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(qsbr_pool_alloc(t, NULL));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(qsbr_pool_alloc(t2, p)); /* a handle of another domain */
	assert_int_equal(errno, EINVAL);
	o = qsbr_pool_alloc(t, p);
	assert_non_null(o);
	/* Retire and free refuse the same bad arguments the same way. */
	for (int k = 0; k < 2; k++) {
		void (*give_back)(qsbr_thread *, qsbr_pool *, void *) =
			k == 0 ? qsbr_pool_retire : qsbr_pool_free;

		errno = 0;
		give_back(NULL, p, o);
		assert_int_equal(errno, EINVAL);
		errno = 0;
		give_back(t, NULL, o);
		assert_int_equal(errno, EINVAL);
		errno = 0;
		give_back(t, p, NULL);
		assert_int_equal(errno, EINVAL);
		errno = 0;
		give_back(t2, p, o);
		assert_int_equal(errno, EINVAL);
	}
	assert_int_equal(pool_stats(p).allocated, 1); /* still the caller's */
	errno = 0;
	assert_int_equal(qsbr_pool_trim(NULL), 0);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(qsbr_pool_stats_get(NULL, &s), EINVAL);
	assert_int_equal(qsbr_pool_stats_get(p, NULL), EINVAL);
	assert_int_equal(qsbr_pool_delete(NULL), EINVAL);
	qsbr_pool_free(t, p, o);
	assert_int_equal(qsbr_pool_delete(p), 0);
	qsbr_unregister(t);
	qsbr_unregister(t2);
	assert_int_equal(qsbr_domain_delete(d), 0);
	assert_int_equal(qsbr_domain_delete(d2), 0);
}

/* A second free or retire is caught from the head: debug builds of the
 * library stop, release builds refuse with EINVAL.  In a child process. */
static void test_double_free(void **state)
{
	int st;
	pid_t pid;

	(void)state;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		qsbr_domain *d = qsbr_domain_new(NULL);
		qsbr_thread *t = qsbr_register(d);
		qsbr_pool *p = qsbr_pool_new(d, 16, 0);
		void *o = qsbr_pool_alloc(t, p);

		if (LIB_ASSERTS)
			(void)freopen("/dev/null", "w", stderr);
		qsbr_pool_free(t, p, o);
		errno = 0;
		qsbr_pool_free(t, p, o);
		if (errno != EINVAL)
			_exit(2);
		errno = 0;
		qsbr_pool_retire(t, p, o);
		_exit(errno == EINVAL ? 0 : 3);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (LIB_ASSERTS) {
		assert_true(WIFSIGNALED(st));
		assert_int_equal(WTERMSIG(st), SIGABRT);
	} else {
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
}

/* A retired object is not reused while an online thread that was online at
 * the retire has not passed a quiescent state. */
static void test_reuse_after_goal(void **state)
{
	qsbr_domain *d = domain_with_opts(1, 1, QSBR_BACKGROUND_OFF);
	qsbr_thread *t = qsbr_register(d);
	qsbr_pool *p = qsbr_pool_new(d, 64, 0);
	struct puppet pup;
	void *a, *keep, **more;
	uint64_t n, cached, cap;
	bool found = false;

	(void)state;
	puppet_start(&pup, d);
	keep = qsbr_pool_alloc(t, p); /* keeps a's slab from emptying */
	a = qsbr_pool_alloc(t, p);
	assert_non_null(a);
	qsbr_pool_retire(t, p, a);
	assert_int_equal(pool_stats(p).waiting, 1);
	n = per_slab(p);
	cap = 3 * n;
	more = calloc(cap, sizeof(*more));
	assert_non_null(more);
	/* Two slabs' worth, with quiescent states and reclaims of our own:
	 * the puppet holds the goal back. */
	for (uint64_t i = 0; i < 2 * n; i++) {
		more[i] = qsbr_pool_alloc(t, p);
		assert_non_null(more[i]);
		assert_ptr_not_equal(more[i], a);
		qsbr_quiescent(t);
		qsbr_reclaim(t);
	}
	assert_int_equal(pool_stats(p).waiting, 1);
	for (uint64_t i = 0; i < 2 * n; i++)
		qsbr_pool_free(t, p, more[i]);
	puppet_do(&pup, puppet_quiescent, NULL);
	qsbr_barrier(t);
	assert_int_equal(pool_stats(p).waiting, 0);
	/* Now it comes back before the pool takes a new slab: within its
	 * cached objects. */
	cached = pool_stats(p).cached;
	assert_true(cached <= cap);
	for (uint64_t i = 0; i < cached && !found; i++) {
		more[i] = qsbr_pool_alloc(t, p);
		found = more[i] == a;
	}
	assert_true(found);
	for (uint64_t i = 0; i < cached && more[i] != a; i++)
		qsbr_pool_free(t, p, more[i]);
	qsbr_pool_free(t, p, a);
	qsbr_pool_free(t, p, keep);
	puppet_stop(&pup);
	free(more);
	assert_int_equal(qsbr_pool_delete(p), 0);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* A thread allocates, retires some and frees some, keeps none, then leaves
 * (unregister, or exit without unregistering): nothing is lost, and another
 * thread reuses the memory without new slabs. */
struct leaver {
	qsbr_domain *d;
	qsbr_pool *p;
	int n;
	bool unregister;
};

static void *leaver_main(void *arg)
{
	struct leaver *l = arg;
	qsbr_thread *t = qsbr_register(l->d);

	for (int i = 0; i < l->n; i++) {
		unsigned *o = qsbr_pool_alloc(t, l->p);

		assert_non_null(o);
		*o = 0xabcd;
		if (i % 3 == 0)
			qsbr_pool_free(t, l->p, o);
		else
			qsbr_pool_retire(t, l->p, o);
	}
	if (l->unregister)
		qsbr_unregister(t);
	return NULL;
}

static void run_leaver(uint32_t background, bool unregister)
{
	qsbr_domain *d = domain_with_opts(32, 127, background);
	qsbr_pool *p = qsbr_pool_new(d, sizeof(unsigned), 0);
	struct leaver l = { d, p, 3000, unregister };
	qsbr_thread *t;
	pthread_t th;
	qsbr_pool_stats s;
	void **objs;
	uint64_t slabs;

	assert_int_equal(pthread_create(&th, NULL, leaver_main, &l), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	qsbr_barrier_domain(d);
	s = pool_stats(p);
	assert_int_equal(s.allocated, 0);
	assert_int_equal(s.waiting, 0);
	assert_int_equal(s.thread_cached, 0); /* its cache came back */
	assert_int_equal(s.cached, s.slabs * per_slab(p));
	slabs = s.slabs;
	t = qsbr_register(d);
	objs = calloc(slabs * per_slab(p), sizeof(*objs));
	assert_non_null(objs);
	for (uint64_t i = 0; i < slabs * per_slab(p); i++) {
		objs[i] = qsbr_pool_alloc(t, p);
		assert_non_null(objs[i]);
	}
	assert_int_equal(pool_stats(p).slabs, slabs);
	for (uint64_t i = 0; i < slabs * per_slab(p); i++)
		qsbr_pool_retire(t, p, objs[i]);
	free(objs);
	assert_int_equal(qsbr_pool_delete(p), 0); /* waits for the grace period */
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

static void test_leaver_unregisters(void **state)
{
	(void)state;
	run_leaver(QSBR_BACKGROUND_OFF, true);
	run_leaver(QSBR_BACKGROUND_AUTO, true);
}

static void test_leaver_exits(void **state)
{
	(void)state;
	run_leaver(QSBR_BACKGROUND_OFF, false);
	run_leaver(QSBR_BACKGROUND_ALL, false);
}

/* delete: EBUSY while allocated; waits for waiting ones; EDEADLK from a
 * callback when it would have to wait. */
static qsbr_pool *cb_pool;
static int cb_delete_result = -1;

static void delete_from_callback(qsbr_node *n)
{
	cb_delete_result = qsbr_pool_delete(cb_pool);
	free(n);
}

static void test_delete(void **state)
{
	qsbr_domain *d = domain_with_opts(32, 127, QSBR_BACKGROUND_OFF);
	qsbr_thread *t = qsbr_register(d);
	qsbr_pool *p = qsbr_pool_new(d, 100, 0);
	qsbr_node *n;
	void *o = qsbr_pool_alloc(t, p);

	(void)state;
	assert_int_equal(qsbr_pool_delete(p), EBUSY);
	qsbr_pool_retire(t, p, o);
	cb_pool = p;
	n = calloc(1, sizeof(*n));
	assert_non_null(n);
	/* Retired after o, same batch: its callback runs after o's, so o is
	 * back; make o wait longer with a second object retired later. */
	qsbr_retire_node(t, n, delete_from_callback);
	o = qsbr_pool_alloc(t, p);
	qsbr_pool_retire(t, p, o);
	qsbr_barrier(t);
	assert_int_equal(cb_delete_result, EDEADLK);
	/* The pool is intact: use it once more. */
	o = qsbr_pool_alloc(t, p);
	assert_non_null(o);
	qsbr_pool_retire(t, p, o);
	/* Three in the thread's open batch: the delete takes them, and waits
	 * a grace period for them. */
	assert_int_equal(pool_stats(p).waiting, 3);
	assert_int_equal(qsbr_pool_delete(p), 0);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* With objects of t's waiting: t's cache runs dry at an alloc, which sets
 * its reserve's room to what t holds retired; the objects it allocated
 * for that are retired too.  Returns their count. */
static uint64_t run_dry(qsbr_thread *t, qsbr_pool *p)
{
	uint64_t extra = pool_stats(p).thread_cached + 1;
	void **more = calloc(extra, sizeof(*more));

	assert_non_null(more);
	for (uint64_t i = 0; i < extra; i++)
		more[i] = qsbr_pool_alloc(t, p);
	for (uint64_t i = 0; i < extra; i++)
		qsbr_pool_retire(t, p, more[i]);
	qsbr_pool_flush(t, p);
	free(more);
	return extra;
}

struct consumer {
	qsbr_domain *d;
	qsbr_pool *p;
	void **objs;
	uint64_t n;
	qsbr_pool_stats after; /* with the consumer still registered */
};

static void *consumer_main(void *arg)
{
	struct consumer *k = arg;
	qsbr_thread *t = qsbr_register(k->d);

	for (uint64_t i = 0; i < k->n; i++)
		qsbr_pool_retire(t, k->p, k->objs[i]);
	qsbr_pool_flush(t, k->p);
	qsbr_barrier(t);
	k->after = pool_stats(k->p);
	qsbr_unregister(t);
	return NULL;
}

/* A thread that only retires (a queue's consumer) keeps no reserve: what
 * comes back beyond its cache goes where the allocating threads find it. */
static void test_consumer_keeps_no_reserve(void **state)
{
	qsbr_domain *d = domain_with_opts(32, 127, QSBR_BACKGROUND_OFF);
	qsbr_thread *t = qsbr_register(d);
	qsbr_pool *p = qsbr_pool_new(d, 64, 0);
	struct consumer k = { d, p, NULL, 0, { 0 } };
	pthread_t th;
	uint64_t slabs;

	(void)state;
	k.n = 4 * pool_stats(p).cache_max;
	k.objs = calloc(k.n, sizeof(*k.objs));
	assert_non_null(k.objs);
	for (uint64_t i = 0; i < k.n; i++)
		k.objs[i] = qsbr_pool_alloc(t, p);
	slabs = pool_stats(p).slabs;
	qsbr_detach(t); /* the consumer's barrier does not wait for us */
	assert_int_equal(pthread_create(&th, NULL, consumer_main, &k), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	qsbr_attach(t);
	assert_int_equal(k.after.waiting, 0);
	assert_int_equal(k.after.thread_reserve, 0);
	assert_true(k.after.thread_cached - k.after.thread_reserve <= 2 * k.after.cache_max);
	/* The producer allocates them again without a new slab. */
	for (uint64_t i = 0; i < k.n; i++)
		k.objs[i] = qsbr_pool_alloc(t, p);
	assert_int_equal(pool_stats(p).slabs, slabs);
	for (uint64_t i = 0; i < k.n; i++)
		qsbr_pool_free(t, p, k.objs[i]);
	free(k.objs);
	qsbr_unregister(t);
	assert_int_equal(qsbr_pool_delete(p), 0);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

struct decay {
	qsbr_domain *d;
	qsbr_pool *p;
	uint64_t slabs_before; /* after the frees, before the pause */
};

static void *decay_main(void *arg)
{
	struct decay *k = arg;
	qsbr_thread *t = qsbr_register(k->d);
	uint64_t n = 40 * 8; /* 40 slabs of 8 objects (the test checks 8) */
	void **objs = calloc(n, sizeof(*objs));
	struct timespec pause = { 1, 200 * 1000 * 1000 }; /* past POOL_DECAY_MS */

	assert_non_null(objs);
	for (uint64_t i = 0; i < n; i++)
		objs[i] = qsbr_pool_alloc(t, k->p);
	for (uint64_t i = 0; i < n; i++)
		qsbr_pool_free(t, k->p, objs[i]);
	free(objs);
	k->slabs_before = pool_stats(k->p).slabs;
	while (nanosleep(&pause, &pause) != 0)
		;
	qsbr_unregister(t); /* its cache goes back: a slow path */
	return NULL;
}

/* Empty slabs past keep_empty (1 MiB of them) are kept for the next burst,
 * and go back once they have been in excess for a while (POOL_DECAY_MS),
 * at the pool's next slow path. */
static void test_empty_slabs_decay(void **state)
{
	qsbr_domain *d = domain_with_opts(32, 127, QSBR_BACKGROUND_OFF);
	struct decay k = { d, qsbr_pool_new(d, 8000, 0), 0 };
	qsbr_pool_stats s;
	pthread_t th;

	(void)state;
	assert_non_null(k.p);
	assert_int_equal(pthread_create(&th, NULL, decay_main, &k), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(per_slab(k.p), 8);
	/* 40 slabs: about 20 emptied at the frees, more than the 8 of 64
	 * KiB that 1 MiB keeps; kept through the frees (well within the
	 * decay time), given back after the pause. */
	assert_int_equal(k.slabs_before, 40);
	s = pool_stats(k.p);
	assert_true(s.slabs < k.slabs_before);
	assert_int_equal(s.allocated, 0);
	assert_int_equal(qsbr_pool_delete(k.p), 0);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

static void test_trim(void **state)
{
	qsbr_domain *d = domain_with_opts(32, 127, QSBR_BACKGROUND_OFF);
	qsbr_thread *t = qsbr_register(d);
	qsbr_pool *p = qsbr_pool_new(d, 200, 0);
	qsbr_pool_stats s;
	void **objs, *first;
	uint64_t n, total, slab, extra;

	(void)state;
	assert_int_equal(qsbr_pool_trim(p), 0);
	first = qsbr_pool_alloc(t, p);
	assert_non_null(first);
	n = per_slab(p);
	total = 4 * n;
	objs = calloc(total, sizeof(*objs));
	assert_non_null(objs);
	for (uint64_t i = 0; i < total; i++) {
		objs[i] = qsbr_pool_alloc(t, p);
		assert_non_null(objs[i]);
	}
	s = pool_stats(p);
	assert_int_equal(s.slabs, 5);
	assert_int_equal(s.allocated, total + 1);
	for (uint64_t i = 0; i < total; i++)
		qsbr_pool_retire(t, p, objs[i]);
	assert_true(pool_stats(p).waiting > 0);
	assert_int_equal(qsbr_pool_trim(p), 0); /* nothing empty yet */
	qsbr_pool_flush(t, p);
	extra = run_dry(t, p);
	qsbr_barrier(t);
	s = pool_stats(p);
	assert_int_equal(s.waiting, 0);
	assert_int_equal(s.allocated, 1);
	/* More came back than the cache holds: the rest is in the thread's
	 * reserve, within what it had waiting. */
	assert_true(total > s.cache_max);
	assert_true(s.thread_cached >= total); /* and what the last refill took */
	assert_true(s.thread_reserve > 0 && s.thread_reserve <= total + extra);
	assert_true(s.thread_cached - s.thread_reserve <= s.cache_max);
	/* Allocated again, they come from the cache and the reserve: no new
	 * slab. */
	for (uint64_t i = 0; i < total; i++)
		objs[i] = qsbr_pool_alloc(t, p);
	assert_int_equal(pool_stats(p).slabs, 5);
	for (uint64_t i = 0; i < total; i++)
		qsbr_pool_retire(t, p, objs[i]);
	qsbr_pool_flush(t, p);
	run_dry(t, p);
	qsbr_barrier(t);
	/* Trim takes the reserve back (the cache stays the thread's). */
	assert_true(pool_stats(p).thread_reserve > 0);
	qsbr_pool_trim(p);
	s = pool_stats(p);
	assert_int_equal(s.thread_reserve, 0);
	assert_true(s.thread_cached > 0 && s.thread_cached <= s.cache_max);
	/* The thread's cache goes back at unregister, and slabs empty. */
	qsbr_unregister(t);
	s = pool_stats(p);
	assert_int_equal(s.thread_cached, 0);
	assert_int_equal(s.cached, s.slabs * per_slab(p) - 1);
	/* Slabs that emptied went back but one, kept; others may hold objects
	 * in the depot, which trim puts back too; the first slab still holds
	 * the first object. */
	slab = s.bytes_held / s.slabs;
	assert_int_equal(qsbr_pool_trim(p), (s.slabs - 1) * slab);
	assert_int_equal(qsbr_pool_trim(p), 0);
	assert_int_equal(pool_stats(p).slabs, 1);
	free(objs);
	assert_int_equal(qsbr_pool_delete(p), EBUSY);
	t = qsbr_register(d);
	qsbr_pool_free(t, p, first); /* into the cache */
	assert_int_equal(pool_stats(p).thread_cached, 1);
	qsbr_unregister(t);
	assert_int_equal(pool_stats(p).slabs, 1); /* kept empty */
	assert_int_equal(qsbr_pool_trim(p), slab);
	assert_int_equal(pool_stats(p).bytes_held, 0);
	assert_int_equal(qsbr_pool_delete(p), 0);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

static void cache_alloc_free(struct puppet *pup, void *arg);

/* fork(): the child goes on with the forking thread's handle and caches;
 * the cache of a thread that did not come along stays out of the pool. */
static void test_fork(void **state)
{
	qsbr_domain *d = domain_with_opts(32, 127, QSBR_BACKGROUND_OFF);
	qsbr_thread *t = qsbr_register(d);
	qsbr_pool *p = qsbr_pool_new(d, 32, 0);
	struct puppet a;
	void *o;
	pid_t pid;
	int st;

	(void)state;
	puppet_start(&a, d);
	puppet_do(&a, cache_alloc_free, p);
	o = qsbr_pool_alloc(t, p);
	qsbr_pool_free(t, p, o);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		qsbr_pool_stats s;

		for (int i = 0; i < 3000; i++) {
			o = qsbr_pool_alloc(t, p);
			if (o == NULL)
				_exit(2);
			memset(o, 0x5a, 32);
			qsbr_pool_retire(t, p, o);
			qsbr_quiescent(t);
		}
		qsbr_pool_flush(t, p);
		qsbr_barrier(t);
		if (qsbr_pool_stats_get(p, &s) != 0 || s.allocated != 0 || s.waiting != 0)
			_exit(3);
		if (qsbr_pool_delete(p) != 0)
			_exit(4);
		qsbr_unregister(t);
		_exit(qsbr_domain_delete(d) == 0 ? 0 : 5);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	puppet_stop(&a);
	qsbr_unregister(t);
	assert_int_equal(pool_stats(p).thread_cached, 0); /* both came back */
	assert_int_equal(qsbr_pool_delete(p), 0);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* A thread's retires wait in its batch until it fills or is flushed. */
static void test_flush(void **state)
{
	qsbr_domain *d = domain_with_opts(32, 127, QSBR_BACKGROUND_OFF);
	qsbr_domain *d2 = domain_with_opts(32, 127, QSBR_BACKGROUND_OFF);
	qsbr_thread *t = qsbr_register(d), *t2 = qsbr_register(d2);
	qsbr_pool *p = qsbr_pool_new(d, 8, 0);
	void *o[8];

	(void)state;
	for (int i = 0; i < 8; i++)
		o[i] = qsbr_pool_alloc(t, p);
	qsbr_pool_flush(t, p); /* nothing to hand over */
	qsbr_pool_retire(t, p, o[0]);
	qsbr_barrier(t);
	assert_int_equal(pool_stats(p).waiting, 1); /* in the batch */
	qsbr_pool_flush(t, p);
	qsbr_barrier(t);
	assert_int_equal(pool_stats(p).waiting, 0);
	for (int i = 1; i < 8; i++)
		qsbr_pool_retire(t, p, o[i]);
	assert_int_equal(pool_stats(p).waiting, 7);
	qsbr_pool_flush(t, p);
	qsbr_barrier(t);
	assert_int_equal(pool_stats(p).waiting, 0);
	errno = 0;
	qsbr_pool_flush(NULL, p);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	qsbr_pool_flush(t, NULL);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	qsbr_pool_flush(t2, p);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(qsbr_pool_delete(p), 0);
	qsbr_unregister(t);
	qsbr_unregister(t2);
	assert_int_equal(qsbr_domain_delete(d), 0);
	assert_int_equal(qsbr_domain_delete(d2), 0);
}

/* A thread's cache is bounded, and goes back at unregister; a pool deleted
 * while threads hold caches leaves them to their owners to free. */
static void cache_alloc_free(struct puppet *pup, void *arg)
{
	qsbr_pool *p = arg;
	void *objs[1500];

	for (int i = 0; i < 1500; i++)
		objs[i] = qsbr_pool_alloc(pup->t, p);
	for (int i = 0; i < 1500; i++)
		qsbr_pool_free(pup->t, p, objs[i]);
}

static void test_thread_caches(void **state)
{
	qsbr_domain *d = domain_with_opts(32, 127, QSBR_BACKGROUND_OFF);
	qsbr_pool *p = qsbr_pool_new(d, 24, 0), *p2;
	struct puppet a, b;
	qsbr_pool_stats s;

	(void)state;
	puppet_start(&a, d);
	puppet_start(&b, d);
	puppet_do(&a, cache_alloc_free, p);
	s = pool_stats(p);
	assert_true(s.thread_cached > 0 && s.thread_cached <= s.cache_max);
	puppet_do(&b, cache_alloc_free, p);
	assert_true(pool_stats(p).thread_cached <= 2 * s.cache_max);
	puppet_do(&a, puppet_unregister, NULL);
	s = pool_stats(p);
	assert_true(s.thread_cached > 0 && s.thread_cached <= s.cache_max); /* b's */
	assert_int_equal(s.cached, s.slabs * per_slab(p));
	/* b still holds a cache of p: delete anyway. */
	assert_int_equal(qsbr_pool_delete(p), 0);
	/* A new pool (maybe at the same address): b's dead cache is not
	 * taken for it, and b frees it. */
	p2 = qsbr_pool_new(d, 24, 0);
	assert_non_null(p2);
	puppet_do(&b, cache_alloc_free, p2);
	s = pool_stats(p2);
	assert_int_equal(s.allocated, 0);
	assert_int_equal(s.cached, s.slabs * per_slab(p2));
	puppet_stop(&a);
	puppet_stop(&b);
	assert_int_equal(pool_stats(p2).thread_cached, 0);
	assert_int_equal(qsbr_pool_delete(p2), 0);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* ---- Allocation failures through the domain's allocator ---------------- */

static long alloc_calls, alloc_fail_at = -1, alloc_live;

static void *counting_alloc(size_t size, size_t align, void *arg)
{
	void *p;

	(void)arg;
	if (alloc_calls++ == alloc_fail_at)
		return NULL;
	if (align < sizeof(void *))
		align = sizeof(void *);
	if (posix_memalign(&p, align, size) != 0)
		return NULL;
	alloc_live++;
	return p;
}

static void counting_free(void *p, void *arg)
{
	(void)arg;
	if (p != NULL)
		alloc_live--;
	free(p);
}

static void test_alloc_failures(void **state)
{
	qsbr_options o;
	bool failed_somewhere = true;
	int rounds = 0;

	(void)state;
	/* Until the k-th allocation is past the last one the round makes. */
	for (long k = 0; k == 0 || alloc_calls > k - 1; k++) {
		qsbr_domain *d;
		qsbr_thread *t;
		qsbr_pool *p;
		void **objs;
		uint64_t n = 0;
		long base;

		assert_int_equal(qsbr_options_init(&o), 0);
		o.alloc = counting_alloc;
		o.free = counting_free;
		o.background = QSBR_BACKGROUND_OFF;
		alloc_fail_at = -1;
		d = qsbr_domain_new(&o);
		assert_non_null(d);
		t = qsbr_register(d);
		assert_non_null(t);
		base = alloc_live;
		alloc_calls = 0;
		alloc_fail_at = k;
		failed_somewhere = false;
		errno = 0;
		p = qsbr_pool_new(d, 500, 0);
		if (p == NULL) {
			assert_int_equal(errno, ENOMEM);
			assert_int_equal(alloc_live, base);
			failed_somewhere = true;
			p = qsbr_pool_new(d, 500, 0); /* only one allocation fails */
			assert_non_null(p);
		}
		objs = calloc(1000, sizeof(*objs));
		assert_non_null(objs);
		while (n < 1000) {
			errno = 0;
			objs[n] = qsbr_pool_alloc(t, p);
			if (objs[n] == NULL) {
				assert_int_equal(errno, ENOMEM);
				failed_somewhere = true;
				continue;
			}
			if (n % 2)
				qsbr_pool_retire(t, p, objs[n]);
			else
				qsbr_pool_free(t, p, objs[n]);
			n++;
			if (n % 100 == 0) {
				/* Keep some out, so slabs fill and new ones come. */
				void *held[50] = { 0 };

				for (int i = 0; i < 50; i++) {
					held[i] = qsbr_pool_alloc(t, p);
					if (held[i] == NULL) {
						assert_int_equal(errno, ENOMEM);
						failed_somewhere = true;
					}
				}
				for (int i = 0; i < 50; i++)
					if (held[i] != NULL)
						qsbr_pool_retire(t, p, held[i]);
			}
		}
		free(objs);
		alloc_fail_at = -1;
		assert_int_equal(qsbr_pool_delete(p), 0);
		qsbr_unregister(t);
		assert_int_equal(qsbr_domain_delete(d), 0);
		assert_int_equal(alloc_live, 0); /* nothing lost, nothing leaked */
		if (k > 200)
			break;
		rounds++;
	}
	(void)failed_somewhere;
	/* The pool, its cache, its first slab and more failed in turn. */
	assert_true(rounds >= 4);
}

/* ---- Stress with canaries ------------------------------------------------ */

#define CANARY 0x5afe5afe5afe5afeULL
#define SLOTS 64

struct item {
	uint64_t canary;
	uint64_t value;
	uint64_t check; /* ~value */
};

static struct item *_Atomic slots[SLOTS];
static _Atomic bool stop_stress;
static _Atomic uint64_t stress_bad, stress_ops;

struct stresser {
	qsbr_domain *d;
	qsbr_pool *p;
	unsigned seed;
	bool writer;
};

static bool item_ok(const struct item *it)
{
	return __atomic_load_n(&it->canary, __ATOMIC_RELAXED) == CANARY &&
	       __atomic_load_n(&it->check, __ATOMIC_RELAXED) ==
		       ~__atomic_load_n(&it->value, __ATOMIC_RELAXED);
}

static void *stress_main(void *arg)
{
	struct stresser *s = arg;
	qsbr_thread *t = qsbr_register(s->d);
	unsigned r = s->seed;
	uint64_t ops = 0;

	while (!atomic_load_explicit(&stop_stress, memory_order_relaxed)) {
		for (int k = 0; k < 64; k++) {
			unsigned i;
			struct item *it;

			r = r * 1103515245u + 12345u;
			i = (r >> 8) % SLOTS;
			if (s->writer && (r >> 20) % 2 == 0) {
				struct item *n = qsbr_pool_alloc(t, s->p), *old;

				if (n == NULL)
					continue;
				n->canary = 0;
				n->value = ops;
				n->check = ~ops;
				n->canary = CANARY;
				if ((r >> 24) % 8 == 0) {
					qsbr_pool_free(t, s->p, n); /* never published */
					continue;
				}
				old = atomic_exchange_explicit(&slots[i], n, memory_order_acq_rel);
				if (old != NULL) {
					if (!item_ok(old))
						atomic_fetch_add(&stress_bad, 1);
					qsbr_pool_retire(t, s->p, old);
				}
			} else {
				it = atomic_load_explicit(&slots[i], memory_order_acquire);
				if (it != NULL && !item_ok(it))
					atomic_fetch_add(&stress_bad, 1);
			}
			ops++;
		}
		qsbr_quiescent(t);
		if ((ops & 4095) == 0) {
			qsbr_detach(t);
			qsbr_attach(t);
		}
	}
	atomic_fetch_add(&stress_ops, ops);
	qsbr_unregister(t);
	return NULL;
}

static void run_stress(uint32_t background)
{
	enum { THREADS = 4 };
	qsbr_domain *d = domain_with_opts(16, 64, background);
	qsbr_pool *p = qsbr_pool_new(d, sizeof(struct item), 0);
	struct stresser st[THREADS];
	pthread_t th[THREADS];
	qsbr_thread *t;
	qsbr_pool_stats s;

	atomic_store(&stop_stress, false);
	atomic_store(&stress_bad, 0);
	for (int i = 0; i < THREADS; i++) {
		st[i] = (struct stresser){ d, p, (unsigned)i * 7919u + 1u, i % 2 == 0 };
		assert_int_equal(pthread_create(&th[i], NULL, stress_main, &st[i]), 0);
	}
	sleep_ms(400);
	atomic_store(&stop_stress, true);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(atomic_load(&stress_bad), 0);
	t = qsbr_register(d);
	for (int i = 0; i < SLOTS; i++) {
		struct item *it = atomic_exchange(&slots[i], NULL);

		if (it != NULL) {
			assert_true(item_ok(it));
			qsbr_pool_retire(t, p, it);
		}
	}
	qsbr_barrier_domain(d);
	s = pool_stats(p);
	assert_int_equal(s.allocated, 0);
	assert_int_equal(s.waiting, 0);
	assert_int_equal(qsbr_pool_delete(p), 0);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

static void test_stress(void **state)
{
	(void)state;
	run_stress(QSBR_BACKGROUND_AUTO);
	run_stress(QSBR_BACKGROUND_OFF);
	run_stress(QSBR_BACKGROUND_ALL);
	assert_true(atomic_load(&stress_ops) > 0);
}

/* ---- A buggy reader: AddressSanitizer must report it --------------------- */

static void test_asan_reports_stale_reader(void **state)
{
#ifndef TEST_ASAN
	(void)state;
	skip();
#else
	int fds[2], st;
	char buf[65536];
	size_t len = 0;
	ssize_t got;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		qsbr_domain *d = qsbr_domain_new(NULL);
		qsbr_thread *t = qsbr_register(d);
		qsbr_pool *p = qsbr_pool_new(d, sizeof(struct item), 0);
		struct item *it = qsbr_pool_alloc(t, p), *other[16];
		volatile uint64_t v;

		dup2(fds[1], 2);
		close(fds[0]);
		it->canary = CANARY;
		/* The reader keeps `it` past the retire and its quiescent state,
		 * and the pool reuses memory meanwhile. */
		qsbr_pool_retire(t, p, it);
		qsbr_pool_flush(t, p);
		qsbr_quiescent(t);
		qsbr_barrier(t);
		for (int i = 0; i < 16; i++)
			other[i] = qsbr_pool_alloc(t, p);
		(void)other;
		v = it->canary; /* the bug */
		(void)v;
		_exit(0);
	}
	close(fds[1]);
	while (len < sizeof(buf) - 1 && (got = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)got;
	buf[len] = '\0';
	close(fds[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_false(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_non_null(strstr(buf, "AddressSanitizer"));
	assert_non_null(strstr(buf, "use-after-poison"));
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_errors),
		cmocka_unit_test(test_alloc_free),
		cmocka_unit_test(test_null_and_foreign),
		cmocka_unit_test(test_double_free),
		cmocka_unit_test(test_reuse_after_goal),
		cmocka_unit_test(test_leaver_unregisters),
		cmocka_unit_test(test_leaver_exits),
		cmocka_unit_test(test_delete),
		cmocka_unit_test(test_trim),
		cmocka_unit_test(test_consumer_keeps_no_reserve),
		cmocka_unit_test(test_empty_slabs_decay),
		cmocka_unit_test(test_thread_caches),
		cmocka_unit_test(test_flush),
		cmocka_unit_test(test_fork),
		cmocka_unit_test(test_alloc_failures),
		cmocka_unit_test(test_stress),
		cmocka_unit_test(test_asan_reports_stale_reader),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
