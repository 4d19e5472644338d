/* SPDX-License-Identifier: MIT */
/*
 * Retire lists.  Each thread owns a FIFO of retired nodes:
 *
 *   ring[head] ... ring[head+len-1]   open
 *   [goal g1]      [goal gk]          [no goal yet]
 *
 * A retire is a thread-local append to the open batch.  When the open batch
 * fills (options.batch_size objects, or enough bytes to reach the deferral
 * byte limit) it is closed: one fence and one goal for the whole batch (R4 in
 * grace.c), and then the thread runs what has become safe.  Goals only grow
 * along the ring, so reclaim runs batches in order up to the first unmet goal.
 * A full ring merges the new batch into the newest one (a later goal is always
 * safe), so retiring never allocates.
 *
 * A departing thread hands its batches to the domain's orphan ring, which
 * every thread's reclaim, qsbr_barrier and qsbr_domain_delete drain.
 */
#include <errno.h>
#include <stdalign.h>

#include "internal.h"

static void batch_append(struct batch *dst, const struct batch *src)
{
	if (dst->last != NULL)
		dst->last->next = src->first;
	else
		dst->first = src->first;
	dst->last = src->last;
	dst->count += src->count;
	dst->bytes += src->bytes;
	/* The orphan ring mixes threads, whose goals are not ordered: keep the
	 * later goal, never lower one. */
	dst->goal = seq_max(dst->goal, src->goal);
}

/* Pushes b at the tail of a ring, merging into the tail when full. */
static void ring_push(struct batch *ring, uint32_t size, uint32_t head, uint32_t *len,
		      const struct batch *b)
{
	if (*len == size) {
		batch_append(&ring[(head + *len - 1) % size], b);
		return;
	}
	ring[(head + *len) % size] = *b;
	(*len)++;
}

/* Closes the open batch: it gets its goal. */
void qsbr__seal(qsbr_thread *t)
{
	struct batch b = t->open;

	if (b.count == 0)
		return;
	b.goal = qsbr__make_goal(t, (uint32_t)b.count, b.bytes);
	t->open = (struct batch){ 0 };
	qsbr__account(t->d, (int64_t)b.count, (int64_t)b.bytes);
	if (t->d->opts.background)
		qsbr__orphan_push(t->d, &b); /* the reclaimer's from here */
	else
		ring_push(t->ring, RING_SIZE, t->ring_head, &t->ring_len, &b);
}

/* The ring of a domain's orphans (and, in background mode, of every closed
 * batch): appends b, merging into the newest batch when full. */
void qsbr__ring_push_orphan(qsbr_domain *d, const struct batch *b)
{
	ring_push(d->orphans, ORPHAN_RING_SIZE, d->orphan_head, &d->orphan_len, b);
	d->orphans_added += b->count;
	d->orphan_max_goal = seq_max(d->orphan_max_goal, b->goal);
	store_relaxed(&d->orphans_waiting, d->orphan_len);
}

/* Set while this thread runs callbacks, whichever handle or domain: a
 * callback's reclaim runs nothing, its barrier is refused. */
static _Thread_local bool in_callback;

bool qsbr__in_callback(void)
{
	return in_callback;
}

/* The callback of qsbr_retire's nodes: a marker that run_chain recognises,
 * since freeing the node needs the domain's allocator.  Never called. */
static void wrap_marker(qsbr_node *n)
{
	(void)n;
}

/* Runs every callback of b, a batch of domain d.  The next link is read
 * before the callback, which may free the node.  Pointer-retire nodes go back
 * to t's cache when t != NULL and there is room, else to the allocator. */
static void run_chain(qsbr_domain *d, qsbr_thread *t, const struct batch *b)
{
	qsbr_node *n = b->first;
	bool outer = in_callback;

	in_callback = true;
	for (size_t i = 0; i < b->count; i++) {
		qsbr_node *next = n->next;

		if (n->fn == wrap_marker) {
			struct wrap *w = (struct wrap *)n;

			w->free_fn(w->p);
			if (t != NULL && t->wcache_len < WRAP_CACHE_MAX) {
				w->node.next = (qsbr_node *)t->wcache;
				t->wcache = w;
				t->wcache_len++;
			} else {
				qsbr__free(&d->opts, w);
			}
		} else {
			n->fn(n);
		}
		n = next;
	}
	in_callback = outer;
	qsbr__account(d, -(int64_t)b->count, -(int64_t)b->bytes);
}

/* Runs this thread's batches whose goal is reached, oldest first. */
size_t qsbr__run_reached(qsbr_thread *t)
{
	size_t ran = 0;

	if (in_callback)
		return 0; /* called from a callback: the outer loop goes on */
	while (t->ring_len > 0 && qsbr__poll_domain(t->d, t->ring[t->ring_head].goal)) {
		/* Take the batch off the ring before running it: callbacks may
		 * retire, which appends to open and may close it into the ring. */
		struct batch b = t->ring[t->ring_head];

		t->ring_head = (t->ring_head + 1) % RING_SIZE;
		t->ring_len--;
		run_chain(t->d, t, &b);
		add_relaxed_owner(&t->n_freed, b.count);
		add_relaxed_owner(&t->n_bytes_freed, b.bytes);
		ran += b.count;
	}
	return ran;
}

/* A deferred goal is reached only after an advance: make one if a held
 * batch's goal is past wr_seq. */
static void advance_if_behind(qsbr_domain *d, qsbr_seq goal)
{
	if (qsbr_seq_lt(load_relaxed(&d->wr_seq), goal))
		qsbr__advance(d);
}

/* The same for the newest goal t made: its batches' and its
 * qsbr_deferred_advance callers'. */
static void advance_for_thread(qsbr_thread *t)
{
	advance_if_behind(t->d, t->newest_goal);
}

/*
 * Orphans.  orphan_lock guards the ring; drain_lock is held while a drainer
 * pops and runs batches, so orphans run in hand-over order and a waiter can
 * tell from orphans_freed that every orphan before its snapshot has run.
 */
size_t qsbr__drain_orphans(qsbr_domain *d, qsbr_thread *t, bool wait, bool all)
{
	size_t ran = 0;
	qsbr_seq max_goal = 0;

	if (in_callback)
		return 0;
	if (!wait) {
		/* Relaxed hint; a stale zero only delays draining to a later call. */
		if (load_relaxed(&d->orphans_waiting) == 0)
			return 0;
		if (pthread_mutex_trylock(&d->drain_lock) != 0)
			return 0;
	} else {
		pthread_mutex_lock(&d->drain_lock);
	}
	for (;;) {
		struct batch b;
		bool reached;

		pthread_mutex_lock(&d->orphan_lock);
		if (d->orphan_len == 0) {
			pthread_mutex_unlock(&d->orphan_lock);
			break;
		}
		b = d->orphans[d->orphan_head];
		max_goal = d->orphan_max_goal;
		reached = all || qsbr__poll_domain(d, b.goal);
		if (reached) {
			d->orphan_head = (d->orphan_head + 1) % ORPHAN_RING_SIZE;
			d->orphan_len--;
			store_relaxed(&d->orphans_waiting, d->orphan_len);
		}
		pthread_mutex_unlock(&d->orphan_lock);
		if (!reached) {
			advance_if_behind(d, max_goal);
			break;
		}
		run_chain(d, t, &b);
		/* One writer at a time (drain_lock).  Release pairs with the
		 * acquire load in qsbr_stats_get: a count that includes this batch
		 * comes after its callbacks returned. */
		add_relaxed_owner(&d->orphans_bytes_freed, b.bytes);
		store_release(&d->orphans_freed, load_relaxed(&d->orphans_freed) + b.count);
		ran += b.count;
	}
	pthread_mutex_unlock(&d->drain_lock);
	return ran;
}

/* Hands everything t still holds to the orphan ring. */
static void handover(qsbr_thread *t)
{
	while (t->ring_len > 0) {
		qsbr__orphan_push(t->d, &t->ring[t->ring_head]);
		t->ring_head = (t->ring_head + 1) % RING_SIZE;
		t->ring_len--;
	}
}

static void free_wrap_cache(qsbr_thread *t)
{
	while (t->wcache != NULL) {
		struct wrap *w = t->wcache;

		t->wcache = (struct wrap *)w->node.next;
		qsbr__free(&t->d->opts, w);
	}
	t->wcache_len = 0;
}

/* For qsbr_unregister, with t offline: runs what is safe, hands over the
 * rest, frees the spare nodes. */
void qsbr__retire_exit(qsbr_thread *t)
{
	qsbr__seal(t);
	/* Orphans wait on no deferral limit of ours any more. */
	advance_for_thread(t);
	qsbr__run_reached(t);
	handover(t);
	free_wrap_cache(t);
}

/* Out of line: close the batch, then run what is safe. */
static void __attribute__((noinline)) retire_slow(qsbr_thread *t)
{
	qsbr__seal(t);
	qsbr__cap_check(t);
	if (t->d->opts.background)
		return; /* the reclaimer runs them */
	qsbr__run_reached(t);
	qsbr__drain_orphans(t->d, t, false, false);
}

void qsbr_retire_node_sized(qsbr_thread *t, qsbr_node *n, void (*fn)(qsbr_node *n), size_t bytes)
{
	struct batch *o;

	if (t == NULL || n == NULL || fn == NULL) {
		errno = EINVAL;
		return;
	}
	CHECK_OWNER(t, "qsbr_retire_node");
	QSBR_ASSERT(load_relaxed(&t->head.seq) != 0,
		    "qsbr_retire: the thread is offline; call qsbr_attach first");
	o = &t->open;
	n->fn = fn;
	n->next = NULL;
	if (o->last != NULL)
		o->last->next = n;
	else
		o->first = n;
	o->last = n;
	o->count++;
	add_relaxed_owner(&t->n_retired, 1);
	if (bytes != 0) {
		o->bytes += bytes;
		add_relaxed_owner(&t->n_bytes_retired, bytes);
		if (t->since_bytes + o->bytes >= t->bytes_limit) {
			retire_slow(t);
			return;
		}
	}
	if (QSBR__UNLIKELY(o->count >= t->batch_limit))
		retire_slow(t);
}

void qsbr_retire_node(qsbr_thread *t, qsbr_node *n, void (*fn)(qsbr_node *n))
{
	qsbr_retire_node_sized(t, n, fn, 0);
}

int qsbr_retire_sized(qsbr_thread *t, void *p, void (*free_fn)(void *p), size_t bytes)
{
	struct wrap *w;

	if (t == NULL || p == NULL || free_fn == NULL)
		return EINVAL;
	CHECK_OWNER(t, "qsbr_retire");
	QSBR_ASSERT(load_relaxed(&t->head.seq) != 0,
		    "qsbr_retire: the thread is offline; call qsbr_attach first");
	w = t->wcache;
	if (w != NULL) {
		t->wcache = (struct wrap *)w->node.next;
		t->wcache_len--;
	} else {
		w = qsbr__alloc(&t->d->opts, sizeof(*w), alignof(struct wrap));
		if (w == NULL)
			return ENOMEM;
	}
	w->p = p;
	w->free_fn = free_fn;
	qsbr_retire_node_sized(t, &w->node, wrap_marker, bytes);
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
	if (in_callback)
		return 0;
	qsbr__seal(t);
	advance_for_thread(t);
	ran = qsbr__run_reached(t);
	if (t->d->opts.background)
		return ran; /* the reclaimer drains the ring */
	return ran + qsbr__drain_orphans(t->d, t, false, false);
}

void qsbr_barrier(qsbr_thread *t)
{
	qsbr_domain *d;
	uint64_t own_target, orphan_target;
	unsigned round = 0;

	if (t == NULL) {
		errno = EINVAL;
		return;
	}
	CHECK_OWNER(t, "qsbr_barrier");
	QSBR_ASSERT(!in_callback, "qsbr_barrier: called from a reclaim callback");
	if (in_callback) {
		errno = EDEADLK; /* it would wait on itself */
		return;
	}
	d = t->d;
	/* Close the open batch first: in background mode it goes to the
	 * orphan ring, and the snapshot below covers it. */
	qsbr__seal(t);
	own_target = d->opts.background ? load_relaxed(&t->n_freed) : load_relaxed(&t->n_retired);
	pthread_mutex_lock(&d->orphan_lock);
	orphan_target = d->orphans_added;
	pthread_mutex_unlock(&d->orphan_lock);
	for (;;) {
		uint64_t orphans_done;

		if (load_relaxed(&t->head.seq) != 0)
			qsbr_quiescent(t);
		qsbr__seal(t);
		advance_for_thread(t);
		qsbr__run_reached(t);
		if (!d->opts.background)
			qsbr__drain_orphans(d, t, true, false);
		pthread_mutex_lock(&d->drain_lock);
		orphans_done = load_relaxed(&d->orphans_freed);
		pthread_mutex_unlock(&d->drain_lock);
		if (load_relaxed(&t->n_freed) >= own_target && orphans_done >= orphan_target)
			return;
		qsbr__wait(d, &round);
	}
}
