/* SPDX-License-Identifier: MIT */
/*
 * A thread pool whose workers go offline while they wait for work.
 *
 * Jobs read a price table that the main thread replaces now and then, RCU
 * style (see config.c).  A worker blocked on the condition variable holds
 * no reference into the table, but an online thread that never reports a
 * quiescent state holds up every grace period.  So a worker detaches before
 * it blocks and attaches when it has a job: an idle pool then costs writers
 * nothing, and qsbr_barrier() below returns as soon as the busy workers
 * finish their current job, not when the idle ones next get one.
 *
 *   cc -std=c11 -pthread pool.c $(pkg-config --cflags --libs qsbr)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <qsbr.h>

#define WORKERS 4
#define ROUNDS 50
#define JOBS 64  /* per round */
#define ITEMS 16

struct prices {
	qsbr_node node;
	unsigned generation;
	long price[ITEMS];  /* price[i] == i + 1 in every generation */
};

struct job {
	struct job *next;
	unsigned item, quantity;
};

static qsbr_domain *domain;
static struct prices *_Atomic prices;  /* protected by the domain */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t work;    /* a job was queued, or stop was set */
	pthread_cond_t idle;    /* pending dropped to 0 */
	struct job *head, **tail;
	unsigned pending;       /* queued or running */
	bool stop;
	long long total;
} pool = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.work = PTHREAD_COND_INITIALIZER,
	.idle = PTHREAD_COND_INITIALIZER,
	.tail = &pool.head,
};

static void prices_free(qsbr_node *n)
{
	free((char *)n - offsetof(struct prices, node));
}

static struct prices *prices_new(unsigned generation)
{
	struct prices *p = malloc(sizeof(*p));

	if (p == NULL)
		abort();
	p->generation = generation;
	for (int i = 0; i < ITEMS; i++)
		p->price[i] = i + 1;
	return p;
}

/* Runs on an online worker. */
static long run(const struct job *job)
{
	/* Acquire pairs with the exchange in main(). */
	const struct prices *p = atomic_load_explicit(&prices, memory_order_acquire);

	return p->price[job->item] * job->quantity;
}

static void *worker(void *arg)
{
	qsbr_thread *t = qsbr_register(domain);

	(void)arg;
	if (t == NULL)
		abort();
	pthread_mutex_lock(&pool.lock);
	for (;;) {
		if (pool.head == NULL && !pool.stop) {
			/* About to block: go offline, so that grace periods
			 * do not wait for us.  Wait-free, one store. */
			qsbr_detach(t);
			while (pool.head == NULL && !pool.stop)
				pthread_cond_wait(&pool.work, &pool.lock);
			/* Online again before touching the prices. */
			qsbr_attach(t);
		}
		struct job *job = pool.head;
		if (job == NULL)
			break;  /* stop, and the queue is drained */
		pool.head = job->next;
		if (pool.head == NULL)
			pool.tail = &pool.head;
		pthread_mutex_unlock(&pool.lock);

		long result = run(job);
		free(job);
		qsbr_quiescent(t);  /* no reference into the prices is held here */

		pthread_mutex_lock(&pool.lock);
		pool.total += result;
		if (--pool.pending == 0)
			pthread_cond_signal(&pool.idle);
	}
	pthread_mutex_unlock(&pool.lock);
	qsbr_unregister(t);
	return NULL;
}

static void submit(unsigned item, unsigned quantity)
{
	struct job *job = malloc(sizeof(*job));

	if (job == NULL)
		abort();
	*job = (struct job){.item = item, .quantity = quantity};
	pthread_mutex_lock(&pool.lock);
	*pool.tail = job;
	pool.tail = &job->next;
	pool.pending++;
	pthread_cond_signal(&pool.work);
	pthread_mutex_unlock(&pool.lock);
}

int main(void)
{
	pthread_t th[WORKERS];
	long long expect = 0;
	qsbr_stats st;

	domain = qsbr_domain_new(NULL);
	if (domain == NULL)
		return 1;
	atomic_store(&prices, prices_new(0));
	for (int i = 0; i < WORKERS; i++)
		pthread_create(&th[i], NULL, worker, NULL);
	qsbr_thread *t = qsbr_register(domain);
	if (t == NULL)
		return 1;

	for (unsigned r = 1; r <= ROUNDS; r++) {
		for (unsigned j = 0; j < JOBS; j++) {
			submit(j % ITEMS, r);
			expect += (long long)(j % ITEMS + 1) * r;
		}

		/* Replace the prices while jobs run; release publishes the new
		 * table, and the old one is retired, not freed. */
		struct prices *old = atomic_exchange_explicit(&prices, prices_new(r),
							      memory_order_acq_rel);
		qsbr_retire_node(t, &old->node, prices_free);

		/* Wait for the round's jobs.  Main blocks too: offline. */
		qsbr_detach(t);
		pthread_mutex_lock(&pool.lock);
		while (pool.pending != 0)
			pthread_cond_wait(&pool.idle, &pool.lock);
		pthread_mutex_unlock(&pool.lock);
		qsbr_attach(t);

		/* Every worker is idle and offline: the old table is freed at
		 * once.  Had they stayed online while blocked, this would wait
		 * for the next round, which never comes. */
		qsbr_barrier(t);
	}

	pthread_mutex_lock(&pool.lock);
	pool.stop = true;
	pthread_cond_broadcast(&pool.work);
	pthread_mutex_unlock(&pool.lock);
	for (int i = 0; i < WORKERS; i++)
		pthread_join(th[i], NULL);

	qsbr_stats_get(domain, &st);
	printf("%d workers, %d jobs, total %lld; %llu price tables retired, %llu freed\n",
	       WORKERS, ROUNDS * JOBS, pool.total, (unsigned long long)st.retired,
	       (unsigned long long)st.freed);
	qsbr_unregister(t);
	free(atomic_load(&prices));
	if (qsbr_domain_delete(domain) != 0 || pool.total != expect || st.freed != ROUNDS)
		return 1;
	return 0;
}
