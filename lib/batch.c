/* SPDX-License-Identifier: MIT */
/*
 * A batch (retired nodes sharing one goal) and a ring of batches, and the one
 * place callbacks run.  Both a thread's retire list (retire.c) and the
 * domain's shared queue (handoff.c) are rings of batches.
 */
#include "internal.h"

void qsbr__batch_append(struct batch *dst, const struct batch *src)
{
	if (dst->last != NULL)
		dst->last->next = src->first;
	else
		dst->first = src->first;
	dst->last = src->last;
	dst->count += src->count;
	dst->bytes += src->bytes;
	/* The shared queue mixes threads, whose goals are not ordered: keep the
	 * later goal, never lower one (a later goal is always safe). */
	dst->goal = seq_max(dst->goal, src->goal);
}

/* Pushes b at the tail, merging into the tail when the ring is full. */
void qsbr__ring_push(struct ring *r, const struct batch *b)
{
	if (r->len == r->size) {
		qsbr__batch_append(&r->slot[(r->head + r->len - 1) % r->size], b);
		return;
	}
	r->slot[(r->head + r->len) % r->size] = *b;
	r->len++;
}

/* Takes the oldest batch off the ring; false when it is empty. */
bool qsbr__ring_pop(struct ring *r, struct batch *out)
{
	if (r->len == 0)
		return false;
	*out = r->slot[r->head];
	r->head = (r->head + 1) % r->size;
	r->len--;
	return true;
}

/* The callbacks this thread is running, innermost first (a callback may
 * delete another domain, whose queue then runs inside it): a callback's
 * reclaim runs nothing, its blocking calls are refused. */
static QSBR_TLS const struct running *in_callback;

bool qsbr__in_callback(void)
{
	return in_callback != NULL;
}

/* Is this thread inside a callback of d's? */
bool qsbr__in_callback_of(const qsbr_domain *d)
{
	for (const struct running *r = in_callback; r != NULL; r = r->outer)
		if (r->d == d)
			return true;
	return false;
}

/* The handle (in the callback's domain) of the thread running the innermost
 * callback, or NULL (the helper thread, qsbr_domain_delete): pool.c's
 * callback puts objects in that thread's cache. */
qsbr_thread *qsbr__callback_thread(void)
{
	return in_callback != NULL ? in_callback->t : NULL;
}

/* The callback of qsbr_retire's nodes: a marker that qsbr__run_batch
 * recognises, since freeing the box needs the domain's allocator.  Never
 * called. */
void qsbr__box_marker(qsbr_node *n)
{
	(void)n;
}

/* A box goes back to t's cache when t != NULL and there is room. */
void qsbr__box_free(qsbr_domain *d, qsbr_thread *t, struct box *b)
{
	if (t != NULL && t->n_boxes < BOX_CACHE_MAX) {
		b->node.next = (qsbr_node *)t->boxes;
		t->boxes = b;
		t->n_boxes++;
	} else {
		qsbr__free(&d->opts, b);
	}
}

/* A run of callbacks of d by t that is not a batch (shared.c's region
 * objects), or a batch (below): between enter and leave, this thread is in a callback of d. */
void qsbr__callbacks_enter(struct running *self, qsbr_domain *d, qsbr_thread *t)
{
	*self = (struct running){ d, t, in_callback };
	in_callback = self;
}

void qsbr__callbacks_leave(struct running *self)
{
	in_callback = self->outer;
}

/*
 * Runs every callback of b, a batch of domain d, in order.  The next link is
 * read before the callback, which may free the node.  Returns false if a
 * callback forked and this is the child: the rest of the batch belongs to
 * the parent, and the caller must stop too, touching nothing of the batch's
 * list or queue (the child dropped them).
 */
bool qsbr__run_batch(qsbr_domain *d, qsbr_thread *t, const struct batch *b)
{
	uint64_t gen = qsbr__fork_generation();
	qsbr_node *n = b->first;
	struct running self;

	qsbr__callbacks_enter(&self, d, t);
	for (size_t i = 0; i < b->count; i++) {
		qsbr_node *next = n->next;

		if (n->fn == qsbr__box_marker) {
			struct box *x = (struct box *)n;

			x->free_fn(x->p);
			qsbr__box_free(d, t, x);
		} else {
			n->fn(n);
		}
		if (qsbr__fork_generation() != gen) {
			qsbr__callbacks_leave(&self);
			return false;
		}
		n = next;
	}
	qsbr__callbacks_leave(&self);
	qsbr__account(d, -(int64_t)b->count, -(int64_t)b->bytes);
	return true;
}
