/* SPDX-License-Identifier: MIT */
/*
 * A lock-free stack (Treiber's) whose pop retires the item instead of
 * freeing it.
 *
 * pop() reads top->next before its compare-and-swap.  Another thread may pop
 * the same item meanwhile; if it freed the item, that read would touch freed
 * memory, and if malloc handed the address back to a push, the swap could
 * succeed on a recycled item (the ABA problem).  Retiring closes both holes:
 * the item is freed only after every thread has passed a quiescent state,
 * i.e. after each pop that could have read it has finished.
 *
 *   cc -std=c11 -pthread stack.c $(pkg-config --cflags --libs qsbr)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <qsbr.h>

#define THREADS 4
#define OPS 20000  /* pushes per thread, each followed by a pop */

struct item {
	qsbr_node node;         /* the retire header */
	struct item *next;      /* written before the item is pushed, then read-only */
	long value;
};

struct stack {
	struct item *_Atomic top;
};

static qsbr_domain *domain;
static struct stack stack;
static atomic_long freed;

static void item_free(qsbr_node *n)
{
	free((char *)n - offsetof(struct item, node));
	atomic_fetch_add_explicit(&freed, 1, memory_order_relaxed);
}

static void push(struct stack *s, struct item *it)
{
	struct item *top = atomic_load_explicit(&s->top, memory_order_relaxed);

	/* Release on success publishes it->next and it->value to the pop that
	 * takes the item. */
	do
		it->next = top;
	while (!atomic_compare_exchange_weak_explicit(&s->top, &top, it, memory_order_release,
						      memory_order_relaxed));
}

/* The caller must be online: it dereferences items other threads may pop. */
static bool pop(qsbr_thread *t, struct stack *s, long *value)
{
	/* Acquire (here and when the swap fails) pairs with push's release:
	 * top->next is initialised. */
	struct item *top = atomic_load_explicit(&s->top, memory_order_acquire);

	while (top != NULL) {
		/* Safe although another thread may have popped top: it cannot
		 * be freed before we pass a quiescent state. */
		struct item *next = top->next;

		if (atomic_compare_exchange_weak_explicit(&s->top, &top, next, memory_order_acquire,
							  memory_order_acquire)) {
			*value = top->value;
			/* Unlinked: no new reader can reach it.  Readers that
			 * loaded it earlier still may, so retire, don't free. */
			qsbr_retire_node(t, &top->node, item_free);
			return true;
		}
	}
	return false;
}

struct worker {
	pthread_t thread;
	long long id, popped;   /* popped: sum of the values this worker popped */
};

static void *worker(void *arg)
{
	struct worker *me = arg;
	long value;
	qsbr_thread *t = qsbr_register(domain);

	if (t == NULL)
		abort();
	for (long i = 0; i < OPS; i++) {
		struct item *it = malloc(sizeof(*it));

		if (it == NULL)
			abort();
		it->value = (long)(me->id * OPS + i + 1);
		push(&stack, it);
		if (pop(t, &stack, &value))
			me->popped += value;
		qsbr_quiescent(t);  /* no item pointer is held here */
	}
	qsbr_unregister(t);  /* hands what is not yet safe to the domain */
	return NULL;
}

int main(void)
{
	struct worker w[THREADS];
	long long pushed = 0, popped = 0, left = 0;
	long n_left = 0;

	domain = qsbr_domain_new(NULL);
	if (domain == NULL)
		return 1;
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){.id = i};
		pthread_create(&w[i].thread, NULL, worker, &w[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(w[i].thread, NULL);
		popped += w[i].popped;
	}
	for (long long v = 1; v <= (long long)THREADS * OPS; v++)
		pushed += v;

	/* Single-threaded now: what is left can be freed directly. */
	for (struct item *it = atomic_load(&stack.top), *next; it != NULL; it = next) {
		next = it->next;
		left += it->value;
		n_left++;
		free(it);
	}
	if (qsbr_domain_delete(domain) != 0)  /* runs the callbacks still pending */
		return 1;
	printf("%d threads, %ld pushes; %ld items retired and freed, %ld left on the stack\n",
	       THREADS, (long)THREADS * OPS, atomic_load(&freed), n_left);
	if (pushed != popped + left || atomic_load(&freed) + n_left != (long)THREADS * OPS) {
		fprintf(stderr, "lost or duplicated items\n");
		return 1;
	}
	return 0;
}
