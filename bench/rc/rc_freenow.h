/* SPDX-License-Identifier: MIT */
/*
 * rc_freenow.h: free at once.  The zero-overhead reference, and correct only
 * with one thread: with two, a concurrent reader could touch freed memory.
 * Workloads register it for one thread only (RC_MULTI 0).
 */
#define RC_NAME "free-now"
#define RC_MULTI 0
#define RC_GRACE 0

typedef struct {
	void *unused[2];
} rc_head;
typedef struct {
	int unused;
} rc_domain;
typedef struct {
	int unused;
} rc_thread;

static inline rc_domain *rc_domain_new(void)
{
	static rc_domain d;

	return &d;
}

static inline void rc_domain_delete(rc_domain *d) { (void)d; }
static inline void rc_thread_init(rc_thread *t, rc_domain *d) { (void)t; (void)d; }
static inline void rc_thread_fini(rc_thread *t) { (void)t; }
static inline void rc_read_begin(rc_thread *t) { (void)t; }
static inline void rc_read_end(rc_thread *t) { (void)t; }
static inline void rc_quiescent(rc_thread *t) { (void)t; }

static inline void rc_retire(rc_thread *t, rc_head *h)
{
	(void)t;
	bench_count_retired();
	bench_obj_free(h);
}

static inline void rc_retire_ptr(rc_thread *t, void *p)
{
	(void)t;
	bench_count_retired();
	bench_obj_free(p);
}

static inline void rc_offline(rc_thread *t) { (void)t; }
static inline void rc_online(rc_thread *t) { (void)t; }
static inline void rc_synchronize(rc_thread *t) { (void)t; }
static inline void rc_drain(rc_domain *d) { (void)d; }
