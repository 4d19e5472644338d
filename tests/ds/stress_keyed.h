/* SPDX-License-Identifier: MIT */
/*
 * stress_keyed.h: the stress test of the keyed structures (the ordered set and
 * the hash map), written once against struct keyed_ops.
 *
 * Keys 0..K-1.  The upper half is owned: key K/2 + j belongs to thread
 * j mod N, which alone inserts and removes it and so knows at every moment
 * whether it is present; the others only look it up.  The lower half is
 * shared: every thread inserts, removes and looks it up, and counts its
 * successful inserts and removes per key.  Each value is a function of its
 * key.  Every thread first inserts all its own keys (the hash map grows from
 * its 8 buckets while the others already update and read), then runs a random
 * mix: 30% insert, 30% remove, 30% lookup, 10% seek (the set; a lookup for
 * the hash map).  Checked during the run:
 *   - an owner's insert, remove and lookup of its own key return exactly what
 *     its own record says: every inserted key is found until it is removed;
 *   - whatever a call returns for any key carries that key's value;
 *   - a seek from k returns a key >= k and no own present key lies between;
 * and at the end, by main:
 *   - each own key is present iff its owner's record says so;
 *   - each shared key's inserts less removes is 0 or 1, and it is present
 *     iff 1;
 *   - the hash map's size equals the number of keys present, and the map
 *     grew; the set's walk by seek returns exactly the keys present, in order.
 */
#ifndef QSBR_TEST_STRESS_KEYED_H
#define QSBR_TEST_STRESS_KEYED_H

#include "stress_common.h"

struct keyed_ops {
	const char *name;
	void *(*create)(qsbr_domain *d, const char *variant);
	int (*insert)(void *s, qsbr_thread *t, uint64_t k, void *v);
	int (*remove)(void *s, qsbr_thread *t, uint64_t k, void **v);
	int (*lookup)(void *s, qsbr_thread *t, uint64_t k, void **v);
	/* NULL for the hash map */
	int (*seek)(void *s, qsbr_thread *t, uint64_t k, uint64_t *found, void **v);
	/* After the run: appends facts to summary; false when a check failed. */
	void (*finish)(void *s, qsbr_thread *t, uint64_t present, bool grew_expected,
		       char *summary, size_t len);
	void (*destroy)(void *s);
};

struct kworker {
	struct stress_thread st;
	unsigned id;
	bool *mine;          /* [K]: own keys present (by this thread's record) */
	uint32_t *ins, *rem; /* [K/2]: successful inserts, removes of shared keys */
	bool filled;         /* inserted all its own keys */
	uint64_t lookups, hits, seeks;
};

static const struct keyed_ops *kops;
static void *kset;
static qsbr_domain *kdom;
static uint64_t nkeys;
static unsigned nthreads;

static void *kvalue(uint64_t key)
{
	return (void *)(uintptr_t)(key * 2 + 1);
}

static unsigned owner_of(uint64_t key)
{
	return (unsigned)((key - nkeys / 2) % nthreads);
}

static void check_value(uint64_t key, void *v, const char *what)
{
	CHECK(v == kvalue(key), "%s of key %" PRIu64 " gave value %p", what, key, v);
}

/*
 * Operation op on key: 0 insert, 1 remove, 2 lookup.  own: key is this
 * thread's, and its record says what each call returns; else a call may
 * find key present or not, and on a shared key the successful inserts and
 * removes are counted.
 */
static void key_op(struct kworker *w, uint64_t key, unsigned op, bool own)
{
	static const char *const what[3] = { "insert", "remove", "lookup" };
	static const int if_present[3] = { EEXIST, 0, 0 }, if_absent[3] = { 0, ENOENT, ENOENT };
	qsbr_thread *t = w->st.t;
	void *v = NULL;
	int rc;

	if (op == 0)
		rc = kops->insert(kset, t, key, kvalue(key));
	else if (op == 1)
		rc = kops->remove(kset, t, key, &v);
	else
		rc = kops->lookup(kset, t, key, &v);
	if (own)
		CHECK(rc == (w->mine[key] ? if_present[op] : if_absent[op]), "own %s of key %" PRIu64
		      " returned %d, key %s", what[op], key, rc, w->mine[key] ? "present" : "absent");
	else
		CHECK(rc == if_present[op] || rc == if_absent[op], "%s returned %d", what[op], rc);
	if (op != 0 && rc == 0)
		check_value(key, v, what[op]);
	if (op == 2) {
		w->lookups++;
		w->hits += rc == 0;
	} else if (own) {
		w->mine[key] = op == 0;
	} else if (rc == 0) {
		(op == 0 ? w->ins : w->rem)[key]++;
	}
}

static void seek_op(struct kworker *w, uint64_t key)
{
	uint64_t found = UINT64_MAX;
	void *v = NULL;
	int rc = kops->seek(kset, w->st.t, key, &found, &v);
	uint64_t end = rc == 0 ? found : nkeys;

	w->seeks++;
	CHECK(rc == 0 || rc == ENOENT, "seek returned %d", rc);
	if (rc == 0) {
		CHECK(found >= key && found < nkeys, "seek from %" PRIu64 " found %" PRIu64, key,
		      found);
		check_value(found, v, "seek");
	}
	/* None of our own keys present in [key, end). */
	for (uint64_t k = key < nkeys / 2 ? nkeys / 2 : key; k < end && k < nkeys; k++)
		if (owner_of(k) == w->id && w->mine[k])
			stress_fail("seek from %" PRIu64 " gave %s%" PRIu64 ", own key %" PRIu64
				    " is present", key, rc == 0 ? "" : "nothing, end ", end, k);
}

static void *kworker_main(void *arg)
{
	struct kworker *w = arg;

	stress_thread_init(&w->st, kdom, w->st.rng);
	for (uint64_t k = nkeys / 2 + w->id; k < nkeys && stress_running(); k += nthreads) {
		key_op(w, k, 0, true);
		stress_after_op(&w->st);
	}
	w->filled = stress_running();
	while (stress_running()) {
		uint64_t r = stress_rand(&w->st.rng);
		uint64_t key = (r >> 32) % nkeys;
		unsigned pct = (unsigned)((r & 0xffff) % 100);
		unsigned op = pct < 30 ? 0 : pct < 60 ? 1 : 2;

		if (pct >= 90 && kops->seek != NULL)
			seek_op(w, key);
		else if (key < nkeys / 2)
			key_op(w, key, op, false);
		else if (owner_of(key) == w->id)
			key_op(w, key, op, true);
		else
			key_op(w, key, 2, false); /* another's key: look only */
		stress_after_op(&w->st);
	}
	stress_thread_fini(&w->st);
	return NULL;
}

static int keyed_main(const struct keyed_ops *ops, int argc, char **argv)
{
	struct stress_cfg c = { ops->name, 4, 2.0, 0x5eed };
	static struct kworker ws[MAX_THREADS];
	struct stress_thread st;
	const char *variant = "";
	uint64_t present = 0, ops_done = 0, lookups = 0, hits = 0, reregs = 0;
	bool all_filled = true;
	char summary[300], more[200] = "";

	nkeys = 1024;
	for (int i = 1; i < argc; i++) {
		int rc = stress_common_arg(&c, argc, argv, &i);

		if (rc == -1 && strcmp(argv[i], "--keys") == 0 && i + 1 < argc) {
			nkeys = strtoull(argv[++i], NULL, 0);
			rc = nkeys >= 2 && nkeys <= (UINT64_C(1) << 24);
		} else if (rc == -1 && strcmp(argv[i], "--hash") == 0 && i + 1 < argc) {
			variant = argv[++i];
			rc = 1;
		}
		if (rc != 1) {
			fprintf(stderr, "usage: %s [--threads N] [--seconds S] [--seed X] [--keys K]%s\n",
				ops->name, ops->seek ? "" : " [--hash good|bad]");
			return 2;
		}
	}
	kops = ops;
	nthreads = c.threads;
	kdom = qsbr_domain_new(NULL);
	kset = kdom != NULL ? ops->create(kdom, variant) : NULL;
	if (kset == NULL) {
		perror("setup");
		return 2;
	}
	for (unsigned i = 0; i < c.threads; i++) {
		ws[i].id = i;
		ws[i].st.rng = c.seed * 0x9e3779b97f4a7c15u + i + 1;
		ws[i].mine = calloc(nkeys, sizeof(bool));
		ws[i].ins = calloc(nkeys / 2, sizeof(uint32_t));
		ws[i].rem = calloc(nkeys / 2, sizeof(uint32_t));
		if (ws[i].mine == NULL || ws[i].ins == NULL || ws[i].rem == NULL) {
			perror("calloc");
			return 2;
		}
	}
	stress_run(&c, kworker_main, ws, sizeof(ws[0]));

	stress_thread_init(&st, kdom, 1);
	for (uint64_t k = 0; k < nkeys; k++) {
		void *v = NULL;
		bool in = ops->lookup(kset, st.t, k, &v) == 0;

		present += in;
		if (in)
			check_value(k, v, "final lookup");
		if (k >= nkeys / 2) {
			bool want = ws[owner_of(k)].mine[k];

			CHECK(in == want, "own key %" PRIu64 " of thread %u is %s, its owner says %s",
			      k, owner_of(k), in ? "present" : "absent", want ? "present" : "absent");
		} else {
			int64_t net = 0;

			for (unsigned i = 0; i < c.threads; i++)
				net += (int64_t)ws[i].ins[k] - (int64_t)ws[i].rem[k];
			CHECK(net == 0 || net == 1, "shared key %" PRIu64 ": %" PRId64
			      " more inserts than removes", k, net);
			CHECK(in == (net == 1), "shared key %" PRIu64 " is %s after %" PRId64
			      " net inserts", k, in ? "present" : "absent", net);
		}
		if (k % 256 == 0)
			qsbr_quiescent(st.t);
	}
	for (unsigned i = 0; i < c.threads; i++) {
		all_filled &= ws[i].filled;
		ops_done += ws[i].st.ops;
		lookups += ws[i].lookups;
		hits += ws[i].hits;
		reregs += ws[i].st.reregs;
	}
	ops->finish(kset, st.t, present, all_filled, more, sizeof(more));
	stress_thread_fini(&st);
	ops->destroy(kset);
	if (qsbr_domain_delete(kdom) != 0)
		stress_fail("qsbr_domain_delete failed");
	for (unsigned i = 0; i < c.threads; i++) {
		free(ws[i].mine);
		free(ws[i].ins);
		free(ws[i].rem);
	}
	snprintf(summary, sizeof(summary),
		 "keys=%" PRIu64 "%s%s ops=%" PRIu64 " lookups=%" PRIu64 " (%" PRIu64 " hits) present=%"
		 PRIu64 " re-registrations=%" PRIu64 "%s", nkeys, variant[0] ? " hash=" : "", variant,
		 ops_done, lookups, hits, present, reregs, more);
	return stress_finish(&c, summary);
}

#endif /* QSBR_TEST_STRESS_KEYED_H */
