/* SPDX-License-Identifier: MIT */
/*
 * hashmap-vs-lfht: libqsbr's hash map (qsbr/hashmap.h) against liburcu's
 * cds_lfht (QSBR flavour), workload wl_hashmap.c, through the harness of
 * the reclaim benchmark (harness.h, gbench.h): mixes 90/5/5 and 50/25/25
 * lookup/insert/remove, key ranges 1K, 64K and 1M, 1 to 4 threads, the
 * median of the repetitions.
 *
 * Usage: hashmap-vs-lfht [--variant short|long] [--benchmark_* flags]
 *   short (default, or QSBR_BENCH_VARIANT=short): about a minute on 2 cores.
 *   long: the numbers to publish.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qsbr.h>

#include "harness.h"

void wl_hashmap_register_qsbr(int64_t keys);
#if HAVE_LFHT
void wl_hashmap_register_urcu(int64_t keys);
#endif

static void configure(const char *variant)
{
	static const int64_t keys[] = { 1024, 65536, 1048576 };
	static const int threads[] = { 1, 2, 3, 4 };
	struct bench_cfg *c = &bench_cfg;
	const bool long_run = strcmp(variant, "long") == 0;

	c->variant = long_run ? "long" : "short";
	c->min_time = long_run ? 1.0 : 0.1;
	c->reps = long_run ? 5 : 3;
	c->n_threads = 4;
	memcpy(c->threads, threads, sizeof(threads));
	c->n_keys = 3;
	memcpy(c->keys, keys, sizeof(keys));
}

int main(int argc, char **argv)
{
	const char *variant = getenv("QSBR_BENCH_VARIANT");
	int n = 1, rc;

	/* Take our flag out; Google Benchmark rejects flags it does not know. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--variant") == 0 && i + 1 < argc)
			variant = argv[++i];
		else if (strncmp(argv[i], "--variant=", 10) == 0)
			variant = argv[i] + 10;
		else
			argv[n++] = argv[i];
	}
	argv[n] = NULL;
	if (variant == NULL)
		variant = "short";
	if (strcmp(variant, "short") != 0 && strcmp(variant, "long") != 0) {
		fprintf(stderr, "hashmap-vs-lfht: --variant short|long\n");
		return 2;
	}
	configure(variant);
	gb_context("variant", bench_cfg.variant);
	gb_context("libqsbr", qsbr_version());
	gb_context("lfht", HAVE_LFHT ? "liburcu cds_lfht, urcu-qsbr" : "not found");
#ifndef NDEBUG
	gb_context("warning", "built without NDEBUG: libqsbr's inline path has debug checks");
	fprintf(stderr, "hashmap-vs-lfht: built without NDEBUG; use --buildtype=release for numbers\n");
#endif
	for (int k = 0; k < bench_cfg.n_keys; k++) {
		wl_hashmap_register_qsbr(bench_cfg.keys[k]);
#if HAVE_LFHT
		wl_hashmap_register_urcu(bench_cfg.keys[k]);
#endif
	}
	rc = gb_run(n, argv);
	bench_cache_drop();
	return rc;
}
