/* SPDX-License-Identifier: MIT */
/*
 * ds_stack.h: a Treiber stack whose popped nodes go to the reclamation
 * backend.  The reclamation is what keeps pop safe: a popper may read
 * n->next of a node another thread has just popped, and the CAS cannot be
 * fooled by a freed and reused address (ABA), because a popped node is not
 * freed while any thread that may hold it is inside an operation.
 *
 * Include after rc.h.
 */
#ifndef BENCH_DS_STACK_H
#define BENCH_DS_STACK_H

struct snode {
	rc_head h; /* first: the object starts at its header */
	struct snode *next;
	uint64_t value;
};

struct stack {
	alignas(64) _Atomic(struct snode *) top;
	char pad[64 - sizeof(struct snode *)];
};

static inline void stack_push(struct stack *s, struct snode *n)
{
	/* Relaxed: we only compare it; the CAS publishes n. */
	struct snode *old = atomic_load_explicit(&s->top, memory_order_relaxed);

	do
		n->next = old;
	/* Release: n's fields reach whoever loads top with acquire. */
	while (!atomic_compare_exchange_weak_explicit(&s->top, &old, n, memory_order_release,
						      memory_order_relaxed));
}

/* The caller is inside an operation (rc_read_begin): n stays allocated. */
static inline struct snode *stack_pop(struct stack *s)
{
	/* Acquire pairs with the release CAS of the push that stored n. */
	struct snode *n = atomic_load_explicit(&s->top, memory_order_acquire);

	while (n != NULL && !atomic_compare_exchange_weak_explicit(&s->top, &n, n->next,
								   memory_order_acquire,
								   memory_order_acquire))
		;
	return n;
}

/* With no thread running: frees what the stack holds (never retired). */
static inline void stack_clear(struct stack *s)
{
	struct snode *n = atomic_load_explicit(&s->top, memory_order_relaxed);

	atomic_store_explicit(&s->top, NULL, memory_order_relaxed);
	while (n != NULL) {
		struct snode *next = n->next;

		free(n);
		n = next;
	}
}

static inline void stack_fill(struct stack *s, int count)
{
	for (int i = 0; i < count; i++) {
		struct snode *n = calloc(1, sizeof(*n));

		if (n == NULL)
			abort();
		stack_push(s, n);
	}
}

/* One operation pair: push a fresh node, pop one and retire it. */
static inline void stack_push_pop(struct stack *s, rc_thread *t, uint64_t value)
{
	struct snode *n = malloc(sizeof(*n));

	if (n == NULL)
		abort();
	n->value = value;
	stack_push(s, n);
	rc_read_begin(t);
	n = stack_pop(s);
	rc_read_end(t);
	if (n != NULL)
		rc_retire(t, &n->h);
	rc_quiescent(t);
}

/* Setup of a run on the stack: the domain (made once), 1000 nodes so pops
 * rarely find the stack empty, the accounting. */
static inline void stack_run_start(rc_domain **dom, struct stack *s)
{
	if (*dom == NULL)
		*dom = rc_domain_new();
	stack_fill(s, 1000);
	bench_run_start(sizeof(struct snode));
}

/* Teardown: the report, every retired node freed, the stack emptied, and a
 * warning if the backend still holds any (what: the run's name). */
static inline void stack_run_end(gb_state *st, rc_domain *dom, struct stack *s, const char *what)
{
	bench_run_report(st);
	rc_drain(dom);
	stack_clear(s);
	bench_check_drained(what);
}

#endif /* BENCH_DS_STACK_H */
