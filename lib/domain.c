/* SPDX-License-Identifier: MIT */
/*
 * Domain life cycle, options, the allocator hooks, misuse checks, and fork():
 * the list of live domains whose locks are taken around it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

const char *qsbr_version(void)
{
	return QSBR_VERSION_STRING;
}

int qsbr_options_init(qsbr_options *opts)
{
	if (opts == NULL)
		return EINVAL;
	memset(opts, 0, sizeof(*opts));
	opts->deferred_count = 127;
	opts->deferred_bytes = (size_t)1 << 20;
	opts->batch_size = 32;
	return 0;
}

/* ---- Allocator ----------------------------------------------------------- */

/* The allocator hooks of qsbr_options, or the malloc family. */
void *qsbr__alloc(const qsbr_options *o, size_t size, size_t align)
{
	void *p;

	if (o->alloc != NULL)
		return o->alloc(size, align, o->alloc_arg);
	if (align < sizeof(void *))
		align = sizeof(void *);
	return posix_memalign(&p, align, size) == 0 ? p : NULL;
}

void qsbr__free(const qsbr_options *o, void *p)
{
	if (o->free != NULL)
		o->free(p, o->alloc_arg);
	else
		free(p);
}

/* The domain's allocator, for the data structures of lib/ds (hidden). */
void *qsbr__domain_alloc(qsbr_domain *d, size_t size, size_t align)
{
	return qsbr__alloc(&d->opts, size, align);
}

void qsbr__domain_free(qsbr_domain *d, void *p)
{
	qsbr__free(&d->opts, p);
}

/* ---- fork() ---------------------------------------------------------------- */

/*
 * Every domain's queue and registry locks are taken before fork() (so no
 * structure is caught half-changed under a lock) and released on both
 * sides.  No callback runs under any of them, so a callback may create or
 * delete a domain, or fork.  In the child, everything retired before the
 * fork is the parent's: the child drops it and runs none of it, and the
 * threads that did not come along are unregistered (docs/api.md, fork).
 * Lock order: domains_lock, then each domain's q.lock, then its reg_lock.
 */
static pthread_mutex_t domains_lock = PTHREAD_MUTEX_INITIALIZER;
static qsbr_domain *domains;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
/* fork() children this process descends through (read inline, internal.h). */
au64 qsbr__fork_gen;

static void fork_prepare(void)
{
	pthread_mutex_lock(&domains_lock);
	for (qsbr_domain *d = domains; d != NULL; d = d->all_next) {
		pthread_mutex_lock(&d->q.lock);
		pthread_mutex_lock(&d->reg_lock);
	}
}

static void fork_parent(void)
{
	for (qsbr_domain *d = domains; d != NULL; d = d->all_next) {
		pthread_mutex_unlock(&d->reg_lock);
		pthread_mutex_unlock(&d->q.lock);
	}
	pthread_mutex_unlock(&domains_lock);
}

static void fork_child(void)
{
	/* One thread: relaxed is enough.  A callback that forked sees the
	 * change when it returns (qsbr__run_batch). */
	store_relaxed(&qsbr__fork_gen, load_relaxed(&qsbr__fork_gen) + 1);
	for (qsbr_domain *d = domains; d != NULL; d = d->all_next) {
		qsbr__registry_fork_child(d);
		qsbr__queue_fork_child(d);
		qsbr__stats_fork_child(d);
		store_relaxed(&d->stall_who, NULL);
		store_relaxed(&d->waiters, 0);
	}
	fork_parent();
}

static void fork_init(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static void domains_add(qsbr_domain *d)
{
	pthread_once(&fork_once, fork_init);
	pthread_mutex_lock(&domains_lock);
	d->all_next = domains;
	domains = d;
	pthread_mutex_unlock(&domains_lock);
}

static void domains_remove(qsbr_domain *d)
{
	pthread_mutex_lock(&domains_lock);
	for (qsbr_domain **link = &domains; *link != NULL; link = &(*link)->all_next) {
		if (*link == d) {
			*link = d->all_next;
			break;
		}
	}
	pthread_mutex_unlock(&domains_lock);
}

/* ---- Life cycle ---------------------------------------------------------- */

static bool options_valid(const qsbr_options *o)
{
	for (size_t i = 0; i < sizeof(o->reserved) / sizeof(o->reserved[0]); i++)
		if (o->reserved[i] != 0)
			return false;
	return o->batch_size != 0 && o->batch_size <= BATCH_SIZE_MAX &&
	       (o->initial_seq == 0 || (o->initial_seq & 1) != 0) &&
	       (o->alloc == NULL) == (o->free == NULL) &&
	       (o->stall_ms == 0 || o->on_stall != NULL) &&
	       o->background <= QSBR_BACKGROUND_OFF;
}

/* A condition variable whose timed waits use CLOCK_MONOTONIC, as every
 * deadline here does.  Returns 0 or the pthread error. */
int qsbr__cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t a;
	int err;

	if ((err = pthread_condattr_init(&a)) != 0)
		return err;
	err = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	if (err == 0)
		err = pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
	return err;
}

/* Returns 0 or the pthread error (EAGAIN, ENOMEM). */
static int init_locks(qsbr_domain *d)
{
	int err;

	if ((err = pthread_mutex_init(&d->reg_lock, NULL)) != 0)
		return err;
	if ((err = pthread_mutex_init(&d->q.lock, NULL)) != 0)
		goto fail_q;
	if ((err = qsbr__cond_init(&d->q.cv)) != 0)
		goto fail_cv;
	return 0;
fail_cv:
	pthread_mutex_destroy(&d->q.lock);
fail_q:
	pthread_mutex_destroy(&d->reg_lock);
	return err;
}

/* A process-local domain, not yet listed for fork (domain_new and
 * shared.c's create and attach).  NULL with errno EINVAL or ENOMEM. */
qsbr_domain *qsbr__domain_make(const qsbr_options *opts)
{
	qsbr_options o;
	qsbr_domain *d;
	qsbr_seq start;
	int err;

	if (opts != NULL)
		o = *opts;
	else
		qsbr_options_init(&o);
	if (!options_valid(&o)) {
		errno = EINVAL;
		return NULL;
	}
	if (o.deferred_bytes == 0)
		o.deferred_bytes = SIZE_MAX; /* no byte limit */
	d = qsbr__alloc(&o, sizeof(*d), CACHELINE);
	if (d == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	memset(d, 0, sizeof(*d));
	start = o.initial_seq != 0 ? o.initial_seq : (qsbr_seq)(QSBR_SEQ_START);
	d->opts = o;
	d->flush_ms = o.flush_ms != 0 ? o.flush_ms : FLUSH_MS_DEFAULT;
	d->initial_seq = start;
	atomic_init(&d->wr_seq, start);
	atomic_init(&d->rd_seq, start);
	d->wr = &d->wr_seq;
	d->rd = &d->rd_seq;
	atomic_init(&d->flush_gen, 0);
	qsbr__registry_init(d);
	qsbr__queue_init(d);
	if ((err = init_locks(d)) != 0) {
		qsbr__free(&o, d);
		errno = err;
		return NULL;
	}
	return d;
}

/* Undoes qsbr__domain_make for a domain that never had a thread. */
void qsbr__domain_unmake(qsbr_domain *d)
{
	qsbr__registry_destroy(d);
	pthread_mutex_destroy(&d->reg_lock);
	pthread_mutex_destroy(&d->q.lock);
	pthread_cond_destroy(&d->q.cv);
	qsbr__free(&d->opts, d);
}

/* shared.c's create and attach list their domain for fork here. */
qsbr_domain *qsbr__domain_listed(qsbr_domain *d)
{
	if (d != NULL)
		domains_add(d);
	return d;
}

qsbr_domain *qsbr_domain_new(const qsbr_options *opts)
{
	return qsbr__domain_listed(qsbr__domain_make(opts));
}

int qsbr_domain_delete(qsbr_domain *d)
{
	if (d == NULL)
		return EINVAL;
	QSBR_ASSERT(!qsbr__in_callback_of(d),
		    "qsbr_domain_delete: called from a reclaim callback of the same domain");
	if (qsbr__in_callback_of(d))
		return EDEADLK; /* its own drainer or helper would wait on itself */
	pthread_mutex_lock(&d->reg_lock);
	if (d->n_threads != 0) {
		pthread_mutex_unlock(&d->reg_lock);
		return EBUSY;
	}
	pthread_mutex_unlock(&d->reg_lock);
	domains_remove(d);
	qsbr__helper_stop(d);
	/* No thread is registered, so none holds a reference: every goal in
	 * the queue counts as reached. */
	qsbr__queue_drain(d, NULL, DRAIN_ALL);
	if (d->shm != NULL)
		qsbr__shm_close(d); /* the region stays, for the other processes */
	qsbr__domain_unmake(d);
	return 0;
}

/* ---- Misuse -------------------------------------------------------------- */

_Noreturn void qsbr__fail(const char *fmt, ...)
{
	va_list ap;

	fputs("libqsbr: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* Registered, by the calling thread: cheap enough for release builds. */
bool qsbr__owned(const qsbr_thread *t)
{
	return load_relaxed(&t->state) == SLOT_USED && pthread_equal(t->owner, pthread_self());
}

void qsbr__check_owner(const qsbr_thread *t, const char *call)
{
	if (load_relaxed(&t->state) != SLOT_USED)
		qsbr__fail("%s: handle used after qsbr_unregister", call);
	if (!pthread_equal(t->owner, pthread_self()))
		qsbr__fail("%s: called from a thread that did not register this handle", call);
}
