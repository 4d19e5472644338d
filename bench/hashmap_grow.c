/* SPDX-License-Identifier: MIT */
/*
 * hashmap-grow: threads adding distinct keys together to an empty hash map
 * until it holds --keys of them (4M by default, 2 threads): libqsbr's
 * intrusive map, cds_lfht and ck_hs as in hashmap-vs-lfht (wl_hashmap.c,
 * a malloc'd user object per key).  One map per process, so that its peak
 * resident memory is the map's: prints the seconds, the entries counted
 * after, and the growth of the peak resident set (maps, objects and
 * allocator overhead together) in MiB and in bytes per key.
 *
 * Usage: hashmap-grow --map qsbr|lfht|ck_hs [--keys N] [--threads T]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

double wl_hashmap_grow_qsbr(uint64_t keys, unsigned threads, uint64_t *entries);
#if HAVE_LFHT
double wl_hashmap_grow_urcu(uint64_t keys, unsigned threads, uint64_t *entries);
#endif
#if HAVE_CK
double wl_hashmap_grow_ck(uint64_t keys, unsigned threads, uint64_t *entries);
#endif

static long peak_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

int main(int argc, char **argv)
{
	const char *name = "qsbr";
	double (*grow)(uint64_t, unsigned, uint64_t *) = NULL;
	uint64_t keys = UINT64_C(1) << 22, entries = 0;
	unsigned threads = 2;
	long before;
	double s;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--map") == 0)
			name = argv[i + 1];
		else if (strcmp(argv[i], "--keys") == 0)
			keys = strtoull(argv[i + 1], NULL, 0);
		else if (strcmp(argv[i], "--threads") == 0)
			threads = (unsigned)strtoul(argv[i + 1], NULL, 0);
	}
	if (strcmp(name, "qsbr") == 0)
		grow = wl_hashmap_grow_qsbr;
#if HAVE_LFHT
	else if (strcmp(name, "lfht") == 0)
		grow = wl_hashmap_grow_urcu;
#endif
#if HAVE_CK
	else if (strcmp(name, "ck_hs") == 0)
		grow = wl_hashmap_grow_ck;
#endif
	if (grow == NULL || (argc - 1) % 2 != 0 || keys == 0 || threads < 1 || threads > 64) {
		fprintf(stderr, "usage: hashmap-grow --map qsbr|lfht|ck_hs [--keys N] [--threads T]"
				" (lfht, ck_hs: when found at setup)\n");
		return 2;
	}
	before = peak_kib();
	s = grow(keys, threads, &entries);
	printf("%s: keys=%llu threads=%u seconds=%.3f entries=%llu peak_rss_growth_mib=%.1f"
	       " bytes_per_key=%.1f\n", name, (unsigned long long)keys, threads, s,
	       (unsigned long long)entries, (double)(peak_kib() - before) / 1024.0,
	       (double)(peak_kib() - before) * 1024.0 / (double)keys);
	return entries == keys ? 0 : 1;
}
