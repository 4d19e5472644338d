/* SPDX-License-Identifier: MIT */
/*
 * Grace-period detection: the sequence protocol.
 *
 * A reader R publishes seq = the wr_seq it saw at its last quiescent state.
 * An object O unlinked by U gets goal g; O is freed once every online seq >= g.
 * Two ways O could still be in R's hands when freed, and the rule against each:
 *
 *   (a) R loaded O before its quiescent state.  R publishes with a release
 *       store; the scanner reads seq with an acquire load (R1).
 *   (b) R loads O after publishing seq >= g, because the unlink is not yet
 *       visible to it.  Every path by which R's seq can reach g runs through
 *       an atomic on wr_seq that follows U, and R issues a seq_cst fence after
 *       publishing (R2); the goal's maker either writes wr_seq with a release
 *       RMW (R3) or, for a deferred goal, issues a seq_cst fence between the
 *       unlink and its load of wr_seq (R4).  The scanner loads wr_seq before
 *       its seq_cst fence and before any thread's seq (R5), so a thread it
 *       sees offline comes online after the unlinks it freed for.
 *
 * R1  publish:   store_release(seq)        pairs with load_acquire(seq) in scan
 * R2  publish:   load_acquire(wr_seq), then fence_seq_cst after the store;
 *                                           pairs with R3, R4 and R5
 * R3  advance:   fetch_add_release(wr_seq)  pairs with R2's and R5's
 *                                           load_acquire(wr_seq)
 * R4  goal:      fence_seq_cst, then load(wr_seq)   pairs with R2, R5
 * R5  scan:      load_acquire(wr_seq), fence_seq_cst, then each seq
 *                (acquire); rd_seq read with acquire
 *
 * docs/design.md walks through each case.
 */
#include <errno.h>
#include <sched.h>
#include <time.h>

#include "internal.h"

/* R1 + R2: the thread's seq becomes the current wr_seq. */
static void publish(qsbr_thread *t)
{
	/* R2: acquire pairs with the release RMW in qsbr__advance (R3): the
	 * unlinks of whoever advanced are visible to our later loads. */
	qsbr_seq wr = load_acquire(&t->d->wr_seq);

	/* R1: release orders every access the thread made before this quiescent
	 * state before the store; pairs with load_acquire(seq) in scan(). */
	store_release(&t->head.seq, wr);
	/* R2: orders the store above (attach: store->load) and the load of
	 * wr_seq before every later load of shared pointers; pairs with the
	 * fences in qsbr__goal_after_fence() (R4) and scan() (R5). */
	fence_seq_cst();
}

void qsbr__quiescent_slow(qsbr_thread *t, qsbr_seq wr)
{
	(void)wr; /* the inline path's relaxed read; publish() reads it again */
	if (t == NULL) {
		errno = EINVAL;
		return;
	}
	CHECK_OWNER(t, "qsbr_quiescent");
	/* Own field: only this thread writes it. */
	if (load_relaxed(&t->head.seq) == 0) {
		QSBR_ASSERT(false, "qsbr_quiescent: the thread is offline; call qsbr_attach first");
		return; /* release builds: stay offline */
	}
	publish(t);
}

void qsbr_attach(qsbr_thread *t)
{
	if (t == NULL) {
		errno = EINVAL;
		return;
	}
	CHECK_OWNER(t, "qsbr_attach");
	if (load_relaxed(&t->head.seq) != 0)
		return;
	/* Relaxed: a scan that sees count and bit before our seq reads 0 or a
	 * stale, smaller seq, which only makes it wait; one that misses either
	 * is ordered by R2's fence below like one that reads seq 0 (design.md:
	 * both are RMWs sequenced before that fence, and no later write to
	 * them undoes ours until we detach). */
	fetch_add_relaxed(t->group_online, 1);
	fetch_or_relaxed(t->mask_word, t->mask_bit);
	publish(t);
}

void qsbr_detach(qsbr_thread *t)
{
	if (t == NULL) {
		errno = EINVAL;
		return;
	}
	CHECK_OWNER(t, "qsbr_detach");
	if (load_relaxed(&t->head.seq) == 0)
		return;
	/* R1: release orders the thread's accesses before it reads as offline;
	 * pairs with load_acquire(seq) in scan()... */
	store_release(&t->head.seq, 0);
	/* ... and with load_acquire of the mask and count in scan(), for a scan
	 * that skips the slot or its group. */
	fetch_and_release(t->mask_word, ~t->mask_bit);
	fetch_sub_release(t->group_online, 1);
}

qsbr_seq qsbr__advance(qsbr_domain *d)
{
	/* R3: release publishes the caller's unlinks to whoever reads the new
	 * value or a later one (R2's and R5's load_acquire): every later write
	 * of wr_seq is an RMW, so it stays in this release sequence. */
	return fetch_add_release(&d->wr_seq, 2) + 2;
}

qsbr_seq qsbr_advance(qsbr_domain *d)
{
	if (d == NULL) {
		errno = EINVAL;
		return 0;
	}
	return qsbr__advance(d);
}

/*
 * Goal for objects the thread unlinked before this call, the deferred way:
 * wr_seq + 2, advancing only when the thread's deferral limits are reached.
 */
qsbr_seq qsbr__goal_after_fence(qsbr_thread *t, uint32_t count, size_t bytes)
{
	qsbr_domain *d = t->d;
	qsbr_seq goal;

	t->since_count += count;
	t->since_bytes += bytes;
	if (t->since_count >= d->opts.deferred_count || t->since_bytes >= d->opts.deferred_bytes) {
		t->since_count = 0;
		t->since_bytes = 0;
		/* R3: the release RMW itself orders the unlinks. */
		goal = qsbr__advance(d);
	} else {
		/* R4: orders the caller's unlink stores before the load of wr_seq
		 * below (store->load needs seq_cst).  Without it a third thread
		 * may advance past our goal and a reader publish that newer seq
		 * while it still loads the old pointer.  Pairs with R2's and R5's
		 * fences. */
		fence_seq_cst();
		goal = load_relaxed(&d->wr_seq) + 2;
	}
	t->newest_goal = goal;
	return goal;
}

qsbr_seq qsbr_deferred_advance(qsbr_thread *t)
{
	if (t == NULL) {
		errno = EINVAL;
		return 0;
	}
	CHECK_OWNER(t, "qsbr_deferred_advance");
	return qsbr__goal_after_fence(t, 1, 0);
}

/* Lowers *min to the seq of each online slot of block b; *who gets the
 * slot that holds the minimum. */
static void scan_block(struct slot_block *b, qsbr_seq *min, qsbr_thread **who)
{
	/* Relaxed: a slot handed out after this load belongs to a thread whose
	 * attach fence (R2) follows our R5 fence, as for a bit we miss. */
	uint64_t words = (load_relaxed(&b->used) + 63) / 64;

	for (uint64_t g = 0; g * 8 < words; g++) {
		uint64_t end = (g + 1) * 8 < words ? (g + 1) * 8 : words;

		/* Acquire pairs with fetch_sub_release in detach: if we see none
		 * online, each went offline after all it did online; one whose
		 * attach we do not see fences (R2) after our fence. */
		if (load_acquire(&b->group_online[g]) == 0)
			continue;
		for (uint64_t w = g * 8; w < end; w++) {
			/* Acquire pairs with fetch_and_release in detach, as
			 * above, for a slot whose bit we see clear. */
			uint64_t bits = load_acquire(&b->mask[w]);

			for (; bits != 0; bits &= bits - 1) {
				qsbr_thread *t = &b->slots[w * 64 + (uint64_t)__builtin_ctzll(bits)];
				/* R1: pairs with store_release(seq) in publish and
				 * detach.  Acquire per slot, not one acquire fence
				 * after the loop: ThreadSanitizer does not model
				 * fences (on x86 both are plain loads). */
				qsbr_seq s = load_acquire(&t->head.seq);

				if (s != 0 && qsbr_seq_lt(s, *min)) {
					*min = s;
					*who = t;
				}
			}
		}
	}
}

/* Minimum seq over online threads, and rd_seq moved up to it. */
static qsbr_seq scan(qsbr_domain *d)
{
	/* R5: wr_seq first.  Acquire pairs with R3's release RMW: an advance we
	 * count carries its caller's unlinks into our fence below. */
	qsbr_seq min = load_acquire(&d->wr_seq);
	qsbr_seq old;
	qsbr_thread *who = NULL;
	bool moved = false;

	/* R5: a thread whose seq we read as 0 (or whose bit or count we miss)
	 * fences (R2) after this fence, so it sees every unlink ordered before
	 * it.  Pairs with R2 and R4. */
	fence_seq_cst();
	/* Acquire pairs with store_release(n_blocks) in registry.c: a new
	 * block's slots and masks are initialised. */
	for (uint64_t k = 0, n = load_acquire(&d->n_blocks); k < n; k++)
		scan_block(d->blocks[k], &min, &who);
	/* A hint for the next poll (see qsbr__poll_domain); relaxed, and only
	 * written when it changes, to keep the line quiet. */
	if (ptr_load_relaxed(&d->blocker) != who)
		ptr_store_relaxed(&d->blocker, who);
	fetch_add_relaxed(&d->n_scans, 1);
	/* Acquire: we may return another scanner's value (below); pairs with
	 * its release CAS. */
	old = load_acquire(&d->rd_seq);
	while (qsbr_seq_lt(old, min) && !moved) {
		/* Release pairs with load_acquire(rd_seq) in poll and here: what
		 * we acquired from the threads' seqs reaches whoever trusts the
		 * cache.  Acquire on failure, for the same reason as above. */
		moved = cas_release_acquire(&d->rd_seq, &old, min);
	}
	return moved ? min : seq_max(old, min);
}

bool qsbr__poll_domain(qsbr_domain *d, qsbr_seq goal)
{
	const qsbr_thread *blocker;

	/* Acquire pairs with cas_release in scan(). */
	if (qsbr_seq_leq(goal, load_acquire(&d->rd_seq)))
		return true;
	/* Not advanced to yet: no scan can succeed. */
	if (qsbr_seq_lt(load_relaxed(&d->wr_seq), goal))
		return false;
	/* The thread that held the last scan back still does: no scan can
	 * succeed.  Relaxed: a "no" frees nothing, and a stale read only delays
	 * the answer to a later poll.  So a poll that fails costs O(1), and a
	 * full scan runs about once per thread that falls behind. */
	blocker = ptr_load_relaxed(&d->blocker);
	if (blocker != NULL) {
		qsbr_seq s = load_relaxed(&blocker->head.seq);

		if (s != 0 && qsbr_seq_lt(s, goal))
			return false;
	}
	return qsbr_seq_leq(goal, scan(d));
}

bool qsbr_poll(qsbr_thread *t, qsbr_seq goal)
{
	if (t == NULL || (goal & 1) == 0) {
		errno = EINVAL;
		return false;
	}
	CHECK_OWNER(t, "qsbr_poll");
	return qsbr__poll_domain(t->d, goal);
}

/* Spin, then yield, then sleep up to 1 ms. */
void qsbr__backoff(unsigned *round)
{
	unsigned r = (*round)++;

	if (r < 64) {
		cpu_relax();
	} else if (r < 128) {
		sched_yield();
	} else {
		unsigned shift = r - 128 < 10 ? r - 128 : 10;
		struct timespec ts = { 0, 1000L << shift }; /* 1 us .. 1 ms */

		nanosleep(&ts, NULL);
	}
}

void qsbr_synchronize(qsbr_thread *t)
{
	qsbr_seq goal;
	unsigned round = 0;

	if (t == NULL) {
		errno = EINVAL;
		return;
	}
	CHECK_OWNER(t, "qsbr_synchronize");
	QSBR_ASSERT(!qsbr__in_callback(), "qsbr_synchronize: called from a reclaim callback");
	goal = qsbr__advance(t->d);
	for (;;) {
		if (load_relaxed(&t->head.seq) != 0)
			qsbr_quiescent(t);
		if (qsbr__poll_domain(t->d, goal))
			return;
		qsbr__backoff(&round);
	}
}
