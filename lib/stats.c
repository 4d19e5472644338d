/* SPDX-License-Identifier: MIT */
/*
 * Statistics: the domain's pending totals and peaks (kept per batch, one
 * relaxed RMW each), the per-thread counters folded in when a thread leaves,
 * and qsbr_stats_get.  Every counter is relaxed: statistics and the cap's
 * trigger, never a safety decision.
 */
#include <errno.h>
#include <time.h>

#include "internal.h"

uint64_t qsbr__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void raise_peak(au64 *peak, uint64_t v)
{
	uint64_t old = load_relaxed(peak);

	while (old < v && !cas_weak_relaxed(peak, &old, v))
		;
}

/* A closed batch enters (count > 0) or leaves (count < 0) the domain's
 * pending total.  One RMW per batch for objects, one more only for batches
 * with sized retires; the peaks are written only when they rise. */
void qsbr__account(qsbr_domain *d, int64_t count, int64_t bytes)
{
	uint64_t n = fetch_add_relaxed(&d->closed_pending, (uint64_t)count) + (uint64_t)count;
	uint64_t b = bytes == 0 ? 0 : fetch_add_relaxed(&d->closed_bytes, (uint64_t)bytes) + (uint64_t)bytes;

	if (count > 0) {
		raise_peak(&d->peak_pending, n);
		if (bytes != 0)
			raise_peak(&d->peak_bytes, b);
	}
}

static void take(au64 *from, uint64_t *to)
{
	*to += load_relaxed(from);
	store_relaxed(from, 0);
}

/* A departing thread's counters join the domain's.  Under reg_lock. */
void qsbr__stats_fold(qsbr_thread *t)
{
	qsbr_domain *d = t->d;

	take(&t->n_retired, &d->departed_retired);
	take(&t->n_freed, &d->departed_freed);
	take(&t->n_handed, &d->departed_handed);
	take(&t->n_bytes_retired, &d->departed_bytes_retired);
	take(&t->n_bytes_freed, &d->departed_bytes_freed);
	store_relaxed(&t->n_bytes_handed, 0); /* no statistic: pool.c's */
}

/* In the child of fork(): it holds nothing retired before the fork, so its
 * statistics start again from zero (docs/api.md, fork). */
void qsbr__stats_fork_child(qsbr_domain *d)
{
	store_relaxed(&d->closed_pending, 0);
	store_relaxed(&d->closed_bytes, 0);
	store_relaxed(&d->peak_pending, 0);
	store_relaxed(&d->peak_bytes, 0);
	d->departed_retired = d->departed_freed = d->departed_handed = 0;
	d->departed_bytes_retired = d->departed_bytes_freed = 0;
}

int qsbr_stats_get(qsbr_domain *d, qsbr_stats *out)
{
	qsbr_stats s = { 0 };
	uint64_t handed, bytes_retired, bytes_freed, q_done, q_bytes;

	if (d == NULL || out == NULL)
		return EINVAL;
	pthread_mutex_lock(&d->reg_lock);
	s.retired = d->departed_retired;
	s.freed = d->departed_freed;
	handed = d->departed_handed;
	bytes_retired = d->departed_bytes_retired;
	bytes_freed = d->departed_bytes_freed;
	REGISTRY_EACH(d, t) {
		if (load_relaxed(&t->state) != SLOT_USED)
			continue;
		s.threads++;
		if (load_relaxed(&t->seq) != 0)
			s.online++;
		s.retired += load_relaxed(&t->n_retired);
		s.freed += load_relaxed(&t->n_freed);
		handed += load_relaxed(&t->n_handed);
		bytes_retired += load_relaxed(&t->n_bytes_retired);
		bytes_freed += load_relaxed(&t->n_bytes_freed);
	}
	pthread_mutex_unlock(&d->reg_lock);
	/* Acquire pairs with the release store in qsbr__queue_drain: a count
	 * that includes a batch comes after its callbacks returned. */
	q_done = load_acquire(&d->q.done);
	q_bytes = load_relaxed(&d->q.bytes_done);
	s.freed += q_done;
	s.handed = handed;
	/* Counters are read one after another while threads run: clamp. */
	s.pending = s.retired > s.freed ? s.retired - s.freed : 0;
	s.pending_bytes = bytes_retired - bytes_freed - q_bytes;
	if ((int64_t)s.pending_bytes < 0)
		s.pending_bytes = 0;
	s.advances = (load_relaxed(d->wr) - d->initial_seq) / 2;
	s.scans = load_relaxed(&d->n_scans);
	s.peak_pending = load_relaxed(&d->peak_pending);
	s.peak_pending_bytes = load_relaxed(&d->peak_bytes);
	s.stalls = load_relaxed(&d->n_stalls);
	s.cap_waits = load_relaxed(&d->n_cap_waits);
	s.helper_failures = load_relaxed(&d->q.helper_failures);
	*out = s;
	return 0;
}
