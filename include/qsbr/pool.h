/* SPDX-License-Identifier: MIT */
/*
 * qsbr/pool.h: pools of fixed-size objects whose memory is reused after a
 * grace period, instead of going back to the allocator.
 *
 * A pool hands out objects of one size from large slabs taken from its
 * domain's allocator.  An object the caller unlinked from a shared structure
 * is given back with qsbr_pool_retire: it is reused only after every thread
 * online at that call has passed a quiescent state (a retire of the core,
 * whose callback puts the object back in the pool).  An object that was never
 * published is given back with qsbr_pool_free and is reusable at once.
 * Threads: the calls that take a qsbr_thread must be made by its owner; the
 * others by any thread.  docs/api.md (Pools) holds the long form.
 */
#ifndef QSBR_POOL_H
#define QSBR_POOL_H

#include <qsbr.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qsbr_pool qsbr_pool; /* opaque */

/* Largest object size and alignment a pool accepts. */
#define QSBR_POOL_SIZE_MAX ((size_t)1 << 20)
#define QSBR_POOL_ALIGN_MAX ((size_t)4096)

/* What a pool holds, in objects and bytes (qsbr_pool_stats_get).  A
 * snapshot: fields read while threads run need not add up exactly. */
typedef struct qsbr_pool_stats {
	uint64_t allocated;    /* handed out by alloc, not yet retired or freed */
	uint64_t cached;       /* free in the pool's slabs, reusable now */
	uint64_t waiting;      /* retired, waiting for a grace period */
	uint64_t slabs;        /* slabs held from the domain's allocator */
	uint64_t bytes_held;   /* their bytes */
	uint64_t object_size;  /* the size asked for at qsbr_pool_new */
	uint64_t stride;       /* bytes each object takes in a slab */
	uint64_t thread_cached; /* of cached, in the threads' caches */
	uint64_t cache_max;    /* the most a thread's cache holds, in objects */
	uint64_t thread_reserve; /* of thread_cached, in the threads' reserves */
	uint64_t reserved[2];  /* zero: room for later counters */
} qsbr_pool_stats;

/* New pool of objects of size bytes aligned to align (a power of two; 0
 * means alignof(max_align_t)), whose retired objects wait for d's grace
 * periods.  Any thread.  NULL with errno EINVAL (d NULL, size 0 or above
 * QSBR_POOL_SIZE_MAX, align not a power of two or above
 * QSBR_POOL_ALIGN_MAX) or ENOMEM. */
QSBR_API qsbr_pool *qsbr_pool_new(qsbr_domain *d, size_t size, size_t align);

/* Deletes p and gives its slabs back.  EBUSY, changing nothing, while
 * objects are allocated.  Waits (as qsbr_barrier_domain) for the objects
 * retired to p to finish their grace period; EDEADLK, changing nothing,
 * when that wait would be needed from a retire callback.  0, or EINVAL for
 * NULL.  No other call on p may run concurrently or follow. */
QSBR_API int qsbr_pool_delete(qsbr_pool *p);

/* An object of the pool's size, uninitialised.  t: the caller's handle in
 * the pool's domain.  NULL with errno EINVAL (NULL t or p, or t of another
 * domain) or ENOMEM (no slab could be allocated). */
QSBR_API void *qsbr_pool_alloc(qsbr_thread *t, qsbr_pool *p);

/* Gives back obj, which the caller unlinked: it is reused only after every
 * thread online now has passed a quiescent state.  The thread's retires go
 * to the core 8 at a time (see qsbr_pool_flush).  No allocation, cannot
 * fail; errno EINVAL for NULL arguments or t of
 * another domain, and obj stays the caller's. */
QSBR_API void qsbr_pool_retire(qsbr_thread *t, qsbr_pool *p, void *obj);

/* Hands the objects the caller retired to p that still wait in its retire
 * batch (fewer than 8) to the core now, so that qsbr_barrier and
 * qsbr_barrier_domain wait for them too.  errno EINVAL for NULL arguments
 * or t of another domain. */
QSBR_API void qsbr_pool_flush(qsbr_thread *t, qsbr_pool *p);

/* Gives back obj, which no other thread can have seen: reusable at once.
 * errno EINVAL for NULL arguments or t of another domain. */
QSBR_API void qsbr_pool_free(qsbr_thread *t, qsbr_pool *p, void *obj);

/* Puts the free objects of the pool's depot and of its threads' reserves
 * back in their slabs, and gives the empty slabs back to the domain's
 * allocator.  Any thread.  Returns the bytes given back; 0 with errno
 * EINVAL for NULL. */
QSBR_API size_t qsbr_pool_trim(qsbr_pool *p);

/* Fills *out.  Any thread; takes the pool's lock briefly.  0, or EINVAL
 * for a NULL argument. */
QSBR_API int qsbr_pool_stats_get(qsbr_pool *p, qsbr_pool_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* QSBR_POOL_H */
