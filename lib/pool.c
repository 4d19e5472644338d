/* SPDX-License-Identifier: MIT */
/*
 * Pools (include/qsbr/pool.h): fixed-size objects carved from large slabs of
 * the domain's allocator, reused after a grace period instead of going back
 * to the allocator.
 *
 *   slab: [struct slab][head|object|pad][head|object|pad] ... (stride each)
 *
 * Every object carries a hidden head in front of it: the qsbr_node that the
 * core's retire lists link, its slab, a link, its state.  A thread's pool
 * retires gather in its cache's open batch, POOL_RETIRE_BATCH at a time;
 * the batch is then one plain qsbr_retire_node_sized of its first object's
 * node (the core's goals, batches, hand-over at unregister and thread exit,
 * fork rules), whose callback makes the batch's objects free.  The open
 * batch is handed over when full, when the thread retires offline, when its
 * cache runs dry at an alloc, at qsbr_pool_flush and at thread exit;
 * qsbr_pool_delete takes the open batches of every thread and waits a grace
 * period for them.  So a waiting object is never
 * lost: it is in the core's lists like any retired object, and the core's
 * invariant (a callback runs only after every thread online at the retire
 * has passed a quiescent state at or past the goal) is the reuse rule.  The
 * core's retire path is not changed by pools.
 *
 * Where free objects live.  Each thread keeps a cache per pool
 * (struct pool_cache, chained from its qsbr_thread): at most cache_max free
 * objects (POOL_CACHE_BYTES of them, within POOL_CACHE_MIN..POOL_CACHE_MAX),
 * taken and given without a lock.  Behind the caches, the
 * slabs keep the rest, under the pool's lock: slabs with free objects are on
 * the partial list, slabs with none on no list, and a slab whose objects are
 * all free is empty.  Between the two, the depot keeps up to depot_max
 * free objects (POOL_DEPOT_BYTES of them, at least POOL_DEPOT_MIN; up to
 * twice that when an empty depot takes the returned list below): a
 * cache that overflows gives POOL_CACHE_BATCH or so to it, one that runs
 * dry takes as many from it, each in one lock, touching only the first
 * object of each run (see next_run); without objects there, a dry cache
 * takes POOL_CACHE_BATCH objects from the slabs (and, the depot full, an
 * overflowing one gives them to the slabs).  A retired batch's callback
 * puts it, as one run, in the cache of the thread that runs the callback
 * (qsbr__callback_thread: most often the retiring thread itself, at its
 * own retire or reclaim); with the cache full, in that thread's reserve
 * (a list behind its cache, under a lock of its own that trim also takes:
 * see reserve_room for its bound), which a dry cache takes from first;
 * with the reserve full too, the cache overflows as above and takes the
 * batch.  From the helper thread, the batch goes on the pool's returned
 * list (a lock-free stack of runs that the next refill takes whole into
 * the depot), within the depot's bound; beyond it, into the depot or back
 * in its slabs.
 *
 * keep_empty empty slabs are kept (POOL_KEEP_EMPTY_BYTES of them, at
 * least POOL_KEEP_EMPTY_MIN), for the next allocations: a burst that
 * empties slabs and one that fills them again reuse them without a trip
 * through the allocator (and fresh pages).  Slabs that empty beyond that
 * are kept too until there has been such an excess for POOL_DECAY_MS
 * (see empties_decay), then given back together, their pages decommitted
 * (see decommit).  So the idle memory
 * of a pool is bounded by cache_max objects (and a batch of fewer than
 * POOL_RETIRE_BATCH retired ones) and a reserve within its room per
 * registered thread that used it,
 * depot_max objects on the returned list and twice that in the depot, the
 * free objects in slabs that still hold others, and keep_empty slabs
 * (more, for POOL_DECAY_MS after a burst, until the next slow path).
 * qsbr_pool_trim puts the depot's and the reserves' objects back in their
 * slabs and gives back the empty ones.
 *
 * The core's hooks: qsbr_thread.pool_caches (registry.c clears it at
 * register), qsbr__pool_thread_exit (called last by qsbr__retire_exit, at
 * unregister and thread exit: the caches go back to their pools), and
 * qsbr__callback_thread (batch.c).  In the child of fork(), the caches of
 * the threads that did not come along are dropped with their slots: their
 * objects stay out of the pool there, as retired objects do.
 *
 * Locks: pools_lock (global) guards the links between caches and pools:
 * a cache's creation, its removal at thread exit, and a pool's delete,
 * which marks its caches dead (pool = NULL) for their owners to free.  It
 * is taken before a pool's lock.
 *
 * AddressSanitizer: a free object is poisoned, and the head and padding of
 * an allocated one.  A waiting object is poisoned when its grace period
 * ends (its callback), not at the retire: until then readers may still
 * read it.  So a reader that keeps a pointer past its quiescent state is
 * reported as a use after poison.  Free objects are then reused in FIFO order (a
 * quarantine of a slab's size), so that a stale pointer is still caught after
 * the pool has handed out other objects.
 */
#define _DEFAULT_SOURCE /* MADV_DONTNEED */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ds/ds.h"
#include "internal.h"
#include "qsbr/pool.h"

#if defined(__SANITIZE_ADDRESS__)
#define POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_ASAN 1
#endif
#endif

#ifdef POOL_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
/* Objects are reused in FIFO order: a batch queues behind a reserve. */
#define RESERVE_FIFO(c) (load_relaxed(&(c)->n_reserve) != 0)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define RESERVE_FIFO(c) ((void)(c), false)
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define POOL_SLAB_BYTES ((size_t)64 << 10) /* a slab, unless 8 objects need more */
#define POOL_SLAB_MIN_OBJECTS 8u
#define POOL_KEEP_EMPTY_BYTES ((size_t)1 << 20) /* empty slabs kept for reuse: so many bytes, */
#define POOL_KEEP_EMPTY_MIN 1u                /* and at least so many slabs */
#define POOL_DECAY_MS 1000u /* more empty slabs than that, for so long: back */
#define POOL_CACHE_BYTES ((size_t)128 << 10) /* a thread's cache: so many bytes, */
#define POOL_CACHE_MAX 1024u               /* but at most so many objects */
#define POOL_CACHE_MIN 16u                 /* and at least so many */
#define POOL_CACHE_BATCH 64u               /* moved between a cache and the depot */
#define POOL_DEPOT_BYTES ((size_t)1 << 20) /* the depot holds so many bytes of objects, */
#define POOL_DEPOT_MIN (2 * POOL_CACHE_BATCH) /* but at least so many objects */
#define POOL_RETIRE_BATCH 8u              /* pool retires per core retire */
#define POOL_PAGE ((size_t)4096)          /* slabs of malloc start on a page */

enum obj_state { OBJ_FREE = 0x51f7ee, OBJ_ALLOCATED = 0x51a11c, OBJ_WAITING = 0x51a17 };

struct obj_head {
	qsbr_node node;         /* the core's retire link; the free list's link */
	struct slab *slab;
	struct obj_head *link;  /* the next object of a retire batch */
	uint32_t state;         /* enum obj_state */
	uint32_t count;         /* the first of a batch: its objects */
};

struct slab {
	struct slab *prev, *next; /* on the partial or the empty list */
	struct slab *all_prev, *all_next; /* every slab of the pool */
	qsbr_pool *pool;
	struct obj_head *free, *free_tail; /* free objects, linked by node.next */
	uint32_t nfree;         /* free objects, carved or not */
	uint32_t carved;        /* objects ever handed out since the slab emptied */
};

/* A thread's free objects of one pool.  Owner only, but for pool (read
 * by anyone, cleared by qsbr_pool_delete), the pool-list links (under both
 * locks) and the counters (written by the owner, read by anyone). */
struct pool_cache {
	struct pool_cache *t_next;       /* the thread's caches */
	struct pool_cache *p_prev, *p_next; /* the pool's caches */
	_Atomic(qsbr_pool *) pool;       /* NULL: the pool was deleted */
	struct obj_head *free, *free_tail; /* runs (see next_run); the tail under ASan */
	struct obj_head *open, *open_last; /* retired, not yet handed to the core */
	uint32_t n_open;
	au64 n_free;
	/* The reserve: batches back from the owner's own grace periods that
	 * found its cache full, a FIFO list of runs under lock (the owner's
	 * and qsbr_pool_trim's; trim only tries it).  At most room objects
	 * (owner only; see reserve_room). */
	pthread_mutex_t lock;
	struct obj_head *reserve, *reserve_tail;
	au64 n_reserve;
	uint64_t room;
	au64 n_retired;                  /* pool retires by the owner */
	au64 n_reclaimed;                /* callbacks that put into this cache */
};

static pthread_mutex_t pools_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t pools_once = PTHREAD_ONCE_INIT;

/* pools_lock is held across fork(), so that the child never inherits it
 * taken by a thread that did not come along (a thread-exit hook).  Taken
 * before the domains' locks (handlers registered later run first), as the
 * exit hook takes them. */
static void pools_prefork(void)
{
	pthread_mutex_lock(&pools_lock);
}

static void pools_postfork(void)
{
	pthread_mutex_unlock(&pools_lock);
}

static void pools_init(void)
{
	pthread_atfork(pools_prefork, pools_postfork, pools_postfork);
}

struct qsbr_pool {
	pthread_mutex_t lock;   /* the lists, the slabs' free lists, the counts */
	qsbr_domain *d;
	size_t size;            /* the object size asked for */
	size_t head;            /* bytes from a slot to its object */
	size_t stride;          /* bytes per slot */
	size_t first;           /* bytes from a slab to its first slot */
	size_t slab_bytes;
	size_t slab_align;
	uint32_t per_slab;
	uint32_t cache_max;     /* free objects in a thread's cache */
	struct slab *partial;   /* slabs with free objects, not all free */
	struct slab *empty;     /* slabs with every object free */
	struct slab *all;       /* every slab */
	struct pool_cache *caches; /* under pools_lock and lock */
	uint64_t n_slabs, n_empty, keep_empty;
	uint64_t excess_since;  /* qsbr__now_ms + 1 when n_empty passed keep_empty; 0 */
	uint64_t in_use;        /* out of the slabs: in caches or the depot, allocated, waiting */
	struct obj_head *depot; /* free objects: a list of runs, as in a cache */
	uint64_t depot_objects, depot_max;
	/* Under lock: retires and callbacks not counted in a live cache (no
	 * cache, the helper's callbacks, caches of threads that left). */
	uint64_t retired, reclaimed;
	uint64_t open_taken;    /* retired objects a delete took from open batches */
	/* Without the lock: batches whose callback found no room in a cache
	 * (the helper thread's, most often), a list of runs that any thread
	 * pushes (CAS) and a refill takes whole (exchange); its objects, and
	 * all objects ever pushed (counted as reclaimed). */
	alignas(CACHELINE) auptr returned;
	au64 returned_n, returned_total;
};

static void list_insert(struct slab **list, struct slab *s)
{
	s->prev = NULL;
	s->next = *list;
	if (*list != NULL)
		(*list)->prev = s;
	*list = s;
}

static void list_remove(struct slab **list, struct slab *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		*list = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
}

static struct obj_head *slot(const qsbr_pool *p, struct slab *s, uint32_t i)
{
	return (struct obj_head *)((char *)s + p->first + (size_t)i * p->stride);
}

static void *body_of(const qsbr_pool *p, struct obj_head *h)
{
	return (char *)h + p->head;
}

static struct obj_head *head_of(const qsbr_pool *p, void *obj)
{
	return (struct obj_head *)((char *)obj - p->head);
}

/*
 * The whole pages inside a slab that the pool gives back go back to the
 * system now (MADV_DONTNEED), not when the allocator decides (glibc
 * keeps a freed block that is not at the top of its heap until malloc_trim;
 * mimalloc and jemalloc purge after a delay).  Only with the default
 * allocator, malloc: a hook's memory may be anything.  The pages are the
 * pool's until the free that follows (its links already read), outside
 * every byte an allocator keeps around a block;
 * the free and the next use of the block find them zeroed, as fresh pages
 * are.  Under ASan the block is left alone (its
 * allocator poisons and quarantines freed blocks itself).
 */
static void decommit(const qsbr_pool *p, struct slab *s)
{
#ifndef POOL_ASAN
	long v = sysconf(_SC_PAGESIZE); /* from the auxiliary vector: cheap */
	uintptr_t page = v > 0 ? (uintptr_t)v : 4096, from, to;

	if (p->d->opts.alloc != NULL)
		return;
	from = ((uintptr_t)s + page - 1) & ~(page - 1);
	to = ((uintptr_t)s + p->slab_bytes) & ~(page - 1);
	if (to > from)
		(void)madvise((void *)from, to - from, MADV_DONTNEED); /* advice: may fail */
#else
	(void)p;
	(void)s;
#endif
}

/* Gives slabs back, linked by next; not under the lock. */
static void slabs_release(qsbr_pool *p, struct slab *s)
{
	while (s != NULL) {
		struct slab *next = s->next;

		decommit(p, s);
		UNPOISON(s, p->slab_bytes);
		qsbr__domain_free(p->d, s);
		s = next;
	}
}

static struct slab *slab_new(qsbr_pool *p)
{
	struct slab *s = qsbr__domain_alloc(p->d, p->slab_bytes, p->slab_align);

	if (s == NULL)
		return NULL;
	memset(s, 0, sizeof(*s));
	s->pool = p;
	s->nfree = p->per_slab;
	POISON((char *)s + p->first, p->slab_bytes - p->first);
	return s;
}

/* Under the lock: a new slab joins the pool. */
static void slab_add(qsbr_pool *p, struct slab *s)
{
	s->all_prev = NULL;
	s->all_next = p->all;
	if (p->all != NULL)
		p->all->all_prev = s;
	p->all = s;
	p->n_slabs++;
	list_insert(&p->partial, s);
}

/* Under the lock: s leaves the pool (it is on no list). */
static void slab_drop(qsbr_pool *p, struct slab *s)
{
	if (s->all_prev != NULL)
		s->all_prev->all_next = s->all_next;
	else
		p->all = s->all_next;
	if (s->all_next != NULL)
		s->all_next->all_prev = s->all_prev;
	p->n_slabs--;
}

/* Under the lock: an object of s, which has a free one. */
static struct obj_head *take(qsbr_pool *p, struct slab *s)
{
	struct obj_head *h;
	bool carve = s->free == NULL;

#ifdef POOL_ASAN
	carve = s->carved < p->per_slab; /* FIFO reuse: fresh slots first */
#endif
	if (carve) {
		h = slot(p, s, s->carved++);
		UNPOISON(h, sizeof(*h));
		h->slab = s;
	} else {
		h = s->free;
		s->free = (struct obj_head *)(void *)h->node.next;
		if (s->free == NULL)
			s->free_tail = NULL;
	}
	h->state = OBJ_FREE;
	p->in_use++;
	if (--s->nfree == 0)
		list_remove(&p->partial, s);
	return h;
}

/*
 * Under the lock, when the empty slabs may have changed: beyond keep_empty
 * of them, the excess goes back (on *give, for after the unlock) once there
 * has been an excess for POOL_DECAY_MS, all of it, so a burst's slabs leave
 * together; until then they wait for the next burst, which reuses them
 * warm (the next threads of a program that starts and stops them, the
 * next round of a batch job).  Checked at the pool's slow paths: a pool
 * that goes idle keeps them until its next one, or qsbr_pool_trim.
 */
/* Under the lock: empty slabs go on *give until keep are left. */
static void empties_release(qsbr_pool *p, uint64_t keep, struct slab **give)
{
	while (p->n_empty > keep) {
		struct slab *s = p->empty;

		list_remove(&p->empty, s);
		p->n_empty--;
		slab_drop(p, s);
		s->next = *give;
		*give = s;
	}
	p->excess_since = 0;
}

static void empties_decay(qsbr_pool *p, struct slab **give)
{
	uint64_t now;

	if (p->n_empty <= p->keep_empty) {
		p->excess_since = 0;
		return;
	}
	now = qsbr__now_ms() + 1; /* never 0: 0 is "no excess" */
	if (p->excess_since == 0)
		p->excess_since = now;
	if (now - p->excess_since >= POOL_DECAY_MS)
		empties_release(p, p->keep_empty, give);
}

/* Under the lock: h (poisoned) is back in its slab, which may join the
 * empty ones; the caller then looks at their decay. */
static void put(qsbr_pool *p, struct obj_head *h)
{
	struct slab *s = h->slab;

	h->state = OBJ_FREE;
	h->node.next = NULL;
#ifdef POOL_ASAN
	if (s->free_tail != NULL)
		s->free_tail->node.next = &h->node; /* FIFO: the oldest is reused first */
	else
		s->free = h;
	s->free_tail = h;
#else
	h->node.next = &s->free->node;
	if (s->free == NULL)
		s->free_tail = h;
	s->free = h;
#endif
	p->in_use--;
	if (++s->nfree == 1)
		list_insert(&p->partial, s); /* it was full */
	if (s->nfree < p->per_slab)
		return;
	/* Empty: forget its free list, carve again from the start (but under
	 * ASan, where the FIFO order is kept across). */
	list_remove(&p->partial, s);
#ifndef POOL_ASAN
	s->free = s->free_tail = NULL;
	s->carved = 0;
#endif
	list_insert(&p->empty, s);
	p->n_empty++;
}

/* ---- Thread caches ---------------------------------------------------- */

/*
 * A cache's free objects are a list of runs.  A run is a chain of objects
 * linked by link, its first object's count saying how many; the runs are
 * linked by their first objects' node.next.  A retire batch whose grace
 * period is over goes in whole as one run (pool_reclaim), touching its
 * first object only: the others are next touched by the alloc that hands
 * them out, on the core that is going to use them.  LIFO for locality;
 * FIFO under ASan (a longer quarantine), where free_tail is the last run.
 */
static struct obj_head *next_run(const struct obj_head *r)
{
	return (struct obj_head *)(void *)r->node.next;
}

/* first, n objects chained by link, joins the cache as one run. */
static void cache_put_run(struct pool_cache *c, struct obj_head *first, uint32_t n)
{
	first->count = n;
#ifdef POOL_ASAN
	first->node.next = NULL;
	if (c->free_tail != NULL)
		c->free_tail->node.next = &first->node;
	else
		c->free = first;
	c->free_tail = first;
#else
	first->node.next = c->free != NULL ? &c->free->node : NULL;
	c->free = first;
#endif
	add_relaxed_owner(&c->n_free, n);
}

static void cache_push(struct pool_cache *c, struct obj_head *h)
{
	h->state = OBJ_FREE;
	h->link = NULL;
	cache_put_run(c, h, 1);
}

/* The first object of the first run; the rest of the run stays a run. */
static struct obj_head *cache_pop(struct pool_cache *c)
{
	struct obj_head *h = c->free;

	if (h->count > 1) {
		struct obj_head *rest = h->link;

		rest->count = h->count - 1;
		rest->node.next = h->node.next;
#ifdef POOL_ASAN
		if (c->free_tail == h)
			c->free_tail = rest;
#endif
		c->free = rest;
	} else {
		c->free = next_run(h);
#ifdef POOL_ASAN
		if (c->free == NULL)
			c->free_tail = NULL;
#endif
	}
	store_relaxed(&c->n_free, load_relaxed(&c->n_free) - 1);
	return h;
}

/* Under the pool's lock: every object of a list of runs back to its slab;
 * the slabs to give back go on *give (linked by next), for after the
 * unlock. */
static void runs_put(qsbr_pool *p, struct obj_head *r, struct slab **give)
{
	while (r != NULL) {
		struct obj_head *next = next_run(r), *h = r;

		for (uint32_t k = r->count; k > 0; k--) {
			struct obj_head *after = h->link; /* put() keeps link */

			put(p, h);
			h = after;
		}
		r = next;
	}
	empties_decay(p, give);
}

/* Under c's lock: the whole reserve of c, a list of runs. */
static struct obj_head *reserve_cut_all(struct pool_cache *c)
{
	struct obj_head *r = c->reserve;

	c->reserve = c->reserve_tail = NULL;
	store_relaxed(&c->n_reserve, 0);
	return r;
}

/* Under the pool's lock, by the owner: the cache's objects, its reserve's
 * too, back to their slabs. */
static void cache_spill(qsbr_pool *p, struct pool_cache *c, struct slab **give)
{
	struct obj_head *r;

	runs_put(p, c->free, give);
	c->free = c->free_tail = NULL;
	store_relaxed(&c->n_free, 0);
	pthread_mutex_lock(&c->lock);
	r = reserve_cut_all(c);
	pthread_mutex_unlock(&c->lock);
	runs_put(p, r, give);
}

/* Under the pool's lock (qsbr_pool_trim): the threads' reserves back to
 * their slabs, each that is not in use this instant.  Only tried: one
 * taken across fork() by a thread that did not come along stays taken. */
static void reserves_drain(qsbr_pool *p, struct slab **give)
{
	for (struct pool_cache *c = p->caches; c != NULL; c = c->p_next) {
		struct obj_head *r;

		if (pthread_mutex_trylock(&c->lock) != 0)
			continue;
		r = reserve_cut_all(c);
		pthread_mutex_unlock(&c->lock);
		runs_put(p, r, give);
	}
}

static struct pool_cache *cache_find(qsbr_thread *t, qsbr_pool *p, bool make);

/* Cuts the first runs off a list of runs at *list, n objects or more (or
 * all it has): returns them, a list of runs ending in *last, and their
 * objects in *count.  *list is not empty. */
static struct obj_head *runs_cut(struct obj_head **list, uint32_t n, struct obj_head **last,
				 uint32_t *count)
{
	struct obj_head *first = *list, *r = first;
	uint32_t k;

	for (k = r->count; k < n && next_run(r) != NULL; k += r->count)
		r = next_run(r);
	*list = next_run(r);
	r->node.next = NULL;
	*last = r;
	*count = k;
	return first;
}

/*
 * The owner's, when its cache runs dry at an alloc: the reserve's room,
 * in objects of p, becomes the bytes that t retired and still holds in its
 * own lists (to any pool, or not to a pool at all: the core's counts),
 * which its own callbacks will give back.  So the reserve follows the
 * thread's volume in flight: under long grace periods (threads outnumbering
 * processors, a reader slow to pass its quiescent state) a thread's retires
 * come back to it in bursts far larger than its cache, and it allocates
 * them again before the next burst, without the pool's lock.  A thread that
 * does not allocate from p never runs dry, and its reserve stays empty:
 * what it retires goes to the depot, for the threads that allocate.
 */
static void reserve_room(const qsbr_pool *p, struct pool_cache *c, const qsbr_thread *t)
{
	uint64_t gone = load_relaxed(&t->n_bytes_freed) + load_relaxed(&t->n_bytes_handed);
	uint64_t retired = load_relaxed(&t->n_bytes_retired);

	c->room = retired > gone ? (retired - gone) / p->size : 0;
}

/* The owner's, from a callback that found its cache full (or, under ASan,
 * its reserve not empty: FIFO): the batch h, n objects, joins the reserve
 * if it has room.  False if not. */
static bool reserve_put(struct pool_cache *c, struct obj_head *h, uint32_t n)
{
	if (load_relaxed(&c->n_reserve) + n > c->room)
		return false;
	h->count = n;
	h->node.next = NULL;
	pthread_mutex_lock(&c->lock);
	if (c->reserve_tail != NULL)
		c->reserve_tail->node.next = &h->node;
	else
		c->reserve = h;
	c->reserve_tail = h;
	store_relaxed(&c->n_reserve, load_relaxed(&c->n_reserve) + n);
	pthread_mutex_unlock(&c->lock);
	return true;
}

/* The owner's empty cache takes up to cache_max objects from its reserve,
 * the oldest first (its runs are batches: at most POOL_RETIRE_BATCH each);
 * false if there are none. */
static bool reserve_take(const qsbr_pool *p, struct pool_cache *c)
{
	struct obj_head *first = NULL, *last = NULL;
	uint32_t n = 0;

	if (load_relaxed(&c->n_reserve) == 0)
		return false;
	pthread_mutex_lock(&c->lock);
	if (c->reserve != NULL) { /* trim may have taken it */
		first = runs_cut(&c->reserve, p->cache_max - (POOL_RETIRE_BATCH - 1), &last, &n);
		if (c->reserve == NULL)
			c->reserve_tail = NULL;
		store_relaxed(&c->n_reserve, load_relaxed(&c->n_reserve) - n);
	}
	pthread_mutex_unlock(&c->lock);
	if (first == NULL)
		return false;
	c->free = first;
	c->free_tail = last;
	store_relaxed(&c->n_free, n);
	return true;
}

/* Under the lock: runs first..last, n objects, join the depot if it has
 * room; false if not. */
static bool depot_add(qsbr_pool *p, struct obj_head *first, struct obj_head *last, uint64_t n)
{
	if (p->depot_objects + n > p->depot_max)
		return false;
	last->node.next = p->depot != NULL ? &p->depot->node : NULL;
	p->depot = first;
	p->depot_objects += n;
	return true;
}

/* Runs first..last, n objects, join the depot in one lock, or, without
 * room there, go back to their slabs; reclaimed of them come from a
 * callback (counted under the same lock). */
static void depot_or_slabs(qsbr_pool *p, struct obj_head *first, struct obj_head *last,
			   uint32_t n, uint32_t reclaimed)
{
	struct slab *give = NULL;

	pthread_mutex_lock(&p->lock);
	p->reclaimed += reclaimed;
	if (!depot_add(p, first, last, n))
		runs_put(p, first, &give);
	pthread_mutex_unlock(&p->lock);
	slabs_release(p, give);
}

/* A full cache gives POOL_CACHE_BATCH objects or so to the depot in one
 * lock, touching only the heads of their runs (or, with the depot full,
 * to the slabs). */
static void cache_spill_chain(qsbr_pool *p, struct pool_cache *c)
{
	struct obj_head *first, *last;
	uint32_t n;

	if (c->free == NULL)
		return;
	first = runs_cut(&c->free, POOL_CACHE_BATCH, &last, &n);
	if (c->free == NULL)
		c->free_tail = NULL;
	store_relaxed(&c->n_free, load_relaxed(&c->n_free) - n);
	depot_or_slabs(p, first, last, n, 0);
}

/* Under the lock: the returned list joins the depot (room or not: its
 * objects were counted against the same bound).  Touches each run's
 * first object. */
static void returned_take(qsbr_pool *p)
{
	struct obj_head *first, *last;
	uint64_t n = 0;

	if (load_relaxed(&p->returned) == 0)
		return;
	/* Acquire: pairs with the release CAS of each push in pool_reclaim,
	 * so the runs' links are visible.  (Its release half orders nothing:
	 * atomics.h has no acquire-only exchange.) */
	first = (struct obj_head *)exchange_acq_rel(&p->returned, 0);
	if (first == NULL)
		return;
	for (last = first;; last = next_run(last)) {
		n += last->count;
		if (next_run(last) == NULL)
			break;
	}
	fetch_sub_relaxed(&p->returned_n, n);
	last->node.next = p->depot != NULL ? &p->depot->node : NULL;
	p->depot = first;
	p->depot_objects += n;
}

/* Under the lock: the depot's objects back to their slabs. */
static void depot_drain(qsbr_pool *p, struct slab **give)
{
	returned_take(p);
	runs_put(p, p->depot, give);
	p->depot = NULL;
	p->depot_objects = 0;
}

/* t's cache of p, made if need be; NULL without memory for one.  The
 * first of t's caches is the one it used last. */
static inline struct pool_cache *cache_of(qsbr_thread *t, qsbr_pool *p, bool make)
{
	struct pool_cache *c = t->pool_caches;

	/* Acquire: pairs with the delete's release store of NULL (as in
	 * cache_find); a live pool compares equal and needs nothing more. */
	if (c != NULL && load_acquire(&c->pool) == p)
		return c;
	return cache_find(t, p, make);
}

static void cache_free(qsbr_thread *t, struct pool_cache *c)
{
	pthread_mutex_destroy(&c->lock);
	qsbr__domain_free(t->d, c);
}

static struct pool_cache *__attribute__((noinline)) cache_find(qsbr_thread *t, qsbr_pool *p,
								 bool make)
{
	struct pool_cache **link = &t->pool_caches, *c;

	while ((c = *link) != NULL) {
		qsbr_pool *cp = load_acquire(&c->pool); /* see below */

		if (cp == p) {
			if (link != &t->pool_caches) { /* to the front */
				*link = c->t_next;
				c->t_next = t->pool_caches;
				t->pool_caches = c;
			}
			return c;
		}
		if (cp == NULL) {
			/* Its pool was deleted: the delete no longer touches it
			 * (acquire pairs with its release store). */
			*link = c->t_next;
			cache_free(t, c);
			continue;
		}
		link = &c->t_next;
	}
	if (!make)
		return NULL;
	c = ds_alloc_zeroed(t->d, 1, sizeof(*c), alignof(struct pool_cache)); /* counters 0 */
	if (c == NULL)
		return NULL;
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		qsbr__domain_free(t->d, c);
		return NULL;
	}
	atomic_init(&c->pool, p);
	pthread_mutex_lock(&pools_lock);
	pthread_mutex_lock(&p->lock);
	c->p_prev = NULL;
	c->p_next = p->caches;
	if (p->caches != NULL)
		p->caches->p_prev = c;
	p->caches = c;
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&pools_lock);
	c->t_next = t->pool_caches;
	t->pool_caches = c;
	return c;
}

static void hand_open(qsbr_thread *t, qsbr_pool *p, struct pool_cache *c);

/* From qsbr__retire_exit, last: t holds nothing retired and runs no more
 * callbacks; its caches go back to their pools. */
void qsbr__pool_thread_exit(qsbr_thread *t)
{
	struct pool_cache *c;

	if (t->pool_caches == NULL)
		return;
	pthread_mutex_lock(&pools_lock);
	while ((c = t->pool_caches) != NULL) {
		/* Acquire: pairs with the delete's release store of NULL. */
		qsbr_pool *p = load_acquire(&c->pool);
		struct slab *give = NULL;

		t->pool_caches = c->t_next;
		if (p != NULL) {
			/* Under pools_lock: p cannot be deleted meanwhile.  t
			 * is offline and still registered: its retire runs no
			 * callback, and qsbr__retire_exit hands it over next. */
			hand_open(t, p, c);
			pthread_mutex_lock(&p->lock);
			cache_spill(p, c, &give);
			p->retired += load_relaxed(&c->n_retired);
			p->reclaimed += load_relaxed(&c->n_reclaimed);
			if (c->p_prev != NULL)
				c->p_prev->p_next = c->p_next;
			else
				p->caches = c->p_next;
			if (c->p_next != NULL)
				c->p_next->p_prev = c->p_prev;
			pthread_mutex_unlock(&p->lock);
			slabs_release(p, give);
		}
		cache_free(t, c);
	}
	pthread_mutex_unlock(&pools_lock);
}

/* ---- Counts --------------------------------------------------------- */

struct counts {
	uint64_t in_caches, waiting; /* in_caches: the shared ones too */
	uint64_t shared;             /* in the depot and the returned list */
	uint64_t reserves;           /* in the threads' reserves */
};

/* Under the lock. */
static struct counts counts_of(const qsbr_pool *p)
{
	struct counts k = { 0, 0, p->depot_objects + load_relaxed(&p->returned_n), 0 };
	/* Acquire: pairs with the release add that ends a callback's
	 * lock-free path (pool_reclaim). */
	uint64_t retired = p->retired, reclaimed = p->reclaimed + load_acquire(&p->returned_total);

	k.in_caches = k.shared;
	for (struct pool_cache *c = p->caches; c != NULL; c = c->p_next) {
		k.in_caches += load_relaxed(&c->n_free) + load_relaxed(&c->n_reserve);
		k.reserves += load_relaxed(&c->n_reserve);
		retired += load_relaxed(&c->n_retired);
		reclaimed += load_relaxed(&c->n_reclaimed);
	}
	/* Read while threads run, a retire may show before its count: clamp. */
	k.waiting = retired > reclaimed ? retired - reclaimed : 0;
	return k;
}

static uint64_t allocated_of(const qsbr_pool *p, struct counts k)
{
	uint64_t out = k.in_caches + k.waiting + p->open_taken;

	return p->in_use > out ? p->in_use - out : 0;
}

/* ---- The calls -------------------------------------------------------- */

/* The retire callback: the goal is reached for a batch of objects (linked
 * by link from the first, whose node the core held).  Into the cache of the
 * thread running it while it has room, else into its reserve while that
 * has room, else the cache gives POOL_CACHE_BATCH or so to the depot (or
 * the slabs) and takes the batch.  Without a cache (the helper thread), on
 * the returned list while it has room, else into the depot or the slabs. */
static void pool_reclaim(qsbr_node *n)
{
	struct obj_head *h = (struct obj_head *)(void *)n;
	qsbr_pool *p = h->slab->pool;
	qsbr_thread *t = qsbr__callback_thread();
	struct pool_cache *c = t != NULL ? cache_of(t, p, false) : NULL;

	/* The grace period is over: from here a reader is a buggy one. */
#ifdef POOL_ASAN
	for (struct obj_head *x = h; x != NULL; x = x->link)
		POISON(body_of(p, x), p->stride - p->head);
#endif
	if (c != NULL) {
		uint32_t n = h->count;
		bool kept = true;

		if (load_relaxed(&c->n_free) + n <= p->cache_max && !RESERVE_FIFO(c)) {
			cache_put_run(c, h, n);
		} else if (!reserve_put(c, h, n)) {
			cache_spill_chain(p, c);
			kept = load_relaxed(&c->n_free) + n <= p->cache_max;
			if (kept)
				cache_put_run(c, h, n);
		}
		if (kept) {
			/* After the run joins: counts_of never sees it
			 * neither waiting nor cached. */
			add_relaxed_owner(&c->n_reclaimed, n);
			return;
		}
	}
	/* No cache (the helper thread), or a full one: the batch goes whole
	 * to the returned list while it has room, without the lock. */
	if (load_relaxed(&p->returned_n) + h->count <= p->depot_max) {
		uintptr_t top = load_relaxed(&p->returned);

		uint32_t n = h->count;

		/* Counted first (relaxed: the CAS below carries it to the
		 * taker), so that the taker's subtraction never goes below 0. */
		fetch_add_relaxed(&p->returned_n, n);
		do
			h->node.next = (qsbr_node *)top;
		/* Release: the run's links (and, through the callback's own
		 * ordering, its objects' last uses) reach the refill that
		 * takes the list; pairs with the exchange in returned_take.
		 * Relaxed failure: top is only stored again. */
		while (!cas_weak_release_relaxed(&p->returned, &top, (uintptr_t)h));
		/* The callback's last access to the pool, as the unlock is on
		 * the locked path: release pairs with the acquire load in
		 * counts_of, so a delete that sees nothing waiting any more
		 * frees the pool after this callback is done with it. */
		fetch_add_release(&p->returned_total, n);
		return;
	}
	h->node.next = NULL;
	depot_or_slabs(p, h, h, h->count, h->count);
}

/* Hands a batch of retired objects, first..., n of them, to the core. */
static void hand_batch(qsbr_thread *t, qsbr_pool *p, struct obj_head *first, uint32_t n)
{
	first->count = n;
	qsbr_retire_node_sized(t, &first->node, pool_reclaim, (size_t)n * p->size);
}

/* Hands the cache's open batch to the core. */
static void hand_open(qsbr_thread *t, qsbr_pool *p, struct pool_cache *c)
{
	struct obj_head *first = c->open;
	uint32_t n = c->n_open;

	if (n == 0)
		return;
	c->open = c->open_last = NULL;
	c->n_open = 0;
	hand_batch(t, p, first, n);
}

qsbr_pool *qsbr_pool_new(qsbr_domain *d, size_t size, size_t align)
{
	qsbr_pool *p;
	size_t a;

	if (align == 0)
		align = alignof(max_align_t);
	if (d == NULL || size == 0 || size > QSBR_POOL_SIZE_MAX || (align & (align - 1)) != 0 ||
	    align > QSBR_POOL_ALIGN_MAX) {
		errno = EINVAL;
		return NULL;
	}
	pthread_once(&pools_once, pools_init);
	p = ds_alloc_zeroed(d, 1, sizeof(*p), alignof(qsbr_pool));
	if (p == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	if (pthread_mutex_init(&p->lock, NULL) != 0) {
		qsbr__domain_free(d, p);
		errno = ENOMEM;
		return NULL;
	}
	a = align < alignof(struct obj_head) ? alignof(struct obj_head) : align;
	p->d = d;
	p->size = size;
	p->head = round_up(sizeof(struct obj_head), a);
	p->stride = round_up(p->head + size, a);
	p->first = round_up(sizeof(struct slab), a);
	p->slab_align = a < CACHELINE ? CACHELINE : a;
	if (d->opts.alloc == NULL && p->slab_align < POOL_PAGE)
		p->slab_align = POOL_PAGE; /* whole pages, for decommit */
	p->slab_bytes = POOL_SLAB_BYTES;
	if (p->first + POOL_SLAB_MIN_OBJECTS * p->stride > p->slab_bytes)
		p->slab_bytes = p->first + POOL_SLAB_MIN_OBJECTS * p->stride;
	p->per_slab = (uint32_t)((p->slab_bytes - p->first) / p->stride);
	p->keep_empty = POOL_KEEP_EMPTY_BYTES / p->slab_bytes;
	if (p->keep_empty < POOL_KEEP_EMPTY_MIN)
		p->keep_empty = POOL_KEEP_EMPTY_MIN;
	p->depot_max = POOL_DEPOT_BYTES / p->stride;
	if (p->depot_max < POOL_DEPOT_MIN)
		p->depot_max = POOL_DEPOT_MIN;
	p->cache_max = POOL_CACHE_BYTES / p->stride > POOL_CACHE_MAX
			       ? POOL_CACHE_MAX
			       : (uint32_t)(POOL_CACHE_BYTES / p->stride);
	if (p->cache_max < POOL_CACHE_MIN)
		p->cache_max = POOL_CACHE_MIN;
	return p;
}

/* Under both locks: whether objects retired to p still wait (the open
 * batches of its threads included). */
static bool waiting(const qsbr_pool *p)
{
	return counts_of(p).waiting != 0;
}

/*
 * Waits until no object retired to p waits any more; with both locks
 * held, they stay held on return (0), and are released on an error:
 * EDEADLK, from a retire callback, where the wait would wait on it, or
 * EBUSY, only in the child of a fork(), where the parent's waiting
 * objects never come back.  No call on p runs meanwhile.
 */
static int settle_locked(qsbr_pool *p)
{
	int err = 0;

	if (!waiting(p))
		return 0;
	if (qsbr__in_callback()) {
		err = EDEADLK;
	} else {
		/* The threads' open batches were retired before this call and
		 * are not in the core: take them (their owners make no call
		 * on p now; pools_lock keeps their exit hooks out), and let
		 * the wait below be their grace period. */
		for (struct pool_cache *c = p->caches; c != NULL; c = c->p_next) {
			p->reclaimed += c->n_open;
			p->open_taken += c->n_open;
			c->open = c->open_last = NULL;
			c->n_open = 0;
		}
		pthread_mutex_unlock(&p->lock);
		pthread_mutex_unlock(&pools_lock);
		/* Every thread online now passes a quiescent state (or goes
		 * offline), and everything retired in the domain before this
		 * call is freed after it: the pool's waiting objects too. */
		qsbr_barrier_domain(p->d);
		pthread_mutex_lock(&pools_lock);
		pthread_mutex_lock(&p->lock);
		if (!waiting(p))
			return 0;
		err = EBUSY;
	}
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&pools_lock);
	return err;
}

/* With both locks held and nothing waiting: p and its slabs go back. */
static void destroy_locked(qsbr_pool *p)
{
	struct slab *s, *give = NULL;

	/* The caches die; their owners free them (cache_of, or at exit).
	 * Each is read before its release store: after it, never. */
	for (struct pool_cache *c = p->caches; c != NULL;) {
		struct pool_cache *next = c->p_next;

		store_release(&c->pool, NULL);
		c = next;
	}
	p->caches = NULL;
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&pools_lock);
	for (s = p->all; s != NULL; s = s->all_next) {
		s->next = give;
		give = s;
	}
	slabs_release(p, give);
	pthread_mutex_destroy(&p->lock);
	qsbr__domain_free(p->d, p);
}

int qsbr_pool_delete(qsbr_pool *p)
{
	int err;

	if (p == NULL)
		return EINVAL;
	pthread_mutex_lock(&pools_lock);
	pthread_mutex_lock(&p->lock);
	if (allocated_of(p, counts_of(p)) != 0) {
		pthread_mutex_unlock(&p->lock);
		pthread_mutex_unlock(&pools_lock);
		return EBUSY;
	}
	err = settle_locked(p);
	if (err != 0)
		return err;
	/* Again, now that no callback runs: one on its lock-free path counts
	 * its batch as cached before it stops counting it as waiting. */
	if (allocated_of(p, counts_of(p)) != 0) {
		pthread_mutex_unlock(&p->lock);
		pthread_mutex_unlock(&pools_lock);
		return EBUSY;
	}
	destroy_locked(p);
	return 0;
}

/* For lib/ds (ds.h): the wait of qsbr_pool_delete for what was retired to
 * a structure's own pool, before its delete visits the nodes still in it. */
int qsbr__pool_settle(qsbr_pool *p)
{
	int err;

	pthread_mutex_lock(&pools_lock);
	pthread_mutex_lock(&p->lock);
	err = settle_locked(p);
	if (err == 0) {
		pthread_mutex_unlock(&p->lock);
		pthread_mutex_unlock(&pools_lock);
	}
	return err;
}

/* For lib/ds, after qsbr__pool_settle: p goes, with the structure's nodes
 * still allocated from it. */
void qsbr__pool_destroy(qsbr_pool *p)
{
	pthread_mutex_lock(&pools_lock);
	pthread_mutex_lock(&p->lock);
	destroy_locked(p);
}

/* Debug builds stop with a message; release builds refuse with EINVAL. */
static bool bad_object(const qsbr_pool *p, struct obj_head *h, const char *call)
{
	bool bad = h->state != OBJ_ALLOCATED || h->slab->pool != p;

	(void)call;
	QSBR_ASSERT(!bad, "%s: %p is not an allocated object of this pool", call, body_of(p, h));
	return bad;
}

/* A call's t and p: false, with errno EINVAL, if either is NULL or t is of
 * another domain than p's. */
static bool handles_ok(const qsbr_thread *t, const qsbr_pool *p)
{
	if (t == NULL || p == NULL || t->d != p->d) {
		errno = EINVAL;
		return false;
	}
	return true;
}

/* The checks qsbr_pool_free and qsbr_pool_retire share: obj's head, or
 * NULL with errno EINVAL (bad arguments, or not an allocated object of p). */
static struct obj_head *object_to_give_back(qsbr_thread *t, qsbr_pool *p, void *obj,
					    const char *call)
{
	struct obj_head *h;

	if (!handles_ok(t, p))
		return NULL;
	if (obj == NULL) {
		errno = EINVAL;
		return NULL;
	}
	CHECK_OWNER(t, call);
	h = head_of(p, obj);
	UNPOISON(h, sizeof(*h));
	if (bad_object(p, h, call)) {
		errno = EINVAL;
		return NULL;
	}
	return h;
}

/*
 * Under the lock, which it releases: one object for the caller and, for a
 * cache, a run of up to POOL_CACHE_BATCH - 1 more, from the partial slabs
 * (one at least has a free object).  Slots never carved since their slab
 * emptied are only reserved under the lock (the slab's carved, nfree);
 * their heads, fresh memory that nobody else touches, are written after
 * the unlock, so that the cache misses of a slab's first use are not
 * paid with the lock held.
 */
static struct obj_head *take_run(qsbr_pool *p, struct pool_cache *c)
{
	struct {
		struct slab *s;
		uint32_t start, n;
	} carve[4];
	unsigned ncarve = 0;
	uint32_t want = c != NULL ? POOL_CACHE_BATCH : 1, got = 0;
	struct obj_head *first = NULL, **link = &first;

	while (got < want && p->partial != NULL) {
		struct slab *s = p->partial;

#ifndef POOL_ASAN
		if (s->free == NULL) { /* the rest of s is uncarved (see put) */
			uint32_t k = want - got < s->nfree ? want - got : s->nfree;

			if (ncarve == sizeof(carve) / sizeof(carve[0]))
				break;
			carve[ncarve].s = s;
			carve[ncarve].start = s->carved;
			carve[ncarve++].n = k;
			s->carved += k;
			s->nfree -= k;
			p->in_use += k;
			got += k;
			if (s->nfree == 0)
				list_remove(&p->partial, s);
			continue;
		}
#endif
		*link = take(p, s);
		link = &(*link)->link;
		got++;
	}
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < ncarve; i++) {
		for (uint32_t j = 0; j < carve[i].n; j++) {
			struct obj_head *h = slot(p, carve[i].s, carve[i].start + j);

			UNPOISON(h, sizeof(*h));
			h->slab = carve[i].s;
			h->state = OBJ_FREE;
			*link = h;
			link = &h->link;
		}
	}
	*link = NULL;
	if (got > 1)
		cache_put_run(c, first->link, got - 1);
	return first;
}

/* Out of line: the cache is empty (or there is none).  Fills it from the
 * slabs, a new one if need be, and returns one object. */
static struct obj_head *__attribute__((noinline)) alloc_slow(qsbr_pool *p, struct pool_cache *c)
{
	struct slab *s;

	pthread_mutex_lock(&p->lock);
	QSBR_ASSERT(c == NULL || c->free == NULL, "qsbr_pool_alloc: refill of a cache that is not empty");
	if (c != NULL && p->depot == NULL)
		returned_take(p); /* into an empty depot: it stays within twice its bound */
	if (c != NULL && p->depot != NULL) {
		/* Runs from the depot: one lock, no slab touched. */
		struct obj_head *last;
		uint32_t n;

		c->free = runs_cut(&p->depot, POOL_CACHE_BATCH, &last, &n);
		c->free_tail = last;
		p->depot_objects -= n;
		pthread_mutex_unlock(&p->lock);
		store_relaxed(&c->n_free, n);
		return cache_pop(c);
	}
	s = p->partial;
	if (s == NULL && p->empty != NULL) {
		s = p->empty;
		list_remove(&p->empty, s);
		if (--p->n_empty <= p->keep_empty)
			p->excess_since = 0; /* the excess, if any, was used */
		list_insert(&p->partial, s);
	}
	if (s == NULL) {
		/* The domain's allocator, outside the lock. */
		pthread_mutex_unlock(&p->lock);
		s = slab_new(p);
		if (s == NULL)
			return NULL;
		pthread_mutex_lock(&p->lock);
		slab_add(p, s);
	}
	return take_run(p, c);
}

/* h, taken from a cache or the slabs, goes to the caller. */
static void *hand_out(const qsbr_pool *p, struct obj_head *h)
{
	h->state = OBJ_ALLOCATED;
	UNPOISON(body_of(p, h), p->size);
	POISON(h, sizeof(*h));
	return body_of(p, h);
}

void *qsbr_pool_alloc(qsbr_thread *t, qsbr_pool *p)
{
	struct pool_cache *c;
	struct obj_head *h;

	if (!handles_ok(t, p))
		return NULL;
	CHECK_OWNER(t, "qsbr_pool_alloc");
	c = cache_of(t, p, true);
	if (c != NULL && c->free == NULL) {
		/* What it retired starts its wait.  The core may run callbacks
		 * here, which may fill the cache: look again after it. */
		hand_open(t, p, c);
		if (c->free == NULL) {
			reserve_room(p, c, t);
			reserve_take(p, c);
		}
	}
	if (c != NULL && c->free != NULL) {
		h = cache_pop(c);
	} else {
		h = alloc_slow(p, c);
		if (h == NULL) {
			errno = ENOMEM;
			return NULL;
		}
	}
	return hand_out(p, h);
}

/* For lib/ds (ds.h): an object for a caller without a handle in the
 * pool's domain (a push from an unregistered thread, a structure's first
 * node), from the slabs under the lock; NULL without memory. */
void *qsbr__pool_alloc_any(qsbr_pool *p)
{
	struct obj_head *h = alloc_slow(p, NULL);

	if (h == NULL)
		return NULL;
	return hand_out(p, h);
}

void qsbr_pool_free(qsbr_thread *t, qsbr_pool *p, void *obj)
{
	struct pool_cache *c;
	struct obj_head *h;
	struct slab *give = NULL;

	h = object_to_give_back(t, p, obj, "qsbr_pool_free");
	if (h == NULL)
		return;
	POISON(obj, p->stride - p->head);
	c = cache_of(t, p, true);
	if (c != NULL) {
		if (load_relaxed(&c->n_free) >= p->cache_max)
			cache_spill_chain(p, c);
		cache_push(c, h);
		return;
	}
	pthread_mutex_lock(&p->lock);
	put(p, h);
	empties_decay(p, &give);
	pthread_mutex_unlock(&p->lock);
	slabs_release(p, give);
}

void qsbr_pool_retire(qsbr_thread *t, qsbr_pool *p, void *obj)
{
	struct pool_cache *c;
	struct obj_head *h;

	h = object_to_give_back(t, p, obj, "qsbr_pool_retire");
	if (h == NULL)
		return;
	h->state = OBJ_WAITING;
	h->link = NULL;
	/* Not poisoned yet: readers online at this call may still read it.
	 * Counted before the core's retire: the callback may run inside it. */
	c = cache_of(t, p, true);
	if (c == NULL) {
		pthread_mutex_lock(&p->lock);
		p->retired++;
		pthread_mutex_unlock(&p->lock);
		hand_batch(t, p, h, 1);
		return;
	}
	add_relaxed_owner(&c->n_retired, 1);
	if (c->open_last != NULL)
		c->open_last->link = h;
	else
		c->open = h;
	c->open_last = h;
	/* A batch's goal is made when it is handed over, after every retire
	 * in it: later than each one's own, so as safe.  An offline thread
	 * keeps nothing back. */
	if (++c->n_open >= POOL_RETIRE_BATCH || load_relaxed(&t->seq) == 0)
		hand_open(t, p, c);
}

void qsbr_pool_flush(qsbr_thread *t, qsbr_pool *p)
{
	struct pool_cache *c;

	if (!handles_ok(t, p))
		return;
	CHECK_OWNER(t, "qsbr_pool_flush");
	c = cache_of(t, p, false);
	if (c != NULL)
		hand_open(t, p, c);
}

size_t qsbr_pool_trim(qsbr_pool *p)
{
	struct slab *give = NULL, *s;
	size_t bytes = 0;

	if (p == NULL) {
		errno = EINVAL;
		return 0;
	}
	pthread_mutex_lock(&p->lock);
	depot_drain(p, &give); /* may empty slabs, and give some back */
	reserves_drain(p, &give);
	empties_release(p, 0, &give);
	pthread_mutex_unlock(&p->lock);
	for (s = give; s != NULL; s = s->next)
		bytes += p->slab_bytes;
	slabs_release(p, give);
	return bytes;
}

int qsbr_pool_stats_get(qsbr_pool *p, qsbr_pool_stats *out)
{
	struct counts k;

	if (p == NULL || out == NULL)
		return EINVAL;
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&p->lock);
	k = counts_of(p);
	out->allocated = allocated_of(p, k);
	out->waiting = k.waiting;
	out->thread_cached = k.in_caches - k.shared;
	out->thread_reserve = k.reserves;
	out->cached = p->n_slabs * p->per_slab - p->in_use + k.in_caches;
	out->slabs = p->n_slabs;
	out->bytes_held = p->n_slabs * p->slab_bytes;
	pthread_mutex_unlock(&p->lock);
	out->object_size = p->size;
	out->stride = p->stride;
	out->cache_max = p->cache_max;
	return 0;
}
