/* SPDX-License-Identifier: MIT */
/*
 * The thread registry: slots, register/unregister, the thread-exit key, and
 * the fork child's release of the slots of threads that did not come along.
 *
 * Slots live in blocks that are never moved or freed before the domain: a
 * handle (a slot's address) stays valid while its thread is registered, and
 * a scanner never reads freed memory.  Block k holds 8 << k slots, so a
 * domain with few threads stays small and 24 blocks hold any number of
 * threads; the domain keeps them in a fixed directory, so a scan finds them
 * without chasing links.  Each slot is cache-line aligned; the line that
 * scanners read holds only seq and read-only pointers.  The online counts
 * and masks that let a scan skip offline slots are in internal.h.
 *
 * reg_lock serialises register/unregister (free list, block growth, counts);
 * scanners take no lock.  A freed slot reads as offline until reused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define FIRST_BLOCK_SLOTS 8u

/* The inline qsbr_quiescent reads the slot through struct qsbr__thread_head. */
_Static_assert(offsetof(struct qsbr_thread, seq) == offsetof(struct qsbr__thread_head, seq),
	       "seq must be where qsbr.h reads it");
_Static_assert(offsetof(struct qsbr_thread, wr_seq) == offsetof(struct qsbr__thread_head, wr_seq),
	       "wr_seq must be where qsbr.h reads it");
_Static_assert(sizeof(au64) == sizeof(uint64_t), "an atomic word must be a plain word");

void qsbr__registry_init(qsbr_domain *d)
{
	atomic_init(&d->n_blocks, 0);
	atomic_init(&d->blocker, NULL);
	d->free_slots = NULL;
	d->n_threads = 0;
}

void qsbr__registry_destroy(qsbr_domain *d)
{
	for (uint64_t k = 0; k < load_relaxed(&d->n_blocks); k++)
		qsbr__free(&d->opts, d->blocks[k]);
}

/* Called with reg_lock held. */
static struct slot_block *block_new(qsbr_domain *d)
{
	uint64_t k = load_relaxed(&d->n_blocks);
	uint32_t n = FIRST_BLOCK_SLOTS << k;
	size_t groups = (n + GROUP_SLOTS - 1) / GROUP_SLOTS, words = (n + 63) / 64;
	size_t at_counts = round_up(sizeof(struct slot_block), sizeof(au64));
	size_t at_mask = round_up(at_counts + groups * sizeof(au64), CACHELINE);
	size_t at_slots = round_up(at_mask + words * sizeof(au64), CACHELINE);
	size_t size = at_slots + (size_t)n * sizeof(struct qsbr_thread);
	struct slot_block *b;

	if (k == MAX_BLOCKS)
		return NULL;
	b = qsbr__alloc(&d->opts, size, CACHELINE);
	if (b == NULL)
		return NULL;
	memset(b, 0, size);
	b->n = n;
	atomic_init(&b->used, 0);
	b->group_online = (au64 *)((char *)b + at_counts);
	b->mask = (au64 *)((char *)b + at_mask);
	b->slots = (struct qsbr_thread *)((char *)b + at_slots);
	for (size_t g = 0; g < groups; g++)
		atomic_init(&b->group_online[g], 0);
	for (size_t w = 0; w < words; w++)
		atomic_init(&b->mask[w], 0);
	for (uint32_t i = 0; i < n; i++) {
		struct qsbr_thread *t = &b->slots[i];

		atomic_init(&t->seq, 0);
		t->wr_seq = d->wr;
		t->pub = &t->seq;
		t->d = d;
		t->mask_word = &b->mask[i / 64];
		t->mask_bit = UINT64_C(1) << (i % 64);
		t->group_online = &b->group_online[i / GROUP_SLOTS];
		atomic_init(&t->state, SLOT_FREE);
		atomic_init(&t->lists, LISTS_FREE);
		t->ring.slot = t->ring_slots;
		t->ring.size = RING_SIZE;
	}
	d->blocks[k] = b;
	/* Release pairs with load_acquire(n_blocks) in scan() and
	 * REGISTRY_EACH: a reader that counts the block sees it, its slots
	 * and masks initialised. */
	store_release(&d->n_blocks, k + 1);
	return b;
}

/* Called with reg_lock held. */
static qsbr_thread *slot_take(qsbr_domain *d)
{
	uint64_t k = load_relaxed(&d->n_blocks);
	struct slot_block *b = k > 0 ? d->blocks[k - 1] : NULL;
	qsbr_thread *t = d->free_slots;

	if (t != NULL) {
		d->free_slots = t->next_free;
		return t;
	}
	if (b == NULL || load_relaxed(&b->used) == b->n) {
		b = block_new(d);
		if (b == NULL)
			return NULL;
	}
	/* Relaxed: a scan that reads the old count skips this slot, and the new
	 * thread's attach fence (R2) follows the scan's fence (design.md). */
	store_relaxed(&b->used, load_relaxed(&b->used) + 1);
	return &b->slots[load_relaxed(&b->used) - 1];
}

/* ---- The thread-exit key, and the calling thread's handles ------------- */

/* One key for the library: its value is the calling thread's first handle;
 * the handles chain through tls_next.  The destructor unregisters them. */
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_ok;

static void tls_exit(void *head)
{
	qsbr_thread *t = head;

	while (t != NULL) {
		qsbr_thread *next = t->tls_next;

		qsbr_unregister(t); /* removes t from the chain */
		t = next;
	}
}

static void tls_init(void)
{
	tls_ok = pthread_key_create(&tls_key, tls_exit) == 0;
}

static void tls_add(qsbr_thread *t)
{
	pthread_once(&tls_once, tls_init);
	if (!tls_ok)
		return; /* no automatic unregister, as documented */
	t->tls_next = pthread_getspecific(tls_key);
	pthread_setspecific(tls_key, t);
}

static void tls_remove(qsbr_thread *t)
{
	qsbr_thread *head, **link;

	if (!tls_ok)
		return;
	head = pthread_getspecific(tls_key);
	for (link = &head; *link != NULL; link = &(*link)->tls_next) {
		if (*link == t) {
			*link = t->tls_next;
			break;
		}
	}
	pthread_setspecific(tls_key, head);
	t->tls_next = NULL;
}

/* The calling thread's handle in d, or NULL. */
qsbr_thread *qsbr__self(qsbr_domain *d)
{
	pthread_once(&tls_once, tls_init);
	if (!tls_ok)
		return NULL;
	for (qsbr_thread *t = pthread_getspecific(tls_key); t != NULL; t = t->tls_next)
		if (t->d == d)
			return t;
	return NULL;
}

/* ---- Register and unregister -------------------------------------------- */

qsbr_thread *qsbr_register(qsbr_domain *d)
{
	qsbr_thread *t;

	if (d == NULL) {
		errno = EINVAL;
		return NULL;
	}
	pthread_mutex_lock(&d->reg_lock);
	t = slot_take(d);
	if (t == NULL) {
		pthread_mutex_unlock(&d->reg_lock);
		errno = ENOMEM;
		return NULL;
	}
	/* A shared domain's thread holds a region slot too (shared.c). */
	store_relaxed(&t->shm_slot, NULL);
	if (d->shm != NULL && !qsbr__shm_claim(t)) {
		t->next_free = d->free_slots;
		d->free_slots = t;
		pthread_mutex_unlock(&d->reg_lock);
		return NULL; /* errno EAGAIN */
	}
	t->owner = pthread_self();
	t->id = ++d->next_id;
	t->name[0] = '\0';
	t->cap_wait = false;
	t->tls_next = NULL;
	t->batch_limit = d->opts.batch_size;
	t->newest_goal = load_relaxed(d->wr);
	t->since_count = 0;
	t->since_bytes = 0;
	t->boxes = NULL;
	t->n_boxes = 0;
	t->pool_caches = NULL;
	t->next_free = NULL;
	/* A flush requested before we registered is not ours to answer. */
	t->flush_done = load_relaxed(&d->flush_gen);
	store_relaxed(&t->flush_req, t->flush_done);
	store_relaxed(&t->flush_ack, t->flush_done);
	/* Its lists are FREE (block_new, or the last unregister's unpin); a
	 * stealer that saw the previous owner may still hold them:
	 * qsbr_attach below pins them, waiting for it, before they are reset. */
	t->pins = 0;
	/* No progress mark yet: the helper's first look only records one. */
	store_relaxed(&t->helper_mark, UINT64_MAX);
	store_relaxed(&t->state, SLOT_USED);
	d->n_threads++;
	pthread_mutex_unlock(&d->reg_lock);
	tls_add(t);
	qsbr_attach(t);
	/* Pinned: empty already (the last owner flushed), reset for clarity. */
	t->open = (struct batch){ 0 };
	t->ring.head = 0;
	t->ring.len = 0;
	return t;
}

/* Returns t's slot to the free list.  Under reg_lock; t is offline and
 * holds no batch. */
static void slot_release(qsbr_thread *t)
{
	qsbr_domain *d = t->d;

	qsbr__stats_fold(t);
	store_relaxed(&t->state, SLOT_FREE);
	t->next_free = d->free_slots;
	d->free_slots = t;
	d->n_threads--;
}

void qsbr_unregister(qsbr_thread *t)
{
	qsbr_domain *d;

	if (t == NULL) {
		errno = EINVAL;
		return;
	}
	CHECK_OWNER(t, "qsbr_unregister");
	/* Every build: a second unregister would put the slot on the free list
	 * twice, and two threads would share it. */
	if (!qsbr__owned(t)) {
		errno = EINVAL;
		return;
	}
	if (REFUSE_IN_CALLBACK("qsbr_unregister")) /* the running reclaim uses the handle */
		return;
	d = t->d;
	tls_remove(t);
	qsbr__retire_exit(t); /* offline, holding nothing */
	if (d->shm != NULL)
		qsbr__shm_leave(t); /* its region retires go to the orphans */
	pthread_mutex_lock(&d->reg_lock);
	slot_release(t);
	pthread_mutex_unlock(&d->reg_lock);
}

int qsbr_thread_set_name(qsbr_thread *t, const char *name)
{
	if (t == NULL || name == NULL)
		return EINVAL;
	CHECK_OWNER(t, "qsbr_thread_set_name");
	pthread_mutex_lock(&t->d->reg_lock);
	strncpy(t->name, name, sizeof(t->name) - 1);
	t->name[sizeof(t->name) - 1] = '\0';
	pthread_mutex_unlock(&t->d->reg_lock);
	return 0;
}

uint64_t qsbr_thread_id(const qsbr_thread *t)
{
	if (t == NULL) {
		errno = EINVAL;
		return 0;
	}
	return t->id;
}

/*
 * In the child of fork(), under every lock (domain.c): the threads that did
 * not come along are gone; their slots are released.  The forking thread's
 * handles stay, holding nothing retired before the fork (retire.c).
 */
void qsbr__registry_fork_child(qsbr_domain *d)
{
	REGISTRY_EACH(d, t) {
		if (load_relaxed(&t->state) != SLOT_USED)
			continue;
		if (d->shm != NULL)
			qsbr__shm_fork_child(t); /* its region slot is the parent's */
		qsbr__retire_fork_child(t);
		if (pthread_equal(t->owner, pthread_self()))
			continue;
		if (load_relaxed(&t->seq) != 0)
			qsbr__detach(t);
		t->tls_next = NULL;
		slot_release(t);
	}
	store_relaxed(&d->blocker, NULL);
}
