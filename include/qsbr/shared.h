/* SPDX-License-Identifier: MIT */
/*
 * qsbr/shared.h: domains whose grace periods span processes, in memory the
 * caller maps shared, and that survive the death of any participant.
 *
 * A shared region is memory the caller maps in every process (memfd_create,
 * shm_open, or MAP_SHARED | MAP_ANONYMOUS before fork), at any address in
 * each.  Its first qsbr_shared_size(max_threads) bytes are the library's:
 * the write sequence, one slot per registered thread of any process, the
 * orphan list; the rest is the caller's, for the objects the processes
 * share.  Nothing in the region is a pointer: objects are named by their
 * offset from the region's start.
 *
 * qsbr_domain_create_shared and qsbr_domain_attach_shared return a
 * process-local qsbr_domain that every call of <qsbr.h> accepts: threads
 * register, go online and offline, report quiescent states (the same inline
 * fast path: one load and a compare) and retire process-private objects as
 * in any domain; the grace periods count every online thread of every
 * process.  Objects in the region are retired by offset with a kind number
 * (qsbr_shared_retire): the callback that reclaims them may run in another
 * process, so each process maps kinds to its own functions
 * (qsbr_shared_kind).
 *
 * Death: a process that dies while registered (SIGKILL, a crash, _exit
 * without unregister) is found by the survivors when it holds a grace
 * period back, and at least every QSBR_SHARED_SWEEP_MS otherwise; its slots
 * are released and what its threads had retired in the region is adopted by
 * a survivor and reclaimed exactly once.  Identity is the pid with the
 * process's start time, so a reused pid is not mistaken for the dead
 * process.  All participants must share a pid namespace and /proc.
 * docs/api.md ("Shared domains") holds the long form, docs/design.md
 * (section "Shared domains") the argument.
 */
#ifndef QSBR_SHARED_H
#define QSBR_SHARED_H

#include <qsbr.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The layout of the library's part of a region; another value is refused
 * by qsbr_domain_attach_shared (EPROTO). */
#define QSBR_SHARED_VERSION 1u

/* Most threads a region can hold, over all its processes. */
#define QSBR_SHARED_THREADS_MAX 65536u

/* Kind numbers: 0 .. QSBR_SHARED_KINDS - 1. */
#define QSBR_SHARED_KINDS 64u

/* How often, at most, a participant's liveness is checked without a reason
 * (a grace period held back checks its holder at once, at most every
 * QSBR_SHARED_PROBE_MS). */
#define QSBR_SHARED_SWEEP_MS 100u
#define QSBR_SHARED_PROBE_MS 2u

/* The header of an object retired in a region: embed it in the object (at
 * any offset; retire passes the offset of this header).  24 bytes, 8-byte
 * aligned.  Written by qsbr_shared_retire; untouched until then. */
typedef struct qsbr_shared_node {
	uint64_t next;  /* the library's */
	uint64_t goal;  /* the library's */
	uint32_t kind;  /* the library's */
	uint32_t state; /* the library's */
} qsbr_shared_node;

/* Flag of a callback: the process that ran this callback died before it
 * was known to have returned.  The callback may have run partly or wholly;
 * this call must finish its work and be harmless if it was done (as after
 * EOWNERDEAD from a robust mutex).  A callback is called once without this
 * flag, and again with it only after such a death. */
#define QSBR_SHARED_RESUMED 1u

/* The function of a kind in this process: off is the offset of the
 * object's qsbr_shared_node in the region; flags 0 or QSBR_SHARED_RESUMED.
 * Runs in any thread of this process registered in d, outside any lock of
 * the library; it may call any call of the library but the blocking ones
 * (synchronize, barrier, unregister, delete: EDEADLK). */
typedef void qsbr_shared_fn(qsbr_domain *d, uint64_t off, unsigned flags, void *arg);

/* What a region holds now (qsbr_shared_info).  A snapshot. */
typedef struct qsbr_shared_info {
	uint64_t max_threads;  /* slots in the region */
	uint64_t threads;      /* slots in use, any process */
	uint64_t online;       /* of them, online now */
	uint64_t retired;      /* objects ever retired in the region */
	uint64_t reclaimed;    /* of them, whose callback has returned */
	uint64_t orphans;      /* waiting in the orphan list now */
	uint64_t deaths;       /* dead participants' slots recovered */
	uint64_t resumed;      /* callbacks resumed after their runner died */
	uint64_t lib_bytes;    /* qsbr_shared_size(max_threads) */
	uint64_t size;         /* the region's size, as created */
	uint64_t repairs;      /* lock holders that died, their work finished */
	uint64_t reserved[5];  /* zero: room for later counters */
} qsbr_shared_info;

/* Bytes of a region's library part for max_threads threads (1 ..
 * QSBR_SHARED_THREADS_MAX), a multiple of 64: the caller's part starts
 * there.  0 with errno EINVAL for another max_threads. */
QSBR_API size_t qsbr_shared_size(uint32_t max_threads);

/* Lays a new domain out in mem (size bytes, 64-byte aligned, at least
 * qsbr_shared_size(max_threads)) and returns this process's view of it.
 * mem's other processes must not use it before this returns.  opts: as for
 * qsbr_domain_new (NULL: defaults); they are this process's, but for
 * initial_seq, which is the region's.  NULL with errno EINVAL (NULL mem, mem
 * not aligned, size too small, max_threads out of range, bad options),
 * EEXIST (this process has a view of a region at mem: left as it was) or
 * ENOMEM (this process's view). */
QSBR_API qsbr_domain *qsbr_domain_create_shared(void *mem, size_t size, uint32_t max_threads,
						const qsbr_options *opts);

/* This process's view of a region that qsbr_domain_create_shared laid out
 * (in this or another process, at this or another address).  size: the
 * mapping's size, at least the region's as created.  NULL with errno EINVAL
 * (NULL mem, mem not aligned, bad options), EBADMSG (no domain there: a
 * zeroed or garbage region, or a size that does not match), EPROTO (a
 * layout of another QSBR_SHARED_VERSION), EAGAIN (being created; try
 * again), EOWNERDEAD (its creator died while laying it out: create it
 * again), EEXIST (this process already has a view of this region at this
 * address: use that one), or ENOMEM.  qsbr_domain_delete ends the view and
 * leaves the region to the others. */
QSBR_API qsbr_domain *qsbr_domain_attach_shared(void *mem, size_t size, const qsbr_options *opts);

/* True for a domain of qsbr_domain_create_shared or _attach_shared. */
QSBR_API bool qsbr_domain_is_shared(const qsbr_domain *d);

/* The region's start in this process, and its size; NULL with errno
 * EINVAL for NULL d or a domain that is not shared. */
QSBR_API void *qsbr_shared_base(const qsbr_domain *d, size_t *size);

/* Makes fn(d, off, flags, arg) the function of kind in this process.
 * Every process that may reclaim objects of a kind must set it: an orphan
 * of a kind this process lacks waits for a process that has it.  Any
 * thread, before the kind is used.  0, or EINVAL (NULL d or fn, kind out of
 * range, d not shared). */
QSBR_API int qsbr_shared_kind(qsbr_domain *d, uint32_t kind, qsbr_shared_fn *fn, void *arg);

/* Retires the object whose qsbr_shared_node is at offset off of the region,
 * unlinked from every shared structure by the caller: its kind's callback
 * runs, in this or another process, after every thread online now in any
 * process has passed a quiescent state.  t: the caller's handle in d,
 * online or not.  The retire is complete, for death, when it returns (the
 * object is then in the region's lists and will be reclaimed even if this
 * process dies); an object whose retire was cut short by death was never
 * retired.  0, or EINVAL (NULL t, a domain that is not shared, off not
 * 8-aligned or not inside the caller's part of the region, kind without a
 * function in this process). */
QSBR_API int qsbr_shared_retire(qsbr_thread *t, uint64_t off, uint32_t kind);

/* Checks every participant of d's region now, releasing the slots of the
 * dead and adopting what they retired.  Any thread.  Returns how many
 * slots were recovered; 0 with errno EINVAL for a domain that is not
 * shared. */
QSBR_API size_t qsbr_shared_recover(qsbr_domain *d);

/* Fills *out.  Any thread.  0, or EINVAL (NULL, not shared). */
QSBR_API int qsbr_shared_info_get(qsbr_domain *d, qsbr_shared_info *out);

#ifdef __cplusplus
}
#endif

#endif /* QSBR_SHARED_H */
