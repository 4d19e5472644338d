/* SPDX-License-Identifier: MIT */
/*
 * The `shared` suite: process-shared domains (qsbr/shared.h).
 *
 * Without arguments, the unit tests: sizes, bad input (zeroed, garbage and
 * other-version regions, a view twice), two views of one region at two
 * addresses, retires held back by a thread of the other view, orphans of an
 * unregistered thread, the death of an online participant (reaped, and a
 * zombie), death inside a callback (resumed once), fork.
 *
 * With --stress: processes (forked, and separate programs started from
 * tests/shared_peer.c) work on a stack and a hash set in the region while this process
 * SIGKILLs one at random every few milliseconds and starts another; at the
 * end no canary was found dead, every retired object was freed once (and
 * none still in the stack), grace periods still end, and the region's
 * counts add up.  ThreadSanitizer does not follow processes: in its build
 * this checks each process's own threads only.
 *
 * Usage: shared [--stress --peer PATH --seconds N]
 */
#define _GNU_SOURCE /* memfd_create, MAP_ANONYMOUS */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "shared_work.h"

#define NODES 4096u

static int region_fd = -1;
static size_t region_size;

/* A fresh memfd of `size` bytes mapped shared; *fd gets the descriptor. */
static void *map_new(size_t size, int *fd)
{
	void *mem;

	*fd = memfd_create("qsbr-test", 0);
	assert_true(*fd >= 0);
	assert_int_equal(ftruncate(*fd, (off_t)size), 0);
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	assert_true(mem != MAP_FAILED);
	return mem;
}

static void *map_again(int fd, size_t size)
{
	void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	assert_true(mem != MAP_FAILED);
	return mem;
}

static qsbr_options quiet_options(void)
{
	qsbr_options o;

	qsbr_options_init(&o);
	o.background = QSBR_BACKGROUND_OFF; /* children fork without threads */
	return o;
}

/* A region with the work layout (shared_work.h), and its first view. */
static qsbr_domain *region_of(void **mem_out, uint64_t nodes)
{
	qsbr_options o = quiet_options();
	qsbr_domain *d;
	void *mem;

	region_size = work_region_size(nodes);
	mem = map_new(region_size, &region_fd);
	d = qsbr_domain_create_shared(mem, region_size, 64, &o);
	assert_non_null(d);
	work_init(d, nodes);
	assert_int_equal(qsbr_shared_kind(d, WORK_KIND, work_kind, NULL), 0);
	*mem_out = mem;
	return d;
}

static qsbr_domain *region_new(void **mem_out)
{
	return region_of(mem_out, NODES);
}

static void region_end(qsbr_domain *d, void *mem)
{
	assert_int_equal(qsbr_domain_delete(d), 0);
	munmap(mem, region_size);
	close(region_fd);
}

/* Node id, fresh, by offset. */
static uint64_t node_fresh(qsbr_domain *d, uint64_t id)
{
	struct work *w = work_of(d);
	uint64_t off = w->nodes_off + id * sizeof(struct snode);
	struct snode *n = work_node(d, off);

	n->id = id;
	atomic_store(&n->canary, CANARY_LIVE);
	return off;
}

static bool freed(qsbr_domain *d, uint64_t id)
{
	return (atomic_load(work_bits(d, id)) >> (id % 64)) & 1;
}

static int freed_count(qsbr_domain *d, uint64_t from, uint64_t to)
{
	int n = 0;

	for (uint64_t id = from; id < to; id++)
		n += freed(d, id);
	return n;
}

/* t retires ids [from, to), fresh. */
static void retire_fresh(qsbr_domain *d, qsbr_thread *t, uint64_t from, uint64_t to)
{
	for (uint64_t id = from; id < to; id++)
		assert_int_equal(qsbr_shared_retire(t, node_fresh(d, id), WORK_KIND), 0);
}

/* t reclaims until ids [from, to) are all freed (or it gives up). */
static void reclaim_until_freed(qsbr_domain *d, qsbr_thread *t, uint64_t from, uint64_t to)
{
	for (int k = 0; k < 100 && freed_count(d, from, to) < (int)(to - from); k++) {
		qsbr_quiescent(t);
		qsbr_reclaim(t);
	}
}

static qsbr_shared_info info_of(qsbr_domain *d)
{
	qsbr_shared_info i;

	assert_int_equal(qsbr_shared_info_get(d, &i), 0);
	return i;
}

/* ---- Sizes and bad input ------------------------------------------------- */

static void test_size(void **state)
{
	(void)state;
	errno = 0;
	assert_int_equal(qsbr_shared_size(0), 0);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(qsbr_shared_size(QSBR_SHARED_THREADS_MAX + 1), 0);
	assert_true(qsbr_shared_size(1) > 0 && qsbr_shared_size(1) % 64 == 0);
	assert_true(qsbr_shared_size(1000) > qsbr_shared_size(1) + 1000 * 64);
	assert_true(qsbr_shared_size(QSBR_SHARED_THREADS_MAX) > 0);
}

static void test_create_bad(void **state)
{
	size_t need = qsbr_shared_size(8);
	qsbr_options o = quiet_options();
	char *mem = aligned_alloc(64, need + 64);

	(void)state;
	assert_non_null(mem);
	errno = 0;
	assert_null(qsbr_domain_create_shared(NULL, need, 8, NULL));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(qsbr_domain_create_shared(mem + 8, need, 8, NULL));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(qsbr_domain_create_shared(mem, need - 1, 8, NULL));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(qsbr_domain_create_shared(mem, need, 0, NULL));
	assert_int_equal(errno, EINVAL);
	o.batch_size = 0; /* an option qsbr_domain_new refuses too */
	errno = 0;
	assert_null(qsbr_domain_create_shared(mem, need, 8, &o));
	assert_int_equal(errno, EINVAL);
	free(mem);
}

static void test_attach_bad(void **state)
{
	size_t need = qsbr_shared_size(8);
	qsbr_options o = quiet_options();
	char *mem = aligned_alloc(64, need), *other;
	qsbr_domain *d;
	int fd;

	(void)state;
	assert_non_null(mem);
	memset(mem, 0, need);
	errno = 0;
	assert_null(qsbr_domain_attach_shared(mem, need, NULL));
	assert_int_equal(errno, EBADMSG); /* zeroed */
	for (size_t k = 0; k < need; k++)
		mem[k] = (char)(k * 131 + 7);
	errno = 0;
	assert_null(qsbr_domain_attach_shared(mem, need, NULL));
	assert_int_equal(errno, EBADMSG); /* garbage */
	errno = 0;
	assert_null(qsbr_domain_attach_shared(NULL, need, NULL));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(qsbr_domain_attach_shared(mem + 1, need, NULL));
	assert_int_equal(errno, EINVAL);
	free(mem);

	mem = map_new(need, &fd);
	d = qsbr_domain_create_shared(mem, need, 8, &o);
	assert_non_null(d);
	assert_true(qsbr_domain_is_shared(d));
	errno = 0;
	assert_null(qsbr_domain_attach_shared(mem, need, &o));
	assert_int_equal(errno, EEXIST); /* a second view at the same address */
	errno = 0;
	assert_null(qsbr_domain_create_shared(mem, need, 4, &o));
	assert_int_equal(errno, EEXIST); /* nor a new region over a live one */
	assert_int_equal(info_of(d).max_threads, 8); /* intact */
	assert_true(qsbr_domain_is_shared(d));
	other = map_again(fd, need);
	errno = 0;
	assert_null(qsbr_domain_attach_shared(other, need - 64, &o));
	assert_int_equal(errno, EBADMSG); /* smaller than the region */
	((uint32_t *)(void *)other)[2] = QSBR_SHARED_VERSION + 1;
	errno = 0;
	assert_null(qsbr_domain_attach_shared(other, need, &o));
	assert_int_equal(errno, EPROTO); /* another layout version */
	((uint32_t *)(void *)other)[2] = QSBR_SHARED_VERSION;
	((uint64_t *)(void *)other)[2] ^= 1; /* a field the check covers */
	errno = 0;
	assert_null(qsbr_domain_attach_shared(other, need, &o));
	assert_int_equal(errno, EBADMSG);
	((uint64_t *)(void *)other)[2] ^= 1;
	d = (qsbr_domain_delete(d), qsbr_domain_attach_shared(other, need, &o));
	assert_non_null(d); /* repaired: a view at another address */
	assert_int_equal(qsbr_domain_delete(d), 0);
	munmap(other, need);
	munmap(mem, need);
	close(fd);
	assert_false(qsbr_domain_is_shared(NULL));
}

static void test_kind_and_retire_errors(void **state)
{
	void *mem;
	qsbr_domain *d = region_new(&mem), *local = qsbr_domain_new(NULL);
	qsbr_thread *t = qsbr_register(d), *tl = qsbr_register(local);
	struct work *w = work_of(d);

	(void)state;
	assert_int_equal(qsbr_shared_kind(NULL, 1, work_kind, NULL), EINVAL);
	assert_int_equal(qsbr_shared_kind(d, QSBR_SHARED_KINDS, work_kind, NULL), EINVAL);
	assert_int_equal(qsbr_shared_kind(d, 1, NULL, NULL), EINVAL);
	assert_int_equal(qsbr_shared_kind(local, 1, work_kind, NULL), EINVAL);
	assert_int_equal(qsbr_shared_retire(NULL, w->nodes_off, WORK_KIND), EINVAL);
	assert_int_equal(qsbr_shared_retire(tl, w->nodes_off, WORK_KIND), EINVAL);
	assert_int_equal(qsbr_shared_retire(t, w->nodes_off, WORK_KIND + 1), EINVAL); /* no function */
	assert_int_equal(qsbr_shared_retire(t, w->nodes_off, QSBR_SHARED_KINDS), EINVAL);
	assert_int_equal(qsbr_shared_retire(t, w->nodes_off + 4, WORK_KIND), EINVAL);
	assert_int_equal(qsbr_shared_retire(t, 64, WORK_KIND), EINVAL); /* the library's part */
	assert_int_equal(qsbr_shared_retire(t, region_size - 8, WORK_KIND), EINVAL);
	assert_int_equal(qsbr_shared_retire(t, UINT64_MAX - 7, WORK_KIND), EINVAL);
	errno = 0;
	assert_int_equal(qsbr_shared_recover(local), 0);
	assert_int_equal(errno, EINVAL);
	assert_null(qsbr_shared_base(local, NULL));
	assert_int_equal(qsbr_shared_info_get(local, &(qsbr_shared_info){ 0 }), EINVAL);
	assert_int_equal(info_of(d).retired, 0); /* nothing was lost or taken */
	qsbr_unregister(tl);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(local), 0);
	region_end(d, mem);
}

/* ---- Two views, orphans --------------------------------------------------- */

static void test_two_views_hold_back(void **state)
{
	void *mem, *mem2;
	qsbr_domain *d = region_new(&mem), *d2;
	qsbr_options o = quiet_options();
	qsbr_thread *ta, *tb;
	qsbr_shared_info i;

	(void)state;
	mem2 = map_again(region_fd, region_size);
	d2 = qsbr_domain_attach_shared(mem2, region_size, &o);
	assert_non_null(d2);
	assert_int_equal(qsbr_shared_kind(d2, WORK_KIND, work_kind, NULL), 0);
	ta = qsbr_register(d);
	tb = qsbr_register(d2); /* online in the other view, at an old seq */
	retire_fresh(d, ta, 0, 100);
	qsbr_reclaim(ta);
	qsbr_quiescent(ta);
	qsbr_reclaim(ta);
	assert_int_equal(freed_count(d, 0, 100), 0); /* tb holds them */
	qsbr_quiescent(tb);
	qsbr_reclaim(ta);
	assert_int_equal(freed_count(d, 0, 100), 100);
	i = info_of(d2);
	assert_int_equal(i.threads, 2);
	assert_int_equal(i.online, 2);
	assert_int_equal(i.retired, 100);
	assert_int_equal(i.reclaimed, 100);
	assert_int_equal(atomic_load(&work_of(d)->double_run), 0);
	/* A barrier runs everything the caller retired, whatever tb does. */
	qsbr_detach(tb);
	retire_fresh(d, ta, 100, 150);
	qsbr_barrier(ta);
	assert_int_equal(freed_count(d, 100, 150), 50);
	qsbr_unregister(tb);
	qsbr_unregister(ta);
	assert_int_equal(info_of(d).threads, 0);
	assert_int_equal(qsbr_domain_delete(d2), 0);
	munmap(mem2, region_size);
	region_end(d, mem);
}

static void test_orphans_of_unregister(void **state)
{
	void *mem;
	qsbr_domain *d = region_new(&mem);
	qsbr_thread *ta = qsbr_register(d), *tb = qsbr_register(d);

	(void)state;
	retire_fresh(d, ta, 0, 300);
	qsbr_unregister(ta);
	assert_int_equal(info_of(d).orphans + (uint64_t)freed_count(d, 0, 300), 300);
	assert_true(freed_count(d, 0, 300) < 300); /* tb held them */
	reclaim_until_freed(d, tb, 0, 300);
	assert_int_equal(freed_count(d, 0, 300), 300);
	assert_int_equal(info_of(d).orphans, 0);
	assert_int_equal(info_of(d).reclaimed, 300);
	assert_int_equal(atomic_load(&work_of(d)->double_run), 0);
	qsbr_unregister(tb);
	region_end(d, mem);
}

/* An offline thread's region retires are handed to the orphans when its
 * lists are taken (qsbr_barrier_domain here; the helper thread too), so
 * another thread reclaims them while it stays away; it can come back and
 * retire again. */
static void test_idle_list_handed_over(void **state)
{
	void *mem;
	qsbr_domain *d = region_new(&mem);
	qsbr_thread *ta = qsbr_register(d), *tb = qsbr_register(d);

	(void)state;
	retire_fresh(d, ta, 0, 70);
	qsbr_detach(ta);
	assert_int_equal(freed_count(d, 0, 70), 0);
	qsbr_barrier_domain(d); /* takes ta's lists: it is offline */
	assert_int_equal(info_of(d).orphans, 70);
	reclaim_until_freed(d, tb, 0, 70);
	assert_int_equal(freed_count(d, 0, 70), 70);
	assert_int_equal(qsbr_shared_retire(ta, node_fresh(d, 70), WORK_KIND), 0); /* offline */
	qsbr_attach(ta);
	qsbr_detach(tb); /* else the barrier waits for tb's next quiescent state */
	qsbr_barrier(ta);
	assert_true(freed(d, 70));
	assert_int_equal(info_of(d).retired, 71);
	assert_int_equal(info_of(d).reclaimed, 71);
	assert_int_equal(atomic_load(&work_of(d)->double_run), 0);
	qsbr_unregister(ta);
	qsbr_unregister(tb);
	region_end(d, mem);
}

/* ---- Death ------------------------------------------------------------------ */

/* A child that registers in d, retires ids [from, to), reclaims what it may
 * (dying in a callback if die_in_callback says so), tells us over the pipe,
 * and waits to be killed, online. */
static pid_t child_retires(qsbr_domain *d, uint64_t from, uint64_t to, bool reclaim, int *pipe_rd)
{
	int p[2];
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		qsbr_thread *t = qsbr_register(d);
		char c = 'r';

		if (t == NULL)
			_exit(3);
		for (uint64_t id = from; id < to; id++)
			if (qsbr_shared_retire(t, node_fresh(d, id), WORK_KIND) != 0)
				_exit(4);
		if (reclaim) { /* one reclaim advances past the goals, the next runs them */
			qsbr_reclaim(t);
			qsbr_quiescent(t);
			qsbr_reclaim(t);
		}
		if (write(p[1], &c, 1) != 1)
			_exit(5);
		for (;;)
			pause();
	}
	close(p[1]);
	*pipe_rd = p[0];
	return pid;
}

static void wait_ready(int fd)
{
	char c;

	assert_int_equal(read(fd, &c, 1), 1);
	close(fd);
}

static void death_of_online(bool reap)
{
	void *mem;
	qsbr_domain *d = region_new(&mem);
	qsbr_thread *t;
	int fd, status;
	pid_t pid = child_retires(d, 0, 200, false, &fd);

	wait_ready(fd);
	t = qsbr_register(d);
	assert_int_equal(info_of(d).threads, 2);
	kill(pid, SIGKILL);
	if (reap)
		assert_int_equal(waitpid(pid, &status, 0), pid);
	else /* dead, not reaped: a zombie until the end */
		assert_int_equal(waitid(P_PID, (id_t)pid, &(siginfo_t){ 0 }, WEXITED | WNOWAIT), 0);
	/* Held back by a dead thread until it is found: this returns. */
	qsbr_synchronize(t);
	reclaim_until_freed(d, t, 0, 200);
	assert_int_equal(freed_count(d, 0, 200), 200);
	assert_int_equal(info_of(d).deaths, 1);
	assert_int_equal(info_of(d).threads, 1);
	assert_int_equal(atomic_load(&work_of(d)->double_run), 0);
	assert_int_equal(atomic_load(&work_of(d)->canary_bad), 0);
	if (!reap)
		assert_int_equal(waitpid(pid, &status, 0), pid);
	qsbr_unregister(t);
	region_end(d, mem);
}

static void test_death_reaped(void **state)
{
	(void)state;
	death_of_online(true);
}

static void test_death_zombie(void **state)
{
	(void)state;
	death_of_online(false);
}

static void test_death_in_callback(void **state)
{
	void *mem;
	qsbr_domain *d = region_new(&mem);
	struct work *w = work_of(d);
	int fd, status;
	pid_t pid;
	qsbr_thread *t;

	(void)state;
	atomic_store(&w->die_in_callback, 10 + 1); /* id 10 */
	/* Nobody else online: the child's own reclaim reaches id 10. */
	pid = child_retires(d, 0, 100, true, &fd);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	close(fd);
	assert_true(freed_count(d, 0, 100) >= 10); /* 0..9 ran before */
	assert_false(freed(d, 10));
	t = qsbr_register(d);
	assert_int_equal(qsbr_shared_recover(d), 1);
	reclaim_until_freed(d, t, 0, 100);
	assert_int_equal(freed_count(d, 0, 100), 100);
	assert_int_equal(atomic_load(&w->resumed_runs), 1);
	assert_int_equal(atomic_load(&w->double_run), 0);
	assert_int_equal(info_of(d).resumed, 1);
	assert_int_equal(info_of(d).orphans, 0);
	qsbr_unregister(t);
	region_end(d, mem);
}

static char stall_name[64];
static uint64_t stall_id;

static void on_stall(const qsbr_stall_info *info, void *arg)
{
	(void)arg;
	stall_id = info->thread_id;
	snprintf(stall_name, sizeof(stall_name), "%s", info->name);
}

/* A live participant that holds grace periods back is reported, by pid and
 * slot, and not taken for dead. */
static void test_stall_names_slot(void **state)
{
	void *mem;
	qsbr_domain *d = region_new(&mem), *d2;
	qsbr_options o = quiet_options();
	qsbr_thread *t;
	char expect[64];
	int fd, status;
	pid_t pid = child_retires(d, 0, 1, false, &fd);
	void *mem2 = map_again(region_fd, region_size);

	(void)state;
	wait_ready(fd);
	o.stall_ms = 5;
	o.on_stall = on_stall;
	d2 = qsbr_domain_attach_shared(mem2, region_size, &o); /* a view with stall reports */
	assert_non_null(d2);
	t = qsbr_register(d2);
	for (int k = 0; k < 2000 && stall_name[0] == '\0'; k++) {
		assert_false(qsbr_poll(t, qsbr_advance(d2)));
		usleep(1000);
	}
	snprintf(expect, sizeof(expect), "pid %ld slot 0", (long)pid);
	assert_string_equal(stall_name, expect);
	assert_int_equal(stall_id >> 32, (uint64_t)pid);
	assert_int_equal(info_of(d2).deaths, 0);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	qsbr_synchronize(t);
	assert_int_equal(info_of(d2).deaths, 1);
	qsbr_unregister(t);
	assert_int_equal(qsbr_domain_delete(d2), 0);
	munmap(mem2, region_size);
	region_end(d, mem);
}

/* A process that dies holding the region's lock in the middle of each step
 * of a recovery (here its own leave: unregister with retires pending) leaves
 * the lock EOWNERDEAD; the next holder finishes the step and the rest, and
 * every object is reclaimed once.  Debug builds of the library only (the
 * death point is QSBR_TEST_DIE_PHASE). */
static void test_death_in_each_step(void **state)
{
	(void)state;
#ifdef NDEBUG
	skip();
#else
	for (uint64_t phase = 0; phase < 5; phase++) {
		void *mem;
		qsbr_domain *d = region_new(&mem);
		qsbr_thread *t;
		qsbr_shared_info i;
		int status;
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			qsbr_thread *c = qsbr_register(d);
			char v[8];

			retire_fresh(d, c, 0, 50);
			snprintf(v, sizeof(v), "%u", (unsigned)phase);
			setenv("QSBR_TEST_DIE_PHASE", v, 1);
			qsbr_unregister(c); /* dies in its leave's step `phase` */
			_exit(3);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		t = qsbr_register(d);
		i = info_of(d); /* the lock: EOWNERDEAD, repaired */
		assert_int_equal(i.repairs, 1);
		assert_int_equal(i.threads, 1); /* the leave was finished */
		assert_int_equal(i.deaths, 0);  /* it was a leave, not a death */
		reclaim_until_freed(d, t, 0, 50);
		assert_int_equal(freed_count(d, 0, 50), 50);
		assert_int_equal(atomic_load(&work_of(d)->double_run), 0);
		i = info_of(d);
		assert_int_equal(i.orphans, 0);
		assert_int_equal(i.retired, 50);
		assert_int_equal(i.reclaimed, 50);
		qsbr_unregister(t);
		region_end(d, mem);
	}
#endif
}

/* The forking thread's handle is its parent's slot no more in the child: its
 * next quiescent state takes a slot of its own. */
static void test_fork_child_slot(void **state)
{
	void *mem;
	qsbr_domain *d = region_new(&mem);
	qsbr_thread *t = qsbr_register(d);
	int status;
	pid_t pid;

	(void)state;
	assert_int_equal(info_of(d).threads, 1);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		qsbr_quiescent(t);
		if (info_of(d).threads != 2)
			_exit(10);
		for (uint64_t id = 0; id < 20; id++)
			if (qsbr_shared_retire(t, node_fresh(d, id), WORK_KIND) != 0)
				_exit(11);
		qsbr_detach(t);
		qsbr_barrier(t); /* the parent is online, at its last seq: waits for it */
		qsbr_unregister(t);
		_exit(freed_count(d, 0, 20) == 20 ? 0 : 12);
	}
	/* Keep reporting quiescent states until the child is done. */
	while (waitpid(pid, &status, WNOHANG) == 0) {
		qsbr_quiescent(t);
		usleep(200);
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(info_of(d).threads, 1); /* ours, still */
	assert_int_equal(info_of(d).deaths, 0);
	qsbr_unregister(t);
	region_end(d, mem);
}

/* ---- Stress: kills at random ------------------------------------------------ */

static const char *peer_path;
static int stress_seconds = 5;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static pid_t start_worker(qsbr_domain *d, unsigned k)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		if (peer_path != NULL && k % 3 == 2) {
			char fd[16], size[32], seed[32];

			snprintf(fd, sizeof(fd), "%d", region_fd);
			snprintf(size, sizeof(size), "%zu", region_size);
			snprintf(seed, sizeof(seed), "%u", k * 7919u + 1);
			execl(peer_path, peer_path, fd, size, seed, (char *)NULL);
			_exit(9);
		}
		_exit(work_main(d, k * 7919u + 1));
	}
	return pid;
}

#define WORKERS 4

static void test_stress_kills(void **state)
{
	qsbr_options o = quiet_options();
	uint64_t n = 200000 * (uint64_t)(stress_seconds > 0 ? stress_seconds : 1), seed = (uint64_t)getpid() * 2654435761u, end, in_stack = 0;
	pid_t pids[WORKERS];
	unsigned started = 0;
	qsbr_domain *d;
	qsbr_thread *t;
	struct work *w;
	qsbr_shared_info i;
	void *mem;
	int status;

	(void)state;
	region_size = work_region_size(n);
	mem = map_new(region_size, &region_fd);
	d = qsbr_domain_create_shared(mem, region_size, 64, &o);
	assert_non_null(d);
	work_init(d, n);
	w = work_of(d);
	assert_int_equal(qsbr_shared_kind(d, WORK_KIND, work_kind, NULL), 0);
	for (int k = 0; k < WORKERS; k++)
		pids[k] = start_worker(d, started++);
	end = now_ms() + (uint64_t)stress_seconds * 1000;
	while (now_ms() < end && atomic_load(&w->next_node) < n) {
		int k;

		seed = seed * 6364136223846793005u + 1442695040888963407u;
		usleep(2000 + (unsigned)(seed >> 33) % 30000);
		k = (int)((seed >> 20) % WORKERS);
		kill(pids[k], SIGKILL);
		assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
		if (WIFEXITED(status)) /* it finished before the kill */
			assert_int_equal(WEXITSTATUS(status), 0);
		atomic_fetch_add(&w->kills, 1);
		pids[k] = start_worker(d, started++);
	}
	atomic_store(&w->stop, 1);
	for (int k = 0; k < WORKERS; k++) {
		assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	/* Everything the dead and the departed retired is reclaimed here. */
	t = qsbr_register(d);
	qsbr_shared_recover(d);
	for (int k = 0; k < 1000 && info_of(d).orphans != 0; k++) {
		qsbr_synchronize(t);
		qsbr_reclaim(t);
	}
	i = info_of(d);
	print_message("shared stress: %u workers started, %" PRIu64 " kills, %" PRIu64
		      " deaths recovered, %" PRIu64 " retired, %" PRIu64 " reclaimed, %" PRIu64
		      " resumed, %" PRIu64 " nodes\n",
		      started, atomic_load(&w->kills), i.deaths, i.retired, i.reclaimed, i.resumed,
		      atomic_load(&w->next_node));
	assert_int_equal(i.orphans, 0);
	assert_int_equal(i.threads, 1);
	assert_int_equal(atomic_load(&w->canary_bad), 0);
	assert_int_equal(atomic_load(&w->double_run), 0);
	assert_true(atomic_load(&w->retires) > 1000);
	/* Each death or interrupted step may leave a count off by one. */
	assert_true(i.reclaimed <= i.retired + i.deaths && i.retired <= i.reclaimed + i.deaths);
	for (uint64_t off = atomic_load(&w->head); off != 0; off = atomic_load(&work_node(d, off)->next)) {
		assert_false(freed(d, work_node(d, off)->id)); /* still reachable */
		in_stack++;
	}
	for (unsigned k = 0; k < WORK_SET; k++) {
		uint64_t off = atomic_load(&w->set[k]);

		if (off != 0)
			assert_false(freed(d, work_node(d, off)->id)); /* still in the set */
	}
	for (uint64_t id = 0; id < n && id < atomic_load(&w->next_node); id++) {
		uint8_t st = atomic_load(work_state(d, id));

		if (st == ST_RETIRED)
			assert_true(freed(d, id));
		if (freed(d, id))
			assert_true(st == ST_POPPED || st == ST_RETIRED);
	}
	/* Grace periods still end. */
	qsbr_synchronize(t);
	assert_true(qsbr_poll(t, qsbr_advance(d)) || (qsbr_synchronize(t), true));
	qsbr_unregister(t);
	assert_true(in_stack < n);
	region_end(d, mem);
}

/* Processes killed while they leave (unregister hands a list of retires to
 * the orphans under the region's lock): some die holding it, and the next
 * holder finishes their work (repairs). */
static void test_stress_leave_kills(void **state)
{
	uint64_t seed = (uint64_t)getpid() * 40503u, rounds = 0, end, used, n = 400000;
	void *mem;
	qsbr_domain *d;
	qsbr_thread *t;
	qsbr_shared_info i;
	int status;

	(void)state;
	d = region_of(&mem, n);
	end = now_ms() + (uint64_t)(stress_seconds > 1 ? stress_seconds / 2 : 1) * 1000;
	while (now_ms() < end) {
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			struct work *w = work_of(d);

			for (;;) {
				qsbr_thread *c = qsbr_register(d);
				uint64_t first = atomic_fetch_add(&w->next_node, 40);

				if (c == NULL || first + 40 > w->n_nodes)
					_exit(0); /* out of nodes */
				for (uint64_t id = first; id < first + 40; id++) {
					atomic_store(work_state(d, id), ST_POPPED);
					if (qsbr_shared_retire(c, node_fresh(d, id), WORK_KIND) != 0)
						_exit(4);
					atomic_store(work_state(d, id), ST_RETIRED);
				}
				qsbr_unregister(c);
			}
		}
		seed = seed * 6364136223846793005u + 1442695040888963407u;
		usleep((unsigned)(seed >> 33) % 3000);
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		rounds++;
		if (atomic_load(&work_of(d)->next_node) + 40 > n)
			break;
	}
	t = qsbr_register(d);
	qsbr_shared_recover(d);
	for (int k = 0; k < 1000 && info_of(d).orphans != 0; k++) {
		qsbr_synchronize(t);
		qsbr_reclaim(t);
	}
	i = info_of(d);
	used = atomic_load(&work_of(d)->next_node);
	print_message("shared leave-kills: %" PRIu64 " processes killed, %" PRIu64 " deaths, %" PRIu64
		      " repairs, %" PRIu64 " resumed, %" PRIu64 " retired\n",
		      rounds, i.deaths, i.repairs, i.resumed, i.retired);
	assert_int_equal(i.orphans, 0);
	assert_int_equal(atomic_load(&work_of(d)->double_run), 0);
	for (uint64_t id = 0; id < used && id < n; id++) {
		uint8_t st = atomic_load(work_state(d, id));

		if (st == ST_RETIRED)
			assert_true(freed(d, id));
		if (freed(d, id))
			assert_true(st == ST_POPPED || st == ST_RETIRED);
	}
	qsbr_unregister(t);
	region_end(d, mem);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest unit[] = {
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_create_bad),
		cmocka_unit_test(test_attach_bad),
		cmocka_unit_test(test_kind_and_retire_errors),
		cmocka_unit_test(test_two_views_hold_back),
		cmocka_unit_test(test_orphans_of_unregister),
		cmocka_unit_test(test_idle_list_handed_over),
		cmocka_unit_test(test_death_reaped),
		cmocka_unit_test(test_death_zombie),
		cmocka_unit_test(test_death_in_callback),
		cmocka_unit_test(test_death_in_each_step),
		cmocka_unit_test(test_fork_child_slot),
		cmocka_unit_test(test_stall_names_slot),
	};
	const struct CMUnitTest stress[] = {
		cmocka_unit_test(test_stress_kills),
		cmocka_unit_test(test_stress_leave_kills),
	};

	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--peer") == 0 && k + 1 < argc)
			peer_path = argv[++k];
		else if (strcmp(argv[k], "--seconds") == 0 && k + 1 < argc)
			stress_seconds = atoi(argv[++k]);
	}
	for (int k = 1; k < argc; k++)
		if (strcmp(argv[k], "--stress") == 0)
			return cmocka_run_group_tests_name("shared-stress", stress, NULL, NULL);
	return cmocka_run_group_tests_name("shared", unit, NULL, NULL);
}
