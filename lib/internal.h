/* SPDX-License-Identifier: MIT */
/*
 * libqsbr internals.  Where things live:
 *   grace.c     the sequence protocol: quiescent, attach/detach, advance,
 *               goals, poll/scan, synchronize.  The memory-ordering rules.
 *   retire.c    per-thread retire lists (batches with goals), reclaim,
 *               barrier, the orphan list of departed threads.
 *   registry.c  the thread registry: slot blocks, register/unregister.
 *   domain.c    domain life cycle, options, statistics, misuse checks,
 *               the allocator hooks.
 *   health.c    stall reports, the memory cap, waiting (futex), thread
 *               exit and fork.
 *   reclaimer.c the orphan ring's producers and the background reclaimer.
 *
 * Invariant: a callback runs only after every thread that was online when its
 * object was unlinked has published a sequence at or past the object's goal,
 * or gone offline.
 *
 *   sequence space (odd values, wrap-safe order):
 *
 *     rd_seq <= min(online seq) <= ... <= wr_seq  <  wr_seq + 2
 *       ^ cached minimum         ^ threads     ^ last advance   ^ deferred goal
 *
 * The numbered ordering rules (R1..R5) are stated in grace.c and argued in
 * docs/design.md.
 */
#ifndef QSBR_INTERNAL_H
#define QSBR_INTERNAL_H

#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qsbr.h"
#include "atomics.h"

#define CACHELINE 64
#define RING_SIZE 16u          /* closed batches per thread before merging */
#define ORPHAN_RING_SIZE 64u   /* orphan batches per domain before merging */
#define WRAP_CACHE_MAX 256u    /* spare pointer-retire nodes kept per thread */
#define BATCH_SIZE_MAX 4096u

#ifndef QSBR_SEQ_START
#define QSBR_SEQ_START 1
#endif

/* Misuse checks: on in debug builds, with a message that names the call. */
#ifndef NDEBUG
#define QSBR_ASSERT(cond, ...) ((cond) ? (void)0 : qsbr__fail(__VA_ARGS__))
#define CHECK_OWNER(t, call) qsbr__check_owner((t), (call))
#else
#define QSBR_ASSERT(cond, ...) ((void)0)
#define CHECK_OWNER(t, call) ((void)0)
#endif

/* A run of retired nodes sharing one goal, linked first..last. */
struct batch {
	qsbr_seq goal;
	qsbr_node *first;
	qsbr_node *last;
	size_t count;
	size_t bytes;
};

enum slot_state { SLOT_FREE = 0, SLOT_USED = 1 };

struct qsbr_thread {
	/* Line 0, read by scanners: seq, and the read-only pointers. */
	struct qsbr__thread_head head;
	qsbr_domain *d;
	au64 *mask_word;        /* this slot's word in its block's online mask */
	uint64_t mask_bit;
	au64 *group_online;     /* its group's count of online slots */

	/* Owner-private from here (own cache lines). */
	alignas(CACHELINE) pthread_t owner;
	enum slot_state state;
	uint32_t batch_limit;  /* copies of the domain's options, on the hot line */
	size_t bytes_limit;
	qsbr_seq newest_goal;  /* the last goal this thread made (goals only grow) */
	uint32_t since_count;  /* objects retired since this thread's last advance */
	size_t since_bytes;
	struct batch open;     /* being filled; no goal yet */
	struct batch ring[RING_SIZE];
	uint32_t ring_head, ring_len;
	struct wrap *wcache;   /* spare nodes for qsbr_retire */
	uint32_t wcache_len;
	struct qsbr_thread *next_free; /* registry free list, under reg_lock */
	struct qsbr_thread *tls_next;  /* the owner's other handles (health.c) */
	bool cap_wait;         /* the memory cap asks for a wait at the next quiescent */
	uint64_t id;           /* qsbr_thread_id, set under reg_lock */
	char name[32];         /* qsbr_thread_set_name, under reg_lock */

	/* Statistics: written by the owner only, read by qsbr_stats_get. */
	au64 n_retired, n_freed, n_bytes_retired, n_bytes_freed;
};

#define MAX_BLOCKS 24u      /* block k holds 8 << k slots */
#define GROUP_SLOTS 512u    /* slots per online count: a cache line of mask */

/*
 * Bit i of mask[i / 64] is set while slot i is online; group_online[g]
 * counts the set bits of slots g * 512 .. g * 512 + 511.  Attach sets,
 * detach clears.  A scan reads a group's mask only when its count is not 0,
 * and a slot only when its bit is set: its cost follows the online threads,
 * plus one word per 512 slots.
 */
struct slot_block {
	uint32_t n;
	au64 used;              /* slots handed out; grows under reg_lock */
	au64 *group_online;     /* ceil(n / 512) counts, in this allocation */
	au64 *mask;             /* ceil(n / 64) words, in this allocation */
	struct qsbr_thread *slots; /* n slots, in this allocation */
};

struct qsbr_domain {
	alignas(CACHELINE) au64 wr_seq; /* own line: every quiescent reads it */
	alignas(CACHELINE) au64 rd_seq; /* cached minimum, CAS'd by scanners */
	aptr blocker;  /* qsbr_thread * that held the last scan back */
	alignas(CACHELINE) au64 n_scans;
	au64 n_stalls, n_cap_waits;

	/* Objects and bytes in closed batches not yet freed, domain-wide, kept
	 * per batch (one RMW per batch): the memory cap and the peaks. */
	alignas(CACHELINE) au64 sealed_pending, sealed_bytes;
	au64 peak_pending, peak_bytes;
	au64 pressure_at_ms;          /* last on_pressure call */

	/* Stall tracking: which slot held polls back, at which seq, since when
	 * (ms); a heuristic written by pollers with relaxed stores. */
	alignas(CACHELINE) aptr stall_who;
	au64 stall_seq, stall_since_ms, stall_report_ms;

	/* Waiters in synchronize/barrier sleep on futex_word; publishers wake
	 * them when waiters != 0 (health.c). */
	alignas(CACHELINE) au32 futex_word;
	au32 waiters;

	alignas(CACHELINE) au64 n_blocks; /* blocks[0 .. n_blocks - 1] are set */
	struct slot_block *blocks[MAX_BLOCKS];
	qsbr_options opts;
	qsbr_seq initial_seq;

	pthread_mutex_t reg_lock; /* registry: blocks, free list, counts */
	struct qsbr_thread *free_slots;
	uint32_t n_threads;
	uint64_t next_id;
	struct qsbr_domain *all_next;   /* the list of live domains (health.c) */
	uint64_t departed_retired, departed_freed; /* folded in at unregister */
	uint64_t departed_bytes_retired, departed_bytes_freed;

	pthread_mutex_t orphan_lock; /* the orphan ring */
	struct batch orphans[ORPHAN_RING_SIZE];
	uint32_t orphan_head, orphan_len;
	uint64_t orphans_added;       /* nodes ever handed over, under orphan_lock */
	qsbr_seq orphan_max_goal;     /* newest goal in the ring, under orphan_lock */
	au64 orphans_waiting;         /* hint for drainers: nonzero when orphan_len > 0 */

	/* The background reclaimer (reclaimer.c), under orphan_lock. */
	pthread_cond_t worker_cv;
	pthread_t worker;
	bool worker_started, worker_stop;

	pthread_mutex_t drain_lock;   /* one drainer at a time: orphans run in order */
	au64 orphans_freed, orphans_bytes_freed; /* written under drain_lock */
};

/* A pointer retired with qsbr_retire. */
struct wrap {
	qsbr_node node;
	void *p;
	void (*free_fn)(void *p);
};

/* domain.c */
_Noreturn void qsbr__fail(const char *fmt, ...);
void *qsbr__alloc(const qsbr_options *o, size_t size, size_t align);
void qsbr__free(const qsbr_options *o, void *p);
void *qsbr__domain_alloc(qsbr_domain *d, size_t size, size_t align);
void qsbr__domain_free(qsbr_domain *d, void *p);
void qsbr__account(qsbr_domain *d, int64_t count, int64_t bytes);

/* health.c */
void qsbr__stall_check(qsbr_domain *d, const qsbr_thread *who, qsbr_seq seq);
void qsbr__wake_waiters(qsbr_domain *d);
void qsbr__wait(qsbr_domain *d, unsigned *round);
void qsbr__cap_check(qsbr_thread *t);
void qsbr__cap_wait(qsbr_thread *t);
void qsbr__tls_add(qsbr_thread *t);
void qsbr__tls_remove(qsbr_thread *t);
int qsbr__domains_add(qsbr_domain *d);
void qsbr__domains_remove(qsbr_domain *d);

/* grace.c */
qsbr_seq qsbr__advance(qsbr_domain *d);
qsbr_seq qsbr__make_goal(qsbr_thread *t, uint32_t count, size_t bytes);
bool qsbr__poll_domain(qsbr_domain *d, qsbr_seq goal);

/* retire.c */
void qsbr__seal(qsbr_thread *t);
size_t qsbr__run_reached(qsbr_thread *t);
void qsbr__retire_exit(qsbr_thread *t);
bool qsbr__in_callback(void);
size_t qsbr__drain_orphans(qsbr_domain *d, qsbr_thread *t, bool wait, bool all);

/* reclaimer.c */
void qsbr__orphan_push(qsbr_domain *d, const struct batch *b);
void qsbr__ring_push_orphan(qsbr_domain *d, const struct batch *b);
void qsbr__reclaimer_stop(qsbr_domain *d);

/* registry.c */
void qsbr__registry_init(qsbr_domain *d);
void qsbr__registry_destroy(qsbr_domain *d);
void qsbr__slot_release(qsbr_thread *t, bool dropped);
void qsbr__registry_each(qsbr_domain *d, void (*fn)(qsbr_thread *t, void *arg), void *arg);

static inline qsbr_seq seq_max(qsbr_seq a, qsbr_seq b)
{
	return qsbr_seq_lt(a, b) ? b : a;
}

#endif /* QSBR_INTERNAL_H */
