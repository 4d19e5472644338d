/* SPDX-License-Identifier: MIT */
/*
 * alloc_fail.h: allocation failures on demand, for the unit tests.
 *
 * The unit tests link libqsbr statically with -Wl,--wrap for malloc, calloc
 * and aligned_alloc, so every allocation the library makes (and the test's
 * own) goes through the wrappers in alloc_fail.c first.  They count the
 * calling thread's allocations and fail the one armed.
 */
#ifndef QSBR_TEST_ALLOC_FAIL_H
#define QSBR_TEST_ALLOC_FAIL_H

#include <stdbool.h>

/* Fails the n-th allocation of this thread from now (1: the next one) and
 * no other; 0 disarms. */
void alloc_fail_nth(unsigned n);
/* Fails the n-th allocation of this thread from now and every later one,
 * until disarmed with alloc_fail_nth(0). */
void alloc_fail_from(unsigned n);
/* Fails every allocation of this thread until called with false. */
void alloc_fail_all(bool on);
/* Allocations this thread made since the last call (failed ones included). */
unsigned long alloc_count_take(void);
/* Whether the armed failure has happened. */
bool alloc_failed(void);

#endif /* QSBR_TEST_ALLOC_FAIL_H */
