/* SPDX-License-Identifier: MIT */
/*
 * rc.h: the reclamation interface every workload is written against.
 *
 * Each workload source is compiled once per backend, with -DRC_BACKEND_<X>
 * and -DRC_SUFFIX=_<x>; this header then includes that backend's rc_<x>.h.
 * Everything below is static inline, so an operation costs the same harness
 * code for every backend and differs only in the backend's own calls.
 *
 *   rc_head             retire header at offset 0 of every object (16 bytes)
 *   rc_domain           a reclamation domain (liburcu: the process, a dummy)
 *   rc_thread           a registered thread's handle
 *
 *   rc_domain_new/delete()      create, delete (no thread registered)
 *   rc_thread_init(t, d)        register the calling thread, online
 *   rc_thread_fini(t)           flush what it can and unregister
 *   rc_read_begin/end(t)        around every operation (ck_epoch's section)
 *   rc_quiescent(t)             after every operation (the QSBR report)
 *   rc_retire(t, h)             retire the object that starts at h (intrusive)
 *   rc_retire_ptr(t, p)         retire a plain pointer (p: malloc'd object)
 *   rc_offline/online(t)        idle: hold nothing, delay nobody
 *   rc_synchronize(t)           wait for a grace period
 *   rc_drain(d)                 once no thread runs: free every retired object
 *
 * rc_keep_running(st, t, n) wraps gb_keep_running_batch: the harness may
 * block a thread there (Google Benchmark's start and stop barriers), and a
 * blocked QSBR thread must be offline or every grace period waits for it.
 *
 * Retired objects end in bench_obj_free(), which counts them (harness.h).
 * Constants: RC_NAME (the backend's name in results), RC_MULTI (0: valid
 * with one thread only), RC_GRACE (1: it detects grace periods of its own,
 * so the quiescent and detection workloads include it), RC_SYNC_CALL (qsbr
 * and urcu: the library call rc_synchronize makes, for results).
 */
#ifndef BENCH_RC_H
#define BENCH_RC_H

#include "harness.h"

#define RC_CAT_(a, b) a##b
#define RC_CAT(a, b) RC_CAT_(a, b)
/* A name made unique per backend: the backends share one binary. */
#define RC_SYM(x) RC_CAT(x, RC_SUFFIX)

#if defined(RC_BACKEND_QSBR) || defined(RC_BACKEND_QSBR_CAP)
#include "rc_qsbr.h"
#elif defined(RC_BACKEND_URCU) || defined(RC_BACKEND_URCU_DEFER)
#include "rc_urcu.h"
#elif defined(RC_BACKEND_CK) || defined(RC_BACKEND_CK_BATCH)
#include "rc_ck.h"
#elif defined(RC_BACKEND_LEAK)
#include "rc_leak.h"
#elif defined(RC_BACKEND_FREENOW)
#include "rc_freenow.h"
#else
#error "define one RC_BACKEND_*"
#endif

static inline bool rc_keep_running(gb_state *st, rc_thread *t, int64_t n)
{
	bool more;

	rc_offline(t);
	more = gb_keep_running_batch(st, n);
	rc_online(t);
	return more;
}

_Static_assert(sizeof(rc_head) == 16, "every backend's retire header is two pointers");

#endif /* BENCH_RC_H */
