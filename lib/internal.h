/* SPDX-License-Identifier: MIT */
/*
 * libqsbr internals: the structures every file shares, and who calls whom.
 *
 *   grace.c     grace-period detection: quiescent, attach/detach, advance,
 *               goals, poll/scan, synchronize.  The only user of protocol.h,
 *               where the ordering rules R1..R5 are written (docs/design.md
 *               argues them).
 *   retire.c    a thread's retire lists: batches with goals, reclaim,
 *               barrier, the flush that hands a thread's objects over.
 *   batch.c     a batch and a ring of batches; running a batch's callbacks,
 *               and the callback frame shared.c runs region callbacks in.
 *   handoff.c   the domain's shared queue of batches, and the helper thread
 *               that runs it.
 *   registry.c  thread slots, register/unregister, the thread-exit key.
 *   stats.c     accounting, peaks, qsbr_stats_get.
 *   policy.c    stall reports and the memory cap.
 *   wait.c      blocking waits: spin, then futex.
 *   domain.c    domain life cycle, options, allocator, misuse checks, fork.
 *   pool.c      object pools (qsbr/pool.h): slabs from the domain's
 *               allocator, objects reused after a grace period.
 *   shared.c    process-shared domains (qsbr/shared.h): the region's
 *               layout, its slots, retires by offset, death and recovery.
 *
 * Calls go one way: domain -> registry -> retire -> handoff -> batch ->
 * grace -> policy -> stats, wait.  Two calls go back up, each named where it
 * is made: grace.c's quiescent slow path asks retire.c to do what the thread
 * was asked to do (qsbr__owner_duties: a flush, the cap's wait), and wait.c
 * puts a sleeping waiter offline and back (qsbr_detach, qsbr_attach).
 * pool.c sits above them all, beside lib/ds: it calls the public retire
 * and barrier calls, the domain's allocator, qsbr__in_callback and
 * qsbr__callback_thread; the core calls into it through its retire callback
 * and one hook, qsbr__pool_thread_exit, made last by qsbr__retire_exit (a
 * leaving thread's pool caches go back).
 * shared.c sits beside registry and retire: registry.c calls it to claim
 * and leave a region slot, retire.c for the region part of reclaim and
 * barrier, grace.c for the region's slot table and a holder that may be
 * dead (qsbr__shm_holder), policy.c to name a region slot; it calls grace
 * (advance, make_goal, poll), batch (the callback frame) and wait.
 *
 * Invariant: a callback runs only after every thread that was online when its
 * object was unlinked has published a sequence at or past the object's goal,
 * or gone offline.  What an offline thread holds can be taken by another
 * (the helper, a barrier: qsbr__steal), so nothing waits on a thread that
 * is away.
 *
 *   sequence space (odd values, wrap-safe order):
 *
 *     rd_seq <= min(online seq) <= ... <= wr_seq  <  wr_seq + 2
 *       ^ cached minimum         ^ threads     ^ last advance   ^ deferred goal
 */
#ifndef QSBR_INTERNAL_H
#define QSBR_INTERNAL_H

#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qsbr.h"
#include "qsbr/shared.h"
#include "atomics.h"

#define CACHELINE 64
#define RING_SIZE 16u          /* closed batches per thread before merging */
#define QUEUE_RING_SIZE 64u    /* batches in the shared queue before merging */
#define BOX_CACHE_MAX 256u     /* spare pointer-retire nodes kept per thread */
#define BATCH_SIZE_MAX 4096u
#define FLUSH_MS_DEFAULT 10u
#define SHM_GOALS 16u          /* goals of a thread's region batches (shared.c) */

/* n rounded up to a multiple of to. */
static inline size_t round_up(size_t n, size_t to)
{
	return (n + to - 1) / to * to;
}

/* Thread-local state of the library: initial-exec, so that reading it is one
 * load (no __tls_get_addr call in a shared library). */
#if defined(__GNUC__)
#define QSBR_TLS _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define QSBR_TLS _Thread_local
#endif

#ifndef QSBR_SEQ_START
#define QSBR_SEQ_START 1
#endif

/* Misuse checks: on in debug builds of the library, with a message that
 * names the call. */
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

/* A FIFO of batches; a push into a full ring merges into the newest. */
struct ring {
	struct batch *slot;
	uint32_t size, head, len;
};

enum slot_state { SLOT_FREE = 0, SLOT_USED = 1 };

/* Who may touch a thread's open batch and ring: its owner (online, or
 * inside a call), nobody (offline and idle: a stealer may take them), or a
 * stealer taking them (retire.c). */
enum lists_state { LISTS_OWNED = 0, LISTS_FREE = 1, LISTS_TAKEN = 2 };

struct qsbr_thread {
	/* Line 0, read by scanners and the inline fast path: seq and the
	 * read-only pointers.  seq and wr_seq are laid out as
	 * struct qsbr__thread_head (checked in registry.c). */
	au64 seq;               /* 0 = offline */
	const au64 *wr_seq;
	qsbr_domain *d;
	au64 *pub;              /* the seq scanners read: &seq, or in a shared
				 * domain the region slot's, which seq mirrors */
	au64 *mask_word;        /* this slot's word in its block's online mask */
	uint64_t mask_bit;
	au64 *group_online;     /* its group's count of online slots */

	/* Owner-private from here (own cache lines), but for what a stealer
	 * may take while `lists` says so (retire.c): open, ring, n_handed. */
	alignas(CACHELINE) pthread_t owner;
	au32 state;             /* enum slot_state; read by misuse checks */
	au32 lists;             /* enum lists_state: who may touch open and ring */
	uint32_t pins;          /* the owner's holds on them: online, or in a call */
	uint32_t batch_limit;   /* the domain's batch_size, on the hot line */
	qsbr_seq newest_goal;   /* the last goal this thread made (goals only grow) */
	uint32_t since_count;   /* objects retired since this thread's last advance */
	size_t since_bytes;
	struct batch open;      /* being filled; no goal yet */
	struct batch ring_slots[RING_SIZE];
	struct ring ring;       /* closed batches, oldest first */
	struct box *boxes;      /* spare nodes for qsbr_retire */
	uint32_t n_boxes;
	bool cap_wait;          /* the memory cap asks for a wait at the next quiescent */
	uint64_t flush_done;    /* the last flush request this thread answered */
	struct qsbr_thread *next_free; /* registry free list, under reg_lock */
	struct qsbr_thread *tls_next;  /* the owner's other handles (registry.c) */
	struct pool_cache *pool_caches; /* this thread's pool caches (pool.c) */
	struct shm_slot *_Atomic shm_slot; /* its region slot in a shared domain, or NULL:
				 * the owner's, read by others as a hint (relaxed) */
	uint32_t shm_open_n;       /* its region retires without a goal yet */
	uint32_t shm_head, shm_len; /* shm_goals: the goals of the closed ones */
	struct shm_goal {
		qsbr_seq goal;
		uint64_t count;    /* the next count retires from the list's head */
	} shm_goals[SHM_GOALS];
	uint64_t id;            /* qsbr_thread_id, set under reg_lock */
	char name[32];          /* qsbr_thread_set_name, under reg_lock */

	/* Written by the owner only (relaxed), read by anyone: statistics, and
	 * what the helper reads to find idle holders (held = retired - freed -
	 * handed). */
	alignas(CACHELINE) au64 n_retired, n_freed, n_handed;
	au64 n_polled;          /* polls of its own ring (run_reached) */
	au64 n_bytes_retired, n_bytes_freed, n_bytes_handed;
	au64 flush_ack;         /* flush_done, for waiters (release) */

	/* Written by others: a flush request (a generation of flush_gen). */
	alignas(CACHELINE) au64 flush_req;
	au64 helper_mark;       /* the helper's: progress seen at its last look */
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

/* Where a scan finds slots and their online masks: a block of the
 * registry, or a shared region's slot table (shared.c). */
struct slot_table {
	const au64 *group_online;
	const au64 *mask;
	uint64_t used;          /* slots 0 .. used - 1 may be online */
	const char *seq0;       /* slot 0's seq */
	size_t stride;          /* bytes from one slot's seq to the next */
};

/* What the shared queue's drainer runs; barrier waiters compare done with
 * the pushed count they saw. */
struct queue {
	pthread_mutex_t lock;   /* ring, pushed, draining, max_goal, helper */
	struct batch slots[QUEUE_RING_SIZE];
	struct ring ring;
	uint64_t pushed;        /* objects ever pushed */
	qsbr_seq max_goal;      /* newest goal in the ring */
	bool draining;          /* one drainer at a time: batches run in order */
	bool drain_again;       /* a drain was refused while the drainer polled */
	au64 waiting;           /* hint for drainers: the ring's length */
	au64 done;              /* objects of popped batches whose callbacks ran */
	au64 bytes_done;

	/* The helper thread (handoff.c).  Its state is written under lock and
	 * read without it as a hint. */
	pthread_cond_t cv;
	pthread_t helper;
	au32 helper_state;      /* none, busy, idle (handoff.c) */
	au32 helper_stop;
	uint64_t retry_at_ms;   /* after a failed start */
	bool helper_napping;    /* asleep until its next look: a push wakes it */
	au64 helper_failures;
};

struct qsbr_domain {
	/* Grace periods (grace.c).  wr_seq on its own line: every quiescent
	 * state reads it; rd_seq and the blocker hint are written by
	 * scanners. */
	alignas(CACHELINE) au64 wr_seq;
	alignas(CACHELINE) au64 rd_seq; /* cached minimum, CAS'd by scanners */
	aptr blocker;                   /* qsbr_thread * that held the last scan back */
	au64 flush_gen;                 /* flush requests made (retire.c) */

	/* Statistics and the cap (stats.c, policy.c): any thread, relaxed.
	 * Objects and bytes in closed batches not yet freed, kept per batch. */
	alignas(CACHELINE) au64 closed_pending, closed_bytes;
	au64 peak_pending, peak_bytes;
	au64 n_scans, n_stalls, n_cap_waits;
	au64 pressure_at_ms;            /* last on_pressure call */

	/* Stall tracking (policy.c): which slot held polls back, at which seq,
	 * since when (ms); a heuristic written by pollers, relaxed. */
	alignas(CACHELINE) aptr stall_who;
	au64 stall_seq, stall_since_ms, stall_report_ms;

	/* Sleeping waiters (wait.c): they sleep on futex_word; publishers wake
	 * them when waiters != 0. */
	alignas(CACHELINE) au32 futex_word;
	au32 waiters;

	/* The registry (registry.c): blocks are read by scanners without a
	 * lock; the rest is under reg_lock. */
	alignas(CACHELINE) au64 n_blocks; /* blocks[0 .. n_blocks - 1] are set */
	struct slot_block *blocks[MAX_BLOCKS];
	pthread_mutex_t reg_lock;
	struct qsbr_thread *free_slots;
	uint32_t n_threads;
	uint64_t next_id;
	/* Counters of unregistered threads, folded in under reg_lock. */
	uint64_t departed_retired, departed_freed, departed_handed;
	uint64_t departed_bytes_retired, departed_bytes_freed;

	/* The shared queue and its helper thread (handoff.c). */
	alignas(CACHELINE) struct queue q;

	/* Read-only after creation. */
	au64 *wr;                      /* &wr_seq, or the region's (shared.c) */
	au64 *rd;                      /* &rd_seq, or the region's */
	struct shm *shm;               /* a shared domain's view, or NULL */
	qsbr_options opts;             /* deferred_bytes 0 is stored as SIZE_MAX */
	uint32_t flush_ms;
	qsbr_seq initial_seq;          /* for the advances statistic */
	struct qsbr_domain *all_next;  /* the live domains, for fork (domain.c) */
};

/* A pointer retired with qsbr_retire: a node that carries it. */
struct box {
	qsbr_node node;
	void *p;
	void (*free_fn)(void *p);
};

/* Blocking calls refuse to run from a callback, in every build (and stop a
 * debug build with a message first).  True when refused: errno is EDEADLK. */
#define REFUSE_IN_CALLBACK(call)                                                          \
	(QSBR_ASSERT(!qsbr__in_callback(), call ": called from a reclaim callback"),        \
	 qsbr__in_callback() ? (errno = EDEADLK, true) : false)

static inline qsbr_seq seq_max(qsbr_seq a, qsbr_seq b)
{
	return qsbr_seq_lt(a, b) ? b : a;
}

/* domain.c */
_Noreturn void qsbr__fail(const char *fmt, ...);
void *qsbr__alloc(const qsbr_options *o, size_t size, size_t align);
void qsbr__free(const qsbr_options *o, void *p);
void *qsbr__domain_alloc(qsbr_domain *d, size_t size, size_t align);
void qsbr__domain_free(qsbr_domain *d, void *p);
bool qsbr__owned(const qsbr_thread *t);
qsbr_domain *qsbr__domain_make(const qsbr_options *opts);
void qsbr__domain_unmake(qsbr_domain *d);
qsbr_domain *qsbr__domain_listed(qsbr_domain *d);
extern au64 qsbr__fork_gen;
/* Relaxed: the child's handler bumps it in the child's only thread; a
 * callback that forked reads its own write. */
static inline uint64_t qsbr__fork_generation(void)
{
	return load_relaxed(&qsbr__fork_gen);
}
int qsbr__cond_init(pthread_cond_t *cv);

/* registry.c */
void qsbr__registry_init(qsbr_domain *d);
void qsbr__registry_destroy(qsbr_domain *d);
void qsbr__registry_fork_child(qsbr_domain *d);
qsbr_thread *qsbr__self(qsbr_domain *d);
#define REGISTRY_EACH(d, t)                                                              \
	for (uint64_t k_ = 0, nk_ = load_acquire(&(d)->n_blocks); k_ < nk_; k_++)         \
		for (uint64_t i_ = 0, ni_ = load_relaxed(&(d)->blocks[k_]->used); i_ < ni_; \
		     i_++)                                                                \
			for (qsbr_thread *t = &(d)->blocks[k_]->slots[i_]; t != NULL; t = NULL)

/* retire.c */
void qsbr__owner_duties(qsbr_thread *t);
bool qsbr__steal(qsbr_thread *t);
void qsbr__lists_pin(qsbr_thread *t);
void qsbr__lists_unpin(qsbr_thread *t);
void qsbr__flush(qsbr_thread *t);
void qsbr__retire_exit(qsbr_thread *t);
bool qsbr__barrier_wait(qsbr_thread *t, uint64_t deadline_ms);
void qsbr__retire_fork_child(qsbr_thread *t);

/* handoff.c */
void qsbr__queue_init(qsbr_domain *d);
void qsbr__queue_push(qsbr_domain *d, const struct batch *b);
enum drain_what { DRAIN_REACHED, DRAIN_ALL };
size_t qsbr__queue_drain(qsbr_domain *d, qsbr_thread *t, enum drain_what what);
uint64_t qsbr__queue_mark(qsbr_domain *d);
bool qsbr__queue_done(qsbr_domain *d, uint64_t mark);
bool qsbr__helper_runs(qsbr_domain *d);
bool qsbr__helper_busy(qsbr_domain *d);
void qsbr__helper_poke(qsbr_domain *d);
void qsbr__helper_stop(qsbr_domain *d);
void qsbr__queue_fork_child(qsbr_domain *d);

/* batch.c */
void qsbr__batch_append(struct batch *dst, const struct batch *src);
void qsbr__ring_push(struct ring *r, const struct batch *b);
bool qsbr__ring_pop(struct ring *r, struct batch *out);
bool qsbr__run_batch(qsbr_domain *d, qsbr_thread *t, const struct batch *b);
/* The callbacks a thread is running, innermost first (batch.c). */
struct running {
	qsbr_domain *d;
	qsbr_thread *t;         /* the running thread's handle in d, or NULL */
	const struct running *outer;
};
void qsbr__callbacks_enter(struct running *self, qsbr_domain *d, qsbr_thread *t);
void qsbr__callbacks_leave(struct running *self);
bool qsbr__in_callback(void);
bool qsbr__in_callback_of(const qsbr_domain *d);
qsbr_thread *qsbr__callback_thread(void);
void qsbr__box_free(qsbr_domain *d, qsbr_thread *t, struct box *b);
void qsbr__box_marker(qsbr_node *n);

/* grace.c */
void qsbr__publish(qsbr_thread *t);
qsbr_seq qsbr__advance(qsbr_domain *d);
void qsbr__advance_past(qsbr_domain *d, qsbr_seq goal);
qsbr_seq qsbr__make_goal(qsbr_thread *t, uint32_t count, size_t bytes);
bool qsbr__poll(qsbr_domain *d, qsbr_seq goal);
void qsbr__detach(qsbr_thread *t);

/* pool.c: a leaving thread's pool caches go back to their pools. */
void qsbr__pool_thread_exit(qsbr_thread *t);

/* shared.c: the region behind a shared domain (d->shm != NULL). */
bool qsbr__shm_claim(qsbr_thread *t);
void qsbr__shm_leave(qsbr_thread *t);
void qsbr__shm_hand_over(qsbr_thread *t);
bool qsbr__shm_holds(const qsbr_thread *t);
uint64_t qsbr__shm_progress(const qsbr_thread *t);
struct slot_table qsbr__shm_table(qsbr_domain *d);
bool qsbr__shm_holder(qsbr_domain *d, const au64 *seq);
uint64_t qsbr__shm_describe(qsbr_domain *d, const au64 *seq, char *name, size_t size);
size_t qsbr__shm_reclaim(qsbr_thread *t, size_t orphans, bool advance);
bool qsbr__shm_barrier(qsbr_thread *t);
void qsbr__shm_close(qsbr_domain *d);
void qsbr__shm_fork_child(qsbr_thread *t);

/* policy.c */
void qsbr__stall_check(qsbr_domain *d, const au64 *who, qsbr_seq seq);
void qsbr__cap_check(qsbr_thread *t);
uint64_t qsbr__cap_deadline(const qsbr_domain *d);

/* stats.c */
void qsbr__account(qsbr_domain *d, int64_t count, int64_t bytes);
void qsbr__stats_fold(qsbr_thread *t);
void qsbr__stats_fork_child(qsbr_domain *d);
uint64_t qsbr__now_ms(void);

/* wait.c: spin, then sleep on the futex until woken or 1 ms; *done* is
 * checked again after registering as a waiter.  self (may be NULL) reports
 * quiescent states while it waits, when online.  Returns false when
 * deadline_ms (0 = none, as qsbr__now_ms) passed first. */
bool qsbr__wait_until(qsbr_domain *d, qsbr_thread *self, bool (*done)(void *arg), void *arg,
		      uint64_t deadline_ms);
void qsbr__wake_waiters(qsbr_domain *d);

#endif /* QSBR_INTERNAL_H */
