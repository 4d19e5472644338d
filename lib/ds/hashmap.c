/* SPDX-License-Identifier: MIT */
/*
 * hashmap.c: the hash map of qsbr/hashmap.h, a split-ordered list after
 * Shalev and Shavit ("Split-ordered lists: lock-free extensible hash
 * tables", JACM 2006).
 *
 * Every entry is in one sorted lock-free list (list.h), ordered by its hash
 * with the bits reversed.  A bucket is a shortcut into that list: a dummy
 * node whose order key is the bucket number reversed.  With 2^k buckets an
 * entry belongs to bucket (hash mod 2^k); in reversed order, the entries of
 * a bucket follow its dummy, and doubling the bucket count splits each
 * bucket's stretch of the list in two, in place.  Order keys on 8 bits, 4
 * buckets:
 *
 *   so    00000000 00100001 01000000 01100001 10000000 10100001 11000000
 *   node  dummy 0  h=000100 dummy 2  h=000110 dummy 1  h=000101 dummy 3
 *
 * An entry's order key is reverse(h | 2^63), odd; a dummy's reverse(b), even
 * (b < 2^63): a dummy precedes its bucket's entries and never equals one.
 * h is the user's hash (or the key) through a 64-bit finalizer, so the low
 * bits that pick the bucket depend on all the bits of the key.
 *
 * Rules, on top of list.h's L1-L5:
 *  H1 Growth moves nothing.  It is one CAS on log2.  A bucket gets its dummy
 *     lazily, at the first insert or remove that uses it.  The dummy lives in
 *     the bucket array, next to a state word: EMPTY, CLAIMED, READY.  The
 *     thread whose CAS takes the state from EMPTY to CLAIMED writes the
 *     dummy's order key, links it in the list from the parent bucket (b
 *     without its top bit), whose dummy precedes it, and stores READY with a
 *     release that the acquire loads of the state pair with: whoever sees
 *     READY sees a linked dummy.  Only the claimer links it, so a dummy is
 *     linked once.
 *  H2 Any ancestor will do.  While a bucket is not READY (not yet claimed,
 *     being linked by another thread, or its segment could not be
 *     allocated), calls start from the nearest READY ancestor, whose dummy
 *     precedes the bucket's entries too: a longer walk, still correct, and
 *     nobody waits for the claimer.  Lookups never claim: they write nothing,
 *     allocate nothing and never wait for a resize.  For the same reason log2
 *     is relaxed: a stale (smaller) value only starts a walk from an
 *     ancestor.
 *  H3 Nothing is freed while the map lives but entries, retired through
 *     libqsbr by whoever unlinks them (L3).  The bucket array is a directory
 *     of segments, allocated on first use (a release CAS into the directory,
 *     paired with acquire loads) and never moved; dummies are never deleted.
 *
 * Size: each thread handle adds to one of SHARDS counters (picked by hashing
 * the handle's address), so updates from different threads rarely share a
 * cache line.  Every CHECK_EVERY additions to a shard, the adder sums the
 * shards and doubles log2 as often as needed for at most LOAD entries per
 * bucket.
 */
#include "qsbr/hashmap.h"

#include "list.h"

#define LOAD 1       /* at most this many entries per bucket before a doubling */
#define MIN_LOG2 3   /* 8 buckets at least */
#define SEG0_LOG2 6  /* segment 0: buckets 0..63; segment s >= 1: [2^(s+5), 2^(s+6)) */
#if SIZE_MAX > UINT32_MAX
#define MAX_LOG2 56
#else
#define MAX_LOG2 26
#endif
#define NSEGS (MAX_LOG2 - SEG0_LOG2 + 1)
#define SHARDS 16
#define CHECK_EVERY 16

enum { EMPTY = 0, CLAIMED = 1, READY = 2 }; /* a bucket's state (H1) */

/* 24 bytes; zeroed memory is an EMPTY bucket (lock-free atomics, ds.h). */
struct bucket {
	struct list_node dummy;
	auptr state;
};

/* Entries added less entries removed through the handles of this shard,
 * modulo 2^64: one shard may go below zero, their sum does not (but for
 * the calls that overlap a reading). */
struct shard {
	alignas(DS_LINE) au64 n;
};

struct qsbr_hashmap {
	/* Read by every call; written when the map grows or gets a segment. */
	alignas(DS_LINE) au32 log2; /* 2^log2 buckets */
	qsbr_hashmap_hash_fn *hash; /* NULL: the key is its own hash */
	struct list_ctx ctx; /* key functions, the domain */
	auptr segs[NSEGS]; /* struct bucket *: segment s, or 0 */

	/* Memory accounting, written when a segment is made. */
	alignas(DS_LINE) au64 seg_bytes;

	struct shard count[SHARDS];
};

/* ---- Hashes and order keys ---------------------------------------------- */

/* A 64-bit finalizer (xor-shift-multiply, as in MurmurHash3's fmix64): a
 * bijection in which every output bit depends on every input bit. */
static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return x;
}

static inline uint64_t rev64(uint64_t x)
{
#if defined(__has_builtin)
#if __has_builtin(__builtin_bitreverse64)
	return __builtin_bitreverse64(x);
#endif
#endif
	x = ((x >> 1) & UINT64_C(0x5555555555555555)) | ((x & UINT64_C(0x5555555555555555)) << 1);
	x = ((x >> 2) & UINT64_C(0x3333333333333333)) | ((x & UINT64_C(0x3333333333333333)) << 2);
	x = ((x >> 4) & UINT64_C(0x0f0f0f0f0f0f0f0f)) | ((x & UINT64_C(0x0f0f0f0f0f0f0f0f)) << 4);
	x = ((x >> 8) & UINT64_C(0x00ff00ff00ff00ff)) | ((x & UINT64_C(0x00ff00ff00ff00ff)) << 8);
	x = ((x >> 16) & UINT64_C(0x0000ffff0000ffff)) | ((x & UINT64_C(0x0000ffff0000ffff)) << 16);
	return (x >> 32) | (x << 32);
}

/* Index of the highest set bit; b != 0. */
static inline unsigned top_bit(uint64_t b)
{
#if defined(__GNUC__)
	return 63u - (unsigned)__builtin_clzll(b);
#else
	unsigned i = 0;

	while (b >>= 1)
		i++;
	return i;
#endif
}

static inline uint64_t hash_of(const qsbr_hashmap *m, uint64_t key)
{
	return mix64(m->hash != NULL ? m->hash(key, m->ctx.arg) : key);
}

static inline uint64_t so_entry(uint64_t h)
{
	return rev64(h | (UINT64_C(1) << 63));
}

static inline uint64_t so_dummy(uint64_t b)
{
	return rev64(b);
}

static inline uint64_t parent_of(uint64_t b)
{
	return b & ~(UINT64_C(1) << top_bit(b));
}

/* H2: relaxed, any value of log2 is a correct start. */
static inline uint64_t bucket_of(const qsbr_hashmap *m, uint64_t h)
{
	return h & ((UINT64_C(1) << load_relaxed(&m->log2)) - 1);
}

/* ---- Buckets ---------------------------------------------------------- */

static inline unsigned seg_of(uint64_t b, uint64_t *index)
{
	unsigned top;

	if (b < (UINT64_C(1) << SEG0_LOG2)) {
		*index = b;
		return 0;
	}
	top = top_bit(b);
	*index = b - (UINT64_C(1) << top);
	return top - SEG0_LOG2 + 1;
}

static inline size_t seg_len(unsigned s)
{
	return (size_t)1 << (s == 0 ? SEG0_LOG2 : s + SEG0_LOG2 - 1);
}

/* Bucket b, or NULL when its segment does not exist (and, when alloc, could
 * not be allocated). */
static struct bucket *bucket_at(qsbr_hashmap *m, uint64_t b, bool alloc)
{
	uint64_t i;
	unsigned s = seg_of(b, &i);
	/* H3: acquire, pairs with the release CAS below: the segment's zeroed
	 * buckets are visible. */
	uintptr_t seg = load_acquire(&m->segs[s]);
	struct bucket *fresh;
	uintptr_t expected = 0;

	if (seg != 0 || !alloc)
		return seg != 0 ? &((struct bucket *)seg)[i] : NULL;
	fresh = ds_alloc_zeroed(m->ctx.domain, seg_len(s), sizeof(struct bucket),
				alignof(struct bucket));
	if (fresh == NULL)
		return NULL;
	/* H3: release publishes the zeroed buckets; pairs with the acquire
	 * load above.  Failure (acquire): another thread's segment won; use
	 * it. */
	if (!cas_strong_acq_rel_acquire(&m->segs[s], &expected, (uintptr_t)fresh)) {
		qsbr__domain_free(m->ctx.domain, fresh); /* never published */
		return &((struct bucket *)expected)[i];
	}
	fetch_add_relaxed(&m->seg_bytes, seg_len(s) * sizeof(struct bucket));
	return &fresh[i];
}

static inline bool bucket_ready(const struct bucket *bk)
{
	/* H1: acquire, pairs with the release store of READY in bucket_start:
	 * the dummy is linked and its fields are visible. */
	return bk != NULL && load_acquire(&bk->state) == READY;
}

/* H2: where a lookup for bucket b starts: its dummy, or the nearest READY
 * ancestor's.  Reads only. */
static const struct list_node *bucket_peek(const qsbr_hashmap *m, uint64_t b)
{
	for (;;) {
		const struct bucket *bk = bucket_at((qsbr_hashmap *)m, b, false);

		if (bucket_ready(bk))
			return &bk->dummy;
		b = parent_of(b); /* b != 0: bucket 0 is READY from the start */
	}
}

/* H1, H2: where an update for bucket b starts: its dummy, linked now if
 * nobody has claimed it yet, else the nearest READY ancestor's. */
static struct list_node *bucket_start(qsbr_hashmap *m, qsbr_thread *t, uint64_t b)
{
	struct bucket *bk = bucket_at(m, b, true);
	struct list_node *parent;
	uintptr_t state = EMPTY;

	if (bucket_ready(bk))
		return &bk->dummy;
	parent = bucket_start(m, t, parent_of(b)); /* b != 0, as above */
	/* H1: relaxed, the claim publishes nothing: only the claimer touches
	 * the dummy until it stores READY. */
	if (bk == NULL || !cas_strong_relaxed(&bk->state, &state, CLAIMED))
		return parent;
	bk->dummy.so = so_dummy(b);
	if (list_insert(&parent->next, &bk->dummy, false, 0, &m->ctx, t) != NULL)
		abort(); /* a second dummy with this order key: cannot happen (H1) */
	/* H1: release, pairs with the acquire load in bucket_ready: the dummy
	 * is linked (list_insert's CAS comes first) and its fields written. */
	store_release(&bk->state, READY);
	return &bk->dummy;
}

/* ---- Size and growth ---------------------------------------------------- */

static uint64_t entries(const qsbr_hashmap *m)
{
	uint64_t n = 0;

	for (int i = 0; i < SHARDS; i++)
		n += load_relaxed(&m->count[i].n);
	return n <= (uint64_t)INT64_MAX ? n : 0; /* below zero: removes counted first */
}

static void grow_check(qsbr_hashmap *m)
{
	uint64_t n = entries(m);
	unsigned log2 = load_relaxed(&m->log2), want = log2;

	while (want < MAX_LOG2 && n > ((uint64_t)LOAD << want))
		want++;
	/* H2: relaxed, log2 publishes nothing. */
	while (want > log2 && !cas_weak_relaxed(&m->log2, &log2, want))
		;
}

/* One entry more (add) or less. */
static void count_add(qsbr_hashmap *m, const qsbr_thread *t, bool add)
{
	uint64_t h = (uint64_t)(uintptr_t)t * UINT64_C(0x9e3779b97f4a7c15);
	au64 *n = &m->count[h >> 60].n; /* SHARDS == 16 */

	if (!add)
		fetch_sub_relaxed(n, 1);
	else if ((fetch_add_relaxed(n, 1) + 1) % CHECK_EVERY == 0)
		grow_check(m);
}

_Static_assert(SHARDS == 16, "count_add picks a shard with the top 4 bits");

/* ---- Calls ---------------------------------------------------------------- */

qsbr_hashmap *qsbr_hashmap_new(qsbr_domain *d, size_t size_hint, qsbr_hashmap_hash_fn *hash,
			       qsbr_hashmap_equal_fn *equal, void *arg)
{
	qsbr_hashmap *m;
	struct bucket *seg0;
	unsigned log2 = MIN_LOG2;

	if (equal != NULL && hash == NULL) {
		errno = EINVAL;
		return NULL;
	}
	m = ds_header_new(d, sizeof(*m));
	if (m == NULL)
		return NULL;
	seg0 = ds_alloc_zeroed(d, seg_len(0), sizeof(struct bucket), alignof(struct bucket));
	if (seg0 == NULL) {
		qsbr__domain_free(d, m);
		errno = ENOMEM;
		return NULL;
	}
	/* Up to 2^32 buckets from the hint; beyond, growth decides. */
	while (log2 < MAX_LOG2 && log2 < 32 && ((uint64_t)1 << log2) < (uint64_t)size_hint)
		log2++;
	store_relaxed(&m->log2, log2);
	m->hash = hash;
	m->ctx.equal = equal;
	m->ctx.arg = arg;
	m->ctx.domain = d;
	for (int s = 0; s < NSEGS; s++)
		store_relaxed(&m->segs[s], 0);
	/* Bucket 0's dummy starts the list. */
	seg0[0].dummy.so = so_dummy(0);
	store_relaxed(&seg0[0].dummy.next, 0);
	store_relaxed(&seg0[0].state, READY);
	store_relaxed(&m->segs[0], (uintptr_t)seg0);
	store_relaxed(&m->seg_bytes, seg_len(0) * sizeof(struct bucket));
	for (int i = 0; i < SHARDS; i++)
		store_relaxed(&m->count[i].n, 0);
	return m;
}

int qsbr_hashmap_delete(qsbr_hashmap *m, void (*fn)(uint64_t key, void *value, void *arg), void *arg)
{
	uintptr_t v;

	if (m == NULL)
		return EINVAL;
	/* No call runs any more: relaxed loads, and plain frees of the entries
	 * still linked (an entry is retired only by whoever unlinked it).  The
	 * dummies live in the segments. */
	v = load_relaxed(&((struct bucket *)load_relaxed(&m->segs[0]))->dummy.next);
	while (v != 0) {
		struct list_node *n = list_ptr(v);

		v = load_relaxed(&n->next);
		if (n->so & 1) { /* an entry; marked: removed, its value returned */
			struct list_entry *e = list_entry_of(n);

			if (fn != NULL && !(v & LIST_MARK))
				fn(e->key, load_relaxed(&e->value), arg);
			qsbr__domain_free(m->ctx.domain, e);
		}
		v &= ~LIST_MARK;
	}
	for (int s = 0; s < NSEGS; s++) {
		void *seg = (void *)load_relaxed(&m->segs[s]);

		if (seg != NULL)
			qsbr__domain_free(m->ctx.domain, seg);
	}
	qsbr__domain_free(m->ctx.domain, m);
	return 0;
}

int qsbr_hashmap_insert(qsbr_hashmap *m, qsbr_thread *t, uint64_t key, void *value)
{
	struct list_entry *e;
	struct list_node *start;
	uint64_t h;

	if (m == NULL || t == NULL)
		return EINVAL;
	h = hash_of(m, key);
	/* First: on ENOMEM nothing has changed. */
	e = list_entry_new(m->ctx.domain, so_entry(h), key, value);
	if (e == NULL)
		return ENOMEM;
	start = bucket_start(m, t, bucket_of(m, h));
	if (list_insert(&start->next, &e->node, true, key, &m->ctx, t) != NULL) {
		qsbr__domain_free(m->ctx.domain, e); /* never published */
		return EEXIST;
	}
	count_add(m, t, true);
	return 0;
}

int qsbr_hashmap_remove(qsbr_hashmap *m, qsbr_thread *t, uint64_t key, void **value)
{
	struct list_node *start;
	uint64_t h;
	void *v;

	if (m == NULL || t == NULL)
		return EINVAL;
	h = hash_of(m, key);
	start = bucket_start(m, t, bucket_of(m, h));
	if (!list_remove(&start->next, so_entry(h), key, &m->ctx, t, &v))
		return ENOENT;
	if (value != NULL)
		*value = v;
	count_add(m, t, false);
	return 0;
}

int qsbr_hashmap_lookup(const qsbr_hashmap *m, qsbr_thread *t, uint64_t key, void **value)
{
	uint64_t h;
	void *v;

	if (m == NULL || t == NULL)
		return EINVAL;
	h = hash_of(m, key);
	if (!list_lookup(&bucket_peek(m, bucket_of(m, h))->next, so_entry(h), key, &m->ctx, &v))
		return ENOENT;
	if (value != NULL)
		*value = v;
	return 0;
}

size_t qsbr_hashmap_size(const qsbr_hashmap *m)
{
	if (m == NULL) {
		errno = EINVAL;
		return 0;
	}
	return (size_t)entries(m);
}

size_t qsbr_hashmap_buckets(const qsbr_hashmap *m)
{
	if (m == NULL) {
		errno = EINVAL;
		return 0;
	}
	return (size_t)1 << load_relaxed(&m->log2);
}

size_t qsbr_hashmap_memory(const qsbr_hashmap *m)
{
	if (m == NULL) {
		errno = EINVAL;
		return 0;
	}
	return sizeof(*m) + (size_t)load_relaxed(&m->seg_bytes) +
	       (size_t)entries(m) * sizeof(struct list_entry);
}
