/* SPDX-License-Identifier: MIT */
/* Each data-structure header compiles alone as C11 (-std=c11
 * -pedantic-errors), after <qsbr.h> or before it, and links. */
#include <qsbr/hashmap.h>
#include <qsbr/queue.h>
#include <qsbr/set.h>
#include <qsbr/stack.h>
#include <qsbr.h>

int main(void)
{
	qsbr_domain *d = qsbr_domain_new(NULL);
	qsbr_thread *t = qsbr_register(d);
	qsbr_stack *s = qsbr_stack_new(d);
	qsbr_queue *q = qsbr_queue_new(d);
	qsbr_set *o = qsbr_set_new(d);
	qsbr_hashmap *m = qsbr_hashmap_new(d, 0, NULL, NULL, NULL);
	void *v = NULL;
	int bad = 0;

	bad |= qsbr_stack_push(s, &bad) || qsbr_stack_pop(s, t, &v) || v != &bad;
	bad |= qsbr_queue_enqueue(q, t, &bad) || qsbr_queue_dequeue(q, t, &v) || v != &bad;
	bad |= qsbr_set_insert(o, t, 1, &bad) || qsbr_set_lookup(o, t, 1, &v) || v != &bad;
	bad |= qsbr_hashmap_insert(m, t, 1, &bad) || qsbr_hashmap_lookup(m, t, 1, &v) || v != &bad;
	bad |= qsbr_stack_delete(s, NULL, NULL) || qsbr_queue_delete(q, NULL, NULL);
	bad |= qsbr_set_delete(o, NULL, NULL) || qsbr_hashmap_delete(m, NULL, NULL);
	qsbr_unregister(t);
	return bad | qsbr_domain_delete(d);
}
