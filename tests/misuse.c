/* SPDX-License-Identifier: MIT */
/*
 * Misuse, against both builds of the library.  Built twice:
 *  - LIB_ASSERTS=1, against the library as built (debug): each case must stop
 *    the program with SIGABRT and a message naming the call;
 *  - LIB_ASSERTS=0, against the library built with NDEBUG: each case that
 *    release builds check must fail with its documented errno and change
 *    nothing (docs/api.md, Misuse); the others are not checked there.
 * Each case runs in a child process.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <qsbr.h>

static qsbr_domain *d;
static qsbr_thread *t;
static int cb_errno = -1; /* errno a callback saw after its blocking call */
static int cb_ran;

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "check failed: %s (line %d)\n", #cond, __LINE__); \
			return 1;                                                \
		}                                                                \
	} while (0)

/* Runs t's callbacks until cb_ran is set. */
static void run_callbacks(void)
{
	for (int i = 0; i < 100 && !cb_ran; i++) {
		qsbr_quiescent(t);
		qsbr_reclaim(t);
	}
}

static void *quiesce_other(void *arg)
{
	(void)arg;
	qsbr_quiescent(t);
	return NULL;
}

static int quiescent_from_other_thread(void)
{
	pthread_t th;

	qsbr_advance(d); /* so the slow path, checked by the library, runs */
	pthread_create(&th, NULL, quiesce_other, NULL);
	pthread_join(th, NULL);
	return 0;
}

static int use_after_unregister(void)
{
	qsbr_unregister(t);
	qsbr_reclaim(t);
	return 0;
}

static int quiescent_while_detached(void)
{
	qsbr_stats s;

	qsbr_detach(t);
	qsbr_advance(d);
	qsbr_quiescent(t);
	/* Release builds: ignored, the thread stays offline. */
	CHECK(qsbr_stats_get(d, &s) == 0 && s.online == 0);
	return 0;
}

/* A second unregister must not put the slot on the free list twice: two
 * threads registering next must get two handles. */
static int double_unregister(void)
{
	qsbr_thread *a, *b;
	qsbr_stats s;

	qsbr_unregister(t);
	errno = 0;
	qsbr_unregister(t);
	CHECK(errno == EINVAL);
	a = qsbr_register(d);
	b = qsbr_register(d);
	CHECK(a != NULL && b != NULL && a != b);
	CHECK(qsbr_stats_get(d, &s) == 0 && s.threads == 2);
	return 0;
}

/* A blocking call from a callback: EDEADLK, and the callback goes on. */
#define FROM_CALLBACK(name, call)                             \
	static void cb_##name(qsbr_node *n)                   \
	{                                                     \
		(void)n;                                      \
		errno = 0;                                    \
		call;                                         \
		cb_errno = errno;                             \
		cb_ran = 1;                                   \
	}                                                     \
	static int name(void)                                 \
	{                                                     \
		static qsbr_node node;                        \
		qsbr_retire_node(t, &node, cb_##name);        \
		run_callbacks();                              \
		CHECK(cb_ran == 1 && cb_errno == EDEADLK);     \
		return 0;                                     \
	}

FROM_CALLBACK(barrier_from_callback, qsbr_barrier(t))
FROM_CALLBACK(synchronize_from_callback, qsbr_synchronize(t))
FROM_CALLBACK(synchronize_domain_from_callback, qsbr_synchronize_domain(d))
FROM_CALLBACK(barrier_domain_from_callback, qsbr_barrier_domain(d))
FROM_CALLBACK(unregister_from_callback, qsbr_unregister(t))
FROM_CALLBACK(delete_from_callback, errno = qsbr_domain_delete(d))

struct misuse {
	const char *name;
	int (*run)(void);
	const char *message; /* what the debug build prints */
	int release_checked; /* the release build must pass run() */
};

static const struct misuse cases[] = {
	{ "quiescent from another thread", quiescent_from_other_thread,
	  "qsbr_quiescent: called from a thread that did not register this handle", 0 },
	{ "use after unregister", use_after_unregister,
	  "qsbr_reclaim: handle used after qsbr_unregister", 0 },
	{ "quiescent while detached", quiescent_while_detached,
	  "qsbr_quiescent: the thread is offline", 1 },
	{ "double unregister", double_unregister,
	  "qsbr_unregister: handle used after qsbr_unregister", 1 },
	{ "barrier from a callback", barrier_from_callback,
	  "qsbr_barrier: called from a reclaim callback", 1 },
	{ "synchronize from a callback", synchronize_from_callback,
	  "qsbr_synchronize: called from a reclaim callback", 1 },
	{ "synchronize_domain from a callback", synchronize_domain_from_callback,
	  "qsbr_synchronize_domain: called from a reclaim callback", 1 },
	{ "barrier_domain from a callback", barrier_domain_from_callback,
	  "qsbr_barrier_domain: called from a reclaim callback", 1 },
	{ "unregister from a callback", unregister_from_callback,
	  "qsbr_unregister: called from a reclaim callback", 1 },
	{ "domain_delete from a callback", delete_from_callback,
	  "qsbr_domain_delete: called from a reclaim callback of the same domain", 1 },
};

/* Runs one case in a child; returns 0 when it behaved as this build must. */
static int run_case(const struct misuse *m)
{
	char out[2048] = { 0 };
	size_t len = 0;
	int fds[2], status;
	pid_t pid;
	ssize_t r;

	if (pipe(fds) != 0)
		return perror("pipe"), 1;
	pid = fork();
	if (pid < 0)
		return perror("fork"), 1;
	if (pid == 0) {
		qsbr_options o;

		dup2(fds[1], 2);
		close(fds[0]);
		qsbr_options_init(&o);
		o.background = QSBR_BACKGROUND_OFF; /* callbacks run in run_callbacks */
		d = qsbr_domain_new(&o);
		t = qsbr_register(d);
		_exit(m->run());
	}
	close(fds[1]);
	while (len < sizeof(out) - 1 && (r = read(fds[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)r;
	close(fds[0]);
	waitpid(pid, &status, 0);
	if (LIB_ASSERTS) {
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT) {
			printf("not ok - %s: child was not aborted (status %d)\n", m->name, status);
			return 1;
		}
		if (strstr(out, m->message) == NULL) {
			printf("not ok - %s: message missing; stderr was: %s\n", m->name, out);
			return 1;
		}
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("not ok - %s (release): status %d; stderr was: %s\n", m->name, status, out);
		return 1;
	}
	printf("ok - %s%s\n", m->name, LIB_ASSERTS ? "" : " (release)");
	return 0;
}

int main(void)
{
	int failed = 0, ran = 0;
	size_t n = sizeof(cases) / sizeof(cases[0]);

	for (size_t i = 0; i < n; i++) {
		if (!LIB_ASSERTS && !cases[i].release_checked)
			continue;
		failed += run_case(&cases[i]);
		ran++;
	}
	printf("%d passed, %d failed\n", ran - failed, failed);
	return failed != 0 || ran == 0;
}
