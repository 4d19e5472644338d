/* SPDX-License-Identifier: MIT */
/*
 * harness: what every workload shares, whatever the backend.
 *
 * - The run configuration (short or long variant): thread counts, key ranges,
 *   repetitions, durations.
 * - Pending accounting.  The harness, not the backend, counts objects retired
 *   and freed, so every backend is measured the same way: a retire bumps the
 *   retiring thread's counter, the free callback bumps the counter of the
 *   thread it runs in (a liburcu worker thread, say).  Each thread writes only
 *   its own slot; bench_pending() sums them.  Workloads sample the sum every
 *   batch of operations into a peak.
 * - A per-thread random generator, a cache of one prefilled structure, and
 *   a buffer for nodes unlinked during an operation.
 * - The clocks and the median of every program in bench/, the ones outside
 *   Google Benchmark (fastpath, scaling) included: static inline, so those
 *   need only this header, not harness.c.
 *
 * Every benchmarked object is malloc'd, starts with the backend's retire
 * header, and is freed by bench_obj_free().
 */
#ifndef BENCH_HARNESS_H
#define BENCH_HARNESS_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "gbench.h"

#if defined(__GNUC__)
#define BENCH_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define BENCH_UNLIKELY(x) (x)
#endif

/* ---- Configuration ---------------------------------------------------- */

#define BENCH_MAX_LIST 16

struct bench_cfg {
	const char *variant;     /* "short" or "long" */
	double min_time;         /* seconds per repetition */
	int reps;                /* repetitions; tables show the median */
	int threads[BENCH_MAX_LIST], n_threads;      /* stack and hash set */
	int64_t keys[BENCH_MAX_LIST];                /* hash set key ranges */
	int n_keys;
	int64_t registered[BENCH_MAX_LIST];          /* detection: registered threads */
	int n_registered;
	double stall_seconds;    /* stalled reader: how long the reader stalls */
};

extern struct bench_cfg bench_cfg;

/* ---- Command line ----------------------------------------------------- */

/* One flag of a program's own: "--name value" or "--name=value"; a bool
 * flag ('b') takes no value and is set to true. */
struct bench_flag {
	const char *name;  /* "--reps" */
	char kind;         /* 'b' bool, 'i' int, 'd' double, 's' const char * */
	void *value;       /* where it goes */
};

/* Takes the flags of table[0..n) out of argv (Google Benchmark rejects
 * flags it does not know) and leaves the rest, argv[0] first, for gb_run.
 * Returns the new argc (argv[argc] = NULL), or -1 after a message on
 * stderr when a flag lacks its value. */
int bench_take_flags(int argc, char **argv, const struct bench_flag *table, int n);

/* The command line of reclaim and hashmap-vs-lfht:
 *   --variant short|long   (else QSBR_BENCH_VARIANT, else short)
 *   --min-time S, --reps N (override the variant's)
 * Fills bench_cfg for the variant: seconds, repetitions, thread counts, key
 * ranges; the program adds its own fields.  Returns argc for gb_run, or -1
 * after a message on stderr. */
int bench_variant_args(int argc, char **argv, const char *prog);

/* The JSON context every program records: the variant, libqsbr's version,
 * and a warning (on stderr too) when NDEBUG is unset. */
void bench_context(const char *prog);

/* Registers a family (gb_register, gb_setup, gb_teardown) with the usual
 * options: bench_cfg's min time and repetitions, real time, aggregates only
 * on the console. */
gb_bench *bench_register(const char *name, gb_fn *body, void *arg, gb_fn *setup,
			 gb_fn *teardown);

/* One run per thread count of bench_cfg; only the single-thread run when
 * the backend is valid with one thread only (multi false). */
void bench_thread_counts(gb_bench *b, bool multi);

/* The hash set's and hash map's two mixes over a key range: arguments
 * "keys" and "lookup" (percent; the rest splits evenly between insert and
 * remove), 90 then 50. */
void bench_mix_args(gb_bench *b, int64_t keys);

/* ---- Pending accounting ----------------------------------------------- */

struct bench_slot {
	alignas(64) _Atomic uint64_t retired; /* written by the owner only */
	_Atomic uint64_t freed;               /* written by the owner only */
	atomic_bool taken;
};

extern _Thread_local struct bench_slot *bench__my_slot;
struct bench_slot *bench__slot_take(void);

static inline struct bench_slot *bench_slot(void)
{
	struct bench_slot *s = bench__my_slot;

	if (BENCH_UNLIKELY(s == NULL))
		s = bench__slot_take();
	return s;
}

/* Owner-only increment: a plain load and store, no read-modify-write.
 * Relaxed: the sums are statistics, read while threads run. */
static inline void bench__own_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* Called just before an object is handed to the backend. */
static inline void bench_count_retired(void)
{
	bench__own_add(&bench_slot()->retired, 1);
}

/* The one free function of every benchmarked object. */
static inline void bench_obj_free(void *p)
{
	bench__own_add(&bench_slot()->freed, 1);
	free(p);
}

/* Objects retired and not yet freed, summed over all threads. */
uint64_t bench_pending(void);

/* A run's bookkeeping, in this order:
 *   bench_run_start(size)        setup: object size, peak and totals reset
 *   bench_loop_enter(st)         each thread, just before its loop
 *   bench_peak_sample()          each thread, every batch of operations
 *   bench_loop_exit(st, ops)     each thread, just after its loop: the ops
 *                                counter (Google Benchmark sums the threads
 *                                and divides by the time: ops per second)
 *   bench_run_report(st)         teardown: peak_pending, peak_pending_bytes,
 *                                ns_per_op (wall time / all threads' ops,
 *                                i.e. 1 / throughput) and cpu_ns_per_op (CPU
 *                                time of the whole process, helper threads
 *                                included, per op)
 */
void bench_run_start(size_t obj_size);
void bench_loop_enter(gb_state *st);
void bench_peak_sample(void);
void bench_loop_exit(gb_state *st, uint64_t ops);
void bench_run_report(gb_state *st);
uint64_t bench_peak(void);

/* Warns on stderr if the backend still holds objects after a drain. */
void bench_check_drained(const char *what);

/* ---- Odds and ends ---------------------------------------------------- */

/* xorshift64*: fast, good enough to pick keys and operations. */
static inline uint64_t bench_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

uint64_t bench_seed(int thread_index);

/* A thread's draws from a mix of bench_mix_args: a key below "keys" and an
 * operation, a lookup with the run's "lookup" percentage, the rest split
 * evenly between insert and remove. */
enum bench_op { BENCH_LOOKUP, BENCH_INSERT, BENCH_REMOVE };

struct bench_mix {
	uint64_t keys, lookup, insert; /* insert: lookup + half the rest */
	uint64_t seed;
};

static inline void bench_mix_init(struct bench_mix *m, const gb_state *st)
{
	m->keys = (uint64_t)gb_arg(st, 0);
	m->lookup = (uint64_t)gb_arg(st, 1);
	m->insert = m->lookup + (100 - m->lookup) / 2;
	/* The address too: the streams differ from run to run. */
	m->seed = bench_seed(gb_thread_index(st)) ^ (uint64_t)(uintptr_t)m;
}

static inline enum bench_op bench_mix_next(struct bench_mix *m, uint64_t *key)
{
	uint64_t r = bench_rand(&m->seed);
	uint64_t pct = ((r & 0xffffffffu) * 100) >> 32;

	*key = (r >> 32) % m->keys;
	return pct < m->lookup ? BENCH_LOOKUP : pct < m->insert ? BENCH_INSERT : BENCH_REMOVE;
}

/* One prefilled structure (a hash table, a set of idle threads) is kept
 * across runs and thread counts while the same owner and key ask for it;
 * another request destroys it first.  Call from setup only. */
bool bench_cache_hit(const void *owner, int64_t key);
void bench_cache_store(const void *owner, int64_t key, void (*destroy)(void));
void bench_cache_drop(void);

/* Nodes an operation unlinks, retired after it ends: liburcu's defer_rcu
 * may wait for a grace period, which a thread must not do mid-operation. */
struct bench_rbuf {
	void **v;
	size_t n, cap;
};

static inline void bench_rbuf_push(struct bench_rbuf *b, void *p)
{
	if (BENCH_UNLIKELY(b->n == b->cap)) {
		b->cap = b->cap ? 2 * b->cap : 16;
		b->v = realloc(b->v, b->cap * sizeof(*b->v));
		if (b->v == NULL)
			abort();
	}
	b->v[b->n++] = p;
}

/* ---- Clocks and medians ------------------------------------------------ */

/* CLOCK_MONOTONIC in whole nanoseconds: exact differences for short spans. */
static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline double bench__seconds(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CLOCK_MONOTONIC, seconds. */
static inline double bench_now(void)
{
	return bench__seconds(CLOCK_MONOTONIC);
}

/* CPU time of the whole process, seconds. */
static inline double bench_cpu_now(void)
{
	return bench__seconds(CLOCK_PROCESS_CPUTIME_ID);
}

static inline int bench__cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorts v[0..n) in place, smallest first. */
static inline void bench_sort(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), bench__cmp_double);
}

/* The median of v[0..n), n > 0 (the mean of the middle two when n is
 * even).  Sorts v. */
static inline double bench_median(double *v, size_t n)
{
	bench_sort(v, n);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif /* BENCH_HARNESS_H */
