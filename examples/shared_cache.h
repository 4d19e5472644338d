/* SPDX-License-Identifier: MIT */
/*
 * The layout two programs share in examples/shared_cache_writer.c and
 * shared_cache_reader.c: a direct-mapped cache of string values in a named
 * shared-memory region, read without locks by any process.
 *
 *   region: [libqsbr's part][struct cache]
 *
 * Everything inside is named by offsets from the region's start, since each
 * process maps it at its own address.  A bucket holds the offset of its
 * current entry (0: none).  The writer replaces an entry by publishing a
 * fresh one and retiring the old one by offset; the old entry's callback
 * (kind ENTRY_KIND, set by both programs) puts it back on the free list once
 * no reader of any process can still hold it.
 */
#ifndef SHARED_CACHE_H
#define SHARED_CACHE_H

#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include <qsbr.h>
#include <qsbr/shared.h>

#define MAX_THREADS 16
#define BUCKETS 256
#define ENTRIES 2048
#define ENTRY_KIND 1

struct entry {
	qsbr_shared_node node;     /* first: the entry's offset is its node's */
	uint64_t key;
	uint64_t version;
	char value[48];
	_Atomic uint64_t next_free; /* the free list's link (an offset) */
	uint64_t life;              /* times the writer took it from the free list */
	uint64_t retired_life;      /* the life being retired */
	_Atomic uint64_t freed_life; /* the last life put back on the free list */
};

struct cache {
	_Atomic uint64_t bucket[BUCKETS];
	_Atomic uint64_t free_top;  /* the free list (free_push below) */
	_Atomic uint64_t writer_done;
	struct entry entries[ENTRIES];
};

static inline size_t lib_part(void)
{
	return qsbr_shared_size(MAX_THREADS);
}

static inline size_t region_bytes(void)
{
	return lib_part() + sizeof(struct cache);
}

/* The region called name (shm_open), mapped here; flags: O_CREAT | O_EXCL
 * to make it, 0 to open it.  NULL after a message on failure. */
static inline void *region_map(const char *name, int flags)
{
	int fd = shm_open(name, O_RDWR | flags, 0600);
	void *mem;

	if (fd < 0 || ((flags & O_CREAT) && ftruncate(fd, (off_t)region_bytes()) != 0)) {
		perror(name);
		return NULL;
	}
	mem = mmap(NULL, region_bytes(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return NULL;
	}
	return mem;
}

static inline struct cache *cache_of(qsbr_domain *d)
{
	return (struct cache *)(void *)((char *)qsbr_shared_base(d, NULL) + lib_part());
}

static inline struct entry *entry_at(qsbr_domain *d, uint64_t off)
{
	return (struct entry *)(void *)((char *)qsbr_shared_base(d, NULL) + off);
}

static inline uint64_t entry_off(qsbr_domain *d, const struct entry *e)
{
	return (uint64_t)((const char *)e - (const char *)qsbr_shared_base(d, NULL));
}

/* The free list is a Treiber stack whose top word holds the entry's offset
 * (below 2^32: the region is small) and a count of pushes above it, so a
 * pop's CAS fails if the top was popped and pushed again meanwhile (ABA). */
static inline void free_push(qsbr_domain *d, struct entry *e)
{
	struct cache *c = cache_of(d);
	uint64_t top = atomic_load_explicit(&c->free_top, memory_order_relaxed), next;

	do {
		atomic_store_explicit(&e->next_free, top & 0xffffffffu, memory_order_relaxed);
		next = ((top >> 32) + 1) << 32 | entry_off(d, e);
	} while (!atomic_compare_exchange_weak_explicit(&c->free_top, &top, next, memory_order_release,
							memory_order_relaxed));
}

static inline struct entry *free_pop(qsbr_domain *d)
{
	struct cache *c = cache_of(d);
	uint64_t top = atomic_load_explicit(&c->free_top, memory_order_acquire), next;

	do {
		if ((top & 0xffffffffu) == 0)
			return NULL;
		next = (top & ~UINT64_C(0xffffffff)) |
		       atomic_load_explicit(&entry_at(d, top & 0xffffffffu)->next_free, memory_order_relaxed);
	} while (!atomic_compare_exchange_weak_explicit(&c->free_top, &top, next, memory_order_acquire,
							memory_order_acquire));
	return entry_at(d, top & 0xffffffffu);
}

/* The callback of ENTRY_KIND, in whichever process reclaims the entry.  A
 * run flagged QSBR_SHARED_RESUMED follows the death of a process inside or
 * just after this function: the entry may have been put back already, and
 * even taken again by the writer.  freed_life says which life was put back:
 * if it is the retired one, there is nothing to do.  The claim comes before
 * the push, so a death between them leaks the entry (one per such death)
 * instead of pushing it twice. */
static void entry_reclaim(qsbr_domain *d, uint64_t off, unsigned flags, void *arg)
{
	struct entry *e = entry_at(d, off);
	uint64_t life = e->retired_life, was = atomic_load(&e->freed_life);

	(void)flags;
	(void)arg;
	if (was != life && atomic_compare_exchange_strong(&e->freed_life, &was, life))
		free_push(d, e);
}

#endif /* SHARED_CACHE_H */
