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
#include "qsbr/pool.h"

#include "../atomics.h"

/* Zeroed memory serves as links and counters holding 0, and a link is one
 * plain word: both need lock-free atomics. */
#if ATOMIC_POINTER_LOCK_FREE != 2 || ATOMIC_LLONG_LOCK_FREE != 2
#error "lib/ds needs lock-free pointer-sized and 64-bit atomics"
#endif

#define DS_LINE 64 /* cache line: what other threads write goes on its own */

#define ds_container_of(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

/* ---- Memory ----------------------------------------------------------- */

/*
 * The domain's allocator: qsbr_options.alloc and .free of the domain the
 * structure was made for, or the malloc family.  Defined in lib/domain.c;
 * hidden, like everything in the library but its API: the data structures
 * are compiled into the library and call these directly.  Every byte a
 * structure holds comes from here and goes back here.
 */
#if defined(__GNUC__)
#define DS_HIDDEN __attribute__((visibility("hidden")))
#else
#define DS_HIDDEN
#endif
DS_HIDDEN void *qsbr__domain_alloc(qsbr_domain *d, size_t size, size_t align);
DS_HIDDEN void qsbr__domain_free(qsbr_domain *d, void *p);

/*
 * Nodes: the stack, the queue and the set take theirs from a pool of their
 * own (qsbr/pool.h), made with the structure on its domain, and give them
 * back with qsbr_pool_retire: a node's memory is reused after its grace
 * period, without a trip through the allocator.  Defined in lib/pool.c
 * and lib/registry.c, hidden like the allocator's calls:
 *
 *   qsbr__pool_alloc_any(p)        a node for a caller without a handle
 *                                  (from the slabs, under the pool's lock)
 *   qsbr__pool_settle(p)           the wait of qsbr_pool_delete: until no
 *                                  node retired to p waits (0; EDEADLK in
 *                                  a callback, EBUSY in a fork() child)
 *   qsbr__pool_destroy(p)          then p goes, with the nodes still
 *                                  allocated (those still in the structure)
 *   qsbr__self(d)                  the calling thread's handle in d, or NULL
 */
DS_HIDDEN void *qsbr__pool_alloc_any(qsbr_pool *p);
DS_HIDDEN int qsbr__pool_settle(qsbr_pool *p);
DS_HIDDEN void qsbr__pool_destroy(qsbr_pool *p);
DS_HIDDEN qsbr_thread *qsbr__self(qsbr_domain *d);
/* Whether the calling thread is running a retire callback (lib/retire.c). */
DS_HIDDEN bool qsbr__in_callback(void);

/* n zeroed elements of size bytes aligned to align (calloc's contract, the
 * product checked), or NULL. */
static inline void *ds_alloc_zeroed(qsbr_domain *d, size_t n, size_t size, size_t align)
{
	void *p;

	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	p = qsbr__domain_alloc(d, n * size, align);
	if (p != NULL)
		memset(p, 0, n * size);
	return p;
}

/* A structure's header for domain d: cache-line aligned, zeroed.  NULL with
 * errno EINVAL (no domain) or ENOMEM. */
static inline void *ds_header_new(qsbr_domain *d, size_t size)
{
	void *p;

	if (d == NULL) {
		errno = EINVAL;
		return NULL;
	}
	p = ds_alloc_zeroed(d, 1, (size + DS_LINE - 1) / DS_LINE * DS_LINE, DS_LINE);
	if (p == NULL)
		errno = ENOMEM;
	return p;
}

/* A structure's own pool of nodes of size bytes aligned to align, on
 * domain d (not NULL), for its header h.  Without memory: frees h, and
 * NULL with errno ENOMEM (set after the free, whose hook may change it;
 * never EINVAL: the sizes are the structure's). */
static inline qsbr_pool *ds_pool_new(qsbr_domain *d, void *h, size_t size, size_t align)
{
	qsbr_pool *p = qsbr_pool_new(d, size, align);

	if (p == NULL) {
		qsbr__domain_free(d, h);
		errno = ENOMEM;
	}
	return p;
}

/* A node of pool p for the calling thread: through its cache when it has a
 * handle in d (the pool's domain), else from the slabs.  NULL without
 * memory. */
static inline void *ds_node_new(qsbr_pool *p, qsbr_domain *d)
{
	qsbr_thread *self = qsbr__self(d);

	return self != NULL ? qsbr_pool_alloc(self, p) : qsbr__pool_alloc_any(p);
}

#endif /* QSBR_DS_H */
