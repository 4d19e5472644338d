/* SPDX-License-Identifier: MIT */
/*
 * Stress test of qsbr/stack.h: nothing lost, nothing duplicated.
 *
 * Every thread pushes values naming itself and a sequence number, and pops,
 * in runs of up to 8 of one kind; what each thread pops goes to its own log
 * (stress_common.h).  Thread 0 pushes while offline: a push needs no handle
 * and reads nothing another thread may retire.  At the end main pops what is
 * left into a log of its own; then every value pushed must be in exactly one
 * log, once, and no log may hold a value never pushed.  ASan and TSan builds
 * check the reclamation itself: a popped node read after its free is a
 * report.
 *
 * Usage: stress_stack [--threads N] [--seconds S] [--seed X]
 */
#include <qsbr/stack.h>

#include "stress_common.h"

struct worker {
	struct stress_thread st;
	unsigned id;
	uint32_t pushed; /* sequence numbers 0..pushed-1 went on the stack */
	struct seqlog log;
	uint64_t empty;  /* pops that found the stack empty */
};

static qsbr_stack *stack;
static qsbr_domain *dom;
static unsigned nthreads;

static void pop_into(struct worker *w, const char *who)
{
	void *v;
	int rc = qsbr_stack_pop(stack, w->st.t, &v);

	if (rc == ENOENT)
		w->empty++;
	else if (rc != 0)
		stress_fail("pop returned %d", rc);
	else
		seqlog_add(&w->log, v, nthreads, who);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	bool offline_pusher = w->id == 0;

	stress_thread_init(&w->st, dom, w->st.rng);
	while (stress_running()) {
		uint64_t r = stress_rand(&w->st.rng);
		bool push = (r >> 8) & 1;

		for (unsigned k = (unsigned)(r >> 60) % 8 + 1; k > 0; k--) {
			if (push && w->pushed < MAX_SEQ) {
				int rc;

				if (offline_pusher)
					qsbr_detach(w->st.t);
				rc = qsbr_stack_push(stack, seq_value(w->id, w->pushed));
				if (offline_pusher)
					qsbr_attach(w->st.t);
				if (rc != 0)
					stress_fail("push returned %d", rc);
				else
					w->pushed++;
			} else {
				pop_into(w, "a worker");
			}
			stress_after_op(&w->st);
		}
	}
	stress_thread_fini(&w->st);
	return NULL;
}

int main(int argc, char **argv)
{
	struct stress_cfg c = { "ds-stress-stack", 4, 2.0, 0x5eed };
	static struct worker ws[MAX_THREADS + 1];
	static struct seqlog logs[MAX_THREADS + 1];
	struct worker *drain;
	uint32_t pushed[MAX_THREADS];
	uint64_t total = 0, popped = 0, empty = 0, reregs = 0, left;
	char summary[200];

	for (int i = 1; i < argc; i++)
		if (stress_common_arg(&c, argc, argv, &i) != 1) {
			fprintf(stderr, "usage: stress_stack [--threads N] [--seconds S] [--seed X]\n");
			return 2;
		}
	nthreads = c.threads;
	dom = qsbr_domain_new(NULL);
	stack = qsbr_stack_new(dom);
	if (dom == NULL || stack == NULL) {
		perror("setup");
		return 1;
	}
	for (unsigned i = 0; i < c.threads; i++) {
		ws[i].id = i;
		ws[i].st.rng = c.seed * 0x9e3779b97f4a7c15u + i + 1;
	}
	stress_run(&c, worker_main, ws, sizeof(ws[0]));

	/* What is left goes to main's log. */
	drain = &ws[c.threads];
	stress_thread_init(&drain->st, dom, 1);
	do
		left = drain->log.n, pop_into(drain, "the final drain");
	while (drain->log.n != left);
	stress_thread_fini(&drain->st);

	for (unsigned i = 0; i <= c.threads; i++) {
		logs[i] = ws[i].log;
		popped += ws[i].log.n;
		if (i == c.threads)
			break;
		pushed[i] = ws[i].pushed;
		total += ws[i].pushed;
		empty += ws[i].empty;
		reregs += ws[i].st.reregs;
	}
	seqlog_check(logs, c.threads + 1, pushed, c.threads);
	if (qsbr_stack_delete(stack, NULL, NULL) != 0 || qsbr_domain_delete(dom) != 0)
		stress_fail("delete failed");
	snprintf(summary, sizeof(summary),
		 "pushed=%" PRIu64 " popped=%" PRIu64 " (left at the end %" PRIu64 ") empty-pops=%"
		 PRIu64 " re-registrations=%" PRIu64, total, popped, drain->log.n, empty, reregs);
	return stress_finish(&c, summary);
}
