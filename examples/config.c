/* SPDX-License-Identifier: MIT */
/*
 * A configuration read by many threads and replaced by one, RCU style.
 *
 * Readers load the current pointer and use the configuration with no lock
 * and no reference count; after each use they report a quiescent state.  The
 * writer publishes a new configuration with one atomic exchange and retires
 * the old one: libqsbr frees it once every reader has passed a quiescent
 * state, so no reader can still be using it.
 *
 *   cc -std=c11 -pthread config.c $(pkg-config --cflags --libs qsbr)
 */
#define _POSIX_C_SOURCE 200809L  /* nanosleep */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <qsbr.h>

#define READERS 4
#define UPDATES 1000

struct config {
	qsbr_node node;         /* the retire header: owned by libqsbr once retired */
	unsigned version;
	unsigned timeout_ms;    /* always version * 10: readers check it */
	char name[32];
};

static qsbr_domain *domain;
static struct config *_Atomic current;  /* the protected pointer */
static atomic_bool done;

static void config_free(qsbr_node *n)
{
	free((char *)n - offsetof(struct config, node));
}

static struct config *config_new(unsigned version)
{
	struct config *c = malloc(sizeof(*c));

	if (c == NULL)
		abort();
	c->version = version;
	c->timeout_ms = version * 10;
	snprintf(c->name, sizeof(c->name), "config-%u", version);
	return c;
}

static void *reader(void *arg)
{
	unsigned long *reads = arg;
	unsigned last = 0;
	char expect[32];
	qsbr_thread *t = qsbr_register(domain);  /* online from here */

	if (t == NULL)
		abort();
	while (!atomic_load_explicit(&done, memory_order_relaxed)) {
		/* Acquire pairs with the writer's exchange: the fields are
		 * initialised. */
		struct config *c = atomic_load_explicit(&current, memory_order_acquire);

		/* c stays valid until our next quiescent state, however often
		 * the writer replaces it meanwhile. */
		snprintf(expect, sizeof(expect), "config-%u", c->version);
		if (c->timeout_ms != c->version * 10 || strcmp(c->name, expect) != 0 ||
		    c->version < last) {
			fprintf(stderr, "reader saw a torn or stale configuration\n");
			abort();
		}
		last = c->version;
		(*reads)++;

		qsbr_quiescent(t);  /* c is not used past this line */
	}
	qsbr_unregister(t);
	return NULL;
}

int main(void)
{
	pthread_t th[READERS];
	unsigned long reads[READERS] = {0}, total = 0;
	struct timespec pause = {0, 100 * 1000};  /* 100 us between updates */
	qsbr_stats st;

	domain = qsbr_domain_new(NULL);
	if (domain == NULL)
		return 1;
	atomic_store(&current, config_new(0));
	for (int i = 0; i < READERS; i++)
		pthread_create(&th[i], NULL, reader, &reads[i]);

	/* The writer registers too: it retires, so it needs a handle. */
	qsbr_thread *w = qsbr_register(domain);
	if (w == NULL)
		return 1;
	for (unsigned v = 1; v <= UPDATES; v++) {
		/* Release publishes the new fields; the old configuration is
		 * unlinked once the exchange returns it. */
		struct config *old = atomic_exchange_explicit(&current, config_new(v),
							      memory_order_acq_rel);

		qsbr_retire_node(w, &old->node, config_free);  /* freed once safe */
		qsbr_quiescent(w);  /* the writer holds no reference either */
		nanosleep(&pause, NULL);
	}

	atomic_store_explicit(&done, true, memory_order_relaxed);
	for (int i = 0; i < READERS; i++) {
		pthread_join(th[i], NULL);
		total += reads[i];
	}
	qsbr_barrier(w);  /* waits until every old configuration is freed */
	qsbr_stats_get(domain, &st);
	printf("%lu reads by %d readers, %u updates; %llu configurations retired, "
	       "%llu freed\n", total, READERS, UPDATES, (unsigned long long)st.retired,
	       (unsigned long long)st.freed);
	qsbr_unregister(w);
	free(atomic_load(&current));
	if (qsbr_domain_delete(domain) != 0 || st.freed != UPDATES)
		return 1;
	return 0;
}
