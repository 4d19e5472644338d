/* SPDX-License-Identifier: MIT */
/*
 * Stress test of qsbr/set.h; the checks are described in stress_keyed.h.
 *
 * Usage: stress_set [--threads N] [--seconds S] [--seed X] [--keys K]
 */
#include <qsbr/set.h>

#include "stress_keyed.h"

static void *create(qsbr_domain *d, const char *variant)
{
	(void)variant;
	return qsbr_set_new(d);
}

static int insert(void *s, qsbr_thread *t, uint64_t k, void *v)
{
	return qsbr_set_insert(s, t, k, v);
}

static int remove_(void *s, qsbr_thread *t, uint64_t k, void **v)
{
	return qsbr_set_remove(s, t, k, v);
}

static int lookup(void *s, qsbr_thread *t, uint64_t k, void **v)
{
	return qsbr_set_lookup(s, t, k, v);
}

static int seek(void *s, qsbr_thread *t, uint64_t k, uint64_t *found, void **v)
{
	return qsbr_set_seek(s, t, k, found, v);
}

/* The walk by seek returns exactly the keys present, in increasing order. */
static void finish(void *s, qsbr_thread *t, uint64_t present, bool filled, char *out, size_t len)
{
	uint64_t k = 0, n = 0, found;
	void *v;

	(void)filled;
	while (qsbr_set_seek(s, t, k, &found, &v) == 0) {
		CHECK(found >= k, "walk: seek from %" PRIu64 " went back to %" PRIu64, k, found);
		CHECK(qsbr_set_lookup(s, t, found, NULL) == 0, "walk found %" PRIu64
		      ", lookup does not", found);
		n++;
		if (found == UINT64_MAX)
			break;
		k = found + 1;
	}
	CHECK(n == present, "walk found %" PRIu64 " keys, lookups %" PRIu64, n, present);
	snprintf(out, len, " walked=%" PRIu64, n);
}

static void destroy(void *s)
{
	if (qsbr_set_delete(s, NULL, NULL) != 0)
		stress_fail("qsbr_set_delete failed");
}

static const struct keyed_ops set_ops = {
	"ds-stress-set", create, insert, remove_, lookup, seek, finish, destroy,
};

int main(int argc, char **argv)
{
	return keyed_main(&set_ops, argc, argv);
}
