/* SPDX-License-Identifier: MIT */
/* The README's example, built and run as a test: keep the two in step. */
#include <stdatomic.h>
#include <stdlib.h>
#include <qsbr.h>

struct config { qsbr_node node; int value; };
static struct config *_Atomic current;           /* read by many, swapped by one */

static void config_free(qsbr_node *n) { free((struct config *)n); }

static int reader(qsbr_thread *t)                 /* any registered, online thread */
{
	struct config *c = atomic_load_explicit(&current, memory_order_acquire);
	int v = c->value;                             /* c stays valid ... */
	qsbr_quiescent(t);                            /* ... until here */
	return v;
}

static void writer(qsbr_thread *t, int value)
{
	struct config *c = malloc(sizeof(*c));
	c->value = value;
	struct config *old = atomic_exchange(&current, c);      /* unlink the old one */
	qsbr_retire_node(t, &old->node, config_free);          /* freed once safe */
}

int main(void)
{
	qsbr_domain *d = qsbr_domain_new(NULL);
	qsbr_thread *t = qsbr_register(d);
	struct config *first = calloc(1, sizeof(*first));

	atomic_store(&current, first);
	for (int i = 1; i <= 1000; i++) {
		writer(t, i);
		if (reader(t) != i)
			return 1;
	}
	qsbr_barrier(t);                                /* everything retired is freed */
	qsbr_unregister(t);
	free(atomic_load(&current));
	return qsbr_domain_delete(d);
}
