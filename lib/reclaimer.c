/* SPDX-License-Identifier: MIT */
/*
 * The orphan ring's producers and the optional background reclaimer.
 *
 * Batches reach the domain's orphan ring when their thread unregisters, or,
 * with options.background, as soon as they close.  In background mode a
 * thread of the domain's own, started with the first batch (and again in a
 * fork child), drains the ring: it waits on worker_cv while the ring is
 * empty, and otherwise runs what is reached and sleeps as synchronize does
 * (woken by the quiescent states it waits for).  Retiring threads then never
 * run callbacks; qsbr_barrier waits for the ring, so it covers every batch
 * any thread closed before the call.
 */
#include <errno.h>

#include "internal.h"

static void *reclaimer_main(void *arg)
{
	qsbr_domain *d = arg;
	unsigned round = 0;

	pthread_mutex_lock(&d->orphan_lock);
	while (!d->worker_stop) {
		if (d->orphan_len == 0) {
			round = 0;
			pthread_cond_wait(&d->worker_cv, &d->orphan_lock);
			continue;
		}
		pthread_mutex_unlock(&d->orphan_lock);
		if (qsbr__drain_orphans(d, NULL, true, false) == 0)
			qsbr__wait(d, &round); /* behind a reader: sleep until it reports */
		else
			round = 0;
		pthread_mutex_lock(&d->orphan_lock);
	}
	pthread_mutex_unlock(&d->orphan_lock);
	return NULL;
}

/* Appends b to the orphan ring; in background mode, wakes (or starts) the
 * reclaimer.  If the reclaimer cannot be started, the batch stays in the
 * ring: reclaim, barrier and domain_delete drain it as for any orphan. */
void qsbr__orphan_push(qsbr_domain *d, const struct batch *b)
{
	pthread_mutex_lock(&d->orphan_lock);
	qsbr__ring_push_orphan(d, b);
	if (d->opts.background) {
		if (!d->worker_started && !d->worker_stop)
			d->worker_started = pthread_create(&d->worker, NULL, reclaimer_main, d) == 0;
		pthread_cond_signal(&d->worker_cv);
	}
	pthread_mutex_unlock(&d->orphan_lock);
}

/* For qsbr_domain_delete: stops and joins the reclaimer, if it runs. */
void qsbr__reclaimer_stop(qsbr_domain *d)
{
	bool started;

	pthread_mutex_lock(&d->orphan_lock);
	d->worker_stop = true;
	started = d->worker_started;
	pthread_cond_signal(&d->worker_cv);
	pthread_mutex_unlock(&d->orphan_lock);
	if (started)
		pthread_join(d->worker, NULL);
}
