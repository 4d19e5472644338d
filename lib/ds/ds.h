/* SPDX-License-Identifier: MIT */
/*
 * ds.h: what the data structures of lib/ds share, and the only place they
 * touch <stdatomic.h>.
 *
 * Every shared pointer of a structure is a link: a uintptr_t in an atomic,
 * holding a node's address and, in the sorted list (list.h), a mark in its
 * low bit.  The helpers below carry their memory order in their name, so the
 * order of every access shows at the call site; the comment at each call
 * that is not relaxed says what it orders and what it pairs with.  Counters
 * are statistics and growth hints: relaxed throughout.
 *
 * The structures use the public API of <qsbr.h> only: a node leaves a
 * structure through qsbr_retire_node_sized, never through free(), while any
 * thread may still be using the structure.
 */
#ifndef QSBR_DS_H
#define QSBR_DS_H

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qsbr.h"

/* calloc'd memory serves as links and counters holding 0, and a link is one
 * plain word: both need lock-free atomics. */
#if ATOMIC_POINTER_LOCK_FREE != 2 || ATOMIC_LLONG_LOCK_FREE != 2
#error "lib/ds needs lock-free pointer-sized and 64-bit atomics"
#endif

#define DS_LINE 64 /* cache line: what other threads write goes on its own */

#define ds_container_of(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

typedef _Atomic uintptr_t ds_link;

/* ---- Links ------------------------------------------------------------ */

/* Before the object is shared: a plain initialization. */
static inline void link_init(ds_link *p, uintptr_t v)
{
	atomic_init(p, v);
}

static inline uintptr_t link_load_relaxed(const ds_link *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

static inline uintptr_t link_load_acquire(const ds_link *p)
{
	return atomic_load_explicit(p, memory_order_acquire);
}

static inline void link_store_relaxed(ds_link *p, uintptr_t v)
{
	atomic_store_explicit(p, v, memory_order_relaxed);
}

static inline void link_store_release(ds_link *p, uintptr_t v)
{
	atomic_store_explicit(p, v, memory_order_release);
}

static inline bool link_cas_relaxed(ds_link *p, uintptr_t *expected, uintptr_t desired)
{
	return atomic_compare_exchange_strong_explicit(p, expected, desired, memory_order_relaxed,
						       memory_order_relaxed);
}

/* Success: release; failure: relaxed (the caller starts over from an acquire
 * load and does not follow the value it got). */
static inline bool link_cas_release(ds_link *p, uintptr_t *expected, uintptr_t desired)
{
	return atomic_compare_exchange_strong_explicit(p, expected, desired, memory_order_release,
						       memory_order_relaxed);
}

/* Success and failure: acquire (the caller follows the value it got). */
static inline bool link_cas_acquire(ds_link *p, uintptr_t *expected, uintptr_t desired)
{
	return atomic_compare_exchange_strong_explicit(p, expected, desired, memory_order_acquire,
						       memory_order_acquire);
}

/* Success: acquire and release; failure: acquire. */
static inline bool link_cas_acq_rel(ds_link *p, uintptr_t *expected, uintptr_t desired)
{
	return atomic_compare_exchange_strong_explicit(p, expected, desired, memory_order_acq_rel,
						       memory_order_acquire);
}

/* ---- Counters --------------------------------------------------------- */

static inline void count_init(_Atomic int64_t *c, int64_t v)
{
	atomic_init(c, v);
}

static inline void u32_init(_Atomic unsigned *p, unsigned v)
{
	atomic_init(p, v);
}

static inline int64_t count_add_relaxed(_Atomic int64_t *c, int64_t v)
{
	return atomic_fetch_add_explicit(c, v, memory_order_relaxed) + v;
}

static inline int64_t count_load_relaxed(const _Atomic int64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static inline unsigned u32_load_relaxed(const _Atomic unsigned *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

static inline bool u32_cas_relaxed(_Atomic unsigned *p, unsigned *expected, unsigned desired)
{
	return atomic_compare_exchange_weak_explicit(p, expected, desired, memory_order_relaxed,
						     memory_order_relaxed);
}

/* ---- Memory ----------------------------------------------------------- */

/* A structure's header for domain d: cache-line aligned, zeroed.  NULL with
 * errno EINVAL (no domain) or ENOMEM. */
static inline void *ds_header_new(qsbr_domain *d, size_t size)
{
	size_t rounded = (size + DS_LINE - 1) / DS_LINE * DS_LINE;
	void *p;

	if (d == NULL) {
		errno = EINVAL;
		return NULL;
	}
	p = aligned_alloc(DS_LINE, rounded);
	if (p == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	memset(p, 0, rounded);
	return p;
}

#endif /* QSBR_DS_H */
