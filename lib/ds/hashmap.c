/* SPDX-License-Identifier: MIT */
/*
 * hashmap.c: the hash map of qsbr/hashmap.h, a split-ordered list after
 * Shalev and Shavit ("Split-ordered lists: lock-free extensible hash
 * tables", JACM 2006), on Harris's list with Michael's search (the same list
 * as list.h, here over the caller's nodes).
 *
 * Every entry is in one sorted lock-free list, ordered by its hash with the
 * bits reversed.  A bucket is a shortcut into that list: a dummy node whose
 * order key is the bucket number reversed.  With 2^k buckets an entry belongs
 * to bucket (hash mod 2^k); in reversed order, the entries of a bucket follow
 * its dummy, and doubling the bucket count splits each bucket's stretch of
 * the list in two, in place.  Order keys on 8 bits, 4 buckets:
 *
 *   so    00000000 00100001 01000000 01100001 10000000 10100001 11000000
 *   node  dummy 0  h=000100 dummy 2  h=000110 dummy 1  h=000101 dummy 3
 *
 * An entry's order key is reverse(h | 2^63), odd; a dummy's reverse(b), even
 * (b < 2^63): a dummy precedes its bucket's entries and never equals one.
 * Intrusive maps take h as the caller gives it; keyed maps pass the key (or
 * the user's hash of it) through a 64-bit finalizer first.
 *
 * A link is the next node's address with two flags in its low bits: MARK,
 * in a node's own link once the node is deleted (Harris), and READY, in a
 * dummy's own link once the dummy is linked (H1).  Every CAS on a link
 * expects the whole word it read and keeps READY; MARK freezes the word.
 *
 * Rules (the list's own are list.h's L1, L2 and L4, unchanged):
 *  M1 Removal.  A node leaves in two steps: the mark in its link (where the
 *     removing call takes effect), then a CAS that swings its predecessor's
 *     link past it, by the marker or by any update that walks past it.  No
 *     walker retires what it unlinks: the marker does not return until the
 *     node is unlinked (it unlinks it itself, or walks past its place: a
 *     walk that reaches beyond a node's order key without meeting it proves
 *     it unlinked, since every link a walk follows held its next node while
 *     in the list), and then the node is the caller's to retire (intrusive)
 *     or the keyed layer's (it goes back to the pool, qsbr_pool_retire).
 *  M2 Replace.  One CAS on the old node's link writes new | MARK: the old
 *     node is deleted and its frozen link leads to the new one, which took
 *     its successor; a walk that finds the old node marked goes on to the
 *     new one, so some entry with the key is present at every moment.
 *  M3 Starts.  A walk of an update starts from a bucket's dummy; if that
 *     dummy's link is found marked (H4: the bucket is going away), the walk
 *     starts again from the bucket found anew, an ancestor.
 *
 *  H1 Growth moves nothing.  It is one CAS on log2.  A bucket gets its dummy
 *     lazily, at the first update that uses it.  A bucket is the dummy
 *     itself, 16 bytes: so 0 and link 0 is EMPTY (bucket 0, whose order key
 *     is 0, is READY from the start).  The thread whose relaxed CAS takes so
 *     from 0 to the dummy's order key links it from the parent bucket (b
 *     without its top bit), whose dummy precedes it, then sets READY in the
 *     dummy's link with a release CAS that the acquire loads of the link pair
 *     with: whoever sees READY sees a linked dummy.  Only the claimer links
 *     it, so a dummy is linked once.
 *  H2 Any ancestor will do.  While a bucket is not READY (not yet claimed,
 *     being linked by another thread, its segment missing or going away),
 *     calls start from the nearest READY ancestor, whose dummy precedes the
 *     bucket's entries too: a longer walk, still correct, and nobody waits
 *     for the claimer.  Lookups never claim: they write nothing, allocate
 *     nothing and never wait for a resize.  For the same reason log2 is
 *     relaxed: any value is a correct start.  So a segment that cannot be
 *     allocated costs walks, never a failure.
 *  H3 Segments.  The bucket array is a directory of segments, allocated on
 *     first use (a release CAS into the directory, paired with acquire
 *     loads).  Segment 0 holds buckets 0..63, segment s >= 1 the buckets
 *     [2^(s+5), 2^(s+6)): those that exist only while log2 >= s + 6.
 *  H4 Shrinking.  One thread at a time (the shrink word) lowers log2 from k
 *     to k - 1 and takes a goal; no segment of level k may be used by a
 *     grow until it is done (a grow calls off a shrink that still waits
 *     for its goal: nothing changed yet but log2).  Once the goal is
 *     passed (qsbr_poll, at a later remove of any thread), no call that read the old log2 runs
 *     any more, so nobody starts from a bucket of level k or claims one:
 *     each of those READY dummies is marked (M1) and unlinked by a walk from
 *     its parent; then the segment leaves the directory and is retired
 *     whole: walkers that passed a dummy of it hold it until their next
 *     quiescent state.
 *  H5 Sweeping.  Lookups walk from an ancestor while a bucket has no dummy
 *     (H2), twice as far per missing level: after a doubling, until updates
 *     have used every new bucket.  So each growth check of an add also
 *     links the dummies of the next SWEEP buckets not yet swept (the swept
 *     word, a cursor that only CASes forward, lowered by a shrink), and the
 *     buckets of a grown map get their dummies after about as many adds as
 *     there are new buckets: well before the next doubling.
 *
 * Size: each thread handle adds to one of SHARDS counters (picked by hashing
 * the handle's address), so updates from different threads rarely share a
 * cache line.  Every CHECK_EVERY additions to a shard, the adder sums the
 * shards and doubles log2 as often as needed for at most load entries per
 * bucket; every CHECK_EVERY removals, the remover looks at shrinking.
 */
#include "qsbr/hashmap.h"
#include "qsbr/pool.h"

#include "ds.h"

#define LOAD_DEFAULT 2 /* at most this many entries per bucket before a doubling */
#define LOAD_MAX 64
#define MIN_LOG2 3     /* 8 buckets at least */
#define SEG0_LOG2 6    /* segment 0: buckets 0..63 (H3) */
#if SIZE_MAX > UINT32_MAX
#define MAX_LOG2 56
#else
#define MAX_LOG2 26
#endif
#define NSEGS (MAX_LOG2 - SEG0_LOG2 + 1)
#define SHARDS 16
#define CHECK_EVERY 16
#define SWEEP 32 /* buckets a check links (H5) */

#define MARK ((uintptr_t)1)  /* in a node's own link: deleted (M1) */
#define READY ((uintptr_t)2) /* in a dummy's own link: linked (H1) */
#define FLAGS (MARK | READY)

enum { SHRINK_IDLE = 0, SHRINK_WAITING = 1, SHRINK_WORKING = 2 }; /* H4 */

/* The map's part of a node, at the start of qsbr_hashmap_node; a bucket is
 * one (its dummy; zeroed memory is an EMPTY bucket, lock-free atomics). */
struct mnode {
	auptr next; /* the next node | MARK | READY */
	au64 so;    /* order key */
};

_Static_assert(offsetof(qsbr_hashmap_node, link_) == 0 &&
		       offsetof(qsbr_hashmap_node, order_) == offsetof(struct mnode, so) &&
		       sizeof(qsbr_hashmap_node) >= sizeof(struct mnode) &&
		       alignof(qsbr_hashmap_node) >= alignof(struct mnode),
	       "qsbr_hashmap_node starts with the map's node");

/* A keyed map's entry (from its pool): 32 bytes. */
struct entry {
	struct mnode node;
	uint64_t key;
	void *value; /* written before the entry is linked, never after */
};

/* In front of every segment's buckets: how it goes back (H4). */
struct seg_head {
	qsbr_node qn;
	qsbr_domain *d;
	size_t bytes;
};

_Static_assert(sizeof(struct seg_head) % alignof(struct mnode) == 0, "buckets follow the head");

/* Entries added less entries removed through the handles of this shard,
 * modulo 2^64: one shard may go below zero, their sum does not (but for
 * the calls that overlap a reading). */
struct shard {
	alignas(DS_LINE) au64 n;
};

struct qsbr_hashmap {
	/* Read by every call; written when the map resizes or gets a segment. */
	alignas(DS_LINE) au32 log2; /* 2^log2 buckets */
	bool keyed;
	qsbr_hashmap_hash_fn *hash; /* keyed: NULL, the key is its own hash */
	qsbr_hashmap_equal_fn *equal; /* keyed: NULL, integers */
	void *arg;
	qsbr_domain *d;
	qsbr_pool *pool; /* keyed: the entries */
	auptr segs[NSEGS]; /* struct mnode *: segment s's buckets, or 0 */

	/* Resize policy (qsbr_hashmap_resize_policy; relaxed: hints). */
	alignas(DS_LINE) au32 load, min_log2, max_log2, shrink;

	/* H4: the shrink in progress, written by the thread that runs it. */
	au32 shrink_state;
	au32 shrink_level; /* the log2 being taken away */
	au64 shrink_goal;
	au64 seg_bytes;
	au64 swept; /* H5: buckets below this one were swept */

	struct shard count[SHARDS];
};

/* What a walk looks for: the order key, and in its run the entry for which
 * match(node, key) holds; match NULL: the place past the run (M1) or, for a
 * dummy's order key, where the dummy goes. */
struct mkey {
	uint64_t so;
	qsbr_hashmap_match_fn *match;
	const void *key;
};

/* Where a walk stopped: the link prev held raw (unmarked), which points to
 * cur (or NULL). */
struct pos {
	auptr *prev;
	uintptr_t raw;
	struct mnode *cur;
};

/* ---- Hashes and order keys ---------------------------------------------- */

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

static inline struct mnode *ptr_of(uintptr_t v)
{
	return (struct mnode *)(v & ~FLAGS);
}

static inline struct mnode *mnode_of(const qsbr_hashmap_node *n)
{
	return (struct mnode *)(void *)(uintptr_t)n;
}

static inline qsbr_hashmap_node *public_of(struct mnode *n)
{
	return (qsbr_hashmap_node *)(void *)n;
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

static inline struct seg_head *head_of_seg(uintptr_t seg)
{
	return (struct seg_head *)(void *)seg - 1;
}

/* A zeroed segment s (its buckets EMPTY) behind its head, or NULL. */
static struct mnode *seg_new(qsbr_domain *d, unsigned s)
{
	size_t bytes = sizeof(struct seg_head) + seg_len(s) * sizeof(struct mnode);
	struct seg_head *h = ds_alloc_zeroed(d, 1, bytes, alignof(struct seg_head));

	if (h == NULL)
		return NULL;
	h->d = d;
	h->bytes = bytes;
	return (struct mnode *)(void *)(h + 1);
}

static void seg_free(qsbr_node *qn)
{
	struct seg_head *h = ds_container_of(qn, struct seg_head, qn);

	qsbr__domain_free(h->d, h);
}

/* Bucket b, or NULL when its segment does not exist (and, when alloc, could
 * not be allocated: H2). */
static struct mnode *bucket_at(const qsbr_hashmap *m, uint64_t b, bool alloc)
{
	qsbr_hashmap *w = (qsbr_hashmap *)(uintptr_t)m; /* written only when alloc */
	uint64_t i;
	unsigned s = seg_of(b, &i);
	/* H3: acquire, pairs with the release CAS below: the segment's zeroed
	 * buckets are visible. */
	uintptr_t seg = load_acquire(&w->segs[s]);
	struct mnode *fresh;
	uintptr_t expected = 0;

	if (seg != 0 || !alloc)
		return seg != 0 ? &((struct mnode *)seg)[i] : NULL;
	fresh = seg_new(m->d, s);
	if (fresh == NULL)
		return NULL;
	/* H3: release publishes the zeroed buckets; pairs with the acquire
	 * load above.  Failure (acquire): another thread's segment won; use
	 * it. */
	if (!cas_strong_acq_rel_acquire(&w->segs[s], &expected, (uintptr_t)fresh)) {
		qsbr__domain_free(m->d, head_of_seg((uintptr_t)fresh)); /* never published */
		return &((struct mnode *)expected)[i];
	}
	fetch_add_relaxed(&w->seg_bytes, head_of_seg((uintptr_t)fresh)->bytes);
	return &fresh[i];
}

static inline bool bucket_ready(struct mnode *bk)
{
	/* H1: acquire, pairs with the release CAS that set READY in
	 * bucket_start: the dummy is linked and its fields are visible. */
	return bk != NULL && (load_acquire(&bk->next) & FLAGS) == READY;
}

/* H2: where a lookup for bucket b starts: its dummy, or the nearest READY
 * ancestor's.  Reads only. */
static struct mnode *bucket_peek(const qsbr_hashmap *m, uint64_t b)
{
	for (;;) {
		struct mnode *bk = bucket_at(m, b, false);

		if (bucket_ready(bk))
			return bk;
		b = parent_of(b); /* b != 0: bucket 0 is READY from the start */
	}
}

static struct mnode *link_node(qsbr_hashmap *m, qsbr_thread *t, uint64_t b, const struct mkey *k,
			       struct mnode *n, struct pos *at);

/* H1, H2: where an update for bucket b starts: its dummy, linked now if
 * nobody has claimed it yet, else the nearest READY ancestor's. */
static struct mnode *bucket_start(qsbr_hashmap *m, qsbr_thread *t, uint64_t b)
{
	struct mnode *bk = bucket_at(m, b, true);
	uint64_t expected = 0;
	uintptr_t raw;

	if (bucket_ready(bk))
		return bk;
	/* H1: relaxed, the claim publishes nothing: only the claimer touches
	 * the dummy until it sets READY. */
	if (bk == NULL || !cas_strong_relaxed(&bk->so, &expected, so_dummy(b)))
		return bucket_start(m, t, parent_of(b)); /* b != 0, as above */
	if (link_node(m, t, parent_of(b), &(struct mkey){ so_dummy(b), NULL, NULL }, bk, &(struct pos){ 0 }) !=
	    NULL)
		abort(); /* a second dummy with this order key: cannot happen (H1) */
	/* H1: release, pairs with the acquire load in bucket_ready: the dummy
	 * is linked (link_node's CAS comes first).  Failure: an insert behind
	 * the dummy changed its link; keep that. */
	raw = load_relaxed(&bk->next);
	while (!cas_weak_release_relaxed(&bk->next, &raw, raw | READY))
		;
	return bk;
}

/* ---- The list ------------------------------------------------------------ */

/*
 * Michael's search, from bucket b's start (M3).  Unlinks the marked nodes it
 * passes (M1: without retiring them) and starts over when such a CAS fails.
 * Returns the node matching k in the run of k->so, or NULL; either way *pos
 * is where a node of k->so goes (in front of its run, or past the run when
 * k->match is NULL).
 */
static struct mnode *walk(qsbr_hashmap *m, qsbr_thread *t, uint64_t b, const struct mkey *k,
			  struct pos *pos)
{
	struct pos run;
	auptr *prev;
	uintptr_t raw;

retry:
	prev = &bucket_start(m, t, b)->next;
	run.prev = NULL;
	/* L1: acquire, pairs with the release CAS that linked the first node. */
	raw = load_acquire(prev);
	if (raw & MARK)
		goto retry; /* M3: the bucket is going away */
	for (;;) {
		struct mnode *cur = ptr_of(raw);
		uintptr_t next;
		uint64_t so;

		if (cur == NULL) {
			*pos = (struct pos){ prev, raw, NULL };
			break;
		}
		/* L1: acquire, pairs with the release CAS that last wrote
		 * cur->next (the mark continues its release sequence). */
		next = load_acquire(&cur->next);
		if (next & MARK) {
			uintptr_t expected = raw, past = (next & ~FLAGS) | (raw & READY);

			/* L1, M1: unlink cur.  Release: the successor's fields,
			 * visible to us through the acquire above, become
			 * visible to whoever loads *prev next; pairs with the
			 * acquire loads of links.  Failure: *prev moved or got
			 * marked; start over. */
			if (!cas_strong_release_relaxed(prev, &expected, past))
				goto retry;
			raw = past;
			continue;
		}
		so = load_relaxed(&cur->so); /* written before the link we read (L1) */
		if (so > k->so) {
			*pos = (struct pos){ prev, raw, cur };
			break;
		}
		if (so == k->so && k->match != NULL) {
			if (run.prev == NULL)
				run = (struct pos){ prev, raw, cur };
			if (k->match(public_of(cur), k->key)) {
				*pos = (struct pos){ prev, raw, cur };
				return cur;
			}
		}
		prev = &cur->next;
		raw = next;
	}
	if (run.prev != NULL)
		*pos = run;
	return NULL;
}

/* Links n (its so and object written) in front of the run of k->so, unless
 * the run holds a match for k; returns NULL once linked, else the match (n
 * then stays the caller's, never published) with *at the link that held
 * it, as walk leaves it. */
static struct mnode *link_node(qsbr_hashmap *m, qsbr_thread *t, uint64_t b, const struct mkey *k,
			       struct mnode *n, struct pos *at)
{
	for (;;) {
		struct mnode *found = walk(m, t, b, k, at);
		uintptr_t expected = at->raw;

		if (found != NULL)
			return found;
		/* Relaxed: n is not published yet; the CAS below does that. */
		store_relaxed(&n->next, (uintptr_t)at->cur);
		/* L1: release publishes n's fields and the caller's object;
		 * pairs with the acquire loads of links.  Failure: the run's
		 * front changed; search again. */
		if (cas_strong_release_relaxed(at->prev, &expected, (uintptr_t)n | (at->raw & READY)))
			return NULL;
	}
}

/* M1: after cur's mark, with *pos the link that held it: unlinks cur, or
 * walks past its place, so that it is out of the list on return. */
static void unlink_marked(qsbr_hashmap *m, qsbr_thread *t, uint64_t b, const struct pos *pos,
			  uintptr_t past)
{
	uintptr_t expected = pos->raw;
	struct pos after;

	/* L1, M1: as the unlink in walk. */
	if (!cas_strong_release_relaxed(pos->prev, &expected, (past & ~FLAGS) | (pos->raw & READY)))
		walk(m, t, b, &(struct mkey){ load_relaxed(&pos->cur->so), NULL, NULL }, &after);
}

/* M1, M2: marks cur (found at *pos), its link then pointing to repl (NULL:
 * to its successor), and takes it out of the list.  false when another
 * call marked it first. */
static bool take_out(qsbr_hashmap *m, qsbr_thread *t, uint64_t b, const struct pos *pos,
		     struct mnode *repl)
{
	/* L1: acquire, pairs with the release CAS that wrote cur->next. */
	uintptr_t next = load_acquire(&pos->cur->next);

	while (!(next & MARK)) {
		uintptr_t want = repl != NULL ? (uintptr_t)repl : next;

		if (repl != NULL) /* not published yet: the CAS below does it */
			store_relaxed(&repl->next, next);
		/* L2, M2: the mark freezes cur->next.  Release: publishes repl's
		 * fields to walkers that acquire cur->next (L1); acquire, on
		 * failure too: the successor we hand on was published to us.
		 * Weak: a spurious failure tries again. */
		if (cas_weak_acq_rel_acquire(&pos->cur->next, &next, want | MARK)) {
			unlink_marked(m, t, b, pos, want);
			return true;
		}
	}
	return false;
}

/* L4: the entry matching k, present at some moment during the call.  Reads
 * only: it follows marked nodes' frozen links and never starts over. */
static struct mnode *lookup(const qsbr_hashmap *m, uint64_t b, const struct mkey *k)
{
	/* L1: acquire, pairs with the release CAS that linked the node. */
	uintptr_t raw = load_acquire(&bucket_peek(m, b)->next);

	for (;;) {
		struct mnode *cur = ptr_of(raw);
		uintptr_t next;
		uint64_t so;

		if (cur == NULL || (so = load_relaxed(&cur->so)) > k->so)
			return NULL;
		/* L1: as above, for the node after cur. */
		next = load_acquire(&cur->next);
		if (so == k->so && !(next & MARK) && k->match(public_of(cur), k->key))
			return cur;
		raw = next;
	}
}

/* The first entry at or after the node raw points to, unmarked when seen
 * (iteration: dummies have even order keys). */
static struct mnode *entry_from(uintptr_t raw)
{
	for (;;) {
		struct mnode *cur = ptr_of(raw);
		uintptr_t next;

		if (cur == NULL)
			return NULL;
		/* L1: acquire, pairs with the release CAS that wrote the
		 * link. */
		next = load_acquire(&cur->next);
		if ((load_relaxed(&cur->so) & 1) && !(next & MARK))
			return cur;
		raw = next;
	}
}

/* ---- Size, growth and shrinking ----------------------------------------- */

static uint64_t entries(const qsbr_hashmap *m)
{
	uint64_t n = 0;

	for (int i = 0; i < SHARDS; i++)
		n += load_relaxed(&m->count[i].n);
	return n <= (uint64_t)INT64_MAX ? n : 0; /* below zero: removes counted first */
}

/* H1, H4: log2 up to what n entries need, within the policy, and below the
 * level a shrink in progress takes away. */
static void grow_to(qsbr_hashmap *m, uint64_t n)
{
	/* H4: acquire, pairs with the release CAS of a shrink on log2: seeing
	 * its value, we see its state and level below. */
	unsigned log2 = load_acquire(&m->log2);

	for (;;) {
		unsigned max = load_relaxed(&m->max_log2), min = load_relaxed(&m->min_log2), want = log2;
		uint64_t load = load_relaxed(&m->load);

		uint32_t state = load_relaxed(&m->shrink_state);

		while (want < max && n > (load << want))
			want++;
		if (want < min && min <= max)
			want = min;
		if (want <= log2)
			return;
		/* H4: a shrink waiting for its goal has changed nothing but
		 * log2: call it off.  Relaxed: the log2 CAS below orders. */
		if (state == SHRINK_WAITING && cas_strong_relaxed(&m->shrink_state, &state, SHRINK_IDLE))
			state = SHRINK_IDLE;
		if (state != SHRINK_IDLE && load_relaxed(&m->shrink_level) - 1 < want)
			want = load_relaxed(&m->shrink_level) - 1; /* dismantling: stay below */
		if (want <= log2)
			return;
		/* H2: log2 publishes nothing (release: the helper's form).
		 * H4: acquire on failure, as the load above; then look at
		 * the shrink again. */
		if (cas_weak_release_acquire(&m->log2, &log2, want))
			return;
	}
}

/* H4: takes the dummies of level k out of the list and retires their
 * segment.  Only the thread that set SHRINK_WORKING. */
static void shrink_level(qsbr_hashmap *m, qsbr_thread *t, unsigned k)
{
	unsigned s = k - SEG0_LOG2; /* buckets [2^(k-1), 2^k) */
	uintptr_t seg;
	struct mnode *bk;

	if (k <= SEG0_LOG2)
		return; /* in segment 0, which stays: the dummies stay too */
	/* H3: acquire, pairs with the release CAS in bucket_at. */
	seg = load_acquire(&m->segs[s]);
	if (seg == 0)
		return;
	bk = (struct mnode *)seg;
	for (size_t i = 0; i < seg_len(s); i++) {
		uint64_t b = ((uint64_t)1 << (k - 1)) + i;
		uintptr_t raw;
		struct pos after;

		/* After the goal every claim is complete (H4): a bucket is
		 * EMPTY (so 0) or READY. */
		if (load_relaxed(&bk[i].so) == 0)
			continue;
		/* L1: acquire, pairs with the release CAS that wrote it. */
		raw = load_acquire(&bk[i].next);
		/* M1: mark the dummy.  Acquire, on failure too: pairs with
		 * the release CAS of an insert behind the dummy, whose node
		 * the unlink below hands on (L1).  Weak: a spurious failure
		 * tries again. */
		while (!(raw & MARK) && !cas_weak_acquire(&bk[i].next, &raw, raw | MARK))
			;
		walk(m, t, parent_of(b), &(struct mkey){ so_dummy(b), NULL, NULL }, &after);
	}
	/* H4: relaxed, nobody looks the segment up any more (the goal); the
	 * retire hands it to the core with everything written before. */
	store_relaxed(&m->segs[s], 0);
	fetch_sub_relaxed(&m->seg_bytes, head_of_seg(seg)->bytes);
	qsbr_retire_node_sized(t, &head_of_seg(seg)->qn, seg_free, head_of_seg(seg)->bytes);
}

/* H4: at a remove's check: finish a shrink whose goal is passed, or start
 * one (the entries are counted only when a shrink could start). */
static void shrink_check(qsbr_hashmap *m, qsbr_thread *t)
{
	/* H4: acquire, pairs with the release store of SHRINK_WAITING: the
	 * goal and level are visible. */
	uint32_t state = load_acquire(&m->shrink_state);
	uint64_t swept;
	unsigned log2;

	if (state == SHRINK_WAITING) {
		if (!qsbr_poll(t, load_relaxed(&m->shrink_goal)) ||
		    !cas_strong_relaxed(&m->shrink_state, &state, SHRINK_WORKING))
			return;
		shrink_level(m, t, load_relaxed(&m->shrink_level));
		/* H4: release, pairs with the acquire load above and with
		 * the CAS below: the segment is out before another shrink. */
		store_release(&m->shrink_state, SHRINK_IDLE);
		return;
	}
	log2 = load_relaxed(&m->log2);
	if (state != SHRINK_IDLE || !load_relaxed(&m->shrink) || log2 <= load_relaxed(&m->min_log2) ||
	    entries(m) >= ((uint64_t)load_relaxed(&m->load) << log2) / 4)
		return;
	/* H4: acquire, pairs with the release store of SHRINK_IDLE: the last
	 * shrink's segment is out of the directory. */
	if (!cas_strong_acquire(&m->shrink_state, &state, SHRINK_WORKING))
		return;
	store_relaxed(&m->shrink_level, log2);
	/* H4: release, pairs with the acquire loads of log2 in grow_to: a
	 * grow that sees the smaller log2 sees the level it must stay below.
	 * Failure: a grow came first; try at a later check. */
	if (!cas_strong_release_relaxed(&m->log2, &log2, log2 - 1)) {
		store_release(&m->shrink_state, SHRINK_IDLE); /* pairs as above */
		return;
	}
	/* H5: the buckets taken away are to be swept again if the map
	 * grows back.  Relaxed, as in sweep. */
	swept = load_relaxed(&m->swept);
	while (swept > (UINT64_C(1) << (log2 - 1)) &&
	       !cas_weak_relaxed(&m->swept, &swept, UINT64_C(1) << (log2 - 1)))
		;
	store_relaxed(&m->shrink_goal, qsbr_advance(m->d));
	/* H4: release, pairs with the acquire load at the top. */
	store_release(&m->shrink_state, SHRINK_WAITING);
}

/* H5: links the dummies of the next SWEEP buckets not swept yet. */
static void sweep(qsbr_hashmap *m, qsbr_thread *t)
{
	uint64_t size = UINT64_C(1) << load_relaxed(&m->log2);
	uint64_t lo = load_relaxed(&m->swept);

	/* H5: relaxed, the cursor publishes nothing (bucket_start does). */
	do {
		if (lo >= size)
			return;
	} while (!cas_weak_relaxed(&m->swept, &lo, lo + SWEEP));
	for (uint64_t b = lo; b < lo + SWEEP && b < size; b++)
		bucket_start(m, t, b);
}

/* One entry more (add) or less. */
static void count_add(qsbr_hashmap *m, qsbr_thread *t, bool add)
{
	uint64_t h = (uint64_t)(uintptr_t)t * UINT64_C(0x9e3779b97f4a7c15);
	au64 *n = &m->count[h >> 60].n; /* SHARDS == 16 */

	if (add) {
		if ((fetch_add_relaxed(n, 1) + 1) % CHECK_EVERY == 0) {
			grow_to(m, entries(m));
			sweep(m, t);
		}
	} else if ((fetch_sub_relaxed(n, 1) - 1) % CHECK_EVERY == 0) {
		shrink_check(m, t);
	}
}

_Static_assert(SHARDS == 16, "count_add picks a shard with the top 4 bits");

/* ---- Maps ------------------------------------------------------------- */

static unsigned log2_for(size_t n, unsigned min, unsigned max)
{
	unsigned log2 = min;

	while (log2 < max && ((uint64_t)1 << log2) < (uint64_t)n)
		log2++;
	return log2;
}

static qsbr_hashmap *map_new(qsbr_domain *d, size_t size_hint, bool keyed)
{
	qsbr_hashmap *m = ds_header_new(d, sizeof(*m));
	struct mnode *seg0;

	if (m == NULL)
		return NULL;
	seg0 = seg_new(d, 0);
	if (seg0 == NULL) {
		qsbr__domain_free(d, m);
		errno = ENOMEM;
		return NULL;
	}
	m->keyed = keyed;
	m->d = d;
	/* Up to 2^32 buckets from the hint; beyond, growth decides. */
	store_relaxed(&m->log2, log2_for(size_hint, MIN_LOG2, 32));
	store_relaxed(&m->load, LOAD_DEFAULT);
	store_relaxed(&m->min_log2, MIN_LOG2);
	store_relaxed(&m->max_log2, MAX_LOG2);
	/* shrink, shrink_state (SHRINK_IDLE), swept, segs[] and count[]
	 * start zeroed (ds_header_new). */
	/* Bucket 0's dummy starts the list (order key 0). */
	store_relaxed(&seg0[0].next, READY);
	store_relaxed(&m->segs[0], (uintptr_t)seg0);
	store_relaxed(&m->seg_bytes, head_of_seg((uintptr_t)seg0)->bytes);
	return m;
}

/* Frees m's segments and header; no call runs any more. */
static void map_free(qsbr_hashmap *m)
{
	for (int s = 0; s < NSEGS; s++) {
		uintptr_t seg = load_relaxed(&m->segs[s]);

		if (seg != 0)
			qsbr__domain_free(m->d, head_of_seg(seg));
	}
	qsbr__domain_free(m->d, m);
}

/* Each entry still linked, for a delete (no call runs any more: relaxed
 * loads).  Its link is read before fn, which may free the node. */
static void each_entry(qsbr_hashmap *m, void (*fn)(struct mnode *n, void *arg), void *arg)
{
	uintptr_t v = load_relaxed(&((struct mnode *)load_relaxed(&m->segs[0]))->next);

	while (ptr_of(v) != NULL) {
		struct mnode *n = ptr_of(v);

		v = load_relaxed(&n->next);
		if ((load_relaxed(&n->so) & 1) && !(v & MARK))
			fn(n, arg);
	}
}

int qsbr_hashmap_resize_policy(qsbr_hashmap *m, unsigned load, size_t min_buckets, size_t max_buckets,
			       bool shrink)
{
	unsigned min, max;

	if (m == NULL || load < 1 || load > LOAD_MAX ||
	    (max_buckets != 0 && min_buckets > max_buckets))
		return EINVAL;
	min = log2_for(min_buckets, MIN_LOG2, MAX_LOG2);
	max = max_buckets == 0 ? MAX_LOG2 : log2_for(max_buckets, MIN_LOG2, MAX_LOG2);
	store_relaxed(&m->load, load);
	store_relaxed(&m->min_log2, min);
	store_relaxed(&m->max_log2, max);
	store_relaxed(&m->shrink, shrink);
	grow_to(m, entries(m));
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
	qsbr_pool_stats ps = { 0 };

	if (m == NULL) {
		errno = EINVAL;
		return 0;
	}
	if (m->keyed)
		qsbr_pool_stats_get(m->pool, &ps);
	return sizeof(*m) + (size_t)load_relaxed(&m->seg_bytes) + (size_t)ps.bytes_held;
}

/* ---- Intrusive API ---------------------------------------------------- */

static bool bad_intrusive(const qsbr_hashmap *m, const qsbr_thread *t, bool given)
{
	if (m == NULL || t == NULL || !given || m->keyed) {
		errno = EINVAL;
		return true;
	}
	return false;
}

qsbr_hashmap *qsbr_hashmap_new_intrusive(qsbr_domain *d, size_t size_hint)
{
	return map_new(d, size_hint, false);
}

struct node_fn {
	void (*fn)(qsbr_hashmap_node *n, void *arg);
	void *arg;
};

static void call_fn(struct mnode *n, void *arg)
{
	const struct node_fn *f = arg;

	f->fn(public_of(n), f->arg);
}

int qsbr_hashmap_delete_nodes(qsbr_hashmap *m, void (*fn)(qsbr_hashmap_node *n, void *arg), void *arg)
{
	struct node_fn f = { fn, arg };

	if (m == NULL || m->keyed)
		return EINVAL;
	if (fn != NULL)
		each_entry(m, call_fn, &f);
	map_free(m);
	return 0;
}

/* Adds n (k from hash, match, key); with replace, puts it in place of a
 * match.  Returns NULL once n is in (added, or in place of the returned
 * node when replace), else the match present (n not added). */
static struct mnode *add(qsbr_hashmap *m, qsbr_thread *t, uint64_t hash, const struct mkey *k,
			 struct mnode *n, bool replace, struct mnode **replaced)
{
	uint64_t b = bucket_of(m, hash);

	/* Relaxed: published by the CAS that links n (L1). */
	store_relaxed(&n->so, k->so);
	for (;;) {
		struct pos pos;
		struct mnode *found = link_node(m, t, b, k, n, &pos);

		if (found == NULL) {
			count_add(m, t, true);
			return NULL;
		}
		if (!replace)
			return found;
		/* At the match's place, where link_node's walk stopped: if it
		 * went meanwhile, take_out fails and we start again. */
		if (take_out(m, t, b, &pos, n)) {
			*replaced = found;
			return NULL;
		}
	}
}

qsbr_hashmap_node *qsbr_hashmap_add_unique(qsbr_hashmap *m, qsbr_thread *t, uint64_t hash,
					   qsbr_hashmap_match_fn *match, const void *key,
					   qsbr_hashmap_node *n)
{
	struct mnode *found;

	if (bad_intrusive(m, t, match != NULL && n != NULL))
		return NULL;
	found = add(m, t, hash, &(struct mkey){ so_entry(hash), match, key }, mnode_of(n), false, NULL);
	return found != NULL ? public_of(found) : n;
}

qsbr_hashmap_node *qsbr_hashmap_add_replace(qsbr_hashmap *m, qsbr_thread *t, uint64_t hash,
					    qsbr_hashmap_match_fn *match, const void *key,
					    qsbr_hashmap_node *n)
{
	struct mnode *old = NULL;

	if (bad_intrusive(m, t, match != NULL && n != NULL))
		return NULL;
	add(m, t, hash, &(struct mkey){ so_entry(hash), match, key }, mnode_of(n), true, &old);
	return old != NULL ? public_of(old) : NULL;
}

/* Takes out the entry matching k, putting repl (or nothing) in its place;
 * returns it, or NULL if there is none. */
static struct mnode *take_match(qsbr_hashmap *m, qsbr_thread *t, uint64_t b, const struct mkey *k,
				struct mnode *repl)
{
	for (;;) {
		struct pos pos;
		struct mnode *found = walk(m, t, b, k, &pos);

		if (found == NULL || take_out(m, t, b, &pos, repl))
			return found;
		/* Another call marked it first: look again. */
	}
}

qsbr_hashmap_node *qsbr_hashmap_replace(qsbr_hashmap *m, qsbr_thread *t, uint64_t hash,
					qsbr_hashmap_match_fn *match, const void *key,
					qsbr_hashmap_node *n)
{
	struct mkey k = { so_entry(hash), match, key };
	struct mnode *found;
	uint64_t b;

	if (bad_intrusive(m, t, match != NULL && n != NULL))
		return NULL;
	b = bucket_of(m, hash);
	/* Relaxed: published by take_out's CAS (M2). */
	store_relaxed(&mnode_of(n)->so, k.so);
	found = take_match(m, t, b, &k, mnode_of(n));
	if (found == NULL) {
		errno = ENOENT;
		return NULL;
	}
	return public_of(found);
}

qsbr_hashmap_node *qsbr_hashmap_find(const qsbr_hashmap *m, qsbr_thread *t, uint64_t hash,
				     qsbr_hashmap_match_fn *match, const void *key)
{
	struct mnode *found;

	if (bad_intrusive(m, t, match != NULL))
		return NULL;
	found = lookup(m, bucket_of(m, hash), &(struct mkey){ so_entry(hash), match, key });
	return found != NULL ? public_of(found) : NULL;
}

/* Takes out the entry matching k; returns it or NULL. */
static struct mnode *remove_match(qsbr_hashmap *m, qsbr_thread *t, uint64_t b, const struct mkey *k)
{
	struct mnode *found = take_match(m, t, b, k, NULL);

	if (found != NULL)
		count_add(m, t, false);
	return found;
}

static bool same_node(const qsbr_hashmap_node *n, const void *key)
{
	return n == key;
}

int qsbr_hashmap_del(qsbr_hashmap *m, qsbr_thread *t, qsbr_hashmap_node *n)
{
	uint64_t so;

	if (bad_intrusive(m, t, n != NULL))
		return EINVAL;
	so = load_relaxed(&mnode_of(n)->so);
	/* so is reverse(h | 2^63): the hash's low bits come back reversed. */
	return remove_match(m, t, bucket_of(m, rev64(so)), &(struct mkey){ so, same_node, n }) != NULL
		       ? 0
		       : ENOENT;
}

qsbr_hashmap_node *qsbr_hashmap_remove_match(qsbr_hashmap *m, qsbr_thread *t, uint64_t hash,
					     qsbr_hashmap_match_fn *match, const void *key)
{
	struct mnode *found;

	if (bad_intrusive(m, t, match != NULL))
		return NULL;
	found = remove_match(m, t, bucket_of(m, hash), &(struct mkey){ so_entry(hash), match, key });
	return found != NULL ? public_of(found) : NULL;
}

qsbr_hashmap_node *qsbr_hashmap_first(const qsbr_hashmap *m, qsbr_thread *t)
{
	struct mnode *n;

	if (bad_intrusive(m, t, true))
		return NULL;
	/* L1: acquire, pairs with the release CAS that linked the node;
	 * bucket 0 is never removed. */
	n = entry_from(load_acquire(&((struct mnode *)load_relaxed(&m->segs[0]))->next));
	return n != NULL ? public_of(n) : NULL;
}

qsbr_hashmap_node *qsbr_hashmap_next(const qsbr_hashmap *m, qsbr_thread *t, const qsbr_hashmap_node *n)
{
	struct mnode *next;

	if (bad_intrusive(m, t, n != NULL))
		return NULL;
	/* L1: acquire, pairs with the release CAS that wrote n's link (a
	 * frozen one too: L3's argument, the nodes it leads to left the list
	 * no earlier). */
	next = entry_from(load_acquire(&mnode_of(n)->next));
	return next != NULL ? public_of(next) : NULL;
}

/* ---- Keyed API -------------------------------------------------------- */

struct keyed_key {
	const qsbr_hashmap *m;
	uint64_t key;
};

static bool keyed_match(const qsbr_hashmap_node *n, const void *key)
{
	const struct entry *e = (const struct entry *)(const void *)n;
	const struct keyed_key *k = key;

	return k->m->equal != NULL ? k->m->equal(e->key, k->key, k->m->arg) : e->key == k->key;
}

static inline uint64_t hash_of(const qsbr_hashmap *m, uint64_t key)
{
	return qsbr_hashmap_hash64(m->hash != NULL ? m->hash(key, m->arg) : key);
}

qsbr_hashmap *qsbr_hashmap_new(qsbr_domain *d, size_t size_hint, qsbr_hashmap_hash_fn *hash,
			       qsbr_hashmap_equal_fn *equal, void *arg)
{
	qsbr_hashmap *m;
	qsbr_pool *pool;

	if (equal != NULL && hash == NULL) {
		errno = EINVAL;
		return NULL;
	}
	m = map_new(d, size_hint, true);
	if (m == NULL)
		return NULL;
	pool = qsbr_pool_new(d, sizeof(struct entry), alignof(struct entry));
	if (pool == NULL) {
		map_free(m);
		errno = ENOMEM;
		return NULL;
	}
	m->hash = hash;
	m->equal = equal;
	m->arg = arg;
	m->pool = pool;
	return m;
}

struct keyed_delete {
	void (*fn)(uint64_t key, void *value, void *arg);
	void *arg;
};

static void keyed_call(struct mnode *n, void *arg)
{
	const struct keyed_delete *kd = arg;
	const struct entry *e = ds_container_of(n, struct entry, node);

	kd->fn(e->key, e->value, kd->arg);
}

int qsbr_hashmap_delete(qsbr_hashmap *m, void (*fn)(uint64_t key, void *value, void *arg), void *arg)
{
	struct keyed_delete kd = { fn, arg };
	int rc;

	if (m == NULL || !m->keyed)
		return EINVAL;
	if (qsbr__in_callback())
		return EDEADLK; /* nothing changed */
	/* The entries removed earlier finish their grace period first, as
	 * the set's delete does; the pool goes with the entries still in. */
	rc = qsbr__pool_settle(m->pool);
	if (rc != 0)
		return rc;
	if (fn != NULL)
		each_entry(m, keyed_call, &kd);
	qsbr__pool_destroy(m->pool);
	map_free(m);
	return 0;
}

int qsbr_hashmap_insert(qsbr_hashmap *m, qsbr_thread *t, uint64_t key, void *value)
{
	struct keyed_key kk = { m, key };
	struct entry *e;
	uint64_t h;

	if (m == NULL || t == NULL || !m->keyed)
		return EINVAL;
	h = hash_of(m, key);
	/* First: on ENOMEM nothing has changed. */
	e = qsbr_pool_alloc(t, m->pool);
	if (e == NULL)
		return errno == EINVAL ? EINVAL : ENOMEM;
	e->key = key;
	e->value = value;
	if (add(m, t, h, &(struct mkey){ so_entry(h), keyed_match, &kk }, &e->node, false, NULL) != NULL) {
		qsbr_pool_free(t, m->pool, e); /* never published */
		return EEXIST;
	}
	return 0;
}

int qsbr_hashmap_remove(qsbr_hashmap *m, qsbr_thread *t, uint64_t key, void **value)
{
	struct keyed_key kk = { m, key };
	struct mnode *n;
	struct entry *e;
	uint64_t h;

	if (m == NULL || t == NULL || !m->keyed)
		return EINVAL;
	h = hash_of(m, key);
	n = remove_match(m, t, bucket_of(m, h), &(struct mkey){ so_entry(h), keyed_match, &kk });
	if (n == NULL)
		return ENOENT;
	e = ds_container_of(n, struct entry, node);
	if (value != NULL)
		*value = e->value;
	qsbr_pool_retire(t, m->pool, e); /* M1: out of the list */
	return 0;
}

int qsbr_hashmap_lookup(const qsbr_hashmap *m, qsbr_thread *t, uint64_t key, void **value)
{
	struct keyed_key kk = { m, key };
	struct mnode *n;
	uint64_t h;

	if (m == NULL || t == NULL || !m->keyed)
		return EINVAL;
	h = hash_of(m, key);
	n = lookup(m, bucket_of(m, h), &(struct mkey){ so_entry(h), keyed_match, &kk });
	if (n == NULL)
		return ENOENT;
	if (value != NULL)
		*value = ds_container_of(n, struct entry, node)->value;
	return 0;
}
