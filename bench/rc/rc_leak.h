/* SPDX-License-Identifier: MIT */
/*
 * rc_leak.h: no reclamation.  A retired object is chained on a thread-local
 * list through its header (one store, no shared write) and freed only by
 * rc_drain, after the run.  The upper bound of throughput with reclamation
 * switched off, and the lower bound of memory efficiency: everything retired
 * stays pending.  Not a ceiling for a long run: memory only grows colder.
 */
#include <pthread.h>

#define RC_NAME "leak"
#define RC_MULTI 1
#define RC_GRACE 0

typedef struct rc_head {
	struct rc_head *next;
	void *unused;
} rc_head;
typedef struct {
	int unused;
} rc_domain;
typedef struct {
	rc_head *list;
} rc_thread;

extern pthread_mutex_t RC_SYM(rc_leak_lock);
extern rc_head *RC_SYM(rc_leak_all);

static inline rc_domain *rc_domain_new(void)
{
	static rc_domain d;

	return &d;
}

static inline void rc_domain_delete(rc_domain *d) { (void)d; }

static inline void rc_thread_init(rc_thread *t, rc_domain *d)
{
	(void)d;
	t->list = NULL;
}

/* Hands the thread's list to the global one. */
static inline void rc_thread_fini(rc_thread *t)
{
	rc_head *h = t->list;

	if (h == NULL)
		return;
	while (h->next != NULL)
		h = h->next;
	pthread_mutex_lock(&RC_SYM(rc_leak_lock));
	h->next = RC_SYM(rc_leak_all);
	RC_SYM(rc_leak_all) = t->list;
	pthread_mutex_unlock(&RC_SYM(rc_leak_lock));
	t->list = NULL;
}

static inline void rc_read_begin(rc_thread *t) { (void)t; }
static inline void rc_read_end(rc_thread *t) { (void)t; }
static inline void rc_quiescent(rc_thread *t) { (void)t; }

static inline void rc_retire(rc_thread *t, rc_head *h)
{
	bench_count_retired();
	h->next = t->list;
	t->list = h;
}

/* The benchmark's plain objects are at least 16 bytes: chain through them. */
static inline void rc_retire_ptr(rc_thread *t, void *p)
{
	rc_retire(t, p);
}

static inline void rc_offline(rc_thread *t) { (void)t; }
static inline void rc_online(rc_thread *t) { (void)t; }
static inline void rc_synchronize(rc_thread *t) { (void)t; }

static inline void rc_drain(rc_domain *d)
{
	rc_head *h;

	(void)d;
	pthread_mutex_lock(&RC_SYM(rc_leak_lock));
	h = RC_SYM(rc_leak_all);
	RC_SYM(rc_leak_all) = NULL;
	pthread_mutex_unlock(&RC_SYM(rc_leak_lock));
	while (h != NULL) {
		rc_head *next = h->next;

		bench_obj_free(h);
		h = next;
	}
}
