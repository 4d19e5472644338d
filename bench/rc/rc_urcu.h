/* SPDX-License-Identifier: MIT */
/*
 * rc_urcu.h: liburcu's QSBR flavour, in its two reclamation styles.
 *
 *   urcu        (RC_BACKEND_URCU)        call_rcu with an embedded rcu_head;
 *                                        callbacks run in liburcu's default
 *                                        worker thread, as its docs say
 *                                        suffices in most cases.
 *   urcu-defer  (RC_BACKEND_URCU_DEFER)  defer_rcu(free, p): a per-thread
 *                                        queue of 4096 entries; the caller
 *                                        waits for a grace period itself when
 *                                        it fills, or liburcu's defer thread
 *                                        empties it (it wakes every 100 ms).
 *
 * _LGPL_SOURCE inlines rcu_quiescent_state and friends, as liburcu
 * recommends for speed (its fast paths are written to be inlinable).  Every
 * thread calls rcu_register_thread, reports rcu_quiescent_state after each
 * operation and wraps it in rcu_read_lock/unlock (no-ops in this flavour).
 * The pointer form of the call_rcu style allocates a small wrapper, as a
 * caller without an embedded rcu_head must.
 *
 * defer_rcu and rcu_defer_(un)register_thread take a mutex that liburcu's
 * defer thread holds while it waits for a grace period.  A QSBR thread must
 * not block while online (the grace period would wait for it): called
 * naively, two threads deadlock within seconds.  So a thread registers for
 * defer_rcu before it registers as a reader, and every RC_DEFER_FLUSH calls
 * empties its own queue while offline (rcu_defer_barrier_thread), before
 * defer_rcu would do it online.  And liburcu 0.13 asserts when a thread
 * registers for defer_rcu a second time after a rcu_defer_barrier (it
 * leaves the queue's last_head set), so a thread stays registered for
 * defer_rcu until it exits (rc_state.c); rc_thread_fini only empties its
 * queue.
 */
#define _LGPL_SOURCE
#include <urcu-qsbr.h>

#if defined(RC_BACKEND_URCU_DEFER)
#define RC_NAME "urcu-defer"
#define RC_GRACE 0 /* same grace periods as "urcu": measured there */
#else
#define RC_NAME "urcu"
#define RC_GRACE 1
#endif
#define RC_MULTI 1

#if defined(RC_BACKEND_URCU_DEFER)
typedef struct {
	void *unused[2];
} rc_head;
#else
typedef struct rcu_head rc_head;
#endif
typedef struct {
	int unused;
} rc_domain;
typedef struct {
	unsigned calls; /* defer_rcu calls since the thread's queue was emptied */
} rc_thread;

/* Below the 4096-entry queue, less the 2 entries a callback change takes. */
#define RC_DEFER_FLUSH 4000

#if defined(RC_BACKEND_URCU_DEFER)
/* Registers the calling thread for defer_rcu once for its lifetime. */
void RC_SYM(rc_defer_register)(void);
#endif

/* liburcu has one domain per process. */
static inline rc_domain *rc_domain_new(void)
{
	static rc_domain d;

	return &d;
}

static inline void rc_domain_delete(rc_domain *d) { (void)d; }

static inline void rc_thread_init(rc_thread *t, rc_domain *d)
{
	(void)d;
	t->calls = 0;
#if defined(RC_BACKEND_URCU_DEFER)
	RC_SYM(rc_defer_register)(); /* may block: not yet a reader */
#endif
	rcu_register_thread();
}

static inline void rc_thread_fini(rc_thread *t)
{
	(void)t;
#if defined(RC_BACKEND_URCU_DEFER)
	rcu_thread_offline();
	rcu_defer_barrier_thread(); /* may block: runs the thread's queue */
	rcu_thread_online();
#endif
	rcu_unregister_thread();
}

static inline void rc_read_begin(rc_thread *t) { (void)t; rcu_read_lock(); }
static inline void rc_read_end(rc_thread *t) { (void)t; rcu_read_unlock(); }
static inline void rc_quiescent(rc_thread *t) { (void)t; rcu_quiescent_state(); }

#if defined(RC_BACKEND_URCU_DEFER)
static inline void rc_retire_ptr(rc_thread *t, void *p)
{
	if (BENCH_UNLIKELY(++t->calls == RC_DEFER_FLUSH)) {
		t->calls = 0;
		rcu_thread_offline();
		rcu_defer_barrier_thread(); /* waits for a grace period, offline */
		rcu_thread_online();
	}
	bench_count_retired();
	defer_rcu(bench_obj_free, p);
}

static inline void rc_retire(rc_thread *t, rc_head *h)
{
	rc_retire_ptr(t, h);
}
#else
static inline void rc__free_head(struct rcu_head *h)
{
	bench_obj_free(h);
}

struct rc__wrap {
	struct rcu_head head;
	void *p;
};

static inline void rc__free_wrap(struct rcu_head *h)
{
	struct rc__wrap *w = (struct rc__wrap *)h;

	bench_obj_free(w->p);
	free(w);
}

static inline void rc_retire(rc_thread *t, rc_head *h)
{
	(void)t;
	bench_count_retired();
	call_rcu(h, rc__free_head);
}

static inline void rc_retire_ptr(rc_thread *t, void *p)
{
	struct rc__wrap *w = malloc(sizeof(*w));

	(void)t;
	if (w == NULL)
		abort();
	w->p = p;
	bench_count_retired();
	call_rcu(&w->head, rc__free_wrap);
}
#endif

static inline void rc_offline(rc_thread *t) { (void)t; rcu_thread_offline(); }
static inline void rc_online(rc_thread *t) { (void)t; rcu_thread_online(); }
#define RC_SYNC_CALL "synchronize_rcu()"
static inline void rc_synchronize(rc_thread *t) { (void)t; synchronize_rcu(); }

static inline void rc_drain(rc_domain *d)
{
	(void)d;
#if defined(RC_BACKEND_URCU_DEFER)
	rcu_defer_barrier();
#else
	rcu_barrier();
#endif
}
