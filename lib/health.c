/* SPDX-License-Identifier: MIT */
/*
 * What keeps a domain healthy when threads misbehave: stall reports, the
 * memory cap, sleeping waiters (futex) instead of spinning ones, threads that
 * exit without unregistering, and fork().
 */
#define _GNU_SOURCE /* syscall(SYS_futex) */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#include "internal.h"
#include "protocol.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- Statistics kept per batch ------------------------------------------ */

static void raise_peak(au64 *peak, uint64_t v)
{
	uint64_t old = load_relaxed(peak);

	while (old < v && !cas_strong_relaxed(peak, &old, v))
		;
}

/* A closed batch enters (count > 0) or leaves (count < 0) the domain's
 * pending total.  Relaxed: counters, read by statistics and the cap.  One
 * RMW per batch for objects, one more only for batches with sized retires;
 * the peaks are written only when they rise. */
void qsbr__account(qsbr_domain *d, int64_t count, int64_t bytes)
{
	uint64_t n = fetch_add_relaxed(&d->sealed_pending, (uint64_t)count) + (uint64_t)count;
	uint64_t b = bytes == 0 ? 0 : fetch_add_relaxed(&d->sealed_bytes, (uint64_t)bytes) + (uint64_t)bytes;

	if (count > 0) {
		raise_peak(&d->peak_pending, n);
		if (bytes != 0)
			raise_peak(&d->peak_bytes, b);
	}
}

/* ---- Stall reports -------------------------------------------------------- */

/*
 * Called by a poll that found `who` (online, at `seq`) holding a goal back.
 * Tracks how long the same slot has stayed at the same seq and reports it
 * once it passes stall_ms, then at most once per stall_ms.
 */
void qsbr__stall_check(qsbr_domain *d, const qsbr_thread *who, qsbr_seq seq)
{
	uint64_t now, since, last;
	qsbr_stall_info info;
	qsbr_stats st;
	char name[sizeof(who->name)];

	if (d->opts.stall_ms == 0 || d->opts.on_stall == NULL)
		return;
	now = now_ms();
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
	pthread_mutex_lock(&d->reg_lock);
	info.thread_id = who->id;
	memcpy(name, who->name, sizeof(name));
	pthread_mutex_unlock(&d->reg_lock);
	info.name = name;
	info.stalled_ms = now - since;
	info.periods = (load_relaxed(&d->wr_seq) - seq) / 2;
	info.pending = st.pending;
	info.pending_bytes = st.pending_bytes;
	d->opts.on_stall(&info, d->opts.stall_arg);
}

/* ---- Sleeping waiters ------------------------------------------------------ */

/*
 * A waiter (synchronize, barrier, the cap) registers in `waiters`, then
 * rechecks its condition, then sleeps on futex_word for at most 1 ms.  A
 * thread that publishes a new seq or goes offline checks `waiters` after its
 * R2 fence and, if anybody waits, bumps futex_word and wakes them.  Either
 * the publisher sees the waiter (seq_cst RMW before the waiter's scan fence;
 * its own fence before the load) or the waiter's scan sees the new seq; the
 * 1 ms bound covers whatever else (a clock, a lost signal).
 */
void qsbr__wake_waiters(qsbr_domain *d)
{
	/* seq_cst: pairs with fetch_add_seq_cst(waiters) in qsbr__wait (a
	 * store-buffering pair, with R2's fence on our side). */
	if (load_seq_cst(&d->waiters) == 0)
		return;
	fetch_add_seq_cst(&d->futex_word, 1);
#ifdef __linux__
	syscall(SYS_futex, (uint32_t *)&d->futex_word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#endif
}

/* One step of a wait loop: spin, then sleep until woken (at most 1 ms). */
void qsbr__wait(qsbr_domain *d, unsigned *round)
{
	unsigned r = (*round)++;
	struct timespec ts = { 0, 1000000 };
	uint32_t seen;

	if (r < 64) {
		cpu_relax();
		return;
	}
	if (r < 72) {
		sched_yield();
		return;
	}
	/* The caller rechecks its condition after we return; registering
	 * first, then reading the word, means a wake between its check and our
	 * sleep changes the word and the futex returns at once. */
	fetch_add_seq_cst(&d->waiters, 1);
	seen = load_seq_cst(&d->futex_word);
#ifdef __linux__
	syscall(SYS_futex, (uint32_t *)&d->futex_word, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
#else
	(void)seen;
	nanosleep(&ts, NULL);
#endif
	fetch_sub_relaxed(&d->waiters, 1);
}

/* ---- Memory cap -------------------------------------------------------------- */

static bool over_cap(const qsbr_domain *d)
{
	const qsbr_options *o = &d->opts;

	return (o->max_pending != 0 && load_relaxed(&d->sealed_pending) > o->max_pending) ||
	       (o->max_pending_bytes != 0 && load_relaxed(&d->sealed_bytes) > o->max_pending_bytes);
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
	now = now_ms();
	last = load_relaxed(&d->pressure_at_ms);
	if (last != 0 && now - last < 100)
		return;
	if (!cas_strong_relaxed(&d->pressure_at_ms, &last, now))
		return;
	qsbr_stats_get(d, &st);
	d->opts.on_pressure(QSBR_PRESSURE_CAP, &st, d->opts.pressure_arg);
}

/* At a quiescent state, with cap_wait set: wait for the objects this thread
 * holds now to be freed, counting as quiescent, for at most stall_ms (1 s
 * when unset), so a stalled thread slows retirement without hanging it. */
void qsbr__cap_wait(qsbr_thread *t)
{
	qsbr_domain *d = t->d;
	uint64_t target = load_relaxed(&t->n_retired);
	uint64_t orphan_target = 0;
	uint64_t limit = d->opts.stall_ms != 0 ? d->opts.stall_ms : 1000;
	uint64_t start = now_ms();
	unsigned round = 0;

	t->cap_wait = false;
	if (qsbr__in_callback())
		return; /* its reclaim could not run anything */
	fetch_add_relaxed(&d->n_cap_waits, 1);
	if (d->opts.background) {
		/* Our batches are the reclaimer's: wait for the ring instead. */
		qsbr__seal(t);
		target = load_relaxed(&t->n_freed);
		pthread_mutex_lock(&d->orphan_lock);
		orphan_target = d->orphans_added;
		pthread_mutex_unlock(&d->orphan_lock);
	}
	for (;;) {
		qsbr_reclaim(t);
		if ((load_relaxed(&t->n_freed) >= target &&
		     load_relaxed(&d->orphans_freed) >= orphan_target) ||
		    now_ms() - start >= limit)
			return;
		proto_publish(&t->head.seq, &d->wr_seq);
		qsbr__wait(d, &round);
	}
}

/* ---- Threads that exit without unregistering ----------------------------- */

/* One key for the library: its value is the calling thread's first handle;
 * the handles chain through tls_next.  The destructor unregisters them. */
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_ok;

static void tls_exit(void *head)
{
	qsbr_thread *t = head;

	while (t != NULL) {
		qsbr_thread *next = t->tls_next;

		qsbr_unregister(t); /* removes t from the chain */
		t = next;
	}
}

static void tls_init(void)
{
	tls_ok = pthread_key_create(&tls_key, tls_exit) == 0;
}

void qsbr__tls_add(qsbr_thread *t)
{
	pthread_once(&tls_once, tls_init);
	if (!tls_ok)
		return; /* no automatic unregister, as documented */
	t->tls_next = pthread_getspecific(tls_key);
	pthread_setspecific(tls_key, t);
}

void qsbr__tls_remove(qsbr_thread *t)
{
	qsbr_thread *head, **link;

	if (!tls_ok)
		return;
	head = pthread_getspecific(tls_key);
	for (link = &head; *link != NULL; link = &(*link)->tls_next) {
		if (*link == t) {
			*link = t->tls_next;
			break;
		}
	}
	pthread_setspecific(tls_key, head);
	t->tls_next = NULL;
}

/* ---- fork() ------------------------------------------------------------------ */

/*
 * The child of fork() has one thread.  Every domain's locks are taken
 * before the fork (so no structure is caught half-changed under a lock) and
 * released on both sides; in the child, the slots of the threads that did
 * not come along are released and their unfinished batches dropped: their
 * callbacks run in the parent, never in the child.  The forking thread's
 * handles, the orphans and everything else carry on.
 */
static pthread_mutex_t domains_lock = PTHREAD_MUTEX_INITIALIZER;
static qsbr_domain *domains;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
	pthread_mutex_lock(&domains_lock);
	for (qsbr_domain *d = domains; d != NULL; d = d->all_next) {
		pthread_mutex_lock(&d->drain_lock);
		pthread_mutex_lock(&d->orphan_lock);
		pthread_mutex_lock(&d->reg_lock);
	}
}

static void unlock_all(void)
{
	for (qsbr_domain *d = domains; d != NULL; d = d->all_next) {
		pthread_mutex_unlock(&d->reg_lock);
		pthread_mutex_unlock(&d->orphan_lock);
		pthread_mutex_unlock(&d->drain_lock);
	}
	pthread_mutex_unlock(&domains_lock);
}

static void release_departed(qsbr_thread *t, void *arg)
{
	qsbr_domain *d = t->d;

	(void)arg;
	if (pthread_equal(t->owner, pthread_self()))
		return;
	if (load_relaxed(&t->head.seq) != 0)
		proto_detach(&t->head.seq, t->group_online, t->mask_word, t->mask_bit);
	/* Its closed batches leave the pending total; the objects stay with
	 * the parent's copy of that thread. */
	for (uint32_t i = 0; i < t->ring_len; i++) {
		const struct batch *b = &t->ring[(t->ring_head + i) % RING_SIZE];

		qsbr__account(d, -(int64_t)b->count, -(int64_t)b->bytes);
	}
	t->ring_len = 0;
	t->open = (struct batch){ 0 };
	t->wcache = NULL; /* the parent's thread frees its nodes; ours leak */
	t->wcache_len = 0;
	t->tls_next = NULL;
	qsbr__slot_release(t, true); /* dropped, not pending */
}

static void fork_child(void)
{
	for (qsbr_domain *d = domains; d != NULL; d = d->all_next) {
		qsbr__registry_each(d, release_departed, NULL);
		store_relaxed(&d->blocker, NULL);
		store_relaxed(&d->stall_who, NULL);
		store_relaxed(&d->waiters, 0);
		/* The reclaimer did not come along: the next batch starts one. */
		d->worker_started = false;
		pthread_cond_init(&d->worker_cv, NULL);
	}
	unlock_all();
}

static void fork_init(void)
{
	pthread_atfork(fork_prepare, unlock_all, fork_child);
}

int qsbr__domains_add(qsbr_domain *d)
{
	pthread_once(&fork_once, fork_init);
	pthread_mutex_lock(&domains_lock);
	d->all_next = domains;
	domains = d;
	pthread_mutex_unlock(&domains_lock);
	return 0;
}

void qsbr__domains_remove(qsbr_domain *d)
{
	pthread_mutex_lock(&domains_lock);
	for (qsbr_domain **link = &domains; *link != NULL; link = &(*link)->all_next) {
		if (*link == d) {
			*link = d->all_next;
			break;
		}
	}
	pthread_mutex_unlock(&domains_lock);
}
