/* SPDX-License-Identifier: MIT */
/*
 * The layouts docs/abi.md lists as ABI, recorded per major version.  A
 * change here breaks programs built against the old header: it needs a new
 * QSBR_VERSION_MAJOR, a new record below and docs/abi.md updated.  LP64
 * only; other data models skip (77).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <qsbr.h>
#include <qsbr/hashmap.h>
#include <qsbr/pool.h>
#include <qsbr/shared.h>

static int failed;

static void expect(const char *what, size_t got, size_t want)
{
	if (got != want) {
		printf("FAIL %s is %zu, recorded as %zu for major %d (docs/abi.md)\n", what, got,
		       want, QSBR_VERSION_MAJOR);
		failed = 1;
	}
}

#define SIZE(T, n) expect("sizeof(" #T ")", sizeof(T), n)
#define OFF(T, f, n) expect("offsetof(" #T ", " #f ")", offsetof(T, f), n)

int main(void)
{
	char v[32];

	if (sizeof(void *) != 8 || sizeof(size_t) != 8) {
		printf("layouts are recorded for LP64 only\n");
		return 77;
	}
#if QSBR_VERSION_MAJOR == 0
	SIZE(qsbr_node, 16);
	OFF(qsbr_node, next, 0);
	OFF(qsbr_node, fn, 8);

	SIZE(qsbr_options, 176);
	OFF(qsbr_options, deferred_count, 0);
	OFF(qsbr_options, deferred_bytes, 8);
	OFF(qsbr_options, batch_size, 16);
	OFF(qsbr_options, initial_seq, 24);
	OFF(qsbr_options, stall_ms, 32);
	OFF(qsbr_options, background, 36);
	OFF(qsbr_options, on_stall, 40);
	OFF(qsbr_options, stall_arg, 48);
	OFF(qsbr_options, flush_ms, 56);
	OFF(qsbr_options, max_pending, 64);
	OFF(qsbr_options, max_pending_bytes, 72);
	OFF(qsbr_options, on_pressure, 80);
	OFF(qsbr_options, pressure_arg, 88);
	OFF(qsbr_options, alloc, 96);
	OFF(qsbr_options, free, 104);
	OFF(qsbr_options, alloc_arg, 112);
	OFF(qsbr_options, reserved, 120);

	SIZE(qsbr_stats, 136);
	OFF(qsbr_stats, retired, 0);
	OFF(qsbr_stats, freed, 8);
	OFF(qsbr_stats, pending, 16);
	OFF(qsbr_stats, pending_bytes, 24);
	OFF(qsbr_stats, advances, 32);
	OFF(qsbr_stats, scans, 40);
	OFF(qsbr_stats, threads, 48);
	OFF(qsbr_stats, online, 52);
	OFF(qsbr_stats, peak_pending, 56);
	OFF(qsbr_stats, peak_pending_bytes, 64);
	OFF(qsbr_stats, stalls, 72);
	OFF(qsbr_stats, cap_waits, 80);
	OFF(qsbr_stats, handed, 88);
	OFF(qsbr_stats, helper_failures, 96);
	OFF(qsbr_stats, reserved, 104);

	SIZE(qsbr_stall_info, 48);
	OFF(qsbr_stall_info, thread_id, 0);
	OFF(qsbr_stall_info, name, 8);
	OFF(qsbr_stall_info, stalled_ms, 16);
	OFF(qsbr_stall_info, periods, 24);
	OFF(qsbr_stall_info, pending, 32);
	OFF(qsbr_stall_info, pending_bytes, 40);

	SIZE(qsbr_pool_stats, 96);
	OFF(qsbr_pool_stats, allocated, 0);
	OFF(qsbr_pool_stats, cached, 8);
	OFF(qsbr_pool_stats, waiting, 16);
	OFF(qsbr_pool_stats, slabs, 24);
	OFF(qsbr_pool_stats, bytes_held, 32);
	OFF(qsbr_pool_stats, object_size, 40);
	OFF(qsbr_pool_stats, stride, 48);
	OFF(qsbr_pool_stats, thread_cached, 56);
	OFF(qsbr_pool_stats, cache_max, 64);
	OFF(qsbr_pool_stats, thread_reserve, 72);
	OFF(qsbr_pool_stats, reserved, 80);
	SIZE(qsbr_shared_node, 24);
	OFF(qsbr_shared_node, next, 0);
	OFF(qsbr_shared_node, goal, 8);
	OFF(qsbr_shared_node, kind, 16);
	OFF(qsbr_shared_node, state, 20);
	SIZE(qsbr_shared_info, 128);
	OFF(qsbr_shared_info, max_threads, 0);
	OFF(qsbr_shared_info, retired, 24);
	OFF(qsbr_shared_info, resumed, 56);
	OFF(qsbr_shared_info, repairs, 80);
	OFF(qsbr_shared_info, reserved, 88);

	SIZE(qsbr_hashmap_node, 32);
	OFF(qsbr_hashmap_node, link_, 0);
	OFF(qsbr_hashmap_node, order_, 8);
	OFF(qsbr_hashmap_node, retire, 16);

	SIZE(struct qsbr__thread_head, 16);
	OFF(struct qsbr__thread_head, seq, 0);
	OFF(struct qsbr__thread_head, wr_seq, 8);
	SIZE(qsbr_seq, 8);
#else
#error "no layout recorded for this major version: record it above (docs/abi.md)"
#endif

	/* The header's version macros agree with each other and the library. */
	snprintf(v, sizeof(v), "%d.%d.%d", QSBR_VERSION_MAJOR, QSBR_VERSION_MINOR,
		 QSBR_VERSION_PATCH);
	if (strcmp(v, QSBR_VERSION_STRING) != 0 || strcmp(v, qsbr_version()) != 0 ||
	    QSBR_VERSION_NUMBER !=
		    QSBR_VERSION_MAJOR * 10000 + QSBR_VERSION_MINOR * 100 + QSBR_VERSION_PATCH) {
		printf("FAIL version macros %s / %s / library %s disagree\n", v,
		       QSBR_VERSION_STRING, qsbr_version());
		failed = 1;
	}
	if (!failed)
		printf("layouts match the record for major %d\n", QSBR_VERSION_MAJOR);
	return failed;
}
