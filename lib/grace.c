/* SPDX-License-Identifier: MIT */
/*
 * Grace-period detection: quiescent states, attach/detach, advances, goals,
 * polls and scans, synchronize.  The only user of protocol.h, which holds
 * every ordered step and the rules R1..R5; docs/design.md argues them.
 */
#include <errno.h>

#include "internal.h"
#include "protocol.h"

/* In a shared domain the slot that scans read is the region's (t->pub);
 * seq mirrors it for the inline fast path and for this process's readers
 * (retire.c's stealers acquire it: the same release as the protocol's). */
static inline void mirror(qsbr_thread *t)
{
	if (t->pub != &t->seq)
		store_release(&t->seq, load_relaxed(t->pub));
}

/* R1 + R2: the thread's seq becomes the current wr_seq; waiters may now
 * see a grace period end. */
void qsbr__publish(qsbr_thread *t)
{
	proto_publish(t->pub, t->d->wr);
	mirror(t);
	qsbr__wake_waiters(t->d);
}

/* A shared domain's handle without a region slot (in the child of a fork)
 * takes one when it next goes online or reports a quiescent state.  False
 * (errno EAGAIN) when the region has no free slot. */
static bool has_slot(qsbr_thread *t)
{
	return t->d->shm == NULL || load_relaxed(&t->shm_slot) != NULL || qsbr__shm_claim(t);
}

void qsbr__quiescent_slow(qsbr_thread *t)
{
	if (t == NULL) {
		errno = EINVAL;
		return;
	}
	CHECK_OWNER(t, "qsbr_quiescent");
	/* Own field: only this thread writes it. */
	if (load_relaxed(&t->seq) == 0) {
		QSBR_ASSERT(false, "qsbr_quiescent: the thread is offline; call qsbr_attach first");
		return; /* release builds: stay offline */
	}
	if (t->d->shm != NULL && load_relaxed(&t->shm_slot) == NULL) {
		/* Online here, not yet in the region: join it. */
		if (!qsbr__shm_claim(t))
			return;
		proto_attach(t->pub, t->d->wr, t->group_online, t->mask_word, t->mask_bit);
		mirror(t);
	} else {
		qsbr__publish(t);
	}
	/* Relaxed: a request carries no data; a request we miss here is seen
	 * at a later quiescent state (the requester advanced wr_seq after
	 * storing it, so we come back to the slow path). */
	if (t->cap_wait || qsbr_seq_lt(t->flush_done, load_relaxed(&t->flush_req)))
		qsbr__owner_duties(t); /* up to retire.c (internal.h) */
}

void qsbr_attach(qsbr_thread *t)
{
	if (t == NULL) {
		errno = EINVAL;
		return;
	}
	CHECK_OWNER(t, "qsbr_attach");
	if (load_relaxed(&t->seq) != 0)
		return;
	if (!has_slot(t))
		return; /* stays offline */
	qsbr__lists_pin(t); /* online is a pin: the fast paths touch the lists */
	proto_attach(t->pub, t->d->wr, t->group_online, t->mask_word, t->mask_bit);
	mirror(t);
}

/* Offline: lets go of the online pin on its lists (a stealer may take them
 * once no call of the thread's pins them). */
void qsbr__detach(qsbr_thread *t)
{
	if (load_relaxed(&t->seq) == 0)
		return;
	proto_detach(t->pub, t->group_online, t->mask_word, t->mask_bit);
	mirror(t);
	qsbr__lists_unpin(t);
	/* Our half of wait.c's store-buffering pair: detach's own accesses
	 * are releases, not seq_cst. */
	fence_seq_cst();
	qsbr__wake_waiters(t->d);
}

qsbr_seq qsbr__advance(qsbr_domain *d)
{
	return proto_advance(d->wr); /* R3 */
}

qsbr_seq qsbr_advance(qsbr_domain *d)
{
	if (d == NULL) {
		errno = EINVAL;
		return 0;
	}
	return qsbr__advance(d);
}

/* A deferred goal is reached only after an advance: make one if goal is
 * past wr_seq. */
void qsbr__advance_past(qsbr_domain *d, qsbr_seq goal)
{
	if (qsbr_seq_lt(load_relaxed(d->wr), goal))
		qsbr__advance(d);
}

/*
 * Goal for objects the thread unlinked before this call, the deferred way:
 * wr_seq + 2, advancing only when the thread's deferral limits are reached.
 */
qsbr_seq qsbr__make_goal(qsbr_thread *t, uint32_t count, size_t bytes)
{
	qsbr_domain *d = t->d;
	qsbr_seq goal;

	t->since_count += count;
	t->since_bytes += bytes;
	if (t->since_count >= d->opts.deferred_count || t->since_bytes >= d->opts.deferred_bytes) {
		t->since_count = 0;
		t->since_bytes = 0;
		goal = qsbr__advance(d); /* R3 orders the unlinks */
	} else {
		goal = proto_deferred_goal(d->wr); /* R4 */
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
	return qsbr__make_goal(t, 1, 0);
}

/* Lowers *min to the seq of each online slot of table x; *who gets the seq
 * word of the slot that holds the minimum.  Skips groups with no online
 * thread and slots whose bit is clear (R5; design.md section 5). */
static void scan_table(const struct slot_table *x, qsbr_seq *min, const au64 **who)
{
	uint64_t words = (x->used + 63) / 64;

	for (uint64_t g = 0; g * 8 < words; g++) {
		uint64_t end = (g + 1) * 8 < words ? (g + 1) * 8 : words;

		if (!proto_group_online(&x->group_online[g]))
			continue;
		for (uint64_t w = g * 8; w < end; w++) {
			for (uint64_t bits = proto_mask(&x->mask[w]); bits != 0; bits &= bits - 1) {
				uint64_t i = w * 64 + (uint64_t)__builtin_ctzll(bits);
				const au64 *seq = (const au64 *)(const void *)(x->seq0 + i * x->stride);
				qsbr_seq s = proto_seq(seq);

				if (s != 0 && qsbr_seq_lt(s, *min)) {
					*min = s;
					*who = seq;
				}
			}
		}
	}
}

/* Minimum seq over online threads (of every process, in a shared domain),
 * and rd_seq moved up to it; *who_out gets the seq word of the slot at the
 * minimum, if one is below wr_seq. */
static qsbr_seq scan(qsbr_domain *d, const au64 **who_out)
{
	qsbr_seq min = proto_scan_begin(d->wr);
	const au64 *who = NULL;

	if (d->shm != NULL) {
		struct slot_table x = qsbr__shm_table(d);

		scan_table(&x, &min, &who);
	}
	/* Acquire pairs with store_release(n_blocks) in registry.c: a new
	 * block's slots and masks are initialised. */
	for (uint64_t k = 0, n = d->shm == NULL ? load_acquire(&d->n_blocks) : 0; k < n; k++) {
		struct slot_block *b = d->blocks[k];
		/* Relaxed: a slot handed out after this load belongs to a
		 * thread whose attach fence (R2) follows our R5 fence, as for
		 * a bit we miss. */
		struct slot_table x = { b->group_online, b->mask, load_relaxed(&b->used),
					(const char *)&b->slots[0].seq, sizeof(struct qsbr_thread) };

		scan_table(&x, &min, &who);
	}
	/* A hint for the next poll, written only when it changes, to keep the
	 * line quiet.  Release pairs with the acquire load in qsbr__poll: the
	 * slot it names was initialised before its block was counted (or the
	 * region was laid out), and we acquired n_blocks above, so the poller
	 * that dereferences it sees the initialisation too. */
	if (load_relaxed(&d->blocker) != who)
		store_release(&d->blocker, (void *)who);
	fetch_add_relaxed(&d->n_scans, 1);
	*who_out = who;
	return proto_scan_end(d->rd, min);
}

/* The slot at seq holds goal back: a stall to report, or in a shared
 * domain perhaps a dead participant, recovered now (true: scan again). */
static bool held_back(qsbr_domain *d, const au64 *seq, qsbr_seq s)
{
	qsbr__stall_check(d, seq, s);
	return d->shm != NULL && qsbr__shm_holder(d, seq);
}

bool qsbr__poll(qsbr_domain *d, qsbr_seq goal)
{
	const au64 *blocker, *who;
	qsbr_seq min;

	if (qsbr_seq_leq(goal, proto_rd(d->rd)))
		return true;
	/* Not advanced to yet: no scan can succeed. */
	if (qsbr_seq_lt(load_relaxed(d->wr), goal))
		return false;
	/* The thread that held the last scan back still does: no scan can
	 * succeed.  Acquire pairs with the release store in scan(), for the
	 * dereference.  Its seq is read relaxed: a "no" frees nothing, and a
	 * stale read only delays the answer to a later poll.  So a poll that
	 * fails costs O(1), and a full scan runs about once per thread that
	 * falls behind. */
	blocker = load_acquire(&d->blocker);
	if (blocker != NULL) {
		qsbr_seq s = load_relaxed(blocker);

		if (s != 0 && qsbr_seq_lt(s, goal) && !held_back(d, blocker, s))
			return false;
	}
	for (int tries = 0; tries < 2; tries++) {
		min = scan(d, &who);
		if (qsbr_seq_leq(goal, min))
			return true;
		if (who == NULL || !held_back(d, who, proto_seq(who)))
			return false;
	}
	return false;
}

bool qsbr_poll(qsbr_thread *t, qsbr_seq goal)
{
	if (t == NULL || (goal & 1) == 0) {
		errno = EINVAL;
		return false;
	}
	CHECK_OWNER(t, "qsbr_poll");
	return qsbr__poll(t->d, goal);
}

bool qsbr_poll_domain(qsbr_domain *d, qsbr_seq goal)
{
	if (d == NULL || (goal & 1) == 0) {
		errno = EINVAL;
		return false;
	}
	return qsbr__poll(d, goal);
}

struct goal_wait {
	qsbr_domain *d;
	qsbr_seq goal;
};

static bool goal_reached(void *arg)
{
	struct goal_wait *w = arg;

	return qsbr__poll(w->d, w->goal);
}

/* A grace period for d, shared by concurrent callers: a goal past everything
 * unlinked before the call (R4), and one advance to it, ours or somebody
 * else's.  self (NULL when the caller has no handle in d) reports quiescent
 * states while it waits. */
static void synchronize(qsbr_domain *d, qsbr_thread *self)
{
	struct goal_wait w = { d, proto_deferred_goal(d->wr) };

	proto_advance_to(d->wr, w.goal);
	qsbr__wait_until(d, self, goal_reached, &w, 0);
}

void qsbr_synchronize(qsbr_thread *t)
{
	if (t == NULL) {
		errno = EINVAL;
		return;
	}
	CHECK_OWNER(t, "qsbr_synchronize");
	/* A callback's caller may still hold references: no quiescent state. */
	if (REFUSE_IN_CALLBACK("qsbr_synchronize"))
		return;
	synchronize(t->d, t);
}

void qsbr_synchronize_domain(qsbr_domain *d)
{
	if (d == NULL) {
		errno = EINVAL;
		return;
	}
	if (REFUSE_IN_CALLBACK("qsbr_synchronize_domain"))
		return;
	synchronize(d, qsbr__self(d));
}
