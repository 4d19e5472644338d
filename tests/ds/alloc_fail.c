/* SPDX-License-Identifier: MIT */
/* alloc_fail.c: the allocator hook of alloc_fail.h. */
#include "alloc_fail.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

static _Thread_local unsigned fail_in;   /* 0: none armed */
static _Thread_local bool fail_every, failed, sticky;
static _Thread_local unsigned long count;
static atomic_long live;

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

long alloc_live(void)
{
	return atomic_load(&live);
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

static void *hook_alloc(size_t size, size_t align, void *arg)
{
	void *p;

	(void)arg;
	if (fail_now())
		return NULL;
	if (align < sizeof(void *))
		align = sizeof(void *);
	if (posix_memalign(&p, align, size) != 0)
		return NULL;
	atomic_fetch_add(&live, 1);
	return p;
}

static void hook_free(void *p, void *arg)
{
	(void)arg;
	if (p == NULL)
		return;
	atomic_fetch_sub(&live, 1);
	free(p);
}

void alloc_fail_options(qsbr_options *o)
{
	o->alloc = hook_alloc;
	o->free = hook_free;
	o->alloc_arg = NULL;
}
