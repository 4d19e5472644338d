/* SPDX-License-Identifier: MIT */
/*
 * Blocking waits, for synchronize, both barriers, the memory cap and the
 * helper thread: spin briefly, then sleep on the domain's futex word until a
 * thread that may have made the condition true wakes us (or 1 ms passes).
 *
 * There is no sched_yield() phase: on a machine with as many spinning readers
 * as cores, a yield hands the core to a reader that never gives it back, and
 * the waiter then waits for the scheduler's next tick (docs/benchmarks.md).
 *
 * A caller that counts as quiescent while it waits (self online) sleeps
 * offline: qsbr_detach and qsbr_attach around the sleep, so that a grace
 * period it waits for does not wait for it in turn.
 *
 * The protocol against a lost wake:
 *
 *   waiter                              waker (publish, detach, drain, ack)
 *   fetch_add_seq_cst(waiters)          makes the condition true (a store)
 *   fence_seq_cst                       fence_seq_cst (R2, or its own)
 *   seen = load_seq_cst(futex_word)
 *   check the condition again           load_seq_cst(waiters) != 0 ?
 *   futex_wait(futex_word == seen)        fetch_add_seq_cst(futex_word); wake
 *
 * A store-buffering pair: either the waker's load sees our registration, and
 * then it bumps futex_word after we read it (the futex returns at once) or
 * before (our second check, after the acquire of its RMW, sees the
 * condition); or it does not, and then its fence precedes our RMW in the
 * single total order, so our second check sees what it stored.
 */
#define _GNU_SOURCE /* syscall(SYS_futex) */
#include <limits.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#include "internal.h"

#define SPIN_ROUNDS 16u   /* checks before the first sleep */
#define SLEEP_NS 1000000L /* the longest sleep: a backstop, never the rule */

void qsbr__wake_waiters(qsbr_domain *d)
{
	/* seq_cst: the waker's half of the store-buffering pair above; the
	 * caller's fence (R2 or its own) precedes it. */
	if (load_seq_cst(&d->waiters) == 0)
		return;
	/* seq_cst RMW: the waiter's load of futex_word reads it or an earlier
	 * value (then its futex_wait returns at once). */
	fetch_add_seq_cst(&d->futex_word, 1);
#ifdef __linux__
	syscall(SYS_futex, (uint32_t *)&d->futex_word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#endif
}

static void sleep_on(qsbr_domain *d, uint32_t seen)
{
	struct timespec ts = { 0, SLEEP_NS };

#ifdef __linux__
	syscall(SYS_futex, (uint32_t *)&d->futex_word, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
#else
	(void)d;
	(void)seen;
	nanosleep(&ts, NULL);
#endif
}

bool qsbr__wait_until(qsbr_domain *d, qsbr_thread *self, bool (*done)(void *arg), void *arg,
		      uint64_t deadline_ms)
{
	for (unsigned round = 0;; round++) {
		uint32_t seen;
		bool ok;

		/* The caller counts as quiescent while it waits. */
		if (self != NULL && load_relaxed(&self->seq) != 0)
			qsbr_quiescent(self);
		if (done(arg))
			return true;
		if (deadline_ms != 0 && qsbr__now_ms() >= deadline_ms)
			return false;
		if (round < SPIN_ROUNDS) {
			cpu_relax();
			continue;
		}
		/* seq_cst RMW and fence: the waiter's half of the pair (file
		 * comment); the fence orders the re-check's loads, whatever
		 * their own order. */
		fetch_add_seq_cst(&d->waiters, 1);
		fence_seq_cst();
		seen = load_seq_cst(&d->futex_word);
		ok = done(arg);
		if (!ok) {
			/* Asleep, the caller reports nothing: it sleeps offline
			 * (what it holds may then be stolen, as for any detach), or
			 * the grace period it waits for would wait for it. */
			bool online = self != NULL && load_relaxed(&self->seq) != 0;

			if (online)
				qsbr_detach(self);
			sleep_on(d, seen);
			if (online)
				qsbr_attach(self);
		}
		fetch_sub_relaxed(&d->waiters, 1);
		if (ok)
			return true;
	}
}
