/* SPDX-License-Identifier: MIT */
/*
 * rc_ck.h: Concurrency Kit's ck_epoch, as its manual pages use it.
 *
 *   ck        (RC_BACKEND_CK)        ck_epoch_poll after every ck_epoch_call,
 *                                    as in the ck_epoch_call(3) example
 *   ck-batch  (RC_BACKEND_CK_BATCH)  ck_epoch_poll every 128 calls: the
 *                                    amortization ck_epoch_poll(3) suggests
 *
 * Records are caller-owned: a thread takes a free one with ck_epoch_recycle
 * or registers a new one.  Every operation is an epoch section
 * (ck_epoch_begin/end, no section object).  A retire is ck_epoch_call
 * followed by ck_epoch_poll every RC_CK_POLL_EVERY calls.  A thread runs
 * ck_epoch_barrier before it unregisters, since unregistering drops what the
 * record still holds.  Plain pointers get a small wrapper: ck_epoch has no
 * pointer form.
 */
#include <ck_epoch.h>

#if defined(RC_BACKEND_CK_BATCH)
#define RC_NAME "ck-batch"
#define RC_GRACE 0 /* same grace periods as "ck": measured there */
#define RC_CK_POLL_EVERY 128
#else
#define RC_NAME "ck"
#define RC_GRACE 1
#define RC_CK_POLL_EVERY 1
#endif
#define RC_MULTI 1

typedef ck_epoch_entry_t rc_head;
typedef ck_epoch_t rc_domain;
typedef struct {
	ck_epoch_record_t *r;
	unsigned calls;
} rc_thread;

static inline rc_domain *rc_domain_new(void)
{
	ck_epoch_t *e = malloc(sizeof(*e));

	if (e == NULL)
		abort();
	ck_epoch_init(e);
	return e;
}

/* Every record is unregistered: free them (record_next is their first
 * member) and the epoch. */
static inline void rc_domain_delete(rc_domain *d)
{
	ck_stack_entry_t *e = CK_STACK_FIRST(&d->records);

	while (e != NULL) {
		ck_stack_entry_t *next = CK_STACK_NEXT(e);

		free(e);
		e = next;
	}
	free(d);
}

static inline void rc_thread_init(rc_thread *t, rc_domain *d)
{
	t->calls = 0;
	t->r = ck_epoch_recycle(d, NULL);
	if (t->r == NULL) {
		t->r = aligned_alloc(64, (sizeof(ck_epoch_record_t) + 63) / 64 * 64);
		if (t->r == NULL)
			abort();
		ck_epoch_register(d, t->r, NULL);
	}
}

static inline void rc_thread_fini(rc_thread *t)
{
	ck_epoch_barrier(t->r);
	ck_epoch_unregister(t->r);
}

static inline void rc_read_begin(rc_thread *t) { ck_epoch_begin(t->r, NULL); }
static inline void rc_read_end(rc_thread *t) { ck_epoch_end(t->r, NULL); }
static inline void rc_quiescent(rc_thread *t) { (void)t; }

static inline void rc__free_entry(ck_epoch_entry_t *e)
{
	bench_obj_free(e);
}

static inline void rc__call(rc_thread *t, ck_epoch_entry_t *e, ck_epoch_cb_t *fn)
{
	bench_count_retired();
	ck_epoch_call(t->r, e, fn);
	if (++t->calls % RC_CK_POLL_EVERY == 0)
		ck_epoch_poll(t->r);
}

static inline void rc_retire(rc_thread *t, rc_head *h)
{
	rc__call(t, h, rc__free_entry);
}

struct rc__wrap {
	ck_epoch_entry_t e;
	void *p;
};

static inline void rc__free_wrap(ck_epoch_entry_t *e)
{
	struct rc__wrap *w = (struct rc__wrap *)e;

	bench_obj_free(w->p);
	free(w);
}

static inline void rc_retire_ptr(rc_thread *t, void *p)
{
	struct rc__wrap *w = malloc(sizeof(*w));

	if (w == NULL)
		abort();
	w->p = p;
	rc__call(t, &w->e, rc__free_wrap);
}

/* A record outside a section delays nobody. */
static inline void rc_offline(rc_thread *t) { (void)t; }
static inline void rc_online(rc_thread *t) { (void)t; }
static inline void rc_synchronize(rc_thread *t) { ck_epoch_synchronize(t->r); }

/* Each thread ran ck_epoch_barrier before unregistering: nothing is left. */
static inline void rc_drain(rc_domain *d) { (void)d; }
