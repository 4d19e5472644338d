/* SPDX-License-Identifier: MIT */
/*
 * The atomics vocabulary of lib/ and lib/ds/: the only place either touches
 * <stdatomic.h>.  One name per operation and memory order, whatever the
 * width (the C11 generic functions take any atomic type):
 *
 *   load_<order>(p)  store_<order>(p, v)  fetch_<op>_<order>(p, v)
 *   cas_strong_<order>(p, &expected, v)   cas_weak_<success>_<failure>(...)
 *   fence_seq_cst()
 *
 * so a reader of the algorithm sees every ordering at the call site; the
 * comment at each non-relaxed call says what it pairs with.  A CAS name says
 * weak or strong, and both orders when they differ.
 *
 * Built with QSBR_MODEL (C++, tests/model), the helpers that protocol.h uses
 * map to Relacy's atomics with the same orders instead, success and failure
 * orders alike.
 */
#ifndef QSBR_ATOMICS_H
#define QSBR_ATOMICS_H

#include <stdbool.h>
#include <stdint.h>

#ifdef QSBR_MODEL
typedef rl::atomic<uint64_t> au64;

/* The Relacy model (tests/model) runs the protocol of protocol.h on these:
 * the same helper, the same order, checked by Relacy's memory model.  Where
 * Relacy would model a weaker order than the name says, the helper
 * emulates the missing part (cas_weak_release_acquire). */
static inline uint64_t load_relaxed(const au64 *p) { return (*p)($).load(rl::mo_relaxed); }
static inline uint64_t load_acquire(const au64 *p) { return (*p)($).load(rl::mo_acquire); }
static inline uint64_t load_seq_cst(const au64 *p) { return (*p)($).load(rl::mo_seq_cst); }
static inline void store_relaxed(au64 *p, uint64_t v) { (*p)($).store(v, rl::mo_relaxed); }
static inline void store_release(au64 *p, uint64_t v) { (*p)($).store(v, rl::mo_release); }
static inline uint64_t fetch_add_relaxed(au64 *p, uint64_t v)
{
	return (*p)($).fetch_add(v, rl::mo_relaxed);
}
static inline uint64_t fetch_add_seq_cst(au64 *p, uint64_t v)
{
	return (*p)($).fetch_add(v, rl::mo_seq_cst);
}
static inline bool cas_strong_seq_cst(au64 *p, uint64_t *expected, uint64_t desired)
{
	return (*p)($).compare_exchange_strong(*expected, desired, rl::mo_seq_cst, rl::mo_seq_cst);
}
static inline uint64_t fetch_or_relaxed(au64 *p, uint64_t v)
{
	return (*p)($).fetch_or(v, rl::mo_relaxed);
}
static inline uint64_t fetch_sub_release(au64 *p, uint64_t v)
{
	return (*p)($).fetch_sub(v, rl::mo_release);
}
static inline uint64_t fetch_and_release(au64 *p, uint64_t v)
{
	return (*p)($).fetch_and(v, rl::mo_release);
}
/* Relacy does not honour this failure order: for a release success order
 * it always makes the failure load relaxed (generic_atomic::compare_exchange
 * in relacy/atomic.hpp; its RL_VERIFY that the failure order is relaxed is
 * compiled out).  So: the CAS with a relaxed failure, then on failure an
 * acquire fence, which Relacy applies to the value the failed CAS read (an
 * acquire fence makes every earlier relaxed read of the thread an acquire).
 * That is exactly the acquire failure load and nothing stronger as long as
 * the caller makes no other relaxed read after its last acquire or seq_cst
 * fence: true of proto_scan_end(), whose caller's last fence is R5's and
 * whose reads since are acquire loads (docs/design.md section 8). */
static inline bool cas_weak_release_acquire(au64 *p, uint64_t *expected, uint64_t desired)
{
	if ((*p)($).compare_exchange_weak(*expected, desired, rl::mo_release, rl::mo_relaxed))
		return true;
	rl::atomic_thread_fence(rl::mo_acquire, $);
	return false;
}
static inline void fence_seq_cst(void) { rl::atomic_thread_fence(rl::mo_seq_cst, $); }

/* Only for the weakened builds of protocol.h (QSBR_MODEL_* in tests/model). */
static inline uint64_t fetch_sub_relaxed(au64 *p, uint64_t v)
{
	return (*p)($).fetch_sub(v, rl::mo_relaxed);
}
static inline uint64_t fetch_and_relaxed(au64 *p, uint64_t v)
{
	return (*p)($).fetch_and(v, rl::mo_relaxed);
}
static inline bool cas_strong_relaxed(au64 *p, uint64_t *expected, uint64_t desired)
{
	return (*p)($).compare_exchange_strong(*expected, desired, rl::mo_relaxed, rl::mo_relaxed);
}
static inline bool cas_weak_release_relaxed(au64 *p, uint64_t *expected, uint64_t desired)
{
	return (*p)($).compare_exchange_weak(*expected, desired, rl::mo_release, rl::mo_relaxed);
}
/* proto_scan_end()'s CAS without its release, its acquire on failure kept
 * (QSBR_MODEL_RELAXED_CAS_SUCCESS); emulated as cas_weak_release_acquire. */
static inline bool cas_weak_relaxed_acquire(au64 *p, uint64_t *expected, uint64_t desired)
{
	if ((*p)($).compare_exchange_weak(*expected, desired, rl::mo_relaxed, rl::mo_relaxed))
		return true;
	rl::atomic_thread_fence(rl::mo_acquire, $);
	return false;
}
#else
#include <stdatomic.h>

typedef _Atomic uint64_t au64;
typedef _Atomic uint32_t au32;
typedef _Atomic uintptr_t auptr;
typedef void *_Atomic aptr;

#define load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define load_seq_cst(p) atomic_load_explicit((p), memory_order_seq_cst)

#define store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define store_seq_cst(p, v) atomic_store_explicit((p), (v), memory_order_seq_cst)

#define exchange_acq_rel(p, v) atomic_exchange_explicit((p), (v), memory_order_acq_rel)

#define fetch_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define fetch_add_release(p, v) atomic_fetch_add_explicit((p), (v), memory_order_release)
#define fetch_add_seq_cst(p, v) atomic_fetch_add_explicit((p), (v), memory_order_seq_cst)
#define fetch_sub_relaxed(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)
#define fetch_sub_release(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_release)
#define fetch_sub_seq_cst(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_seq_cst)
#define fetch_or_relaxed(p, v) atomic_fetch_or_explicit((p), (v), memory_order_relaxed)
#define fetch_and_release(p, v) atomic_fetch_and_explicit((p), (v), memory_order_release)
#define fetch_and_relaxed(p, v) atomic_fetch_and_explicit((p), (v), memory_order_relaxed)

#define cas_strong_relaxed(p, e, v) \
	atomic_compare_exchange_strong_explicit((p), (e), (v), memory_order_relaxed, memory_order_relaxed)
#define cas_strong_seq_cst(p, e, v) \
	atomic_compare_exchange_strong_explicit((p), (e), (v), memory_order_seq_cst, memory_order_seq_cst)
#define cas_strong_release_relaxed(p, e, v) \
	atomic_compare_exchange_strong_explicit((p), (e), (v), memory_order_release, memory_order_relaxed)
#define cas_weak_relaxed(p, e, v) \
	atomic_compare_exchange_weak_explicit((p), (e), (v), memory_order_relaxed, memory_order_relaxed)
#define cas_weak_release_relaxed(p, e, v) \
	atomic_compare_exchange_weak_explicit((p), (e), (v), memory_order_release, memory_order_relaxed)
#define cas_weak_release_acquire(p, e, v) \
	atomic_compare_exchange_weak_explicit((p), (e), (v), memory_order_release, memory_order_acquire)
#define cas_strong_acquire(p, e, v) \
	atomic_compare_exchange_strong_explicit((p), (e), (v), memory_order_acquire, memory_order_acquire)
#define cas_weak_acquire(p, e, v) \
	atomic_compare_exchange_weak_explicit((p), (e), (v), memory_order_acquire, memory_order_acquire)
#define cas_weak_acq_rel_acquire(p, e, v) \
	atomic_compare_exchange_weak_explicit((p), (e), (v), memory_order_acq_rel, memory_order_acquire)
#define cas_strong_acq_rel_acquire(p, e, v) \
	atomic_compare_exchange_strong_explicit((p), (e), (v), memory_order_acq_rel, memory_order_acquire)

/* Single-writer counter: the owner adds without a read-modify-write. */
#define add_relaxed_owner(p, v) store_relaxed((p), load_relaxed(p) + (v))

static inline void fence_seq_cst(void)
{
	atomic_thread_fence(memory_order_seq_cst);
}

/* Death order (shared.c): the compiler keeps the accesses before it before
 * those after it, and emits no instruction.  A process that dies stops at an
 * instruction boundary and every store it executed reaches memory, so what
 * survivors find is a prefix of the program order the compiler kept. */
static inline void fence_death(void)
{
	atomic_signal_fence(memory_order_seq_cst);
}

#endif /* QSBR_MODEL */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif /* QSBR_ATOMICS_H */
