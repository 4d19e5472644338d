/* SPDX-License-Identifier: MIT */
/* alloc_fail.c: the allocation wrappers of alloc_fail.h (-Wl,--wrap). */
#include "alloc_fail.h"

#include <stddef.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_aligned_alloc(size_t align, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_aligned_alloc(size_t align, size_t size);

static _Thread_local unsigned fail_in;   /* 0: none armed */
static _Thread_local bool fail_every, failed, sticky;
static _Thread_local unsigned long count;

void alloc_fail_nth(unsigned n)
{
	fail_in = n;
	failed = false;
	sticky = false;
}

void alloc_fail_from(unsigned n)
{
	alloc_fail_nth(n);
	sticky = true;
}

void alloc_fail_all(bool on)
{
	fail_every = on;
}

unsigned long alloc_count_take(void)
{
	unsigned long c = count;

	count = 0;
	return c;
}

bool alloc_failed(void)
{
	return failed;
}

static bool fail_now(void)
{
	count++;
	if (fail_every || (sticky && failed))
		return true;
	if (fail_in != 0 && --fail_in == 0) {
		failed = true;
		return true;
	}
	return false;
}

void *__wrap_malloc(size_t size)
{
	return fail_now() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
	return fail_now() ? NULL : __real_aligned_alloc(align, size);
}
