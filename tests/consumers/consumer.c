/* SPDX-License-Identifier: MIT */
/*
 * A downstream program, as a user of libqsbr writes it.  run.sh builds it
 * against this tree as a meson subproject, through pkg-config and through
 * CMake, linked shared and static, and runs it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qsbr.h>

#define N 100

struct obj {
	qsbr_node node;
	int value;
};

static int freed;

static void obj_free(qsbr_node *n)
{
	free(n);  /* node is the first member */
	freed++;
}

static void plain_free(void *p)
{
	free(p);
	freed++;
}

int main(void)
{
	/* The header compiled in and the library loaded are the same release. */
	if (strcmp(qsbr_version(), QSBR_VERSION_STRING) != 0) {
		fprintf(stderr, "header %s, library %s\n", QSBR_VERSION_STRING, qsbr_version());
		return 1;
	}
	qsbr_domain *d = qsbr_domain_new(NULL);
	qsbr_thread *t = d ? qsbr_register(d) : NULL;
	if (t == NULL)
		return 1;
	for (int i = 0; i < N; i++) {
		struct obj *o = malloc(sizeof(*o));
		void *p = malloc(16);

		if (o == NULL || p == NULL || qsbr_retire(t, p, plain_free) != 0)
			return 1;
		o->value = i;
		qsbr_retire_node(t, &o->node, obj_free);
		qsbr_advance(d);
		qsbr_quiescent(t);  /* inline: calls the library's exported internals */
	}
	qsbr_barrier(t);
	qsbr_unregister(t);
	if (qsbr_domain_delete(d) != 0 || freed != 2 * N) {
		fprintf(stderr, "%d of %d callbacks ran\n", freed, 2 * N);
		return 1;
	}
	printf("libqsbr %s: %d callbacks ran\n", qsbr_version(), freed);
	return 0;
}
