/* SPDX-License-Identifier: MIT */
/*
 * The thread registry.  Slots live in blocks that are never moved or freed
 * before the domain: a handle (a slot's address) stays valid while its thread
 * is registered, and a scanner never reads freed memory.  Block k holds
 * 8 << k slots, so a domain with few threads stays small and 24 blocks hold
 * any number of threads; the domain keeps them in a fixed directory, so a
 * scan finds them without chasing links.  Each slot is cache-line aligned;
 * the line that scanners read holds only seq and read-only pointers.  The
 * online counts and masks that let a scan skip offline slots are in
 * internal.h.
 *
 * reg_lock serialises register/unregister (free list, block growth, counts);
 * scanners take no lock.  A freed slot reads as offline until reused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define FIRST_BLOCK_SLOTS 8u

static size_t round_up(size_t n, size_t to)
{
	return (n + to - 1) / to * to;
}

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

		atomic_init(&t->head.seq, 0);
		t->head.wr_seq = &d->wr_seq;
		t->d = d;
		t->mask_word = &b->mask[i / 64];
		t->mask_bit = UINT64_C(1) << (i % 64);
		t->group_online = &b->group_online[i / GROUP_SLOTS];
		t->state = SLOT_FREE;
	}
	d->blocks[k] = b;
	/* Release pairs with load_acquire(n_blocks) in scan(): a scanner that
	 * counts the block sees it, its slots and masks initialised. */
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
	t->owner = pthread_self();
	t->state = SLOT_USED;
	t->id = ++d->next_id;
	t->name[0] = '\0';
	t->cap_wait = false;
	t->tls_next = NULL;
	t->batch_limit = d->opts.batch_size;
	t->bytes_limit = d->opts.deferred_bytes;
	t->newest_goal = load_relaxed(&d->wr_seq);
	t->since_count = 0;
	t->since_bytes = 0;
	t->open = (struct batch){ 0 };
	t->ring_head = 0;
	t->ring_len = 0;
	t->wcache = NULL;
	t->wcache_len = 0;
	t->next_free = NULL;
	store_relaxed(&t->n_retired, 0);
	store_relaxed(&t->n_freed, 0);
	store_relaxed(&t->n_bytes_retired, 0);
	store_relaxed(&t->n_bytes_freed, 0);
	d->n_threads++;
	pthread_mutex_unlock(&d->reg_lock);
	qsbr__tls_add(t);
	qsbr_attach(t);
	return t;
}

void qsbr_unregister(qsbr_thread *t)
{
	qsbr_domain *d;

	if (t == NULL) {
		errno = EINVAL;
		return;
	}
	CHECK_OWNER(t, "qsbr_unregister");
	QSBR_ASSERT(!qsbr__in_callback(), "qsbr_unregister: called from a reclaim callback");
	if (qsbr__in_callback()) {
		errno = EDEADLK; /* the running reclaim still uses the handle */
		return;
	}
	d = t->d;
	qsbr__tls_remove(t);
	/* Offline first, so our own seq holds nothing back; run what is already
	 * safe and hand the rest over. */
	qsbr_detach(t);
	qsbr__retire_exit(t);

	pthread_mutex_lock(&d->reg_lock);
	qsbr__slot_release(t, false);
	pthread_mutex_unlock(&d->reg_lock);
}

/*
 * Returns t's slot to the free list, folding its counters into the domain's
 * departed totals.  dropped: what it retired and did not free is gone (the
 * child of fork() drops other threads' batches), so it counts as freed.
 * Called with reg_lock held; t is offline and holds no batch.
 */
void qsbr__slot_release(qsbr_thread *t, bool dropped)
{
	qsbr_domain *d = t->d;
	uint64_t freed = load_relaxed(dropped ? &t->n_retired : &t->n_freed);
	uint64_t bytes_freed = load_relaxed(dropped ? &t->n_bytes_retired : &t->n_bytes_freed);

	d->departed_retired += load_relaxed(&t->n_retired);
	d->departed_freed += freed;
	d->departed_bytes_retired += load_relaxed(&t->n_bytes_retired);
	d->departed_bytes_freed += bytes_freed;
	store_relaxed(&t->n_retired, 0);
	store_relaxed(&t->n_freed, 0);
	store_relaxed(&t->n_bytes_retired, 0);
	store_relaxed(&t->n_bytes_freed, 0);
	t->state = SLOT_FREE;
	t->next_free = d->free_slots;
	d->free_slots = t;
	d->n_threads--;
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

/* Calls fn on every slot in use.  Called with reg_lock held. */
void qsbr__registry_each(qsbr_domain *d, void (*fn)(qsbr_thread *t, void *arg), void *arg)
{
	for (uint64_t k = 0; k < load_relaxed(&d->n_blocks); k++)
		for (uint64_t i = 0; i < load_relaxed(&d->blocks[k]->used); i++)
			if (d->blocks[k]->slots[i].state == SLOT_USED)
				fn(&d->blocks[k]->slots[i], arg);
}
