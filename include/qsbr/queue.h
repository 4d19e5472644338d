/* SPDX-License-Identifier: MIT */
/*
 * qsbr/queue.h: a lock-free FIFO queue of pointers (Michael and Scott's),
 * whose dequeued nodes libqsbr reclaims.
 *
 * The queue stores void * values in nodes from a pool of its own
 * (qsbr/pool.h): an enqueue takes one, a dequeue retires one, reused after
 * a grace period.  Values from one producer come out in the order it
 * enqueued them.  Threads: every call that takes a qsbr_thread must be made
 * by a thread registered in the queue's domain and online, with its own
 * handle.  No call blocks but qsbr_queue_delete, which waits; only an
 * enqueue may take a lock (the pool's: a cache refill, once in 64 or so).  docs/ds.md holds the long form.
 */
#ifndef QSBR_QUEUE_H
#define QSBR_QUEUE_H

#include <qsbr.h>
#include <qsbr/pool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qsbr_queue qsbr_queue; /* opaque */

/* New empty queue whose nodes are reclaimed through domain d (every handle
 * passed to it must be registered in d).  NULL with errno EINVAL (d NULL) or
 * ENOMEM. */
QSBR_API qsbr_queue *qsbr_queue_new(qsbr_domain *d);

/* Frees q and the nodes still in it, calling fn(value, arg) for each value,
 * oldest first, when fn is not NULL.  Waits first (as qsbr_barrier_domain)
 * for the nodes dequeued earlier to finish their grace period.  No other
 * call on q may run concurrently or follow.  Returns 0, EINVAL for NULL q,
 * or, changing nothing, EDEADLK from a retire callback or EBUSY (only in
 * the child of fork()), as qsbr_stack_delete. */
QSBR_API int qsbr_queue_delete(qsbr_queue *q, void (*fn)(void *value, void *arg), void *arg);

/* Appends value (any pointer, NULL too).  t: the caller's handle, online.
 * A node from the pool (through t's cache), then two CASes (more
 * under contention).  Returns 0, EINVAL for NULL q or t or t of another
 * domain, or ENOMEM (q is unchanged). */
QSBR_API int qsbr_queue_enqueue(qsbr_queue *q, qsbr_thread *t, void *value);

/* Takes the oldest value into *value (unless value is NULL) and retires a
 * node.  t: the caller's handle, online.  Lock-free, no allocation.  Returns
 * 0, ENOENT when q is empty, or EINVAL for NULL q or t. */
QSBR_API int qsbr_queue_dequeue(qsbr_queue *q, qsbr_thread *t, void **value);

/* The pool q's nodes come from (qsbr/pool.h), made with q on its domain
 * and deleted with it: for qsbr_pool_stats_get and qsbr_pool_trim, which
 * any thread may call at any time.  Never pass it to qsbr_pool_delete.
 * NULL for NULL q. */
QSBR_API qsbr_pool *qsbr_queue_pool(const qsbr_queue *q);

#ifdef __cplusplus
}
#endif

#endif /* QSBR_QUEUE_H */
