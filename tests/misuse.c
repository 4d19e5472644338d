/* SPDX-License-Identifier: MIT */
/*
 * Misuse that release builds do not check must stop debug builds with a
 * message naming the call.  Each case runs in a child process; the parent
 * expects SIGABRT and the message on the child's stderr.  Exits 77 (skipped)
 * when the library's assertions are compiled out (NDEBUG).
 */
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

static void *quiesce_other(void *arg)
{
	(void)arg;
	qsbr_quiescent(t);
	return NULL;
}

static void quiescent_from_other_thread(void)
{
	pthread_t th;

	qsbr_advance(d); /* so the slow path, checked by the library, runs */
	pthread_create(&th, NULL, quiesce_other, NULL);
	pthread_join(th, NULL);
}

static void use_after_unregister(void)
{
	qsbr_unregister(t);
	qsbr_reclaim(t);
}

static void retire_while_detached(void)
{
	static qsbr_node n;

	qsbr_detach(t);
	qsbr_retire_node(t, &n, (void (*)(qsbr_node *))free);
}

static void quiescent_while_detached(void)
{
	qsbr_detach(t);
	qsbr_advance(d);
	qsbr_quiescent(t);
}

static void cb_barrier(qsbr_node *n)
{
	(void)n;
	qsbr_barrier(t);
}

static void barrier_from_callback(void)
{
	static qsbr_node n;

	qsbr_retire_node(t, &n, cb_barrier);
	for (int i = 0; i < 100; i++) {
		qsbr_quiescent(t);
		qsbr_reclaim(t);
	}
}

struct misuse {
	const char *name;
	void (*run)(void);
	const char *message;
};

static const struct misuse cases[] = {
	{ "quiescent from another thread", quiescent_from_other_thread,
	  "qsbr_quiescent: called from a thread that did not register this handle" },
	{ "use after unregister", use_after_unregister,
	  "qsbr_reclaim: handle used after qsbr_unregister" },
	{ "retire while detached", retire_while_detached, "the thread is offline" },
	{ "quiescent while detached", quiescent_while_detached,
	  "qsbr_quiescent: the thread is offline" },
	{ "barrier from a callback", barrier_from_callback,
	  "qsbr_barrier: called from a reclaim callback" },
};

/* Runs one case in a child; returns 0 when it aborted with the message. */
static int expect_abort(const struct misuse *m)
{
	char out[1024] = { 0 };
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
		dup2(fds[1], 2);
		close(fds[0]);
		d = qsbr_domain_new(NULL);
		t = qsbr_register(d);
		m->run();
		_exit(0); /* not stopped: the check is missing */
	}
	close(fds[1]);
	while (len < sizeof(out) - 1 && (r = read(fds[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)r;
	close(fds[0]);
	waitpid(pid, &status, 0);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT) {
		printf("not ok - %s: child was not aborted (status %d)\n", m->name, status);
		return 1;
	}
	if (strstr(out, m->message) == NULL) {
		printf("not ok - %s: message missing; stderr was: %s\n", m->name, out);
		return 1;
	}
	printf("ok - %s\n", m->name);
	return 0;
}

int main(void)
{
	int failed = 0;
	size_t n = sizeof(cases) / sizeof(cases[0]);

	if (!LIB_ASSERTS) {
		printf("SKIP: library built with NDEBUG, misuse checks are compiled out\n");
		return 77;
	}
	printf("1..%zu\n", n);
	for (size_t i = 0; i < n; i++)
		failed += expect_abort(&cases[i]);
	return failed != 0;
}
