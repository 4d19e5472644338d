/* SPDX-License-Identifier: MIT */
/*
 * Process-shared domains (qsbr/shared.h): a region laid out in memory that
 * several processes map, at any address; their threads' slots, retires by
 * offset, and the recovery of participants that die.
 *
 *   region: [header][slots: 128 B each][online mask][group counts] | caller's part
 *            ^ offset 0                                 lib_bytes ^
 *
 * Nothing in the region is a pointer.  The header holds the write and read
 * sequences (the domain's wr and rd point at them, so grace.c runs the same
 * protocol on them), a robust process-shared mutex, the orphan list and the
 * journal of a recovery.  A slot holds, on its first line, the seq that
 * scans read and the owner's identity; on its second, the owner's list of
 * retired region objects (a FIFO linked by offsets through their
 * qsbr_shared_node: head, tail) and `running`, the object whose callback
 * the owner is running.  Each process keeps a view (struct shm): where the
 * region is mapped, its kinds' functions.
 *
 * Owner identity: 0 for a free slot, else USED | pid << 40 | start, where
 * start is the process's start time (/proc/PID/stat, clock ticks since
 * boot; 40 bits) and pid < 2^22 (Linux's PID_MAX_LIMIT): one word, so a
 * claim is one CAS, and a pid reused by a later process does not match.
 * A participant is dead when kill(pid, 0) says no such process, or its
 * /proc entry is gone, a zombie, or has another start time.
 *
 * Death.  A process stops at an instruction boundary and every store it
 * executed reaches memory, so survivors see a prefix of its program order
 * as compiled; fence_death() (atomics.h) keeps the compiler from reordering
 * the steps below.  What a survivor finds, step by step:
 *
 *  - claim: one CAS of owner.  Dead after it: a slot of a dead owner,
 *    recovered like any.
 *  - online, offline (grace.c's proto_attach, proto_detach on the slot):
 *    recovery stores seq 0 and clears the mask bit; it lowers the group
 *    count only when it cleared the bit itself, so a death inside attach or
 *    detach can leave the count one too high: a scan then reads that
 *    group's mask words for nothing, never skips an online slot.
 *  - retire: node fields, then the link (the tail node's next, or head),
 *    then tail.  The link is the retire: a node not yet linked was never
 *    retired (its object is the caller's to lose, as if the process died
 *    just before the call); a stale tail is never read by recovery, which
 *    walks from head.
 *  - reclaim: running_gen = X's retire generation, running = X, then the
 *    unlink (head, or the orphan list's head), then the callback, then
 *    running = 0.  Dead before the unlink: X is still listed, nothing ran.
 *    Dead after: X is in no list; unless it was retired again since (its
 *    generation moved: its callback had returned), the recovery puts it at
 *    the orphan list's front as RESUME, and the next reclaimer runs its
 *    callback with QSBR_SHARED_RESUMED.  So a callback is called once
 *    without the flag and once more, flagged, only when its runner died
 *    after the unlink and before running = 0.
 *  - recovery, orphan list: under the region's robust mutex.  A recovery
 *    first writes its whole plan in the journal (the chain to adopt, its
 *    new goal, the totals after), then sets journal.slot, then runs the
 *    plan's steps in order, counting them in journal.phase; each step is
 *    idempotent given the plan.  A holder that dies leaves the mutex
 *    EOWNERDEAD: the next holder finishes the journal's plan from its phase,
 *    repairs the orphan list's tail and count (a pop cut short), and marks
 *    the mutex consistent.
 *
 * Adoption: a leaving thread (unregister) and a dead one hand their list to
 * the orphan list the same way, with one new goal (an advance made by the
 * adopter after the owner was found dead or went offline), so the orphan
 * list's goals never decrease.  Any registered thread of any process
 * reclaims orphans (qsbr_reclaim, and every retire batch).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define SHM_MAGIC UINT64_C(0x314d485352425351) /* "QSBRSHM1" */
#define SHM_READY UINT32_C(0x59444552)         /* "REDY" */
#define SLOT_BYTES 128u
#define OWNER_USED (UINT64_C(1) << 62)
#define PID_BITS 22u
#define START_BITS 40u
#define SHARED_BATCH 64u       /* region retires per goal */

/* A node's state: its retire generation (bumped at every retire of it)
 * above two bits of phase. */
enum { NODE_WAITING = 0, NODE_RESUME = 1, NODE_PHASE = 3 };
#define NODE_GEN(state) ((state) >> 2)

struct shm_slot {
	/* Line 0, read by scans of every process. */
	au64 seq;               /* 0 = offline */
	au64 owner;             /* 0 = free, else the owner's identity */
	uint64_t pad0[6];
	/* Line 1, the owner's; a recoverer reads it after the owner died. */
	au64 head, tail;        /* retired region objects, oldest first */
	au64 running;           /* the object whose callback runs, or 0 */
	au64 running_gen;       /* its retire generation */
	au64 n_retired, n_reclaimed;
	uint64_t pad1[2];
};
_Static_assert(sizeof(struct shm_slot) == SLOT_BYTES, "a slot is two cache lines");

/* A recovery's plan (under the region's lock; see the top comment). */
struct shm_journal {
	uint64_t slot;          /* 1 + the slot's index while a plan runs, or 0 */
	uint64_t phase;         /* steps done */
	uint64_t head, last;    /* the chain adopted, or 0 */
	uint64_t goal;          /* its new goal */
	uint64_t prev_tail;     /* the orphan list's tail to link it after */
	uint64_t resume;        /* an object whose callback its runner began */
	uint64_t orphans, retired, reclaimed, deaths; /* totals after */
	uint64_t owner;         /* the slot's owner: phase 4 frees it once */
	uint64_t keep;          /* 1: the slot stays its owner's (a hand-over) */
};

struct shm_header {
	/* Identity and layout: read-only once ready. */
	uint64_t magic;
	uint32_t version;
	uint32_t max_slots;
	uint64_t size;          /* the region, as created */
	uint64_t lib_bytes;     /* qsbr_shared_size(max_slots) */
	uint64_t slots_off, mask_off, groups_off;
	uint32_t header_bytes;  /* sizeof(struct shm_header): same build */
	uint32_t mutex_bytes;   /* sizeof(pthread_mutex_t): same C library */
	uint64_t check;         /* a hash of the fields above */
	au32 ready;             /* SHM_READY once laid out */
	au64 creator;           /* the creator's identity, for EOWNERDEAD */

	alignas(CACHELINE) au64 wr_seq;
	alignas(CACHELINE) au64 rd_seq;

	/* The orphan list and recoveries, under lock. */
	alignas(CACHELINE) pthread_mutex_t lock;
	struct shm_journal j;
	uint64_t orphan_head, orphan_tail;
	uint64_t retired, reclaimed, deaths; /* of slots that left or died */
	uint64_t repairs;       /* EOWNERDEAD hand-overs */
	au64 n_orphans;         /* written under lock; read as a hint */

	/* Hints any process writes. */
	alignas(CACHELINE) au64 sweep_at_ms;
	au64 resumed;
};

/* A process's view of a region. */
struct shm {
	struct shm_header *h;
	char *base;
	struct shm_slot *slots;
	au64 *mask, *groups;
	au64 dummy_mask, dummy_group; /* what a slotless handle's detach touches */
	struct {
		qsbr_shared_fn *_Atomic fn; /* or NULL */
		void *arg;
	} kinds[QSBR_SHARED_KINDS];
	au64 probe_at_ms;
	uint64_t user_lo, user_span; /* retires: offsets user_lo .. + user_span */
	struct shm *next;       /* the process's views (views_lock) */
};

static pthread_mutex_t views_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shm *views;

static inline qsbr_shared_node *node_at(const struct shm *m, uint64_t off)
{
	return (qsbr_shared_node *)(void *)(m->base + off);
}

static inline uint32_t slot_index(const struct shm *m, const struct shm_slot *s)
{
	return (uint32_t)(s - m->slots);
}

/* ---- Identity and liveness ------------------------------------------------- */

/* Field 3 (state) and 22 (start time) of /proc/PID/stat.  False with errno
 * (ENOENT: no such process). */
static bool proc_stat(pid_t pid, char *state, uint64_t *start)
{
	char path[48], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		errno = ENOENT;
		return false;
	}
	buf[n] = '\0';
	/* The command name (field 2) may hold spaces and parentheses: the
	 * fields after it start after its last ')'. */
	p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ') {
		errno = EIO;
		return false;
	}
	p += 2;
	*state = *p;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (p == NULL) {
			errno = EIO;
			return false;
		}
		p++;
	}
	*start = strtoull(p, NULL, 10);
	return true;
}

static uint64_t identity(pid_t pid, uint64_t start)
{
	return OWNER_USED | (uint64_t)pid << START_BITS | (start & ((UINT64_C(1) << START_BITS) - 1));
}

static pid_t identity_pid(uint64_t id)
{
	return (pid_t)((id >> START_BITS) & ((UINT64_C(1) << PID_BITS) - 1));
}

/* This process's identity, computed once per process (a fork child
 * forgets its parent's): 0 while unknown. */
static au64 self_id;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;

static void self_forget(void)
{
	store_relaxed(&self_id, 0); /* the child's only thread */
}

static void self_init(void)
{
	pthread_atfork(NULL, NULL, self_forget);
}

/* This process's identity (0 on a pid too large to encode). */
static uint64_t self_identity(void)
{
	/* Relaxed: threads that race compute the same value. */
	uint64_t id = load_relaxed(&self_id), start = 0;
	pid_t pid;
	char state;

	if (id != 0)
		return id;
	pthread_once(&self_once, self_init);
	pid = getpid();
	if ((uint64_t)pid >> PID_BITS != 0)
		return 0;
	if (!proc_stat(pid, &state, &start))
		start = 0; /* no /proc: pids alone (docs/api.md) */
	id = identity(pid, start);
	store_relaxed(&self_id, id);
	return id;
}

/* Is the participant id (not ours) dead?  Unsure counts as alive. */
static bool is_dead(uint64_t id)
{
	pid_t pid = identity_pid(id);
	uint64_t start;
	char state;

	if (pid == identity_pid(self_identity()))
		return id != self_identity(); /* an earlier process with our pid */
	if (kill(pid, 0) != 0 && errno == ESRCH)
		return true;
	if (!proc_stat(pid, &state, &start))
		return errno == ENOENT;
	if (state == 'Z' || state == 'X')
		return true;
	/* A start of 0 was recorded without /proc: the pid alone decides. */
	return (id & ((UINT64_C(1) << START_BITS) - 1)) != 0 &&
	       (start & ((UINT64_C(1) << START_BITS) - 1)) != (id & ((UINT64_C(1) << START_BITS) - 1));
}

/* ---- The region's lock, journal and recovery -------------------------------- */

static void journal_run(struct shm *m);

/* Orphan list's tail and count, from its head: after a holder died. */
static void orphans_repair(struct shm *m)
{
	struct shm_header *h = m->h;
	uint64_t n = 0, last = 0;

	for (uint64_t o = h->orphan_head; o != 0 && n <= h->size / sizeof(qsbr_shared_node);
	     o = node_at(m, o)->next, n++)
		last = o;
	h->orphan_tail = last;
	store_relaxed(&h->n_orphans, n);
}

static void region_lock(struct shm *m)
{
	int err = pthread_mutex_lock(&m->h->lock);

	if (err != 0 && err != EOWNERDEAD) /* a region overwritten by someone */
		qsbr__fail("shared region at %p: its lock is broken (error %d)", (void *)m->base, err);
	if (err == EOWNERDEAD) {
		/* Its holder died: everything it stored is in memory (see the
		 * top comment); the fence orders our reads after the kernel's
		 * hand-over as for any death we detect. */
		fence_seq_cst();
		if (m->h->j.slot != 0)
			journal_run(m);
		orphans_repair(m);
		m->h->repairs++;
		pthread_mutex_consistent(&m->h->lock);
	}
}

static void region_unlock(struct shm *m)
{
	pthread_mutex_unlock(&m->h->lock);
}

/* Writes the plan for slot i's departure (its owner left, or died when
 * dead; with keep, only its list departs: a hand-over), under the lock,
 * then marks it whole. */
static void journal_plan(qsbr_domain *d, struct shm *m, uint32_t i, bool dead, bool keep)
{
	struct shm_header *h = m->h;
	struct shm_journal *j = &h->j;
	struct shm_slot *s = &m->slots[i];
	uint64_t x = load_relaxed(&s->running), head = load_relaxed(&s->head);
	uint64_t last = 0, count = 0, resume = 0, orphans = load_relaxed(&h->n_orphans);
	uint64_t prev_tail = h->orphan_tail, limit = h->size / sizeof(qsbr_shared_node);

	/* Started: unlinked (a runner unlinks before the callback), and not
	 * retired again since (which would make it listed again, or at least
	 * bump its generation: then its callback had returned). */
	if (x != 0 && x != head && x != h->orphan_head &&
	    NODE_GEN(node_at(m, x)->state) == load_relaxed(&s->running_gen)) {
		resume = x;
		orphans++;
	}
	for (uint64_t o = head; o != 0 && count <= limit; o = node_at(m, o)->next, count++)
		last = o;
	j->phase = 0;
	j->head = head;
	j->last = last;
	/* R3 (grace.c): ordered after the death we saw or the owner's last
	 * unlink (it went offline, a release, before we took the lock). */
	j->goal = count != 0 ? qsbr__advance(d) : 0;
	j->prev_tail = prev_tail;
	j->resume = resume;
	j->orphans = orphans + count;
	j->retired = h->retired + load_relaxed(&s->n_retired);
	j->reclaimed = h->reclaimed + load_relaxed(&s->n_reclaimed);
	j->deaths = h->deaths + (dead ? 1 : 0);
	j->owner = load_relaxed(&s->owner);
	j->keep = keep;
	fence_death();
	j->slot = (uint64_t)i + 1;
	fence_death();
}

#ifndef NDEBUG
/* Debug builds: tests/shared.c makes a process die inside a recovery's
 * step: QSBR_TEST_DIE_PHASE=k kills it once step k's work is done and
 * before the step is counted, holding the region's lock. */
static void test_death_point(uint64_t phase)
{
	const char *e = getenv("QSBR_TEST_DIE_PHASE");

	if (e != NULL && *e != '\0' && strtoull(e, NULL, 10) == phase)
		raise(SIGKILL);
}
#else
#define test_death_point(phase) ((void)0)
#endif

/* Runs the journal's plan from its phase; each step idempotent. */
static void journal_run(struct shm *m)
{
	struct shm_header *h = m->h;
	struct shm_journal *j = &h->j;
	struct shm_slot *s = &m->slots[j->slot - 1];
	uint32_t i = (uint32_t)(j->slot - 1);

	for (; j->phase < 5; fence_death(), j->phase++, fence_death()) {
		switch (j->phase) {
		case 0: /* the chain's goals */
			for (uint64_t o = j->head; o != 0; o = node_at(m, o)->next) {
				node_at(m, o)->goal = j->goal;
				if (o == j->last)
					break;
			}
			break;
		case 1: /* the chain, linked after the orphans */
			if (j->head == 0)
				break;
			node_at(m, j->last)->next = 0;
			if (j->prev_tail != 0)
				node_at(m, j->prev_tail)->next = j->head;
			else
				h->orphan_head = j->head;
			h->orphan_tail = j->last;
			break;
		case 2: /* the started object, at the front, to resume */
			if (j->resume != 0 && h->orphan_head != j->resume) {
				qsbr_shared_node *x = node_at(m, j->resume);

				x->state = (x->state & ~(uint32_t)NODE_PHASE) | NODE_RESUME;
				x->goal = load_relaxed(&h->rd_seq); /* reached */
				x->next = h->orphan_head;
				fence_death();
				h->orphan_head = j->resume;
				if (h->orphan_tail == 0)
					h->orphan_tail = j->resume;
			}
			break;
		case 3: /* the totals */
			store_relaxed(&h->n_orphans, j->orphans);
			h->retired = j->retired;
			h->reclaimed = j->reclaimed;
			h->deaths = j->deaths;
			break;
		case 4: /* the slot, free; once: its last store frees it, and
			 * a new owner may have claimed it since */
			if (load_relaxed(&s->owner) != j->owner)
				break;
			store_relaxed(&s->head, 0);
			store_relaxed(&s->tail, 0);
			store_relaxed(&s->running, 0);
			store_relaxed(&s->n_retired, 0);
			store_relaxed(&s->n_reclaimed, 0);
			if (j->keep)
				break;
			/* Release: a leaving owner already went offline with
			 * proto_detach; for a dead one these are the stores a
			 * scan pairs with, like detach's. */
			store_release(&s->seq, 0);
			if (fetch_and_release(&m->mask[i / 64], ~(UINT64_C(1) << (i % 64))) &
			    (UINT64_C(1) << (i % 64)))
				fetch_sub_release(&m->groups[i / GROUP_SLOTS], 1);
			/* Release pairs with the acquire CAS of a claim: the
			 * next owner finds the slot reset. */
			store_release(&s->owner, 0);
			break;
		}
		test_death_point(j->phase);
	}
	fence_death();
	j->slot = 0;
}

/* Slot i departs: its list goes to the orphans, and the slot is freed,
 * unless keep (a hand-over: only the list departs).  dead: its owner died.
 * id: the owner, checked again under the lock. */
static bool depart(qsbr_domain *d, struct shm *m, uint32_t i, uint64_t id, bool dead, bool keep)
{
	bool done = false;

	region_lock(m);
	if (load_relaxed(&m->slots[i].owner) == id) {
		if (dead)
			fence_seq_cst(); /* after the death we saw: see region_lock */
		journal_plan(d, m, i, dead, keep);
		journal_run(m);
		done = true;
	}
	region_unlock(m);
	return done;
}

size_t qsbr_shared_recover(qsbr_domain *d)
{
	uint64_t alive[16] = { 0 }; /* identities found alive in this pass */
	unsigned n_alive = 0;
	struct shm *m;
	size_t n = 0;
	uint64_t me;

	if (d == NULL || d->shm == NULL) {
		errno = EINVAL;
		return 0;
	}
	m = d->shm;
	me = self_identity();
	for (uint32_t i = 0; i < m->h->max_slots; i++) {
		uint64_t id = load_relaxed(&m->slots[i].owner);
		bool known = id == 0 || id == me;

		/* A process's threads share its identity: probe it once. */
		for (unsigned k = 0; k < n_alive && k < 16 && !known; k++)
			known = alive[k] == id;
		if (known)
			continue;
		if (!is_dead(id))
			alive[n_alive++ % 16] = id;
		else if (depart(d, m, i, id, true, false))
			n++;
	}
	return n;
}

/* Every QSBR_SHARED_SWEEP_MS, one caller of any process checks everyone. */
static void sweep_due(qsbr_domain *d, struct shm *m, uint64_t now)
{
	uint64_t at = load_relaxed(&m->h->sweep_at_ms);

	if (now - at < QSBR_SHARED_SWEEP_MS)
		return;
	/* Relaxed: who sweeps is a hint; a lost race skips one sweep. */
	if (cas_strong_relaxed(&m->h->sweep_at_ms, &at, now))
		qsbr_shared_recover(d);
}

/* grace.c: the slot whose seq is at `seq` holds a grace period back.  True
 * when its owner was dead and the slot is free now (scan again). */
bool qsbr__shm_holder(qsbr_domain *d, const au64 *seq)
{
	struct shm *m = d->shm;
	const struct shm_slot *s = (const struct shm_slot *)(const void *)seq;
	uint64_t id = load_relaxed(&s->owner), now, at;

	if (id == 0 || id == self_identity())
		return false; /* one of our threads: alive */
	now = qsbr__now_ms();
	at = load_relaxed(&m->probe_at_ms);
	sweep_due(d, m, now);
	if (now - at < QSBR_SHARED_PROBE_MS || !cas_strong_relaxed(&m->probe_at_ms, &at, now) ||
	    !is_dead(id))
		return false;
	return depart(d, m, slot_index(m, s), id, true, false);
}

/* Stall reports (policy.c): the slot at seq as a thread id, (pid << 32) |
 * slot index, and a name saying so. */
uint64_t qsbr__shm_describe(qsbr_domain *d, const au64 *seq, char *name, size_t size)
{
	struct shm *m = d->shm;
	const struct shm_slot *s = (const struct shm_slot *)(const void *)seq;
	pid_t pid = identity_pid(load_relaxed(&s->owner));

	snprintf(name, size, "pid %ld slot %u", (long)pid, slot_index(m, s));
	return (uint64_t)pid << 32 | slot_index(m, s);
}

/* ---- Slots ------------------------------------------------------------------- */

struct slot_table qsbr__shm_table(qsbr_domain *d)
{
	struct shm *m = d->shm;

	return (struct slot_table){ m->groups, m->mask, m->h->max_slots, (const char *)&m->slots[0].seq,
				    SLOT_BYTES };
}

static bool claim_once(struct shm *m, qsbr_thread *t, uint64_t me)
{
	for (uint32_t i = 0; i < m->h->max_slots; i++) {
		struct shm_slot *s = &m->slots[i];
		uint64_t free_id = 0;

		/* Acquire pairs with the release store of owner 0 when the slot
		 * was last freed (journal_run): we find it reset. */
		if (load_relaxed(&s->owner) == 0 && cas_strong_acquire(&s->owner, &free_id, me)) {
			store_relaxed(&t->shm_slot, s);
			t->pub = &s->seq;
			t->mask_word = &m->mask[i / 64];
			t->mask_bit = UINT64_C(1) << (i % 64);
			t->group_online = &m->groups[i / GROUP_SLOTS];
			t->shm_open_n = 0;
			t->shm_len = 0;
			return true;
		}
	}
	return false;
}

/* A region slot for t (offline).  False with errno EAGAIN when every slot
 * is taken by a live participant. */
bool qsbr__shm_claim(qsbr_thread *t)
{
	struct shm *m = t->d->shm;
	uint64_t me = self_identity();

	if (me == 0) {
		errno = EAGAIN;
		return false;
	}
	if (claim_once(m, t, me))
		return true;
	if (qsbr_shared_recover(t->d) != 0 && claim_once(m, t, me))
		return true;
	errno = EAGAIN;
	return false;
}

/* t without a region slot: its seq and mask words are its own. */
static void slotless(qsbr_thread *t)
{
	struct shm *m = t->d->shm;

	store_relaxed(&t->shm_slot, NULL);
	t->pub = &t->seq;
	t->mask_word = &m->dummy_mask;
	t->group_online = &m->dummy_group;
	t->shm_open_n = 0;
	t->shm_len = 0;
}

/* Unregister: t is offline; its region list goes to the orphans. */
void qsbr__shm_leave(qsbr_thread *t)
{
	struct shm *m = t->d->shm;
	struct shm_slot *s = load_relaxed(&t->shm_slot);

	if (s == NULL)
		return;
	depart(t->d, m, slot_index(m, s), load_relaxed(&s->owner), false, false);
	slotless(t);
}

/* Does t hold region retires?  Any thread; a hint (the owner may be
 * retiring): the steal that follows decides. */
bool qsbr__shm_holds(const qsbr_thread *t)
{
	const struct shm_slot *s = load_relaxed(&t->shm_slot);

	return s != NULL && load_relaxed(&s->head) != 0;
}

/* A count that moves while t retires in the region (handoff.c's helper
 * tells idle holders by it).  Any thread; a hint. */
uint64_t qsbr__shm_progress(const qsbr_thread *t)
{
	const struct shm_slot *s = load_relaxed(&t->shm_slot);

	return s != NULL ? load_relaxed(&s->n_retired) : 0;
}

/* retire.c's steal: t is offline and its lists are the caller's (TAKEN):
 * its region list goes to the orphans, where any registered thread of any
 * process reclaims it; the slot stays t's. */
void qsbr__shm_hand_over(qsbr_thread *t)
{
	struct shm *m = t->d->shm;
	struct shm_slot *s = load_relaxed(&t->shm_slot);

	if (s == NULL || load_relaxed(&s->head) == 0)
		return;
	depart(t->d, m, slot_index(m, s), load_relaxed(&s->owner), false, true);
	t->shm_open_n = 0;
	t->shm_len = 0;
}

/* In the child of fork(): t's region slot is its parent's.  t keeps its
 * local state; it takes a slot of its own at its next attach or quiescent
 * state (grace.c). */
void qsbr__shm_fork_child(qsbr_thread *t)
{
	slotless(t);
	/* Online: an even seq, never equal to wr_seq, sends the inline fast
	 * path to the slow path, which joins the region. */
	if (load_relaxed(&t->seq) != 0) {
		uint64_t v = load_relaxed(t->d->wr) + 1;

		store_relaxed(&t->seq, v != 0 ? v : 2);
	}
}

/* ---- Retire and reclaim -------------------------------------------------------- */

/* The open retires get one goal, kept in this process: only the owner
 * reclaims its list, and a recovery gives the nodes a goal of its own (so
 * the region's nodes carry a goal only on the orphan list).  A full ring
 * merges into its newest entry (a later goal is always safe). */
static void close_open(qsbr_thread *t)
{
	qsbr_seq goal;

	if (t->shm_open_n == 0)
		return;
	goal = qsbr__make_goal(t, t->shm_open_n, 0);
	if (t->shm_len == SHM_GOALS) {
		struct shm_goal *g = &t->shm_goals[(t->shm_head + t->shm_len - 1) % SHM_GOALS];

		g->goal = goal;
		g->count += t->shm_open_n;
	} else {
		t->shm_goals[(t->shm_head + t->shm_len) % SHM_GOALS] =
			(struct shm_goal){ goal, t->shm_open_n };
		t->shm_len++;
	}
	t->shm_open_n = 0;
}

/* Runs X's callback, inside the caller's callbacks_enter; X is at the head
 * of t's list, or (orphan) of the orphan list, whose lock the caller holds
 * and we release.  False if the callback forked (this is the child: touch
 * nothing of the region's journal). */
static inline bool run_one(qsbr_thread *t, struct shm *m, struct shm_slot *s, uint64_t x, bool orphan,
			   uint64_t fork_gen)
{
	qsbr_shared_node *n = node_at(m, x);
	/* Only the orphan list holds objects to resume. */
	unsigned flags = orphan && (n->state & NODE_PHASE) == NODE_RESUME ? QSBR_SHARED_RESUMED : 0;
	uint32_t kind = n->kind;
	uint64_t next = n->next;

	/* The journal, then the unlink: a node listed has not started. */
	store_relaxed(&s->running_gen, NODE_GEN(n->state));
	fence_death();
	store_relaxed(&s->running, x);
	fence_death();
	if (orphan) {
		m->h->orphan_head = next;
		if (next == 0)
			m->h->orphan_tail = 0;
		store_relaxed(&m->h->n_orphans, load_relaxed(&m->h->n_orphans) - 1);
		region_unlock(m);
	} else {
		store_relaxed(&s->head, next);
		if (next == 0)
			store_relaxed(&s->tail, 0);
	}
	fence_death();
	/* Acquire pairs with the release store in qsbr_shared_kind. */
	load_acquire(&m->kinds[kind].fn)(t->d, x, flags, m->kinds[kind].arg);
	if (qsbr__fork_generation() != fork_gen)
		return false;
	fence_death();
	store_relaxed(&s->running, 0);
	add_relaxed_owner(&s->n_reclaimed, 1);
	if (orphan && flags != 0)
		fetch_add_relaxed(&m->h->resumed, 1);
	return true;
}

/* Reclaims reached orphans, at most max.  Returns how many ran. */
static size_t reclaim_orphans(qsbr_thread *t, size_t max)
{
	qsbr_domain *d = t->d;
	struct shm *m = d->shm;
	struct shm_header *h = m->h;
	uint64_t gen = qsbr__fork_generation();
	qsbr_seq reached = 0; /* a goal polled as reached (0: none yet) */
	struct running frame;
	size_t ran = 0;

	qsbr__callbacks_enter(&frame, d, t);
	while (ran < max && load_relaxed(&h->n_orphans) != 0) {
		uint64_t x, goal;

		region_lock(m);
		x = h->orphan_head;
		if (x == 0 || load_acquire(&m->kinds[node_at(m, x)->kind % QSBR_SHARED_KINDS].fn) == NULL) {
			region_unlock(m); /* empty, or a kind for another process */
			break;
		}
		goal = node_at(m, x)->goal;
		if ((node_at(m, x)->state & NODE_PHASE) != NODE_RESUME &&
		    (reached == 0 || qsbr_seq_lt(reached, goal))) {
			/* Poll outside the lock (a poll may recover the dead,
			 * which takes it), then look at the head again. */
			region_unlock(m);
			if (!qsbr__poll(d, goal))
				break;
			reached = goal;
			continue;
		}
		if (!run_one(t, m, load_relaxed(&t->shm_slot), x, true, gen)) { /* unlocks */
			qsbr__callbacks_leave(&frame);
			return ran; /* a callback forked: this is the child */
		}
		ran++;
	}
	qsbr__callbacks_leave(&frame);
	return ran;
}

/* t's reached region retires, then at most `orphans` orphans; advance: an
 * explicit reclaim, which advances past t's goals (a retire's reclaim
 * leaves that to the deferral limits).  Returns how many ran. */
size_t qsbr__shm_reclaim(qsbr_thread *t, size_t orphans, bool advance)
{
	qsbr_domain *d = t->d;
	struct shm *m = d->shm;
	struct shm_slot *s = load_relaxed(&t->shm_slot);
	uint64_t gen = qsbr__fork_generation();
	struct running frame;
	size_t ran = 0;

	if (s == NULL)
		return 0;
	qsbr__lists_pin(t); /* a stealer may hold them while we are offline */
	close_open(t);
	if (advance)
		qsbr__advance_past(d, t->newest_goal);
	qsbr__callbacks_enter(&frame, d, t);
	while (t->shm_len != 0 && qsbr__poll(d, t->shm_goals[t->shm_head].goal)) {
		struct shm_goal *g = &t->shm_goals[t->shm_head];

		/* A callback may retire (to the list's tail, open): the count
		 * is taken one at a time. */
		while (g->count != 0 && load_relaxed(&s->head) != 0) {
			g->count--;
			ran++;
			if (!run_one(t, m, s, load_relaxed(&s->head), false, gen)) {
				qsbr__callbacks_leave(&frame);
				qsbr__lists_unpin(t);
				return ran; /* a callback forked: this is the child */
			}
		}
		t->shm_head = (t->shm_head + 1) % SHM_GOALS;
		t->shm_len--;
	}
	qsbr__callbacks_leave(&frame);
	qsbr__lists_unpin(t);
	sweep_due(d, m, qsbr__now_ms());
	return ran + reclaim_orphans(t, orphans);
}

/* qsbr_shared_retire's push, t's lists pinned (online is a pin). */
static inline __attribute__((always_inline)) void shm_append(qsbr_thread *t, uint64_t off, uint32_t kind)
{
	struct shm *m = t->d->shm;
	struct shm_slot *s = load_relaxed(&t->shm_slot);
	qsbr_shared_node *n = node_at(m, off);
	uint64_t tail;

	n->next = 0;
	n->goal = 0;
	n->kind = kind;
	n->state = (NODE_GEN(n->state) + 1) << 2 | NODE_WAITING;
	fence_death();
	/* The link is the retire (top comment). */
	tail = load_relaxed(&s->tail);
	if (load_relaxed(&s->head) == 0)
		store_relaxed(&s->head, off);
	else
		node_at(m, tail)->next = off;
	fence_death();
	store_relaxed(&s->tail, off);
	add_relaxed_owner(&s->n_retired, 1);
	t->shm_open_n++;
}

/* A full batch gets its goal, and what is reached runs (not from a
 * callback: the running reclaim does that). */
static void batch_full(qsbr_thread *t)
{
	if (!qsbr__in_callback())
		qsbr__shm_reclaim(t, SHARED_BATCH, false);
}

/* qsbr_shared_retire without a slot (a fork child) or offline: the lists
 * may be a stealer's (retire.c's qsbr__steal hands them over), so take
 * them back first, as qsbr_retire_node does. */
static int __attribute__((noinline)) retire_slow(qsbr_thread *t, uint64_t off, uint32_t kind)
{
	bool offline;

	if (load_relaxed(&t->shm_slot) == NULL && !qsbr__shm_claim(t))
		return EAGAIN;
	offline = load_relaxed(&t->seq) == 0; /* own field */
	if (offline)
		qsbr__lists_pin(t);
	shm_append(t, off, kind);
	if (t->shm_open_n >= SHARED_BATCH)
		batch_full(t);
	if (offline)
		qsbr__lists_unpin(t);
	return 0;
}

int qsbr_shared_retire(qsbr_thread *t, uint64_t off, uint32_t kind)
{
	struct shm *m;

	if (t == NULL || (m = t->d->shm) == NULL)
		return EINVAL;
	CHECK_OWNER(t, "qsbr_shared_retire");
	/* Acquire pairs with the release store in qsbr_shared_kind.  off is
	 * in the caller's part when off - user_lo does not pass user_span
	 * (below user_lo, it wraps). */
	if (kind >= QSBR_SHARED_KINDS || load_acquire(&m->kinds[kind].fn) == NULL || off % 8 != 0 ||
	    off - m->user_lo > m->user_span)
		return EINVAL;
	if (QSBR__UNLIKELY(load_relaxed(&t->shm_slot) == NULL || load_relaxed(&t->seq) == 0))
		return retire_slow(t, off, kind);
	shm_append(t, off, kind);
	if (QSBR__UNLIKELY(t->shm_open_n >= SHARED_BATCH))
		batch_full(t);
	return 0;
}

static bool own_list_empty(void *arg)
{
	qsbr_thread *t = arg;
	struct shm_slot *s;

	qsbr__shm_reclaim(t, SHARED_BATCH, true);
	s = load_relaxed(&t->shm_slot);
	return s == NULL || load_relaxed(&s->head) == 0;
}

/* qsbr_barrier's part in a region: everything t retired there has run. */
bool qsbr__shm_barrier(qsbr_thread *t)
{
	return qsbr__wait_until(t->d, t, own_list_empty, t, 0);
}

/* ---- Kinds, information ----------------------------------------------------------- */

int qsbr_shared_kind(qsbr_domain *d, uint32_t kind, qsbr_shared_fn *fn, void *arg)
{
	if (d == NULL || d->shm == NULL || fn == NULL || kind >= QSBR_SHARED_KINDS)
		return EINVAL;
	d->shm->kinds[kind].arg = arg;
	/* Release pairs with the acquire loads of retire and reclaim: they
	 * see arg. */
	store_release(&d->shm->kinds[kind].fn, fn);
	return 0;
}

int qsbr_shared_info_get(qsbr_domain *d, qsbr_shared_info *out)
{
	struct shm *m;

	if (d == NULL || d->shm == NULL || out == NULL)
		return EINVAL;
	m = d->shm;
	memset(out, 0, sizeof(*out));
	out->max_threads = m->h->max_slots;
	out->lib_bytes = m->h->lib_bytes;
	out->size = m->h->size;
	region_lock(m);
	out->retired = m->h->retired;
	out->reclaimed = m->h->reclaimed;
	out->deaths = m->h->deaths;
	out->repairs = m->h->repairs;
	out->orphans = load_relaxed(&m->h->n_orphans);
	for (uint32_t i = 0; i < m->h->max_slots; i++) {
		struct shm_slot *s = &m->slots[i];

		if (load_relaxed(&s->owner) == 0)
			continue;
		out->threads++;
		out->online += load_relaxed(&s->seq) != 0;
		out->retired += load_relaxed(&s->n_retired);
		out->reclaimed += load_relaxed(&s->n_reclaimed);
	}
	region_unlock(m);
	out->resumed = load_relaxed(&m->h->resumed);
	return 0;
}

bool qsbr_domain_is_shared(const qsbr_domain *d)
{
	return d != NULL && d->shm != NULL;
}

void *qsbr_shared_base(const qsbr_domain *d, size_t *size)
{
	if (d == NULL || d->shm == NULL) {
		errno = EINVAL;
		return NULL;
	}
	if (size != NULL)
		*size = d->shm->h->size;
	return d->shm->base;
}

/* ---- Layout, create, attach --------------------------------------------------------- */

struct layout {
	size_t slots_off, mask_off, groups_off, bytes;
};

static struct layout layout_of(uint32_t n)
{
	struct layout l;

	l.slots_off = round_up(sizeof(struct shm_header), CACHELINE);
	l.mask_off = l.slots_off + (size_t)n * SLOT_BYTES;
	l.groups_off = round_up(l.mask_off + (n + 63) / 64 * sizeof(au64), CACHELINE);
	l.bytes = round_up(l.groups_off + (n + GROUP_SLOTS - 1) / GROUP_SLOTS * sizeof(au64), CACHELINE);
	return l;
}

size_t qsbr_shared_size(uint32_t max_threads)
{
	if (max_threads == 0 || max_threads > QSBR_SHARED_THREADS_MAX) {
		errno = EINVAL;
		return 0;
	}
	return layout_of(max_threads).bytes;
}

static uint64_t header_check(const struct shm_header *h)
{
	uint64_t words[] = { h->magic,     h->version,    h->max_slots,    h->size,
			     h->lib_bytes, h->slots_off,  h->mask_off,     h->groups_off,
			     h->header_bytes, h->mutex_bytes };
	uint64_t x = UINT64_C(0x9e3779b97f4a7c15);

	for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
		x ^= words[k];
		x *= UINT64_C(0xff51afd7ed558ccd);
		x ^= x >> 29;
	}
	return x;
}

/* Under views_lock: whether this process has a view at mem. */
static bool view_at(const void *mem)
{
	for (struct shm *m = views; m != NULL; m = m->next)
		if (m->base == mem)
			return true;
	return false;
}

/* The view of m's region at mem, made and listed; NULL (errno) if this
 * process already has one there (EEXIST) or no memory (ENOMEM). */
static struct shm *view_new(qsbr_domain *d, void *mem)
{
	struct shm_header *h = mem;
	struct shm *m;

	pthread_mutex_lock(&views_lock);
	if (view_at(mem)) {
		pthread_mutex_unlock(&views_lock);
		errno = EEXIST;
		return NULL;
	}
	m = qsbr__alloc(&d->opts, sizeof(*m), CACHELINE);
	if (m == NULL) {
		pthread_mutex_unlock(&views_lock);
		errno = ENOMEM;
		return NULL;
	}
	memset(m, 0, sizeof(*m));
	m->h = h;
	m->base = mem;
	m->slots = (struct shm_slot *)(void *)((char *)mem + h->slots_off);
	m->mask = (au64 *)(void *)((char *)mem + h->mask_off);
	m->groups = (au64 *)(void *)((char *)mem + h->groups_off);
	m->user_lo = h->lib_bytes;
	m->user_span = h->size - sizeof(qsbr_shared_node) - h->lib_bytes;
	if (h->size < h->lib_bytes + sizeof(qsbr_shared_node)) { /* no room for the caller */
		m->user_lo = UINT64_MAX;
		m->user_span = 0;
	}
	atomic_init(&m->dummy_mask, 0);
	atomic_init(&m->dummy_group, 0);
	m->next = views;
	views = m;
	pthread_mutex_unlock(&views_lock);
	d->shm = m;
	d->wr = &h->wr_seq;
	d->rd = &h->rd_seq;
	d->initial_seq = load_relaxed(&h->wr_seq);
	return m;
}

/* d's view of mem, or d undone (false, errno kept). */
static bool view_or_unmake(qsbr_domain *d, void *mem)
{
	int err;

	if (view_new(d, mem) != NULL)
		return true;
	err = errno;
	qsbr__domain_unmake(d);
	errno = err;
	return false;
}

/* qsbr_domain_delete of a shared domain: the view goes; the region stays. */
void qsbr__shm_close(qsbr_domain *d)
{
	struct shm **link;

	pthread_mutex_lock(&views_lock);
	for (link = &views; *link != NULL; link = &(*link)->next) {
		if (*link == d->shm) {
			*link = d->shm->next;
			break;
		}
	}
	pthread_mutex_unlock(&views_lock);
	qsbr__free(&d->opts, d->shm);
	d->shm = NULL;
}

static int mutex_init_shared(pthread_mutex_t *mu)
{
	pthread_mutexattr_t a;
	int err;

	if ((err = pthread_mutexattr_init(&a)) != 0)
		return err;
	if ((err = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) == 0 &&
	    (err = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)) == 0)
		err = pthread_mutex_init(mu, &a);
	pthread_mutexattr_destroy(&a);
	return err;
}

qsbr_domain *qsbr_domain_create_shared(void *mem, size_t size, uint32_t max_threads,
				       const qsbr_options *opts)
{
	struct shm_header *h = mem;
	struct layout l;
	qsbr_domain *d;
	qsbr_seq start;
	int err;

	if (mem == NULL || (uintptr_t)mem % CACHELINE != 0 || max_threads == 0 ||
	    max_threads > QSBR_SHARED_THREADS_MAX) {
		errno = EINVAL;
		return NULL;
	}
	l = layout_of(max_threads);
	if (size < l.bytes) {
		errno = EINVAL;
		return NULL;
	}
	/* Not over a region this process has a view of: the layout below
	 * would wipe it (view_new checks again, under the same lock). */
	pthread_mutex_lock(&views_lock);
	err = view_at(mem) ? EEXIST : 0;
	pthread_mutex_unlock(&views_lock);
	if (err != 0) {
		errno = err;
		return NULL;
	}
	d = qsbr__domain_make(opts);
	if (d == NULL)
		return NULL;
	start = d->opts.initial_seq != 0 ? d->opts.initial_seq : (qsbr_seq)(QSBR_SEQ_START);
	/* Not ready while we lay it out: attach says EAGAIN, or EOWNERDEAD
	 * if we die first. */
	memset(mem, 0, l.bytes);
	store_relaxed(&h->creator, self_identity());
	h->magic = SHM_MAGIC;
	h->version = QSBR_SHARED_VERSION;
	h->max_slots = max_threads;
	h->size = size;
	h->lib_bytes = l.bytes;
	h->slots_off = l.slots_off;
	h->mask_off = l.mask_off;
	h->groups_off = l.groups_off;
	h->header_bytes = sizeof(struct shm_header);
	h->mutex_bytes = sizeof(pthread_mutex_t);
	h->check = header_check(h);
	atomic_init(&h->wr_seq, start);
	atomic_init(&h->rd_seq, start);
	atomic_init(&h->n_orphans, 0);
	atomic_init(&h->sweep_at_ms, 0);
	atomic_init(&h->resumed, 0);
	if ((err = mutex_init_shared(&h->lock)) != 0) {
		qsbr__domain_unmake(d);
		errno = err;
		return NULL;
	}
	if (!view_or_unmake(d, mem))
		return NULL;
	/* Release pairs with the acquire load in attach: a process that
	 * sees it ready sees the layout. */
	store_release(&h->ready, SHM_READY);
	return qsbr__domain_listed(d);
}

/* 0, or the errno of attach for the header at mem. */
static int header_valid(const struct shm_header *h, size_t size)
{
	struct layout l;

	if (size < sizeof(struct shm_header) || h->magic != SHM_MAGIC)
		return EBADMSG;
	if (h->version != QSBR_SHARED_VERSION)
		return EPROTO;
	/* Acquire pairs with the release store at the end of create. */
	if (load_acquire(&h->ready) != SHM_READY) {
		uint64_t creator = load_relaxed(&h->creator);

		return creator != 0 && is_dead(creator) ? EOWNERDEAD : EAGAIN;
	}
	if (h->check != header_check(h) || h->header_bytes != sizeof(struct shm_header) ||
	    h->mutex_bytes != sizeof(pthread_mutex_t))
		return h->check == header_check(h) ? EPROTO : EBADMSG;
	if (h->max_slots == 0 || h->max_slots > QSBR_SHARED_THREADS_MAX)
		return EBADMSG;
	l = layout_of(h->max_slots);
	if (h->lib_bytes != l.bytes || h->slots_off != l.slots_off || h->mask_off != l.mask_off ||
	    h->groups_off != l.groups_off || h->size < l.bytes || size < h->size)
		return EBADMSG;
	return 0;
}

qsbr_domain *qsbr_domain_attach_shared(void *mem, size_t size, const qsbr_options *opts)
{
	qsbr_domain *d;
	int err;

	if (mem == NULL || (uintptr_t)mem % CACHELINE != 0) {
		errno = EINVAL;
		return NULL;
	}
	if ((err = header_valid(mem, size)) != 0) {
		errno = err;
		return NULL;
	}
	d = qsbr__domain_make(opts);
	if (d == NULL || !view_or_unmake(d, mem))
		return NULL;
	return qsbr__domain_listed(d);
}
