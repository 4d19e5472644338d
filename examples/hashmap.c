/* SPDX-License-Identifier: MIT */
/*
 * A session cache on the intrusive hash map: each session object embeds its
 * map node, keys are strings, and a session is freed by one retire once no
 * thread can still be reading it.
 *
 * Worker threads look sessions up by name, refresh them (a new object put
 * in place of the old one with qsbr_hashmap_replace, the old one retired),
 * and expire the ones they find too old with a conditional remove (only if
 * it is still the version they looked at).  A last thread walks the map to
 * count what is left.  Nothing is allocated by the map per entry, and no
 * call can fail for want of memory.
 *
 *   cc -std=c11 -pthread hashmap.c $(pkg-config --cflags --libs qsbr)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qsbr.h>
#include <qsbr/hashmap.h>

#define THREADS 4
#define NAMES 256
#define OPS 20000 /* per thread */

struct session {
	char name[16];
	uint64_t version;
	qsbr_hashmap_node node; /* the map's links and the retire header */
};

static qsbr_domain *domain;
static qsbr_hashmap *sessions;
static atomic_long created, freed;

static struct session *session_of(const qsbr_hashmap_node *n)
{
	return (struct session *)(void *)((char *)(uintptr_t)n - offsetof(struct session, node));
}

/* FNV-1a, then the map's mixer: the map picks buckets from the low bits. */
static uint64_t hash_name(const char *s)
{
	uint64_t h = UINT64_C(1469598103934665603);

	while (*s)
		h = (h ^ (unsigned char)*s++) * UINT64_C(1099511628211);
	return qsbr_hashmap_hash64(h);
}

static bool match_name(const qsbr_hashmap_node *n, const void *key)
{
	return strcmp(session_of(n)->name, key) == 0;
}

/* A conditional match: this name at this version. */
struct name_version {
	const char *name;
	uint64_t version;
};

static bool match_version(const qsbr_hashmap_node *n, const void *key)
{
	const struct name_version *nv = key;

	return match_name(n, nv->name) && session_of(n)->version == nv->version;
}

static struct session *session_new(const char *name, uint64_t version)
{
	struct session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		abort();
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->version = version;
	atomic_fetch_add(&created, 1);
	return s;
}

/* The retire callback: node and object go together. */
static void session_free(qsbr_node *r)
{
	qsbr_hashmap_node *n = (qsbr_hashmap_node *)(void *)((char *)r - offsetof(qsbr_hashmap_node, retire));

	free(session_of(n));
	atomic_fetch_add(&freed, 1);
}

static void *worker(void *arg)
{
	qsbr_thread *t = qsbr_register(domain);
	unsigned seed = (unsigned)(uintptr_t)arg;

	for (int i = 0; i < OPS; i++) {
		char name[16];
		uint64_t h;
		qsbr_hashmap_node *n;

		seed = seed * 1103515245u + 12345u;
		snprintf(name, sizeof(name), "user%u", (seed >> 8) % NAMES);
		h = hash_name(name);
		n = qsbr_hashmap_find(sessions, t, h, match_name, name);
		if (n == NULL) {
			/* Log in: add, unless another thread just did. */
			struct session *s = session_new(name, 1);

			if (qsbr_hashmap_add_unique(sessions, t, h, match_name, name, &s->node) != &s->node) {
				free(s); /* never published */
				atomic_fetch_add(&freed, 1);
			}
		} else if ((seed >> 20) % 4 != 0) {
			/* Refresh: a new version in place of the one found. */
			struct session *s = session_new(name, session_of(n)->version + 1);
			qsbr_hashmap_node *old = qsbr_hashmap_replace(sessions, t, h, match_name, name, &s->node);

			if (old != NULL) {
				qsbr_retire_node(t, &old->retire, session_free);
			} else { /* expired meanwhile */
				free(s);
				atomic_fetch_add(&freed, 1);
			}
		} else {
			/* Expire it, if it is still the version we saw. */
			struct name_version nv = { name, session_of(n)->version };

			n = qsbr_hashmap_remove_match(sessions, t, h, match_version, &nv);
			if (n != NULL)
				qsbr_retire_node(t, &n->retire, session_free);
		}
		qsbr_quiescent(t); /* no session pointer is kept past here */
	}
	qsbr_unregister(t);
	return NULL;
}

static void free_left(qsbr_hashmap_node *n, void *arg)
{
	(void)arg;
	free(session_of(n));
	atomic_fetch_add(&freed, 1);
}

int main(void)
{
	pthread_t th[THREADS];
	qsbr_thread *t;
	long left = 0;

	domain = qsbr_domain_new(NULL);
	sessions = domain != NULL ? qsbr_hashmap_new_intrusive(domain, 0) : NULL;
	if (sessions == NULL || qsbr_hashmap_resize_policy(sessions, 2, 0, 0, true) != 0) {
		perror("setup");
		return 1;
	}
	for (uintptr_t i = 0; i < THREADS; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(i + 1)) != 0)
			return 1;
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);

	/* A walk: each session present throughout is seen exactly once. */
	t = qsbr_register(domain);
	for (qsbr_hashmap_node *n = qsbr_hashmap_first(sessions, t); n != NULL;
	     n = qsbr_hashmap_next(sessions, t, n))
		left++;
	qsbr_unregister(t);

	qsbr_hashmap_delete_nodes(sessions, free_left, NULL);
	qsbr_domain_delete(domain); /* runs the callbacks still pending */
	printf("%ld sessions left, %ld created, %ld freed\n", left, atomic_load(&created),
	       atomic_load(&freed));
	return atomic_load(&created) == atomic_load(&freed) ? 0 : 1;
}
