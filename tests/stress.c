/* SPDX-License-Identifier: MIT */
/*
 * Multi-threaded stress test for libqsbr.
 *
 * A table of NSLOTS atomic pointers holds live objects.  Readers load a random
 * slot and check the object (canary, payload, optional child) several times;
 * writers swap a slot for a fresh object and retire the old one through every
 * retire form, or wait a grace period and free it themselves.  All threads
 * now and then go offline for a while, re-register, reclaim, and writers call
 * qsbr_barrier.  Every object id is marked once in a bitmap when freed, so a
 * double free or a leak shows up at the end, as does a use after free in a
 * reader (bad canary; ASan and TSan catch it more directly).
 *
 * Usage: stress [--threads N] [--seconds S] [--batch B] [--deferred D] [--seed X]
 *               [--background 0|1|2] [--cap N]
 * --background sets options.background (0 auto, 1 all callbacks on the
 * helper thread, 2 no helper thread); --cap N sets
 * options.max_pending (the memory cap).
 * Exit status 0 only when every check passed.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qsbr.h"
#include "mix64.h"

#define NSLOTS 64
#define PAYLOAD 4
#define READ_PASSES 3
#define MAX_IDS (UINT64_C(1) << 24)
#define MAGIC UINT64_C(0x5a17c0ffee0dd5a1)
#define DEAD UINT64_C(0xdeaddeaddeaddead)
#define MAX_THREADS 256
#define MAX_REPORTS 10
#define QS_EVERY 256       /* reads between a reader's quiescent states */
#define CLOCK_EVERY 1024   /* loop iterations between clock checks */
#define SYNC_EVERY 512     /* about one replace in this many frees directly */
#define CHILD_EVERY 8      /* about one object in this many has a child */

/*
 * The fields are plain on purpose: they are written before the object is
 * published (release exchange) and after its grace period, so every reader's
 * access happens-before the free only if the library's grace period provides
 * that edge.  ThreadSanitizer checks exactly this.
 */
struct obj {
	qsbr_node node;            /* used by the qsbr_retire_node forms */
	uint64_t id;
	uint64_t canary;           /* MAGIC ^ id while live, DEAD once freed */
	uint64_t payload[PAYLOAD]; /* word(id, i) */
	struct obj *child;         /* reachable only through this object */
	size_t told;               /* bytes told to the library by a _sized retire */
};

enum form { F_NODE, F_PTR, F_NODE_SIZED, F_PTR_SIZED };

struct config {
	unsigned threads;
	double seconds;
	qsbr_options opts;
	uint64_t seed;
};

struct worker {
	pthread_t tid;
	unsigned idx;
	bool writer;
	bool exhausted;            /* no ids left: only reads from now on */
	qsbr_thread *t;
	uint64_t rng;
	uint64_t reads, synced, barriers, offline, reregs;
};

static qsbr_domain *dom;
static _Atomic(struct obj *) table[NSLOTS];
static struct timespec deadline; /* written before the threads start */

/* Counters: relaxed, read by main after the joins. */
static _Atomic uint64_t freed_bits[MAX_IDS / 64];
static _Atomic uint64_t next_id;
static _Atomic uint64_t failures;
static _Atomic uint64_t lib_retired;  /* objects handed to a retire call */
static _Atomic uint64_t cb_runs;      /* callbacks the library ran */
static _Atomic uint64_t told_bytes;   /* bytes told by _sized retires */
static _Atomic uint64_t told_freed;   /* of those, freed by callbacks */

static char first_failure[256]; /* written once, by the first failure */

/* This thread's handle while it is registered and online, else NULL.  A
 * callback retires children through it, and frees them directly without it. */
static _Thread_local qsbr_thread *tl_self;

static void obj_release(struct obj *o, const char *who);

/* ---- Helpers --------------------------------------------------------- */

static void __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...)
{
	uint64_t n = atomic_fetch_add_explicit(&failures, 1, memory_order_relaxed);
	va_list ap;

	if (n == 0) {
		va_start(ap, fmt);
		vsnprintf(first_failure, sizeof(first_failure), fmt, ap);
		va_end(ap);
	}
	if (n >= MAX_REPORTS)
		return;
	fputs("stress: failure: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static uint64_t relaxed_get(_Atomic uint64_t *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

static void relaxed_add(_Atomic uint64_t *p, uint64_t v)
{
	atomic_fetch_add_explicit(p, v, memory_order_relaxed);
}

/* xorshift64*; the state is never 0. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(0x2545f4914f6cdd1d);
}

static unsigned rng_below(uint64_t *s, unsigned n)
{
	return (unsigned)((rng_next(s) >> 32) % n);
}

static struct timespec now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

static double ts_diff(struct timespec a, struct timespec b)
{
	return (double)(a.tv_sec - b.tv_sec) + (double)(a.tv_nsec - b.tv_nsec) * 1e-9;
}

static bool time_up(void)
{
	return ts_diff(now(), deadline) >= 0;
}

static void sleep_ns(long ns)
{
	struct timespec ts = { ns / 1000000000L, ns % 1000000000L };

	nanosleep(&ts, NULL);
}

/* ---- Objects ----------------------------------------------------------- */

static uint64_t word(uint64_t id, unsigned i)
{
	return mix64(id * PAYLOAD + i + 1);
}

/* A fresh id, or MAX_IDS once they are all used. */
static uint64_t id_take(void)
{
	uint64_t id = relaxed_get(&next_id);

	while (id < MAX_IDS && !atomic_compare_exchange_weak_explicit(&next_id, &id, id + 1,
								      memory_order_relaxed,
								      memory_order_relaxed))
		;
	return id;
}

static void mark_freed(uint64_t id)
{
	uint64_t bit = UINT64_C(1) << (id % 64);
	uint64_t old;

	if (id >= MAX_IDS) {
		fail("free: id %" PRIu64 " out of range: corruption", id);
		return;
	}
	old = atomic_fetch_or_explicit(&freed_bits[id / 64], bit, memory_order_relaxed);
	if (old & bit)
		fail("free: id %" PRIu64 " freed twice", id);
}

static bool obj_intact(const struct obj *o)
{
	if (o->canary != (MAGIC ^ o->id))
		return false;
	for (unsigned i = 0; i < PAYLOAD; i++)
		if (o->payload[i] != word(o->id, i))
			return false;
	return true;
}

/* A new object with a fresh id, and sometimes a child; NULL when out of ids. */
static struct obj *obj_new(uint64_t *rng, bool may_have_child)
{
	uint64_t id = id_take();
	struct obj *o;

	if (id >= MAX_IDS)
		return NULL;
	o = malloc(sizeof(*o));
	if (o == NULL) {
		fail("out of memory");
		mark_freed(id); /* keep the accounting whole */
		return NULL;
	}
	memset(o, 0, sizeof(*o));
	o->id = id;
	o->canary = MAGIC ^ id;
	for (unsigned i = 0; i < PAYLOAD; i++)
		o->payload[i] = word(id, i);
	if (may_have_child && rng_below(rng, CHILD_EVERY) == 0)
		o->child = obj_new(rng, false);
	return o;
}

/* ---- Retire and free ------------------------------------------------- */

static void node_cb(qsbr_node *n)
{
	struct obj *o = (struct obj *)(void *)((char *)n - offsetof(struct obj, node));

	relaxed_add(&cb_runs, 1);
	obj_release(o, "node callback");
}

static void ptr_cb(void *p)
{
	relaxed_add(&cb_runs, 1);
	obj_release(p, "pointer callback");
}

/* Hands o to the library in form f; o is the library's afterwards. */
static void retire_obj(qsbr_thread *t, struct obj *o, enum form f)
{
	size_t told = (f == F_NODE_SIZED || f == F_PTR_SIZED) ? sizeof(*o) : 0;
	int rc = 0;

	o->told = told;
	switch (f) {
	case F_NODE:
		qsbr_retire_node(t, &o->node, node_cb);
		break;
	case F_NODE_SIZED:
		qsbr_retire_node_sized(t, &o->node, node_cb, told);
		break;
	case F_PTR:
		rc = qsbr_retire(t, o, ptr_cb);
		break;
	case F_PTR_SIZED:
		rc = qsbr_retire_sized(t, o, ptr_cb, told);
		break;
	}
	if (rc != 0) {
		/* Still ours: the node form needs no allocation. */
		if (rc != ENOMEM)
			fail("qsbr_retire: unexpected error %d", rc);
		told = 0;
		o->told = 0;
		qsbr_retire_node(t, &o->node, node_cb);
	}
	relaxed_add(&lib_retired, 1);
	relaxed_add(&told_bytes, told);
}

/* Called from a free path: the child's grace period is over too (it was
 * reachable only through its parent), but retiring it again exercises
 * re-entrant retire from callbacks. */
static void child_dispose(struct obj *c)
{
	qsbr_thread *t = tl_self;

	if (t != NULL && c->id % 4 != 0)
		retire_obj(t, c, (enum form)(c->id / 4 % 4));
	else
		obj_release(c, "child free");
}

/* Frees o, which nobody can reach any more. */
static void obj_release(struct obj *o, const char *who)
{
	struct obj *c;

	if (!obj_intact(o)) {
		fail("%s: object %p id %" PRIu64 " canary %#" PRIx64 ": double free or corruption",
		     who, (void *)o, o->id, o->canary);
		return; /* leak it rather than crash */
	}
	c = o->child;
	if (o->told != 0)
		relaxed_add(&told_freed, o->told);
	o->canary = DEAD;
	mark_freed(o->id);
	free(o);
	if (c != NULL)
		child_dispose(c);
}

/* ---- Worker operations ---------------------------------------------- */

static void read_slot(struct worker *w)
{
	unsigned i = rng_below(&w->rng, NSLOTS);
	/* Acquire pairs with the writers' exchange (release part): the object's
	 * fields, and its child's, are visible. */
	const struct obj *o = atomic_load_explicit(&table[i], memory_order_acquire);

	if (o == NULL) {
		fail("reader %u: slot %u is empty", w->idx, i);
		return;
	}
	for (int pass = 0; pass < READ_PASSES; pass++) {
		/* Compiler barrier: every pass reads the fields again. */
		atomic_signal_fence(memory_order_seq_cst);
		if (!obj_intact(o) || (o->child != NULL && !obj_intact(o->child))) {
			fail("reader %u: slot %u object %p id %" PRIu64 " canary %#" PRIx64
			     " (pass %d): freed or corrupt while in use",
			     w->idx, i, (const void *)o, o->id, o->canary, pass);
			break;
		}
	}
	if (++w->reads % QS_EVERY == 0)
		qsbr_quiescent(w->t);
}

static enum form pick_form(uint64_t *rng)
{
	unsigned r = rng_below(rng, 10);

	if (r < 4)
		return F_NODE;
	if (r < 7)
		return F_PTR;
	if (r < 9)
		return F_NODE_SIZED;
	return F_PTR_SIZED;
}

static void replace_slot(struct worker *w)
{
	unsigned i = rng_below(&w->rng, NSLOTS);
	struct obj *fresh = obj_new(&w->rng, true);
	struct obj *old;

	if (fresh == NULL) {
		w->exhausted = true;
		return;
	}
	/* Release publishes fresh's fields to the readers' acquire loads;
	 * acquire pairs with the exchange that published old. */
	old = atomic_exchange_explicit(&table[i], fresh, memory_order_acq_rel);
	if (!obj_intact(old)) {
		fail("writer %u: slot %u held a bad object %p", w->idx, i, (void *)old);
		return;
	}
	if (rng_below(&w->rng, SYNC_EVERY) == 0) {
		qsbr_synchronize(w->t);
		w->synced++;
		obj_release(old, "free after synchronize");
	} else {
		retire_obj(w->t, old, pick_form(&w->rng));
	}
	qsbr_quiescent(w->t);
}

/* Offline for a while: no shared reads; reclaim from here frees children
 * directly (tl_self is NULL). */
static void offline_window(struct worker *w)
{
	tl_self = NULL;
	qsbr_detach(w->t);
	if (rng_below(&w->rng, 2) == 0)
		qsbr_detach(w->t); /* idempotent */
	if (rng_below(&w->rng, 4) == 0)
		qsbr_reclaim(w->t);
	sleep_ns(10000 + (long)rng_below(&w->rng, 100000));
	qsbr_attach(w->t);
	tl_self = w->t;
	w->offline++;
}

/* Leaves the domain and joins again; what we held is handed over. */
static bool reregister(struct worker *w)
{
	tl_self = NULL;
	qsbr_unregister(w->t);
	w->t = qsbr_register(dom);
	if (w->t == NULL) {
		fail("worker %u: qsbr_register failed, errno %d", w->idx, errno);
		return false;
	}
	tl_self = w->t;
	w->reregs++;
	return true;
}

/* The occasional extras; false when the worker must stop. */
static bool extras(struct worker *w)
{
	unsigned r = rng_below(&w->rng, 1u << 16);

	if (r % 8192 == 0)
		offline_window(w);
	else if (r % 16384 == 1)
		return reregister(w);
	else if (r % 512 == 2)
		qsbr_reclaim(w->t);
	else if (w->writer && r % 16384 == 3) {
		qsbr_barrier(w->t);
		w->barriers++;
	}
	return true;
}

static bool should_stop(void)
{
	return relaxed_get(&failures) != 0 || time_up();
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	w->t = qsbr_register(dom);
	if (w->t == NULL) {
		fail("worker %u: qsbr_register failed, errno %d", w->idx, errno);
		return NULL;
	}
	tl_self = w->t;
	for (uint64_t iter = 1;; iter++) {
		if (iter % CLOCK_EVERY == 0 && should_stop())
			break;
		if (w->writer && !w->exhausted && iter % 4 == 0)
			replace_slot(w);
		else
			read_slot(w);
		if (!extras(w))
			return NULL;
	}
	tl_self = NULL;
	qsbr_unregister(w->t);
	return NULL;
}

/* ---- Main ------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f, "usage: stress [--threads N] [--seconds S] [--batch B] [--deferred D] [--seed X]"
		   " [--background 0|1|2] [--cap N]\n");
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (s == NULL || *s == '\0' || *s == '-')
		return false;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno != 0 || *end != '\0' || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_args(int argc, char **argv, struct config *c)
{
	uint64_t v;

	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		char *end;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "--threads") == 0 && parse_u64(val, MAX_THREADS, &v) && v >= 2)
			c->threads = (unsigned)v;
		else if (strcmp(a, "--batch") == 0 && parse_u64(val, UINT32_MAX, &v))
			c->opts.batch_size = (uint32_t)v;
		else if (strcmp(a, "--deferred") == 0 && parse_u64(val, UINT32_MAX, &v))
			c->opts.deferred_count = (uint32_t)v;
		else if (strcmp(a, "--seed") == 0 && parse_u64(val, UINT64_MAX, &v))
			c->seed = v;
		else if (strcmp(a, "--background") == 0 && parse_u64(val, 2, &v))
			c->opts.background = (uint32_t)v;
		else if (strcmp(a, "--cap") == 0 && parse_u64(val, UINT64_MAX, &v))
			c->opts.max_pending = v;
		else if (strcmp(a, "--seconds") == 0 && val != NULL &&
			 (c->seconds = strtod(val, &end), *end == '\0' && end != val) &&
			 c->seconds > 0 && c->seconds <= 3600)
			;
		else
			return false;
	}
	return true;
}

static void fill_table(uint64_t *rng)
{
	for (unsigned i = 0; i < NSLOTS; i++)
		atomic_init(&table[i], obj_new(rng, true));
}

/* Samples the statistics while the workers run. */
static void monitor(unsigned nthreads)
{
	while (!should_stop()) {
		qsbr_stats s;

		sleep_ns(20 * 1000 * 1000);
		if (qsbr_stats_get(dom, &s) != 0) {
			fail("qsbr_stats_get failed while running");
			return;
		}
		/* Fields are separate snapshots: only bounds hold while running. */
		if (s.threads > nthreads || s.online > s.threads)
			fail("stats: %" PRIu32 " threads, %" PRIu32 " online, %u workers", s.threads,
			     s.online, nthreads);
	}
}

/* The table's objects were never retired: free them directly. */
static void drain_table(void)
{
	for (unsigned i = 0; i < NSLOTS; i++) {
		struct obj *o = atomic_exchange_explicit(&table[i], NULL, memory_order_relaxed);

		if (o != NULL)
			obj_release(o, "final free");
	}
}

/* After the joins: the counters add up exactly.  Unless no helper thread
 * runs (QSBR_BACKGROUND_OFF), first let it finish (bounded): with no thread
 * registered every goal is reachable, and pending 0 means every callback
 * has returned. */
static void check_stats(bool helper)
{
	uint64_t retired, ran, bytes;
	qsbr_stats s;

	for (int i = 0; i < 10000; i++) {
		if (qsbr_stats_get(dom, &s) != 0) {
			fail("qsbr_stats_get failed");
			return;
		}
		if (!helper || s.pending == 0)
			break;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	retired = relaxed_get(&lib_retired);
	ran = relaxed_get(&cb_runs);
	bytes = relaxed_get(&told_bytes) - relaxed_get(&told_freed);
	if (s.threads != 0 || s.online != 0)
		fail("stats: %" PRIu32 " threads (%" PRIu32 " online) after unregister", s.threads,
		     s.online);
	if (s.retired != retired)
		fail("stats: retired %" PRIu64 ", expected %" PRIu64, s.retired, retired);
	if (s.freed != ran)
		fail("stats: freed %" PRIu64 ", but %" PRIu64 " callbacks ran", s.freed, ran);
	if (s.pending != s.retired - s.freed)
		fail("stats: pending %" PRIu64 " != retired - freed %" PRIu64, s.pending,
		     s.retired - s.freed);
	if (s.pending_bytes != bytes)
		fail("stats: pending_bytes %" PRIu64 ", expected %" PRIu64, s.pending_bytes, bytes);
}

static uint64_t popcount64(uint64_t x)
{
	x = x - ((x >> 1) & UINT64_C(0x5555555555555555));
	x = (x & UINT64_C(0x3333333333333333)) + ((x >> 2) & UINT64_C(0x3333333333333333));
	x = (x + (x >> 4)) & UINT64_C(0x0f0f0f0f0f0f0f0f);
	return (x * UINT64_C(0x0101010101010101)) >> 56;
}

/* After qsbr_domain_delete: every id freed once, every retire called back. */
static void check_freed(void)
{
	uint64_t created = relaxed_get(&next_id), marked = 0;

	if (created > MAX_IDS)
		created = MAX_IDS;
	for (uint64_t w = 0; w < MAX_IDS / 64; w++)
		marked += popcount64(relaxed_get(&freed_bits[w]));
	if (marked != created)
		fail("%" PRIu64 " objects created but %" PRIu64 " freed (leak)", created, marked);
	if (relaxed_get(&cb_runs) != relaxed_get(&lib_retired))
		fail("%" PRIu64 " objects retired but %" PRIu64 " callbacks ran",
		     relaxed_get(&lib_retired), relaxed_get(&cb_runs));
	if (relaxed_get(&told_freed) != relaxed_get(&told_bytes))
		fail("%" PRIu64 " bytes told but %" PRIu64 " freed", relaxed_get(&told_bytes),
		     relaxed_get(&told_freed));
}

static bool run_workers(struct worker *ws, const struct config *c)
{
	unsigned readers = c->threads / 2;
	unsigned started = 0;

	for (unsigned i = 0; i < c->threads; i++) {
		ws[i].idx = i;
		ws[i].writer = i >= readers;
		ws[i].rng = mix64(c->seed + i + 1) | 1;
		if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) != 0) {
			fail("pthread_create failed");
			break;
		}
		started++;
	}
	if (started == c->threads)
		monitor(c->threads);
	for (unsigned i = 0; i < started; i++)
		pthread_join(ws[i].tid, NULL);
	return started == c->threads;
}

static void summary(const struct worker *ws, const struct config *c, double secs)
{
	uint64_t reads = 0, synced = 0, barriers = 0, offline = 0, reregs = 0;
	uint64_t f = relaxed_get(&failures);
	unsigned readers = c->threads / 2;

	for (unsigned i = 0; i < c->threads; i++) {
		reads += ws[i].reads;
		synced += ws[i].synced;
		barriers += ws[i].barriers;
		offline += ws[i].offline;
		reregs += ws[i].reregs;
	}
	printf("threads=%u readers=%u writers=%u seconds=%.2f retired=%" PRIu64
	       " synchronized=%" PRIu64 " barriers=%" PRIu64 " offline=%" PRIu64
	       " reregistered=%" PRIu64 " reads/s=%.0f seed=%" PRIu64 " ",
	       c->threads, readers, c->threads - readers, secs, relaxed_get(&lib_retired), synced,
	       barriers, offline, reregs, secs > 0 ? (double)reads / secs : 0.0, c->seed);
	if (f == 0)
		printf("stress: OK\n");
	else
		printf("stress: FAIL: %" PRIu64 " failure(s), first: %s\n", f, first_failure);
}

int main(int argc, char **argv)
{
	struct config c = { .threads = 4, .seconds = 2.0 };
	static struct worker ws[MAX_THREADS];
	struct timespec start;
	uint64_t rng;
	int rc;

	qsbr_options_init(&c.opts);
	c.seed = (uint64_t)now().tv_nsec ^ (uint64_t)time(NULL);
	if (!parse_args(argc, argv, &c)) {
		usage(stderr);
		return 2;
	}
	dom = qsbr_domain_new(&c.opts);
	if (dom == NULL) {
		fprintf(stderr, "stress: qsbr_domain_new: %s\n", strerror(errno));
		usage(stderr);
		return 2;
	}
	rng = mix64(c.seed) | 1;
	fill_table(&rng);
	start = now();
	deadline = start;
	deadline.tv_sec += (time_t)c.seconds;
	deadline.tv_nsec += (long)((c.seconds - (double)(time_t)c.seconds) * 1e9);
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	if (!run_workers(ws, &c)) {
		/* Some threads never started: nothing to check. */
		summary(ws, &c, ts_diff(now(), start));
		return 1;
	}
	drain_table();
	check_stats(c.opts.background != QSBR_BACKGROUND_OFF);
	rc = qsbr_domain_delete(dom);
	if (rc != 0)
		fail("qsbr_domain_delete returned %d", rc);
	else
		check_freed();
	summary(ws, &c, ts_diff(now(), start));
	return relaxed_get(&failures) == 0 ? 0 : 1;
}
