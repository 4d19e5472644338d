/* SPDX-License-Identifier: MIT */
/*
 * client: libqsbr driven the way a liburcu user drives liburcu, with the
 * default options (qsbr_domain_new(NULL)).
 *
 * NSLOTS shared slots each hold the current version of a record.  An updater
 * replaces a version under the slot's update lock (the usual liburcu pattern:
 * the lock orders updaters, readers take no lock), then gets rid of the old
 * version in one of the ways a liburcu program would:
 *
 *   A-qs, A-off  registered and online: qsbr_retire / qsbr_retire_node
 *         (call_rcu) and never qsbr_reclaim or a barrier.  After each burst
 *         it goes idle, A-qs reporting only quiescent states, A-off offline
 *         and calling nothing, and checks that everything it retired is
 *         freed within --bound-ms anyway (eventual reclamation).
 *   B     unregistered: qsbr_synchronize_domain (synchronize_rcu), then
 *         free() itself.
 *   C     registered but offline: qsbr_retire while detached.
 *   D     unregistered, polled grace periods: qsbr_advance for a goal
 *         (start_poll_synchronize_rcu), free() once qsbr_poll_domain says
 *         the goal is reached (poll_state_synchronize_rcu).
 *   E     unregistered: qsbr_barrier_domain (rcu_barrier); every object
 *         retired through the library before the call, by any thread
 *         (part-filled batches of idle threads included), must have been
 *         freed when it returns.
 *   F     short-lived threads that retire a few objects, then unregister
 *         (F-unreg) or exit still registered (F-exit: the thread-exit
 *         destructor); what they retired must be freed within --bound-ms of
 *         the join, and the destructor must have unregistered them.
 *
 * Readers are registered and online.  A read-side section loads one to three
 * slots with acquire, checks each version, holds them a while, checks them
 * again and ends with qsbr_quiescent; now and then a reader goes offline
 * (qsbr_detach) around a short sleep.
 *
 * What "stale" means.  Versions of a slot are numbered (gen) in the order
 * they are published.  Every free path, before it touches the version, marks
 * it FREEING in a side table and raises its slot's free_floor to the
 * version's gen; then it poisons the canary and frees the memory.  A reader
 * holds what it loaded until its next quiescent state (or detach), and over
 * that time each version v it holds must
 *   - carry the live canary and its payload, never the poison (READ);
 *   - not be stale: neither v nor any newer version of v's slot may have
 *     begun to be freed, i.e. state(v) < FREEING and free_floor[slot] <
 *     v.gen.  A newer version was unlinked after v was, so its grace period
 *     too must wait for this reader (STALE);
 *   - not be older than a version of that slot the same reader saw before
 *     (ORDER).
 * Both are checked right after the load and again just before the quiescent
 * state that ends the section.  The version's fields are plain memory, so
 * under ThreadSanitizer every reader access must also happen before the free
 * through the library's grace period.
 *
 * Exactly once: each version has an id; frees are counted per id (a second
 * free is reported at once).  At the end, after joining every thread,
 * qsbr_barrier_domain and qsbr_domain_delete, every id must have been freed
 * exactly once, and the statistics read after the barrier must say
 * retired == freed.
 *
 * Usage: client [--seconds S] [--readers N] [--bound-ms MS] [--watchdog S]
 *               [--seed X]
 * A watchdog thread ends the run with a message naming what each thread was
 * doing when it has not finished S + watchdog seconds (default 60) after the
 * start.  Exit status 0 only when every check passed.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qsbr.h"
#include "mix64.h"

#define NSLOTS 4
#define MAX_IDS (UINT32_C(1) << 22)
#define MAX_READERS 16
#define MAX_REPORTS 20
#define LIVE UINT64_C(0x11fe0b5e55ed0000)   /* canary: LIVE ^ id while live */
#define POISON UINT64_C(0xf4eef4eef4eef4ee) /* canary once freeing began */
#define POLL_RING 4096                      /* D's versions waiting for their goal */
#define SYNC_MAX 4                          /* B's versions per synchronize */
#define BURST_MAX 200                       /* A's retires per burst */
#define EXIT_RETIRES_MAX 40                 /* F's retires per thread */

/* ---- Who, and what is checked ------------------------------------------ */

/* Who unlinked (and so disposes of) a version. */
enum kind {
	K_A_QS,
	K_A_OFF,
	K_B_SYNC,
	K_C_OFFLINE,
	K_D_POLL,
	K_F_UNREG,
	K_F_EXIT,
	K_FINAL, /* still in its slot at the end: freed by main */
	K_COUNT
};

static const char *const kind_name[K_COUNT] = {
	[K_A_QS] = "A-qs (retire, then idle online)",
	[K_A_OFF] = "A-off (retire, then idle offline)",
	[K_B_SYNC] = "B (synchronize_domain + free)",
	[K_C_OFFLINE] = "C (retire while offline)",
	[K_D_POLL] = "D (advance + poll_domain + free)",
	[K_F_UNREG] = "F-unreg (retire, unregister)",
	[K_F_EXIT] = "F-exit (retire, exit registered)",
	[K_FINAL] = "main (final free)",
};

enum check {
	CK_READ,     /* a held version is intact: live canary, payload, slot */
	CK_STALE,    /* ... and neither it nor a newer version is being freed */
	CK_ORDER,    /* a reader never sees an older version of a slot again */
	CK_EVENTUAL, /* an idle retirer's objects are freed within the bound */
	CK_SYNC,     /* synchronize_domain returned; the freed version was unlinked */
	CK_POLL,     /* advance and poll_domain answer consistently */
	CK_BARRIER,  /* barrier_domain returned: everything retired before is freed */
	CK_EXIT,     /* unregistered or exited threads: objects freed, slot released */
	CK_ONCE,     /* every version freed exactly once */
	CK_STATS,    /* qsbr_stats_get agrees with the test's counts */
	CK_API,      /* calls return what the contract says */
	CK_COUNT
};

static const char *const check_name[CK_COUNT] = {
	[CK_READ] = "read (canary/payload)",
	[CK_STALE] = "stale (freeing begun)",
	[CK_ORDER] = "order (gen never back)",
	[CK_EVENTUAL] = "eventual reclamation",
	[CK_SYNC] = "synchronize + free",
	[CK_POLL] = "advance + poll",
	[CK_BARRIER] = "barrier_domain",
	[CK_EXIT] = "thread unregister/exit",
	[CK_ONCE] = "exactly once",
	[CK_STATS] = "stats",
	[CK_API] = "api",
};

/* One per thread of the test; the watchdog prints name, doing and beats. */
struct actor {
	const char *name;
	enum kind kind;
	uint64_t rng;
	uint64_t pass[CK_COUNT];  /* merged into passes[] when the thread ends */
	uint64_t ops;             /* versions disposed of, sections read, ... */
	uint64_t cycles;          /* idle cycles, barriers, threads spawned */
	uint64_t max_wait_ns;     /* longest eventual/barrier wait seen */
	uint64_t last_gen[NSLOTS]; /* readers: newest gen seen per slot */
	_Atomic(const char *) doing;
	_Atomic uint64_t beats;
	pthread_t tid;
};

/* ---- Shared state ------------------------------------------------------ */

struct version {
	qsbr_node node;     /* for qsbr_retire_node */
	uint32_t id;
	uint32_t slot;
	uint64_t gen;       /* 1, 2, ... per slot, in publication order */
	uint64_t canary;    /* LIVE ^ id, POISON once its freeing began */
	uint64_t payload[2];
	uint8_t disposer;   /* enum kind; written by the unlinker, after the unlink */
};

struct slot {
	_Atomic(struct version *) cur;
	pthread_mutex_t lock; /* updaters only */
};

enum vstate { V_NONE, V_LIVE, V_UNLINKED, V_FREEING, V_FREED };

static qsbr_domain *dom;
static struct slot slots[NSLOTS];

/* Side tables indexed by id: never freed, so they can be read about a
 * version whose memory is gone. */
static _Atomic uint8_t vstate[MAX_IDS];
static _Atomic uint8_t nfree[MAX_IDS];
static _Atomic uint8_t disposer_of[MAX_IDS];
/* Every library retire gets a ticket once its call has returned:
 * ticket_log[ticket] = id + 1.  A barrier caller that read `tickets` == T
 * (acquire; the fetch_adds are release) knows tickets below T were retired
 * before its call. */
static _Atomic uint32_t ticket_log[MAX_IDS];
static _Atomic uint64_t tickets;
static _Atomic uint64_t free_floor[NSLOTS]; /* highest gen whose freeing began */

static _Atomic uint64_t next_id;
static _Atomic bool exhausted;
static _Atomic uint64_t retired_by[K_COUNT]; /* library retires, by disposer */
static _Atomic uint64_t freed_by[K_COUNT];   /* frees (any path), by disposer */
static _Atomic uint64_t lib_retired, cb_runs;
static _Atomic uint32_t long_lived_registered; /* see spawner_main */

static _Atomic bool stop, started;
static _Atomic uint64_t passes[CK_COUNT], fails[CK_COUNT];
static _Atomic uint64_t failures;
static _Atomic(const char *) phase = "starting";

static struct {
	double seconds;
	unsigned readers;
	uint64_t bound_ms;
	double watchdog_s;
	uint64_t seed;
} cfg = { 2.0, 2, 5000, 60.0, 0 };

/* ---- Helpers ----------------------------------------------------------- */

static void __attribute__((format(printf, 2, 3))) fail(enum check ck, const char *fmt, ...)
{
	uint64_t n = atomic_fetch_add_explicit(&failures, 1, memory_order_relaxed);
	char buf[512];
	va_list ap;

	atomic_fetch_add_explicit(&fails[ck], 1, memory_order_relaxed);
	atomic_store_explicit(&stop, true, memory_order_relaxed);
	if (n >= MAX_REPORTS)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "client: FAIL [%s]: %s\n", check_name[ck], buf);
}

static bool stopping(void)
{
	return atomic_load_explicit(&stop, memory_order_relaxed);
}

static void doing(struct actor *a, const char *what)
{
	atomic_store_explicit(&a->doing, what, memory_order_relaxed);
	atomic_fetch_add_explicit(&a->beats, 1, memory_order_relaxed);
}

static void actor_done(struct actor *a)
{
	for (int i = 0; i < CK_COUNT; i++)
		atomic_fetch_add_explicit(&passes[i], a->pass[i], memory_order_relaxed);
	memset(a->pass, 0, sizeof(a->pass));
	doing(a, "finished");
}

static unsigned rng_below(struct actor *a, unsigned n)
{
	a->rng = a->rng * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
	return (unsigned)((mix64(a->rng) >> 32) % n);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_us(unsigned us)
{
	struct timespec ts = { (time_t)(us / 1000000u), (long)(us % 1000000u) * 1000L };

	nanosleep(&ts, NULL);
}

static void note_wait(struct actor *a, uint64_t ns)
{
	if (ns > a->max_wait_ns)
		a->max_wait_ns = ns;
}

static uint64_t payload_word(uint32_t id, unsigned i)
{
	return mix64((uint64_t)id * 2 + i + 1);
}

/* Start gate: the long-lived threads register first, then all start. */
static void wait_start(void)
{
	while (!atomic_load_explicit(&started, memory_order_acquire))
		sleep_us(100);
}

/* ---- Versions ------------------------------------------------------------ */

/* A new, unpublished version for slot s; NULL once the ids are used up. */
static struct version *version_new(unsigned s)
{
	uint64_t id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
	struct version *v;

	if (id >= MAX_IDS) {
		atomic_store_explicit(&exhausted, true, memory_order_relaxed);
		return NULL;
	}
	v = malloc(sizeof(*v));
	if (v == NULL) {
		fprintf(stderr, "client: out of memory\n");
		exit(2);
	}
	memset(v, 0, sizeof(*v));
	v->id = (uint32_t)id;
	v->slot = s;
	v->canary = LIVE ^ id;
	v->payload[0] = payload_word(v->id, 0);
	v->payload[1] = payload_word(v->id, 1);
	return v;
}

/* Publishes a new version in slot s; returns the unlinked old one, marked
 * as disposed of by a's kind and now a's to dispose of, or NULL when out of
 * ids. */
static struct version *replace(struct actor *a, unsigned s)
{
	struct version *v = version_new(s), *cur, *old;
	uint8_t expect = V_LIVE;

	if (v == NULL)
		return NULL;
	pthread_mutex_lock(&slots[s].lock);
	/* Under the update lock the current version cannot go away: only its
	 * unlinker (a lock holder) disposes of it. */
	cur = atomic_load_explicit(&slots[s].cur, memory_order_relaxed);
	v->gen = cur->gen + 1;
	atomic_store_explicit(&vstate[v->id], V_LIVE, memory_order_relaxed);
	/* Release publishes v's fields (rcu_assign_pointer). */
	old = atomic_exchange_explicit(&slots[s].cur, v, memory_order_acq_rel);
	pthread_mutex_unlock(&slots[s].lock);
	if (old != cur)
		fail(CK_API, "%s: slot %u changed under its update lock", a->name, s);
	if (!atomic_compare_exchange_strong_explicit(&vstate[old->id], &expect, V_UNLINKED,
						     memory_order_relaxed, memory_order_relaxed))
		fail(CK_ONCE, "%s: unlinked version id %" PRIu32 " was in state %u, not live",
		     a->name, old->id, (unsigned)expect);
	old->disposer = (uint8_t)a->kind;
	atomic_store_explicit(&disposer_of[old->id], (uint8_t)a->kind, memory_order_relaxed);
	return old;
}

static void raise_floor(unsigned s, uint64_t gen)
{
	uint64_t cur = atomic_load(&free_floor[s]);

	while (cur < gen && !atomic_compare_exchange_weak(&free_floor[s], &cur, gen))
		;
}

/* Every way a version dies goes through here. */
static void version_free(struct version *v, const char *how)
{
	uint32_t id = v->id;
	uint8_t st;
	enum kind k;

	if (id >= MAX_IDS || v->canary != (LIVE ^ id)) {
		fail(CK_ONCE, "%s: version %p id %" PRIu32 " canary %#" PRIx64
			      ": freed twice or corrupt", how, (void *)v, id, v->canary);
		return; /* leak it rather than crash */
	}
	/* Freeing begins: mark it before touching the memory (seq_cst). */
	st = atomic_exchange(&vstate[id], V_FREEING);
	if (st != V_UNLINKED) {
		fail(CK_ONCE, "%s: version id %" PRIu32 " freed in state %u (not unlinked)", how, id,
		     (unsigned)st);
		return;
	}
	raise_floor(v->slot, v->gen);
	k = (enum kind)v->disposer;
	v->canary = POISON;
	v->payload[0] = v->payload[1] = POISON;
	free(v);
	if (atomic_fetch_add_explicit(&nfree[id], 1, memory_order_acq_rel) != 0)
		fail(CK_ONCE, "%s: version id %" PRIu32 " freed twice", how, id);
	atomic_store_explicit(&vstate[id], V_FREED, memory_order_release);
	/* Release: a thread that sees the count sees the free done. */
	atomic_fetch_add_explicit(&freed_by[k], 1, memory_order_release);
}

static void node_cb(qsbr_node *n)
{
	struct version *v = (struct version *)(void *)((char *)n - offsetof(struct version, node));

	atomic_fetch_add_explicit(&cb_runs, 1, memory_order_relaxed);
	version_free(v, "qsbr_retire_node callback");
}

static void ptr_cb(void *p)
{
	atomic_fetch_add_explicit(&cb_runs, 1, memory_order_relaxed);
	version_free(p, "qsbr_retire callback");
}

/* call_rcu: hands v to the library, in the node or the pointer form. */
static void retire_version(struct actor *a, qsbr_thread *t, struct version *v, bool node_form)
{
	uint32_t id = v->id; /* v is the library's once the call starts */
	uint64_t tk;

	if (node_form) {
		qsbr_retire_node(t, &v->node, node_cb);
	} else {
		int rc = qsbr_retire(t, v, ptr_cb);

		if (rc == ENOMEM) {
			qsbr_retire_node(t, &v->node, node_cb); /* still ours */
		} else if (rc != 0) {
			fail(CK_API, "%s: qsbr_retire returned %d", a->name, rc);
			return;
		}
	}
	atomic_fetch_add_explicit(&retired_by[a->kind], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&lib_retired, 1, memory_order_relaxed);
	tk = atomic_fetch_add_explicit(&tickets, 1, memory_order_release);
	atomic_store_explicit(&ticket_log[tk], id + 1, memory_order_release);
	a->ops++;
}

/* Waits until freed_by[k] reaches want; false after the bound.  The only
 * library call it makes is qsbr_quiescent(qs), when qs is not NULL. */
static bool wait_freed(struct actor *a, enum kind k, uint64_t want, qsbr_thread *qs,
		       const char *situation)
{
	uint64_t t0 = now_ns(), bound = cfg.bound_ms * 1000000u;

	doing(a, "waiting, idle, for its retired objects to be freed");
	for (;;) {
		uint64_t got = atomic_load_explicit(&freed_by[k], memory_order_acquire);
		uint64_t el = now_ns() - t0;

		if (got >= want) {
			note_wait(a, el);
			a->pass[CK_EVENTUAL]++;
			return true;
		}
		if (el > bound) {
			fail(CK_EVENTUAL,
			     "%s: %" PRIu64 " of the %" PRIu64 " objects it retired still not freed"
			     " %" PRIu64 " ms after %s (no qsbr_reclaim or barrier was called)",
			     kind_name[k], want - got, want, cfg.bound_ms, situation);
			return false;
		}
		if (qs != NULL)
			qsbr_quiescent(qs);
		sleep_us(200);
	}
}

/* Checks that every library retire with a ticket in [from, to) has been
 * freed exactly once; `who` returned just now and promised it. */
static void check_tickets(struct actor *a, uint64_t from, uint64_t to, const char *who)
{
	for (uint64_t tk = from; tk < to; tk++) {
		uint32_t x;
		uint8_t n;

		/* Its retire returned before the ticket was taken; the id lands
		 * right after. */
		while ((x = atomic_load_explicit(&ticket_log[tk], memory_order_acquire)) == 0)
			sched_yield();
		n = atomic_load_explicit(&nfree[x - 1], memory_order_acquire);
		if (n != 1) {
			fail(CK_BARRIER,
			     "%s returned, but version id %" PRIu32 " retired by %s before the call"
			     " was freed %u times", who, x - 1,
			     kind_name[atomic_load_explicit(&disposer_of[x - 1], memory_order_relaxed)],
			     (unsigned)n);
			return;
		}
		a->pass[CK_BARRIER]++;
	}
}

/* ---- Readers ------------------------------------------------------------- */

static bool check_held(struct actor *a, const struct version *v, unsigned s, const char *when)
{
	uint32_t id;
	uint8_t st;
	uint64_t floor;

	/* Compiler barrier: read the fields again each time. */
	atomic_signal_fence(memory_order_seq_cst);
	id = v->id;
	if (id >= MAX_IDS || v->canary != (LIVE ^ id) || v->slot != s ||
	    v->payload[0] != payload_word(id, 0) || v->payload[1] != payload_word(id, 1)) {
		fail(CK_READ, "%s: slot %u version %p id %" PRIu32 " canary %#" PRIx64
			      " %s: poisoned, freed or corrupt while held",
		     a->name, s, (const void *)v, id, v->canary, when);
		return false;
	}
	a->pass[CK_READ]++;
	st = atomic_load_explicit(&vstate[id], memory_order_acquire);
	floor = atomic_load_explicit(&free_floor[s], memory_order_acquire);
	if (st >= V_FREEING || floor >= v->gen) {
		fail(CK_STALE, "%s: slot %u version id %" PRIu32 " gen %" PRIu64 " %s: stale, %s"
			       " (free_floor %" PRIu64 ") while it is held",
		     a->name, s, id, v->gen, when,
		     st >= V_FREEING ? "its freeing has begun" : "a newer version is being freed",
		     floor);
		return false;
	}
	a->pass[CK_STALE]++;
	return true;
}

/* A long-lived actor's registration (NULL, reported, when it fails: the
 * actor is then done) and its unregistration. */
static qsbr_thread *long_lived_register(struct actor *a)
{
	qsbr_thread *t;

	atomic_fetch_add(&long_lived_registered, 1);
	t = qsbr_register(dom);
	if (t == NULL) {
		fail(CK_API, "%s: qsbr_register failed, errno %d", a->name, errno);
		atomic_fetch_sub(&long_lived_registered, 1);
		actor_done(a);
	}
	return t;
}

static void long_lived_leave(struct actor *a, qsbr_thread *t)
{
	doing(a, "qsbr_unregister");
	qsbr_unregister(t);
	atomic_fetch_sub(&long_lived_registered, 1);
	actor_done(a);
}

static void *reader_main(void *arg)
{
	struct actor *a = arg;
	qsbr_thread *t;
	uint64_t sections = 0;

	t = long_lived_register(a);
	if (t == NULL)
		return NULL;
	wait_start();
	doing(a, "reading");
	while (!(++sections % 256 == 0 && stopping())) {
		const struct version *held[3];
		unsigned slot_of[3], n = 1 + rng_below(a, 3), spin;
		bool ok = true;

		for (unsigned i = 0; i < n && ok; i++) {
			unsigned s = rng_below(a, NSLOTS);
			const struct version *v =
				atomic_load_explicit(&slots[s].cur, memory_order_acquire);

			held[i] = v;
			slot_of[i] = s;
			if (v == NULL) {
				fail(CK_READ, "%s: slot %u is empty", a->name, s);
				ok = false;
				break;
			}
			ok = check_held(a, v, s, "just loaded");
			if (!ok)
				break;
			if (v->gen < a->last_gen[s]) {
				fail(CK_ORDER, "%s: slot %u gave gen %" PRIu64 " after gen %" PRIu64,
				     a->name, s, v->gen, a->last_gen[s]);
				ok = false;
				break;
			}
			a->pass[CK_ORDER]++;
			a->last_gen[s] = v->gen;
		}
		/* Hold them a while: updaters get to replace them meanwhile. */
		spin = rng_below(a, 512);
		for (unsigned i = 0; i < spin; i++)
			atomic_signal_fence(memory_order_seq_cst);
		for (unsigned i = 0; i < n && ok; i++)
			ok = check_held(a, held[i], slot_of[i], "at the end of its section");
		qsbr_quiescent(t); /* the section ends: nothing held from here */
		a->ops++;
		if (sections % 128 == 0)
			atomic_fetch_add_explicit(&a->beats, 1, memory_order_relaxed);
		if (rng_below(a, 4096) == 0) {
			doing(a, "offline, sleeping");
			qsbr_detach(t);
			sleep_us(50 + rng_below(a, 300));
			qsbr_attach(t);
			doing(a, "reading");
			a->cycles++;
		}
	}
	long_lived_leave(a, t);
	return NULL;
}

/* ---- A: retire and go idle ---------------------------------------------- */

static void *updater_a_main(void *arg)
{
	struct actor *a = arg;
	bool offline_idle = a->kind == K_A_OFF;
	uint64_t mine = 0;
	qsbr_thread *t;

	t = long_lived_register(a);
	if (t == NULL)
		return NULL;
	wait_start();
	while (!stopping()) {
		unsigned burst = 1 + rng_below(a, BURST_MAX);

		doing(a, "replacing and retiring");
		for (unsigned i = 0; i < burst; i++) {
			struct version *old = replace(a, rng_below(a, NSLOTS));

			if (old == NULL)
				break;
			retire_version(a, t, old, rng_below(a, 2) == 0);
			mine++;
			qsbr_quiescent(t);
		}
		/* Idle: no reclaim, no barrier; only quiescent states (A-qs)
		 * or nothing at all, offline (A-off). */
		if (offline_idle)
			qsbr_detach(t);
		if (!wait_freed(a, a->kind, mine, offline_idle ? NULL : t,
				offline_idle ? "it went offline" : "it went idle (quiescent states only)"))
			break;
		if (offline_idle)
			qsbr_attach(t);
		a->cycles++;
		if (atomic_load_explicit(&exhausted, memory_order_relaxed))
			sleep_us(1000);
	}
	long_lived_leave(a, t);
	return NULL;
}

/* ---- B: synchronize, then free ------------------------------------------ */

static void *updater_b_main(void *arg)
{
	struct actor *a = arg;

	wait_start();
	while (!stopping()) {
		struct version *olds[SYNC_MAX];
		unsigned n = 1 + rng_below(a, SYNC_MAX), got = 0;
		uint64_t t0;

		doing(a, "replacing");
		for (unsigned i = 0; i < n; i++) {
			olds[got] = replace(a, rng_below(a, NSLOTS));
			if (olds[got] != NULL)
				got++;
		}
		if (got == 0) {
			sleep_us(1000);
			continue;
		}
		doing(a, "qsbr_synchronize_domain (unregistered)");
		t0 = now_ns();
		qsbr_synchronize_domain(dom);
		note_wait(a, now_ns() - t0);
		doing(a, "freeing after synchronize");
		for (unsigned i = 0; i < got; i++) {
			version_free(olds[i], "free after qsbr_synchronize_domain");
			a->pass[CK_SYNC]++;
			a->ops++;
		}
		a->cycles++;
	}
	actor_done(a);
	return NULL;
}

/* ---- C: retire while offline -------------------------------------------- */

static void *updater_c_main(void *arg)
{
	struct actor *a = arg;
	uint64_t mine = 0;
	qsbr_thread *t;

	t = long_lived_register(a);
	if (t == NULL)
		return NULL;
	qsbr_detach(t);
	wait_start();
	doing(a, "replacing and retiring, offline");
	while (!stopping()) {
		struct version *old = replace(a, rng_below(a, NSLOTS));

		if (old == NULL) {
			sleep_us(1000);
			continue;
		}
		retire_version(a, t, old, rng_below(a, 2) == 0);
		mine++;
		if (mine % 1024 == 0) {
			/* A short visit online, as a liburcu program does to
			 * read, then offline again. */
			qsbr_attach(t);
			qsbr_quiescent(t);
			qsbr_detach(t);
			a->cycles++;
		}
		if (mine % 64 == 0)
			sched_yield();
	}
	/* Offline retires are taken by the helper once the thread stays away
	 * for flush_ms: all of it is freed within the bound. */
	wait_freed(a, a->kind, mine, NULL, "its last offline retire");
	long_lived_leave(a, t);
	return NULL;
}

/* ---- D: polled grace periods -------------------------------------------- */

struct polled {
	struct version *v;
	qsbr_seq goal;
};

static bool poll_goal(struct actor *a, qsbr_seq goal)
{
	bool r;

	errno = 0;
	r = qsbr_poll_domain(dom, goal);
	if (!r && errno != 0)
		fail(CK_POLL, "%s: qsbr_poll_domain(%" PRIu64 ") failed with errno %d", a->name, goal,
		     errno);
	return r;
}

/* Frees what has reached its goal; with `all`, waits (bounded) for all. */
static void drain_polled(struct actor *a, struct polled *ring, unsigned *head, unsigned *len,
			 bool all)
{
	uint64_t t0 = now_ns();

	while (*len > 0) {
		struct polled *newest = &ring[(*head + *len - 1) % POLL_RING];

		if (poll_goal(a, newest->goal)) {
			/* The newest goal is reached: so is every older one. */
			while (*len > 0) {
				struct polled *p = &ring[*head];

				if (!poll_goal(a, p->goal)) {
					fail(CK_POLL, "%s: goal %" PRIu64 " reached, but the older goal"
						      " %" PRIu64 " is not", a->name, newest->goal, p->goal);
					return;
				}
				a->pass[CK_POLL]++;
				version_free(p->v, "free after qsbr_poll_domain");
				a->ops++;
				*head = (*head + 1) % POLL_RING;
				(*len)--;
			}
			return;
		}
		while (*len > 0 && poll_goal(a, ring[*head].goal)) {
			a->pass[CK_POLL]++;
			version_free(ring[*head].v, "free after qsbr_poll_domain");
			a->ops++;
			*head = (*head + 1) % POLL_RING;
			(*len)--;
		}
		if (!all)
			return;
		if (now_ns() - t0 > cfg.bound_ms * 1000000u) {
			fail(CK_POLL, "%s: goal %" PRIu64 " not reached %" PRIu64 " ms after it was made",
			     a->name, ring[*head].goal, cfg.bound_ms);
			return;
		}
		sleep_us(200);
	}
}

static void *updater_d_main(void *arg)
{
	struct actor *a = arg;
	static struct polled ring[POLL_RING];
	unsigned head = 0, len = 0;
	uint64_t round = 0;
	qsbr_seq prev = 0;

	wait_start();
	doing(a, "replacing, advancing, polling");
	while (!stopping()) {
		struct version *old;
		qsbr_seq g;

		if (len == POLL_RING) {
			drain_polled(a, ring, &head, &len, false);
			sleep_us(100);
			continue;
		}
		old = replace(a, rng_below(a, NSLOTS));
		if (old == NULL) {
			drain_polled(a, ring, &head, &len, false);
			sleep_us(1000);
			continue;
		}
		g = qsbr_advance(dom);
		if (g == 0 || (g & 1) == 0 || (prev != 0 && !qsbr_seq_lt(prev, g))) {
			fail(CK_POLL, "%s: qsbr_advance returned %" PRIu64 " after %" PRIu64, a->name, g,
			     prev);
			g = qsbr_advance(dom) | 1;
		} else {
			a->pass[CK_POLL]++;
		}
		prev = g;
		ring[(head + len) % POLL_RING] = (struct polled){ old, g };
		len++;
		drain_polled(a, ring, &head, &len, false);
		if (++round % 64 == 0)
			sched_yield();
	}
	doing(a, "waiting for its last goals");
	drain_polled(a, ring, &head, &len, true);
	/* Whatever a failure left behind is still unlinked: free it (leak
	 * accounting stays whole; the failure is already reported). */
	while (len > 0) {
		version_free(ring[head].v, "free after a failed poll");
		head = (head + 1) % POLL_RING;
		len--;
	}
	actor_done(a);
	return NULL;
}

/* ---- E: rcu_barrier ------------------------------------------------------- */

static void *barrier_main(void *arg)
{
	struct actor *a = arg;
	uint64_t checked = 0;

	wait_start();
	while (!stopping()) {
		uint64_t upto, t0;

		doing(a, "sleeping");
		sleep_us(1000 + rng_below(a, 10000));
		upto = atomic_load_explicit(&tickets, memory_order_acquire);
		doing(a, "qsbr_barrier_domain (unregistered)");
		t0 = now_ns();
		qsbr_barrier_domain(dom);
		note_wait(a, now_ns() - t0);
		doing(a, "checking after the barrier");
		check_tickets(a, checked, upto, "qsbr_barrier_domain");
		a->ops += upto - checked;
		checked = upto;
		a->cycles++;
	}
	actor_done(a);
	return NULL;
}

/* ---- F: threads that leave -------------------------------------------------- */

static struct actor child;

static void *child_main(void *arg)
{
	struct actor *a = arg;
	unsigned n = 1 + rng_below(a, EXIT_RETIRES_MAX);
	qsbr_thread *t = qsbr_register(dom);

	if (t == NULL) {
		fail(CK_API, "%s: qsbr_register failed, errno %d", a->name, errno);
		return NULL;
	}
	doing(a, "replacing and retiring");
	for (unsigned i = 0; i < n; i++) {
		struct version *old = replace(a, rng_below(a, NSLOTS));

		if (old == NULL)
			break;
		retire_version(a, t, old, rng_below(a, 2) == 0);
		qsbr_quiescent(t);
	}
	if (a->kind == K_F_UNREG) {
		doing(a, "qsbr_unregister");
		qsbr_unregister(t);
	} else if (rng_below(a, 2) == 0) {
		/* Exits registered, offline; else online. */
		qsbr_detach(t);
	}
	doing(a, "exiting");
	return NULL;
}

static void *spawner_main(void *arg)
{
	struct actor *a = arg;

	wait_start();
	while (!stopping()) {
		enum kind k = a->cycles % 2 == 0 ? K_F_UNREG : K_F_EXIT;
		uint32_t allowed;
		qsbr_stats s;
		pthread_t tid;

		child.kind = k;
		child.rng = mix64(a->rng + a->cycles) | 1;
		doing(a, "running a short-lived thread");
		if (pthread_create(&tid, NULL, child_main, &child) != 0) {
			fail(CK_API, "pthread_create failed");
			break;
		}
		pthread_join(tid, NULL);
		a->cycles++;
		/* Handed over at unregister or exit: freed one grace period later. */
		if (!wait_freed(a, k, atomic_load_explicit(&retired_by[k], memory_order_relaxed),
				NULL, k == K_F_UNREG ? "it unregistered and was joined"
						     : "it exited registered and was joined"))
			break;
		a->pass[CK_EXIT]++;
		/* Its slot is released: only long-lived threads are registered.
		 * They all registered before the start and only leave from now
		 * on, so the library's count cannot exceed ours read before. */
		allowed = atomic_load(&long_lived_registered);
		if (qsbr_stats_get(dom, &s) != 0) {
			fail(CK_API, "qsbr_stats_get failed");
			break;
		}
		if (s.threads > allowed) {
			fail(CK_EXIT, "%" PRIu32 " threads registered after a thread that %s was joined;"
				      " at most %" PRIu32 " expected", s.threads,
			     k == K_F_UNREG ? "unregistered" : "exited registered", allowed);
			break;
		}
		a->pass[CK_EXIT]++;
		sleep_us(500 + rng_below(a, 1500));
	}
	actor_done(&child);
	actor_done(a);
	return NULL;
}

/* ---- Watchdog ---------------------------------------------------------------- */

static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cv;
static bool wd_done;
static struct timespec wd_deadline;
static struct actor *actors[MAX_READERS + 16];
static unsigned n_actors;

static void *watchdog_main(void *arg)
{
	char buf[4096];
	size_t at = 0;
	int rc = 0;

	(void)arg;
	pthread_mutex_lock(&wd_lock);
	while (!wd_done && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&wd_cv, &wd_lock, &wd_deadline);
	if (wd_done) {
		pthread_mutex_unlock(&wd_lock);
		return NULL;
	}
	/* Hung: say where, without stdio locks or the library. */
	at += (size_t)snprintf(buf + at, sizeof(buf) - at,
			       "client: FAIL [watchdog]: not finished %.0f s after the start (run %.1f s"
			       " + %.0f s); phase: %s\n", cfg.seconds + cfg.watchdog_s, cfg.seconds,
			       cfg.watchdog_s, atomic_load(&phase));
	for (unsigned i = 0; i < n_actors && at < sizeof(buf) - 200; i++)
		at += (size_t)snprintf(buf + at, sizeof(buf) - at,
				       "client:   %-36s %-52s beats %" PRIu64 "\n", actors[i]->name,
				       atomic_load(&actors[i]->doing), atomic_load(&actors[i]->beats));
	if (at < sizeof(buf) - 64)
		at += (size_t)snprintf(buf + at, sizeof(buf) - at, "client: 0 passed, 1 failed (hang)\n");
	if (write(2, buf, at) < 0)
		_exit(1);
	_exit(1);
}

static void watchdog_start(pthread_t *tid)
{
	pthread_condattr_t ca;
	double total = cfg.seconds + cfg.watchdog_s;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wd_cv, &ca);
	pthread_condattr_destroy(&ca);
	clock_gettime(CLOCK_MONOTONIC, &wd_deadline);
	wd_deadline.tv_sec += (time_t)total;
	wd_deadline.tv_nsec += (long)((total - (double)(time_t)total) * 1e9);
	if (wd_deadline.tv_nsec >= 1000000000L) {
		wd_deadline.tv_sec++;
		wd_deadline.tv_nsec -= 1000000000L;
	}
	if (pthread_create(tid, NULL, watchdog_main, NULL) != 0) {
		fprintf(stderr, "client: cannot start the watchdog\n");
		exit(2);
	}
}

static void watchdog_stop(pthread_t tid)
{
	pthread_mutex_lock(&wd_lock);
	wd_done = true;
	pthread_cond_signal(&wd_cv);
	pthread_mutex_unlock(&wd_lock);
	pthread_join(tid, NULL);
}

/* ---- Main ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: client [--seconds S] [--readers N] [--bound-ms MS] [--watchdog S]"
		   " [--seed X]\n");
}

static bool parse_num(const char *s, double lo, double hi, double *out)
{
	char *end;

	if (s == NULL)
		return false;
	errno = 0;
	*out = strtod(s, &end);
	return errno == 0 && end != s && *end == '\0' && *out >= lo && *out <= hi;
}

static bool parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i += 2) {
		const char *o = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		double x;

		if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(o, "--seconds") == 0 && parse_num(val, 0.1, 3600, &x)) {
			cfg.seconds = x;
		} else if (strcmp(o, "--readers") == 0 && parse_num(val, 1, MAX_READERS, &x)) {
			cfg.readers = (unsigned)x;
		} else if (strcmp(o, "--bound-ms") == 0 && parse_num(val, 1, 600000, &x)) {
			cfg.bound_ms = (uint64_t)x;
		} else if (strcmp(o, "--watchdog") == 0 && parse_num(val, 1, 86400, &x)) {
			cfg.watchdog_s = x;
		} else if (strcmp(o, "--seed") == 0 && val != NULL) {
			char *end;

			errno = 0;
			cfg.seed = strtoull(val, &end, 0);
			if (errno != 0 || *end != '\0' || end == val)
				return false;
		} else {
			return false;
		}
	}
	return true;
}

static struct actor *actor_add(struct actor *a, const char *name, enum kind k)
{
	a->name = name;
	a->kind = k;
	a->rng = mix64(cfg.seed + n_actors + 1) | 1;
	atomic_init(&a->doing, "starting");
	atomic_init(&a->beats, 0);
	actors[n_actors++] = a;
	return a;
}

/* After the joins and the final barrier: the library's counts and ours. */
static void check_stats(struct actor *m)
{
	uint64_t retired = atomic_load(&lib_retired), ran = atomic_load(&cb_runs);
	qsbr_stats s;

	if (qsbr_stats_get(dom, &s) != 0) {
		fail(CK_STATS, "qsbr_stats_get failed");
		return;
	}
#define EXPECT(cond, ...)                      \
	do {                                   \
		if (cond)                      \
			m->pass[CK_STATS]++;   \
		else                           \
			fail(CK_STATS, __VA_ARGS__); \
	} while (0)
	EXPECT(s.retired == retired, "stats.retired %" PRIu64 ", but %" PRIu64 " objects were retired",
	       s.retired, retired);
	EXPECT(s.freed == s.retired, "after qsbr_barrier_domain stats.freed %" PRIu64
				     " != stats.retired %" PRIu64, s.freed, s.retired);
	EXPECT(s.freed == ran, "stats.freed %" PRIu64 ", but %" PRIu64 " callbacks ran", s.freed, ran);
	EXPECT(s.pending == 0, "after qsbr_barrier_domain stats.pending %" PRIu64, s.pending);
	EXPECT(s.threads == 0 && s.online == 0,
	       "stats: %" PRIu32 " threads (%" PRIu32 " online) after every thread left", s.threads,
	       s.online);
	EXPECT(ran == retired, "%" PRIu64 " objects retired, %" PRIu64 " callbacks ran", retired, ran);
#undef EXPECT
}

/* After qsbr_domain_delete: every version ever made freed exactly once. */
static void check_once(struct actor *m)
{
	uint64_t made = atomic_load(&next_id), bad = 0;

	if (made > MAX_IDS)
		made = MAX_IDS;
	for (uint64_t id = 0; id < made; id++) {
		uint8_t n = atomic_load_explicit(&nfree[id], memory_order_relaxed);

		if (n == 1) {
			m->pass[CK_ONCE]++;
			continue;
		}
		if (bad++ < 5)
			fail(CK_ONCE, "version id %" PRIu64 " (disposed of by %s) freed %u times", id,
			     kind_name[atomic_load(&disposer_of[id])], (unsigned)n);
		else
			atomic_fetch_add(&fails[CK_ONCE], 1);
	}
}

static void summary(double secs)
{
	uint64_t p = 0, f = 0;

	printf("client: %.2f s, seed %" PRIu64 ", %" PRIu64 " versions, %" PRIu64
	       " retired through the library\n",
	       secs, cfg.seed, atomic_load(&next_id) < MAX_IDS ? atomic_load(&next_id) : MAX_IDS,
	       atomic_load(&lib_retired));
	for (unsigned i = 0; i < n_actors; i++) {
		const struct actor *a = actors[i];

		printf("client:   %-36s ops %-9" PRIu64 " cycles %-7" PRIu64 " longest wait %.1f ms\n",
		       a->name, a->ops, a->cycles, (double)a->max_wait_ns / 1e6);
	}
	for (int k = 0; k < K_COUNT; k++)
		printf("client:   freed, disposed of by %-36s %" PRIu64 "\n", kind_name[k],
		       atomic_load(&freed_by[k]));
	for (int c = 0; c < CK_COUNT; c++) {
		uint64_t cp = atomic_load(&passes[c]), cf = atomic_load(&fails[c]);

		printf("client:   check %-24s %12" PRIu64 " passed %6" PRIu64 " failed\n",
		       check_name[c], cp, cf);
		p += cp;
		f += cf;
	}
	printf("client: %" PRIu64 " passed, %" PRIu64 " failed%s\n", p, f,
	       f == 0 ? "" : " (first failures on stderr)");
}

int main(int argc, char **argv)
{
	static struct actor readers[MAX_READERS], a_qs, a_off, b, c, d, e, f, m;
	static char reader_names[MAX_READERS][24];
	pthread_t wd;
	uint64_t t_start, t_end, upto;
	int rc;

	cfg.seed = (uint64_t)time(NULL) ^ now_ns();
	if (!parse_args(argc, argv)) {
		usage(stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	dom = qsbr_domain_new(NULL); /* the defaults, as a liburcu user would */
	if (dom == NULL) {
		fprintf(stderr, "client: qsbr_domain_new(NULL): %s\n", strerror(errno));
		return 2;
	}
	for (unsigned s = 0; s < NSLOTS; s++) {
		struct version *v = version_new(s);

		v->gen = 1;
		atomic_store(&vstate[v->id], V_LIVE);
		pthread_mutex_init(&slots[s].lock, NULL);
		atomic_init(&slots[s].cur, v);
	}

	actor_add(&m, "main", K_FINAL);
	for (unsigned i = 0; i < cfg.readers; i++) {
		snprintf(reader_names[i], sizeof(reader_names[i]), "reader %u", i);
		actor_add(&readers[i], reader_names[i], K_FINAL);
	}
	actor_add(&a_qs, kind_name[K_A_QS], K_A_QS);
	actor_add(&a_off, kind_name[K_A_OFF], K_A_OFF);
	actor_add(&b, kind_name[K_B_SYNC], K_B_SYNC);
	actor_add(&c, kind_name[K_C_OFFLINE], K_C_OFFLINE);
	actor_add(&d, kind_name[K_D_POLL], K_D_POLL);
	actor_add(&e, "E (barrier_domain, unregistered)", K_FINAL);
	actor_add(&f, "F spawner", K_FINAL);
	actor_add(&child, "F child", K_F_UNREG);

	t_start = now_ns();
	watchdog_start(&wd);
	atomic_store(&phase, "running");
	doing(&m, "starting threads");
	for (unsigned i = 0; i < cfg.readers; i++)
		pthread_create(&readers[i].tid, NULL, reader_main, &readers[i]);
	pthread_create(&a_qs.tid, NULL, updater_a_main, &a_qs);
	pthread_create(&a_off.tid, NULL, updater_a_main, &a_off);
	pthread_create(&b.tid, NULL, updater_b_main, &b);
	pthread_create(&c.tid, NULL, updater_c_main, &c);
	pthread_create(&d.tid, NULL, updater_d_main, &d);
	pthread_create(&e.tid, NULL, barrier_main, &e);
	pthread_create(&f.tid, NULL, spawner_main, &f);
	/* Every long-lived thread registered: then go. */
	while (atomic_load(&long_lived_registered) < cfg.readers + 3 && !stopping())
		sleep_us(100);
	atomic_store_explicit(&started, true, memory_order_release);

	doing(&m, "sampling stats while the run lasts");
	t_end = t_start + (uint64_t)(cfg.seconds * 1e9);
	while (!stopping() && now_ns() < t_end) {
		qsbr_stats s;

		sleep_us(20000);
		if (qsbr_stats_get(dom, &s) != 0)
			fail(CK_API, "qsbr_stats_get failed while running");
		else if (s.online > s.threads)
			fail(CK_STATS, "stats: %" PRIu32 " online of %" PRIu32 " threads", s.online,
			     s.threads);
		else
			m.pass[CK_STATS]++;
	}
	atomic_store(&stop, true);

	atomic_store(&phase, "joining the threads");
	doing(&m, "joining");
	for (unsigned i = 0; i < cfg.readers; i++)
		pthread_join(readers[i].tid, NULL);
	pthread_join(a_qs.tid, NULL);
	pthread_join(a_off.tid, NULL);
	pthread_join(b.tid, NULL);
	pthread_join(c.tid, NULL);
	pthread_join(d.tid, NULL);
	pthread_join(e.tid, NULL);
	pthread_join(f.tid, NULL);

	/* rcu_barrier from an unregistered thread, nobody registered now. */
	atomic_store(&phase, "final qsbr_barrier_domain");
	doing(&m, "final qsbr_barrier_domain");
	upto = atomic_load_explicit(&tickets, memory_order_acquire);
	qsbr_barrier_domain(dom);
	doing(&m, "final checks");
	check_tickets(&m, 0, upto, "the final qsbr_barrier_domain");
	check_stats(&m);

	/* The versions still published were never retired. */
	for (unsigned s = 0; s < NSLOTS; s++) {
		struct version *v = atomic_exchange(&slots[s].cur, NULL);
		uint8_t expect = V_LIVE;

		if (!atomic_compare_exchange_strong(&vstate[v->id], &expect, V_UNLINKED))
			fail(CK_ONCE, "final version id %" PRIu32 " in state %u", v->id,
			     (unsigned)expect);
		v->disposer = K_FINAL;
		atomic_store(&disposer_of[v->id], K_FINAL);
		version_free(v, "final free");
		pthread_mutex_destroy(&slots[s].lock);
	}

	atomic_store(&phase, "qsbr_domain_delete");
	doing(&m, "qsbr_domain_delete");
	rc = qsbr_domain_delete(dom);
	if (rc != 0)
		fail(CK_API, "qsbr_domain_delete returned %d", rc);
	else
		m.pass[CK_API]++;
	check_once(&m);
	actor_done(&m);
	atomic_store(&phase, "done");
	watchdog_stop(wd);
	summary((double)(now_ns() - t_start) / 1e9);
	return atomic_load(&failures) == 0 ? 0 : 1;
}
