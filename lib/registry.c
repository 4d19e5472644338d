/* SPDX-License-Identifier: MIT */
/*
 * The thread registry.  Slots live in blocks that are linked once and never
 * moved or freed before the domain: a handle (a slot's address) stays valid
 * while its thread is registered, and a scanner walking the block list never
 * reads freed memory.  Blocks double in size (8, 16, ... 1024 slots), so a
 * domain with few threads stays small.  Each slot is cache-line aligned; the
 * line that scanners read holds only seq and read-only pointers.
 *
 * reg_lock serialises register/unregister (free list, block growth, counts);
 * scanners take no lock.  A freed slot reads as offline (seq 0) until reused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define FIRST_BLOCK_SLOTS 8u
#define MAX_BLOCK_SLOTS 1024u

void qsbr__registry_init(qsbr_domain *d)
{
	atomic_init(&d->blocks, NULL);
	d->last_block = NULL;
	d->free_slots = NULL;
	d->n_threads = 0;
	d->next_block_slots = FIRST_BLOCK_SLOTS;
}

void qsbr__registry_destroy(qsbr_domain *d)
{
	struct slot_block *b = ptr_load_relaxed(&d->blocks);

	while (b != NULL) {
		struct slot_block *next = ptr_load_relaxed(&b->next);

		free(b);
		b = next;
	}
}

/* Called with reg_lock held. */
static struct slot_block *block_new(qsbr_domain *d)
{
	uint32_t n = d->next_block_slots;
	size_t size = sizeof(struct slot_block) + (size_t)n * sizeof(struct qsbr_thread);
	struct slot_block *b;

	if (posix_memalign((void **)&b, CACHELINE, size) != 0)
		return NULL;
	memset(b, 0, size);
	atomic_init(&b->next, NULL);
	b->n = n;
	b->used = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct qsbr_thread *t = &b->slots[i];

		atomic_init(&t->head.seq, 0);
		t->head.wr_seq = &d->wr_seq;
		t->d = d;
		t->state = SLOT_FREE;
	}
	/* Release pairs with ptr_load_acquire of the links in scan(): a scanner
	 * that finds the block sees its initialised slots. */
	if (d->last_block == NULL)
		ptr_store_release(&d->blocks, b);
	else
		ptr_store_release(&d->last_block->next, b);
	d->last_block = b;
	if (n < MAX_BLOCK_SLOTS)
		d->next_block_slots = n * 2;
	return b;
}

/* Called with reg_lock held. */
static qsbr_thread *slot_take(qsbr_domain *d)
{
	struct slot_block *b = d->last_block;
	qsbr_thread *t = d->free_slots;

	if (t != NULL) {
		d->free_slots = t->next_free;
		return t;
	}
	if (b == NULL || b->used == b->n) {
		b = block_new(d);
		if (b == NULL)
			return NULL;
	}
	return &b->slots[b->used++];
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
	/* Offline first, so our own seq holds nothing back; run what is already
	 * safe and hand the rest over. */
	qsbr_detach(t);
	qsbr__retire_exit(t);

	pthread_mutex_lock(&d->reg_lock);
	d->departed_retired += load_relaxed(&t->n_retired);
	d->departed_freed += load_relaxed(&t->n_freed);
	d->departed_bytes_retired += load_relaxed(&t->n_bytes_retired);
	d->departed_bytes_freed += load_relaxed(&t->n_bytes_freed);
	store_relaxed(&t->n_retired, 0);
	store_relaxed(&t->n_freed, 0);
	store_relaxed(&t->n_bytes_retired, 0);
	store_relaxed(&t->n_bytes_freed, 0);
	t->state = SLOT_FREE;
	t->next_free = d->free_slots;
	d->free_slots = t;
	d->n_threads--;
	pthread_mutex_unlock(&d->reg_lock);
}

/* Calls fn on every slot in use.  Called with reg_lock held. */
void qsbr__registry_each(qsbr_domain *d, void (*fn)(qsbr_thread *t, void *arg), void *arg)
{
	for (struct slot_block *b = ptr_load_relaxed(&d->blocks); b != NULL;
	     b = ptr_load_relaxed(&b->next))
		for (uint32_t i = 0; i < b->used; i++)
			if (b->slots[i].state == SLOT_USED)
				fn(&b->slots[i], arg);
}
