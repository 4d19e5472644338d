/* SPDX-License-Identifier: MIT */
/*
 * set.c: the ordered set (qsbr/set.h), one sorted list (list.h) whose order
 * key is the user's key.  The head is a node of the set that is never
 * deleted; its link is the list's start.  Every call is one list operation,
 * so the rules L1-L4 of list.h are the whole argument.
 */
#include "qsbr/set.h"

#include "list.h"

struct qsbr_set {
	alignas(DS_LINE) struct list_node head; /* its next: the first entry */
	qsbr_domain *domain; /* whose handles the calls take (docs/ds.md) */
};

/* Every key is its own order key, and equal keys are equal values. */
static const struct list_keys set_keys = { NULL, NULL };

qsbr_set *qsbr_set_new(qsbr_domain *d)
{
	qsbr_set *s;

	s = ds_header_new(d, sizeof(*s));
	if (s == NULL)
		return NULL;
	store_relaxed(&s->head.next, 0);
	s->domain = d;
	return s;
}

int qsbr_set_delete(qsbr_set *s, void (*fn)(uint64_t key, void *value, void *arg), void *arg)
{
	uintptr_t v;

	if (s == NULL)
		return EINVAL;
	/* No call runs any more: relaxed loads, and plain frees of what is
	 * still linked (a node is retired only by whoever unlinked it). */
	v = load_relaxed(&s->head.next);
	while (v != 0) {
		struct list_entry *e = list_entry_of(list_ptr(v));

		v = load_relaxed(&e->node.next);
		if (fn != NULL && !(v & LIST_MARK)) /* marked: removed, its value returned */
			fn(e->key, e->value, arg);
		free(e);
		v &= ~LIST_MARK;
	}
	free(s);
	return 0;
}

int qsbr_set_insert(qsbr_set *s, qsbr_thread *t, uint64_t key, void *value)
{
	struct list_entry *e;

	if (s == NULL || t == NULL)
		return EINVAL;
	e = malloc(sizeof(*e));
	if (e == NULL)
		return ENOMEM;
	e->node.so = key;
	e->key = key;
	e->value = value;
	if (list_insert(&s->head.next, &e->node, true, key, &set_keys, t) != NULL) {
		free(e); /* never published */
		return EEXIST;
	}
	return 0;
}

int qsbr_set_remove(qsbr_set *s, qsbr_thread *t, uint64_t key, void **value)
{
	struct list_entry *e;

	if (s == NULL || t == NULL)
		return EINVAL;
	e = list_remove(&s->head.next, key, key, &set_keys, t);
	if (e == NULL)
		return ENOENT;
	if (value != NULL)
		*value = e->value;
	return 0;
}

int qsbr_set_lookup(const qsbr_set *s, qsbr_thread *t, uint64_t key, void **value)
{
	const struct list_entry *e;

	if (s == NULL || t == NULL)
		return EINVAL;
	e = list_lookup(&s->head.next, key, key, &set_keys);
	if (e == NULL)
		return ENOENT;
	if (value != NULL)
		*value = e->value;
	return 0;
}

int qsbr_set_seek(const qsbr_set *s, qsbr_thread *t, uint64_t key, uint64_t *found, void **value)
{
	const struct list_entry *e;

	if (s == NULL || t == NULL)
		return EINVAL;
	e = list_seek(&s->head.next, key);
	if (e == NULL)
		return ENOENT;
	if (found != NULL)
		*found = e->key;
	if (value != NULL)
		*value = e->value;
	return 0;
}
