/* SPDX-License-Identifier: MIT */
/*
 * qsbr/stack.h: a lock-free LIFO stack of pointers (Treiber's), whose popped
 * nodes libqsbr reclaims.
 *
 * The stack stores void * values; it allocates a node per push and retires
 * it at the pop that takes it.  Threads: qsbr_stack_push may be called by any
 * thread, registered or not; qsbr_stack_pop by a thread registered in the
 * stack's domain and online, with its own handle.  No call blocks or takes a
 * lock.  docs/ds.md holds the long form.
 */
#ifndef QSBR_STACK_H
#define QSBR_STACK_H

#include <qsbr.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qsbr_stack qsbr_stack; /* opaque */

/* New empty stack whose nodes are reclaimed through domain d (every handle
 * passed to qsbr_stack_pop must be registered in d).  NULL with errno EINVAL
 * (d NULL) or ENOMEM. */
QSBR_API qsbr_stack *qsbr_stack_new(qsbr_domain *d);

/* Frees s and the nodes still on it, calling fn(value, arg) for each value,
 * top first, when fn is not NULL.  No other call on s may run concurrently or
 * follow.  Returns 0, or EINVAL for NULL s. */
QSBR_API int qsbr_stack_delete(qsbr_stack *s, void (*fn)(void *value, void *arg), void *arg);

/* Pushes value (any pointer, NULL too).  Any thread.  Lock-free: one
 * allocation, then a CAS loop.  Returns 0, EINVAL for NULL s, or ENOMEM (s is
 * unchanged). */
QSBR_API int qsbr_stack_push(qsbr_stack *s, void *value);

/* Pops the newest value into *value (unless value is NULL) and retires its
 * node.  t: the caller's handle, online.  Lock-free, no allocation.  Returns
 * 0, ENOENT when s is empty, or EINVAL for NULL s or t. */
QSBR_API int qsbr_stack_pop(qsbr_stack *s, qsbr_thread *t, void **value);

#ifdef __cplusplus
}
#endif

#endif /* QSBR_STACK_H */
