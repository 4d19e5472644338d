/* SPDX-License-Identifier: MIT */
/*
 * ds.h: what the data structures of lib/ds share.
 *
 * Every shared pointer of a structure is a link: an auptr (atomics.h)
 * holding a node's address and, in the sorted list (list.h), a mark in its
 * low bit.  Atomic accesses use the vocabulary of ../atomics.h, whose names
 * carry the memory order, so the order of every access shows at the call
 * site; the comment at each call that is not relaxed says what it orders
 * and what it pairs with.  Counters are statistics and growth hints:
 * relaxed throughout.  A CAS is weak in a loop that only tries again (a
 * spurious failure costs one round), strong where a failure sends the
 * caller back to the start of a walk or is not retried at all.
 *
 * The structures use the public API of <qsbr.h>, and the domain's allocator
 * below: a node leaves a structure through qsbr_retire_node_sized, never
 * through a free, while any thread may still be using the structure.
 */
#ifndef QSBR_DS_H
#define QSBR_DS_H

#include <errno.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qsbr.h"

#include "../atomics.h"

/* Zeroed memory serves as links and counters holding 0, and a link is one
 * plain word: both need lock-free atomics. */
#if ATOMIC_POINTER_LOCK_FREE != 2 || ATOMIC_LLONG_LOCK_FREE != 2
#error "lib/ds needs lock-free pointer-sized and 64-bit atomics"
#endif

/* Orders atomics.h does not name yet (to move to atomics.h). */
#define cas_strong_release_relaxed(p, e, v) \
	atomic_compare_exchange_strong_explicit((p), (e), (v), memory_order_release, memory_order_relaxed)

#define DS_LINE 64 /* cache line: what other threads write goes on its own */

#define ds_container_of(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

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
