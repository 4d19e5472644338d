/* SPDX-License-Identifier: MIT */
/*
 * A thread's retire lists, and what its owner does with them: retire,
 * reclaim, barrier, flush (hand everything to the shared queue), and the
 * duties a thread was asked to do at its next quiescent state.
 *
 *   ring: [goal g1] ... [goal gk]   open: [no goal yet]
 *
 * A retire is a thread-local append to the open batch.  When the open batch
 * fills (options.batch_size objects, or enough bytes to reach the deferral
 * byte limit) it is closed: one goal for the whole batch (protocol.h, R3 or
 * R4), and then the thread runs what has become safe.  Goals only grow along
 * the ring, so reclaim runs batches in order up to the first unmet goal.  A
 * full ring merges into its newest batch (a later goal is always safe), so
 * retiring never allocates.
 *
 * What a thread cannot finish itself goes to the domain's shared queue
 * (handoff.c): everything, when it unregisters, or is asked to flush (by the
 * helper, because it sat on objects for flush_ms, or by
 * qsbr_barrier_domain).  A thread that goes offline keeps its lists, but
 * lets go of them (`lists`): while it is away and not inside a call, the
 * helper (after flush_ms without progress) or a barrier may steal them.
 *
 *   owner: pin (FREE -> OWNED, acquire) ... unpin (OWNED -> FREE, release)
 *   stealer: FREE -> TAKEN (acquire), hand everything over, -> FREE (release)
 *
 * Online counts as one pin, so the retire fast path never pins; the slow
 * paths pin, so a callback that takes its thread offline in the middle of
 * a batch does not let go of lists still being walked.
 */
#include <errno.h>
#include <sched.h>
#include <stdalign.h>

#include "internal.h"

/* Pushes b onto the shared queue, then counts it: release pairs with the
 * acquire in all_flushed, so a barrier that counts the thread as holding
 * nothing sees the push, and takes its queue mark after it. */
static void hand_over(qsbr_thread *t, const struct batch *b)
{
	qsbr__queue_push(t->d, b);
	store_relaxed(&t->n_bytes_handed, load_relaxed(&t->n_bytes_handed) + b->bytes);
	store_release(&t->n_handed, load_relaxed(&t->n_handed) + b->count);
}

/* How a closed batch gets its goal: the owner's way (R3 or R4's deferred
 * goal, qsbr__make_goal), or a stealer's (an advance: R4's fence would have
 * to be on the unlinking thread; see qsbr__steal). */
enum goal_how { GOAL_OWNER, GOAL_STOLEN };

/* Closes the open batch: it gets its goal, and goes to the ring (or, with
 * QSBR_BACKGROUND_ALL, to the shared queue). */
static void close_open_as(qsbr_thread *t, enum goal_how how)
{
	struct batch b = t->open;

	if (b.count == 0)
		return;
	b.goal = how == GOAL_OWNER ? qsbr__make_goal(t, (uint32_t)b.count, b.bytes)
				   : qsbr__advance(t->d);
	t->open = (struct batch){ 0 };
	qsbr__account(t->d, (int64_t)b.count, (int64_t)b.bytes);
	if (t->d->opts.background == QSBR_BACKGROUND_ALL) {
		hand_over(t, &b);
	} else {
		qsbr__ring_push(&t->ring, &b);
	}
}

static void close_open(qsbr_thread *t)
{
	close_open_as(t, GOAL_OWNER);
}

/* Closes the open batch and hands everything to the shared queue, oldest
 * first (the open batch, newest goal, last). */
static void flush_as(qsbr_thread *t, enum goal_how how)
{
	struct batch b;

	close_open_as(t, how);
	while (qsbr__ring_pop(&t->ring, &b))
		hand_over(t, &b);
}

/* Runs this thread's batches whose goal is reached, oldest first. */
static size_t run_reached(qsbr_thread *t)
{
	struct batch b;
	size_t ran = 0;

	if (qsbr__in_callback())
		return 0; /* called from a callback: the outer loop goes on */
	add_relaxed_owner(&t->n_polled, 1); /* progress, to the helper */
	while (t->ring.len > 0 && qsbr__poll(t->d, t->ring.slot[t->ring.head].goal)) {
		/* Off the ring before running it: callbacks may retire, which
		 * appends to open and may close it into the ring. */
		qsbr__ring_pop(&t->ring, &b);
		if (!qsbr__run_batch(t->d, t, &b))
			return ran; /* a callback forked: this is the child */
		add_relaxed_owner(&t->n_bytes_freed, b.bytes);
		/* Release pairs with the acquire in all_flushed: a thread that
		 * a callback took offline in the middle of this batch holds
		 * nothing once this count says so. */
		store_release(&t->n_freed, load_relaxed(&t->n_freed) + b.count);
		ran += b.count;
		if (load_relaxed(&t->seq) == 0) {
			fence_seq_cst(); /* our half of wait.c's pair */
			qsbr__wake_waiters(t->d);
		}
	}
	return ran;
}


/* Hands everything the thread holds to the shared queue.  Owner, pinned. */
void qsbr__flush(qsbr_thread *t)
{
	flush_as(t, GOAL_OWNER);
}

void qsbr__lists_pin(qsbr_thread *t)
{
	uint32_t expected;

	if (t->pins++ > 0)
		return;
	/* Acquire pairs with the stealer's release: what it took is gone from
	 * our lists before we look at them.  A stealer holds them for a few
	 * pushes; if it was descheduled meanwhile, give it the processor. */
	for (unsigned spins = 0;; spins++) {
		expected = LISTS_FREE;
		if (cas_weak_acquire(&t->lists, &expected, LISTS_OWNED))
			return;
		if (spins < 64)
			cpu_relax();
		else
			sched_yield();
	}
}

void qsbr__lists_unpin(qsbr_thread *t)
{
	if (--t->pins > 0)
		return;
	/* Release pairs with the stealer's acquire CAS: our writes to the
	 * lists (and the unlinks before each retire) come before its look. */
	store_release(&t->lists, LISTS_FREE);
}

/*
 * Takes what an offline thread holds, if it is not using it (its lists are
 * FREE): closes the open batch with an advance and hands everything to the
 * shared queue.  The advance is R3: the owner's unlinks happen before it
 * through the acquire CAS below, and it is a seq_cst RMW, so every reader
 * that sees it (or a later wr_seq) sees them (the deferred goal of R4 would
 * need the fence on the unlinking thread).  Any thread; false when the
 * owner holds its lists or another stealer got there first.
 */
bool qsbr__steal(qsbr_thread *t)
{
	uint32_t expected = LISTS_FREE;

	/* Acquire pairs with qsbr__lists_unpin's release. */
	if (!cas_strong_acquire(&t->lists, &expected, LISTS_TAKEN))
		return false;
	flush_as(t, GOAL_STOLEN); /* R3 for the open batch */
	if (load_relaxed(&t->shm_slot) != NULL)
		qsbr__shm_hand_over(t); /* its region list, to the orphans */
	/* Release pairs with qsbr__lists_pin's acquire. */
	store_release(&t->lists, LISTS_FREE);
	return true;
}

/* Set while this thread waits for the cap: the wait reports quiescent
 * states, which must not start another. */
static QSBR_TLS bool in_cap_wait;

/* After a flush: the request seen before it is answered.  Not from inside
 * a callback: the thread may be running one of its own batches, which it
 * holds until the batch ends (all_flushed then counts it as held). */
static void answer_flush(qsbr_thread *t, uint64_t req)
{
	if (qsbr__in_callback() || !qsbr_seq_lt(t->flush_done, req))
		return;
	t->flush_done = req;
	/* seq_cst: release pairs with the acquire load in all_flushed (our
	 * handed batches are in the queue before it takes its mark); seq_cst
	 * for the wake's store-buffering pair (wait.c). */
	store_seq_cst(&t->flush_ack, req);
	qsbr__wake_waiters(t->d);
}

/* From the quiescent slow path (grace.c): a flush request, the cap. */
void qsbr__owner_duties(qsbr_thread *t)
{
	uint64_t req = load_relaxed(&t->flush_req);

	if (qsbr_seq_lt(t->flush_done, req)) {
		qsbr__flush(t);
		answer_flush(t, req);
	}
	if (t->cap_wait && !in_cap_wait && !qsbr__in_callback()) {
		t->cap_wait = false;
		fetch_add_relaxed(&t->d->n_cap_waits, 1);
		in_cap_wait = true;
		qsbr__barrier_wait(t, qsbr__cap_deadline(t->d));
		in_cap_wait = false;
	}
}

/* The first object of an open batch: in the default and background modes,
 * make sure the helper runs (it finds this thread if it goes idle). */
static void __attribute__((noinline)) batch_started(qsbr_thread *t)
{
	if (t->d->opts.background == QSBR_BACKGROUND_OFF)
		return;
	/* seq_cst fence: our n_retired store before the load of the helper's
	 * state, against its store of "idle" before its last look at the
	 * threads' counters (handoff.c, helper_main): one of us sees the
	 * other. */
	fence_seq_cst();
	if (!qsbr__helper_busy(t->d))
		qsbr__helper_poke(t->d);
}

/* Out of line: close the batch, then run what is safe. */
static void __attribute__((noinline)) retire_slow(qsbr_thread *t)
{
	qsbr_domain *d = t->d;

	qsbr__lists_pin(t);
	close_open(t);
	if (d->opts.background != QSBR_BACKGROUND_OFF && !qsbr__helper_runs(d))
		qsbr__helper_poke(d); /* after a failed start: try again (rate-limited) */
	/* Offline, a retire runs no callback: it may be made under the
	 * caller's locks (pool.c's thread exit is). */
	if (load_relaxed(&t->seq) != 0) {
		qsbr__cap_check(t);
		if (d->opts.background != QSBR_BACKGROUND_ALL) {
			run_reached(t);
			if (!qsbr__helper_runs(d))
				qsbr__queue_drain(d, t, DRAIN_REACHED);
		}
	}
	qsbr__lists_unpin(t);
}

/* The append itself; the caller holds the lists (online, or pinned). */
static inline void retire_append(qsbr_thread *t, qsbr_node *n, void (*fn)(qsbr_node *n),
				 size_t bytes)
{
	struct batch *o = &t->open;

	n->fn = fn;
	n->next = NULL;
	add_relaxed_owner(&t->n_retired, 1);
	if (o->last != NULL) {
		o->last->next = n;
	} else {
		o->first = n;
		batch_started(t);
	}
	o->last = n;
	o->count++;
	if (bytes != 0) {
		o->bytes += bytes;
		add_relaxed_owner(&t->n_bytes_retired, bytes);
		if (t->since_bytes + o->bytes >= t->d->opts.deferred_bytes) {
			retire_slow(t);
			return;
		}
	}
	if (QSBR__UNLIKELY(o->count >= t->batch_limit))
		retire_slow(t);
}

void qsbr_retire_node_sized(qsbr_thread *t, qsbr_node *n, void (*fn)(qsbr_node *n), size_t bytes)
{
	if (t == NULL || n == NULL || fn == NULL || bytes > QSBR_SIZED_MAX) {
		errno = EINVAL;
		return;
	}
	CHECK_OWNER(t, "qsbr_retire_node");
	/* Own field: only this thread writes it.  Offline, the lists may be
	 * a stealer's: take them back first. */
	if (QSBR__UNLIKELY(load_relaxed(&t->seq) == 0)) {
		qsbr__lists_pin(t);
		retire_append(t, n, fn, bytes);
		qsbr__lists_unpin(t);
		return;
	}
	retire_append(t, n, fn, bytes);
}

void qsbr_retire_node(qsbr_thread *t, qsbr_node *n, void (*fn)(qsbr_node *n))
{
	qsbr_retire_node_sized(t, n, fn, 0);
}

int qsbr_retire_sized(qsbr_thread *t, void *p, void (*free_fn)(void *p), size_t bytes)
{
	struct box *x;

	if (t == NULL || p == NULL || free_fn == NULL || bytes > QSBR_SIZED_MAX)
		return EINVAL;
	CHECK_OWNER(t, "qsbr_retire");
	x = t->boxes;
	if (x != NULL) {
		t->boxes = (struct box *)x->node.next;
		t->n_boxes--;
	} else {
		x = qsbr__alloc(&t->d->opts, sizeof(*x), alignof(struct box));
		if (x == NULL)
			return ENOMEM;
	}
	x->p = p;
	x->free_fn = free_fn;
	qsbr_retire_node_sized(t, &x->node, qsbr__box_marker, bytes);
	return 0;
}

int qsbr_retire(qsbr_thread *t, void *p, void (*free_fn)(void *p))
{
	return qsbr_retire_sized(t, p, free_fn, 0);
}

size_t qsbr_reclaim(qsbr_thread *t)
{
	size_t ran;

	if (t == NULL) {
		errno = EINVAL;
		return 0;
	}
	CHECK_OWNER(t, "qsbr_reclaim");
	if (qsbr__in_callback())
		return 0;
	qsbr__lists_pin(t);
	close_open(t);
	qsbr__advance_past(t->d, t->newest_goal);
	ran = run_reached(t);
	qsbr__lists_unpin(t);
	if (!qsbr__helper_runs(t->d))
		ran += qsbr__queue_drain(t->d, t, DRAIN_REACHED);
	if (t->d->shm != NULL)
		ran += qsbr__shm_reclaim(t, SIZE_MAX, true); /* its region retires, orphans */
	return ran;
}

/* What a barrier waits for: the queue's mark, or every thread's answer to
 * flush request `target`; unless a callback it ran forked (fork_gen). */
struct barrier_wait {
	qsbr_domain *d;
	qsbr_thread *self;      /* the caller's handle in d, or NULL */
	uint64_t target;
	uint64_t fork_gen;
};

/* Done when the queue has run everything up to the mark; helps run it
 * (with QSBR_BACKGROUND_ALL only when no helper runs: callbacks stay on the
 * helper).  Also done in the child of a fork() made by a callback we ran:
 * what we waited for is the parent's. */
static bool queue_reached(void *arg)
{
	struct barrier_wait *w = arg;

	if (qsbr__fork_generation() != w->fork_gen || qsbr__queue_done(w->d, w->target))
		return true;
	if (w->d->opts.background != QSBR_BACKGROUND_ALL || !qsbr__helper_runs(w->d))
		qsbr__queue_drain(w->d, w->self, DRAIN_REACHED);
	return qsbr__queue_done(w->d, w->target);
}

/* Hands over what t holds and waits until the queue ran it, and everything
 * pushed before it.  t (may be NULL) counts as quiescent while it waits. */
static bool wait_for_queue(qsbr_domain *d, qsbr_thread *t, uint64_t deadline_ms)
{
	struct barrier_wait w = { d, t, 0, qsbr__fork_generation() };

	if (t != NULL) {
		qsbr__lists_pin(t);
		qsbr__flush(t);
		qsbr__lists_unpin(t);
	}
	w.target = qsbr__queue_mark(d);
	return qsbr__wait_until(d, t, queue_reached, &w, deadline_ms);
}

/* qsbr_barrier with a deadline (0 = none), for the cap too. */
bool qsbr__barrier_wait(qsbr_thread *t, uint64_t deadline_ms)
{
	/* Its qsbr_deferred_advance callers' goals too. */
	qsbr__advance_past(t->d, t->newest_goal);
	return wait_for_queue(t->d, t, deadline_ms);
}

void qsbr_barrier(qsbr_thread *t)
{
	if (t == NULL) {
		errno = EINVAL;
		return;
	}
	CHECK_OWNER(t, "qsbr_barrier");
	if (REFUSE_IN_CALLBACK("qsbr_barrier")) /* it would wait on itself */
		return;
	qsbr__barrier_wait(t, 0);
	if (t->d->shm != NULL)
		qsbr__shm_barrier(t); /* its region retires */
}

/* Done when every other thread is offline holding nothing (we steal what an
 * offline thread holds), or answered flush request target; asks again (and
 * advances, so that it reaches its slow path) any that has not seen it: one
 * that registered while the request was made, or came back online without
 * a quiescent state since. */
static bool all_flushed(void *arg)
{
	struct barrier_wait *w = arg;
	bool done = true, asked = false;

	if (qsbr__fork_generation() != w->fork_gen)
		return true; /* a callback we ran forked: the child waits for nothing */
	REGISTRY_EACH(w->d, t) {
		if (t == w->self || load_relaxed(&t->state) != SLOT_USED)
			continue;
		/* Acquire pairs with proto_detach's release store: a thread we
		 * see offline handed over everything before it went, but for a
		 * batch of its own a callback took it offline in (n_freed,
		 * acquire: pairs with run_reached's release). */
		if (load_acquire(&t->seq) == 0) {
			if ((load_acquire(&t->n_freed) + load_acquire(&t->n_handed) ==
				     load_relaxed(&t->n_retired) &&
			     !qsbr__shm_holds(t)) ||
			    qsbr__steal(t))
				continue;
			done = false; /* inside a call of its own: ask again */
			continue;
		}
		/* Acquire pairs with store_seq_cst(flush_ack) in answer_flush:
		 * its batches are in the queue. */
		if (qsbr_seq_leq(w->target, load_acquire(&t->flush_ack)))
			continue;
		done = false;
		if (qsbr_seq_lt(load_relaxed(&t->flush_req), w->target))
			store_relaxed(&t->flush_req, w->target);
		asked = true;
	}
	if (asked) {
		qsbr__advance(w->d); /* R3: releases the requests to their owners */
		fence_seq_cst();     /* and wakes an owner asleep in a wait */
		qsbr__wake_waiters(w->d);
	}
	return done;
}

void qsbr_barrier_domain(qsbr_domain *d)
{
	struct barrier_wait w;

	if (d == NULL) {
		errno = EINVAL;
		return;
	}
	if (REFUSE_IN_CALLBACK("qsbr_barrier_domain"))
		return;
	w.d = d;
	w.self = qsbr__self(d);
	w.target = fetch_add_relaxed(&d->flush_gen, 1) + 1;
	w.fork_gen = qsbr__fork_generation();
	/* Every other online thread hands over at its next quiescent state;
	 * what offline ones hold, all_flushed steals.  Then the queue runs it
	 * all. */
	qsbr__wait_until(d, w.self, all_flushed, &w, 0);
	wait_for_queue(d, w.self, 0);
}

/* A thread about to go offline (detach, unregister) holds no reference: a
 * quiescent state.  It runs what is already safe itself (callbacks on their
 * own thread are cheaper, and may retire again, into its open batch), so
 * that the flush that follows hands over only what still waits. */
static void run_before_leaving(qsbr_thread *t)
{
	close_open(t);
	qsbr__advance_past(t->d, t->newest_goal);
	qsbr__publish(t);
	run_reached(t);
}

/* For qsbr_unregister: runs what is already safe, then goes offline holding
 * nothing; callbacks' retires before the flush are in it, and none run
 * after it. */
void qsbr__retire_exit(qsbr_thread *t)
{
	qsbr__lists_pin(t);
	if (load_relaxed(&t->seq) != 0)
		run_before_leaving(t);
	qsbr__flush(t);
	answer_flush(t, load_relaxed(&t->flush_req));
	qsbr__detach(t);
	qsbr__lists_unpin(t);
	while (t->boxes != NULL) {
		struct box *x = t->boxes;

		t->boxes = (struct box *)x->node.next;
		qsbr__free(&t->d->opts, x);
	}
	t->n_boxes = 0;
	/* Last: the callbacks above may have filled them.  Its pools' last
	 * retires go to the open batch of this offline thread (no callback
	 * runs): hand them over too. */
	qsbr__pool_thread_exit(t);
	qsbr__lists_pin(t);
	qsbr__flush(t);
	qsbr__lists_unpin(t);
}

void qsbr_detach(qsbr_thread *t)
{
	if (t == NULL) {
		errno = EINVAL;
		return;
	}
	CHECK_OWNER(t, "qsbr_detach");
	if (load_relaxed(&t->seq) == 0)
		return;
	/* It keeps what it holds (and answers no flush request: it handed
	 * nothing over): the helper takes it if the thread stays away for
	 * flush_ms, a barrier at once. */
	qsbr__detach(t);
}

/* In the child of fork(): everything retired before the fork belongs to the
 * parent, which runs it; the child drops it (its copy of that memory leaks
 * in the child) and its counters start again from zero. */
void qsbr__retire_fork_child(qsbr_thread *t)
{
	t->open = (struct batch){ 0 };
	t->ring.head = 0;
	t->ring.len = 0;
	t->since_count = 0;
	t->since_bytes = 0;
	t->cap_wait = false;
	/* The forking thread keeps its pins (a callback may have forked inside
	 * a call that pinned); another thread's slot is about to be released
	 * (its online pin, if any, by a detach).  A stealer that did not come
	 * along may have held the lists. */
	if (!pthread_equal(t->owner, pthread_self()))
		t->pins = load_relaxed(&t->seq) != 0 ? 1 : 0;
	store_relaxed(&t->lists, t->pins != 0 ? LISTS_OWNED : LISTS_FREE);
	store_relaxed(&t->helper_mark, UINT64_MAX);
	store_relaxed(&t->n_retired, 0);
	store_relaxed(&t->n_freed, 0);
	store_relaxed(&t->n_handed, 0);
	store_relaxed(&t->n_bytes_retired, 0);
	store_relaxed(&t->n_bytes_freed, 0);
	store_relaxed(&t->n_bytes_handed, 0);
}
