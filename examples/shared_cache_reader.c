/* SPDX-License-Identifier: MIT */
/*
 * The reader of examples/shared_cache_writer.c: a separate program that
 * maps the writer's named region (at an address of its own), registers a
 * thread in the shared domain and looks keys up without locks, reporting a
 * quiescent state between lookups.  An entry it holds is never reused under
 * it: the writer's retires wait for this process's quiescent states too.
 *
 *   shared_cache_reader REGION-NAME
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "shared_cache.h"

int main(int argc, char **argv)
{
	size_t size = region_bytes();
	unsigned long lookups = 0, hits = 0, wrong = 0;
	qsbr_domain *d;
	qsbr_thread *t;
	struct cache *c;
	void *mem;

	if (argc != 2) {
		fprintf(stderr, "usage: shared_cache_reader REGION-NAME\n");
		return 2;
	}
	mem = region_map(argv[1], 0);
	if (mem == NULL)
		return 1;
	d = qsbr_domain_attach_shared(mem, size, NULL);
	if (d == NULL) {
		perror("qsbr_domain_attach_shared");
		return 1;
	}
	/* Orphans (the writer's retires after it left) may be reclaimed here. */
	qsbr_shared_kind(d, ENTRY_KIND, entry_reclaim, NULL);
	c = cache_of(d);
	t = qsbr_register(d);
	do { /* one pass at least, however fast the writer */
		for (uint64_t key = lookups % 100000, k = 0; k < 256; k++, key = (key + 7919) % 100000) {
			/* Acquire pairs with the writer's exchange. */
			uint64_t off = atomic_load_explicit(&c->bucket[key % BUCKETS], memory_order_acquire);
			char expect[48];

			lookups++;
			if (off == 0)
				continue;
			hits++;
			{
				struct entry *e = entry_at(d, off);

				/* The entry stays as published until our next
				 * quiescent state, whatever the writer does. */
				snprintf(expect, sizeof(expect), "key %llu version %llu",
					 (unsigned long long)e->key, (unsigned long long)e->version);
				if (strcmp(expect, e->value) != 0 || e->key % BUCKETS != key % BUCKETS)
					wrong++;
			}
		}
		qsbr_quiescent(t);
	} while (!atomic_load(&c->writer_done));
	qsbr_reclaim(t); /* the writer's last retires, now orphans */
	qsbr_unregister(t);
	qsbr_domain_delete(d);
	munmap(mem, size);
	printf("shared_cache_reader: %lu lookups, %lu hits, %lu torn\n", lookups, hits, wrong);
	return wrong == 0 ? 0 : 1;
}
