/* SPDX-License-Identifier: MIT */
/*
 * A puppet thread for deterministic multi-thread unit tests: it registers in
 * a domain and runs the steps the test hands it, one at a time, as the owner
 * of its handle.
 */
#ifndef QSBR_TEST_PUPPET_H
#define QSBR_TEST_PUPPET_H

#include <pthread.h>
#include <stdbool.h>

#include <qsbr.h>

struct puppet;
typedef void (*puppet_fn)(struct puppet *p, void *arg);

struct puppet {
	pthread_t th;
	pthread_mutex_t m;
	pthread_cond_t c;
	qsbr_domain *d;
	qsbr_thread *t;
	puppet_fn fn;
	void *arg;
	bool pending, quit;
};

static void *puppet_main(void *arg)
{
	struct puppet *p = arg;

	pthread_mutex_lock(&p->m);
	p->t = qsbr_register(p->d);
	pthread_cond_broadcast(&p->c);
	for (;;) {
		while (!p->pending && !p->quit)
			pthread_cond_wait(&p->c, &p->m);
		if (p->pending) {
			pthread_mutex_unlock(&p->m);
			p->fn(p, p->arg);
			pthread_mutex_lock(&p->m);
			p->pending = false;
			pthread_cond_broadcast(&p->c);
			continue;
		}
		break;
	}
	pthread_mutex_unlock(&p->m);
	if (p->t != NULL)
		qsbr_unregister(p->t);
	return NULL;
}

/* Starts the thread; returns once it is registered (p->t set). */
static inline void puppet_start(struct puppet *p, qsbr_domain *d)
{
	pthread_mutex_init(&p->m, NULL);
	pthread_cond_init(&p->c, NULL);
	p->d = d;
	p->t = NULL;
	p->pending = p->quit = false;
	pthread_mutex_lock(&p->m);
	pthread_create(&p->th, NULL, puppet_main, p);
	while (p->t == NULL)
		pthread_cond_wait(&p->c, &p->m);
	pthread_mutex_unlock(&p->m);
}

/* Runs fn(p, arg) on the puppet and waits for it to finish. */
static inline void puppet_do(struct puppet *p, puppet_fn fn, void *arg)
{
	pthread_mutex_lock(&p->m);
	p->fn = fn;
	p->arg = arg;
	p->pending = true;
	pthread_cond_broadcast(&p->c);
	while (p->pending)
		pthread_cond_wait(&p->c, &p->m);
	pthread_mutex_unlock(&p->m);
}

/* Unregisters (unless a step did, setting p->t to NULL) and joins. */
static inline void puppet_stop(struct puppet *p)
{
	pthread_mutex_lock(&p->m);
	p->quit = true;
	pthread_cond_broadcast(&p->c);
	pthread_mutex_unlock(&p->m);
	pthread_join(p->th, NULL);
	pthread_mutex_destroy(&p->m);
	pthread_cond_destroy(&p->c);
}

static inline void puppet_quiescent(struct puppet *p, void *arg)
{
	(void)arg;
	qsbr_quiescent(p->t);
}

static inline void puppet_detach(struct puppet *p, void *arg)
{
	(void)arg;
	qsbr_detach(p->t);
}

static inline void puppet_attach(struct puppet *p, void *arg)
{
	(void)arg;
	qsbr_attach(p->t);
}

static inline void puppet_unregister(struct puppet *p, void *arg)
{
	(void)arg;
	qsbr_unregister(p->t);
	p->t = NULL;
}

#endif
