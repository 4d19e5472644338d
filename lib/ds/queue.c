/* SPDX-License-Identifier: MIT */
/*
 * queue.c: Michael and Scott's lock-free queue (qsbr/queue.h).
 *
 * A singly linked list from head to tail.  head points to a dummy node: the
 * node dequeued last (at first, one allocated with the queue); the values are
 * in the nodes after it.  tail points to the last node or, between the two
 * CASes of an enqueue, to the one before it; any thread that sees it lag
 * helps it on.
 *
 *   head --> [dummy] --> [v1] --> [v2] --> NULL
 *                                  ^ tail (or [v1] for a moment)
 *
 * enqueue: CAS(last->next, NULL, node), then CAS(tail, last, node).
 * dequeue: read first->next's value, CAS(head, first, first->next), retire
 * first; the node after it becomes the dummy.
 *
 * Why libqsbr: an enqueue reads tail->next and a dequeue head->next while
 * other threads may dequeue those nodes; a dequeued node is retired, so it
 * stays readable until every such thread has passed a quiescent state, and
 * its address cannot come back to fool a CAS (ABA) before then.
 *
 * Orders:
 *  Q1 A node's fields (value, next = NULL) are written before the release
 *     CAS that links it after the last node, and every load of a next link
 *     is acquire: whoever reaches a node sees its fields.
 *  Q2 A CAS that moves tail or head is a release, and their loads that lead
 *     to a dereference are acquire: the node they point to was reached by
 *     the writer through Q1, and the reader gets that visibility.
 *  Q3 head never passes tail, so a retired node is never the tail: a dequeue
 *     moves head from first only when the tail it read differs from first.
 *     That tail is not stale: the dequeue that moved head to first read a
 *     tail at or past first before its release CAS on head, our acquire load
 *     of head synchronizes with that CAS, and our tail load comes after it
 *     (read-read coherence).  So a relaxed load of tail suffices there.
 *     (Under QSBR the lagging tail would be safe even without the check: the
 *     enqueue that left it behind is online until it moves tail on, so the
 *     node's grace period cannot end first.  The check is Michael and Scott's
 *     and keeps the argument local.)
 *  Q4 A dequeue reads the value of the node after head (relaxed) and keeps
 *     it only if its CAS on head succeeds.  Nothing writes a value between
 *     its node's enqueue and its reuse, after a grace period that waits
 *     for every dequeue that could read it: the loads race with no store.
 *
 * Nodes come from the queue's own pool (ds.h): the old dummy is retired to
 * it at each dequeue and reused by a later enqueue once its grace period is
 * over, which is the same guarantee as a free after it (docs/design.md,
 * Pools).
 */
#include "qsbr/queue.h"

#include "ds.h"

struct qnode {
	auptr next;   /* struct qnode *: NULL until the next node is linked */
	aptr value;   /* written before the enqueue */
};

struct qsbr_queue {
	alignas(DS_LINE) auptr head; /* struct qnode *: the dummy */
	qsbr_domain *domain; /* whose handles the calls take */
	qsbr_pool *pool;     /* the nodes, on domain */
	alignas(DS_LINE) auptr tail; /* struct qnode *: the last node, or the one before */
};

/* Relaxed stores: the node is not shared yet (Q1 publishes it). */
static struct qnode *qnode_init(struct qnode *n, void *value)
{
	if (n != NULL) {
		store_relaxed(&n->next, 0);
		store_relaxed(&n->value, value);
	}
	return n;
}

qsbr_queue *qsbr_queue_new(qsbr_domain *d)
{
	qsbr_queue *q;
	qsbr_pool *pool;
	struct qnode *dummy;

	q = ds_header_new(d, sizeof(*q));
	if (q == NULL)
		return NULL;
	pool = ds_pool_new(d, q, sizeof(struct qnode), alignof(struct qnode));
	if (pool == NULL)
		return NULL; /* q freed */
	q->pool = pool;
	dummy = qnode_init(qsbr__pool_alloc_any(q->pool), NULL);
	if (dummy == NULL) {
		qsbr__pool_destroy(q->pool);
		qsbr__domain_free(d, q);
		errno = ENOMEM;
		return NULL;
	}
	store_relaxed(&q->head, (uintptr_t)dummy);
	store_relaxed(&q->tail, (uintptr_t)dummy);
	q->domain = d;
	return q;
}

int qsbr_queue_delete(qsbr_queue *q, void (*fn)(void *value, void *arg), void *arg)
{
	struct qnode *n;
	int err;

	if (q == NULL)
		return EINVAL;
	/* The nodes dequeued earlier finish their grace period first. */
	err = qsbr__pool_settle(q->pool);
	if (err != 0)
		return err;
	/* No call runs any more: the dummy and the nodes after it are ours. */
	n = (struct qnode *)load_relaxed(&q->head);
	while (fn != NULL && (n = (struct qnode *)load_relaxed(&n->next)) != NULL)
		fn(load_relaxed(&n->value), arg);
	qsbr__pool_destroy(q->pool); /* the nodes too */
	qsbr__domain_free(q->domain, q);
	return 0;
}

int qsbr_queue_enqueue(qsbr_queue *q, qsbr_thread *t, void *value)
{
	struct qnode *n;

	if (q == NULL || t == NULL)
		return EINVAL;
	n = qnode_init(qsbr_pool_alloc(t, q->pool), value);
	if (n == NULL)
		return errno == EINVAL ? EINVAL : ENOMEM;
	for (;;) {
		/* Q2: acquire, pairs with the release CAS that set tail: last's
		 * fields are visible.  last may be dequeued and retired now, but
		 * not freed before our next quiescent state. */
		uintptr_t tail = load_acquire(&q->tail);
		struct qnode *last = (struct qnode *)tail;
		/* Q1: acquire, pairs with the release CAS that linked the node
		 * after last. */
		uintptr_t next = load_acquire(&last->next);

		if (next == 0) {
			uintptr_t expected = 0;

			/* Q1: release publishes n's fields; pairs with the
			 * acquire loads of next links.  Failure: another node
			 * got there first; start over. */
			if (cas_strong_release_relaxed(&last->next, &expected, (uintptr_t)n)) {
				/* Q2: release, pairs with the acquire loads of
				 * tail.  Failure: someone helped it on already. */
				cas_strong_release_relaxed(&q->tail, &tail, (uintptr_t)n);
				return 0;
			}
		} else {
			/* tail lags: help it on.  Q2: release, pairs with the
			 * acquire loads of tail; we reached next through Q1. */
			cas_strong_release_relaxed(&q->tail, &tail, next);
		}
	}
}

int qsbr_queue_dequeue(qsbr_queue *q, qsbr_thread *t, void **value)
{
	if (q == NULL || t == NULL)
		return EINVAL;
	for (;;) {
		/* Q2, Q3: acquire, pairs with the release CAS that moved head
		 * here: first's fields are visible, and the tail read below is
		 * no older than the one that CAS relied on. */
		uintptr_t head = load_acquire(&q->head);
		/* Q3: relaxed, only compared and used as a CAS's expected value. */
		uintptr_t tail = load_relaxed(&q->tail);
		struct qnode *first = (struct qnode *)head;
		/* Q1: acquire, pairs with the release CAS that linked next. */
		uintptr_t next = load_acquire(&first->next);
		void *v;

		if (next == 0)
			return ENOENT;
		if (head == tail) {
			/* Q3: tail lags behind an enqueue; help it on before
			 * moving head.  Q2: release, pairs with the acquire
			 * loads of tail. */
			cas_strong_release_relaxed(&q->tail, &tail, next);
			continue;
		}
		/* Q4: relaxed, kept only if the CAS below succeeds. */
		v = load_relaxed(&((struct qnode *)next)->value);
		/* Q2: release, pairs with the acquire load of head above: the
		 * next dequeuer sees next's fields and a tail past first (Q3).
		 * Failure: another dequeue won; start over. */
		if (cas_strong_release_relaxed(&q->head, &head, next)) {
			if (value != NULL)
				*value = v;
			qsbr_pool_retire(t, q->pool, first);
			return 0;
		}
	}
}

qsbr_pool *qsbr_queue_pool(const qsbr_queue *q)
{
	return q != NULL ? q->pool : NULL;
}
