/* SPDX-License-Identifier: MIT */
/*
 * qsbr/hashmap.h: a lock-free hash map that grows and shrinks without
 * blocking anyone: Shalev and Shavit's split-ordered list, reclaimed through
 * libqsbr.
 *
 * All entries live in one sorted lock-free list; buckets are shortcuts into
 * it, and doubling or halving their number moves no entry, so readers never
 * wait for a resize.  Two ways to use it:
 *
 *  - Intrusive (the primary API): the caller embeds a qsbr_hashmap_node in
 *    its own object, passes each call a precomputed hash and a match
 *    function (keys of any type), and retires the object itself, once,
 *    after the call that took it out returns.  Adding never allocates and
 *    never fails.  Maps made by qsbr_hashmap_new_intrusive.
 *  - Keyed (a layer over it): uint64_t keys to void * values, the map owning
 *    its nodes (from a qsbr_pool of the domain).  Maps made by
 *    qsbr_hashmap_new.
 *
 * Threads: every call that takes a qsbr_thread must be made by a thread
 * registered in the map's domain and online, with its own handle.  No call
 * blocks or takes a lock (but qsbr_hashmap_delete, see there); lookups
 * write nothing.  docs/ds.md holds the long form.
 */
#ifndef QSBR_HASHMAP_H
#define QSBR_HASHMAP_H

#include <qsbr.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qsbr_hashmap qsbr_hashmap; /* opaque */

/* ---- Intrusive API ------------------------------------------------------ */

/* The map's part of an entry, embedded in the caller's object (32 bytes on
 * 64-bit targets; ABI).  link_ and order_ are the map's: never touch them
 * while the node is in a map.  retire is the caller's: once a call has
 * taken the node out (qsbr_hashmap_del, _remove_match, or the old node of a
 * replace), retire the object through it, qsbr_retire_node(t, &n->retire,
 * fn), and fn frees node and object together. */
typedef struct qsbr_hashmap_node {
	uintptr_t link_;
	uint64_t order_;
	qsbr_node retire;
} qsbr_hashmap_node;

/* Whether node n holds key (whatever the caller passed as key).  Called by
 * map calls in the calling thread, only on nodes whose hash equals the
 * call's (but maybe for its top bit), that were in the map during the call;
 * must not call into the map. */
typedef bool qsbr_hashmap_match_fn(const qsbr_hashmap_node *n, const void *key);

/* New empty intrusive map whose calls take handles of domain d, with
 * buckets for about size_hint entries (0: a few; it grows as needed).  Any
 * thread.  NULL with errno EINVAL (d NULL) or ENOMEM. */
QSBR_API qsbr_hashmap *qsbr_hashmap_new_intrusive(qsbr_domain *d, size_t size_hint);

/* Adds n (its object filled in; n in no map, and if it was taken out of
 * one, only after a grace period since, as for any reuse) with hash, unless
 * an entry matching key is present.  Returns n when added, else the entry
 * present (n stays the caller's).  t: the caller's handle, online.
 * Lock-free; never allocates an entry, never fails for want of memory.
 * NULL with errno EINVAL for a NULL argument or a keyed map. */
QSBR_API qsbr_hashmap_node *qsbr_hashmap_add_unique(qsbr_hashmap *m, qsbr_thread *t, uint64_t hash,
						    qsbr_hashmap_match_fn *match, const void *key,
						    qsbr_hashmap_node *n);

/* Adds n, or puts it in place of the entry matching key in one atomic step.
 * Returns the entry replaced (taken out: the caller retires it), or NULL
 * when n was added as new (errno untouched then).  As add_unique otherwise;
 * NULL with errno EINVAL for bad arguments, n then not added. */
QSBR_API qsbr_hashmap_node *qsbr_hashmap_add_replace(qsbr_hashmap *m, qsbr_thread *t, uint64_t hash,
						     qsbr_hashmap_match_fn *match, const void *key,
						     qsbr_hashmap_node *n);

/* Puts n in place of the entry matching key, in one atomic step; adds
 * nothing when none matches.  Returns the entry replaced (the caller
 * retires it), or NULL with errno ENOENT (n stays the caller's) or EINVAL. */
QSBR_API qsbr_hashmap_node *qsbr_hashmap_replace(qsbr_hashmap *m, qsbr_thread *t, uint64_t hash,
						 qsbr_hashmap_match_fn *match, const void *key,
						 qsbr_hashmap_node *n);

/* Finds the entry matching key.  Reads only: no store, no allocation, no
 * restart.  The node stays valid until the caller's next quiescent state.
 * NULL when absent (errno untouched), or NULL with errno EINVAL. */
QSBR_API qsbr_hashmap_node *qsbr_hashmap_find(const qsbr_hashmap *m, qsbr_thread *t, uint64_t hash,
					      qsbr_hashmap_match_fn *match, const void *key);

/* Takes n, an entry the caller found in m, out of the map.  Returns 0 (n is
 * out: retire it), ENOENT (another call took it out first: not yours to
 * retire), or EINVAL (a NULL argument or a keyed map).  No allocation. */
QSBR_API int qsbr_hashmap_del(qsbr_hashmap *m, qsbr_thread *t, qsbr_hashmap_node *n);

/* Conditional remove: takes out the first entry with hash for which
 * match(n, key) holds (match may test more than the key: a version, a
 * value) and returns it, for the caller to retire; NULL when none matched
 * (errno untouched), or NULL with errno EINVAL. */
QSBR_API qsbr_hashmap_node *qsbr_hashmap_remove_match(qsbr_hashmap *m, qsbr_thread *t, uint64_t hash,
						      qsbr_hashmap_match_fn *match, const void *key);

/* Iteration while others update: qsbr_hashmap_first, then _next from each
 * node returned, until NULL; no quiescent state of the caller in between
 * (the nodes stay valid until it).  An entry present for the whole walk is
 * returned exactly once; one added or taken out during it, at most once.
 * The caller may take out the node it stands on and go on from it.  Reads
 * only.  NULL at the end, or with errno EINVAL (a NULL argument; with a
 * keyed map too). */
QSBR_API qsbr_hashmap_node *qsbr_hashmap_first(const qsbr_hashmap *m, qsbr_thread *t);
QSBR_API qsbr_hashmap_node *qsbr_hashmap_next(const qsbr_hashmap *m, qsbr_thread *t,
					      const qsbr_hashmap_node *n);

/* Frees an intrusive map, first calling fn(n, arg) for each entry still in
 * it (when fn is not NULL): the caller's objects stay the caller's.  No
 * other call on m may run concurrently or follow.  0, or EINVAL for NULL m
 * or a keyed map. */
QSBR_API int qsbr_hashmap_delete_nodes(qsbr_hashmap *m, void (*fn)(qsbr_hashmap_node *n, void *arg),
				       void *arg);

/* A 64-bit mixer (every output bit depends on every input bit) for
 * integer keys: the map picks a bucket from the hash's low bits as given. */
static inline uint64_t qsbr_hashmap_hash64(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return x;
}

/* ---- Resize control (both kinds) --------------------------------------- */

/* How m resizes from now on.  load: the most entries per bucket before the
 * bucket count doubles (1..64; the default is 2); min_buckets, max_buckets:
 * bounds on the bucket count (rounded up to powers of two; 0: 8, and no
 * limit); shrink: halve the buckets once fewer than load / 4 entries per
 * bucket remain (hysteresis: a halved map is at most half loaded), giving
 * the bucket memory back after a grace period.  A min_buckets above the
 * count now grows m at once.  Any thread registered or not.  0, or EINVAL
 * (NULL m, load out of range, min above max). */
QSBR_API int qsbr_hashmap_resize_policy(qsbr_hashmap *m, unsigned load, size_t min_buckets,
					size_t max_buckets, bool shrink);

/* ---- Keyed API ---------------------------------------------------------- */

/* Key functions.  Equal keys must have equal hashes.  Called from map calls
 * in the calling thread, on keys of entries present during the call; they
 * must not call into the map.  The map mixes the hash further, so any spread
 * of its bits will do. */
typedef uint64_t qsbr_hashmap_hash_fn(uint64_t key, void *arg);
typedef bool qsbr_hashmap_equal_fn(uint64_t a, uint64_t b, void *arg);

/* New empty keyed map whose nodes are reclaimed through domain d (every
 * handle passed to it must be registered in d), with buckets for about
 * size_hint entries (0: a few; it grows as needed).  hash and equal NULL:
 * keys are integers; equal NULL alone: keys are equal when their values
 * are.  NULL with errno EINVAL (d NULL, or equal without hash) or ENOMEM. */
QSBR_API qsbr_hashmap *qsbr_hashmap_new(qsbr_domain *d, size_t size_hint, qsbr_hashmap_hash_fn *hash,
					qsbr_hashmap_equal_fn *equal, void *arg);

/* Frees a keyed map and its nodes, calling fn(key, value, arg) for each
 * entry when fn is not NULL; waits for the nodes removed before it to
 * finish their grace period (as qsbr_pool_delete).  No other call on m may
 * run concurrently or follow.  Returns 0, EINVAL for NULL m or an intrusive
 * map, EDEADLK (from a retire callback: nothing changed) or EBUSY (in the
 * child of fork(), for nodes removed in the parent: nothing changed). */
QSBR_API int qsbr_hashmap_delete(qsbr_hashmap *m, void (*fn)(uint64_t key, void *value, void *arg),
				 void *arg);

/* Adds key with value unless key is present.  t: the caller's handle,
 * online.  Lock-free; takes a node from the map's pool (and now and then a
 * segment of buckets).  Returns 0, EEXIST (m unchanged), ENOMEM (m
 * unchanged), or EINVAL for NULL m or t or an intrusive map. */
QSBR_API int qsbr_hashmap_insert(qsbr_hashmap *m, qsbr_thread *t, uint64_t key, void *value);

/* Removes key, storing its value in *value unless value is NULL, and retires
 * its node.  t: the caller's handle, online.  Lock-free, no allocation
 * needed.  Returns 0, ENOENT, or EINVAL for NULL m or t or an intrusive
 * map. */
QSBR_API int qsbr_hashmap_remove(qsbr_hashmap *m, qsbr_thread *t, uint64_t key, void **value);

/* Finds key and stores its value in *value unless value is NULL.  t: the
 * caller's handle, online.  Reads only: no store, no lock, no allocation.
 * Returns 0, ENOENT, or EINVAL for NULL m or t or an intrusive map. */
QSBR_API int qsbr_hashmap_lookup(const qsbr_hashmap *m, qsbr_thread *t, uint64_t key, void **value);

/* ---- Both kinds -------------------------------------------------------- */

/* Entries in m: exact when no update runs, else off by at most those that
 * overlap the call.  Any thread.  0 with errno EINVAL for NULL. */
QSBR_API size_t qsbr_hashmap_size(const qsbr_hashmap *m);

/* Buckets in m now (a power of two).  Any thread.  0 with errno EINVAL for
 * NULL. */
QSBR_API size_t qsbr_hashmap_buckets(const qsbr_hashmap *m);

/* Bytes m holds: its header and bucket segments, and for a keyed map its
 * pool's slabs (not what waits for a grace period in the core: that is in
 * qsbr_stats.pending_bytes).  An intrusive map's nodes are the caller's.
 * Any thread.  0 with errno EINVAL for NULL. */
QSBR_API size_t qsbr_hashmap_memory(const qsbr_hashmap *m);

#ifdef __cplusplus
}
#endif

#endif /* QSBR_HASHMAP_H */
