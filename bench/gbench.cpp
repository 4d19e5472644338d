// SPDX-License-Identifier: MIT
//
// gbench.cpp: the C surface of gbench.h over Google Benchmark.
//
// A gb_bench is a Family: the registered benchmark, the C body and its
// argument, and the setup/teardown hooks.  Google Benchmark's own Setup()
// takes a bare function pointer with no argument, so the hooks run here
// instead: thread 0 runs setup and opens a gate the other threads wait on;
// the last thread out of the body runs teardown and closes it.  Google
// Benchmark joins a run's threads before it starts the next run, so a gate
// never mixes two runs.

#include "gbench.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

struct gb_bench {
	benchmark::internal::Benchmark *b = nullptr;
	gb_fn *body = nullptr;
	gb_fn *setup = nullptr;
	gb_fn *teardown = nullptr;
	void *arg = nullptr;

	std::mutex m;
	std::condition_variable cv;
	bool open = false; // setup done for the current run
	int left = 0;      // threads out of the body in the current run
};

static benchmark::State &S(gb_state *st)
{
	return *reinterpret_cast<benchmark::State *>(st);
}

static const benchmark::State &S(const gb_state *st)
{
	return *reinterpret_cast<const benchmark::State *>(st);
}

static void run_family(gb_bench *f, benchmark::State &state)
{
	gb_state *st = reinterpret_cast<gb_state *>(&state);
	const bool hooks = f->setup != nullptr || f->teardown != nullptr;

	if (hooks) {
		if (state.thread_index() == 0) {
			if (f->setup != nullptr)
				f->setup(st, f->arg);
			std::lock_guard<std::mutex> l(f->m);
			f->open = true;
			f->cv.notify_all();
		} else {
			std::unique_lock<std::mutex> l(f->m);
			f->cv.wait(l, [f] { return f->open; });
		}
	}
	f->body(st, f->arg);
	if (hooks) {
		std::unique_lock<std::mutex> l(f->m);
		if (++f->left < state.threads())
			return;
		f->left = 0;
		f->open = false;
		l.unlock();
		if (f->teardown != nullptr)
			f->teardown(st, f->arg);
	}
}

extern "C" {

gb_bench *gb_register(const char *name, gb_fn *body, void *arg)
{
	gb_bench *f = new gb_bench;

	f->body = body;
	f->arg = arg;
	f->b = benchmark::RegisterBenchmark(name, [f](benchmark::State &state) {
		run_family(f, state);
	});
	return f;
}

void gb_setup(gb_bench *f, gb_fn *setup) { f->setup = setup; }
void gb_teardown(gb_bench *f, gb_fn *teardown) { f->teardown = teardown; }
void gb_threads(gb_bench *f, int n) { f->b->Threads(n); }

void gb_args(gb_bench *f, const int64_t *v, int n)
{
	f->b->Args(std::vector<int64_t>(v, v + n));
}

void gb_arg_names(gb_bench *f, const char *const *names, int n)
{
	f->b->ArgNames(std::vector<std::string>(names, names + n));
}

void gb_range(gb_bench *f, int64_t lo, int64_t hi, int mult)
{
	f->b->RangeMultiplier(mult)->Range(lo, hi);
}

void gb_repetitions(gb_bench *f, int n) { f->b->Repetitions(n); }
void gb_min_time(gb_bench *f, double seconds) { f->b->MinTime(seconds); }
void gb_fixed_iterations(gb_bench *f, int64_t n) { f->b->Iterations(n); }
void gb_real_time(gb_bench *f) { f->b->UseRealTime(); }
void gb_aggregates_only(gb_bench *f) { f->b->DisplayAggregatesOnly(true); }

static double min_of(const std::vector<double> &v)
{
	return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end());
}

void gb_statistic_min(gb_bench *f) { f->b->ComputeStatistics("min", min_of); }

static bool console_to_stderr;

void gb_console_to_stderr(void) { console_to_stderr = true; }

void gb_context(const char *key, const char *value)
{
	benchmark::AddCustomContext(key, value);
}

int gb_run(int argc, char **argv)
{
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 2;
	if (console_to_stderr) {
		benchmark::ConsoleReporter console(benchmark::ConsoleReporter::OO_Tabular);

		console.SetOutputStream(&std::cerr);
		console.SetErrorStream(&std::cerr);
		benchmark::RunSpecifiedBenchmarks(&console);
	} else {
		benchmark::RunSpecifiedBenchmarks();
	}
	benchmark::Shutdown();
	return 0;
}

bool gb_keep_running_batch(gb_state *st, int64_t n) { return S(st).KeepRunningBatch(n); }
int64_t gb_iterations(const gb_state *st) { return S(st).iterations(); }
int64_t gb_arg(const gb_state *st, int i) { return S(st).range(static_cast<size_t>(i)); }
int gb_thread_index(const gb_state *st) { return S(st).thread_index(); }
int gb_thread_count(const gb_state *st) { return S(st).threads(); }

void gb_counter(gb_state *st, const char *name, double value, unsigned flags)
{
	int f = benchmark::Counter::kDefaults;

	if (flags & GB_RATE)
		f |= benchmark::Counter::kIsRate;
	if (flags & GB_AVG_THREADS)
		f |= benchmark::Counter::kAvgThreads;
	if (flags & GB_INVERT)
		f |= benchmark::Counter::kInvert;
	S(st).counters[name] = benchmark::Counter(value, static_cast<benchmark::Counter::Flags>(f));
}

void gb_label(gb_state *st, const char *label) { S(st).SetLabel(label); }
void gb_skip(gb_state *st, const char *message) { S(st).SkipWithError(message); }

} // extern "C"
