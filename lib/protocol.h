/* SPDX-License-Identifier: MIT */
/*
 * The ordered steps of the sequence protocol, and nothing else: every atomic
 * access whose order matters for safety is here, once.  lib/grace.c builds
 * the library on these; tests/model/model.cpp runs them, compiled as C++ with
 * QSBR_MODEL, under the Relacy model checker (atomics.h maps the helpers to
 * Relacy's atomics with the same orders).  So the model checks the orders the
 * library uses, not a copy of them.
 *
 * Rules (docs/design.md argues each case):
 * R1  publish/detach: store_release(seq)   pairs with load_acquire(seq) in a scan
 * R2  publish: load_seq_cst(wr_seq), store, fence_seq_cst
 *                                           pairs with R3, R4 and R5
 * R3  advance: fetch_add_seq_cst(wr_seq)    pairs with R2's and R5's loads
 * R4  deferred goal: fence_seq_cst, then load(wr_seq)
 *                                           pairs with R2 and R5
 * R5  scan: load_seq_cst(wr_seq), fence_seq_cst, then the counts, masks and
 *     seqs (acquire); rd_seq read with acquire, raised with a release CAS
 *
 * QSBR_MODEL_* (model builds only) each weaken one step, e.g.
 * QSBR_MODEL_WEAK_R4 drops R4's fence and QSBR_MODEL_LATE_R5_LOAD moves R5's
 * load after its fence: the model must then find a use after free
 * (tests/model; docs/design.md section 8 says which scenario finds each).
 */
#ifndef QSBR_PROTOCOL_H
#define QSBR_PROTOCOL_H

#include "atomics.h"

/* Sequence order, wrap-safe (as qsbr_seq_lt in qsbr.h). */
static inline bool proto_lt(uint64_t a, uint64_t b)
{
	return (int64_t)(a - b) < 0;
}

/* R1 + R2: a quiescent state; the thread's seq becomes the current wr_seq. */
static inline void proto_publish(au64 *seq, const au64 *wr)
{
	/* R2: pairs with the RMW of R3: the unlinks of whoever advanced are
	 * visible to our later loads.  seq_cst (an acquire on ARMv8 and x86)
	 * puts the load in S after that RMW, which case b2 needs. */
#ifndef QSBR_MODEL_RELAXED_R2_LOAD
	uint64_t w = load_seq_cst(wr);
#else
	uint64_t w = load_relaxed(wr);
#endif

	/* R1: orders every access the thread made before this quiescent state
	 * before the store; pairs with proto_seq() in a scan. */
#ifndef QSBR_MODEL_RELAXED_R1
	store_release(seq, w);
#else
	store_relaxed(seq, w);
#endif
	/* R2: orders the store above (attach: store->load) and the load of
	 * wr_seq before every later load of shared pointers; pairs with the
	 * fences of proto_deferred_goal() (R4) and proto_scan_begin() (R5). */
#ifndef QSBR_MODEL_WEAK_R2
	fence_seq_cst();
#endif
}

/* Online: count and bit first, so a scan that misses them is one whose
 * fence precedes R2's (design.md section 5). */
static inline void proto_attach(au64 *seq, const au64 *wr, au64 *group, au64 *mask, uint64_t bit)
{
	/* Relaxed: sequenced before R2's fence; a scan that sees them before
	 * our seq reads 0 or a stale, smaller seq, which only makes it wait. */
#ifndef QSBR_MODEL_LATE_ATTACH_BITS
	fetch_add_relaxed(group, 1);
	fetch_or_relaxed(mask, bit);
	proto_publish(seq, wr);
#else
	proto_publish(seq, wr);
	fetch_add_relaxed(group, 1);
	fetch_or_relaxed(mask, bit);
#endif
}

/* Offline. */
static inline void proto_detach(au64 *seq, au64 *group, au64 *mask, uint64_t bit)
{
	/* R1: orders the thread's accesses before it reads as offline; pairs
	 * with proto_seq() in a scan ... */
#ifndef QSBR_MODEL_RELAXED_DETACH
	store_release(seq, 0);
	/* ... and with proto_mask() and proto_group_online(), for a scan that
	 * skips the slot or its group. */
	fetch_and_release(mask, ~bit);
	fetch_sub_release(group, 1);
#else
	store_relaxed(seq, 0);
	fetch_and_relaxed(mask, ~bit);
	fetch_sub_relaxed(group, 1);
#endif
}

/* R3: a new goal for everything the caller unlinked before. */
static inline uint64_t proto_advance(au64 *wr)
{
	/* R3: releases the caller's unlinks to whoever reads this value or a
	 * later one (every later write of wr_seq is an RMW: one release
	 * sequence); seq_cst puts it in S for case b2 of design.md. */
#ifndef QSBR_MODEL_RELAXED_R3
	return fetch_add_seq_cst(wr, 2) + 2;
#else
	return fetch_add_relaxed(wr, 2) + 2;
#endif
}

/* R4: a deferred goal, without writing wr_seq. */
static inline uint64_t proto_deferred_goal(const au64 *wr)
{
#ifndef QSBR_MODEL_WEAK_R4
	/* R4: orders the caller's unlink stores before the load of wr_seq below
	 * (store->load needs seq_cst).  Without it a third thread may advance
	 * past our goal and a reader publish that newer seq while it still
	 * loads the old pointer.  Pairs with R2's and R5's fences. */
	fence_seq_cst();
#endif
	/* Relaxed: ordered by the fence above. */
	return load_relaxed(wr) + 2;
}

/* R3 for a grace period shared by concurrent waiters: advance to goal (made
 * by proto_deferred_goal, so R4's fence ordered our unlinks) unless another
 * thread's advance got there first, in which case R4 covers it (case b2). */
static inline void proto_advance_to(au64 *wr, uint64_t goal)
{
	uint64_t cur = goal - 2;

	/* The goal is deferred: R4's fence already ordered our unlinks, so
	 * safety needs no order here (the model finds nothing with a relaxed
	 * CAS).  seq_cst keeps the argument of design.md within the original
	 * C11 rules for S; failing, it read a later value. */
#ifndef QSBR_MODEL_RELAXED_ADVANCE_TO
	(void)cas_strong_seq_cst(wr, &cur, goal);
#else
	(void)cas_strong_relaxed(wr, &cur, goal);
#endif
}

/* R5, first half: returns the wr_seq the scan starts its minimum from. */
static inline uint64_t proto_scan_begin(const au64 *wr)
{
	/* R5: wr_seq first.  Pairs with R3's RMW: an advance we count carries
	 * its caller's unlinks into our fence below. */
#if defined(QSBR_MODEL_RELAXED_R5_LOAD)
	uint64_t w = load_relaxed(wr);
#elif !defined(QSBR_MODEL_LATE_R5_LOAD)
	uint64_t w = load_seq_cst(wr);
#endif

	/* R5: a thread whose seq we read as 0, or whose bit or count we miss,
	 * fences (R2) after this fence, so it sees every unlink ordered before
	 * it.  Pairs with R2 and R4. */
#ifndef QSBR_MODEL_WEAK_R5
	fence_seq_cst();
#endif
#ifdef QSBR_MODEL_LATE_R5_LOAD
	uint64_t w = load_seq_cst(wr);
#endif
	return w;
}

/* R5: may a group of slots hold an online thread? */
static inline bool proto_group_online(const au64 *group)
{
	/* Acquire pairs with fetch_sub_release in proto_detach(): if we see
	 * none online, each went offline after all it did online. */
#ifndef QSBR_MODEL_RELAXED_SKIP
	return load_acquire(group) != 0;
#else
	return load_relaxed(group) != 0;
#endif
}

/* R5: the online bits of a mask word. */
static inline uint64_t proto_mask(const au64 *mask)
{
	/* Acquire pairs with fetch_and_release in proto_detach(), for a slot
	 * whose bit we see clear. */
#ifndef QSBR_MODEL_RELAXED_SKIP
	return load_acquire(mask);
#else
	return load_relaxed(mask);
#endif
}

/* R5: a thread's seq. */
static inline uint64_t proto_seq(const au64 *seq)
{
	/* R1: pairs with store_release(seq) in proto_publish/proto_detach: what
	 * the thread did before the value we read happens before our
	 * callbacks.  Acquire per slot, not one acquire fence after the loop:
	 * ThreadSanitizer does not model fences. */
#ifndef QSBR_MODEL_RELAXED_SEQ
	return load_acquire(seq);
#else
	return load_relaxed(seq);
#endif
}

/* The cached minimum. */
static inline uint64_t proto_rd(const au64 *rd)
{
	/* Acquire pairs with the release CAS in proto_scan_end(). */
#ifndef QSBR_MODEL_RELAXED_RD
	return load_acquire(rd);
#else
	return load_relaxed(rd);
#endif
}

/* R5, second half: raises rd_seq to min; returns the value the caller may
 * trust (ours or a later scanner's). */
static inline uint64_t proto_scan_end(au64 *rd, uint64_t min)
{
	/* Acquire: we may return another scanner's value; pairs with its CAS. */
	uint64_t old = proto_rd(rd);

	while (proto_lt(old, min)) {
		/* Release pairs with proto_rd(): what we acquired from the
		 * threads' seqs reaches whoever trusts the cache.  Acquire on
		 * failure, for the same reason as above. */
#if defined(QSBR_MODEL_RELAXED_CAS_FAILURE)
		if (cas_weak_release_relaxed(rd, &old, min))
#elif defined(QSBR_MODEL_RELAXED_CAS_SUCCESS)
		if (cas_weak_relaxed_acquire(rd, &old, min))
#else
		if (cas_weak_release_acquire(rd, &old, min))
#endif
			return min;
	}
	return old;
}

#endif /* QSBR_PROTOCOL_H */
