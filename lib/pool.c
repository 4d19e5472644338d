/* SPDX-License-Identifier: MIT */
/*
 * Pools (include/qsbr/pool.h): fixed-size objects carved from large slabs of
 * the domain's allocator, reused after a grace period instead of going back
 * to the allocator.
 *
 *   slab: [struct slab][head|object|pad][head|object|pad] ... (stride each)
 *
 * Every object carries a hidden head in front of it: the qsbr_node that the
 * core's retire lists link, its slab, and its state.  A pool retire is a
 * plain qsbr_retire_node_sized of that node (the core's goals, batches,
 * hand-over at unregister and thread exit, fork rules), whose callback puts
 * the object back on its slab's free list.  So a waiting object is never
 * lost: it is in the core's lists like any retired object, and the core's
 * invariant (a callback runs only after every thread online at the retire
 * has passed a quiescent state at or past the goal) is the reuse rule.  The
 * core's retire path is not changed by pools.
 *
 * Free objects are kept per slab, under the pool's lock: slabs with free
 * objects are on the partial list, slabs with none are on no list, and a
 * slab whose objects are all free is empty.  At most POOL_KEEP_EMPTY empty
 * slabs are kept (for the next allocations); a slab that empties beyond that
 * is given back at once, so the idle memory of a pool is its free objects in
 * slabs that still hold live or waiting ones, plus POOL_KEEP_EMPTY slabs.
 * qsbr_pool_trim gives back the kept ones too.
 *
 * There is no per-thread cache (the per-thread cache bound is 0): every
 * alloc, free and reuse takes the pool's lock once.
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

enum obj_state { OBJ_FREE = 0x51f7ee, OBJ_ALLOCATED = 0x51a11c, OBJ_WAITING = 0x51a17 };

struct obj_head {
	qsbr_node node;         /* the core's retire link; the free list's link */
	struct slab *slab;
	uint64_t state;         /* enum obj_state */
};

struct slab {
	struct slab *prev, *next; /* on the partial or the empty list */
	qsbr_pool *pool;
	struct obj_head *free, *free_tail; /* free objects, linked by node.next */
	uint32_t nfree;         /* free objects, carved or not */
	uint32_t carved;        /* objects ever handed out since the slab emptied */
};

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
	struct slab *partial;   /* slabs with free objects, not all free */
	struct slab *empty;     /* slabs with every object free */
	uint64_t n_slabs, n_empty;
	uint64_t in_use;        /* allocated + waiting */
	au64 waiting;           /* retired, callback not yet run */
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

/* Gives a slab back; not under the lock. */
static void slab_release(qsbr_pool *p, struct slab *s)
{
	UNPOISON(s, p->slab_bytes);
	qsbr__domain_free(p->d, s);
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
	p->in_use++;
	if (--s->nfree == 0)
		list_remove(&p->partial, s);
	return h;
}

/* Under the lock: h is free again.  Returns a slab to give back (after
 * unlocking), or NULL. */
static struct slab *put(qsbr_pool *p, struct obj_head *h)
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
		return NULL;
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
		return NULL;
	}
	p->n_slabs--;
	return s;
}

/* The retire callback: the goal is reached, the object is free. */
static void pool_reclaim(qsbr_node *n)
{
	struct obj_head *h = (struct obj_head *)(void *)n;
	qsbr_pool *p = h->slab->pool;
	struct slab *give;

	/* The grace period is over: from here a reader is a buggy one. */
	POISON(body_of(p, h), p->stride - p->head);
	pthread_mutex_lock(&p->lock);
	give = put(p, h);
	/* Under the lock, with in_use: qsbr_pool_delete reads both under it. */
	fetch_sub_relaxed(&p->waiting, 1);
	pthread_mutex_unlock(&p->lock);
	if (give != NULL)
		slab_release(p, give);
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
	atomic_init(&p->waiting, 0);
	return p;
}

int qsbr_pool_delete(qsbr_pool *p)
{
	struct slab *s;

	if (p == NULL)
		return EINVAL;
	pthread_mutex_lock(&p->lock);
	if (p->in_use > load_relaxed(&p->waiting)) {
		pthread_mutex_unlock(&p->lock);
		return EBUSY;
	}
	if (load_relaxed(&p->waiting) != 0) {
		pthread_mutex_unlock(&p->lock);
		if (qsbr__in_callback())
			return EDEADLK; /* the wait below would wait on this callback */
		/* Everything retired in the domain before this call is freed
		 * after it: the pool's waiting objects too. */
		qsbr_barrier_domain(p->d);
		pthread_mutex_lock(&p->lock);
		if (load_relaxed(&p->waiting) != 0) {
			/* Only in the child of a fork(): the parent's waiting
			 * objects never come back here. */
			pthread_mutex_unlock(&p->lock);
			return EBUSY;
		}
	}
	pthread_mutex_unlock(&p->lock);
	/* Every object is free: every slab is empty. */
	while ((s = p->empty) != NULL) {
		list_remove(&p->empty, s);
		slab_release(p, s);
	}
	while ((s = p->partial) != NULL) {
		list_remove(&p->partial, s);
		slab_release(p, s);
	}
	pthread_mutex_destroy(&p->lock);
	qsbr__domain_free(p->d, p);
	return 0;
}

/* Debug builds stop with a message; release builds refuse with EINVAL. */
static bool bad_object(const qsbr_pool *p, struct obj_head *h, const char *call)
{
	bool bad = h->state != OBJ_ALLOCATED || h->slab->pool != p;

	(void)call;
	QSBR_ASSERT(!bad, "%s: %p is not an allocated object of this pool", call, body_of(p, h));
	return bad;
}

void *qsbr_pool_alloc(qsbr_thread *t, qsbr_pool *p)
{
	struct obj_head *h;
	struct slab *s;

	if (t == NULL || p == NULL || t->d != p->d) {
		errno = EINVAL;
		return NULL;
	}
	CHECK_OWNER(t, "qsbr_pool_alloc");
	pthread_mutex_lock(&p->lock);
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
		if (s == NULL) {
			errno = ENOMEM;
			return NULL;
		}
		pthread_mutex_lock(&p->lock);
		p->n_slabs++;
		list_insert(&p->partial, s);
	}
	h = take(p, s);
	h->state = OBJ_ALLOCATED;
	pthread_mutex_unlock(&p->lock);
	UNPOISON(body_of(p, h), p->size);
	POISON(h, sizeof(*h));
	return body_of(p, h);
}

void qsbr_pool_free(qsbr_thread *t, qsbr_pool *p, void *obj)
{
	struct obj_head *h;
	struct slab *give;

	if (t == NULL || p == NULL || obj == NULL || t->d != p->d) {
		errno = EINVAL;
		return;
	}
	CHECK_OWNER(t, "qsbr_pool_free");
	h = head_of(p, obj);
	UNPOISON(h, sizeof(*h));
	if (bad_object(p, h, "qsbr_pool_free")) {
		errno = EINVAL;
		return;
	}
	POISON(obj, p->stride - p->head);
	pthread_mutex_lock(&p->lock);
	give = put(p, h);
	pthread_mutex_unlock(&p->lock);
	if (give != NULL)
		slab_release(p, give);
}

void qsbr_pool_retire(qsbr_thread *t, qsbr_pool *p, void *obj)
{
	struct obj_head *h;

	if (t == NULL || p == NULL || obj == NULL || t->d != p->d) {
		errno = EINVAL;
		return;
	}
	CHECK_OWNER(t, "qsbr_pool_retire");
	h = head_of(p, obj);
	UNPOISON(h, sizeof(*h));
	if (bad_object(p, h, "qsbr_pool_retire")) {
		errno = EINVAL;
		return;
	}
	h->state = OBJ_WAITING;
	/* Not poisoned yet: readers online at this call may still read it. */
	/* Before the retire: the callback may run inside it. */
	fetch_add_relaxed(&p->waiting, 1);
	qsbr_retire_node_sized(t, &h->node, pool_reclaim, p->size);
}

size_t qsbr_pool_trim(qsbr_pool *p)
{
	struct slab *list, *s;
	size_t bytes = 0;

	if (p == NULL) {
		errno = EINVAL;
		return 0;
	}
	pthread_mutex_lock(&p->lock);
	list = p->empty;
	p->empty = NULL;
	p->n_slabs -= p->n_empty;
	p->n_empty = 0;
	pthread_mutex_unlock(&p->lock);
	while ((s = list) != NULL) {
		list = s->next;
		slab_release(p, s);
		bytes += p->slab_bytes;
	}
	return bytes;
}

int qsbr_pool_stats_get(qsbr_pool *p, qsbr_pool_stats *out)
{
	uint64_t waiting;

	if (p == NULL || out == NULL)
		return EINVAL;
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&p->lock);
	waiting = load_relaxed(&p->waiting);
	/* A retire counts waiting before its callback can run: clamp. */
	out->allocated = p->in_use > waiting ? p->in_use - waiting : 0;
	out->waiting = waiting < p->in_use ? waiting : p->in_use;
	out->cached = p->n_slabs * p->per_slab - p->in_use;
	out->slabs = p->n_slabs;
	out->bytes_held = p->n_slabs * p->slab_bytes;
	pthread_mutex_unlock(&p->lock);
	out->object_size = p->size;
	out->stride = p->stride;
	return 0;
}
