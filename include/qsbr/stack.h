/* SPDX-License-Identifier: MIT */
/*
 * qsbr/stack.h: a lock-free LIFO stack of pointers (Treiber's), whose popped
 * nodes libqsbr reclaims.
 *
 * The stack stores void * values in nodes from a pool of its own
 * (qsbr/pool.h): a push takes one, the pop that takes it retires it, and
 * it is reused after a grace period.  Threads: qsbr_stack_push may be
 * called by any thread, registered or not; qsbr_stack_pop by a thread
 * registered in the stack's domain and online, with its own handle.  No
 * call blocks; only a push may take a lock (the pool's, see below), and
 * qsbr_stack_delete waits.  docs/ds.md holds the long form.
 */
#ifndef QSBR_STACK_H
#define QSBR_STACK_H

#include <qsbr.h>
#include <qsbr/pool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qsbr_stack qsbr_stack; /* opaque */

/* New empty stack whose nodes are reclaimed through domain d (every handle
 * passed to qsbr_stack_pop must be registered in d).  NULL with errno EINVAL
 * (d NULL) or ENOMEM. */
QSBR_API qsbr_stack *qsbr_stack_new(qsbr_domain *d);

/* Frees s and the nodes still on it, calling fn(value, arg) for each value,
 * top first, when fn is not NULL.  Waits first (as qsbr_barrier_domain) for
 * the nodes popped earlier to finish their grace period.  No other call on
 * s may run concurrently or follow.  Returns 0, EINVAL for NULL s, or,
 * changing nothing, EDEADLK from a retire callback (where that wait would
 * wait on it) or EBUSY (only in the child of fork(), for nodes popped in
 * the parent before it). */
QSBR_API int qsbr_stack_delete(qsbr_stack *s, void (*fn)(void *value, void *arg), void *arg);

/* Pushes value (any pointer, NULL too).  Any thread.  A node from the
 * pool, then a CAS loop: a thread registered in the stack's domain takes
 * it from its cache without a lock but once in 64 or so pushes (a refill
 * under the pool's lock); another thread always under that lock.  Returns
 * 0, EINVAL for NULL s, or ENOMEM (s is unchanged). */
QSBR_API int qsbr_stack_push(qsbr_stack *s, void *value);

/* Pops the newest value into *value (unless value is NULL) and retires its
 * node.  t: the caller's handle, online.  Lock-free, no allocation.  Returns
 * 0, ENOENT when s is empty, or EINVAL for NULL s or t. */
QSBR_API int qsbr_stack_pop(qsbr_stack *s, qsbr_thread *t, void **value);

/* The pool s's nodes come from (qsbr/pool.h), made with s on its domain
 * and deleted with it: for qsbr_pool_stats_get and qsbr_pool_trim, which
 * any thread may call at any time.  Never pass it to qsbr_pool_delete.
 * NULL for NULL s. */
QSBR_API qsbr_pool *qsbr_stack_pool(const qsbr_stack *s);

#ifdef __cplusplus
}
#endif

#endif /* QSBR_STACK_H */
