/* SPDX-License-Identifier: MIT */
/*
 * harness.c: pending accounting, peak sampling, the one-entry cache.
 * See harness.h.
 */
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <qsbr.h>

struct bench_cfg bench_cfg;

/* ---- Command line ----------------------------------------------------- */

/* Stores text into f's value; false if it is no number where one is due. */
static bool flag_store(const struct bench_flag *f, const char *text)
{
	char *end;

	switch (f->kind) {
	case 'i':
		*(int *)f->value = (int)strtol(text, &end, 10);
		break;
	case 'd':
		*(double *)f->value = strtod(text, &end);
		break;
	default:
		*(const char **)f->value = text;
		return true;
	}
	return end != text && *end == '\0';
}

int bench_take_flags(int argc, char **argv, const struct bench_flag *table, int n)
{
	int out = 1;

	for (int i = 1; i < argc; i++) {
		const struct bench_flag *f = NULL;
		const char *text = NULL;

		for (int k = 0; k < n && f == NULL; k++) {
			size_t len = strlen(table[k].name);

			if (strncmp(argv[i], table[k].name, len) != 0)
				continue;
			if (argv[i][len] == '\0')
				f = &table[k];
			else if (argv[i][len] == '=' && table[k].kind != 'b')
				f = &table[k], text = argv[i] + len + 1;
		}
		if (f == NULL) {
			argv[out++] = argv[i];
			continue;
		}
		if (f->kind == 'b') {
			*(bool *)f->value = true;
			continue;
		}
		if (text == NULL && i + 1 < argc)
			text = argv[++i];
		if (text == NULL || !flag_store(f, text)) {
			fprintf(stderr, "%s: %s wants a %s\n", argv[0], f->name,
				f->kind == 's' ? "value" : "number");
			return -1;
		}
	}
	argv[out] = NULL;
	return out;
}

int bench_variant_args(int argc, char **argv, const char *prog)
{
	static const int64_t keys[] = { 1024, 65536, 1048576 };
	static const int threads[] = { 1, 2, 3, 4 };
	const char *variant = getenv("QSBR_BENCH_VARIANT");
	double min_time = 0;
	int reps = 0;
	const struct bench_flag flags[] = {
		{ "--variant", 's', &variant },
		{ "--min-time", 'd', &min_time },
		{ "--reps", 'i', &reps },
	};
	struct bench_cfg *c = &bench_cfg;
	bool long_run;

	argc = bench_take_flags(argc, argv, flags, 3);
	if (argc < 0)
		return -1;
	if (variant == NULL)
		variant = "short";
	if (strcmp(variant, "short") != 0 && strcmp(variant, "long") != 0) {
		fprintf(stderr, "%s: --variant short|long\n", prog);
		return -1;
	}
	long_run = strcmp(variant, "long") == 0;
	c->variant = long_run ? "long" : "short";
	c->min_time = min_time > 0 ? min_time : long_run ? 1.0 : 0.1;
	c->reps = reps > 0 ? reps : long_run ? 5 : 3;
	c->n_threads = 4;
	memcpy(c->threads, threads, sizeof(threads));
	c->n_keys = 3;
	memcpy(c->keys, keys, sizeof(keys));
	return argc;
}

void bench_context(const char *prog)
{
	if (bench_cfg.variant != NULL)
		gb_context("variant", bench_cfg.variant);
	gb_context("libqsbr", qsbr_version());
#ifndef NDEBUG
	gb_context("warning", "built without NDEBUG: libqsbr's inline path has debug checks");
	fprintf(stderr, "%s: built without NDEBUG; use --buildtype=release for numbers\n", prog);
#else
	(void)prog;
#endif
}

gb_bench *bench_register(const char *name, gb_fn *body, void *arg, gb_fn *setup,
			 gb_fn *teardown)
{
	gb_bench *b = gb_register(name, body, arg);

	gb_setup(b, setup);
	gb_teardown(b, teardown);
	gb_min_time(b, bench_cfg.min_time);
	gb_repetitions(b, bench_cfg.reps);
	gb_real_time(b);
	gb_aggregates_only(b);
	return b;
}

void bench_thread_counts(gb_bench *b, bool multi)
{
	for (int i = 0; i < bench_cfg.n_threads; i++)
		if (multi || bench_cfg.threads[i] == 1)
			gb_threads(b, bench_cfg.threads[i]);
}

void bench_mix_args(gb_bench *b, int64_t keys)
{
	static const char *const names[] = { "keys", "lookup" };

	gb_arg_names(b, names, 2);
	gb_args(b, (const int64_t[]){ keys, 90 }, 2);
	gb_args(b, (const int64_t[]){ keys, 50 }, 2);
}

/* ---- Pending accounting ----------------------------------------------- */

/* Enough for the benchmark threads, liburcu's worker and the advancers; the
 * idle threads of the detection workload never retire and take none. */
#define SLOTS 128

static struct bench_slot slots[SLOTS];
static atomic_uint slots_used; /* high-water mark: bench_pending reads [0, used) */
static pthread_key_t slot_key;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;
_Thread_local struct bench_slot *bench__my_slot;

/* Thread exit: the slot goes back, its counts stay (they are sums). */
static void slot_release(void *p)
{
	struct bench_slot *s = p;

	/* Release: the next owner's plain increments start from our last
	 * values; pairs with the acquire CAS in bench__slot_take. */
	atomic_store_explicit(&s->taken, false, memory_order_release);
}

static void slot_key_init(void)
{
	if (pthread_key_create(&slot_key, slot_release) != 0)
		abort();
}

struct bench_slot *bench__slot_take(void)
{
	pthread_once(&slot_once, slot_key_init);
	for (unsigned i = 0; i < SLOTS; i++) {
		bool expected = false;

		if (atomic_compare_exchange_strong_explicit(&slots[i].taken, &expected, true,
							    memory_order_acquire,
							    memory_order_relaxed)) {
			unsigned used = atomic_load_explicit(&slots_used, memory_order_relaxed);

			while (used < i + 1 &&
			       !atomic_compare_exchange_weak_explicit(&slots_used, &used, i + 1,
								      memory_order_relaxed,
								      memory_order_relaxed))
				;
			pthread_setspecific(slot_key, &slots[i]);
			bench__my_slot = &slots[i];
			return &slots[i];
		}
	}
	fprintf(stderr, "bench: more than %d threads retire or free objects\n", SLOTS);
	abort();
}

uint64_t bench_pending(void)
{
	unsigned used = atomic_load_explicit(&slots_used, memory_order_relaxed);
	uint64_t retired = 0, freed = 0;

	/* Frees first: an object is counted retired before it can be freed,
	 * so reading the frees first keeps the difference from going below
	 * what was pending. */
	for (unsigned i = 0; i < used; i++)
		freed += atomic_load_explicit(&slots[i].freed, memory_order_relaxed);
	for (unsigned i = 0; i < used; i++)
		retired += atomic_load_explicit(&slots[i].retired, memory_order_relaxed);
	return retired > freed ? retired - freed : 0;
}

static size_t obj_size;
static _Atomic uint64_t peak, total_ops;
static double cpu_start, cpu_used, wall_start, wall_used;

void bench_run_start(size_t size)
{
	obj_size = size;
	atomic_store_explicit(&peak, bench_pending(), memory_order_relaxed);
	atomic_store_explicit(&total_ops, 0, memory_order_relaxed);
	cpu_used = 0;
}

void bench_loop_enter(gb_state *st)
{
	if (gb_thread_index(st) == 0) {
		wall_start = bench_now();
		cpu_start = bench_cpu_now();
	}
}

void bench_peak_sample(void)
{
	uint64_t p = bench_pending();
	uint64_t old = atomic_load_explicit(&peak, memory_order_relaxed);

	while (p > old && !atomic_compare_exchange_weak_explicit(&peak, &old, p,
								  memory_order_relaxed,
								  memory_order_relaxed))
		;
}

uint64_t bench_peak(void)
{
	return atomic_load_explicit(&peak, memory_order_relaxed);
}

void bench_loop_exit(gb_state *st, uint64_t ops)
{
	/* Every thread has left its loop (Google Benchmark's barrier). */
	if (gb_thread_index(st) == 0) {
		cpu_used = bench_cpu_now() - cpu_start;
		wall_used = bench_now() - wall_start;
	}
	bench_peak_sample();
	atomic_fetch_add_explicit(&total_ops, ops, memory_order_relaxed);
	/* Summed over the threads by Google Benchmark, then per second. */
	gb_counter(st, "ops", (double)ops, GB_RATE);
}

void bench_run_report(gb_state *st)
{
	uint64_t p = bench_peak();
	uint64_t ops = atomic_load_explicit(&total_ops, memory_order_relaxed);

	gb_counter(st, "peak_pending", (double)p, 0);
	gb_counter(st, "peak_pending_bytes", (double)p * (double)obj_size, 0);
	if (ops != 0) {
		/* Wall time over all threads' operations: 1 / throughput. */
		gb_counter(st, "ns_per_op", wall_used * 1e9 / (double)ops, 0);
		gb_counter(st, "cpu_ns_per_op", cpu_used * 1e9 / (double)ops, 0);
	}
}

void bench_check_drained(const char *what)
{
	uint64_t p = bench_pending();

	if (p != 0)
		fprintf(stderr, "bench: %s: %llu objects still pending after the drain\n", what,
			(unsigned long long)p);
}

/* ---- Odds and ends ---------------------------------------------------- */

uint64_t bench_seed(int thread_index)
{
	uint64_t s = 0x9e3779b97f4a7c15ull * (uint64_t)(thread_index + 1);

	return s ? s : 1;
}

static const void *cache_owner;
static int64_t cache_key;
static void (*cache_destroy)(void);

bool bench_cache_hit(const void *owner, int64_t key)
{
	return cache_owner == owner && cache_key == key;
}

void bench_cache_drop(void)
{
	if (cache_destroy != NULL)
		cache_destroy();
	cache_owner = NULL;
	cache_destroy = NULL;
}

void bench_cache_store(const void *owner, int64_t key, void (*destroy)(void))
{
	cache_owner = owner;
	cache_key = key;
	cache_destroy = destroy;
}
