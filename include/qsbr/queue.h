/* SPDX-License-Identifier: MIT */
/*
 * qsbr/queue.h: a lock-free FIFO queue of pointers (Michael and Scott's),
 * whose dequeued nodes libqsbr reclaims.
 *
 * The queue stores void * values; it allocates a node per enqueue and
 * retires one per dequeue.  Values from one producer come out in the order it
 * enqueued them.  Threads: every call that takes a qsbr_thread must be made
 * by a thread registered in the queue's domain and online, with its own
 * handle.  No call blocks or takes a lock.  docs/ds.md holds the long form.
 */
#ifndef QSBR_QUEUE_H
#define QSBR_QUEUE_H

#include <qsbr.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qsbr_queue qsbr_queue; /* opaque */

/* New empty queue whose nodes are reclaimed through domain d (every handle
 * passed to it must be registered in d).  NULL with errno EINVAL (d NULL) or
 * ENOMEM. */
QSBR_API qsbr_queue *qsbr_queue_new(qsbr_domain *d);

/* Frees q and the nodes still in it, calling fn(value, arg) for each value,
 * oldest first, when fn is not NULL.  No other call on q may run
 * concurrently or follow.  Returns 0, or EINVAL for NULL q. */
QSBR_API int qsbr_queue_delete(qsbr_queue *q, void (*fn)(void *value, void *arg), void *arg);

/* Appends value (any pointer, NULL too).  t: the caller's handle, online.
 * Lock-free: one allocation, then two CASes (more under contention).
 * Returns 0, EINVAL for NULL q or t, or ENOMEM (q is unchanged). */
QSBR_API int qsbr_queue_enqueue(qsbr_queue *q, qsbr_thread *t, void *value);

/* Takes the oldest value into *value (unless value is NULL) and retires a
 * node.  t: the caller's handle, online.  Lock-free, no allocation.  Returns
 * 0, ENOENT when q is empty, or EINVAL for NULL q or t. */
QSBR_API int qsbr_queue_dequeue(qsbr_queue *q, qsbr_thread *t, void **value);

#ifdef __cplusplus
}
#endif

#endif /* QSBR_QUEUE_H */
