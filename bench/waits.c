/* SPDX-License-Identifier: MIT */
/*
 * waits: blocking grace-period waits, libqsbr beside liburcu's QSBR flavour
 * in one run (workload: wl_waits.c).  Grace-period waits returned per
 * second, all callers together, in six cases:
 *   1 caller, 2 readers     readers report quiescent states in a loop
 *   1 caller                no readers
 *   2 callers, 4 callers    concurrent callers, no readers
 *   2 and 4 callers, 2 busy threads: the same while two unregistered
 *                           threads burn CPU in a plain loop
 * A wait that collapses shows in single runs, not in a median: every run is
 * reported, on the console as its own row and in the JSON as its own entry
 * (run_type "iteration"), beside the mean, median, stddev, cv and min.
 *
 * Usage: waits [--min-time S] [--reps N] [--quick] [--markdown]
 *              [--benchmark_* flags]
 *   --min-time S  seconds per run (default 1)
 *   --reps N      runs of each case and library (default 5)
 *   --quick       a smoke test of a few seconds: 0.1 s runs, 2 of each
 *                 (--min-time and --reps still override it)
 *   --markdown    the console report goes to stderr; stdout gets a Markdown
 *                 table: every run, median, min, and libqsbr/liburcu
 * JSON: --benchmark_out=FILE --benchmark_out_format=json.  Read the
 * waits_per_s counter: the Time columns are Google Benchmark's own (one
 * iteration per run, its real time averaged over the run's threads).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <qsbr.h>

#include "harness.h"
#include "workloads.h"

static const struct waits_case cases[] = {
	{ "1 caller, 2 readers", "1caller_2readers", 1, 2, 0 },
	{ "1 caller", "1caller", 1, 0, 0 },
	{ "2 callers", "2callers", 2, 0, 0 },
	{ "4 callers", "4callers", 4, 0, 0 },
	{ "2 callers, 2 busy threads", "2callers_2busy", 2, 0, 2 },
	{ "4 callers, 2 busy threads", "4callers_2busy", 4, 0, 2 },
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* The libraries in table order, by backend name (RC_NAME). */
static const char *const backends[] = { "qsbr", "urcu" };
#define NLIBS 2

/* Every run's waits per second, by case and library, in run order. */
struct series {
	double *v;
	size_t n, cap;
};
static struct series runs[NCASES][NLIBS];
static const char *calls[NLIBS]; /* the call each library was measured with */

void waits_record(const struct waits_case *c, const char *backend, const char *call,
		  double waits_per_s)
{
	size_t ci = (size_t)(c - cases);
	int li = strcmp(backend, backends[0]) == 0 ? 0 : 1;
	struct series *r = &runs[ci][li];

	calls[li] = call;
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 8;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		if (r->v == NULL)
			abort();
	}
	r->v[r->n++] = waits_per_s;
}

/* Three significant digits with a k or M suffix: "45.7k". */
static const char *rate(char *buf, size_t size, double v)
{
	const char *unit = "";

	if (v >= 1e6)
		v /= 1e6, unit = "M";
	else if (v >= 1e3)
		v /= 1e3, unit = "k";
	snprintf(buf, size, "%.*f%s", v >= 100 ? 0 : v >= 10 ? 1 : 2, v, unit);
	return buf;
}

/* A library's cells: the runs, their median and their minimum. */
static void print_cells(size_t ci, int li, double *median, double *min)
{
	const struct series *r = &runs[ci][li];
	double *sorted;
	char buf[32];

	*median = *min = 0;
	if (r->n == 0) {
		printf(" - | - | - |");
		return;
	}
	putchar(' ');
	for (size_t k = 0; k < r->n; k++)
		printf("%s%s", k ? " " : "", rate(buf, sizeof(buf), r->v[k]));
	sorted = malloc(r->n * sizeof(*sorted));
	if (sorted == NULL)
		abort();
	memcpy(sorted, r->v, r->n * sizeof(*sorted));
	*median = bench_median(sorted, r->n);
	*min = sorted[0];
	free(sorted);
	printf(" | %s |", rate(buf, sizeof(buf), *median));
	printf(" %s |", rate(buf, sizeof(buf), *min));
}

static void print_ratio(double a, double b)
{
	if (a > 0 && b > 0)
		printf(" %.2f |", a / b);
	else
		printf(" - |");
}

static void print_markdown(void)
{
	char when[32] = "", load[64] = "";
	time_t now = time(NULL);
	FILE *f = fopen("/proc/loadavg", "r");

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", gmtime(&now));
	if (f != NULL) {
		if (fgets(load, sizeof(load), f) != NULL) {
			char *end = load;

			for (int k = 0; k < 3 && end != NULL; k++)
				end = strchr(end + 1, ' ');
			if (end != NULL)
				*end = '\0';
		}
		fclose(f);
	}
	printf("Grace-period waits returned per second, all callers together; libqsbr %s: %s, "
	       "liburcu: %s.\n",
	       qsbr_version(), calls[0] ? calls[0] : "-", calls[1] ? calls[1] : "-");
	printf("%d runs of %.2g s per case and library, %ld CPUs online, load average %s at "
	       "the end, %s%s.\n\n",
	       bench_cfg.reps, bench_cfg.min_time, sysconf(_SC_NPROCESSORS_ONLN),
	       load[0] ? load : "unknown", when,
#ifdef NDEBUG
	       ""
#else
	       "; NDEBUG unset, libqsbr's inline path has debug checks"
#endif
	);
	printf("| case | libqsbr runs | median | min | liburcu runs | median | min |"
	       " libqsbr/liburcu median | libqsbr/liburcu min |\n");
	printf("|---|---|---:|---:|---|---:|---:|---:|---:|\n");
	for (size_t ci = 0; ci < NCASES; ci++) {
		double med[NLIBS], min[NLIBS];

		if (runs[ci][0].n == 0 && runs[ci][1].n == 0)
			continue;
		printf("| %s |", cases[ci].name);
		for (int li = 0; li < NLIBS; li++)
			print_cells(ci, li, &med[li], &min[li]);
		print_ratio(med[0], med[1]);
		print_ratio(min[0], min[1]);
		putchar('\n');
	}
}

int main(int argc, char **argv)
{
	bool quick = false, markdown = false;
	double min_time = 0;
	int n, rc, reps = 0;
	const struct bench_flag flags[] = {
		{ "--min-time", 'd', &min_time },
		{ "--reps", 'i', &reps },
		{ "--quick", 'b', &quick },
		{ "--markdown", 'b', &markdown },
	};

	n = bench_take_flags(argc, argv, flags, 4);
	if (n < 0)
		return 2;
	bench_cfg.min_time = min_time > 0 ? min_time : quick ? 0.1 : 1.0;
	bench_cfg.reps = reps > 0 ? reps : quick ? 2 : 5;
	bench_context("waits");
	gb_context("libraries", HAVE_URCU ? "libqsbr liburcu-qsbr" : "libqsbr");
	for (size_t ci = 0; ci < NCASES; ci++) {
		wl_waits_register_qsbr(&cases[ci]);
#if HAVE_URCU
		wl_waits_register_urcu(&cases[ci]);
#endif
	}
	if (markdown)
		gb_console_to_stderr();
	rc = gb_run(n, argv);
	if (rc == 0 && markdown)
		print_markdown();
	return rc;
}
