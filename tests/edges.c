/* SPDX-License-Identifier: MIT */
/*
 * The library's edges, one regression test per defect of issue #10 (each
 * failed on ac6389c) and the eventual-reclamation contract of issue #11:
 * callbacks that retire while their thread leaves, fork() in every mode and
 * from a callback, no helper thread, the poll hint under registry growth,
 * the cap's waiting point, sized-retire limits, offline retire, and the
 * domain-level calls.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "puppet.h"

/* The sanitizers' runtimes are not fork-safe for threads: ThreadSanitizer
 * cannot start threads in the child of a multi-threaded fork(), and
 * AddressSanitizer's allocator lock can be inherited held from a parent
 * thread (seen: the child's helper thread blocked in it for good).  The
 * tests whose parent runs a helper thread across the fork, or whose child
 * starts one, are skipped there; they run in the plain and near-wrap
 * builds. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZER_BUILD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SANITIZER_BUILD 1
#endif
#endif
#ifndef SANITIZER_BUILD
#define SANITIZER_BUILD 0
#endif

#define SKIP_UNDER_SANITIZER()                                                   \
	do {                                                                     \
		if (SANITIZER_BUILD) {                                           \
			print_message("skipped: sanitizer runtimes and threads across fork\n"); \
			skip();                                                  \
		}                                                                \
	} while (0)

/* Runs fn in a child process; returns its exit status (or 128 + signal).
 * The child has `secs` seconds before SIGALRM ends it: a hang fails. */
static int in_child(int (*fn)(void *), void *arg, unsigned secs)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(secs);
		_exit(fn(arg));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Waits (bounded) until `want` callbacks ran. */
static bool runs_reach(int want, int seconds)
{
	for (int i = 0; i < seconds * 1000 && runs() < want; i++)
		sleep_ms(1);
	return runs() >= want;
}

/* ---- 1. callbacks that retire while their thread unregisters or exits ---- */

static qsbr_thread *leaving;

/* Retires a child (id + 1000) through the thread it runs on. */
static void retire_child(qsbr_node *n)
{
	struct obj *o = (struct obj *)((char *)n - offsetof(struct obj, node));

	if (o->id < 1000)
		retire_id(leaving, o->id + 1000);
	obj_free(n);
}

struct leaver {
	qsbr_domain *d;
	bool unregister; /* else: exit and let the thread-exit key do it */
};

static void *leaver_main(void *arg)
{
	struct leaver *l = arg;

	leaving = qsbr_register(l->d);
	for (int i = 0; i < 10; i++)
		qsbr_retire_node(leaving, &obj_new(i)->node, retire_child);
	qsbr_reclaim(leaving); /* closes the batch: unregister can run it */
	if (l->unregister)
		qsbr_unregister(leaving);
	return NULL;
}

static void callbacks_retire_while_leaving(uint32_t background, bool unregister)
{
	qsbr_domain *d = domain_with_opts(32, 127, background);
	struct leaver l = { d, unregister };
	pthread_t th;

	reset_runs();
	pthread_create(&th, NULL, leaver_main, &l);
	pthread_join(th, NULL);
	assert_int_equal(qsbr_domain_delete(d), 0);
	assert_int_equal(runs(), 20);
	assert_each_ran_once(0, 10);
	assert_each_ran_once(1000, 1010);
}

static void test_retire_from_callback_at_unregister(void **state)
{
	(void)state;
	callbacks_retire_while_leaving(QSBR_BACKGROUND_OFF, true);
	callbacks_retire_while_leaving(QSBR_BACKGROUND_AUTO, true);
}

static void test_retire_from_callback_at_thread_exit(void **state)
{
	(void)state;
	callbacks_retire_while_leaving(QSBR_BACKGROUND_OFF, false);
	callbacks_retire_while_leaving(QSBR_BACKGROUND_AUTO, false);
}

/* ---- 2. background mode with no helper thread ---------------------------- */

/* Retires 100, then barrier and reclaim must finish them by themselves;
 * *s gets the statistics before the domain is deleted. */
static int retire_and_barrier(qsbr_domain *d, qsbr_stats *s)
{
	qsbr_thread *t = qsbr_register(d);

	reset_runs();
	retire_ids(t, 0, 100);
	qsbr_barrier(t);
	if (runs() != 100)
		return 1;
	retire_ids(t, 100, 150);
	for (int i = 0; i < 20000 && runs() < 150; i++) {
		qsbr_quiescent(t);
		qsbr_reclaim(t);
		sleep_ms(1);
	}
	if (runs() != 150)
		return 2;
	qsbr_unregister(t);
	qsbr_stats_get(d, s);
	if (s->retired != 150 || s->freed != 150)
		return 4;
	return qsbr_domain_delete(d) == 0 ? 0 : 3;
}

static qsbr_thread *forking_thread_handle;

static int child_without_helper(void *arg)
{
	qsbr_stats s;

	qsbr_unregister(forking_thread_handle); /* it came along, online */
	return retire_and_barrier(arg, &s);
}

static void test_background_in_fork_child(void **state)
{
	qsbr_domain *d;
	qsbr_thread *t;

	(void)state;
	SKIP_UNDER_SANITIZER();
	d = domain_with_opts(8, 127, QSBR_BACKGROUND_ALL);
	t = qsbr_register(d);
	retire_ids(t, 0, 64); /* the parent's helper runs */
	qsbr_barrier(t);
	forking_thread_handle = t;
	assert_int_equal(in_child(child_without_helper, d, 30), 0);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* No thread can be created: RLIMIT_NPROC 0 (and an unprivileged uid when
 * root, which the limit does not bind). */
static int child_cannot_start_threads(void *arg)
{
	struct rlimit none = { 0, 0 };
	uint32_t background = *(uint32_t *)arg;
	qsbr_domain *d;
	qsbr_stats s;
	int rc;

	if (setrlimit(RLIMIT_NPROC, &none) != 0)
		return 10;
	if (getuid() == 0 && setuid(65534) != 0)
		return 11;
	d = domain_with_opts(8, 127, background);
	rc = retire_and_barrier(d, &s);
	if (rc != 0)
		return rc;
	return s.helper_failures > 0 ? 0 : 12;
}

static void test_helper_start_fails(void **state)
{
	uint32_t all = QSBR_BACKGROUND_ALL, automatic = QSBR_BACKGROUND_AUTO;

	(void)state;
	assert_int_equal(in_child(child_cannot_start_threads, &all, 30), 0);
	assert_int_equal(in_child(child_cannot_start_threads, &automatic, 30), 0);
}

/* ---- 3. fork(): no callback runs in both processes ---------------------- */

/* Per-id run counts in memory shared by parent and child. */
static unsigned char *shared_parent, *shared_child;
static pid_t parent_pid;

static void shared_free(qsbr_node *n)
{
	struct obj *o = (struct obj *)((char *)n - offsetof(struct obj, node));

	__atomic_fetch_add(getpid() == parent_pid ? &shared_parent[o->id] : &shared_child[o->id], 1,
			   __ATOMIC_RELAXED);
	free(o);
}

static void shared_setup(void)
{
	size_t size = 2 * 4096;
	unsigned char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	assert_true(m != MAP_FAILED);
	memset(m, 0, size);
	shared_parent = m;
	shared_child = m + 4096;
	parent_pid = getpid();
}

static void shared_retire(qsbr_thread *t, int from, int to)
{
	for (int i = from; i < to; i++)
		qsbr_retire_node(t, &obj_new(i)->node, shared_free);
}

struct fork_case {
	qsbr_domain *d;
	qsbr_thread *t;
};

/* The child: runs nothing of the parent's, and its statistics describe
 * only what it retires itself. */
static int fork_child_checks(void *arg)
{
	struct fork_case *c = arg;
	qsbr_stats s;

	qsbr_stats_get(c->d, &s);
	if (s.retired != 0 || s.freed != 0 || s.pending != 0 || s.peak_pending != 0 || s.threads != 1)
		return 20;
	shared_retire(c->t, 3000, 3010);
	qsbr_barrier_domain(c->d);
	qsbr_stats_get(c->d, &s);
	if (s.retired != 10 || s.freed != 10 || s.pending != 0)
		return 21;
	for (int i = 0; i < 3000; i++)
		if (shared_child[i % 4096] != 0)
			return 22;
	qsbr_unregister(c->t);
	return qsbr_domain_delete(c->d) == 0 ? 0 : 23;
}

static void puppet_leave(struct puppet *p, void *arg)
{
	(void)arg;
	qsbr_unregister(p->t);
	p->t = NULL;
}

static void puppet_retire_shared(struct puppet *p, void *arg)
{
	int *range = arg;

	shared_retire(p->t, range[0], range[1]);
}

static void fork_in_mode(uint32_t background)
{
	qsbr_domain *d = domain_with_opts(8, 1, background);
	struct fork_case c = { d, qsbr_register(d) };
	struct puppet reader, other, gone;
	int mine[2] = { 0, 100 }, theirs[2] = { 100, 200 }, orphans[2] = { 200, 300 };
	qsbr_stats s;

	shared_setup();
	puppet_start(&reader, d); /* online, never reports: nothing is reached */
	puppet_start(&other, d);
	puppet_start(&gone, d);
	shared_retire(c.t, mine[0], mine[1]);
	puppet_do(&other, puppet_retire_shared, theirs);
	puppet_do(&gone, puppet_retire_shared, orphans);
	puppet_do(&gone, puppet_leave, NULL); /* its objects are in the queue */
	assert_int_equal(in_child(fork_child_checks, &c, 30), 0);
	puppet_do(&reader, puppet_quiescent, NULL);
	puppet_stop(&reader);
	puppet_stop(&other);
	puppet_stop(&gone);
	qsbr_barrier_domain(d);
	for (int i = 0; i < 300; i++) {
		assert_int_equal(shared_parent[i], 1);
		assert_int_equal(shared_child[i], 0);
	}
	for (int i = 3000; i < 3010; i++)
		assert_int_equal(shared_child[i % 4096], 1);
	qsbr_stats_get(d, &s);
	assert_int_equal(s.retired, 300);
	assert_int_equal(s.freed, 300);
	qsbr_unregister(c.t);
	assert_int_equal(qsbr_domain_delete(d), 0);
	munmap(shared_parent, 2 * 4096);
}

static void test_fork_runs_nothing_twice(void **state)
{
	(void)state;
	fork_in_mode(QSBR_BACKGROUND_OFF); /* no thread in the child */
	SKIP_UNDER_SANITIZER();
	fork_in_mode(QSBR_BACKGROUND_ALL);
	fork_in_mode(QSBR_BACKGROUND_AUTO);
}

/* A callback forks: the child runs none of the rest of the batch. */
static qsbr_domain *forking_d;

static void forking_free(qsbr_node *n)
{
	struct obj *o = (struct obj *)((char *)n - offsetof(struct obj, node));
	int id = o->id;

	shared_free(n);
	if (id == 3) {
		pid_t pid = fork();

		if (pid == 0)
			return; /* the child goes on inside the library */
		assert_true(pid > 0);
		assert_int_equal(waitpid(pid, NULL, 0), pid);
	}
}

static void test_fork_from_callback(void **state)
{
	qsbr_domain *d = domain_with_opts(8, 1, QSBR_BACKGROUND_OFF);
	qsbr_thread *t = qsbr_register(d);

	(void)state;
	shared_setup();
	forking_d = d;
	for (int i = 0; i < 8; i++)
		qsbr_retire_node(t, &obj_new(i)->node, forking_free);
	for (int i = 0; i < 10 && shared_parent[7] == 0; i++) {
		qsbr_quiescent(t);
		qsbr_reclaim(t);
		if (getpid() != parent_pid) {
			qsbr_stats s;

			qsbr_stats_get(d, &s);
			_exit(s.retired == 0 && s.freed == 0 && s.pending == 0 ? 0 : 1);
		}
	}
	for (int i = 0; i < 8; i++) {
		assert_int_equal(shared_parent[i], 1);
		assert_int_equal(shared_child[i], 0);
	}
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
	munmap(shared_parent, 2 * 4096);
}

/* ---- 4. the child's accounting while another thread is in a callback --- */

static int in_cb, release_cb;

static void blocking_free(qsbr_node *n)
{
	__atomic_store_n(&in_cb, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&release_cb, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	free((char *)n - offsetof(struct obj, node));
}

static void puppet_run_blocking(struct puppet *p, void *arg)
{
	(void)arg;
	for (int i = 0; i < 64; i++)
		qsbr_retire_node(p->t, &obj_new(i)->node, blocking_free);
	qsbr_quiescent(p->t);
	qsbr_reclaim(p->t); /* blocks in the first callback */
}

static int child_accounting(void *arg)
{
	qsbr_domain *d = arg;
	qsbr_thread *t = qsbr_register(d);
	qsbr_stats s;
	uint64_t waits;

	qsbr_stats_get(d, &s);
	if (s.pending != 0 || s.peak_pending != 0 || s.retired != 0)
		return 30;
	waits = s.cap_waits; /* the parent's, before the fork */
	/* Below the cap (16): no wait may be forced. */
	reset_runs();
	retire_ids(t, 0, 12);
	for (int i = 0; i < 10; i++)
		qsbr_quiescent(t);
	qsbr_barrier(t);
	qsbr_stats_get(d, &s);
	if (s.cap_waits != waits || s.pending != 0 || s.retired != 12 || s.freed != 12 ||
	    s.peak_pending > 12) {
		fprintf(stderr, "child: cap_waits %llu pending %llu retired %llu freed %llu peak %llu\n",
			(unsigned long long)s.cap_waits, (unsigned long long)s.pending,
			(unsigned long long)s.retired, (unsigned long long)s.freed,
			(unsigned long long)s.peak_pending);
		return 31;
	}
	qsbr_unregister(t);
	return 0;
}

static void test_fork_accounting_during_callback(void **state)
{
	qsbr_options o;
	qsbr_domain *d;
	struct puppet p;
	qsbr_thread *t;

	(void)state;
	qsbr_options_init(&o);
	o.batch_size = 4;
	o.max_pending = 16;
	o.background = QSBR_BACKGROUND_OFF;
	d = qsbr_domain_new(&o);
	assert_non_null(d);
	t = qsbr_register(d);
	puppet_start(&p, d);
	__atomic_store_n(&release_cb, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&in_cb, 0, __ATOMIC_RELAXED);
	qsbr_detach(t); /* the puppet's goals need only its own report */
	p.fn = puppet_run_blocking;
	pthread_mutex_lock(&p.m);
	p.pending = true;
	pthread_cond_broadcast(&p.c);
	pthread_mutex_unlock(&p.m);
	while (!__atomic_load_n(&in_cb, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	assert_int_equal(in_child(child_accounting, d, 30), 0);
	__atomic_store_n(&release_cb, 1, __ATOMIC_RELEASE);
	pthread_mutex_lock(&p.m);
	while (p.pending)
		pthread_cond_wait(&p.c, &p.m);
	pthread_mutex_unlock(&p.m);
	puppet_stop(&p);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* ---- 6. the poll's blocker hint while the registry grows (TSan) -------- */

static int stop_polls;

static void *poller(void *arg)
{
	qsbr_domain *d = arg;

	while (!__atomic_load_n(&stop_polls, __ATOMIC_ACQUIRE)) {
		qsbr_seq g = qsbr_advance(d);

		for (int i = 0; i < 8; i++)
			(void)qsbr_poll_domain(d, g);
	}
	return NULL;
}

static void test_poll_hint_while_registry_grows(void **state)
{
	enum { N = 1100 }; /* past seven blocks: 8 + 16 + ... + 512 */
	qsbr_domain *d = domain_with_opts(32, 127, QSBR_BACKGROUND_OFF);
	static qsbr_thread *handles[N];
	pthread_t th[2];

	(void)state;
	__atomic_store_n(&stop_polls, 0, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, poller, d);
	for (int i = 0; i < N; i++) {
		handles[i] = qsbr_register(d); /* online, behind: each new one blocks */
		assert_non_null(handles[i]);
	}
	__atomic_store_n(&stop_polls, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (int i = N - 1; i >= 0; i--)
		qsbr_unregister(handles[i]);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* ---- 7. fork() while a callback creates and deletes a domain ------------ */

static int stop_forks;

static void domain_churn_free(qsbr_node *n)
{
	qsbr_domain *other = qsbr_domain_new(NULL);

	if (other != NULL)
		qsbr_domain_delete(other);
	free((char *)n - offsetof(struct obj, node));
}

static void *forker(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stop_forks, __ATOMIC_ACQUIRE)) {
		pid_t pid = fork();

		if (pid == 0)
			_exit(0);
		if (pid > 0)
			waitpid(pid, NULL, 0);
	}
	return NULL;
}

/* A deadlock fails the test instead of hanging the suite. */
static void *watchdog(void *arg)
{
	for (int i = 0; i < 60000 && !__atomic_load_n(&stop_forks, __ATOMIC_ACQUIRE); i++)
		sleep_ms(1);
	if (!__atomic_load_n(&stop_forks, __ATOMIC_ACQUIRE)) {
		fprintf(stderr, "%s: deadlock (no progress in 60 s)\n", (const char *)arg);
		abort();
	}
	return NULL;
}

static int fork_against_callbacks(void *arg)
{
	qsbr_domain *d = domain_with_opts(1, 1, QSBR_BACKGROUND_OFF);
	qsbr_thread *t = qsbr_register(d);
	pthread_t th, dog;

	(void)arg;
	__atomic_store_n(&stop_forks, 0, __ATOMIC_RELAXED);
	pthread_create(&dog, NULL, watchdog, "fork vs callback");
	pthread_create(&th, NULL, forker, NULL);
	for (int i = 0; i < 2000; i++) {
		qsbr_retire_node(t, &obj_new(i)->node, domain_churn_free);
		qsbr_quiescent(t);
		qsbr_reclaim(t);
	}
	__atomic_store_n(&stop_forks, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	pthread_join(dog, NULL);
	qsbr_unregister(t);
	return qsbr_domain_delete(d);
}

static void test_fork_while_callback_makes_domains(void **state)
{
	(void)state;
	assert_int_equal(fork_against_callbacks(NULL), 0);
}

/* ---- 9. the memory cap waits at qsbr_quiescent, never in qsbr_reclaim ---- */

static void no_stall_report(const qsbr_stall_info *info, void *arg)
{
	(void)info;
	(void)arg;
}

static void test_cap_waits_only_at_quiescent(void **state)
{
	qsbr_options o;
	qsbr_domain *d;
	qsbr_thread *t;
	struct puppet p;

	(void)state;
	qsbr_options_init(&o);
	o.batch_size = 4;
	o.max_pending = 8;
	o.stall_ms = 20; /* bounds the wait behind the stalled puppet */
	o.on_stall = no_stall_report;
	o.background = QSBR_BACKGROUND_OFF;
	d = qsbr_domain_new(&o);
	assert_non_null(d);
	t = qsbr_register(d);
	puppet_start(&p, d); /* online, never reports */
	reset_runs();
	retire_ids(t, 0, 32);
	qsbr_reclaim(t);
	qsbr_reclaim(t);
	assert_int_equal(stats_of(d).cap_waits, 0);
	qsbr_advance(d);
	qsbr_quiescent(t);
	assert_int_equal(stats_of(d).cap_waits, 1);
	puppet_stop(&p);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
	assert_int_equal(runs(), 32);
}

/* ---- 11. sized retires cannot make the statistics wrap ------------------ */

static void test_sized_retire_limit(void **state)
{
	qsbr_domain *d = domain_with_opts(32, 127, QSBR_BACKGROUND_OFF);
	qsbr_thread *t = qsbr_register(d);
	struct obj *o = obj_new(1);
	int x = 0;

	(void)state;
	reset_runs();
	errno = 0;
	qsbr_retire_node_sized(t, &o->node, obj_free, (size_t)1 << 63);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(qsbr_retire_sized(t, &x, free, QSBR_SIZED_MAX + 1), EINVAL);
	assert_int_equal(stats_of(d).retired, 0);
	assert_int_equal(stats_of(d).pending_bytes, 0);
	qsbr_retire_node_sized(t, &o->node, obj_free, QSBR_SIZED_MAX);
	assert_int_equal(stats_of(d).pending_bytes, QSBR_SIZED_MAX);
	qsbr_barrier(t);
	assert_int_equal(stats_of(d).pending_bytes, 0);
	assert_int_equal(runs(), 1);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}

/* ---- issue #11: eventual reclamation with default options --------------- */

static int stop_spin;

/* An online reader that reports quiescent states until told to stop. */
static void *spinning_reader(void *arg)
{
	qsbr_thread *t = qsbr_register(arg);

	while (!__atomic_load_n(&stop_spin, __ATOMIC_ACQUIRE))
		qsbr_quiescent(t);
	qsbr_unregister(t);
	return NULL;
}

static void test_idle_retirer_is_reclaimed(void **state)
{
	qsbr_domain *d = qsbr_domain_new(NULL);
	qsbr_thread *t = qsbr_register(d);
	pthread_t reader;

	(void)state;
	reset_runs();
	__atomic_store_n(&stop_spin, 0, __ATOMIC_RELAXED);
	pthread_create(&reader, NULL, spinning_reader, d);
	/* Online, then only quiescent states: the helper asks for them. */
	retire_ids(t, 0, 5);
	for (int i = 0; i < 20000 && runs() < 5; i++) {
		qsbr_quiescent(t);
		sleep_ms(1) ;
	}
	assert_int_equal(runs(), 5);
	/* Then offline and blocked. */
	retire_ids(t, 5, 10);
	qsbr_detach(t);
	assert_true(runs_reach(10, 20));
	/* Retires while offline. */
	retire_ids(t, 10, 15);
	assert_true(runs_reach(15, 20));
	assert_true(stats_of(d).handed >= 10);
	qsbr_attach(t);
	__atomic_store_n(&stop_spin, 1, __ATOMIC_RELEASE);
	pthread_join(reader, NULL);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
	assert_each_ran_once(0, 15);
}

struct holder {
	qsbr_domain *d;
	int held;
};

/* Retires a part-filled batch, then only reports quiescent states. */
static void *partial_holder(void *arg)
{
	struct holder *h = arg;
	qsbr_thread *t = qsbr_register(h->d);

	retire_ids(t, 100, 103);
	__atomic_store_n(&h->held, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&stop_spin, __ATOMIC_ACQUIRE))
		qsbr_quiescent(t);
	qsbr_unregister(t);
	return NULL;
}

static void *barrier_from_unregistered(void *arg)
{
	qsbr_barrier_domain(arg);
	return NULL;
}

static void test_domain_calls_without_handle(void **state)
{
	qsbr_options o;
	qsbr_domain *d;
	struct holder h;
	pthread_t holder, other;
	qsbr_thread *t;
	qsbr_seq g;

	(void)state;
	qsbr_options_init(&o);
	o.flush_ms = 60000; /* only the barrier may ask the holder */
	d = qsbr_domain_new(&o);
	assert_non_null(d);
	h.d = d;
	h.held = 0;
	reset_runs();
	__atomic_store_n(&stop_spin, 0, __ATOMIC_RELAXED);
	pthread_create(&holder, NULL, partial_holder, &h);
	while (!__atomic_load_n(&h.held, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	/* rcu_barrier from a thread with no handle: part-filled batches of
	 * an online thread included. */
	pthread_create(&other, NULL, barrier_from_unregistered, d);
	pthread_join(other, NULL);
	assert_int_equal(runs(), 3);
	assert_each_ran_once(100, 103);
	/* synchronize_domain and poll_domain, from this unregistered thread. */
	qsbr_synchronize_domain(d);
	g = qsbr_advance(d);
	while (!qsbr_poll_domain(d, g))
		sleep_ms(1);
	errno = 0;
	assert_false(qsbr_poll_domain(d, g + 1));
	assert_int_equal(errno, EINVAL);
	assert_false(qsbr_poll_domain(NULL, g));
	/* From a registered online thread: it counts as quiescent. */
	t = qsbr_register(d);
	qsbr_synchronize_domain(d);
	retire_ids(t, 200, 202);
	qsbr_barrier_domain(d);
	assert_int_equal(runs(), 5);
	__atomic_store_n(&stop_spin, 1, __ATOMIC_RELEASE);
	pthread_join(holder, NULL);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d), 0);
}


/* ---- found in review: flush requests, callbacks that detach or fork ---- */

static qsbr_domain *review_d;
static qsbr_thread *review_t;
static int review_flag, review_ran2;

static void *barrier_domain_then_flag(void *arg)
{
	(void)arg;
	qsbr_barrier_domain(review_d);
	__atomic_store_n(&review_flag, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Asked to flush, the thread detaches and comes back before its next
 * quiescent state: the barrier must not wait for an advance nobody makes. */
static void test_barrier_domain_after_reattach(void **state)
{
	pthread_t b;

	(void)state;
	review_d = domain_with_opts(32, 127, QSBR_BACKGROUND_OFF);
	review_t = qsbr_register(review_d);
	__atomic_store_n(&review_flag, 0, __ATOMIC_RELAXED);
	pthread_create(&b, NULL, barrier_domain_then_flag, NULL);
	sleep_ms(20); /* it asked us, and advanced */
	qsbr_detach(review_t);
	qsbr_attach(review_t);
	for (int i = 0; i < 60000 && !__atomic_load_n(&review_flag, __ATOMIC_ACQUIRE); i++) {
		qsbr_quiescent(review_t);
		sleep_ms(1);
	}
	assert_int_equal(__atomic_load_n(&review_flag, __ATOMIC_ACQUIRE), 1);
	pthread_join(b, NULL);
	qsbr_unregister(review_t);
	assert_int_equal(qsbr_domain_delete(review_d), 0);
}

static void detaching_cb(qsbr_node *n)
{
	(void)n;
	qsbr_detach(review_t);
	__atomic_store_n(&review_flag, 1, __ATOMIC_RELEASE);
	sleep_ms(200);
}

static void second_cb(qsbr_node *n)
{
	(void)n;
	__atomic_store_n(&review_ran2, 1, __ATOMIC_RELEASE);
}

static void *run_detaching_batch(void *arg)
{
	static qsbr_node n1, n2;

	(void)arg;
	review_t = qsbr_register(review_d);
	qsbr_retire_node(review_t, &n1, detaching_cb);
	qsbr_retire_node(review_t, &n2, second_cb); /* the batch of 2 closes */
	qsbr_quiescent(review_t);
	qsbr_reclaim(review_t); /* runs both: the first takes the thread offline */
	qsbr_unregister(review_t);
	return NULL;
}

/* A callback takes its thread offline in the middle of the thread's own
 * batch: the rest of the batch is still held, and a barrier must wait. */
static void test_barrier_domain_while_callback_detaches(void **state)
{
	pthread_t th;

	(void)state;
	review_d = domain_with_opts(2, 127, QSBR_BACKGROUND_OFF);
	__atomic_store_n(&review_flag, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&review_ran2, 0, __ATOMIC_RELAXED);
	pthread_create(&th, NULL, run_detaching_batch, NULL);
	while (!__atomic_load_n(&review_flag, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	qsbr_barrier_domain(review_d); /* the second node was retired before */
	assert_int_equal(__atomic_load_n(&review_ran2, __ATOMIC_ACQUIRE), 1);
	pthread_join(th, NULL);
	assert_int_equal(qsbr_domain_delete(review_d), 0);
}

/* A callback forks, inside a barrier: the child's barrier returns (what it
 * waited for is the parent's), and with the helper running the callback,
 * the child's copy of the helper ends. */
static pid_t forked;

static void forking_ptr_free(void *p)
{
	free(p);
	if (forked == -1) {
		pid_t c = fork();

		forked = c; /* 0 in the child */
	}
}

static int fork_inside_barrier(void *arg)
{
	uint32_t background = *(uint32_t *)arg;
	qsbr_domain *d = domain_with_opts(1, 127, background);
	qsbr_thread *t = qsbr_register(d);
	int status;

	forked = -1;
	assert_int_equal(qsbr_retire(t, malloc(16), forking_ptr_free), 0);
	qsbr_barrier(t);
	if (forked == 0)
		_exit(0); /* the child, its barrier returned */
	if (forked < 0)
		return 40;
	if (waitpid(forked, &status, 0) != forked || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return 41;
	qsbr_unregister(t);
	return qsbr_domain_delete(d) == 0 ? 0 : 42;
}

static void test_fork_from_callback_in_barrier(void **state)
{
	uint32_t off = QSBR_BACKGROUND_OFF, all = QSBR_BACKGROUND_ALL;

	(void)state;
	assert_int_equal(in_child(fork_inside_barrier, &off, 30), 0);
	SKIP_UNDER_SANITIZER();
	assert_int_equal(in_child(fork_inside_barrier, &all, 30), 0);
}

/* A thread retires, goes offline and blocks: a barrier takes its objects
 * at once (the helper would wait flush_ms, here a minute). */
static int offline_go, offline_done;

static void *retire_then_block_offline(void *arg)
{
	qsbr_thread *t = qsbr_register(arg);

	retire_ids(t, 300, 305);
	qsbr_detach(t);
	__atomic_store_n(&offline_go, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&offline_done, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	qsbr_attach(t);
	retire_ids(t, 305, 306); /* its lists are its own again */
	qsbr_unregister(t);
	return NULL;
}

static void test_barrier_steals_from_offline_thread(void **state)
{
	qsbr_options o;
	qsbr_domain *d;
	pthread_t th;

	(void)state;
	qsbr_options_init(&o);
	o.flush_ms = 60000;
	d = qsbr_domain_new(&o);
	assert_non_null(d);
	reset_runs();
	__atomic_store_n(&offline_go, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&offline_done, 0, __ATOMIC_RELAXED);
	pthread_create(&th, NULL, retire_then_block_offline, d);
	while (!__atomic_load_n(&offline_go, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	qsbr_barrier_domain(d);
	assert_int_equal(runs(), 5);
	assert_each_ran_once(300, 305);
	assert_true(stats_of(d).handed >= 5);
	__atomic_store_n(&offline_done, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	assert_int_equal(qsbr_domain_delete(d), 0);
	assert_each_ran_once(300, 306);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retire_from_callback_at_unregister),
		cmocka_unit_test(test_retire_from_callback_at_thread_exit),
		cmocka_unit_test(test_background_in_fork_child),
		cmocka_unit_test(test_helper_start_fails),
		cmocka_unit_test(test_fork_runs_nothing_twice),
		cmocka_unit_test(test_fork_from_callback),
		cmocka_unit_test(test_fork_accounting_during_callback),
		cmocka_unit_test(test_poll_hint_while_registry_grows),
		cmocka_unit_test(test_fork_while_callback_makes_domains),
		cmocka_unit_test(test_cap_waits_only_at_quiescent),
		cmocka_unit_test(test_sized_retire_limit),
		cmocka_unit_test(test_idle_retirer_is_reclaimed),
		cmocka_unit_test(test_domain_calls_without_handle),
		cmocka_unit_test(test_barrier_domain_after_reattach),
		cmocka_unit_test(test_barrier_domain_while_callback_detaches),
		cmocka_unit_test(test_fork_from_callback_in_barrier),
		cmocka_unit_test(test_barrier_steals_from_offline_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
