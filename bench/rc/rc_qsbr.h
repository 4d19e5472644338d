/* SPDX-License-Identifier: MIT */
/*
 * rc_qsbr.h: libqsbr behind the rc.h interface.
 *
 *   qsbr      (RC_BACKEND_QSBR)      the library's default options
 *   qsbr-cap  (RC_BACKEND_QSBR_CAP)  the same with the memory cap on:
 *                                    max_pending = RC_QSBR_CAP objects
 *
 * A thread reports a quiescent state after every operation; the library's
 * own amortized reclaim runs inside retire.  Debug builds add the owner check
 * to the inline qsbr_quiescent: benchmark a release build.
 *
 * rc_synchronize waits with the handle-based qsbr_synchronize(t).  Where
 * qsbr.h defines QSBR_HAVE_SYNCHRONIZE_DOMAIN, the domain-level
 * qsbr_synchronize_domain(d) can be measured instead: set
 * RC_QSBR_SYNC_DOMAIN to 1 below (or pass -DRC_QSBR_SYNC_DOMAIN=1).  That
 * call takes no handle, so a caller that is online goes offline around it,
 * as liburcu's synchronize_rcu does for an online QSBR reader.
 * RC_SYNC_CALL names the call in results.
 */
#include <qsbr.h>

#ifndef RC_QSBR_SYNC_DOMAIN
#define RC_QSBR_SYNC_DOMAIN 0 /* 1: qsbr_synchronize_domain(d) */
#endif
#if RC_QSBR_SYNC_DOMAIN && !defined(QSBR_HAVE_SYNCHRONIZE_DOMAIN)
#error "RC_QSBR_SYNC_DOMAIN needs a qsbr.h with QSBR_HAVE_SYNCHRONIZE_DOMAIN"
#endif

#if defined(RC_BACKEND_QSBR_CAP)
#define RC_NAME "qsbr-cap"
#define RC_GRACE 0 /* same grace periods as "qsbr": measured there */
#define RC_QSBR_CAP 32768
#else
#define RC_NAME "qsbr"
#define RC_GRACE 1
#endif
#define RC_MULTI 1

typedef qsbr_node rc_head;
typedef qsbr_domain rc_domain;
typedef struct {
	qsbr_thread *t;
	qsbr_domain *d;
	bool online;
} rc_thread;

static inline rc_domain *rc_domain_new(void)
{
	qsbr_options o;
	qsbr_domain *d;

	qsbr_options_init(&o);
#if defined(RC_BACKEND_QSBR_CAP)
	o.max_pending = RC_QSBR_CAP;
#endif
	d = qsbr_domain_new(&o);

	if (d == NULL)
		abort();
	return d;
}

static inline void rc_domain_delete(rc_domain *d)
{
	if (qsbr_domain_delete(d) != 0)
		abort();
}

static inline void rc_thread_init(rc_thread *t, rc_domain *d)
{
	t->t = qsbr_register(d);
	if (t->t == NULL)
		abort();
	t->d = d;
	t->online = true;
}

/* What the thread still holds goes to the domain's orphans (rc_drain). */
static inline void rc_thread_fini(rc_thread *t)
{
	qsbr_unregister(t->t);
}

static inline void rc_read_begin(rc_thread *t) { (void)t; }
static inline void rc_read_end(rc_thread *t) { (void)t; }

static inline void rc_quiescent(rc_thread *t)
{
	qsbr_quiescent(t->t);
}

static inline void rc__free_node(qsbr_node *n)
{
	bench_obj_free(n);
}

static inline void rc_retire(rc_thread *t, rc_head *h)
{
	bench_count_retired();
	qsbr_retire_node(t->t, h, rc__free_node);
}

static inline void rc_retire_ptr(rc_thread *t, void *p)
{
	bench_count_retired();
	if (qsbr_retire(t->t, p, bench_obj_free) != 0)
		abort();
}

static inline void rc_offline(rc_thread *t)
{
	qsbr_detach(t->t);
	t->online = false;
}

static inline void rc_online(rc_thread *t)
{
	qsbr_attach(t->t);
	t->online = true;
}

#if RC_QSBR_SYNC_DOMAIN
#define RC_SYNC_CALL "qsbr_synchronize_domain(d)"
static inline void rc_synchronize(rc_thread *t)
{
	if (!t->online) {
		qsbr_synchronize_domain(t->d);
		return;
	}
	rc_offline(t);
	qsbr_synchronize_domain(t->d);
	rc_online(t);
}
#else
#define RC_SYNC_CALL "qsbr_synchronize(t)"
static inline void rc_synchronize(rc_thread *t) { qsbr_synchronize(t->t); }
#endif

/* qsbr_barrier waits for the caller's objects and every orphan. */
static inline void rc_drain(rc_domain *d)
{
	qsbr_thread *t = qsbr_register(d);

	if (t == NULL)
		abort();
	qsbr_barrier(t);
	qsbr_unregister(t);
}
