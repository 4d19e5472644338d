/* SPDX-License-Identifier: MIT */
/*
 * A separate program of the `shared` suite's stress (tests/shared_work.h):
 * it maps the region from an inherited memfd, at an address of its own
 * choosing (after a spacer mapping, so it differs from the parent's), and
 * works until told to stop.
 *
 * Usage: shared-peer FD SIZE SEED
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shared_work.h"

int main(int argc, char **argv)
{
	qsbr_options o;
	qsbr_domain *d;
	void *mem, *spacer;
	size_t size;
	int fd;

	if (argc != 4) {
		fprintf(stderr, "usage: shared-peer FD SIZE SEED\n");
		return 2;
	}
	fd = atoi(argv[1]);
	size = strtoull(argv[2], NULL, 10);
	spacer = mmap(NULL, 1 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED || spacer == MAP_FAILED) {
		perror("shared-peer: mmap");
		return 2;
	}
	qsbr_options_init(&o);
	o.background = QSBR_BACKGROUND_OFF;
	d = qsbr_domain_attach_shared(mem, size, &o);
	if (d == NULL) {
		perror("shared-peer: qsbr_domain_attach_shared");
		return 2;
	}
	return work_main(d, strtoull(argv[3], NULL, 10));
}
