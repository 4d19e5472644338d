/* SPDX-License-Identifier: MIT */
/*
 * libqsbr: quiescent-state-based reclamation for lock-free data structures.
 *
 * A domain keeps a global write sequence (odd, starts at 1, moves by 2).  Each
 * registered thread publishes the write sequence it saw at its last quiescent
 * state (0 while offline).  An object retired by a thread is tagged with a goal
 * sequence; its callback runs once every online thread has reported a
 * quiescent state at or past that goal.
 *
 * Short contracts live here; docs/api.md holds the long form, docs/design.md
 * the memory-ordering argument.  Errors are errno values.
 *
 * Threads: every call that takes a qsbr_thread must be made by the thread that
 * registered it.  A debug build of the library (built without NDEBUG) checks
 * this and the other misuse listed in docs/api.md with an assertion that names
 * the call; the inline qsbr_quiescent checks it only when the consumer defines
 * QSBR_DEBUG, so its cost never depends on the consumer's NDEBUG.
 *
 * Callbacks: blocking calls (qsbr_synchronize*, qsbr_barrier*, qsbr_unregister,
 * and qsbr_domain_delete of the callback's own domain) refuse to run from a
 * retire callback, with EDEADLK, in every build.
 */
#ifndef QSBR_H
#define QSBR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The inline fast path reads two words with relaxed atomic loads.  It uses the
 * compiler's builtins, not <stdatomic.h> or <atomic>, so the header compiles
 * the same as C and as C++, also inside extern "C" { }. */
#if defined(__GNUC__) || defined(__clang__)
#define QSBR__LOAD_RELAXED(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#else
#define QSBR__LOAD_RELAXED(p) (*(const volatile uint64_t *)(p))
#endif

#define QSBR_VERSION_MAJOR 0
#define QSBR_VERSION_MINOR 1
#define QSBR_VERSION_PATCH 0
#define QSBR_VERSION_STRING "0.1.0"
/* Encoded as major * 10000 + minor * 100 + patch, for #if comparisons. */
#define QSBR_VERSION_NUMBER \
	(QSBR_VERSION_MAJOR * 10000 + QSBR_VERSION_MINOR * 100 + QSBR_VERSION_PATCH)

#if defined(QSBR_STATIC_DEFINE)
#define QSBR_API
#elif defined(QSBR_BUILDING)
#define QSBR_API __attribute__((visibility("default")))
#else
#define QSBR_API
#endif

#if defined(__GNUC__)
#define QSBR__LIKELY(x) __builtin_expect(!!(x), 1)
#define QSBR__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define QSBR__LIKELY(x) (x)
#define QSBR__UNLIKELY(x) (x)
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qsbr_domain qsbr_domain; /* opaque */
typedef struct qsbr_thread qsbr_thread; /* per-thread handle, opaque but for its head */
typedef uint64_t qsbr_seq;

/* Intrusive retire header: embed it in your object, recover the object with
 * offsetof in the callback.  Owned by the library from retire until the
 * callback runs; the callback may free the memory that holds it. */
typedef struct qsbr_node {
	struct qsbr_node *next;
	void (*fn)(struct qsbr_node *n);
} qsbr_node;

typedef struct qsbr_stats qsbr_stats;

/* What a stall report says (qsbr_options.on_stall). */
typedef struct qsbr_stall_info {
	uint64_t thread_id;    /* qsbr_thread_id() of the thread holding others back */
	const char *name;      /* its qsbr_thread_set_name(), or "" */
	uint64_t stalled_ms;   /* how long it has held the same grace period back */
	uint64_t periods;      /* advances it is behind */
	uint64_t pending;      /* objects retired in the domain and not yet freed */
	uint64_t pending_bytes;
} qsbr_stall_info;

/* Why qsbr_options.on_pressure was called. */
typedef enum qsbr_pressure {
	QSBR_PRESSURE_CAP = 1  /* pending objects or bytes passed the cap */
} qsbr_pressure;

/* Domain options.  Fill with qsbr_options_init(), then change what you need.
 * Invalid values make qsbr_domain_new fail with EINVAL.  Zero means the
 * default (or "off") for every field added after the first four. */
typedef struct qsbr_options {
	/* Deferred advance: a thread's retires share goals, and it advances the
	 * write sequence only after this many objects (default 127; 0 = at
	 * every batch) ... */
	uint32_t deferred_count;
	/* ... or this many bytes, as told by the *_sized retire calls (default
	 * 1 MiB; 0 = no byte limit), retired since its last advance. */
	size_t deferred_bytes;
	/* Objects per retire batch: a batch gets its goal when it is closed, and
	 * a closed batch triggers amortized reclamation.  1..4096, default 32. */
	uint32_t batch_size;
	/* First write sequence: odd, or 0 for the build's default (1, or near
	 * UINT64_MAX in a -Dseq_start=near-wrap build).  For wraparound tests. */
	qsbr_seq initial_seq;

	/* Stall detection: an online thread that holds a grace period back for
	 * stall_ms (0 = off) is reported to on_stall, from the thread whose poll
	 * noticed it, at most once per stall_ms per domain.  The callback must
	 * not call into the domain. */
	uint32_t stall_ms;
	/* The domain's helper thread (qsbr_background):
	 * QSBR_BACKGROUND_AUTO (0, default): started on demand; it runs what
	 *   threads leave behind (objects of threads that went idle, offline,
	 *   unregistered or exited), so every retired object is freed within
	 *   flush_ms plus a grace period; busy threads still run their own.
	 * QSBR_BACKGROUND_ALL: every closed batch goes to the helper; retiring
	 *   threads never run callbacks.
	 * QSBR_BACKGROUND_OFF: no thread; what threads leave behind runs at the
	 *   next qsbr_reclaim, retire, barrier of any thread or at delete. */
	uint32_t background;
	void (*on_stall)(const qsbr_stall_info *info, void *arg);
	void *stall_arg;
	/* Eventual reclamation (background AUTO or ALL): a thread that holds
	 * retired objects and makes no progress for flush_ms is asked to hand
	 * them to the helper at its next quiescent state (0 = 10 ms). */
	uint32_t flush_ms;

	/* Memory cap (0 = none): once pending objects or bytes pass it, every
	 * retiring thread waits at its next qsbr_quiescent (a quiescent state,
	 * the one place waiting is safe) for a grace period and frees what it
	 * can (as qsbr_barrier would, but only for the objects of that moment),
	 * and on_pressure (if set) is told,
	 * at most once per 100 ms.  A stalled thread stops that wait after
	 * stall_ms (or 1 s): the cap slows retirement, it never deadlocks. */
	uint64_t max_pending;
	uint64_t max_pending_bytes;
	void (*on_pressure)(qsbr_pressure why, const qsbr_stats *now, void *arg);
	void *pressure_arg;

	/* Allocator for the domain, its registry, qsbr_retire's nodes and the
	 * data structures of <qsbr/...> built on it (default malloc family);
	 * called from any thread, the helper thread included.  alloc returns memory aligned to align (a
	 * power of two) or NULL; free gets what alloc returned. */
	void *(*alloc)(size_t size, size_t align, void *arg);
	void (*free)(void *p, void *arg);
	void *alloc_arg;

	uint64_t reserved[7]; /* zero: room for later options */
} qsbr_options;

/* qsbr_options.background */
enum qsbr_background {
	QSBR_BACKGROUND_AUTO = 0,
	QSBR_BACKGROUND_ALL = 1,
	QSBR_BACKGROUND_OFF = 2
};

/* Counters, summed over the domain's threads and its orphans.  Each field is
 * a snapshot; fields read while threads run need not add up exactly. */
struct qsbr_stats {
	uint64_t retired;      /* objects retired */
	uint64_t freed;        /* callbacks run */
	uint64_t pending;      /* retired - freed */
	uint64_t pending_bytes; /* bytes told by the *_sized calls, not yet freed */
	uint64_t advances;     /* write-sequence advances */
	uint64_t scans;        /* full scans of the registry by poll */
	uint32_t threads;      /* registered threads */
	uint32_t online;       /* of those, online */
	uint64_t peak_pending; /* highest pending seen at a batch boundary */
	uint64_t peak_pending_bytes;
	uint64_t stalls;       /* stall reports made */
	uint64_t cap_waits;    /* waits forced by the memory cap */
	uint64_t handed;       /* objects handed to the domain's shared queue */
	uint64_t helper_failures; /* helper thread starts that failed */
	uint64_t reserved[4];  /* zero: room for later counters */
};

/* ---- Sequences ------------------------------------------------------- */

/* Wrap-safe comparisons: a precedes b in sequence order. */
static inline bool qsbr_seq_lt(qsbr_seq a, qsbr_seq b) { return (int64_t)(a - b) < 0; }
static inline bool qsbr_seq_leq(qsbr_seq a, qsbr_seq b) { return (int64_t)(a - b) <= 0; }

/* ---- Library --------------------------------------------------------- */

/* The library's version, "MAJOR.MINOR.PATCH". */
QSBR_API const char *qsbr_version(void);

/* Fill *opts with the defaults.  Returns 0, or EINVAL for NULL. */
QSBR_API int qsbr_options_init(qsbr_options *opts);

/* ---- Domain ---------------------------------------------------------- */

/* New domain; opts NULL means defaults.  NULL with errno EINVAL (bad option)
 * or ENOMEM. */
QSBR_API qsbr_domain *qsbr_domain_new(const qsbr_options *opts);

/* Deletes the domain.  Returns EBUSY, freeing nothing, while threads are
 * registered; EDEADLK, changing nothing, from a retire callback of d (from a
 * callback of another domain it does its whole job); EINVAL for NULL; else stops the helper thread, runs every pending
 * callback exactly once, frees the domain and returns 0. */
QSBR_API int qsbr_domain_delete(qsbr_domain *d);

/* Fills *out.  Any thread may call it; takes the registry lock briefly.
 * Returns 0, or EINVAL for NULL. */
QSBR_API int qsbr_stats_get(qsbr_domain *d, qsbr_stats *out);

/* ---- Threads --------------------------------------------------------- */

/* Registers the calling thread, online.  The handle stays valid until
 * qsbr_unregister.  NULL with errno EINVAL or ENOMEM. */
QSBR_API qsbr_thread *qsbr_register(qsbr_domain *d);

/* Unregisters: runs what is already safe, then the thread goes offline and
 * what it still holds (callbacks' retires included) moves to the domain's
 * shared queue, freed later by the helper, other threads or
 * qsbr_domain_delete.  The handle is invalid afterwards.  errno EINVAL for
 * NULL or a handle that is not registered by the calling thread (a second
 * unregister: checked in every build); EDEADLK from a callback; nothing
 * happens then. */
QSBR_API void qsbr_unregister(qsbr_thread *t);

/* A name for stall reports (copied, up to 31 bytes).  Returns 0, or EINVAL. */
QSBR_API int qsbr_thread_set_name(qsbr_thread *t, const char *name);

/* A number unique to this registration in the domain, for stall reports. */
QSBR_API uint64_t qsbr_thread_id(const qsbr_thread *t);

/* Offline: the thread holds no reference and never delays reclamation until
 * qsbr_attach.  Idempotent.  Wait-free.  What it has retired stays its own,
 * but the helper thread (after flush_ms) or a barrier may take it while the
 * thread is away, so that nothing waits for its return. */
QSBR_API void qsbr_detach(qsbr_thread *t);

/* Online again: from here the thread may load shared pointers.  Idempotent.
 * Costs one seq_cst fence. */
QSBR_API void qsbr_attach(qsbr_thread *t);

/* Out-of-line part of qsbr_quiescent; not for direct use. */
QSBR_API void qsbr__quiescent_slow(qsbr_thread *t);
QSBR_API void qsbr__check_owner(const qsbr_thread *t, const char *call);

/* Layout of the start of every qsbr_thread.  ABI: the inline
 * qsbr_quiescent reads these two words, with relaxed atomic loads; the
 * library writes them atomically (docs/abi.md). */
struct qsbr__thread_head {
	uint64_t seq;              /* 0 = offline */
	const uint64_t *wr_seq;    /* the domain's write sequence */
};

/* Reports a quiescent state: the calling thread holds no reference to any
 * object reachable from a structure protected by this domain.  Must be online.
 * Fast path when the write sequence has not moved: one shared load and a
 * compare.  NULL: errno EINVAL. */
static inline void qsbr_quiescent(qsbr_thread *t)
{
	const struct qsbr__thread_head *h = (const struct qsbr__thread_head *)(const void *)t;

	if (QSBR__UNLIKELY(h == NULL)) {
		qsbr__quiescent_slow(t);
		return;
	}
#ifdef QSBR_DEBUG
	qsbr__check_owner(t, "qsbr_quiescent");
#endif
	/* Relaxed: only compared here; when they differ, the slow path reads
	 * wr_seq again with seq_cst (docs/design.md, rule R2). */
	if (QSBR__LIKELY(QSBR__LOAD_RELAXED(h->wr_seq) == QSBR__LOAD_RELAXED(&h->seq)))
		return;
	qsbr__quiescent_slow(t);
}

/* ---- Grace periods ---------------------------------------------------- */

/* Advances the write sequence and returns the new value: an object unlinked
 * before the call is safe once every online thread passes it.  Any thread,
 * registered or not.  0 with errno EINVAL for NULL. */
QSBR_API qsbr_seq qsbr_advance(qsbr_domain *d);

/* Goal for objects unlinked before the call, without writing the shared write
 * sequence unless the thread's deferral limit is reached (then it advances).
 * A deferred goal is reached only once somebody advances: qsbr_reclaim,
 * qsbr_synchronize and qsbr_barrier do.  0 with errno EINVAL for NULL. */
QSBR_API qsbr_seq qsbr_deferred_advance(qsbr_thread *t);

/* Has every online thread reported a quiescent state at or past goal?
 * Reads the cached minimum first and scans the registry only when it says no.
 * Never blocks, never advances.  false with errno EINVAL for NULL or an even
 * goal (clear errno first to tell the two falses apart). */
QSBR_API bool qsbr_poll(qsbr_thread *t, qsbr_seq goal);

/* qsbr_poll without a handle: any thread, registered or not.  Get a goal
 * from qsbr_advance.  Same errors. */
QSBR_API bool qsbr_poll_domain(qsbr_domain *d, qsbr_seq goal);

/* Waits for a full grace period: returns once every thread online at the call
 * has passed a quiescent state.  The caller counts as quiescent (it reports
 * quiescent states while it waits).  Concurrent callers share grace periods.
 * Blocks: spins briefly, then sleeps until a quiescent state wakes it.
 * errno EINVAL for NULL, EDEADLK from a callback (returns at once). */
QSBR_API void qsbr_synchronize(qsbr_thread *t);

/* qsbr_synchronize from any thread, registered or not.  A caller registered
 * in d and online counts as quiescent while it waits, as above.  Same
 * errors. */
QSBR_API void qsbr_synchronize_domain(qsbr_domain *d);
#define QSBR_HAVE_SYNCHRONIZE_DOMAIN 1

/* ---- Retire and reclaim ------------------------------------------------ */

/* Retires n: fn(n) runs once, from some thread's qsbr_reclaim, retire,
 * barrier, unregister, from the domain's helper thread or from
 * qsbr_domain_delete, after every thread online now has passed a quiescent
 * state.  The caller must have unlinked the object; it may be online or
 * offline (no attach/detach pair needed).
 * No allocation, cannot fail; NULL t, n or fn: errno EINVAL and n stays the
 * caller's. */
QSBR_API void qsbr_retire_node(qsbr_thread *t, qsbr_node *n, void (*fn)(qsbr_node *n));

/* Largest size the *_sized calls accept (1 TiB): larger sizes are refused
 * with EINVAL, so the byte statistics can never wrap. */
#define QSBR_SIZED_MAX ((size_t)1 << 40)

/* As qsbr_retire_node; bytes counts toward the deferral byte limit and the
 * pending_bytes statistic.  bytes > QSBR_SIZED_MAX: errno EINVAL, n stays the
 * caller's. */
QSBR_API void qsbr_retire_node_sized(qsbr_thread *t, qsbr_node *n, void (*fn)(qsbr_node *n),
				     size_t bytes);

/* Retires a plain pointer: free_fn(p) runs as for qsbr_retire_node.  Returns 0;
 * EINVAL for NULL t, p or free_fn (or bytes > QSBR_SIZED_MAX); ENOMEM when no
 * tracking node could be allocated.  On error the caller still owns p. */
QSBR_API int qsbr_retire(qsbr_thread *t, void *p, void (*free_fn)(void *p));
QSBR_API int qsbr_retire_sized(qsbr_thread *t, void *p, void (*free_fn)(void *p), size_t bytes);

/* Runs this thread's callbacks whose goal is reached, in retire order, and
 * some of the shared queue's (unless the helper thread runs them).  Advances
 * the write sequence if the thread holds objects past it.  Never waits.
 * Returns how many callbacks ran; 0 with errno EINVAL for NULL.  Callbacks may
 * retire again; a nested qsbr_reclaim from a callback returns 0. */
QSBR_API size_t qsbr_reclaim(qsbr_thread *t);

/* Waits until every object this thread retired before the call, and every
 * object handed to the shared queue before the call, has been freed.  The
 * caller counts as quiescent while it waits, and helps run the shared queue.
 * errno EINVAL for NULL, EDEADLK from a callback (returns at once). */
QSBR_API void qsbr_barrier(qsbr_thread *t);

/* liburcu's rcu_barrier: waits until every object retired anywhere in d
 * before the call has been freed, the part-filled batches of every thread
 * included (each online thread hands them over at its next quiescent
 * state).  Any thread, registered or not; a caller registered in d and
 * online counts as quiescent while it waits.  Same errors. */
QSBR_API void qsbr_barrier_domain(qsbr_domain *d);

#ifdef __cplusplus
}
#endif

#endif /* QSBR_H */
