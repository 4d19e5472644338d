/* SPDX-License-Identifier: MIT */
/*
 * Stress test of qsbr/hashmap.h; the checks are described in stress_keyed.h.
 * The map starts with 8 buckets, so it grows during the run while every
 * thread updates and reads it.  --hash bad gives it a hash with 4 values
 * (and an equal function): long runs of entries whose order keys are equal.
 *
 * Usage: stress_hashmap [--threads N] [--seconds S] [--seed X] [--keys K]
 *                       [--hash good|bad]
 */
#include <qsbr/hashmap.h>

#include "stress_keyed.h"

static uint64_t bad_hash(uint64_t key, void *arg)
{
	(void)arg;
	return key & 3;
}

static bool equal(uint64_t a, uint64_t b, void *arg)
{
	(void)arg;
	return a == b;
}

static size_t initial_buckets;

static void *create(qsbr_domain *d, const char *variant)
{
	qsbr_hashmap *m;

	if (strcmp(variant, "bad") == 0)
		m = qsbr_hashmap_new(d, 0, bad_hash, equal, NULL);
	else if (variant[0] == '\0' || strcmp(variant, "good") == 0)
		m = qsbr_hashmap_new(d, 0, NULL, NULL, NULL);
	else
		m = NULL;
	initial_buckets = qsbr_hashmap_buckets(m);
	return m;
}

static int insert(void *s, qsbr_thread *t, uint64_t k, void *v)
{
	return qsbr_hashmap_insert(s, t, k, v);
}

static int remove_(void *s, qsbr_thread *t, uint64_t k, void **v)
{
	return qsbr_hashmap_remove(s, t, k, v);
}

static int lookup(void *s, qsbr_thread *t, uint64_t k, void **v)
{
	return qsbr_hashmap_lookup(s, t, k, v);
}

/* The size matches the keys present, and the map grew once every thread had
 * inserted its own keys (the map holds one entry per bucket at most). */
static void finish(void *s, qsbr_thread *t, uint64_t present, bool filled, char *out, size_t len)
{
	size_t size = qsbr_hashmap_size(s), buckets = qsbr_hashmap_buckets(s);

	(void)t;
	CHECK(size == present, "size %zu, but %" PRIu64 " keys present", size, present);
	if (filled && nkeys >= 1024)
		CHECK(buckets >= 64, "%zu buckets after %" PRIu64 " own keys were inserted", buckets,
		      nkeys / 2);
	snprintf(out, len, " size=%zu buckets=%zu (from %zu) memory=%zu", size, buckets,
		 initial_buckets, qsbr_hashmap_memory(s));
}

static void destroy(void *s)
{
	if (qsbr_hashmap_delete(s, NULL, NULL) != 0)
		stress_fail("qsbr_hashmap_delete failed");
}

static const struct keyed_ops map_ops = {
	"ds-stress-hashmap", create, insert, remove_, lookup, NULL, finish, destroy,
};

int main(int argc, char **argv)
{
	return keyed_main(&map_ops, argc, argv);
}
