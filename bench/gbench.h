/* SPDX-License-Identifier: MIT */
/*
 * gbench: Google Benchmark, driven from C.
 *
 * Google Benchmark is C++; this header is the small C surface the benchmark
 * bodies use, implemented by gbench.cpp.  A body is a C function that gets the
 * run's state and the pointer it was registered with:
 *
 *   static void body(gb_state *st, void *arg)
 *   {
 *           while (gb_keep_running_batch(st, 1024))
 *                   for (int i = 0; i < 1024; i++)
 *                           work();
 *           gb_counter(st, "ops", (double)gb_iterations(st), GB_RATE);
 *   }
 *   gb_bench *b = gb_register("work", body, NULL);
 *   gb_threads(b, 2);
 *
 * Every thread of a multi-threaded run calls the body.  A setup function, if
 * set, runs once per run in thread 0 before any thread enters the body; a
 * teardown runs once per run after every thread has left it (in whichever
 * thread left last).  Neither is timed.  Counters set by several threads are
 * summed, as Google Benchmark does.
 */
#ifndef GBENCH_H
#define GBENCH_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gb_state gb_state; /* a benchmark::State */
typedef struct gb_bench gb_bench; /* a registered benchmark family */
typedef void gb_fn(gb_state *st, void *arg);

/* Counter flags (benchmark::Counter::Flags). */
enum {
	GB_RATE = 1 << 0,        /* divided by the run's time: per second */
	GB_AVG_THREADS = 1 << 1, /* divided by the number of threads */
	GB_INVERT = 1 << 2,      /* 1/x, after the above */
};

/* ---- Registration (before gb_run) ------------------------------------- */

/* Registers a family named name; body(st, arg) runs in each thread. */
gb_bench *gb_register(const char *name, gb_fn *body, void *arg);
void gb_setup(gb_bench *b, gb_fn *setup);
void gb_teardown(gb_bench *b, gb_fn *teardown);

/* One run per thread count given (repeat the call for several). */
void gb_threads(gb_bench *b, int n);
/* One run per argument tuple; gb_arg(st, i) reads the i-th value. */
void gb_args(gb_bench *b, const int64_t *v, int n);
void gb_arg_names(gb_bench *b, const char *const *names, int n);
/* Runs lo, lo*mult, ..., hi for argument 0. */
void gb_range(gb_bench *b, int64_t lo, int64_t hi, int mult);

void gb_repetitions(gb_bench *b, int n);
void gb_min_time(gb_bench *b, double seconds);
void gb_fixed_iterations(gb_bench *b, int64_t n); /* instead of min_time */
void gb_real_time(gb_bench *b);             /* wall clock, not CPU time */
void gb_aggregates_only(gb_bench *b);       /* print only mean/median/stddev */
/* With repetitions: a "min" aggregate beside mean, median, stddev and cv,
 * of the times and of every counter. */
void gb_statistic_min(gb_bench *b);

/* A key/value pair for the JSON "context" block. */
void gb_context(const char *key, const char *value);

/* The console report goes to stderr, uncoloured, and leaves stdout to the
 * caller (call before gb_run; --benchmark_out still writes its file). */
void gb_console_to_stderr(void);

/* Parses Google Benchmark's --benchmark_* flags out of argv, runs every
 * registered benchmark and returns the exit status. */
int gb_run(int argc, char **argv);

/* ---- Inside a run ------------------------------------------------------ */

/* True while the run wants n more iterations; the body does n per call. */
bool gb_keep_running_batch(gb_state *st, int64_t n);
int64_t gb_iterations(const gb_state *st); /* iterations this thread ran */
int64_t gb_arg(const gb_state *st, int i);
int gb_thread_index(const gb_state *st);
int gb_thread_count(const gb_state *st);

/* Sets (not adds) this thread's counter. */
void gb_counter(gb_state *st, const char *name, double value, unsigned flags);
void gb_label(gb_state *st, const char *label);
void gb_skip(gb_state *st, const char *message); /* the run reports an error */

#ifdef __cplusplus
}
#endif

#endif /* GBENCH_H */
