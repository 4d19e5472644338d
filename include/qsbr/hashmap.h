/* SPDX-License-Identifier: MIT */
/*
 * qsbr/hashmap.h: a lock-free hash map from uint64_t keys to void * values
 * that grows without blocking anyone: Shalev and Shavit's split-ordered
 * list, whose unlinked nodes libqsbr reclaims.
 *
 * All entries live in one sorted lock-free list; buckets are shortcuts into
 * it, and doubling their number moves nothing, so readers never wait for a
 * resize.  Keys are compared as integers, or through the hash and equal
 * functions given at creation (a key may then stand for an object, as a
 * pointer converted to uintptr_t).  Threads: every call that takes a
 * qsbr_thread must be made by a thread registered in the map's domain and
 * online, with its own handle.  No call blocks or takes a lock; lookups write
 * nothing.  docs/ds.md holds the long form.
 */
#ifndef QSBR_HASHMAP_H
#define QSBR_HASHMAP_H

#include <qsbr.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qsbr_hashmap qsbr_hashmap; /* opaque */

/* Key functions.  Equal keys must have equal hashes.  Called from map calls
 * in the calling thread, on keys of entries present during the call; they
 * must not call into the map.  The map mixes the hash further, so any spread
 * of its bits will do. */
typedef uint64_t qsbr_hashmap_hash_fn(uint64_t key, void *arg);
typedef bool qsbr_hashmap_equal_fn(uint64_t a, uint64_t b, void *arg);

/* New empty map whose nodes are reclaimed through domain d (every handle
 * passed to it must be registered in d), with buckets for about size_hint
 * entries (0: a few; it grows as needed).  hash and equal NULL: keys are
 * integers; equal NULL alone: keys are equal when their values are.  NULL
 * with errno EINVAL (d NULL, or equal without hash) or ENOMEM. */
QSBR_API qsbr_hashmap *qsbr_hashmap_new(qsbr_domain *d, size_t size_hint, qsbr_hashmap_hash_fn *hash,
					qsbr_hashmap_equal_fn *equal, void *arg);

/* Frees m and its nodes, calling fn(key, value, arg) for each entry when fn
 * is not NULL.  No other call on m may run concurrently or follow.  Returns
 * 0, or EINVAL for NULL m. */
QSBR_API int qsbr_hashmap_delete(qsbr_hashmap *m, void (*fn)(uint64_t key, void *value, void *arg),
				 void *arg);

/* Adds key with value unless key is present.  t: the caller's handle,
 * online.  Lock-free; one allocation (and now and then a segment of
 * buckets).  Returns 0, EEXIST (m unchanged), ENOMEM (m unchanged), or
 * EINVAL for NULL m or t. */
QSBR_API int qsbr_hashmap_insert(qsbr_hashmap *m, qsbr_thread *t, uint64_t key, void *value);

/* Removes key, storing its value in *value unless value is NULL, and retires
 * its node.  t: the caller's handle, online.  Lock-free, no allocation
 * needed.  Returns 0, ENOENT, or EINVAL for NULL m or t. */
QSBR_API int qsbr_hashmap_remove(qsbr_hashmap *m, qsbr_thread *t, uint64_t key, void **value);

/* Finds key and stores its value in *value unless value is NULL.  t: the
 * caller's handle, online.  Reads only: no store, no lock, no allocation.
 * Returns 0, ENOENT, or EINVAL for NULL m or t. */
QSBR_API int qsbr_hashmap_lookup(const qsbr_hashmap *m, qsbr_thread *t, uint64_t key, void **value);

/* Entries in m: exact when no insert or remove runs, else off by at most
 * those that overlap the call.  Any thread.  0 with errno EINVAL for NULL. */
QSBR_API size_t qsbr_hashmap_size(const qsbr_hashmap *m);

/* Buckets in m now (a power of two; it only grows).  Any thread.  0 with
 * errno EINVAL for NULL. */
QSBR_API size_t qsbr_hashmap_buckets(const qsbr_hashmap *m);

/* Bytes m holds: its header, bucket arrays and entry nodes (not the nodes
 * waiting for a grace period: those are in qsbr_stats.pending_bytes).  Any
 * thread.  0 with errno EINVAL for NULL. */
QSBR_API size_t qsbr_hashmap_memory(const qsbr_hashmap *m);

#ifdef __cplusplus
}
#endif

#endif /* QSBR_HASHMAP_H */
