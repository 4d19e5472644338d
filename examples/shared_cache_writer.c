/* SPDX-License-Identifier: MIT */
/*
 * Two programs sharing a cache in a named shared-memory region: this one
 * creates the region and keeps replacing entries; shared_cache_reader.c
 * (a separate program, started here, which maps the region at an address
 * of its own) reads them without locks.  Replaced entries are retired by
 * offset and reused once no reader of either process can hold them.
 *
 *   shared_cache_writer READER-PATH [ROUNDS]
 *
 *   cc -std=c11 -pthread shared_cache_writer.c -o shared_cache_writer \
 *      $(pkg-config --cflags --libs qsbr)   (-lrt on old C libraries)
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "shared_cache.h"

extern char **environ;

int main(int argc, char **argv)
{
	char name[64];
	size_t size = region_bytes();
	long rounds = argc > 2 ? atol(argv[2]) : 200000;
	qsbr_domain *d;
	qsbr_thread *t;
	struct cache *c;
	void *mem;
	int status;
	pid_t reader;

	if (argc < 2) {
		fprintf(stderr, "usage: shared_cache_writer READER-PATH [ROUNDS]\n");
		return 2;
	}
	/* A named region: any program that knows the name can map it. */
	snprintf(name, sizeof(name), "/qsbr-cache-%ld", (long)getpid());
	mem = region_map(name, O_CREAT | O_EXCL);
	if (mem == NULL)
		return 1;
	d = qsbr_domain_create_shared(mem, size, MAX_THREADS, NULL);
	if (d == NULL) {
		perror("qsbr_domain_create_shared");
		shm_unlink(name);
		return 1;
	}
	qsbr_shared_kind(d, ENTRY_KIND, entry_reclaim, NULL);
	c = cache_of(d);
	for (int i = ENTRIES - 1; i >= 0; i--)
		free_push(d, &c->entries[i]);

	/* The region is ready: start the reader, a program of its own. */
	if (posix_spawn(&reader, argv[1], NULL, NULL, (char *[]){ argv[1], name, NULL }, environ) != 0) {
		perror("posix_spawn");
		shm_unlink(name);
		return 1;
	}

	t = qsbr_register(d);
	/* Wait for the reader to register (two threads in the region), so
	 * that the replacements below run while it reads. */
	for (qsbr_shared_info i; qsbr_shared_info_get(d, &i) == 0 && i.threads < 2;) {
		if (waitpid(reader, &status, WNOHANG) == reader) {
			fprintf(stderr, "shared_cache_writer: the reader exited early\n");
			shm_unlink(name);
			return 1;
		}
		usleep(1000);
	}
	for (long r = 0; r < rounds; r++) {
		uint64_t key = (uint64_t)r * 2654435761u % 100000;
		struct entry *e = free_pop(d);
		uint64_t old;

		if (e == NULL) { /* every entry waits for a grace period */
			qsbr_quiescent(t);
			qsbr_reclaim(t);
			r--;
			continue;
		}
		e->life++;
		e->key = key;
		e->version = (uint64_t)r;
		snprintf(e->value, sizeof(e->value), "key %llu version %ld", (unsigned long long)key, r);
		/* Publish (release: readers see the fields), retire the old one. */
		old = atomic_exchange_explicit(&c->bucket[key % BUCKETS], entry_off(d, e),
					       memory_order_acq_rel);
		if (old != 0) {
			struct entry *o = entry_at(d, old);

			o->retired_life = o->life; /* ours now: nobody can publish it */
			qsbr_shared_retire(t, old, ENTRY_KIND);
		}
		if (r % 64 == 0)
			qsbr_quiescent(t);
	}
	atomic_store(&c->writer_done, 1);
	qsbr_unregister(t); /* what is still waiting goes to the region's orphans */

	/* The name goes whatever the reader did; the mapping stays ours. */
	if (waitpid(reader, &status, 0) != reader || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "shared_cache_writer: the reader failed\n");
		shm_unlink(name);
		return 1;
	}
	shm_unlink(name);
	qsbr_domain_delete(d);
	munmap(mem, size);
	printf("shared_cache_writer: %ld replacements, the reader agreed\n", rounds);
	return 0;
}
