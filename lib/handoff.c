/* SPDX-License-Identifier: MIT */
/*
 * The domain's shared queue of batches, and the helper thread that runs it.
 *
 * Batches reach the queue from threads that cannot finish them: a thread
 * that goes offline, unregisters or exits, retires while offline, or is
 * asked to flush; with QSBR_BACKGROUND_ALL, every closed batch.  One drainer
 * at a time (the `draining` flag) pops batches in push order and runs them
 * with no lock held, so a waiter that saw `pushed` == m knows that every
 * object before it has run once `done` >= m (qsbr__queue_done), and a
 * callback may do anything a callback may do, fork() included.
 *
 * The helper thread (options.background AUTO or ALL) is started on demand:
 * by a push, or by a thread's first retire into an empty batch.  It drains
 * the queue, polls every HELPER_POLL_MS while the oldest goal is not
 * reached (a timed sleep on its condition variable: as a futex waiter it
 * would make every quiescent state pay a wake system call), and every
 * flush_ms looks for threads that hold retired objects and made no
 * progress since its last look: it asks them to flush at their next
 * quiescent state, and advances wr_seq so that they reach the slow path.
 * With nothing held anywhere it sleeps until poked.  Where no helper runs
 * (QSBR_BACKGROUND_OFF, a failed start, the child of fork() before its first
 * push), retire, reclaim, both barriers and delete drain the queue
 * themselves.
 */
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

enum helper_state { HELPER_NONE = 0, HELPER_BUSY = 1, HELPER_IDLE = 2 };

#define HELPER_POLL_MS 1u

void qsbr__queue_init(qsbr_domain *d)
{
	struct queue *q = &d->q;

	q->ring.slot = q->slots;
	q->ring.size = QUEUE_RING_SIZE;
	q->ring.head = q->ring.len = 0;
	q->pushed = 0;
	q->max_goal = d->initial_seq;
	q->draining = false;
	atomic_init(&q->waiting, 0);
	atomic_init(&q->done, 0);
	atomic_init(&q->bytes_done, 0);
	atomic_init(&q->helper_state, HELPER_NONE);
	atomic_init(&q->helper_stop, 0);
	atomic_init(&q->helper_failures, 0);
	q->retry_at_ms = 0;
}

/* ---- The queue ----------------------------------------------------------- */

static void helper_wake_locked(qsbr_domain *d);

void qsbr__queue_push(qsbr_domain *d, const struct batch *b)
{
	struct queue *q = &d->q;

	pthread_mutex_lock(&q->lock);
	qsbr__ring_push(&q->ring, b);
	q->pushed += b->count;
	q->max_goal = seq_max(q->max_goal, b->goal);
	store_relaxed(&q->waiting, q->ring.len);
	helper_wake_locked(d);
	pthread_mutex_unlock(&q->lock);
}

/* What a barrier waits for: every object pushed so far. */
uint64_t qsbr__queue_mark(qsbr_domain *d)
{
	uint64_t m;

	pthread_mutex_lock(&d->q.lock);
	m = d->q.pushed;
	pthread_mutex_unlock(&d->q.lock);
	return m;
}

bool qsbr__queue_done(qsbr_domain *d, uint64_t mark)
{
	/* Acquire pairs with the release store in qsbr__queue_drain: the
	 * callbacks counted have returned. */
	return load_acquire(&d->q.done) >= mark;
}

/*
 * Runs the queue's batches whose goal is reached (DRAIN_ALL: every batch,
 * for qsbr_domain_delete), oldest first; returns how many callbacks ran.  Returns
 * 0 at once when another thread drains.  t (may be NULL) takes back the
 * pointer-retire boxes.
 */
size_t qsbr__queue_drain(qsbr_domain *d, qsbr_thread *t, enum drain_what what)
{
	struct queue *q = &d->q;
	bool all = what == DRAIN_ALL;
	size_t ran = 0;

	/* A callback's reclaim runs nothing (the outer loop goes on); a
	 * callback may delete another domain, which runs all of its queue. */
	if (!all && qsbr__in_callback())
		return 0;
	/* Relaxed hint; a stale zero only delays draining to a later call. */
	if (!all && load_relaxed(&q->waiting) == 0)
		return 0;
	pthread_mutex_lock(&q->lock);
	if (q->draining) {
		/* The drainer polls once more before it stops: our caller may
		 * be a waiter whose wake came while it polled. */
		q->drain_again = true;
		pthread_mutex_unlock(&q->lock);
		return 0;
	}
	q->draining = true;
	q->drain_again = false;
	while (q->ring.len > 0) {
		struct batch b;

		/* Only the drainer pops; a push merges into the tail only when
		 * the ring is full, never into the head: the head's goal is
		 * stable while we poll without the lock (a poll may call
		 * on_stall, which must not run under a lock). */
		if (!all) {
			qsbr_seq goal = q->ring.slot[q->ring.head].goal, max = q->max_goal;
			bool reached;

			pthread_mutex_unlock(&q->lock);
			reached = qsbr__poll(d, goal);
			if (!reached)
				qsbr__advance_past(d, max); /* deferred goals need one */
			pthread_mutex_lock(&q->lock);
			if (!reached && q->drain_again) {
				q->drain_again = false;
				continue;
			}
			if (!reached)
				break;
		}
		qsbr__ring_pop(&q->ring, &b);
		store_relaxed(&q->waiting, q->ring.len);
		pthread_mutex_unlock(&q->lock);
		if (!qsbr__run_batch(d, t, &b))
			return ran; /* a callback forked: the child reset the queue */
		store_relaxed(&q->bytes_done, load_relaxed(&q->bytes_done) + b.bytes);
		/* One writer at a time (draining).  Release pairs with the
		 * acquire loads in qsbr__queue_done and qsbr_stats_get. */
		store_release(&q->done, load_relaxed(&q->done) + b.count);
		ran += b.count;
		/* Waiters for done: the fence is our half of wait.c's pair. */
		fence_seq_cst();
		qsbr__wake_waiters(d);
		pthread_mutex_lock(&q->lock);
	}
	q->draining = false;
	pthread_mutex_unlock(&q->lock);
	return ran;
}

/* ---- The helper thread ---------------------------------------------------- */

/* Hints, read without the lock. */
bool qsbr__helper_runs(qsbr_domain *d)
{
	return load_relaxed(&d->q.helper_state) != HELPER_NONE;
}

bool qsbr__helper_busy(qsbr_domain *d)
{
	return load_relaxed(&d->q.helper_state) == HELPER_BUSY;
}

/*
 * Every flush_ms: for each thread that holds retired objects and made no
 * progress (freed, handed or polled nothing) since the last look, takes them if it
 * is offline (qsbr__steal), or else asks it to flush at its next quiescent
 * state, and advances once if it asked any.  Returns whether any thread
 * holds anything.
 */
static bool look_for_idle_holders(qsbr_domain *d, bool may_steal)
{
	uint64_t gen = 0;
	bool held = false;

	REGISTRY_EACH(d, t) {
		uint64_t progress;
		bool idle;

		if (load_relaxed(&t->state) != SLOT_USED)
			continue;
		progress = load_relaxed(&t->n_freed) + load_relaxed(&t->n_handed);
		if (load_relaxed(&t->n_retired) == progress && !qsbr__shm_holds(t))
			continue;
		progress += qsbr__shm_progress(t); /* retiring in a region is progress */
		/* So is a poll of its own ring (an online thread's retire that
		 * closes a batch, its reclaim): the owner runs what is safe
		 * itself, and will again at its next close; the helper could
		 * not end their grace periods any sooner. */
		progress += load_relaxed(&t->n_polled);
		held = true;
		idle = progress == load_relaxed(&t->helper_mark);
		store_relaxed(&t->helper_mark, progress);
		if (!idle)
			continue;
		if (load_relaxed(&t->seq) == 0) {
			if (may_steal && qsbr__steal(t))
				store_relaxed(&t->helper_mark, UINT64_MAX);
			continue;
		}
		if (gen == 0)
			gen = fetch_add_relaxed(&d->flush_gen, 1) + 1;
		if (qsbr_seq_lt(load_relaxed(&t->flush_req), gen))
			store_relaxed(&t->flush_req, gen);
	}
	if (gen != 0) {
		qsbr__advance(d); /* R3: releases the requests to their owners */
		fence_seq_cst();  /* and wakes an owner asleep in a wait */
		qsbr__wake_waiters(d);
	}
	return held;
}

/* Sleeps on the helper's condition variable for ms, or until signalled.
 * Under q->lock.  nap: a long sleep, which a push cuts short. */
static void timed_wait(qsbr_domain *d, uint64_t ms, bool nap)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	d->q.helper_napping = nap;
	pthread_cond_timedwait(&d->q.cv, &d->q.lock, &ts);
	d->q.helper_napping = false;
}

static void *helper_main(void *arg)
{
	qsbr_domain *d = arg;
	struct queue *q = &d->q;
	uint64_t next_look = 0, fork_gen = qsbr__fork_generation();
	bool held = true;

	pthread_mutex_lock(&q->lock);
	while (load_relaxed(&q->helper_stop) == 0) {
		uint64_t now;

		pthread_mutex_unlock(&q->lock);
		qsbr__queue_drain(d, NULL, DRAIN_REACHED);
		/* A callback forked and this is the child: its one thread is our
		 * copy, with no code of the program's to go back to.  End the
		 * process as a child that cannot exec does: _exit, so that no
		 * atexit handler or stdio buffer of the parent runs twice. */
		if (qsbr__fork_generation() != fork_gen)
			_exit(0);
		now = qsbr__now_ms();
		if (now >= next_look) {
			held = look_for_idle_holders(d, true);
			next_look = now + d->flush_ms;
		}
		pthread_mutex_lock(&q->lock);
		if (load_relaxed(&q->helper_stop) != 0)
			break;
		if (q->ring.len > 0) {
			/* Behind a reader (or another drainer): poll again in
			 * HELPER_POLL_MS.  Not as a futex waiter: then every
			 * quiescent state would pay a wake system call for us. */
			timed_wait(d, HELPER_POLL_MS, false);
			continue;
		}
		if (held) {
			timed_wait(d, d->flush_ms, true);
			continue;
		}
		/* Nothing held anywhere: idle until poked.  seq_cst store, then
		 * a last look at the counters after the fence: against a
		 * thread's first retire into an empty batch (retire.c,
		 * batch_started), one of us sees the other. */
		store_seq_cst(&q->helper_state, HELPER_IDLE);
		fence_seq_cst();
		/* Under q.lock: it may not steal (a steal pushes). */
		held = look_for_idle_holders(d, false);
		if (!held && q->ring.len == 0 && load_relaxed(&q->helper_stop) == 0)
			pthread_cond_wait(&q->cv, &q->lock);
		store_relaxed(&q->helper_state, HELPER_BUSY);
		held = true;
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/* Starts or wakes the helper.  Under q->lock. */
static void helper_wake_locked(qsbr_domain *d)
{
	struct queue *q = &d->q;
	sigset_t all, old;
	uint64_t now;

	if (d->opts.background == QSBR_BACKGROUND_OFF || load_relaxed(&q->helper_stop) != 0)
		return;
	if (load_relaxed(&q->helper_state) != HELPER_NONE) {
		/* Idle, or napping until its next look: new work for it now.
		 * (Polling every HELPER_POLL_MS, it finds the work itself.) */
		if (load_relaxed(&q->helper_state) == HELPER_IDLE || q->helper_napping)
			pthread_cond_signal(&q->cv);
		return;
	}
	/* After a failed start, try again at most once per flush_ms. */
	now = qsbr__now_ms();
	if (q->retry_at_ms != 0 && now < q->retry_at_ms)
		return;
	/* The helper runs no signal handler of the program's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&q->helper, NULL, helper_main, d) == 0) {
		store_relaxed(&q->helper_state, HELPER_BUSY);
		q->retry_at_ms = 0;
	} else {
		fetch_add_relaxed(&q->helper_failures, 1);
		q->retry_at_ms = now + d->flush_ms;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* A thread started an open batch and the helper is idle or not running. */
void qsbr__helper_poke(qsbr_domain *d)
{
	pthread_mutex_lock(&d->q.lock);
	helper_wake_locked(d);
	pthread_mutex_unlock(&d->q.lock);
}

/* For qsbr_domain_delete: stops and joins the helper, if it runs. */
void qsbr__helper_stop(qsbr_domain *d)
{
	struct queue *q = &d->q;
	bool running;

	pthread_mutex_lock(&q->lock);
	store_relaxed(&q->helper_stop, 1);
	running = load_relaxed(&q->helper_state) != HELPER_NONE;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->lock);
	if (running)
		pthread_join(q->helper, NULL);
	store_relaxed(&q->helper_state, HELPER_NONE);
}

/* In the child of fork(), under q->lock: the queue's batches belong to the
 * parent, and the helper did not come along. */
void qsbr__queue_fork_child(qsbr_domain *d)
{
	struct queue *q = &d->q;

	q->ring.head = q->ring.len = 0;
	q->pushed = 0;
	q->draining = false;
	store_relaxed(&q->waiting, 0);
	store_relaxed(&q->done, 0);
	store_relaxed(&q->bytes_done, 0);
	store_relaxed(&q->helper_state, HELPER_NONE);
	q->retry_at_ms = 0;
	q->drain_again = false;
	qsbr__cond_init(&q->cv);
}
