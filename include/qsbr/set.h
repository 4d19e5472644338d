/* SPDX-License-Identifier: MIT */
/*
 * qsbr/set.h: a lock-free ordered set of uint64_t keys, each with a void *
 * value: Harris's sorted linked list with logical deletion, in Michael's
 * form, whose unlinked nodes libqsbr reclaims.
 *
 * A list: every call walks from the smallest key, so it costs O(n) in the
 * keys present; meant for small sets and as the reference for the hash map
 * (qsbr/hashmap.h), which is the same list cut into buckets.  Threads: every
 * call that takes a qsbr_thread must be made by a thread registered in the
 * set's domain and online, with its own handle.  Entries come from a pool
 * of the set's own (qsbr/pool.h) and are reused after a grace period.  No
 * call blocks but qsbr_set_delete, which waits; only an insert may take a
 * lock (the pool's: a cache refill, once in 64 or so); lookups and seeks
 * write nothing.  docs/ds.md holds the long form.
 */
#ifndef QSBR_SET_H
#define QSBR_SET_H

#include <qsbr.h>
#include <qsbr/pool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qsbr_set qsbr_set; /* opaque */

/* New empty set whose nodes are reclaimed through domain d (every handle
 * passed to it must be registered in d).  NULL with errno EINVAL (d NULL) or
 * ENOMEM. */
QSBR_API qsbr_set *qsbr_set_new(qsbr_domain *d);

/* Frees s and its nodes, calling fn(key, value, arg) for each entry, in key
 * order, when fn is not NULL.  Waits first (as qsbr_barrier_domain) for the
 * entries removed earlier to finish their grace period.  No other call on s
 * may run concurrently or follow.  Returns 0, EINVAL for NULL s, or,
 * changing nothing, EDEADLK from a retire callback or EBUSY (only in the
 * child of fork()), as qsbr_stack_delete. */
QSBR_API int qsbr_set_delete(qsbr_set *s, void (*fn)(uint64_t key, void *value, void *arg),
			     void *arg);

/* Adds key with value unless key is present.  t: the caller's handle,
 * online.  An entry from the pool (through t's cache), then a lock-free
 * insert.  Returns 0, EEXIST (s unchanged), ENOMEM (s unchanged), or EINVAL
 * for NULL s or t, or t of another domain. */
QSBR_API int qsbr_set_insert(qsbr_set *s, qsbr_thread *t, uint64_t key, void *value);

/* Removes key, storing its value in *value unless value is NULL, and retires
 * its node.  t: the caller's handle, online.  Lock-free, no allocation.
 * Returns 0, ENOENT, or EINVAL for NULL s or t. */
QSBR_API int qsbr_set_remove(qsbr_set *s, qsbr_thread *t, uint64_t key, void **value);

/* Finds key and stores its value in *value unless value is NULL.  t: the
 * caller's handle, online.  Reads only: no store, no lock.  Returns 0,
 * ENOENT, or EINVAL for NULL s or t. */
QSBR_API int qsbr_set_lookup(const qsbr_set *s, qsbr_thread *t, uint64_t key, void **value);

/* Finds the smallest key at or above key: stores it in *found and its value
 * in *value (each unless NULL).  To walk the set in order, seek from 0, then
 * from each found key + 1; quiescent states may come between two seeks.
 * Reads only.  Returns 0, ENOENT (no such key), or EINVAL for NULL s or t. */
QSBR_API int qsbr_set_seek(const qsbr_set *s, qsbr_thread *t, uint64_t key, uint64_t *found,
			   void **value);

/* The pool s's nodes come from (qsbr/pool.h), made with s on its domain
 * and deleted with it: for qsbr_pool_stats_get and qsbr_pool_trim, which
 * any thread may call at any time.  Never pass it to qsbr_pool_delete.
 * NULL for NULL s. */
QSBR_API qsbr_pool *qsbr_set_pool(const qsbr_set *s);

#ifdef __cplusplus
}
#endif

#endif /* QSBR_SET_H */
