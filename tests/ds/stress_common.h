/* SPDX-License-Identifier: MIT */
/*
 * stress_common.h: what the data-structure stress programs share.
 *
 * Options (each program adds its own): --threads N (1..64), --seconds S
 * (run time, fractions allowed), --seed X.  Workers start together and stop
 * when the time is up; main then checks the invariants and prints one closing
 * line, "<name>: OK ..." or "<name>: FAIL ...", and exits 0 only on OK.
 *
 * Workers keep the domain busy the way applications do: a quiescent state
 * after every operation, now and then a while offline (detach, yield,
 * attach), and now and then a new registration (unregister, register), so
 * retired nodes move between threads and to the orphan list while the others
 * keep reading.
 */
#ifndef QSBR_TEST_STRESS_COMMON_H
#define QSBR_TEST_STRESS_COMMON_H

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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <qsbr.h>

#define MAX_THREADS 64

struct stress_cfg {
	const char *name;
	unsigned threads;
	double seconds;
	uint64_t seed;
};

static atomic_bool stress_stop;
static atomic_ulong stress_failures;
static char stress_first[256];
static pthread_mutex_t stress_lock = PTHREAD_MUTEX_INITIALIZER;

/* Records a failed check (the first message is kept for the closing line). */
static void __attribute__((format(printf, 1, 2))) stress_fail(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&stress_lock);
	if (atomic_fetch_add(&stress_failures, 1) == 0) {
		va_start(ap, fmt);
		vsnprintf(stress_first, sizeof(stress_first), fmt, ap);
		va_end(ap);
	}
	if (atomic_load(&stress_failures) <= 10) {
		va_start(ap, fmt);
		fputs("  check failed: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		va_end(ap);
	}
	pthread_mutex_unlock(&stress_lock);
}

#define CHECK(cond, ...)                        \
	do {                                    \
		if (!(cond))                    \
			stress_fail(__VA_ARGS__); \
	} while (0)

/* Flag polled by the workers; relaxed: it carries no data (results are
 * read after pthread_join). */
static bool stress_running(void)
{
	return !atomic_load_explicit(&stress_stop, memory_order_relaxed);
}

static uint64_t stress_rand(uint64_t *x)
{
	/* xorshift64* */
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * UINT64_C(0x2545f4914f6cdd1d);
}

/* Returns -1 if argv[*i] is not a common option, 0 if it is a bad one, 1 if
 * it was taken (with its value). */
static int stress_common_arg(struct stress_cfg *c, int argc, char **argv, int *i)
{
	const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
	char *end = NULL;

	if (strcmp(a, "--threads") != 0 && strcmp(a, "--seconds") != 0 &&
	    strcmp(a, "--seed") != 0)
		return -1;
	if (v == NULL)
		return 0;
	++*i;
	if (strcmp(a, "--threads") == 0) {
		unsigned long n = strtoul(v, &end, 10);

		if (*end != '\0' || n < 1 || n > MAX_THREADS)
			return 0;
		c->threads = (unsigned)n;
	} else if (strcmp(a, "--seconds") == 0) {
		c->seconds = strtod(v, &end);
		if (*end != '\0' || !(c->seconds > 0 && c->seconds <= 3600))
			return 0;
	} else {
		c->seed = strtoull(v, &end, 0);
		if (*end != '\0')
			return 0;
		c->seed += c->seed == 0;
	}
	return 1;
}

/* Runs fn(arg_i) in c->threads threads for c->seconds and joins them. */
static void stress_run(const struct stress_cfg *c, void *(*fn)(void *), void *args, size_t arg_size)
{
	pthread_t th[MAX_THREADS];
	struct timespec ts;

	atomic_store(&stress_stop, false);
	for (unsigned i = 0; i < c->threads; i++)
		if (pthread_create(&th[i], NULL, fn, (char *)args + i * arg_size) != 0) {
			fprintf(stderr, "%s: pthread_create failed\n", c->name);
			exit(1);
		}
	ts.tv_sec = (time_t)c->seconds;
	ts.tv_nsec = (long)((c->seconds - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	atomic_store(&stress_stop, true);
	for (unsigned i = 0; i < c->threads; i++)
		pthread_join(th[i], NULL);
}

/* A worker's handle, and the domain churn described at the top. */
struct stress_thread {
	qsbr_domain *d;
	qsbr_thread *t;
	uint64_t rng;
	uint64_t ops, offline, reregs;
};

static void stress_thread_init(struct stress_thread *st, qsbr_domain *d, uint64_t seed)
{
	st->d = d;
	st->rng = seed;
	st->ops = st->offline = st->reregs = 0;
	st->t = qsbr_register(d);
	if (st->t == NULL) {
		perror("qsbr_register");
		exit(1);
	}
}

/* After each operation: a quiescent state; about one operation in 1024 a
 * spell offline, one in 16384 a new registration. */
static void stress_after_op(struct stress_thread *st)
{
	uint64_t r;

	st->ops++;
	qsbr_quiescent(st->t);
	if ((st->ops & 63) != 0)
		return;
	r = stress_rand(&st->rng);
	if ((r & 255) == 0) {
		qsbr_unregister(st->t);
		st->t = qsbr_register(st->d);
		if (st->t == NULL) {
			perror("qsbr_register");
			exit(1);
		}
		st->reregs++;
	} else if ((r & 15) == 0) {
		qsbr_detach(st->t);
		sched_yield();
		qsbr_attach(st->t);
		st->offline++;
	}
}

static void stress_thread_fini(struct stress_thread *st)
{
	qsbr_unregister(st->t);
	st->t = NULL;
}

/*
 * A log of the values one thread took from a stack or queue: values name a
 * producer and its sequence number (0, 1, 2, ... per producer), and the log
 * keeps a bit per sequence number per producer, so it stays small however
 * long the run.  seqlog_check() then finds, over the logs of all threads, any
 * value taken twice, any value never put in, and any value lost.
 */
#define SEQ_BITS 24
#define MAX_SEQ (UINT32_C(1) << SEQ_BITS) /* values a producer may put in */

struct seqlog {
	uint8_t *bits[MAX_THREADS]; /* per producer, MAX_SEQ bits, allocated on first use */
	uint32_t end[MAX_THREADS];  /* per producer, 1 + the highest seq taken */
	uint64_t n;
};

static inline void *seq_value(unsigned producer, uint32_t seq)
{
	return (void *)(uintptr_t)((uint32_t)producer << SEQ_BITS | seq);
}

static inline void seqlog_add(struct seqlog *l, void *value, unsigned producers, const char *who)
{
	uint32_t v = (uint32_t)(uintptr_t)value;
	unsigned p = v >> SEQ_BITS;
	uint32_t seq = v & (MAX_SEQ - 1);

	if ((uintptr_t)value != v || p >= producers) {
		stress_fail("%s took %p, never put in", who, value);
		return;
	}
	if (l->bits[p] == NULL && (l->bits[p] = calloc(MAX_SEQ / 8, 1)) == NULL) {
		perror("calloc");
		exit(1);
	}
	if (l->bits[p][seq / 8] & (1u << (seq % 8)))
		stress_fail("%s took seq %u of producer %u twice", who, (unsigned)seq, p);
	l->bits[p][seq / 8] |= (uint8_t)(1u << (seq % 8));
	if (seq >= l->end[p])
		l->end[p] = seq + 1;
	l->n++;
}

/* put[p]: how many values producer p put in (sequence numbers 0..put[p]-1).
 * logs: n logs, one per thread that took values.  Frees the logs. */
static inline void seqlog_check(struct seqlog *logs, unsigned n, const uint32_t *put, unsigned producers)
{
	for (unsigned p = 0; p < producers; p++) {
		uint32_t end = put[p];

		for (unsigned c = 0; c < n; c++)
			end = logs[c].end[p] > end ? logs[c].end[p] : end;
		for (uint32_t byte = 0; byte < (end + 7) / 8; byte++) {
			unsigned all = 0, twice = 0, want;

			for (unsigned c = 0; c < n; c++) {
				unsigned b = logs[c].bits[p] != NULL ? logs[c].bits[p][byte] : 0;

				twice |= all & b;
				all |= b;
			}
			want = put[p] >= (byte + 1) * 8 ? 0xff :
			       put[p] <= byte * 8 ? 0 : (1u << (put[p] - byte * 8)) - 1;
			for (unsigned bit = 0; bit < 8 && (all | want | twice) != 0; bit++) {
				uint32_t seq = byte * 8 + bit;

				if (twice & (1u << bit))
					stress_fail("seq %u of producer %u taken by two threads",
						    (unsigned)seq, p);
				if ((all & ~want) & (1u << bit))
					stress_fail("seq %u of producer %u taken, never put in",
						    (unsigned)seq, p);
				if ((want & ~all) & (1u << bit))
					stress_fail("seq %u of producer %u lost", (unsigned)seq, p);
			}
		}
	}
	for (unsigned c = 0; c < n; c++)
		for (unsigned p = 0; p < producers; p++)
			free(logs[c].bits[p]);
}

/* The closing line; returns the exit status. */
static int stress_finish(const struct stress_cfg *c, const char *summary)
{
	unsigned long f = atomic_load(&stress_failures);

	if (f == 0) {
		printf("%s: OK: threads=%u seconds=%.2f %s\n", c->name, c->threads, c->seconds,
		       summary);
		return 0;
	}
	printf("%s: FAIL: %lu failed check(s), first: %s (threads=%u seconds=%.2f seed=%" PRIu64
	       ")\n", c->name, f, stress_first, c->threads, c->seconds, c->seed);
	return 1;
}

#endif /* QSBR_TEST_STRESS_COMMON_H */
