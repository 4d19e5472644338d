/* SPDX-License-Identifier: MIT */
/* Domain life cycle, options, statistics and the misuse checks. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static bool options_valid(const qsbr_options *o)
{
	for (size_t i = 0; i < sizeof(o->reserved) / sizeof(o->reserved[0]); i++)
		if (o->reserved[i] != 0)
			return false;
	return o->batch_size != 0 && o->batch_size <= BATCH_SIZE_MAX &&
	       (o->initial_seq == 0 || (o->initial_seq & 1) != 0) &&
	       (o->alloc == NULL) == (o->free == NULL) &&
	       (o->stall_ms == 0 || o->on_stall != NULL);
}

static int init_locks(qsbr_domain *d)
{
	if (pthread_mutex_init(&d->reg_lock, NULL) != 0)
		return -1;
	if (pthread_mutex_init(&d->orphan_lock, NULL) != 0)
		goto fail_orphan;
	if (pthread_mutex_init(&d->drain_lock, NULL) != 0)
		goto fail_drain;
	if (pthread_cond_init(&d->worker_cv, NULL) != 0)
		goto fail_cv;
	return 0;
fail_cv:
	pthread_mutex_destroy(&d->drain_lock);
fail_drain:
	pthread_mutex_destroy(&d->orphan_lock);
fail_orphan:
	pthread_mutex_destroy(&d->reg_lock);
	return -1;
}

qsbr_domain *qsbr_domain_new(const qsbr_options *opts)
{
	qsbr_options o;
	qsbr_domain *d;
	qsbr_seq start;

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
	d->initial_seq = start;
	d->orphan_max_goal = start;
	atomic_init(&d->wr_seq, start);
	atomic_init(&d->rd_seq, start);
	atomic_init(&d->n_scans, 0);
	atomic_init(&d->orphans_waiting, 0);
	atomic_init(&d->orphans_freed, 0);
	atomic_init(&d->orphans_bytes_freed, 0);
	qsbr__registry_init(d);
	if (init_locks(d) != 0) {
		qsbr__free(&o, d);
		errno = ENOMEM;
		return NULL;
	}
	qsbr__domains_add(d);
	return d;
}

int qsbr_domain_delete(qsbr_domain *d)
{
	if (d == NULL)
		return EINVAL;
	pthread_mutex_lock(&d->reg_lock);
	if (d->n_threads != 0) {
		pthread_mutex_unlock(&d->reg_lock);
		return EBUSY;
	}
	pthread_mutex_unlock(&d->reg_lock);
	qsbr__domains_remove(d);
	qsbr__reclaimer_stop(d);
	/* No thread is registered, so none holds a reference: every orphan's
	 * goal counts as reached. */
	qsbr__drain_orphans(d, NULL, true, true);
	qsbr__registry_destroy(d);
	pthread_mutex_destroy(&d->reg_lock);
	pthread_mutex_destroy(&d->orphan_lock);
	pthread_mutex_destroy(&d->drain_lock);
	pthread_cond_destroy(&d->worker_cv);
	qsbr__free(&d->opts, d);
	return 0;
}

static void stats_add_thread(qsbr_thread *t, void *arg)
{
	qsbr_stats *s = arg;

	s->threads++;
	if (load_relaxed(&t->head.seq) != 0)
		s->online++;
	s->retired += load_relaxed(&t->n_retired);
	s->freed += load_relaxed(&t->n_freed);
	s->pending_bytes += load_relaxed(&t->n_bytes_retired);
	s->pending_bytes -= load_relaxed(&t->n_bytes_freed);
}

int qsbr_stats_get(qsbr_domain *d, qsbr_stats *out)
{
	qsbr_stats s = { 0 };

	if (d == NULL || out == NULL)
		return EINVAL;
	pthread_mutex_lock(&d->reg_lock);
	qsbr__registry_each(d, stats_add_thread, &s);
	s.retired += d->departed_retired;
	s.freed += d->departed_freed;
	s.pending_bytes += d->departed_bytes_retired - d->departed_bytes_freed;
	pthread_mutex_unlock(&d->reg_lock);
	/* Acquire pairs with the release store in qsbr__drain_orphans. */
	s.freed += load_acquire(&d->orphans_freed);
	s.pending_bytes -= load_relaxed(&d->orphans_bytes_freed);
	/* Counters are read one after another while threads run: clamp. */
	s.pending = s.retired > s.freed ? s.retired - s.freed : 0;
	if ((int64_t)s.pending_bytes < 0)
		s.pending_bytes = 0;
	s.advances = (load_relaxed(&d->wr_seq) - d->initial_seq) / 2;
	s.scans = load_relaxed(&d->n_scans);
	s.peak_pending = load_relaxed(&d->peak_pending);
	s.peak_pending_bytes = load_relaxed(&d->peak_bytes);
	s.stalls = load_relaxed(&d->n_stalls);
	s.cap_waits = load_relaxed(&d->n_cap_waits);
	*out = s;
	return 0;
}

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

void qsbr__check_owner(const qsbr_thread *t, const char *call)
{
	if (t->state != SLOT_USED)
		qsbr__fail("%s: handle used after qsbr_unregister", call);
	if (!pthread_equal(t->owner, pthread_self()))
		qsbr__fail("%s: called from a thread that did not register this handle", call);
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
