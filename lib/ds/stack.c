/* SPDX-License-Identifier: MIT */
/*
 * stack.c: Treiber's lock-free stack (qsbr/stack.h).
 *
 * top points to the newest node; each node's next is written before the node
 * is pushed and never again.  A push swings top from the value it read to its
 * node; a pop swings it from a node to that node's next, then retires the
 * node:
 *
 *   top --> [c] --> [b] --> [a] --> NULL       pop: CAS(top, c, b), retire c
 *
 * Why a pop needs libqsbr.  pop reads top->next before its CAS.  If another
 * thread popped and freed that node meanwhile, the read would touch freed
 * memory; and if the allocator handed the address to a push, the CAS could
 * succeed on the recycled node with a stale next (ABA).  A popped node is retired
 * instead: it is freed only once every thread that could have read it has
 * passed a quiescent state, and its address cannot come back before then.
 * A push dereferences nothing already on the stack, so it needs no handle.
 *
 * Orders:
 *  S1 A node's fields are written before the release CAS that pushes it, and
 *     top is read with acquire: a popper sees the fields of the node it reads.
 *  S2 A pop's successful CAS is acquire and release, so the next popper's
 *     acquire load of top also sees the fields of the node below (the
 *     chain of pushes and pops on top forms one release sequence as well;
 *     the explicit release keeps the argument local).
 *  S3 A node's value is read by the thread whose CAS popped it, and by
 *     nobody else (other poppers read next only).
 *
 * Nodes come from the stack's own pool (ds.h): a popped node is retired to
 * it and reused by a later push once its grace period is over, which is
 * the same guarantee as a free after it (docs/design.md, Pools).
 */
#include "qsbr/stack.h"

#include "ds.h"

struct snode {
	struct snode *next; /* written before the push, read-only after */
	void *value;
};

struct qsbr_stack {
	alignas(DS_LINE) auptr top; /* struct snode *: every push and pop writes it */
	qsbr_domain *domain; /* whose handles pop takes (docs/ds.md) */
	qsbr_pool *pool;     /* the nodes, on domain */
};

qsbr_stack *qsbr_stack_new(qsbr_domain *d)
{
	qsbr_stack *s;
	qsbr_pool *pool;

	s = ds_header_new(d, sizeof(*s));
	if (s == NULL)
		return NULL;
	pool = ds_pool_new(d, s, sizeof(struct snode), alignof(struct snode));
	if (pool == NULL)
		return NULL; /* s freed */
	s->pool = pool;
	store_relaxed(&s->top, 0);
	s->domain = d;
	return s;
}

int qsbr_stack_delete(qsbr_stack *s, void (*fn)(void *value, void *arg), void *arg)
{
	struct snode *n;
	int err;

	if (s == NULL)
		return EINVAL;
	/* The nodes popped earlier finish their grace period first. */
	err = qsbr__pool_settle(s->pool);
	if (err != 0)
		return err;
	/* No call runs any more: the nodes on the stack are ours. */
	if (fn != NULL)
		for (n = (struct snode *)load_relaxed(&s->top); n != NULL; n = n->next)
			fn(n->value, arg);
	qsbr__pool_destroy(s->pool); /* the nodes too */
	qsbr__domain_free(s->domain, s);
	return 0;
}

int qsbr_stack_push(qsbr_stack *s, void *value)
{
	struct snode *n;
	uintptr_t top;

	if (s == NULL)
		return EINVAL;
	n = ds_node_new(s->pool, s->domain);
	if (n == NULL)
		return ENOMEM;
	n->value = value;
	/* Relaxed: the old top is only stored in n->next, never followed. */
	top = load_relaxed(&s->top);
	do
		n->next = (struct snode *)top;
	/* S1: release publishes n->next and n->value; pairs with the acquire
	 * loads of top in qsbr_stack_pop.  Relaxed failure: top is only
	 * stored again.  Weak: a spurious failure costs one more round. */
	while (!cas_weak_release_relaxed(&s->top, &top, (uintptr_t)n));
	return 0;
}

int qsbr_stack_pop(qsbr_stack *s, qsbr_thread *t, void **value)
{
	struct snode *n;
	uintptr_t top;

	if (s == NULL || t == NULL)
		return EINVAL;
	/* S1: acquire, pairs with the release CAS of the push (or S2 of the
	 * pop) that stored this top: n's fields are visible. */
	top = load_acquire(&s->top);
	for (;;) {
		n = (struct snode *)top;
		if (n == NULL)
			return ENOENT;
		/* n->next: n may be popped and retired by another thread now,
		 * but not reused before our next quiescent state. */
		/* S2: acquire and release, see above.  Failure: acquire, we
		 * follow the new top (S1).  Weak, as in push. */
		if (cas_weak_acq_rel_acquire(&s->top, &top, (uintptr_t)n->next))
			break;
	}
	if (value != NULL)
		*value = n->value; /* S3 */
	qsbr_pool_retire(t, s->pool, n);
	return 0;
}

qsbr_pool *qsbr_stack_pool(const qsbr_stack *s)
{
	return s != NULL ? s->pool : NULL;
}
