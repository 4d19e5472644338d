/* SPDX-License-Identifier: MIT */
/*
 * rc_state.c: the few globals a backend needs, compiled once per backend
 * like the workloads.  leak: the list of everything retired.  urcu-defer:
 * per-thread registration for defer_rcu, undone when the thread exits (a
 * pthread key) or, for the main thread, at exit (atexit).
 */
#include "rc.h"

#if defined(RC_BACKEND_LEAK)
pthread_mutex_t RC_SYM(rc_leak_lock) = PTHREAD_MUTEX_INITIALIZER;
rc_head *RC_SYM(rc_leak_all);
#elif defined(RC_BACKEND_URCU_DEFER)
static pthread_key_t defer_key;
static pthread_once_t defer_once = PTHREAD_ONCE_INIT;
static _Thread_local bool defer_registered;

/* At thread exit or process exit: the thread is no reader any more, so it
 * may block in here. */
static void defer_unregister(void *unused)
{
	(void)unused;
	if (defer_registered) {
		defer_registered = false;
		rcu_defer_unregister_thread();
	}
}

static void defer_unregister_main(void)
{
	defer_unregister(NULL);
}

static void defer_init(void)
{
	if (pthread_key_create(&defer_key, defer_unregister) != 0 ||
	    atexit(defer_unregister_main) != 0)
		abort();
}

void RC_SYM(rc_defer_register)(void)
{
	pthread_once(&defer_once, defer_init);
	if (defer_registered)
		return;
	if (rcu_defer_register_thread() != 0)
		abort();
	defer_registered = true;
	pthread_setspecific(defer_key, &defer_registered);
}
#else
/* ISO C wants something in a translation unit. */
extern int RC_SYM(rc_state_unused);
#endif
