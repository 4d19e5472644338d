/* SPDX-License-Identifier: MIT */
/*
 * hashmap-vs-lfht: libqsbr's hash map (qsbr/hashmap.h, intrusive) against
 * liburcu's cds_lfht (QSBR flavour) and ck_hs (with ck_epoch), workload
 * wl_hashmap.c, through the harness of
 * the reclaim benchmark (harness.h, gbench.h): mixes 90/5/5 and 50/25/25
 * lookup/insert/remove, key ranges 1K, 64K and 1M, 1 to 4 threads, the
 * median of the repetitions.
 *
 * Usage: hashmap-vs-lfht [--variant short|long] [--min-time S] [--reps N]
 *                        [--benchmark_* flags]
 *   short (default, or QSBR_BENCH_VARIANT=short): about a minute on 2 cores.
 *   long: the numbers to publish.
 *   --min-time, --reps: override the variant's seconds per repetition and
 *   repetitions.
 */
#include "harness.h"

void wl_hashmap_register_qsbr(int64_t keys);
#if HAVE_LFHT
void wl_hashmap_register_urcu(int64_t keys);
#endif
#if HAVE_CK
void wl_hashmap_register_ck(int64_t keys);
#endif

int main(int argc, char **argv)
{
	int n, rc;

	n = bench_variant_args(argc, argv, "hashmap-vs-lfht");
	if (n < 0)
		return 2;
	bench_context("hashmap-vs-lfht");
	gb_context("lfht", HAVE_LFHT ? "liburcu cds_lfht, urcu-qsbr" : "not found");
	gb_context("ck_hs", HAVE_CK ? "ck_hs SPMC, writers under a mutex, ck_epoch" : "not found");
	for (int k = 0; k < bench_cfg.n_keys; k++) {
		wl_hashmap_register_qsbr(bench_cfg.keys[k]);
#if HAVE_LFHT
		wl_hashmap_register_urcu(bench_cfg.keys[k]);
#endif
#if HAVE_CK
		wl_hashmap_register_ck(bench_cfg.keys[k]);
#endif
	}
	rc = gb_run(n, argv);
	bench_cache_drop();
	return rc;
}
