/* SPDX-License-Identifier: MIT */
/*
 * The only place lib/ touches <stdatomic.h>.  Each helper's name carries its
 * memory order, so a reader of the algorithm sees every ordering at the call
 * site; the comment at each non-relaxed call says what it pairs with.
 *
 * Built with QSBR_MODEL (C++, tests/model), the helpers that protocol.h uses
 * map to Relacy's atomics with the same orders instead.
 */
#ifndef QSBR_ATOMICS_H
#define QSBR_ATOMICS_H

#include <stdbool.h>
#include <stdint.h>

#ifdef QSBR_MODEL
typedef rl::atomic<uint64_t> au64;

/* The Relacy model (tests/model) runs the protocol of protocol.h on these:
 * the same helper, the same order, checked by Relacy's memory model. */
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
static inline bool cas_seq_cst(au64 *p, uint64_t *expected, uint64_t desired)
{
	return (*p)($).compare_exchange_strong(*expected, desired, rl::mo_seq_cst);
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
static inline bool cas_release_acquire(au64 *p, uint64_t *expected, uint64_t desired)
{
	return (*p)($).compare_exchange_weak(*expected, desired, rl::mo_release, rl::mo_acquire);
}
static inline void fence_seq_cst(void) { rl::atomic_thread_fence(rl::mo_seq_cst, $); }
#else
#include <stdatomic.h>

typedef _Atomic uint64_t au64;
typedef _Atomic uint32_t au32;

static inline uint32_t load_relaxed32(const au32 *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

static inline uint32_t load_seq_cst32(const au32 *p)
{
	return atomic_load_explicit(p, memory_order_seq_cst);
}

static inline uint32_t fetch_add_seq_cst32(au32 *p, uint32_t v)
{
	return atomic_fetch_add_explicit(p, v, memory_order_seq_cst);
}

static inline void store_relaxed32(au32 *p, uint32_t v)
{
	atomic_store_explicit(p, v, memory_order_relaxed);
}

static inline uint32_t fetch_sub_relaxed32(au32 *p, uint32_t v)
{
	return atomic_fetch_sub_explicit(p, v, memory_order_relaxed);
}

static inline uint32_t fetch_add_relaxed32(au32 *p, uint32_t v)
{
	return atomic_fetch_add_explicit(p, v, memory_order_relaxed);
}

static inline bool cas_relaxed(au64 *p, uint64_t *expected, uint64_t desired)
{
	return atomic_compare_exchange_strong_explicit(p, expected, desired, memory_order_relaxed,
						       memory_order_relaxed);
}

static inline bool cas_seq_cst(au64 *p, uint64_t *expected, uint64_t desired)
{
	return atomic_compare_exchange_strong_explicit(p, expected, desired, memory_order_seq_cst,
						       memory_order_seq_cst);
}

static inline uint64_t load_relaxed(const au64 *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

static inline uint64_t load_acquire(const au64 *p)
{
	return atomic_load_explicit(p, memory_order_acquire);
}

static inline uint64_t load_seq_cst(const au64 *p)
{
	return atomic_load_explicit(p, memory_order_seq_cst);
}

static inline void store_relaxed(au64 *p, uint64_t v)
{
	atomic_store_explicit(p, v, memory_order_relaxed);
}

static inline void store_release(au64 *p, uint64_t v)
{
	atomic_store_explicit(p, v, memory_order_release);
}

/* Single-writer counter: the owner adds without a read-modify-write. */
static inline void add_relaxed_owner(au64 *p, uint64_t v)
{
	store_relaxed(p, load_relaxed(p) + v);
}

static inline uint64_t fetch_add_relaxed(au64 *p, uint64_t v)
{
	return atomic_fetch_add_explicit(p, v, memory_order_relaxed);
}

static inline uint64_t fetch_add_seq_cst(au64 *p, uint64_t v)
{
	return atomic_fetch_add_explicit(p, v, memory_order_seq_cst);
}

static inline uint64_t fetch_or_relaxed(au64 *p, uint64_t v)
{
	return atomic_fetch_or_explicit(p, v, memory_order_relaxed);
}

static inline uint64_t fetch_sub_release(au64 *p, uint64_t v)
{
	return atomic_fetch_sub_explicit(p, v, memory_order_release);
}

static inline uint64_t fetch_and_release(au64 *p, uint64_t v)
{
	return atomic_fetch_and_explicit(p, v, memory_order_release);
}

/* Release on success, acquire on failure (the value read is used). */
static inline bool cas_release_acquire(au64 *p, uint64_t *expected, uint64_t desired)
{
	return atomic_compare_exchange_weak_explicit(p, expected, desired, memory_order_release,
						     memory_order_acquire);
}

static inline void *ptr_load_acquire(void *_Atomic const *p)
{
	return atomic_load_explicit(p, memory_order_acquire);
}

static inline void *ptr_load_relaxed(void *_Atomic const *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

static inline void ptr_store_relaxed(void *_Atomic *p, void *v)
{
	atomic_store_explicit(p, v, memory_order_relaxed);
}

static inline void ptr_store_release(void *_Atomic *p, void *v)
{
	atomic_store_explicit(p, v, memory_order_release);
}

static inline void fence_seq_cst(void)
{
	atomic_thread_fence(memory_order_seq_cst);
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
