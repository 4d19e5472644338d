/* SPDX-License-Identifier: MIT */
/*
 * alloc_fail.h: allocation failures on demand, for the unit tests, through
 * a domain's allocator hook (qsbr_options.alloc and .free): every block a
 * data structure holds comes from its domain's allocator, and so does
 * every block the domain itself holds.
 *
 * The hook counts the calling thread's allocations and fails the one
 * armed; it also counts the blocks it handed out and has not taken back,
 * over all threads, so a test can tell that nothing leaked and that
 * nothing was freed elsewhere.
 */
#ifndef QSBR_TEST_ALLOC_FAIL_H
#define QSBR_TEST_ALLOC_FAIL_H

#include <stdbool.h>

#include <qsbr.h>

/* Sets o's allocator to the hook (o filled by qsbr_options_init first). */
void alloc_fail_options(qsbr_options *o);
/* Fails the n-th allocation of this thread from now (1: the next one) and
 * no other; 0 disarms. */
void alloc_fail_nth(unsigned n);
/* Fails the n-th allocation of this thread from now and every later one,
 * until disarmed with alloc_fail_nth(0). */
void alloc_fail_from(unsigned n);
/* Fails every allocation of this thread until called with false. */
void alloc_fail_all(bool on);
/* Allocations this thread asked for since the last call (failed ones
 * included). */
unsigned long alloc_count_take(void);
/* Whether the armed failure has happened. */
bool alloc_failed(void);
/* Blocks the hook handed out and has not taken back, all threads. */
long alloc_live(void);

#endif /* QSBR_TEST_ALLOC_FAIL_H */
