/* SPDX-License-Identifier: MIT */
/*
 * Stress test of qsbr/queue.h: nothing lost, nothing duplicated, FIFO per
 * producer.
 *
 * Every thread enqueues values naming itself and a sequence number (0, 1,
 * 2, ... in its own order) and dequeues, in runs of up to 8 of one kind; what
 * each thread dequeues goes to its own log (stress_common.h).  At the end main
 * dequeues what is left into a log of its own.  Checks: every value enqueued
 * is in exactly one log, once, and none was never enqueued; each thread (main
 * too) gets the values of one producer in increasing order (FIFO per
 * producer, as every consumer sees it); and what is left of a producer at the
 * end comes after all of it dequeued during the run.
 *
 * Usage: stress_queue [--threads N] [--seconds S] [--seed X]
 */
#include <qsbr/queue.h>

#include "stress_common.h"

struct worker {
	struct stress_thread st;
	unsigned id;
	uint32_t enqueued;
	struct seqlog log;
	int64_t last[MAX_THREADS]; /* per producer: the last seq this thread got */
	uint64_t empty;
};

static qsbr_queue *queue;
static qsbr_domain *dom;
static unsigned nthreads;

static void dequeue_into(struct worker *w, const char *who)
{
	void *v;
	int rc = qsbr_queue_dequeue(queue, w->st.t, &v);
	uint32_t x = (uint32_t)(uintptr_t)v;
	unsigned p = x >> SEQ_BITS;

	if (rc == ENOENT) {
		w->empty++;
		return;
	}
	if (rc != 0) {
		stress_fail("dequeue returned %d", rc);
		return;
	}
	seqlog_add(&w->log, v, nthreads, who);
	if (p < nthreads) {
		int64_t seq = x & (MAX_SEQ - 1);

		if (seq <= w->last[p])
			stress_fail("%s got seq %" PRId64 " of producer %u after seq %" PRId64, who,
				    seq, p, w->last[p]);
		w->last[p] = seq;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	stress_thread_init(&w->st, dom, w->st.rng);
	while (stress_running()) {
		uint64_t r = stress_rand(&w->st.rng);
		bool put = (r >> 8) & 1;

		for (unsigned k = (unsigned)(r >> 60) % 8 + 1; k > 0; k--) {
			if (put && w->enqueued < MAX_SEQ) {
				int rc = qsbr_queue_enqueue(queue, w->st.t, seq_value(w->id, w->enqueued));

				if (rc != 0)
					stress_fail("enqueue returned %d", rc);
				else
					w->enqueued++;
			} else {
				dequeue_into(w, "a worker");
			}
			stress_after_op(&w->st);
		}
	}
	stress_thread_fini(&w->st);
	return NULL;
}

int main(int argc, char **argv)
{
	struct stress_cfg c = { "ds-stress-queue", 4, 2.0, 0x5eed };
	static struct worker ws[MAX_THREADS + 1];
	static struct seqlog logs[MAX_THREADS + 1];
	struct worker *drain;
	uint32_t enqueued[MAX_THREADS];
	uint64_t total = 0, dequeued = 0, empty = 0, reregs = 0, left;
	char summary[200];

	for (int i = 1; i < argc; i++)
		if (stress_common_arg(&c, argc, argv, &i) != 1) {
			fprintf(stderr, "usage: stress_queue [--threads N] [--seconds S] [--seed X]\n");
			return 2;
		}
	nthreads = c.threads;
	dom = qsbr_domain_new(NULL);
	queue = qsbr_queue_new(dom);
	if (dom == NULL || queue == NULL) {
		perror("setup");
		return 1;
	}
	for (unsigned i = 0; i <= c.threads; i++) {
		ws[i].id = i;
		ws[i].st.rng = c.seed * 0x9e3779b97f4a7c15u + i + 1;
		for (unsigned p = 0; p < MAX_THREADS; p++)
			ws[i].last[p] = -1;
	}
	stress_run(&c, worker_main, ws, sizeof(ws[0]));

	/* What is left goes to main's log: per producer, after everything of
	 * it that the workers got. */
	drain = &ws[c.threads];
	for (unsigned i = 0; i < c.threads; i++)
		for (unsigned p = 0; p < c.threads; p++)
			if (ws[i].last[p] > drain->last[p])
				drain->last[p] = ws[i].last[p];
	stress_thread_init(&drain->st, dom, 1);
	do
		left = drain->log.n, dequeue_into(drain, "the final drain");
	while (drain->log.n != left);
	stress_thread_fini(&drain->st);

	for (unsigned i = 0; i <= c.threads; i++) {
		logs[i] = ws[i].log;
		dequeued += ws[i].log.n;
		if (i == c.threads)
			break;
		enqueued[i] = ws[i].enqueued;
		total += ws[i].enqueued;
		empty += ws[i].empty;
		reregs += ws[i].st.reregs;
	}
	seqlog_check(logs, c.threads + 1, enqueued, c.threads);
	if (qsbr_queue_delete(queue, NULL, NULL) != 0 || qsbr_domain_delete(dom) != 0)
		stress_fail("delete failed");
	snprintf(summary, sizeof(summary),
		 "enqueued=%" PRIu64 " dequeued=%" PRIu64 " (left at the end %" PRIu64
		 ") empty-dequeues=%" PRIu64 " re-registrations=%" PRIu64, total, dequeued,
		 drain->log.n, empty, reregs);
	return stress_finish(&c, summary);
}
