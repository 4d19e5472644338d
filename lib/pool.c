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
 * Free objects live in two places.  Each thread keeps a cache per pool
 * (struct pool_cache, chained from its qsbr_thread): at most cache_max free
 * objects (POOL_CACHE_BYTES of them, within POOL_CACHE_MIN..POOL_CACHE_MAX),
 * taken and given without a lock.  Behind the caches, the
 * slabs keep the rest, under the pool's lock: slabs with free objects are on
 * the partial list, slabs with none on no list, and a slab whose objects are
 * all free is empty.  Between the two, the depot keeps up to POOL_DEPOT_MAX
 * chains of POOL_CACHE_BATCH free objects: a cache that overflows gives a
 * chain to it, one that runs dry takes a chain from it, each in one lock
 * and O(1) under it; without a chain there, a dry cache takes
 * POOL_CACHE_BATCH objects from the slabs (and, the depot full, an
 * overflowing one gives them to the slabs).  A retired object's callback puts it in the cache of the thread that
 * runs the callback (qsbr__callback_thread: most often the retiring thread
 * itself, at its own retire or reclaim), or, from the helper thread or with
 * the cache full, back in its slab.
 *
 * At most POOL_KEEP_EMPTY empty slabs are kept (for the next allocations); a
 * slab that empties beyond that is given back at once.  So the idle memory
 * of a pool is bounded by cache_max objects (and a batch of fewer than
 * POOL_RETIRE_BATCH retired ones) per registered thread that used it,
 * POOL_DEPOT_MAX * POOL_CACHE_BATCH objects in the depot, the free objects in slabs that still hold others, and
 * POOL_KEEP_EMPTY slabs.  qsbr_pool_trim puts the depot's objects back in
 * their slabs and gives back the empty ones.
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
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <string.h>

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
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define POOL_SLAB_BYTES ((size_t)64 << 10) /* a slab, unless 8 objects need more */
#define POOL_SLAB_MIN_OBJECTS 8u
#define POOL_KEEP_EMPTY 1u                 /* empty slabs kept for reuse */
#define POOL_CACHE_BYTES ((size_t)128 << 10) /* a thread's cache: so many bytes, */
#define POOL_CACHE_MAX 1024u               /* but at most so many objects */
#define POOL_CACHE_MIN 16u                 /* and at least so many */
#define POOL_CACHE_BATCH 64u               /* moved between a cache and the depot */
#define POOL_DEPOT_MAX 32u                 /* chains of POOL_CACHE_BATCH in the depot */
#define POOL_RETIRE_BATCH 8u              /* pool retires per core retire */

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
	struct obj_head *free, *free_tail; /* linked by node.next */
	struct obj_head *open, *open_last; /* retired, not yet handed to the core */
	uint32_t n_open;
	au64 n_free;
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
	uint64_t n_slabs, n_empty;
	uint64_t in_use;        /* out of the slabs: in caches or the depot, allocated, waiting */
	struct obj_head *depot; /* chains of free objects, linked by link */
	uint64_t depot_chains, depot_objects;
	/* Under lock: retires and callbacks not counted in a live cache (no
	 * cache, the helper's callbacks, caches of threads that left). */
	uint64_t retired, reclaimed;
};

static size_t round_up(size_t n, size_t to)
{
	return (n + to - 1) / to * to;
}

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

/* Gives slabs back, linked by next; not under the lock. */
static void slabs_release(qsbr_pool *p, struct slab *s)
{
	while (s != NULL) {
		struct slab *next = s->next;

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

/* Under the lock: h (poisoned) is back in its slab.  A slab to give back
 * goes on *give (linked by next), for after the unlock. */
static void put(qsbr_pool *p, struct obj_head *h, struct slab **give)
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
	if (p->n_empty < POOL_KEEP_EMPTY) {
		list_insert(&p->empty, s);
		p->n_empty++;
		return;
	}
	slab_drop(p, s);
	s->next = *give;
	*give = s;
}

/* ---- Thread caches ---------------------------------------------------- */

/* Cache lists: LIFO for locality, FIFO under ASan (a longer quarantine). */
static void cache_push(struct pool_cache *c, struct obj_head *h)
{
	h->state = OBJ_FREE;
	h->node.next = NULL;
#ifdef POOL_ASAN
	if (c->free_tail != NULL)
		c->free_tail->node.next = &h->node;
	else
		c->free = h;
	c->free_tail = h;
#else
	h->node.next = &c->free->node;
	if (c->free == NULL)
		c->free_tail = h;
	c->free = h;
#endif
	add_relaxed_owner(&c->n_free, 1);
}

static struct obj_head *cache_pop(struct pool_cache *c)
{
	struct obj_head *h = c->free;

	c->free = (struct obj_head *)(void *)h->node.next;
	if (c->free == NULL)
		c->free_tail = NULL;
	store_relaxed(&c->n_free, load_relaxed(&c->n_free) - 1);
	return h;
}

/* Under the pool's lock: n objects of the cache back to their slabs. */
static void cache_spill(qsbr_pool *p, struct pool_cache *c, uint64_t n, struct slab **give)
{
	while (n-- > 0 && c->free != NULL)
		put(p, cache_pop(c), give);
}

static struct pool_cache *cache_find(qsbr_thread *t, qsbr_pool *p, bool make);

/* Cuts up to n objects off the cache: a chain linked by node.next. */
static struct obj_head *cache_cut(struct pool_cache *c, uint32_t n, uint32_t *count)
{
	struct obj_head *first = c->free, *last = first;
	uint32_t k = 1;

	if (first == NULL) {
		*count = 0;
		return NULL;
	}
	while (k < n && last->node.next != NULL) {
		last = (struct obj_head *)(void *)last->node.next;
		k++;
	}
	c->free = (struct obj_head *)(void *)last->node.next;
	if (c->free == NULL)
		c->free_tail = NULL;
	last->node.next = NULL;
	store_relaxed(&c->n_free, load_relaxed(&c->n_free) - k);
	*count = k;
	return first;
}

/* A full cache gives a chain to the depot in one lock (or, with the depot
 * full, to the slabs). */
static void cache_spill_chain(qsbr_pool *p, struct pool_cache *c)
{
	struct slab *give = NULL;
	uint32_t n;
	struct obj_head *first = cache_cut(c, POOL_CACHE_BATCH, &n);

	if (first == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	if (p->depot_chains < POOL_DEPOT_MAX) {
		first->count = n;
		first->link = p->depot;
		p->depot = first;
		p->depot_chains++;
		p->depot_objects += n;
	} else {
		while (first != NULL) {
			struct obj_head *next = (struct obj_head *)(void *)first->node.next;

			put(p, first, &give);
			first = next;
		}
	}
	pthread_mutex_unlock(&p->lock);
	slabs_release(p, give);
}

/* Under the lock: the depot's objects back to their slabs. */
static void depot_drain(qsbr_pool *p, struct slab **give)
{
	while (p->depot != NULL) {
		struct obj_head *h = p->depot;

		p->depot = h->link;
		while (h != NULL) {
			struct obj_head *next = (struct obj_head *)(void *)h->node.next;

			put(p, h, give);
			h = next;
		}
	}
	p->depot_chains = 0;
	p->depot_objects = 0;
}

/* t's cache of p, made if need be; NULL without memory for one.  The
 * first of t's caches is the one it used last. */
static inline struct pool_cache *cache_of(qsbr_thread *t, qsbr_pool *p, bool make)
{
	struct pool_cache *c = t->pool_caches;

	if (c != NULL && atomic_load_explicit(&c->pool, memory_order_acquire) == p)
		return c;
	return cache_find(t, p, make);
}

static struct pool_cache *__attribute__((noinline)) cache_find(qsbr_thread *t, qsbr_pool *p,
								 bool make)
{
	struct pool_cache **link = &t->pool_caches, *c;

	while ((c = *link) != NULL) {
		qsbr_pool *cp = atomic_load_explicit(&c->pool, memory_order_acquire);

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
			qsbr__domain_free(t->d, c);
			continue;
		}
		link = &c->t_next;
	}
	if (!make)
		return NULL;
	c = qsbr__domain_alloc(t->d, sizeof(*c), alignof(struct pool_cache));
	if (c == NULL)
		return NULL;
	memset(c, 0, sizeof(*c));
	atomic_init(&c->pool, p);
	atomic_init(&c->n_free, 0);
	atomic_init(&c->n_retired, 0);
	atomic_init(&c->n_reclaimed, 0);
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
		qsbr_pool *p = atomic_load_explicit(&c->pool, memory_order_acquire);
		struct slab *give = NULL;

		t->pool_caches = c->t_next;
		if (p != NULL) {
			/* Under pools_lock: p cannot be deleted meanwhile.  t
			 * is offline and still registered: its retire runs no
			 * callback, and qsbr__retire_exit hands it over next. */
			hand_open(t, p, c);
			pthread_mutex_lock(&p->lock);
			cache_spill(p, c, UINT64_MAX, &give);
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
		qsbr__domain_free(t->d, c);
	}
	pthread_mutex_unlock(&pools_lock);
}

/* ---- Counts --------------------------------------------------------- */

struct counts {
	uint64_t in_caches, waiting; /* in_caches: the depot's too */
};

/* Under the lock. */
static struct counts counts_of(const qsbr_pool *p)
{
	struct counts k = { p->depot_objects, 0 };
	uint64_t retired = p->retired, reclaimed = p->reclaimed;

	for (struct pool_cache *c = p->caches; c != NULL; c = c->p_next) {
		k.in_caches += load_relaxed(&c->n_free);
		retired += load_relaxed(&c->n_retired);
		reclaimed += load_relaxed(&c->n_reclaimed);
	}
	/* Read while threads run, a retire may show before its count: clamp. */
	k.waiting = retired > reclaimed ? retired - reclaimed : 0;
	return k;
}

static uint64_t allocated_of(const qsbr_pool *p, struct counts k)
{
	return p->in_use > k.in_caches + k.waiting ? p->in_use - k.in_caches - k.waiting : 0;
}

/* ---- The calls -------------------------------------------------------- */

/* The retire callback: the goal is reached for a batch of objects (linked
 * by link from the first, whose node the core held).  Into the cache of the
 * thread running it while it has room, the rest into their slabs. */
static void pool_reclaim(qsbr_node *n)
{
	struct obj_head *h = (struct obj_head *)(void *)n;
	qsbr_pool *p = h->slab->pool;
	qsbr_thread *t = qsbr__callback_thread();
	struct pool_cache *c = t != NULL ? cache_of(t, p, false) : NULL;
	struct slab *give = NULL;
	uint64_t cached = 0, left = 0;

	/* The grace period is over: from here a reader is a buggy one. */
#ifdef POOL_ASAN
	for (struct obj_head *x = h; x != NULL; x = x->link)
		POISON(body_of(p, x), p->stride - p->head);
#endif
	if (c != NULL && load_relaxed(&c->n_free) + h->count > p->cache_max)
		cache_spill_chain(p, c);
	while (h != NULL && c != NULL && load_relaxed(&c->n_free) < p->cache_max) {
		struct obj_head *next = h->link;

		cache_push(c, h);
		cached++;
		h = next;
	}
	/* After the pushes: counts_of never sees them waiting and cached. */
	if (cached != 0)
		add_relaxed_owner(&c->n_reclaimed, cached);
	if (h == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	while (h != NULL) {
		struct obj_head *next = h->link;

		put(p, h, &give);
		left++;
		h = next;
	}
	p->reclaimed += left;
	pthread_mutex_unlock(&p->lock);
	slabs_release(p, give);
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
	p = qsbr__domain_alloc(d, sizeof(*p), alignof(qsbr_pool));
	if (p == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	memset(p, 0, sizeof(*p));
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
	p->slab_bytes = POOL_SLAB_BYTES;
	if (p->first + POOL_SLAB_MIN_OBJECTS * p->stride > p->slab_bytes)
		p->slab_bytes = p->first + POOL_SLAB_MIN_OBJECTS * p->stride;
	p->per_slab = (uint32_t)((p->slab_bytes - p->first) / p->stride);
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

		atomic_store_explicit(&c->pool, NULL, memory_order_release);
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

/* The checks qsbr_pool_free and qsbr_pool_retire share: obj's head, or
 * NULL with errno EINVAL (bad arguments, or not an allocated object of p). */
static struct obj_head *object_to_give_back(qsbr_thread *t, qsbr_pool *p, void *obj,
					    const char *call)
{
	struct obj_head *h;

	if (t == NULL || p == NULL || obj == NULL || t->d != p->d) {
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

/* Out of line: the cache is empty (or there is none).  Fills it from the
 * slabs, a new one if need be, and returns one object. */
static struct obj_head *__attribute__((noinline)) alloc_slow(qsbr_pool *p, struct pool_cache *c)
{
	struct obj_head *h;
	struct slab *s;

	pthread_mutex_lock(&p->lock);
	QSBR_ASSERT(c == NULL || c->free == NULL, "qsbr_pool_alloc: refill of a cache that is not empty");
	if (c != NULL && p->depot != NULL) {
		/* A chain from the depot: one lock, no slab touched. */
		h = p->depot;
		p->depot = h->link;
		p->depot_chains--;
		p->depot_objects -= h->count;
		pthread_mutex_unlock(&p->lock);
		c->free = (struct obj_head *)(void *)h->node.next;
		c->free_tail = NULL;
#ifdef POOL_ASAN
		for (struct obj_head *x = c->free; x != NULL;
		     x = (struct obj_head *)(void *)x->node.next)
			c->free_tail = x;
#endif
		store_relaxed(&c->n_free, load_relaxed(&c->n_free) + h->count - 1);
		return h;
	}
	s = p->partial;
	if (s == NULL && p->empty != NULL) {
		s = p->empty;
		list_remove(&p->empty, s);
		p->n_empty--;
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
	h = take(p, s);
	/* And a batch for the cache, from the slabs that have free objects. */
	for (uint32_t i = 1; c != NULL && i < POOL_CACHE_BATCH && p->partial != NULL; i++)
		cache_push(c, take(p, p->partial));
	pthread_mutex_unlock(&p->lock);
	return h;
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

	if (t == NULL || p == NULL || t->d != p->d) {
		errno = EINVAL;
		return NULL;
	}
	CHECK_OWNER(t, "qsbr_pool_alloc");
	c = cache_of(t, p, true);
	if (c != NULL && c->free == NULL)
		/* What it retired starts its wait.  The core may run callbacks
		 * here, which may fill the cache: look again after it. */
		hand_open(t, p, c);
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
	put(p, h, &give);
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

	if (t == NULL || p == NULL || t->d != p->d) {
		errno = EINVAL;
		return;
	}
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
	while ((s = p->empty) != NULL) {
		list_remove(&p->empty, s);
		slab_drop(p, s);
		s->next = give;
		give = s;
	}
	p->n_empty = 0;
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
	out->thread_cached = k.in_caches - p->depot_objects;
	out->cached = p->n_slabs * p->per_slab - p->in_use + k.in_caches;
	out->slabs = p->n_slabs;
	out->bytes_held = p->n_slabs * p->slab_bytes;
	pthread_mutex_unlock(&p->lock);
	out->object_size = p->size;
	out->stride = p->stride;
	out->cache_max = p->cache_max;
	return 0;
}
