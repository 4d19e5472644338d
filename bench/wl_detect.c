/* SPDX-License-Identifier: MIT */
/*
 * Workload 5, grace-period detection cost: one thread waits for grace
 * periods back to back (rc_synchronize) while registered-but-idle threads
 * bring the registry to 1..4096 threads.  Idle means offline (libqsbr
 * detached, liburcu rcu_thread_offline) or outside any section (ck_epoch):
 * the state where a thread delays nobody, so what is measured is the cost of
 * looking at it.  Idle threads are real threads (liburcu registers the
 * calling thread) with small stacks, kept across runs of the same count.
 * libqsbr and ck_epoch get a fresh domain per count: their registries keep
 * freed slots, which earlier workloads must not leave behind.  liburcu has
 * one registry per process, which drops threads as they unregister.
 */
#include "rc.h"

#include <pthread.h>

#if RC_GRACE

#define BATCH 16
#define IDLE_STACK (64 * 1024)

static rc_domain *dom;
static pthread_t *idle_tids;
static int n_idle;
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;
static int idle_ready;
static bool idle_release;
static const char owner[] = "detect/" RC_NAME;

static void *idle_main(void *arg)
{
	rc_thread t;

	(void)arg;
	rc_thread_init(&t, dom);
	rc_offline(&t);
	pthread_mutex_lock(&idle_lock);
	idle_ready++;
	pthread_cond_broadcast(&idle_cond);
	while (!idle_release)
		pthread_cond_wait(&idle_cond, &idle_lock);
	pthread_mutex_unlock(&idle_lock);
	rc_online(&t);
	rc_thread_fini(&t);
	return NULL;
}

static void idle_stop(void)
{
	pthread_mutex_lock(&idle_lock);
	idle_release = true;
	pthread_cond_broadcast(&idle_cond);
	pthread_mutex_unlock(&idle_lock);
	for (int i = 0; i < n_idle; i++)
		pthread_join(idle_tids[i], NULL);
	free(idle_tids);
	idle_tids = NULL;
	n_idle = 0;
	rc_domain_delete(dom);
	dom = NULL;
}

static void idle_start(int n)
{
	pthread_attr_t attr;

	dom = rc_domain_new();
	idle_release = false;
	idle_ready = 0;
	idle_tids = calloc((size_t)n + 1, sizeof(*idle_tids));
	if (idle_tids == NULL)
		abort();
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, IDLE_STACK);
	for (n_idle = 0; n_idle < n; n_idle++)
		if (pthread_create(&idle_tids[n_idle], &attr, idle_main, NULL) != 0)
			abort();
	pthread_attr_destroy(&attr);
	pthread_mutex_lock(&idle_lock);
	while (idle_ready < n)
		pthread_cond_wait(&idle_cond, &idle_lock);
	pthread_mutex_unlock(&idle_lock);
}

static void setup(gb_state *st, void *arg)
{
	int64_t registered = gb_arg(st, 0);

	(void)arg;
	if (!bench_cache_hit(owner, registered)) {
		bench_cache_drop();
		idle_start((int)registered - 1);
		bench_cache_store(owner, registered, idle_stop);
	}
	bench_run_start(0);
}

static void body(gb_state *st, void *arg)
{
	uint64_t ops = 0;
	rc_thread t;

	(void)arg;
	rc_thread_init(&t, dom);
	bench_loop_enter(st);
	while (rc_keep_running(st, &t, BATCH)) {
		for (int i = 0; i < BATCH; i++)
			rc_synchronize(&t);
		ops += BATCH;
	}
	bench_loop_exit(st, ops);
	rc_thread_fini(&t);
}

static void teardown(gb_state *st, void *arg)
{
	(void)arg;
	bench_run_report(st);
}

void RC_SYM(wl_detect_register)(void)
{
	static const char *const names[] = { "registered" };
	gb_bench *b = bench_register("detect/" RC_NAME, body, NULL, setup, teardown);

	gb_arg_names(b, names, 1);
	for (int i = 0; i < bench_cfg.n_registered; i++)
		gb_args(b, &bench_cfg.registered[i], 1);
}

#else

void RC_SYM(wl_detect_register)(void)
{
}

#endif
