/* SPDX-License-Identifier: MIT */
/*
 * Policies for threads that misbehave: stall reports (an online thread that
 * holds grace periods back) and the memory cap (retiring faster than
 * reclamation).  Both only observe and ask: the cap's wait itself is the
 * thread's own barrier with a deadline, run at its next quiescent state
 * (retire.c, qsbr__owner_duties).
 */
#include <string.h>

#include "internal.h"

/*
 * Called by a poll that found the slot whose seq word is `who` (online, at
 * `seq`) holding a goal back: a slot of the registry (its first word), or
 * of a shared region.
 * Tracks how long the same slot has stayed at the same seq and reports it
 * once it passes stall_ms, then at most once per stall_ms.
 */
void qsbr__stall_check(qsbr_domain *d, const au64 *who, qsbr_seq seq)
{
	uint64_t now, since, last;
	qsbr_stall_info info;
	qsbr_stats st;
	char name[sizeof(((qsbr_thread *)0)->name)];

	if (d->opts.stall_ms == 0 || d->opts.on_stall == NULL)
		return;
	now = qsbr__now_ms();
	if (load_relaxed(&d->stall_who) != who || load_relaxed(&d->stall_seq) != seq) {
		/* A new episode; racing pollers may each restart it: harmless. */
		store_relaxed(&d->stall_who, (void *)who);
		store_relaxed(&d->stall_seq, seq);
		store_relaxed(&d->stall_since_ms, now);
		return;
	}
	since = load_relaxed(&d->stall_since_ms);
	last = load_relaxed(&d->stall_report_ms);
	if (now - since < d->opts.stall_ms || (last != 0 && now - last < d->opts.stall_ms))
		return;
	if (!cas_strong_relaxed(&d->stall_report_ms, &last, now))
		return; /* another poller reports this one */
	fetch_add_relaxed(&d->n_stalls, 1);
	qsbr_stats_get(d, &st);
	if (d->shm != NULL) {
		info.thread_id = qsbr__shm_describe(d, who, name, sizeof(name));
	} else {
		const qsbr_thread *t = (const qsbr_thread *)(const void *)who;

		pthread_mutex_lock(&d->reg_lock);
		info.thread_id = t->id;
		memcpy(name, t->name, sizeof(name));
		pthread_mutex_unlock(&d->reg_lock);
	}
	info.name = name;
	info.stalled_ms = now - since;
	info.periods = (load_relaxed(d->wr) - seq) / 2;
	info.pending = st.pending;
	info.pending_bytes = st.pending_bytes;
	d->opts.on_stall(&info, d->opts.stall_arg);
}

static bool over_cap(const qsbr_domain *d)
{
	const qsbr_options *o = &d->opts;

	return (o->max_pending != 0 && load_relaxed(&d->closed_pending) > o->max_pending) ||
	       (o->max_pending_bytes != 0 && load_relaxed(&d->closed_bytes) > o->max_pending_bytes);
}

/* After a batch closes: past the cap, ask this thread to wait at its next
 * quiescent state (advancing, so that its next qsbr_quiescent takes the slow
 * path), and tell on_pressure, at most every 100 ms. */
void qsbr__cap_check(qsbr_thread *t)
{
	qsbr_domain *d = t->d;
	uint64_t now, last;
	qsbr_stats st;

	if (!over_cap(d))
		return;
	if (!t->cap_wait) {
		t->cap_wait = true;
		qsbr__advance(d);
	}
	if (d->opts.on_pressure == NULL)
		return;
	now = qsbr__now_ms();
	last = load_relaxed(&d->pressure_at_ms);
	if (last != 0 && now - last < 100)
		return;
	if (!cas_strong_relaxed(&d->pressure_at_ms, &last, now))
		return;
	qsbr_stats_get(d, &st);
	d->opts.on_pressure(QSBR_PRESSURE_CAP, &st, d->opts.pressure_arg);
}

/* The cap's deadline: a stalled thread slows retirement, never hangs it. */
uint64_t qsbr__cap_deadline(const qsbr_domain *d)
{
	return qsbr__now_ms() + (d->opts.stall_ms != 0 ? d->opts.stall_ms : 1000);
}
