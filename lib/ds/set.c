/* SPDX-License-Identifier: MIT */
/*
 * set.c: the ordered set (qsbr/set.h), one sorted list (list.h) whose order
 * key is the user's key.  The head is a node of the set that is never
 * deleted; its link is the list's start.  Every call is one list operation,
 * so the rules L1-L5 of list.h are the whole argument.  Entries come from
 * the set's own pool (ctx.pool, ds.h), and an unlinked one goes back to it
 * (L3), reused after its grace period.
 */
#include "qsbr/set.h"

#include "list.h"

struct qsbr_set {
	alignas(DS_LINE) struct list_node head; /* its next: the first entry */
	/* Every key is its own order key, and equal keys are equal values:
	 * no equal function; and the domain. */
	struct list_ctx ctx;
};

qsbr_set *qsbr_set_new(qsbr_domain *d)
{
	qsbr_set *s;
	qsbr_pool *pool;

	s = ds_header_new(d, sizeof(*s));
	if (s == NULL)
		return NULL;
	pool = ds_pool_new(d, s, sizeof(struct list_entry), alignof(struct list_entry));
	if (pool == NULL)
		return NULL; /* s freed */
	s->ctx.pool = pool;
	store_relaxed(&s->head.next, 0);
	s->ctx.domain = d;
	return s;
}

int qsbr_set_delete(qsbr_set *s, void (*fn)(uint64_t key, void *value, void *arg), void *arg)
{
	uintptr_t v;
	int err;

	if (s == NULL)
		return EINVAL;
	/* The entries removed earlier finish their grace period first. */
	err = qsbr__pool_settle(s->ctx.pool);
	if (err != 0)
		return err;
	/* No call runs any more: relaxed loads of what is still linked (an
	 * entry is retired only by whoever unlinked it). */
	v = load_relaxed(&s->head.next);
	while (v != 0) {
		struct list_entry *e = list_entry_of(list_ptr(v));

		v = load_relaxed(&e->node.next);
		if (fn != NULL && !(v & LIST_MARK)) /* marked: removed, its value returned */
			fn(e->key, load_relaxed(&e->value), arg);
		v &= ~LIST_MARK;
	}
	qsbr__pool_destroy(s->ctx.pool); /* the entries too */
	qsbr__domain_free(s->ctx.domain, s);
	return 0;
}

int qsbr_set_insert(qsbr_set *s, qsbr_thread *t, uint64_t key, void *value)
{
	struct list_entry *e;

	if (s == NULL || t == NULL)
		return EINVAL;
	e = list_entry_init(qsbr_pool_alloc(t, s->ctx.pool), key, key, value);
	if (e == NULL)
		return errno == EINVAL ? EINVAL : ENOMEM;
	if (list_insert(&s->head.next, &e->node, true, key, &s->ctx, t) != NULL) {
		qsbr_pool_free(t, s->ctx.pool, e); /* never published */
		return EEXIST;
	}
	return 0;
}

int qsbr_set_remove(qsbr_set *s, qsbr_thread *t, uint64_t key, void **value)
{
	void *v;

	if (s == NULL || t == NULL)
		return EINVAL;
	if (!list_remove(&s->head.next, key, key, &s->ctx, t, &v))
		return ENOENT;
	if (value != NULL)
		*value = v;
	return 0;
}

int qsbr_set_lookup(const qsbr_set *s, qsbr_thread *t, uint64_t key, void **value)
{
	void *v;

	if (s == NULL || t == NULL)
		return EINVAL;
	if (!list_lookup(&s->head.next, key, key, &s->ctx, &v))
		return ENOENT;
	if (value != NULL)
		*value = v;
	return 0;
}

int qsbr_set_seek(const qsbr_set *s, qsbr_thread *t, uint64_t key, uint64_t *found, void **value)
{
	uint64_t k;
	void *v;

	if (s == NULL || t == NULL)
		return EINVAL;
	if (!list_seek(&s->head.next, key, &k, &v))
		return ENOENT;
	if (found != NULL)
		*found = k;
	if (value != NULL)
		*value = v;
	return 0;
}

qsbr_pool *qsbr_set_pool(const qsbr_set *s)
{
	return s != NULL ? s->ctx.pool : NULL;
}
